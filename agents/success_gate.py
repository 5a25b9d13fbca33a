"""A reward source's success judgement, to gate its outcome: only rollouts it judges successful are cloned.

Outcome advantages (:mod:`agents.outcome_advantage`) compare a rollout's final progress with what its states
promised. With a dense source a failure that ended above its states' promise (an approach that got further than
usual, then stalled) gets a positive advantage and is cloned. Measured on CleanWhiteboard's round 1, failed
rollouts carried 61-78 % of the cloned rollout weight with the dense sources (0 % with sparse success), and no
dense source lifted ``pi_0`` while sparse success did.

The gate turns the source's final progress into a judgement: a rollout counts as a success when its final
relabelled progress reaches a threshold. The threshold is calibrated once on the annotated rollouts (those the
reward model is adapted on): the one that best separates the annotated successes from the failures (Youden's J,
ties towards the higher threshold, since cloning a failure costs more than missing a success).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

from sarm2_env.errors import InputShapeError, NonFiniteError

#: The threshold when the annotated rollouts hold only successes or only failures (nothing to separate).
FALLBACK_THRESHOLD = 0.5


@dataclasses.dataclass(frozen=True)
class GateThreshold:
    """A calibrated success threshold and how it separated the rollouts it was calibrated on.

    Attributes:
        threshold: final progress at or above which a rollout is judged successful.
        rollouts, successes: the calibration set and how many of it succeeded (annotated).
        true_positive_rate, false_positive_rate: on that set (``None`` when that class is absent).
        calibrated: False when the set held one class only and :data:`FALLBACK_THRESHOLD` was used.
    """

    threshold: float
    rollouts: int
    successes: int
    true_positive_rate: float | None
    false_positive_rate: float | None
    calibrated: bool

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of the fields."""
        return dataclasses.asdict(self)


def _finals_and_labels(finals: Sequence[float], successes: Sequence[bool]) -> tuple[np.ndarray, np.ndarray]:
    f = np.asarray(finals, dtype=np.float64).reshape(-1)
    y = np.asarray(successes, dtype=bool).reshape(-1)
    if len(f) != len(y) or len(f) == 0:
        raise InputShapeError(
            f"`finals` and `successes`: expected one of each per rollout (>= 1); got {len(f)} and {len(y)}"
        )
    if not np.all(np.isfinite(f)):
        raise NonFiniteError(f"`finals`: expected finite progress; got {f[~np.isfinite(f)][:3].tolist()}")
    return f, y


def calibrate_threshold(finals: Sequence[float], successes: Sequence[bool]) -> GateThreshold:
    """The threshold on ``finals`` (each rollout's final progress by the source) that best separates the
    annotated ``successes``: maximal Youden's J (true minus false positive rate), ties towards the higher one.
    Candidates are midpoints between consecutive distinct finals, so a threshold never sits on a rollout."""
    f, y = _finals_and_labels(finals, successes)
    k, n = int(y.sum()), len(y)
    if k in (0, n):
        judged = f >= FALLBACK_THRESHOLD
        tpr = float(judged[y].mean()) if k else None
        fpr = float(judged[~y].mean()) if k < n else None
        return GateThreshold(FALLBACK_THRESHOLD, n, k, tpr, fpr, calibrated=False)
    levels = np.unique(f)
    candidates = np.concatenate([[levels[0] - 1e-6], (levels[1:] + levels[:-1]) / 2, [levels[-1] + 1e-6]])
    best: tuple[int, float] | None = None  # (J * successes * failures, an integer so ties are exact; threshold)
    for t in candidates:
        judged = f >= t
        score = int((judged & y).sum()) * (n - k) - int((judged & ~y).sum()) * k
        if best is None or (score, t) >= best:
            best = (score, float(t))
    assert best is not None
    judged = f >= best[1]
    return GateThreshold(best[1], n, k, float(judged[y].mean()), float(judged[~y].mean()), calibrated=True)


def gate_report(finals: Sequence[float], successes: Sequence[bool], threshold: float) -> dict[str, Any]:
    """How the judgement at ``threshold`` fared against the simulator's ``successes`` on a round's rollouts."""
    f, y = _finals_and_labels(finals, successes)
    judged = f >= threshold
    tp = int((judged & y).sum())
    return {
        "threshold": float(threshold),
        "rollouts": len(f),
        "true_successes": int(y.sum()),
        "judged_successes": int(judged.sum()),
        "correct_judged_successes": tp,
        "precision": tp / int(judged.sum()) if judged.any() else None,
        "recall": tp / int(y.sum()) if y.any() else None,
    }
