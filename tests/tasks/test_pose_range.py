"""The ``pose_range`` env option (tasks/base.py): 1 is the registered task, 0 the nominal scene, 2 wider poses."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import tasks
from sarm2_env.errors import ConfigError
from tasks.pull_plug import SOCKET_CENTER


def _reset_state(task: str, seed: int, **kwargs) -> np.ndarray:
    env = gym.make(task, obs_mode="state", **kwargs)
    try:
        obs, _ = env.reset(seed=seed)
    finally:
        env.close()
    return np.asarray(obs)


@pytest.mark.parametrize("task", tasks.TASKS)
def test_pose_range_one_is_the_registered_task_and_zero_the_nominal_scene(task: str) -> None:
    default = _reset_state(task, 5)
    assert np.array_equal(_reset_state(task, 5, pose_range=1.0), default)
    nominal = [_reset_state(task, seed, pose_range=0.0) for seed in (5, 6)]
    assert not np.array_equal(nominal[0], default)  # every task draws some pose at the registered range
    if task not in ("SARM2/SweepPaperScraps-v0", "SARM2/CleanWhiteboard-v0", "SARM2/CoilHeadphones-v0"):
        # Tasks whose only draws are poses (the others also draw scraps, ink strokes or a cable's radius; plates and
        # tableware also draw yaws over the whole turn, which the state shows as quaternions).
        np.testing.assert_allclose(nominal[0][:14], nominal[1][:14])


def _socket_offsets(pose_range: float, seeds: range) -> np.ndarray:
    env = gym.make("SARM2/PullPlug-v0", obs_mode="state", pose_range=pose_range)
    base = env.unwrapped
    offsets = []
    for seed in seeds:
        env.reset(seed=seed)
        adr = base._socket_qadr
        offsets.append(base.data.qpos[adr : adr + 2] - SOCKET_CENTER)
    env.close()
    return np.asarray(offsets)


def test_pose_range_scales_the_object_ranges() -> None:
    seeds = range(40)
    registered, wide, nominal = (_socket_offsets(r, seeds) for r in (1.0, 2.0, 0.0))
    # PullPlug's socket: +-3 cm in x, +-2 cm in y as registered; the same draws doubled at 2, none at 0.
    assert np.abs(registered).max(axis=0) == pytest.approx([0.03, 0.02], abs=0.004)
    assert np.all(np.abs(registered) <= [0.03, 0.02])
    np.testing.assert_allclose(wide, 2.0 * registered, atol=1e-9)
    np.testing.assert_allclose(nominal, 0.0, atol=1e-9)


def test_pose_range_widens_cloth_placement() -> None:
    def centre(pose_range: float, seed: int) -> np.ndarray:
        env = gym.make("SARM2/FoldShorts-v0", obs_mode="state", pose_range=pose_range)
        env.reset(seed=seed)
        vertices = env.unwrapped.vertices()
        env.close()
        return vertices[:, :2].mean(axis=0)

    flat = centre(0.0, 0)
    for seed in (1, 2):
        np.testing.assert_allclose(centre(0.0, seed), flat, atol=1e-9)
        np.testing.assert_allclose(centre(2.0, seed) - flat, 2.0 * (centre(1.0, seed) - flat), atol=1e-9)


@pytest.mark.parametrize("bad", [-0.1, 2.5, "1", True, float("nan")])
def test_pose_range_refuses_bad_values(bad) -> None:
    with pytest.raises(ConfigError, match="`pose_range` must be a number in \\[0, 2\\]"):
        gym.make("SARM2/PullPlug-v0", obs_mode="state", pose_range=bad)
