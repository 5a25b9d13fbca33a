"""Gymnasium-facing side of the sarm2 toolkit.

Importing this package is cheap: constants and errors load eagerly, everything that needs torch
or MuJoCo loads on first attribute access.
"""

from __future__ import annotations

from sarm2_env.constants import CAMERAS, PRIMITIVES, STATE_DIM
from sarm2_env.errors import ConfigError, DatasetError, InvalidActionError, SARM2Error, UnknownNameError

__all__ = [
    "CAMERAS",
    "PRIMITIVES",
    "STATE_DIM",
    "ConfigError",
    "DatasetError",
    "InvalidActionError",
    "SARM2Error",
    "UnknownNameError",
    "make_env",
]


def __getattr__(name: str):  # lazy heavy imports
    if name == "make_env":
        from tasks import make_env

        return make_env
    raise AttributeError(f"module 'sarm2_env' has no attribute {name!r}")
