"""``make_env``: the canonical wrapper stack for a SARM2 task, optionally with a learned reward."""

from __future__ import annotations

from typing import Any

import gymnasium as gym


def make_env(task: str, reward_model: Any = None, reward_mode: str = "delta", **kwargs: Any) -> gym.Env:
    """``gym.make`` a SARM2 task (full id or short name), then wrap it with :class:`SARM2RewardWrapper` when
    ``reward_model`` is given (``"sarm2"`` = the shipped checkpoint, a checkpoint directory, or a model).

    ``kwargs`` go to the task (``image_size``, ``render_mode``, ``max_episode_steps``, ...).
    """
    from tasks import make_task_env

    env = make_task_env(task, **kwargs)
    if reward_model is None:
        return env
    from sarm2_env.wrapper import SARM2RewardWrapper

    return SARM2RewardWrapper(env, reward_model=reward_model, mode=reward_mode)
