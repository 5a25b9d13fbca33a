"""Action validation and the action / observation spaces shared by the simulated tasks and the real station (both
take the same 14-d action and give the same observations)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from sarm2_env.constants import ACTION_DIM, CAMERAS, STATE_DIM
from sarm2_env.errors import InvalidActionError

if TYPE_CHECKING:
    from gymnasium import spaces

#: Slack (rad) of the ``agent_pos`` bounds beyond the joint limits.
JOINT_OVERSHOOT = 0.2


def numeric_array(value: Any, expected: str) -> np.ndarray:
    """``value`` as a float64 array; :class:`InvalidActionError` ``"<expected>; got <value>"`` where it is not
    numeric."""
    try:
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidActionError(f"{expected}; got {value!r:.200}") from exc


def check_action(action: Any) -> np.ndarray:
    """``action`` as a float64 ``(14,)`` array; :class:`InvalidActionError` for a non-numeric value, a wrong
    shape or NaN/inf (naming the bad indices). Clipping to joint limits is left to the caller."""
    arr = numeric_array(action, f"`action` must be a numeric array of shape ({ACTION_DIM},)")
    if arr.shape != (ACTION_DIM,):
        raise InvalidActionError(
            f"`action` must have shape ({ACTION_DIM},) (2 x [6 joint targets in rad, gripper in [0, 1]]); "
            f"got shape {arr.shape}"
        )
    if not np.all(np.isfinite(arr)):
        bad = np.flatnonzero(~np.isfinite(arr)).tolist()
        raise InvalidActionError(f"`action` must be finite; got NaN/inf at indices {bad}")
    return arr


def station_spaces(low: np.ndarray, high: np.ndarray, height: int, width: int) -> tuple[spaces.Box, spaces.Dict]:
    """The action space, a float32 Box between the 14-d bounds ``low`` and ``high`` (per arm: 6 joint limits in
    rad, then the gripper's [0, 1]), and the observation space: each camera's ``height x width`` RGB image under
    ``pixels`` and the joint state ``agent_pos``."""
    from gymnasium import spaces

    action_space = spaces.Box(low, high, shape=(ACTION_DIM,), dtype=np.float32)
    margin = np.insert(np.full(12, JOINT_OVERSHOOT, dtype=np.float32), [6, 12], 0.0)
    image = spaces.Box(0, 255, shape=(height, width, 3), dtype=np.uint8)
    observation_space = spaces.Dict(
        {
            "pixels": spaces.Dict({cam: image for cam in CAMERAS}),
            # Measured joints can overshoot a limit they are driven into (soft limits in simulation, motor
            # compliance on the real arm), so the state space is wider than the action space.
            "agent_pos": spaces.Box(low - margin, high + margin, shape=(STATE_DIM,), dtype=np.float32),
        }
    )
    return action_space, observation_space
