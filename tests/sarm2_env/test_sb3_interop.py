"""Stable-Baselines3 interop: PPO trains on a reward-wrapped SARM2 env (flattened for its MultiInputPolicy)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from sarm2_env import FlattenPixels
from sarm2_env.constants import CAMERAS
from sarm2_env.errors import InputShapeError
from sarm2_env.wrapper import SARM2RewardWrapper


def _env(max_steps: int = 16) -> gym.Env:
    # 64 px: SB3's default image network needs at least 36 px; the oracle reward needs no checkpoint.
    base = gym.make("SARM2/CleanWhiteboard-v0", image_size=64, max_episode_steps=max_steps)
    return FlattenPixels(SARM2RewardWrapper(base, reward_model="oracle"))


def test_flatten_pixels_keeps_every_view():
    env = _env()
    try:
        assert set(env.observation_space.spaces) == {*CAMERAS, "agent_pos"}
        obs, info = env.reset(seed=0)
        assert env.observation_space.contains(obs)
        assert "sarm2/progress" in info
        obs2, *_ = env.step(env.unwrapped.home_action)
        assert env.observation_space.contains(obs2)
        for cam in CAMERAS:  # passed through, not copied or reordered
            assert obs2[cam] is env.unwrapped._last_pixels[cam]
    finally:
        env.close()


def test_flatten_pixels_rejects_other_observations():
    with pytest.raises(InputShapeError, match="FlattenPixels needs"):
        FlattenPixels(gym.make("CartPole-v1"))


def test_sb3_ppo_trains_on_a_wrapped_env():
    sb3 = pytest.importorskip("stable_baselines3")
    env = _env()
    try:
        model = sb3.PPO("MultiInputPolicy", env, n_steps=16, batch_size=16, n_epochs=1, seed=0, device="cpu")
        model.learn(total_timesteps=32)
        obs, info0 = env.reset(seed=1)
        action, _ = model.predict(obs, deterministic=True)
        assert action.shape == (14,) and np.all(np.isfinite(action))
        # The reward PPO sees is the reward model's progress difference; the env's own is kept aside.
        _, reward, *_, info = env.step(action)
        assert "task_reward" in info
        assert reward == pytest.approx(info["sarm2/progress"] - info0["sarm2/progress"], abs=1e-6)
    finally:
        env.close()


def test_sb3_mlp_policy_on_the_state_mode_as_written():
    """The README's line, as written: PPO("MlpPolicy", SARM2RewardWrapper(gym.make(id, obs_mode="state")))."""
    sb3 = pytest.importorskip("stable_baselines3")
    from stable_baselines3 import PPO

    env = SARM2RewardWrapper(gym.make("SARM2/PullPlug-v0", obs_mode="state", max_episode_steps=8))
    try:
        model = PPO("MlpPolicy", env, n_steps=8, batch_size=8, n_epochs=1, seed=0, device="cpu")
        model.learn(total_timesteps=16)
        assert isinstance(model.policy, sb3.common.policies.ActorCriticPolicy)
        obs, info = env.reset(seed=1)
        action, _ = model.predict(obs, deterministic=True)
        assert action.shape == (14,) and 0.0 <= info["sarm2/progress"] <= 1.0
    finally:
        env.close()
