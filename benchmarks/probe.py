"""A privileged linear probe: how much task progress the frozen frame embeddings carry, read linearly.

Ridge regression from one camera's (or every camera's) frozen embedding of one frame to progress, its
regularisation chosen on held-out episodes. Trained on what no reward model may see (the physics progress of
other rollouts), it shows how much failure signal a *linear* read-out of single frames finds in the features;
never a baseline. It is not a bound on what a non-linear model over several frames can reach.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rewards.data import EpisodeFeatures
from sarm2_env.constants import CAMERAS
from sarm2_env.errors import ConfigError

#: Feature sets the probe is fitted on: each camera alone, and all cameras concatenated.
VIEWS: tuple[str, ...] = (*CAMERAS, "all")
#: Ridge strengths tried (on standardised features); the one with the lowest held-out MSE is used.
ALPHAS: tuple[float, ...] = (1.0, 10.0, 100.0, 1e3, 1e4, 1e5)
DEFAULT_ALPHA = 1e3


class RidgeProbe:
    """Ridge regression on standardised features; predictions clipped to [0, 1]."""

    def __init__(self, alpha: float = 10.0) -> None:
        if not alpha > 0:
            raise ConfigError(f"`alpha` must be > 0; got {alpha!r}")
        self.alpha = alpha
        self.mean: np.ndarray | None = None
        self.scale: np.ndarray | None = None
        self.weights: np.ndarray | None = None
        self.bias = 0.0

    def fit(self, x: np.ndarray, y: np.ndarray) -> RidgeProbe:
        """Fit the ridge weights on standardised ``x (N, D)`` against ``y (N,)``; returns the probe."""
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        self.mean, self.scale = x.mean(0), np.maximum(x.std(0), 1e-6)
        z = (x - self.mean) / self.scale
        self.bias = float(y.mean())
        gram = z.T @ z + self.alpha * np.eye(z.shape[1])
        self.weights = np.linalg.solve(gram, z.T @ (y - self.bias))
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Predictions ``(N,)`` for ``x (N, D)``."""
        if self.weights is None:
            raise RuntimeError("call fit() before predict()")
        z = (np.asarray(x, dtype=np.float64) - self.mean) / self.scale
        return np.clip(z @ self.weights + self.bias, 0.0, 1.0)


def choose_alpha(
    x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray, alphas: Sequence[float] = ALPHAS
) -> float:
    """The ridge strength of ``alphas`` with the lowest MSE on ``(x_val, y_val)`` when fitted on the training rows
    (one SVD, every strength from it)."""
    x_train = np.asarray(x_train, dtype=np.float64)
    mean, scale = x_train.mean(0), np.maximum(x_train.std(0), 1e-6)
    z = (x_train - mean) / scale
    bias = float(np.mean(y_train))
    u, s, vt = np.linalg.svd(z, full_matrices=False)
    uty = u.T @ (np.asarray(y_train, dtype=np.float64) - bias)
    z_val = (np.asarray(x_val, dtype=np.float64) - mean) / scale @ vt.T  # (n_val, k)
    errors = [
        float(np.mean((np.clip(z_val @ (s / (s * s + a) * uty) + bias, 0.0, 1.0) - np.asarray(y_val)) ** 2))
        for a in alphas
    ]
    return float(alphas[int(np.argmin(errors))])


def view_features(feats: EpisodeFeatures, view: str, steps: np.ndarray | None = None) -> np.ndarray:
    """``(N, D)`` (one camera) or ``(N, C * D)`` (``"all"``) embeddings at ``steps`` (default: the scored steps)."""
    steps = feats.scored_steps if steps is None else steps
    emb = feats.embeddings_at(steps).astype(np.float32)  # (N, C, D); stored as float16
    if view == "all":
        return emb.reshape(len(steps), -1)
    if view not in CAMERAS:
        raise ConfigError(f"`view` must be one of {VIEWS}; got {view!r}")
    return emb[:, CAMERAS.index(view)]


def stack(
    episodes: Sequence[EpisodeFeatures], view: str, targets: Sequence[np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """Rows of every episode's scored steps and their targets (each ``targets[i]`` is per step of episode i)."""
    xs = [view_features(f, view) for f in episodes]
    ys = [np.asarray(t)[f.scored_steps] for f, t in zip(episodes, targets)]
    return np.concatenate(xs), np.concatenate(ys)


def _folds(episodes: Sequence[EpisodeFeatures], folds: int, rng: np.random.Generator) -> np.ndarray:
    """A fold index per episode, drawn at random within each task (so every task is in every fold)."""
    fold = np.empty(len(episodes), dtype=np.int64)
    for task in sorted({f.task_id for f in episodes}):
        members = [i for i, f in enumerate(episodes) if f.task_id == task]
        fold[members] = rng.permutation(len(members)) % folds
    return fold


def cross_fitted(episodes: Sequence[EpisodeFeatures], view: str, folds: int = 2, seed: int = 0) -> list[np.ndarray]:
    """Per-episode predictions at the scored steps of a probe trained on the *other* folds' physics progress.

    Episodes are split into ``folds`` at random within each task. Within each training set, the ridge strength is
    chosen on half of its episodes after fitting the other half, then the probe is refitted on all of them.
    """
    if folds < 2:
        raise ConfigError(f"`folds` must be >= 2; got {folds!r}")
    rng = np.random.default_rng(seed)
    fold = _folds(episodes, folds, rng)
    out: list[np.ndarray] = [np.empty(0)] * len(episodes)
    for k in range(folds):
        train = [f for f, g in zip(episodes, fold) if g != k]
        inner = _folds(train, 2, rng)
        fit_part = [f for f, g in zip(train, inner) if g == 0]
        val_part = [f for f, g in zip(train, inner) if g == 1]
        alpha = DEFAULT_ALPHA  # too few episodes to hold some out: a middle strength
        if fit_part and val_part:
            alpha = choose_alpha(
                *stack(fit_part, view, [f.physics_progress for f in fit_part]),
                *stack(val_part, view, [f.physics_progress for f in val_part]),
            )
        x, y = stack(train, view, [f.physics_progress for f in train])
        probe = RidgeProbe(alpha).fit(x, y)
        for i in np.flatnonzero(fold == k):
            out[i] = probe.predict(view_features(episodes[i], view))
    return out
