"""A hardware-free station: emulated DM motors on python-can's in-process ``virtual`` bus, and recorded D405 streams.

Nothing here replaces our driver code. The arms still run the ``i2rt`` SDK's own CAN driver (motor enable, MIT
command encoding, feedback parsing, its 250 Hz motor thread, its start-up register checks); only the bus is
python-can's ``virtual`` interface, and a :class:`FakeDMChain` thread on the other end answers like DM4310/DM4340
motors do. The cameras still run ``pyrealsense2``'s normal pipeline; only the device is a file that
:func:`record_synthetic_stream` wrote with ``rs.software_device`` + ``rs.recorder`` (a ``.db3``: librealsense 2.59
refuses to record ``.bag``), opened with ``enable_device_from_file``.

:class:`EmulatedStation` puts both together and hands out a :class:`~real.config.StationConfig` that points at
them, for tests and for dry runs (``python -m real.record --emulate``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import logging
import math
import struct
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from real._sdk import require
from real.config import (
    DEFAULT_HOME,
    ArmConfig,
    CameraConfig,
    LabelConfig,
    LeaderConfig,
    SafetyConfig,
    StationConfig,
)
from sarm2_env.constants import ARMS, CAMERAS

__all__ = [
    "EmulatedStation",
    "FakeDMChain",
    "FakeMotor",
    "arm_motor_list",
    "record_synthetic_stream",
]

logger = logging.getLogger(__name__)

# DM protocol constants (see the DM motor manual and i2rt.motor_drivers / i2rt.motor_config_tool).
_SPECIAL_PREFIX = bytes([0xFF] * 7)
_ENABLE, _DISABLE, _CLEAR_ERROR, _SAVE_ZERO = 0xFC, 0xFD, 0xFB, 0xFE
_REGISTER_ID = 0x7FF
_REG_READ, _REG_WRITE, _REG_SAVE = 0x33, 0x55, 0xAA
_FLOAT_REGISTERS = frozenset({0, 1, 2, 3, 4, 5, 6, 11, 12, *range(17, 35), *range(50, 56), 80, 81})
ERROR_NORMAL = 0x1
ERROR_DISABLED = 0x0
ERROR_OVER_TEMPERATURE = 0xC

_MOTOR_CONSTANTS = {  # type -> (PMAX, VMAX, TMAX, gear ratio), as the SDK's MotorType table
    "DM4310": (12.5, 30.0, 10.0, 10.0),
    "DM4340": (12.5, 10.0, 28.0, 40.0),
    "DM3507": (12.5, 50.0, 5.0, 7.0),
    "DM6248": (12.5, 20.0, 120.0, 48.0),
}
_CHANNEL_COUNTER = itertools.count()


def _to_uint(x: float, lo: float, hi: float, bits: int) -> int:
    x = min(max(x, lo), hi)
    return int((x - lo) * ((1 << bits) - 1) / (hi - lo))


def _to_float(x: int, lo: float, hi: float, bits: int) -> float:
    return x * (hi - lo) / ((1 << bits) - 1) + lo


@dataclasses.dataclass
class FakeMotor:
    """State of one emulated DM motor (positions in the motor's own frame, rad)."""

    motor_id: int
    motor_type: str
    position: float = 0.0
    velocity: float = 0.0
    torque: float = 0.0
    enabled: bool = False
    error: int = ERROR_NORMAL
    target: float = 0.0
    kp: float = 0.0
    kd: float = 0.0
    torque_ff: float = 0.0
    commands: int = 0
    last_update: float = dataclasses.field(default_factory=time.monotonic)
    registers: dict[int, float | int] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.motor_type not in _MOTOR_CONSTANTS:
            raise ValueError(f"`motor_type` must be one of {sorted(_MOTOR_CONSTANTS)}; got {self.motor_type!r}")
        pmax, vmax, tmax, gear = _MOTOR_CONSTANTS[self.motor_type]
        defaults: dict[int, float | int] = {
            7: self.motor_id + 0x10,  # MST_ID
            8: self.motor_id,  # ESC_ID
            9: 400,  # TIMEOUT (ms)
            10: 1,  # CTRL_MODE: MIT
            13: 3,  # hw_ver
            14: 4100,  # sw_ver
            20: gear,  # Gr
            21: pmax,
            22: vmax,
            23: tmax,
        }
        self.registers = {**defaults, **self.registers}
        self.target = self.position

    @property
    def limits(self) -> tuple[float, float, float]:
        """``(PMAX, VMAX, TMAX)`` used to encode feedback."""
        return _MOTOR_CONSTANTS[self.motor_type][:3]


class FakeDMChain:
    """Emulated DM motors answering on a python-can bus, in a thread.

    Each MIT command moves the motor's position towards its target with a first-order lag (time constant
    ``time_constant`` seconds) while ``kp > 0``; with ``kp == 0`` (gravity-comp idle, damping) it stays where it is,
    unless :meth:`set_positions` moves it (a person moving a leader arm). The motors are unloaded: the reported
    torque is the commanded feed-forward torque. Every command is answered with a feedback
    frame on ``motor_id + 0x10`` as the SDK's ``ReceiveMode.p16`` expects; register reads and writes on ``0x7FF``
    are answered too, so the SDK's start-up checks run against it, and every flash save is recorded in
    :attr:`flash_writes`.

    Faults for tests: :meth:`stall` (stop answering: a stalled or unplugged bus), :meth:`fault` (report a motor
    error code), :meth:`disconnect` (close the bus).
    """

    def __init__(
        self,
        channel: str,
        motors: Sequence[tuple[int, str]],
        positions: Sequence[float] | None = None,
        *,
        interface: str = "virtual",
        time_constant: float = 0.03,
    ) -> None:
        positions = [0.0] * len(motors) if positions is None else list(positions)
        if len(positions) != len(motors):
            raise ValueError(f"`positions` must have one value per motor ({len(motors)}); got {len(positions)}")
        self.channel = channel
        self.interface = interface
        self.time_constant = float(time_constant)
        self.motors: dict[int, FakeMotor] = {
            int(mid): FakeMotor(int(mid), str(mtype), position=float(p)) for (mid, mtype), p in zip(motors, positions)
        }
        self.flash_writes: list[tuple[int, int]] = []
        self.register_reads = 0
        self.frames_received = 0
        self._stalled = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._bus: Any = None
        self._thread: threading.Thread | None = None

    # -- lifetime
    def start(self) -> FakeDMChain:
        """Open the bus and start answering."""
        can = require("can", "the emulated CAN bus")
        self._bus = can.Bus(interface=self.interface, channel=self.channel, receive_own_messages=False)
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"fake-dm-{self.channel}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop answering and close the bus (idempotent)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None
        if self._bus is not None:
            with contextlib.suppress(Exception):
                self._bus.shutdown()
            self._bus = None

    disconnect = stop

    def __enter__(self) -> FakeDMChain:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- test controls
    def stall(self, stalled: bool = True) -> None:
        """Stop (or resume) answering frames, as a bus whose motors lost power or whose cable was pulled."""
        if stalled:
            self._stalled.set()
        else:
            self._stalled.clear()

    def fault(self, motor_id: int, code: int = ERROR_OVER_TEMPERATURE) -> None:
        """Make ``motor_id`` report error ``code`` in every feedback frame until it is cleared (``0xFB``)."""
        with self._lock:
            self.motors[motor_id].error = int(code)

    def set_register(self, motor_id: int, address: int, value: float | int) -> None:
        """Set a register value (e.g. ``CTRL_MODE`` = 2) that the SDK's start-up checks will read."""
        with self._lock:
            self.motors[motor_id].registers[int(address)] = value

    def set_positions(self, positions: Sequence[float]) -> None:
        """Move every motor (motor frame, rad), as a person moving a passive arm."""
        with self._lock:
            for motor, p in zip(self.motors.values(), positions):
                motor.position = motor.target = float(p)
                motor.velocity = 0.0

    def positions(self) -> np.ndarray:
        """Current motor positions (motor frame, rad), in motor-id order."""
        with self._lock:
            return np.array([m.position for m in self.motors.values()])

    def commands(self) -> dict[int, dict[str, float]]:
        """The last MIT command of each motor: ``{id: {"pos", "kp", "kd", "torque", "count"}}``."""
        with self._lock:
            return {
                mid: {"pos": m.target, "kp": m.kp, "kd": m.kd, "torque": m.torque_ff, "count": m.commands}
                for mid, m in self.motors.items()
            }

    # -- the responder
    def _run(self) -> None:
        bus = self._bus
        while not self._stop.is_set():
            try:
                msg = bus.recv(timeout=0.02)
            except Exception:  # noqa: BLE001 - the bus was closed under us
                return
            if msg is None:
                continue
            self.frames_received += 1
            if self._stalled.is_set():
                continue
            try:
                reply = self._handle(msg.arbitration_id, bytes(msg.data))
            except Exception:  # pragma: no cover - a malformed frame must not kill the emulator
                logger.exception("fake DM chain %s: could not handle frame %s", self.channel, msg)
                continue
            if reply is not None:
                arbitration_id, data = reply
                can = require("can", "the emulated CAN bus")
                with contextlib.suppress(Exception):
                    bus.send(can.Message(arbitration_id=arbitration_id, data=data, is_extended_id=False))

    def _handle(self, arbitration_id: int, data: bytes) -> tuple[int, bytes] | None:
        with self._lock:
            if arbitration_id == _REGISTER_ID:
                return self._register(data)
            motor = self.motors.get(arbitration_id)
            if motor is None or len(data) != 8:
                return None
            if data[:7] == _SPECIAL_PREFIX:
                command = data[7]
                if command == _ENABLE:
                    motor.enabled = True
                    motor.target = motor.position
                elif command == _DISABLE:
                    motor.enabled = False
                elif command == _CLEAR_ERROR:
                    motor.error = ERROR_NORMAL
                    return None  # the SDK does not wait for an answer to a clear
                elif command == _SAVE_ZERO:
                    motor.position = motor.target = 0.0
                return self._feedback(motor)
            self._mit_command(motor, data)
            return self._feedback(motor)

    def _mit_command(self, motor: FakeMotor, data: bytes) -> None:
        pmax, vmax, tmax = motor.limits
        p_int = (data[0] << 8) | data[1]
        v_int = (data[2] << 4) | (data[3] >> 4)
        kp_int = ((data[3] & 0xF) << 8) | data[4]
        kd_int = (data[5] << 4) | (data[6] >> 4)
        t_int = ((data[6] & 0xF) << 8) | data[7]
        motor.target = _to_float(p_int, -pmax, pmax, 16)
        motor.kp = _to_float(kp_int, 0.0, 500.0, 12)
        motor.kd = _to_float(kd_int, 0.0, 5.0, 12)
        motor.torque_ff = _to_float(t_int, -tmax, tmax, 12)
        _ = _to_float(v_int, -vmax, vmax, 12)
        motor.commands += 1
        now = time.monotonic()
        dt = min(max(now - motor.last_update, 0.0), 0.05)
        motor.last_update = now
        previous = motor.position
        if motor.enabled and motor.error == ERROR_NORMAL and motor.kp > 0.05:
            alpha = 1.0 - math.exp(-dt / self.time_constant) if self.time_constant > 0 else 1.0
            motor.position += (motor.target - motor.position) * alpha
        motor.velocity = (motor.position - previous) / dt if dt > 0 else 0.0
        # An unloaded motor: it reports the feed-forward torque it was given (gravity compensation), not a PD
        # effort, so the SDK's gripper force limiter never sees a "blocked" gripper in free motion.
        motor.torque = motor.torque_ff

    def _feedback(self, motor: FakeMotor) -> tuple[int, bytes]:
        pmax, vmax, tmax = motor.limits
        p = _to_uint(motor.position, -pmax, pmax, 16)
        v = _to_uint(motor.velocity, -vmax, vmax, 12)
        t = _to_uint(motor.torque, -tmax, tmax, 12)
        error = motor.error if motor.enabled or motor.error != ERROR_NORMAL else ERROR_DISABLED
        data = bytes(
            [
                ((error & 0xF) << 4) | (motor.motor_id & 0xF),
                p >> 8,
                p & 0xFF,
                v >> 4,
                ((v & 0xF) << 4) | (t >> 8),
                t & 0xFF,
                35,  # MOS temperature (°C)
                32,  # rotor temperature (°C)
            ]
        )
        return motor.motor_id + 0x10, data

    def _register(self, data: bytes) -> tuple[int, bytes] | None:
        if len(data) != 8:
            return None
        motor = self.motors.get(data[0] | (data[1] << 8))
        if motor is None:
            return None
        command, address = data[2], data[3]
        reply_id = int(motor.registers.get(7, motor.motor_id + 0x10))
        head = bytes([data[0], data[1], command, address])
        is_float = address in _FLOAT_REGISTERS
        if command == _REG_READ:
            self.register_reads += 1
        elif command == _REG_WRITE:
            raw = data[4:8]
            motor.registers[address] = struct.unpack("<f", raw)[0] if is_float else struct.unpack("<I", raw)[0]
        elif command == _REG_SAVE:
            self.flash_writes.append((motor.motor_id, address))
            return reply_id, head  # a save is answered with a short frame
        else:
            return None
        value = motor.registers.get(address, 0)
        payload = struct.pack("<f", float(value)) if is_float else struct.pack("<I", int(value) & 0xFFFFFFFF)
        return reply_id, head + payload


# ----------------------------------------------------------------------------------------------- cameras


def _synthetic_image(camera_index: int, frame: int, height: int, width: int) -> np.ndarray:
    """A smooth gradient per camera with a bright square that moves with ``frame``; pixel (0, 0) red = frame."""
    yy, xx = np.mgrid[0:height, 0:width]
    image = np.empty((height, width, 3), dtype=np.uint8)
    image[..., 0] = (xx * 255 // max(width - 1, 1)).astype(np.uint8)
    image[..., 1] = (yy * 255 // max(height - 1, 1)).astype(np.uint8)
    image[..., 2] = 60 + 60 * camera_index
    size = max(height // 6, 2)
    y0 = (frame * 3) % max(height - size, 1)
    x0 = (frame * 5 + 17 * camera_index) % max(width - size, 1)
    image[y0 : y0 + size, x0 : x0 + size] = 255
    image[0, 0] = (frame % 256, camera_index, 0)
    return image


def record_synthetic_stream(
    path: str | Path,
    serial: str,
    *,
    width: int = 64,
    height: int = 48,
    fps: int = 30,
    frames: int = 15,
    camera_index: int = 0,
) -> Path:
    """Record a synthetic D405 colour stream to ``path`` (``.db3``) with ``rs.software_device`` + ``rs.recorder``.

    Frames are injected at ``fps`` in real time, because playback replays the recording's wall-clock timeline:
    the file then plays at ``fps``. The device carries ``serial`` as its serial number, so a
    :class:`~real.camera.D405Camera` configured with that serial accepts the file and any other serial is refused.
    """
    rs = require("pyrealsense2", "recording a synthetic D405 stream")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    device = rs.software_device()
    device.register_info(rs.camera_info.name, "Intel RealSense D405 (emulated)")
    device.register_info(rs.camera_info.serial_number, str(serial))
    device.register_info(rs.camera_info.product_line, "D400")
    sensor = device.add_sensor("Stereo Module")
    intrinsics = rs.intrinsics()
    intrinsics.width, intrinsics.height = width, height
    intrinsics.ppx, intrinsics.ppy = width / 2.0, height / 2.0
    intrinsics.fx = intrinsics.fy = width / (2.0 * math.tan(math.radians(87.0) / 2.0))
    intrinsics.model = rs.distortion.none
    intrinsics.coeffs = [0.0] * 5
    stream = rs.video_stream()
    stream.type, stream.index, stream.uid = rs.stream.color, 0, 0
    stream.width, stream.height, stream.fps, stream.bpp = width, height, fps, 3
    stream.fmt = rs.format.rgb8
    stream.intrinsics = intrinsics
    profile = sensor.add_video_stream(stream)
    recorder = rs.recorder(str(path), device)
    sensor.open(profile)
    sink = rs.frame_queue(frames + 4)
    sensor.start(sink)
    start = time.perf_counter()
    keep_alive = []  # the frame's pixel buffer must outlive on_video_frame
    for i in range(frames):
        image = np.ascontiguousarray(_synthetic_image(camera_index, i, height, width))
        keep_alive.append(image)
        frame = rs.software_video_frame()
        frame.pixels = image
        frame.stride, frame.bpp = width * 3, 3
        frame.timestamp = i * 1000.0 / fps
        frame.domain = rs.timestamp_domain.hardware_clock
        frame.frame_number = i
        frame.profile = profile.as_video_stream_profile()
        sensor.on_video_frame(frame)
        delay = start + (i + 1) / fps - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
    sensor.stop()
    sensor.close()
    del recorder  # the file is finalised when the recorder is destroyed
    return path


# ----------------------------------------------------------------------------------------------- station


def arm_motor_list(arm_type: str = "yam", gripper_type: str | None = "linear_4310") -> list[tuple[int, str]]:
    """``(CAN id, motor type)`` of an arm's chain as the SDK builds it (6 joints, then the gripper motor at 7)."""
    require("i2rt", "the YAM arm model")
    from i2rt.robots.utils import ArmType, GripperType, _load_arm_config

    arm = ArmType.from_string_name(arm_type)
    motors = [(int(mid), str(mtype)) for mid, mtype in _load_arm_config(arm).motor_list]
    if gripper_type is not None:
        motors.append((7, GripperType.from_string_name(gripper_type).get_motor_type(arm)))
    return motors


#: Gripper motor positions [closed, open] (rad) of the emulated linear grippers.
EMULATED_GRIPPER_LIMITS = (0.0, 2.0)


def _gripper_raw(opening: float, limits: Sequence[float] = EMULATED_GRIPPER_LIMITS) -> float:
    return limits[0] + opening * (limits[1] - limits[0])


class EmulatedStation:
    """Fake motor chains on ``virtual`` CAN channels plus recorded camera streams, and the config that uses them.

    Args:
        workdir: where the camera recordings go (reused when already there with the same settings).
        leaders: also emulate two leader arms (``handle: gripper``) on their own channels.
        start_pose: 7 values (6 joints in rad + gripper opening) both arms start at; default the home pose.
        camera_size: ``(height, width)`` of the recorded streams.
        camera_frames: frames per recording (played in a loop).
        safety / labels / control_hz / image_size: passed into the generated :class:`StationConfig`.
        check_motor_types / check_motor_config: enable the SDK start-up checks on the follower arms.

    Use it as a context manager (or :meth:`start` / :meth:`stop`); :attr:`config` is valid after construction.
    """

    def __init__(
        self,
        workdir: str | Path,
        *,
        leaders: bool = False,
        start_pose: Sequence[float] = DEFAULT_HOME,
        camera_size: tuple[int, int] = (48, 64),
        camera_frames: int = 15,
        safety: SafetyConfig | None = None,
        labels: LabelConfig | None = None,
        control_hz: float = 30.0,
        image_size: tuple[int, int] = (32, 32),
        check_motor_types: bool = False,
        check_motor_config: bool = False,
        time_constant: float = 0.03,
    ) -> None:
        self.workdir = Path(workdir)
        uid = f"{next(_CHANNEL_COUNTER)}_{id(self) & 0xFFFF:x}"
        arm_configs = {
            arm: ArmConfig(
                channel=f"vcan_emu{uid}_{arm}",
                interface="virtual",
                gripper_limits=EMULATED_GRIPPER_LIMITS,
                check_motor_types=check_motor_types,
                check_motor_config=check_motor_config,
            )
            for arm in ARMS
        }
        leader_configs = (
            {
                arm: LeaderConfig(
                    channel=f"vcan_emu{uid}_leader_{arm}",
                    interface="virtual",
                    handle="gripper",
                    gripper_limits=EMULATED_GRIPPER_LIMITS,
                    check_motor_types=False,
                )
                for arm in ARMS
            }
            if leaders
            else None
        )
        height, width = camera_size
        cameras = {}
        for i, cam in enumerate(CAMERAS):
            serial = f"23{i}0000000{i:02d}"
            path = self.workdir / f"emulated_{cam}_{serial}_{width}x{height}_{camera_frames}.db3"
            cameras[cam] = CameraConfig(serial=serial, width=width, height=height, fps=30, playback_file=str(path))
        self.config = StationConfig(
            arms=arm_configs,
            cameras=cameras,
            leaders=leader_configs,
            control_hz=control_hz,
            image_size=image_size,
            safety=safety or SafetyConfig(),
            labels=labels or LabelConfig(),
        )
        self.start_pose = tuple(float(v) for v in start_pose)
        self.camera_frames = camera_frames
        self.time_constant = time_constant
        self.chains: dict[str, FakeDMChain] = {}
        self.leader_chains: dict[str, FakeDMChain] = {}

    def _raw_pose(self, pose: Sequence[float]) -> list[float]:
        return [*pose[:6], _gripper_raw(pose[6])]

    def record_cameras(self) -> None:
        """Write the camera recordings that are not on disk yet."""
        for i, (cam, cfg) in enumerate(self.config.cameras.items()):
            path = Path(cfg.playback_file or "")
            if not path.exists():
                logger.info("recording synthetic %s stream to %s", cam, path)
                record_synthetic_stream(
                    path,
                    cfg.serial,
                    width=cfg.width,
                    height=cfg.height,
                    fps=cfg.fps,
                    frames=self.camera_frames,
                    camera_index=i,
                )

    def start(self) -> EmulatedStation:
        """Record missing camera streams and start the fake motor chains."""
        self.record_cameras()
        for arm, cfg in self.config.arms.items():
            motors = arm_motor_list(cfg.arm_type, cfg.gripper_type)
            chain = FakeDMChain(cfg.channel, motors, self._raw_pose(self.start_pose), time_constant=self.time_constant)
            self.chains[arm] = chain.start()
        for arm, cfg in (self.config.leaders or {}).items():
            motors = arm_motor_list(cfg.arm_type, cfg.gripper_type)
            self.leader_chains[arm] = FakeDMChain(cfg.channel, motors, self._raw_pose(self.start_pose)).start()
        return self

    def stop(self) -> None:
        """Stop every fake chain."""
        for chain in [*self.chains.values(), *self.leader_chains.values()]:
            chain.stop()

    def __enter__(self) -> EmulatedStation:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def move_leaders(self, pose: Mapping[str, Sequence[float]] | Sequence[float]) -> None:
        """Move the emulated leader arms (7 values per arm: joints in rad + gripper opening)."""
        for arm, chain in self.leader_chains.items():
            arm_pose = pose[arm] if isinstance(pose, Mapping) else pose
            chain.set_positions(self._raw_pose(arm_pose))

    @contextlib.contextmanager
    def operator(self, amplitude: float = 0.15, period_s: float = 2.0) -> Iterator[None]:
        """While active, a thread moves the leader arms in a slow sinusoid around the start pose (dry-run operator)."""
        stop = threading.Event()
        base = np.asarray(self.start_pose)

        def run() -> None:
            t0 = time.monotonic()
            while not stop.wait(0.01):
                phase = 2 * math.pi * (time.monotonic() - t0) / period_s
                pose = base.copy()
                pose[[0, 4, 5]] += amplitude * math.sin(phase)
                pose[6] = 0.5 + 0.5 * math.cos(phase)
                self.move_leaders(pose.tolist())

        thread = threading.Thread(target=run, name="emulated-operator", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(timeout=1.0)
