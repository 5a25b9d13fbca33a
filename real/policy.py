"""Policies for the real station: the minimal ``Policy`` protocol and teleoperation as a policy.

The station runs anything with ``predict(obs) -> action``, where the action is one 14-d absolute joint target or
an action chunk ``(k, 14)`` executed in order: a BC policy, a VLA client and :class:`LeaderPolicy` fit. SPIRAL's
policies follow :class:`agents.policy.Policy` (``reset`` and a batched ``act``); one protocol for both is planned.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

import numpy as np

from real.arm import LeaderArm
from sarm2_env.constants import ACTION_DIM, ARMS
from sarm2_env.errors import InvalidActionError

__all__ = ["HoldPolicy", "LeaderPolicy", "Policy", "action_chunk"]


@runtime_checkable
class Policy(Protocol):
    """Maps an observation (``{"pixels": ..., "agent_pos": ...}``) to an action ``(14,)`` or a chunk ``(k, 14)``."""

    def predict(self, obs: Mapping[str, Any]) -> np.ndarray: ...


def action_chunk(output: Any) -> np.ndarray:
    """A policy's output as a chunk ``(k, 14)`` of actions (a single action becomes ``k = 1``)."""
    try:
        arr = np.asarray(output, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidActionError(
            f"a policy must return numbers of shape (14,) or (k, 14); got {output!r:.200}"
        ) from exc
    if arr.ndim == 1:
        arr = arr[None]
    if arr.ndim != 2 or arr.shape[1] != ACTION_DIM or arr.shape[0] < 1:
        raise InvalidActionError(f"a policy must return shape ({ACTION_DIM},) or (k, {ACTION_DIM}); got {arr.shape}")
    return arr


class HoldPolicy:
    """Holds the current pose: the action is the observed ``agent_pos`` (a safe default and a dry-run policy)."""

    def predict(self, obs: Mapping[str, Any]) -> np.ndarray:
        return np.asarray(obs["agent_pos"], dtype=np.float32).copy()


class LeaderPolicy:
    """Teleoperation as a policy: the action is the two leader arms' poses (left then right), as GELLO does.

    Args:
        leaders: ``{"left": LeaderArm, "right": LeaderArm}``, opened.
    """

    def __init__(self, leaders: Mapping[str, LeaderArm]) -> None:
        missing = [a for a in ARMS if a not in leaders]
        if missing:
            raise InvalidActionError(f"`leaders` must have arms {list(ARMS)}; missing {missing}")
        self.leaders = dict(leaders)

    def predict(self, obs: Mapping[str, Any]) -> np.ndarray:
        return np.concatenate([self.leaders[a].read() for a in ARMS]).astype(np.float32)
