"""Policies for the real station: holding still, and teleoperation as a policy.

Both follow the toolkit's one policy interface, :class:`sarm2_env.policy.Policy` (``reset(instructions)`` and a
batched ``act(observations) -> (N, 14)``; ``N = 1`` on the station), as SPIRAL's policies do, so a policy trained in
simulation runs here unchanged. A model with only ``predict(obs)`` returning an action or a chunk ``(k, 14)`` (a VLA
client, say) runs through :class:`sarm2_env.policy.PredictPolicy`; ``real.record --policy`` wraps it by itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from real.arm import LeaderArm
from sarm2_env.constants import ARMS
from sarm2_env.errors import InvalidActionError
from sarm2_env.policy import Policy, PredictPolicy, action_chunk, as_policy

__all__ = ["HoldPolicy", "LeaderPolicy", "Policy", "PredictPolicy", "action_chunk", "as_policy"]


class _Stateless:
    """``reset`` of a policy that keeps no per-episode state."""

    def reset(self, instructions: Sequence[str], indices: Sequence[int] | None = None) -> None:
        """Nothing to forget between episodes."""


class HoldPolicy(_Stateless):
    """Holds the current pose: the action is the observed ``agent_pos`` (a safe default and a dry-run policy)."""

    def act(self, observations: Mapping[str, Any]) -> np.ndarray:
        """``(N, 14)``: each env's observed joint positions."""
        return np.asarray(observations["agent_pos"], dtype=np.float32).copy()


class LeaderPolicy(_Stateless):
    """Teleoperation as a policy: the action is the two leader arms' poses (left then right), as GELLO does.

    Args:
        leaders: ``{"left": LeaderArm, "right": LeaderArm}``, opened.
    """

    def __init__(self, leaders: Mapping[str, LeaderArm]) -> None:
        missing = [a for a in ARMS if a not in leaders]
        if missing:
            raise InvalidActionError(f"`leaders` must have arms {list(ARMS)}; missing {missing}")
        self.leaders = dict(leaders)

    def act(self, observations: Mapping[str, Any]) -> np.ndarray:
        """``(N, 14)``: the leaders' poses (one station, so every row is the same)."""
        pose = np.concatenate([self.leaders[a].read() for a in ARMS]).astype(np.float32)
        return np.tile(pose, (len(np.asarray(observations["agent_pos"])), 1))
