"""Gymnasium-facing side of the sarm2 toolkit.

Importing this package is cheap: constants and errors load eagerly, everything that needs torch
or MuJoCo (``make_env``, ``SARM2RewardWrapper``) loads on first attribute access.
"""

from __future__ import annotations

from sarm2_env.constants import CAMERAS, PRIMITIVES, STATE_DIM
from sarm2_env.errors import (
    CheckpointError,
    ConfigError,
    DatasetError,
    InputShapeError,
    InvalidActionError,
    NonFiniteError,
    SARM2Error,
    UnknownNameError,
    WeightsNotFoundError,
)

__all__ = [
    "CAMERAS",
    "PRIMITIVES",
    "STATE_DIM",
    "CheckpointError",
    "ConfigError",
    "DatasetError",
    "FlattenPixels",
    "InputShapeError",
    "InvalidActionError",
    "NonFiniteError",
    "SARM2Error",
    "SARM2RewardWrapper",
    "UnknownNameError",
    "WeightsNotFoundError",
    "make_env",
]


def __getattr__(name: str):  # lazy heavy imports
    if name == "make_env":
        from sarm2_env.make import make_env

        return make_env
    if name == "FlattenPixels":
        from sarm2_env.flatten import FlattenPixels

        return FlattenPixels
    if name == "SARM2RewardWrapper":
        from sarm2_env.wrapper import SARM2RewardWrapper

        return SARM2RewardWrapper
    raise AttributeError(f"module 'sarm2_env' has no attribute {name!r}")
