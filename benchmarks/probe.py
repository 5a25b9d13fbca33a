"""A privileged linear probe: how much task progress the frozen frame embeddings carry at all.

Ridge regression from one camera's (or every camera's) frozen embedding to progress. Trained on what no reward
model may see (the physics progress of rollouts), it is an **upper bound** on what a model reading those
features could reach, never a baseline: a probe that cannot fit the rollouts' progress says the features, not the
model, miss the failure signal.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rewards.data import EpisodeFeatures
from sarm2_env.constants import CAMERAS
from sarm2_env.errors import ConfigError

#: Feature sets the probe is fitted on: each camera alone, and all cameras concatenated.
VIEWS: tuple[str, ...] = (*CAMERAS, "all")


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
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        self.mean, self.scale = x.mean(0), np.maximum(x.std(0), 1e-6)
        z = (x - self.mean) / self.scale
        self.bias = float(y.mean())
        gram = z.T @ z + self.alpha * np.eye(z.shape[1])
        self.weights = np.linalg.solve(gram, z.T @ (y - self.bias))
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        if self.weights is None:
            raise RuntimeError("call fit() before predict()")
        z = (np.asarray(x, dtype=np.float64) - self.mean) / self.scale
        return np.clip(z @ self.weights + self.bias, 0.0, 1.0)


def view_features(feats: EpisodeFeatures, view: str, steps: np.ndarray | None = None) -> np.ndarray:
    """``(N, D)`` (one camera) or ``(N, C * D)`` (``"all"``) embeddings at ``steps`` (default: the scored steps)."""
    steps = feats.scored_steps if steps is None else steps
    emb = feats.embeddings[steps]  # (N, C, D)
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


def cross_fitted(
    episodes: Sequence[EpisodeFeatures], view: str, folds: int = 2, alpha: float = 10.0, seed: int = 0
) -> list[np.ndarray]:
    """Per-episode predictions at the scored steps of a probe trained on the *other* folds' physics progress.

    Episodes are split into ``folds`` at random within each task, so every task is in every training fold.
    """
    if folds < 2:
        raise ConfigError(f"`folds` must be >= 2; got {folds!r}")
    rng = np.random.default_rng(seed)
    fold = np.empty(len(episodes), dtype=np.int64)
    for task in sorted({f.task_id for f in episodes}):
        members = [i for i, f in enumerate(episodes) if f.task_id == task]
        fold[members] = rng.permutation(len(members)) % folds
    out: list[np.ndarray] = [np.empty(0)] * len(episodes)
    for k in range(folds):
        train = [f for f, g in zip(episodes, fold) if g != k]
        x, y = stack(train, view, [f.physics_progress for f in train])
        probe = RidgeProbe(alpha).fit(x, y)
        for i in np.flatnonzero(fold == k):
            out[i] = probe.predict(view_features(episodes[i], view))
    return out
