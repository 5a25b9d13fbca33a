"""SPIRAL update rules (docs/design.md §5): how relabelled chunk advantages turn into a policy update.

Every rule maps the advantages of all training samples of a round to per-sample ``weight`` (multiplying
the behaviour-cloning loss) and an optional ``condition`` (an input the policy is conditioned on):

* ``rabc``: LeRobot's RA-BC weighting for SARM rewards.
* ``awr``: advantage-weighted regression, ``min(exp(A_norm / beta), max_weight)``.
* ``recap``: pi*0.6's RECAP-style conditioning: every sample keeps weight 1 and the policy learns
  ``a | (advantage positive?)``; at rollout time it is asked for the positive mode. The indicator is
  dropped (set to "unknown") with probability ``condition_dropout`` in training.
* ``residual_ac``: the authors' release, a residual actor-critic on the frozen BC policy; not a sample
  weighting but its own trainer (:mod:`agents.residual`), configured by ``UpdateConfig.residual``.

Which one works best is measured by ``benchmarks/configs/spiral.yaml``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from sarm2_env.errors import ConfigError, InputShapeError, NonFiniteError

UPDATE_RULES: tuple[str, ...] = ("rabc", "awr", "recap", "residual_ac")
#: Rules that re-weight (or condition) behaviour cloning; the others have their own trainer.
WEIGHTING_RULES: tuple[str, ...] = ("rabc", "awr", "recap")


@dataclasses.dataclass(frozen=True)
class UpdateConfig:
    """Hyper-parameters of the update rules (each rule reads its own).

    Args:
        rule: one of :data:`UPDATE_RULES`.
        kappa: RA-BC's "clearly progressing" threshold (advantage per chunk).
        beta: AWR temperature on standardised advantages.
        max_weight: AWR weight cap.
        positive_fraction: RECAP's share of samples labelled "advantage positive" (the top fraction).
        per_task_threshold: RECAP threshold per task instead of over all samples.
        condition_dropout: RECAP's probability of hiding the indicator in training.
        include_demos: keep the demonstrations in every update (weight 1, indicator positive); the
            weighting rules only.
        residual: the residual actor-critic's settings (a :class:`agents.residual.ResidualACConfig` or a dict).
    """

    rule: str = "rabc"
    kappa: float = 0.01
    beta: float = 1.0
    max_weight: float = 20.0
    positive_fraction: float = 0.3
    per_task_threshold: bool = True
    condition_dropout: float = 0.3
    include_demos: bool = True
    residual: Any = None

    def __post_init__(self) -> None:
        from agents.residual import ResidualACConfig

        if self.residual is None or isinstance(self.residual, dict):
            object.__setattr__(self, "residual", ResidualACConfig(**(self.residual or {})))
        elif not isinstance(self.residual, ResidualACConfig):
            raise ConfigError(f"`residual` must be a ResidualACConfig or a dict; got {type(self.residual).__name__}")
        if self.rule not in UPDATE_RULES:
            from sarm2_env.errors import UnknownNameError

            raise UnknownNameError("update rule", self.rule, UPDATE_RULES)
        if not self.kappa > 0:
            raise ConfigError(f"`kappa` must be > 0; got {self.kappa!r}")
        if not self.beta > 0:
            raise ConfigError(f"`beta` must be > 0; got {self.beta!r}")
        if not self.max_weight >= 1:
            raise ConfigError(f"`max_weight` must be >= 1; got {self.max_weight!r}")
        if not 0 < self.positive_fraction < 1:
            raise ConfigError(f"`positive_fraction` must be in (0, 1); got {self.positive_fraction!r}")
        if not 0 <= self.condition_dropout < 1:
            raise ConfigError(f"`condition_dropout` must be in [0, 1); got {self.condition_dropout!r}")


def _check(adv: np.ndarray) -> np.ndarray:
    a = np.asarray(adv, dtype=np.float64)
    if a.ndim != 1 or a.size == 0:
        raise InputShapeError(f"`advantages`: expected a non-empty (N,) array; got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise NonFiniteError("`advantages`: contains NaN or inf (check the reward model's predictions)")
    return a


def rabc_weights(advantages: np.ndarray, kappa: float = 0.01, eps: float = 1e-6) -> np.ndarray:
    """RA-BC: 1 above ``kappa``; ``clip((A - (mu - 2 sigma)) / (4 sigma + eps), 0, 1)`` in ``[0, kappa]``; 0 below 0.

    ``mu`` and ``sigma`` are the mean and standard deviation of all advantages.
    """
    a = _check(advantages)
    mu, sigma = a.mean(), a.std()
    w = np.clip((a - (mu - 2.0 * sigma)) / (4.0 * sigma + eps), 0.0, 1.0)
    w[a > kappa] = 1.0
    w[a < 0] = 0.0
    return w.astype(np.float32)


def awr_weights(advantages: np.ndarray, beta: float = 1.0, max_weight: float = 20.0) -> np.ndarray:
    """AWR: ``min(exp(A_norm / beta), max_weight)`` with ``A_norm`` the standardised advantages."""
    a = _check(advantages)
    norm = (a - a.mean()) / (a.std() + 1e-8)
    return np.minimum(np.exp(norm / beta), max_weight).astype(np.float32)


def recap_indicators(
    advantages: np.ndarray, positive_fraction: float = 0.3, groups: np.ndarray | None = None
) -> np.ndarray:
    """1 for samples in the top ``positive_fraction`` of advantages (within their group, e.g. task), else 0.

    Ties at the threshold count as positive; a group whose advantages are all equal is all positive only
    if they are > 0.
    """
    a = _check(advantages)
    keys = np.zeros(len(a), dtype=np.int64) if groups is None else np.unique(np.asarray(groups), return_inverse=True)[1]
    if len(keys) != len(a):
        raise InputShapeError(f"`groups`: expected {len(a)} entries; got {len(keys)}")
    out = np.zeros(len(a), dtype=np.float32)
    for g in np.unique(keys):
        mask = keys == g
        vals = a[mask]
        if np.ptp(vals) == 0:
            out[mask] = float(vals[0] > 0)
            continue
        threshold = np.quantile(vals, 1.0 - positive_fraction)
        out[mask] = (vals >= threshold).astype(np.float32)
    return out


@dataclasses.dataclass(frozen=True)
class SampleTargets:
    """Per-sample ``weight`` of the BC loss and ``condition`` (RECAP's indicator; ``None`` for other rules)."""

    weight: np.ndarray
    condition: np.ndarray | None


def sample_targets(advantages: np.ndarray, config: UpdateConfig, groups: np.ndarray | None = None) -> SampleTargets:
    """The weights (and RECAP conditions) of one round's rollout samples under ``config.rule``."""
    if config.rule == "rabc":
        return SampleTargets(rabc_weights(advantages, config.kappa), None)
    if config.rule == "awr":
        return SampleTargets(awr_weights(advantages, config.beta, config.max_weight), None)
    if config.rule == "recap":
        cond = recap_indicators(advantages, config.positive_fraction, groups if config.per_task_threshold else None)
        return SampleTargets(np.ones(len(cond), dtype=np.float32), cond)
    raise ConfigError(f"`rule` {config.rule!r} is not a sample weighting; it has its own trainer")
