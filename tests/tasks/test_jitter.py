"""Camera-pose and lighting jitter (tasks/jitter.py): pixels change, physics and the seeded scene do not."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import tasks  # noqa: F401 - registers the ids
from sarm2_env.errors import ConfigError
from tasks.jitter import CAMERA_SHIFT_M, CAMERA_TILT_RAD

TASK = "SARM2/PullPlug-v0"


def _pixels(env, seed: int | None) -> tuple[dict[str, np.ndarray], np.ndarray]:
    obs, _ = env.reset(seed=seed)
    return obs["pixels"], env.unwrapped.data.qpos.copy()


def _differ(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> dict[str, float]:
    return {cam: float(np.abs(a[cam].astype(int) - b[cam].astype(int)).mean()) for cam in a}


@pytest.fixture(scope="module")
def envs():
    made = {
        "off": gym.make(TASK, image_size=32),
        "camera": gym.make(TASK, image_size=32, camera_jitter=1.0),
        "lighting": gym.make(TASK, image_size=32, lighting_jitter=1.0),
    }
    yield made
    for env in made.values():
        env.close()


def test_jitter_changes_every_view_and_nothing_else(envs):
    nominal, qpos = _pixels(envs["off"], 3)
    for kind in ("camera", "lighting"):
        pixels, jittered_qpos = _pixels(envs[kind], 3)
        np.testing.assert_array_equal(jittered_qpos, qpos)  # the same seeded scene
        assert all(d > 1.0 for d in _differ(nominal, pixels).values()), kind
    drawn = envs["camera"].unwrapped.jitter_drawn
    assert 0 < drawn["camera_shift_m"] <= CAMERA_SHIFT_M and 0 < drawn["camera_tilt_rad"] <= CAMERA_TILT_RAD
    assert envs["off"].unwrapped.jitter_drawn == {}
    # The physics does not see cameras or lights: the same actions give the same states.
    action = envs["off"].unwrapped.home_action
    for _ in range(3):
        a = envs["off"].step(action)[0]["agent_pos"]
        b = envs["camera"].step(action)[0]["agent_pos"]
        np.testing.assert_array_equal(a, b)


def test_jitter_is_seeded_and_redrawn_every_episode(envs):
    env = envs["lighting"]
    first, _ = _pixels(env, 5)
    again, _ = _pixels(env, 5)
    assert all(np.array_equal(first[c], again[c]) for c in first)
    following, _ = _pixels(env, None)  # the next episode of the same run: a new draw
    assert any(d > 0.5 for d in _differ(first, following).values())
    other, _ = _pixels(env, 6)
    assert any(d > 0.5 for d in _differ(first, other).values())


def test_jitter_starts_from_nominal_each_reset(envs):
    """Perturbations do not accumulate: a reset restores the nominal cameras before drawing anew."""
    env = envs["camera"].unwrapped
    nominal = gym.make(TASK, image_size=32).unwrapped
    try:
        for seed in range(5):
            env.reset(seed=seed)
            shift = np.abs(env.model.cam_pos - nominal.model.cam_pos).max()
            assert shift <= CAMERA_SHIFT_M + 1e-12
    finally:
        nominal.close()


@pytest.mark.parametrize("kwargs", [{"camera_jitter": -0.1}, {"lighting_jitter": 2}, {"camera_jitter": "1"}])
def test_bad_jitter_is_a_config_error(kwargs):
    name = next(iter(kwargs))
    with pytest.raises(ConfigError, match=f"`{name}` must be a number in \\[0, 1\\]"):
        gym.make(TASK, image_size=32, **kwargs)
