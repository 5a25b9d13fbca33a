"""Typed errors of the real-station backend. Each names what was expected and what was found.

Everything here subclasses :class:`sarm2_env.errors.SARM2Error`, so ``except SARM2Error`` in a script catches
hardware problems too. Configuration mistakes raise :class:`sarm2_env.errors.ConfigError` and malformed actions
:class:`sarm2_env.errors.InvalidActionError`, exactly as in simulation.
"""

from __future__ import annotations

from sarm2_env.errors import SARM2Error


class RealStationError(SARM2Error):
    """Base class of the errors raised by :mod:`real`."""


class MissingDependencyError(RealStationError, ImportError):
    """An optional package the real station needs (``pyrealsense2``, ``python-can``, ``i2rt``) is not installed."""


class HardwareNotFoundError(RealStationError):
    """A CAN channel or camera serial named in the station config is not present on this machine."""


class MotorNotRespondingError(RealStationError):
    """A motor did not answer on its CAN channel during bring-up (power, E-stop, wiring or CAN id)."""


class MotorFaultError(RealStationError):
    """A motor reported an error, the SDK's motor loop died, or the arm was used after a fault."""


class StartupCheckError(RealStationError):
    """The SDK's motor start-up checks (motor type, control mode, scaling registers) refused the chain."""


class CameraError(RealStationError):
    """A camera could not be opened, stopped delivering frames, or was disconnected."""


class StaleFrameError(CameraError):
    """The newest frame of a camera is older than the allowed age."""


class EStopActiveError(RealStationError):
    """The software emergency stop is engaged; release it (``env.release_estop()``) before resetting."""


class SafetyStopError(RealStationError):
    """The station was stopped by its watchdog and cannot continue without a reset."""
