"""Cached scripted-expert rollouts and the checks every task's expert must pass (shared by task tests)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import gymnasium as gym
import numpy as np

import tasks
from sarm2_env.constants import PRIMITIVES
from tasks.expert import run_expert_episode

#: Rendering does not change the physics; small images keep expert tests fast.
IMAGE_SIZE = 32

_ENVS: dict[str, gym.Env] = {}


def shared_env(task_id: str) -> gym.Env:
    """One env per task id for the whole session (``reset(seed=...)`` before use)."""
    if task_id not in _ENVS:
        _ENVS[task_id] = gym.make(task_id, image_size=IMAGE_SIZE)
    return _ENVS[task_id]


def close_shared_envs() -> None:
    for env in _ENVS.values():
        env.close()
    _ENVS.clear()
    expert_rollout.cache_clear()


@dataclass(frozen=True)
class Rollout:
    """One expert episode: the reset info, then one action and one info per step."""

    reset_info: dict
    actions: tuple[np.ndarray, ...]
    infos: tuple[dict, ...]

    @property
    def final(self) -> dict:
        return self.infos[-1]

    def series(self, key: str) -> np.ndarray:
        """``info[key]`` over the episode's steps."""
        return np.array([info[key] for info in self.infos], dtype=float)


@cache
def expert_rollout(
    task_id: str, seed: int, skill: float, expert_seed: int | None = None, max_steps: int | None = None
) -> Rollout:
    """The expert's episode on ``task_id`` (cached per arguments; rerun with ``expert_rollout.__wrapped__``)."""
    env = shared_env(task_id)
    expert = tasks.make_expert(env, skill=skill)
    items = list(run_expert_episode(env, expert, seed=seed, expert_seed=expert_seed, max_steps=max_steps))
    assert items[0][1] is None  # the first item is the reset observation
    return Rollout(items[0][3], tuple(a for _, a, _, _ in items[1:]), tuple(i for *_, i in items[1:]))


def check_full_skill_rollout(task_id: str, ep: Rollout, seed: int) -> None:
    """What a full-skill expert episode must look like on every task."""
    env = shared_env(task_id)
    assert ep.final["success"] is True, f"seed {seed}: final progress {ep.final['progress']:.3f}"
    assert ep.final["progress"] >= 0.9
    assert len(ep.infos) >= 50
    assert len(ep.infos) < env.unwrapped.max_episode_steps  # ends on success, not on the time limit
    assert "primitive" not in ep.reset_info
    for k, info in enumerate(ep.infos):
        assert info.get("primitive") in PRIMITIVES, f"step {k}: {info.get('primitive')!r}"
        assert 0.0 <= info["progress"] <= 1.0
    for action in ep.actions:
        assert env.action_space.contains(action)
    # Only the last step is a success (the episode terminates on it).
    assert not any(info["success"] for info in ep.infos[:-1])


def check_declared_primitives(task_id: str, ep: Rollout) -> None:
    """The episode uses exactly the expert's declared primitives (plus ``dummy``), in segments."""
    declared = type(tasks.make_expert(shared_env(task_id))).PRIMITIVES
    used = {info["primitive"] for info in ep.infos}
    assert declared, "the expert declares its PRIMITIVES"
    assert declared <= used, f"declared but unused: {sorted(declared - used)}"
    assert used <= declared | {"dummy"}, f"used but undeclared: {sorted(used - declared - {'dummy'})}"
    labels = [info["primitive"] for info in ep.infos]
    changes = sum(a != b for a, b in zip(labels, labels[1:]))
    assert changes < len(labels) / 5  # contiguous segments, not flicker
