"""The real bimanual YAM + D405 station behind the simulated tasks' Gymnasium API.

``RealStationEnv`` has exactly the observation / action spaces and info keys of the ``SARM2/*`` tasks, so
``SARM2RewardWrapper``, the benchmark's evaluation loop and SPIRAL run on hardware unchanged::

    from real import RealStationEnv
    from sarm2_env.policy import act_once
    with RealStationEnv("real/configs/yam_station.yaml", task="fold the shorts") as env:
        obs, info = env.reset()
        policy.reset([info["task"]])  # the same Policy interface as in simulation (sarm2_env.policy)
        obs, reward, terminated, truncated, info = env.step(act_once(policy, obs))

Modules: :mod:`real.config` (strict YAML station config), :mod:`real.arm` (``YAMArm`` / ``LeaderArm`` over the
``i2rt`` SDK), :mod:`real.camera` (``D405Camera`` over ``pyrealsense2``), :mod:`real.safety` (filter, e-stop,
watchdog), :mod:`real.env`, :mod:`real.record` (teleop / rollout recording CLI), :mod:`real.emulation`
(hardware-free station: emulated CAN bus + recorded camera streams).

Importing this package is cheap: ``pyrealsense2``, ``python-can`` and ``i2rt`` load on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "RealStationEnv": "real.env",
    "StationConfig": "real.config",
    "ArmConfig": "real.config",
    "CameraConfig": "real.config",
    "LeaderConfig": "real.config",
    "SafetyConfig": "real.config",
    "LabelConfig": "real.config",
    "load_station_config": "real.config",
    "YAMArm": "real.arm",
    "LeaderArm": "real.arm",
    "D405Camera": "real.camera",
    "SafetyFilter": "real.safety",
    "SafetySupervisor": "real.safety",
    "OperatorLabels": "real.labels",
    "Policy": "sarm2_env.policy",
    "LeaderPolicy": "real.policy",
    "HoldPolicy": "real.policy",
    "EmulatedStation": "real.emulation",
    "record_episode": "real.record",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'real' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
