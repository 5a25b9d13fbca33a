"""Station configuration: frozen dataclasses loaded strictly from YAML.

A station file (example: ``real/configs/yam_station.yaml``) has these top-level keys::

    control_hz: 30                 # policy / teleop loop rate (Hz)
    image_size: [128, 128]         # observation images, (height, width) or one int
    arms:    {left: ArmConfig, right: ArmConfig}
    cameras: {top: CameraConfig, left_wrist: CameraConfig, right_wrist: CameraConfig}
    leaders: {left: LeaderConfig, right: LeaderConfig}   # optional: GELLO / teaching-handle leader arms
    safety:  SafetyConfig          # optional, defaults below
    labels:  LabelConfig           # optional, operator key bindings

Unknown keys, wrong types and out-of-range values raise :class:`~sarm2_env.errors.ConfigError` with a message of
the form "`arms.left.home` must be …; got …" before any bus is opened or motor moves. Joint limits are checked
against the arm model shipped with the ``i2rt`` SDK, so a limit the arm cannot reach is refused at load time.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
from collections.abc import Callable, Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from sarm2_env.constants import ARMS, CAMERAS, PRIMITIVES
from sarm2_env.errors import ConfigError

__all__ = [
    "ARM_TYPES",
    "CAN_INTERFACES",
    "DEFAULT_HOME",
    "FOLLOWER_GRIPPERS",
    "LEADER_HANDLES",
    "ArmConfig",
    "CameraConfig",
    "LabelConfig",
    "LeaderConfig",
    "SafetyConfig",
    "StationConfig",
    "arm_joint_range",
    "load_station_config",
]

#: Arm variants the ``i2rt`` SDK knows (``ArmType`` values, NO_ARM excluded).
ARM_TYPES: tuple[str, ...] = ("yam", "yam_pro", "yam_ultra", "yam_ultra_2", "big_yam")
#: Grippers a follower arm may carry: the env needs a gripper opening per arm.
FOLLOWER_GRIPPERS: tuple[str, ...] = ("linear_4310", "crank_4310", "linear_3507", "flexible_4310")
#: python-can interfaces: ``socketcan`` for the real station, ``virtual`` for the in-process emulated bus.
CAN_INTERFACES: tuple[str, ...] = ("socketcan", "virtual")
#: How a leader arm reports its gripper: I2RT teaching handle (passive encoder), a gripper motor, or not at all.
LEADER_HANDLES: tuple[str, ...] = ("teaching_handle", "gripper", "none")
#: Home pose of one arm: the simulated station's ``HOME_QPOS`` (tool 0.25 m in front of the base, 0.15 m up,
#: pointing down, gripper open).
DEFAULT_HOME: tuple[float, ...] = (0.0, 1.4929, 1.3617, -1.4395, 0.0, 0.0, 1.0)
ARM_JOINTS = 6


# ----------------------------------------------------------------------------------------------- arm range


@cache
def _arm_range_cached(arm_type: str) -> tuple[tuple[float, float], ...]:
    import xml.etree.ElementTree as ET

    try:
        from i2rt.robots.utils import ArmType
    except ImportError as exc:  # pragma: no cover - dreamscale-i2rt is a core dependency
        from real.errors import MissingDependencyError

        raise MissingDependencyError(
            "the YAM arm model comes from the i2rt SDK; install it with `pip install dreamscale-i2rt`"
        ) from exc
    path = ArmType.from_string_name(arm_type).get_xml_path()
    ranges: dict[str, tuple[float, float]] = {}
    for joint in ET.parse(path).getroot().iter("joint"):
        name, text = joint.get("name", ""), joint.get("range")
        if text and name.startswith("joint") and name not in ranges:
            lo, hi = (float(v) for v in text.split())
            ranges[name] = (lo, hi)
    return tuple(ranges[f"joint{i}"] for i in range(1, ARM_JOINTS + 1))


def arm_joint_range(arm_type: str = "yam") -> np.ndarray:
    """The 6 joint ranges ``(6, 2)`` in rad of ``arm_type``, from the arm model in the ``i2rt`` SDK.

    These are the ranges of the simulated station too (its MJCF comes from the same package), so the real and
    simulated action spaces agree.
    """
    if arm_type not in ARM_TYPES:
        raise ConfigError(f"`arm_type` must be one of {list(ARM_TYPES)}; got {arm_type!r}")
    return np.array(_arm_range_cached(arm_type), dtype=np.float64)


# ----------------------------------------------------------------------------------------------- parsers

Parser = Callable[[Any, str], Any]


def _fail(where: str, expected: str, value: Any) -> ConfigError:
    return ConfigError(f"`{where}` must be {expected}; got {value!r}")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _str(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise _fail(where, "a non-empty string", value)
    return value


def _bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise _fail(where, "true or false", value)
    return value


def _float(value: Any, where: str) -> float:
    if not _is_number(value) or not math.isfinite(float(value)):
        raise _fail(where, "a finite number", value)
    return float(value)


def _int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(where, "an integer", value)
    return int(value)


def _floats(n: int) -> Parser:
    def parse(value: Any, where: str) -> tuple[float, ...]:
        if (
            not isinstance(value, Sequence)
            or isinstance(value, str)
            or len(value) != n
            or not all(_is_number(v) and math.isfinite(float(v)) for v in value)
        ):
            raise _fail(where, f"a list of {n} finite numbers", value)
        return tuple(float(v) for v in value)

    return parse


def _pairs(n: int) -> Parser:
    pair = _floats(2)

    def parse(value: Any, where: str) -> tuple[tuple[float, float], ...]:
        if not isinstance(value, Sequence) or isinstance(value, str) or len(value) != n:
            raise _fail(where, f"a list of {n} [low, high] pairs", value)
        return tuple(pair(v, f"{where}[{i}]") for i, v in enumerate(value))

    return parse


def _strs(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, Sequence) or isinstance(value, str) or not all(isinstance(v, str) for v in value):
        raise _fail(where, "a list of strings", value)
    return tuple(value)


def _str_map(value: Any, where: str) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, Mapping) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise _fail(where, "a mapping of strings to strings", value)
    return tuple((str(k), str(v)) for k, v in value.items())


def _optional(parser: Parser) -> Parser:
    def parse(value: Any, where: str) -> Any:
        return None if value is None else parser(value, where)

    return parse


def _image_size(value: Any, where: str) -> tuple[int, int]:
    size = (value, value) if isinstance(value, int) and not isinstance(value, bool) else value
    if (
        not isinstance(size, Sequence)
        or isinstance(size, str)
        or len(size) != 2
        or not all(isinstance(s, int) and not isinstance(s, bool) and 16 <= s <= 1024 for s in size)
    ):
        raise _fail(where, "an int or [height, width] with values in [16, 1024]", value)
    return int(size[0]), int(size[1])


def _field(default: Any = dataclasses.MISSING, parse: Parser | None = None, **kw: Any) -> Any:
    meta = {"parse": parse} if parse is not None else {}
    if default is dataclasses.MISSING:
        return dataclasses.field(metadata=meta, **kw)
    return dataclasses.field(default=default, metadata=meta, **kw)


def _check_keys(data: Any, cls: type, where: str) -> dict[str, Any]:
    known = [f.name for f in dataclasses.fields(cls) if f.init and not f.name.startswith("_")]
    if not isinstance(data, Mapping):
        raise _fail(where or cls.__name__, f"a mapping with keys from {known}", data)
    for key in data:
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"`{where or cls.__name__}` must have keys from {known}; got unknown key {key!r}{hint}")
    return dict(data)


def _build(cls: type, data: Any, where: str, **extra: Any) -> Any:
    """``cls(**data)`` with every value parsed by its field's parser and errors prefixed with ``where``."""
    data = _check_keys(data, cls, where)
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name in data:
            parse = f.metadata.get("parse")
            value = data[f.name]
            kwargs[f.name] = parse(value, f"{where}.{f.name}" if where else f.name) if parse else value
    missing = [
        f.name
        for f in dataclasses.fields(cls)
        if f.init
        and f.name not in kwargs
        and f.name not in extra
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise ConfigError(f"`{where or cls.__name__}` must set {missing}; got keys {sorted(data)}")
    try:
        return cls(**kwargs, **extra)
    except ConfigError as exc:
        msg = str(exc)
        if where and msg.startswith("`"):
            msg = f"`{where}.{msg[1:]}"
        raise ConfigError(msg) from None


# ----------------------------------------------------------------------------------------------- configs


def _check_choice(name: str, value: str, choices: Sequence[str]) -> None:
    if value not in choices:
        raise ConfigError(f"`{name}` must be one of {list(choices)}; got {value!r}")


def _check_bus(channel: object, interface: str, arm_type: str) -> None:
    """The checks every arm on a CAN bus (follower or leader) shares: its channel, interface and arm type."""
    if not isinstance(channel, str) or not channel:
        raise ConfigError(f"`channel` must be a non-empty CAN interface name; got {channel!r}")
    _check_choice("interface", interface, CAN_INTERFACES)
    _check_choice("arm_type", arm_type, ARM_TYPES)


def _check_checks(check_types: bool, check_config: bool, allow_flash_write: bool) -> None:
    if check_config and not check_types:
        raise ConfigError(
            "`check_motor_config` must be false unless `check_motor_types` is true (the SDK refuses a config check "
            "on unverified motor types); got check_motor_config=true, check_motor_types=false"
        )
    if allow_flash_write and not check_config:
        raise ConfigError(
            "`allow_flash_write` must be false unless `check_motor_config` is true (only the config check writes "
            "motor flash); got allow_flash_write=true, check_motor_config=false"
        )


@dataclasses.dataclass(frozen=True)
class ArmConfig:
    """One follower YAM arm on its own CAN channel.

    Attributes:
        channel: CAN interface name (``ip link`` name, e.g. ``can_follower_l``).
        interface: python-can interface: ``socketcan`` on the station, ``virtual`` for the emulated bus.
        arm_type: ``i2rt`` arm variant (``yam``, ``yam_pro``, ``yam_ultra``, ``yam_ultra_2``, ``big_yam``).
        gripper_type: ``i2rt`` gripper variant; a follower needs one.
        gripper_limits: gripper motor positions ``[closed, open]`` in rad (measure once with ``calibrate_gripper``).
        calibrate_gripper: with ``gripper_limits: null``, let the SDK find the limits at every bring-up, which
            *moves the gripper* to both ends; pin the logged values in ``gripper_limits`` afterwards.
        joint_limits: 6 ``[low, high]`` pairs in rad, inside the arm's range; ``null`` = the full range.
        home: 7 values (6 joints in rad + gripper opening in [0, 1]) that ``reset()`` moves to.
        check_motor_types: run the SDK's read-only motor-type check (``Gr`` register) before bring-up.
        check_motor_config: read and compare the control-mode and scaling registers before bring-up.
        allow_flash_write: let the config check *repair* a wrong control mode by writing motor flash. Off by
            default: with it off a wrong control mode refuses the bring-up and nothing is written.
    """

    channel: str = _field(parse=_str)
    interface: str = _field("socketcan", parse=_str)
    arm_type: str = _field("yam", parse=_str)
    gripper_type: str = _field("linear_4310", parse=_str)
    gripper_limits: tuple[float, float] | None = _field(None, parse=_optional(_floats(2)))
    calibrate_gripper: bool = _field(False, parse=_bool)
    joint_limits: tuple[tuple[float, float], ...] | None = _field(None, parse=_optional(_pairs(ARM_JOINTS)))
    home: tuple[float, ...] = _field(DEFAULT_HOME, parse=_floats(ARM_JOINTS + 1))
    check_motor_types: bool = _field(True, parse=_bool)
    check_motor_config: bool = _field(True, parse=_bool)
    allow_flash_write: bool = _field(False, parse=_bool)

    def __post_init__(self) -> None:
        _check_bus(self.channel, self.interface, self.arm_type)
        _check_choice("gripper_type", self.gripper_type, FOLLOWER_GRIPPERS)
        if self.gripper_limits is None and not self.calibrate_gripper:
            raise ConfigError(
                "`gripper_limits` must be the gripper motor positions [closed, open] in rad, or null with "
                "calibrate_gripper: true (the SDK then finds them at bring-up by moving the gripper); got null"
            )
        if self.gripper_limits is not None and self.gripper_limits[0] == self.gripper_limits[1]:
            raise ConfigError(
                f"`gripper_limits` must be two different motor positions; got {list(self.gripper_limits)}"
            )
        _check_checks(self.check_motor_types, self.check_motor_config, self.allow_flash_write)
        arm_range = arm_joint_range(self.arm_type)
        limits = self.limits()
        for j, ((lo, hi), (rlo, rhi)) in enumerate(zip(limits, arm_range)):
            if not lo < hi:
                raise ConfigError(f"`joint_limits[{j}]` must have low < high; got [{lo}, {hi}]")
            if lo < rlo - 1e-6 or hi > rhi + 1e-6:
                raise ConfigError(
                    f"`joint_limits[{j}]` must lie inside the {self.arm_type} arm's range of joint{j + 1} "
                    f"[{rlo:.5f}, {rhi:.5f}] rad; got [{lo}, {hi}]"
                )
        home = np.asarray(self.home)
        outside = [j for j in range(ARM_JOINTS) if not limits[j, 0] <= home[j] <= limits[j, 1]]
        if outside:
            raise ConfigError(
                f"`home` must lie inside `joint_limits`; got joint(s) {[j + 1 for j in outside]} outside: "
                f"{[self.home[j] for j in outside]}"
            )
        if not 0.0 <= home[ARM_JOINTS] <= 1.0:
            raise ConfigError(f"`home[6]` (gripper opening) must be in [0, 1]; got {self.home[ARM_JOINTS]}")

    def limits(self) -> np.ndarray:
        """Joint limits ``(6, 2)`` in rad: the configured ones, or the arm's full range."""
        if self.joint_limits is None:
            return arm_joint_range(self.arm_type)
        return np.asarray(self.joint_limits, dtype=np.float64)


@dataclasses.dataclass(frozen=True)
class LeaderConfig:
    """A leader arm (GELLO-style YAM with a teaching handle) read over the same SDK for teleoperation.

    Attributes:
        channel / interface / arm_type: as for :class:`ArmConfig`.
        handle: ``teaching_handle`` (I2RT handle with a passive trigger encoder), ``gripper`` (a gripper motor,
            normalised with ``gripper_limits``) or ``none`` (the gripper command is ``gripper_default``).
        gripper_type / gripper_limits: the gripper motor when ``handle: gripper``.
        gripper_default: gripper opening reported when ``handle: none``.
        check_motor_types / check_motor_config / allow_flash_write: as for :class:`ArmConfig`.
    """

    channel: str = _field(parse=_str)
    interface: str = _field("socketcan", parse=_str)
    arm_type: str = _field("yam", parse=_str)
    handle: str = _field("teaching_handle", parse=_str)
    gripper_type: str = _field("linear_4310", parse=_str)
    gripper_limits: tuple[float, float] | None = _field(None, parse=_optional(_floats(2)))
    gripper_default: float = _field(1.0, parse=_float)
    check_motor_types: bool = _field(True, parse=_bool)
    check_motor_config: bool = _field(False, parse=_bool)
    allow_flash_write: bool = _field(False, parse=_bool)

    def __post_init__(self) -> None:
        _check_bus(self.channel, self.interface, self.arm_type)
        _check_choice("handle", self.handle, LEADER_HANDLES)
        if self.handle == "gripper":
            _check_choice("gripper_type", self.gripper_type, FOLLOWER_GRIPPERS)
            if self.gripper_limits is None or self.gripper_limits[0] == self.gripper_limits[1]:
                raise ConfigError(
                    "`gripper_limits` must be two different motor positions [closed, open] when `handle` is "
                    f"'gripper'; got {self.gripper_limits!r}"
                )
        if not 0.0 <= self.gripper_default <= 1.0:
            raise ConfigError(f"`gripper_default` must be in [0, 1]; got {self.gripper_default}")
        _check_checks(self.check_motor_types, self.check_motor_config, self.allow_flash_write)


@dataclasses.dataclass(frozen=True)
class CameraConfig:
    """One RealSense D405, opened by serial number.

    Attributes:
        serial: the camera's serial number as a *string* (quote it in YAML so leading zeros survive).
        width / height / fps: colour stream mode; the D405 default is 640 x 480 at 30 fps.
        playback_file: play this recording (``.db3`` from ``rs.recorder``, or a ``.bag``) through the normal
            pipeline instead of opening the live camera; its recorded serial must equal ``serial``. A relative
            path is resolved against the config file's directory.
        timeout_ms: how long the reader thread waits for one frame before counting a timeout.
    """

    serial: str = _field()
    width: int = _field(640, parse=_int)
    height: int = _field(480, parse=_int)
    fps: int = _field(30, parse=_int)
    playback_file: str | None = _field(None, parse=_optional(_str))
    timeout_ms: int = _field(1000, parse=_int)

    def __post_init__(self) -> None:
        if not isinstance(self.serial, str) or not self.serial.strip():
            hint = ' (quote it in YAML: serial: "218622270000")' if isinstance(self.serial, int) else ""
            raise ConfigError(f"`serial` must be a non-empty string{hint}; got {self.serial!r}")
        for name, value, hi in (("width", self.width, 1280), ("height", self.height, 800), ("fps", self.fps, 90)):
            if not isinstance(value, int) or not 1 <= value <= hi:
                raise ConfigError(f"`{name}` must be an integer in [1, {hi}]; got {value!r}")
        if not isinstance(self.timeout_ms, int) or self.timeout_ms < 10:
            raise ConfigError(f"`timeout_ms` must be an integer >= 10; got {self.timeout_ms!r}")


@dataclasses.dataclass(frozen=True)
class SafetyConfig:
    """Limits and timeouts of the safety layer (see :mod:`real.safety`).

    Attributes:
        max_joint_velocity: largest joint-target change per second (rad/s); a step may move a target by at
            most ``max_joint_velocity / control_hz``.
        max_gripper_velocity: the same for the normalised gripper opening (1/s).
        max_joint_delta: largest distance (rad) of a joint target from the *measured* joint position, so a
            lagging or blocked arm is never pulled towards a far target.
        gripper_range: allowed gripper openings ``[min, max]`` within [0, 1].
        engage_time_s: gains ramp from 0 to nominal over this time while holding the measured pose.
        home_velocity: joint speed (rad/s) of the move to ``home`` in ``reset()``.
        hold_time_s: after a stop, hold the measured pose this long, then damp.
        damping_kd: 7 damping gains (6 joints + gripper) of the damped state after a stop.
        policy_timeout_s: stop if no action arrives for this long during an episode.
        camera_timeout_s: stop if a camera's newest frame is older than this.
        bus_timeout_s: stop if an arm's CAN feedback is older than this.
        watchdog_hz: how often the watchdog checks the above.
        estop_signals: POSIX signals that trigger the e-stop (SIGINT also ends the program afterwards).
        estop_keys: keys that trigger the e-stop; ``release_key`` releases it.
    """

    max_joint_velocity: float = _field(1.0, parse=_float)
    max_gripper_velocity: float = _field(2.0, parse=_float)
    max_joint_delta: float = _field(0.35, parse=_float)
    gripper_range: tuple[float, float] = _field((0.0, 1.0), parse=_floats(2))
    engage_time_s: float = _field(0.5, parse=_float)
    home_velocity: float = _field(0.5, parse=_float)
    hold_time_s: float = _field(0.5, parse=_float)
    damping_kd: tuple[float, ...] = _field((1.0, 1.0, 1.0, 0.3, 0.3, 0.3, 0.2), parse=_floats(ARM_JOINTS + 1))
    policy_timeout_s: float = _field(0.5, parse=_float)
    camera_timeout_s: float = _field(0.5, parse=_float)
    bus_timeout_s: float = _field(0.1, parse=_float)
    watchdog_hz: float = _field(100.0, parse=_float)
    estop_signals: tuple[str, ...] = _field(("SIGUSR1", "SIGINT"), parse=_strs)
    estop_keys: tuple[str, ...] = _field((" ", "e"), parse=_strs)
    release_key: str = _field("r", parse=_str)

    def __post_init__(self) -> None:
        positive = (
            "max_joint_velocity",
            "max_gripper_velocity",
            "max_joint_delta",
            "home_velocity",
            "policy_timeout_s",
            "camera_timeout_s",
            "bus_timeout_s",
            "watchdog_hz",
        )
        for name in positive:
            value = getattr(self, name)
            if not _is_number(value) or not value > 0 or not math.isfinite(value):
                raise ConfigError(f"`{name}` must be a positive number; got {value!r}")
        for name in ("engage_time_s", "hold_time_s"):
            value = getattr(self, name)
            if not _is_number(value) or value < 0:
                raise ConfigError(f"`{name}` must be a number >= 0; got {value!r}")
        lo, hi = self.gripper_range
        if not 0.0 <= lo < hi <= 1.0:
            raise ConfigError(
                f"`gripper_range` must be [min, max] with 0 <= min < max <= 1; got {list(self.gripper_range)}"
            )
        if any(k < 0 or k > 5.0 for k in self.damping_kd):
            raise ConfigError(
                f"`damping_kd` must be 7 gains in [0, 5] (the DM motors' kd range); got {self.damping_kd}"
            )
        import signal

        for name in self.estop_signals:
            if not isinstance(name, str) or not name.startswith("SIG") or not hasattr(signal, name):
                raise ConfigError(f"`estop_signals` must name POSIX signals such as 'SIGUSR1'; got {name!r}")
        for key in (*self.estop_keys, self.release_key):
            if not isinstance(key, str) or len(key) != 1:
                raise ConfigError(f"`estop_keys` / `release_key` must be single characters; got {key!r}")
        if self.release_key in self.estop_keys:
            raise ConfigError(f"`release_key` must differ from `estop_keys`; got {self.release_key!r} in both")


@dataclasses.dataclass(frozen=True)
class LabelConfig:
    """Operator key bindings for labelling episodes (``info["success"]``, ``["progress"]``, ``["primitive"]``).

    Digits ``0``-``9`` set progress to 0.0-0.9; ``success_key`` marks success (progress 1.0); ``fail_key`` ends
    the episode as a failure; ``end_key`` ends it as it stands; ``primitive_keys`` maps keys to the 22 SARM2
    primitive names (``dummy_key`` goes back to ``dummy``).
    """

    success_key: str = _field("s", parse=_str)
    fail_key: str = _field("f", parse=_str)
    end_key: str = _field("n", parse=_str)
    dummy_key: str = _field("d", parse=_str)
    primitive_keys: tuple[tuple[str, str], ...] = _field((), parse=_str_map)

    def __post_init__(self) -> None:
        keys = [self.success_key, self.fail_key, self.end_key, self.dummy_key, *(k for k, _ in self.primitive_keys)]
        for key in keys:
            if not isinstance(key, str) or len(key) != 1 or key.isdigit():
                raise ConfigError(
                    f"`primitive_keys` and the label keys must be single non-digit characters; got {key!r}"
                )
        dup = sorted({k for k in keys if keys.count(k) > 1})
        if dup:
            raise ConfigError(f"label keys must be distinct; got {dup} bound twice")
        unknown = [p for _, p in self.primitive_keys if p not in PRIMITIVES]
        if unknown:
            raise ConfigError(
                f"`primitive_keys` values must be SARM2 primitive names {list(PRIMITIVES)}; got {unknown}"
            )

    def bindings(self) -> dict[str, str]:
        """key -> primitive name."""
        return dict(self.primitive_keys)


@dataclasses.dataclass(frozen=True)
class StationConfig:
    """The whole bimanual station: two follower arms, three D405 cameras, optional leader arms, safety."""

    arms: dict[str, ArmConfig] = _field()
    cameras: dict[str, CameraConfig] = _field()
    leaders: dict[str, LeaderConfig] | None = _field(None)
    control_hz: float = _field(30.0, parse=_float)
    image_size: tuple[int, int] = _field((128, 128), parse=_image_size)
    safety: SafetyConfig = _field(default_factory=SafetyConfig)
    labels: LabelConfig = _field(default_factory=LabelConfig)
    source: str | None = dataclasses.field(default=None, compare=False)

    def __post_init__(self) -> None:
        if not _is_number(self.control_hz) or not 0 < self.control_hz <= 250:
            raise ConfigError(
                f"`control_hz` must be a number in (0, 250] (the motor loop runs at ~250 Hz); got {self.control_hz!r}"
            )
        for name, section, keys, cls in (
            ("arms", self.arms, ARMS, ArmConfig),
            ("cameras", self.cameras, CAMERAS, CameraConfig),
        ):
            if not isinstance(section, Mapping) or sorted(section) != sorted(keys):
                got = sorted(section) if isinstance(section, Mapping) else section
                raise ConfigError(f"`{name}` must have exactly the keys {list(keys)}; got {got!r}")
            for key, value in section.items():
                if not isinstance(value, cls):
                    raise ConfigError(f"`{name}.{key}` must be a {cls.__name__}; got {type(value).__name__}")
        if self.leaders is not None:
            if not isinstance(self.leaders, Mapping) or sorted(self.leaders) != sorted(ARMS):
                raise ConfigError(f"`leaders` must be null or have exactly the keys {list(ARMS)}; got {self.leaders!r}")
        channels = [a.channel for a in self.arms.values()] + [a.channel for a in (self.leaders or {}).values()]
        dup = sorted({c for c in channels if channels.count(c) > 1})
        if dup:
            raise ConfigError(f"`arms` / `leaders` must use distinct CAN channels; got {dup} used twice")
        serials = [c.serial for c in self.cameras.values()]
        dup = sorted({s for s in serials if serials.count(s) > 1})
        if dup:
            raise ConfigError(f"`cameras` must have distinct serials; got {dup} used twice")
        if not isinstance(self.safety, SafetyConfig):
            raise ConfigError(f"`safety` must be a SafetyConfig; got {type(self.safety).__name__}")
        if not isinstance(self.labels, LabelConfig):
            raise ConfigError(f"`labels` must be a LabelConfig; got {type(self.labels).__name__}")
        label_keys = {
            self.labels.success_key,
            self.labels.fail_key,
            self.labels.end_key,
            self.labels.dummy_key,
            *(k for k, _ in self.labels.primitive_keys),
            *"0123456789",
        }
        clash = sorted(label_keys & {*self.safety.estop_keys, self.safety.release_key})
        if clash:
            raise ConfigError(
                f"`safety.estop_keys` / `safety.release_key` must differ from the label keys and digits; got {clash} "
                "bound twice"
            )

    @property
    def dt(self) -> float:
        """Control period in seconds."""
        return 1.0 / self.control_hz

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], base_dir: str | os.PathLike[str] | None = None) -> StationConfig:
        """Build a config from a parsed YAML mapping; relative ``playback_file`` paths resolve against ``base_dir``."""
        data = _check_keys(data, cls, "")
        data.pop("source", None)
        arms = _section(data.get("arms"), ARMS, ArmConfig, "arms")
        cameras = _section(data.get("cameras"), CAMERAS, CameraConfig, "cameras")
        if base_dir is not None:
            cameras = {
                name: cam
                if cam.playback_file is None or os.path.isabs(cam.playback_file)
                else dataclasses.replace(cam, playback_file=str(Path(base_dir) / cam.playback_file))
                for name, cam in cameras.items()
            }
        leaders = None if data.get("leaders") is None else _section(data["leaders"], ARMS, LeaderConfig, "leaders")
        safety = _build(SafetyConfig, data.get("safety") or {}, "safety")
        labels = _build(LabelConfig, data.get("labels") or {}, "labels")
        rest = {k: v for k, v in data.items() if k in ("control_hz", "image_size")}
        return _build(
            cls,
            rest,
            "",
            arms=arms,
            cameras=cameras,
            leaders=leaders,
            safety=safety,
            labels=labels,
        )


def _section(data: Any, keys: Sequence[str], cls: type, where: str) -> dict[str, Any]:
    if not isinstance(data, Mapping) or sorted(data) != sorted(keys):
        got = sorted(data) if isinstance(data, Mapping) else data
        raise ConfigError(f"`{where}` must be a mapping with exactly the keys {list(keys)}; got {got!r}")
    return {key: _build(cls, data[key], f"{where}.{key}") for key in keys}


def load_station_config(path: str | os.PathLike[str]) -> StationConfig:
    """Read a station YAML file strictly (see the module docstring for the schema).

    Raises:
        ConfigError: the file is missing, not YAML, has unknown keys, or a value is out of range.
    """
    import yaml

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"`config` must be an existing station YAML file; got {str(path)!r} (not found)") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"`config` must be valid YAML; got a parse error in {path}: {exc}") from exc
    if not isinstance(data, Mapping):
        raise ConfigError(f"`config` must be a YAML mapping; got {type(data).__name__} in {path}")
    try:
        config = StationConfig.from_dict(data, base_dir=path.resolve().parent)
    except ConfigError as exc:
        raise ConfigError(f"{exc} (in {path})") from None
    return dataclasses.replace(config, source=str(path))
