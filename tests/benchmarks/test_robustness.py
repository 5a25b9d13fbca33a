"""benchmarks/robustness.py: robustness sets paired by seed; failed wider-pose demos are left out and counted."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from benchmarks.pipeline import JITTER, POSES
from benchmarks.robustness import robustness_lines, robustness_table


def _episode(seed: int, success: bool = True, task: str = "SARM2/PullPlug-v0", length: int = 11):
    steps = np.arange(0, length, 5)
    return SimpleNamespace(
        episode_id=f"{task}-{seed}",
        task_id=task,
        seed=seed,
        success=success,
        length=length,
        scored_steps=steps,
        physics_progress=np.linspace(0.0, 1.0 if success else 0.4, length),
    )


def _state_and_predictions(prefix: str, copy_success: list[bool]):
    plain = [_episode(seed) for seed in (0, 1, 2)]
    copies = [_episode(seed, ok) for seed, ok in zip((0, 1, 2), copy_success)]
    features = {"heldout_demos": plain, f"{prefix}heldout_demos": copies}
    results = {}
    for split, episodes, error in (("heldout_demos", plain, 0.1), (f"{prefix}heldout_demos", copies, 0.3)):
        for f in episodes:
            results[f"{split}|{f.episode_id}"] = {"progress": np.linspace(0.0, 1.0, f.length) + error}
    return SimpleNamespace(features=features), {"sarm2": results}


def test_pairs_by_seed_and_reports_the_ratio() -> None:
    state, predictions = _state_and_predictions(JITTER, [True, True, True])
    entry = robustness_table(state, predictions)["sarm2"]["heldout_demos"]
    assert entry["episodes"] == 3 and entry["failed_demos_left_out"] == 0
    assert entry["nominal_mse"] == pytest.approx(0.01) and entry["jittered_mse"] == pytest.approx(0.09)
    assert entry["ratio"] == pytest.approx(9.0)
    assert robustness_table(state, predictions, POSES) == {}  # no wider-pose set in this run


def test_a_failed_wider_pose_demo_is_left_out_and_counted() -> None:
    state, predictions = _state_and_predictions(POSES, [True, False, True])
    entry = robustness_table(state, predictions, POSES)["sarm2"]["heldout_demos"]
    assert entry["episodes"] == 2 and entry["failed_demos_left_out"] == 1
    lines = "\n".join(robustness_lines({"sarm2": {"heldout_demos": entry}}, {}, 1.0, pose_range=2.0))
    assert "## Robustness: object poses 2x the training range" in lines
    assert "| sarm2 | heldout demos | 2 (1 failed demos left out) | 0.0100 | 0.0900 | 9.00" in lines
