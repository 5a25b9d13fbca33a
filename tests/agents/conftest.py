"""Fixtures of the agents tests: tiny synthetic rollouts and datasets."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest

from sarm2_env.constants import CAMERAS, NUM_PRIMITIVES, STATE_DIM
from sarm2_env.dataset import DatasetWriter, Episode


def make_rollout(
    length: int = 20,
    *,
    seed: int = 0,
    episode_id: str = "",
    progress: Sequence[float] | np.ndarray | None = None,
    size: int = 32,
) -> Episode:
    """A small valid episode with random 32x32 frames; ``progress`` defaults to a linear ramp."""
    rng = np.random.default_rng(seed)
    if progress is None:
        progress = np.linspace(0.0, 1.0, length)
    flags = np.zeros(length, dtype=bool)
    flags[-1] = bool(progress[-1] >= 1.0)
    return Episode.create(
        task_id="SARM2/FoldShorts-v0",
        instruction=f"fold the shorts #{seed}",
        seed=seed,
        skill=0.5,
        success=bool(flags[-1]),
        fps=10.0,
        episode_id=episode_id,
        state=rng.normal(size=(length, STATE_DIM)),
        action=rng.normal(size=(length, STATE_DIM)),
        primitive=rng.integers(0, NUM_PRIMITIVES, size=length),
        progress=progress,
        success_flags=flags,
        timestamp=np.arange(length) / 10.0,
        frames={cam: rng.integers(0, 256, size=(length, size, size, 3), dtype=np.uint8) for cam in CAMERAS},
    )


@pytest.fixture
def rollout_factory() -> Callable[..., Episode]:
    """``rollout_factory(length=20, seed=0, episode_id="", progress=None)`` -> a tiny :class:`Episode`."""
    return make_rollout


@pytest.fixture
def rollout_dataset(tmp_path: Path) -> Path:
    """A dataset of 3 rollouts ``ep0``, ``ep1``, ``ep2`` of 20 frames each (random 32x32 frames)."""
    root = tmp_path / "rollouts"
    with DatasetWriter(root, compress=False) as writer:
        for i in range(3):
            writer.add(make_rollout(20, seed=i, episode_id=f"ep{i}"))
    return root
