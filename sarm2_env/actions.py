"""Action validation shared by the simulated tasks and the real station (both take the same 14-d action)."""

from __future__ import annotations

from typing import Any

import numpy as np

from sarm2_env.constants import ACTION_DIM
from sarm2_env.errors import InvalidActionError


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
