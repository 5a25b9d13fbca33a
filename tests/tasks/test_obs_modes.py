"""Observation modes of the task envs (tasks/base.py): pixels (default), state, pixels+state."""

from __future__ import annotations

import re
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces
from gymnasium.utils.env_checker import check_env

import tasks
from sarm2_env.constants import CAMERAS, STATE_DIM
from sarm2_env.errors import UnknownNameError

TASK_IDS = sorted(tasks.TASKS)


@pytest.mark.parametrize("task_id", TASK_IDS)
def test_state_mode_passes_check_env_and_renders_nothing(task_id, monkeypatch):
    env = gym.make(task_id, image_size=32, obs_mode="state")
    try:
        u = env.unwrapped
        space = env.observation_space
        assert isinstance(space, spaces.Box) and space.dtype == np.float32 and space.shape[0] > STATE_DIM
        assert space.shape[0] == sum(n for _, n in u.state_layout) and u.state_layout[0] == ("agent_pos", STATE_DIM)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. "use a symmetric and normalized action space"
            check_env(u, skip_render_check=True)

        def no_render(*_):
            raise AssertionError("rendered in obs_mode='state'")

        monkeypatch.setattr(u, "_render_pixels", no_render)
        obs, info = env.reset(seed=3)
        for _ in range(3):
            obs, *_ = env.step(u.home_action)
        assert space.contains(obs)
        np.testing.assert_array_equal(obs[:STATE_DIM], u.agent_pos())  # joints first, as agent_pos
        monkeypatch.undo()
        views = u.render_views()  # rendered on request, e.g. for a reward wrapper
        assert set(views) == set(CAMERAS) and views["top"].shape == (32, 32, 3)
    finally:
        env.close()


@pytest.mark.parametrize("task_id", TASK_IDS)
def test_pixels_plus_state_carries_the_same_state_and_pixels(task_id):
    both = gym.make(task_id, image_size=32, obs_mode="pixels+state")
    state = gym.make(task_id, image_size=32, obs_mode="state")
    pixels = gym.make(task_id, image_size=32)
    try:
        a, _ = both.reset(seed=5)
        b, _ = state.reset(seed=5)
        c, _ = pixels.reset(seed=5)
        assert both.observation_space.contains(a) and set(a) == {"pixels", "agent_pos", "state"}
        for _ in range(2):
            action = pixels.unwrapped.home_action
            a, *_ = both.step(action)
            b, *_ = state.step(action)
            c, *_ = pixels.step(action)
        np.testing.assert_array_equal(a["state"], b)  # seeded determinism across modes
        for cam in CAMERAS:
            np.testing.assert_array_equal(a["pixels"][cam], c["pixels"][cam])
        np.testing.assert_array_equal(state.unwrapped.render_views()["top"], c["pixels"]["top"])
    finally:
        for env in (both, state, pixels):
            env.close()


def test_state_tracks_the_task_objects():
    """The privileged state moves with the scene: here the ink left on the board and the eraser's pose."""
    env = gym.make("SARM2/CleanWhiteboard-v0", image_size=32, obs_mode="state")
    try:
        u = env.unwrapped
        obs, _ = env.reset(seed=0)
        offsets = {}
        start = 0
        for name, n in u.state_layout:
            offsets[name] = slice(start, start + n)
            start += n
        ink = obs[offsets["ink_remaining"]]
        assert ink.shape == (72,) and ink.sum() == u._inked.sum() > 0
        np.testing.assert_allclose(obs[offsets["eraser_free/pos"]], u.data.qpos[u._eraser_qadr : u._eraser_qadr + 3])
        assert obs[offsets["eval/ink_cleared"]][0] == pytest.approx(u.ink_cleared())
        other, _ = env.reset(seed=1)
        assert not np.array_equal(other[offsets["ink_remaining"]], ink)  # another seed, other strokes
    finally:
        env.close()


def test_first_unseeded_reset_is_not_the_probes_seed():
    """Building the state space probes a reset; it must not leave the env seeded."""
    firsts = []
    for _ in range(2):
        env = gym.make("SARM2/PullPlug-v0", image_size=32, obs_mode="state")
        env.observation_space  # noqa: B018 - triggers the probe
        firsts.append(env.reset()[0])
        env.close()
    assert not np.array_equal(firsts[0], firsts[1])


@pytest.mark.parametrize("task_id", TASK_IDS)
def test_every_task_card_documents_its_state_vector(task_id):
    env = gym.make(task_id, image_size=32, obs_mode="state")
    u = env.unwrapped
    doc = type(u).__doc__
    assert '**State** (``obs_mode="state"``' in doc
    assert f"{env.observation_space.shape[0]} values" in doc
    for name, _ in u.state_layout:
        documented = re.sub(r"scrap_\d+", "scrap_<k>", name)
        assert f"``{documented}``" in doc, name
    env.close()


def test_unknown_obs_mode_names_the_field_and_suggests():
    with pytest.raises(UnknownNameError, match=r"obs_mode 'states'.*Did you mean 'state'"):
        gym.make("SARM2/PullPlug-v0", obs_mode="states")
