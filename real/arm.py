"""YAM arm drivers over the ``i2rt`` SDK: :class:`YAMArm` (a follower) and :class:`LeaderArm` (GELLO-style leader).

Both build the SDK's motor chain (``DMChainCanInterface``) and robot (``MotorChainRobot``, gravity compensation
at ~250 Hz in the SDK's threads) the way ``i2rt.robots.get_robot.get_yam_robot`` does, with two differences:

* **Start-up checks are ours to gate.** ``get_yam_robot`` always runs the SDK's motor-type check *and* the motor
  config check with ``repair=True``, which rewrites a motor's control mode and saves it to **motor flash**. We run
  the same checks (``i2rt.motor_drivers.motor_check.run_startup_checks``) as the config asks:
  ``check_motor_types`` (read-only), ``check_motor_config`` (read-only unless ``allow_flash_write``), and build
  the chain with the SDK's own checks off. Flash is written only when ``allow_flash_write: true``.
* **We can see the bus.** The number of completed motor-loop cycles and the time of the last one are counted,
  so a stalled bus is noticed in ~0.1 s (:meth:`YAMArm.bus_age`), and the exception that killed the SDK's motor
  loop is kept (:attr:`YAMArm.fault`).

Positions are the env's units: 6 joint angles in rad + gripper opening normalised to [0, 1] (0 closed).
Opening a driver does not move the arm: the SDK robot starts in gravity-compensation idle (no position gains);
:class:`real.env.RealStationEnv` engages it with ramped gains. The one exception is opt-in: with
``calibrate_gripper: true`` (and no ``gripper_limits``) the SDK opens and closes the gripper to find its limits.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from real._sdk import require, sdk_can_interface, sdk_output_to_log
from real.closing import ClosedOnExit
from real.config import ArmConfig, LeaderConfig, arm_joint_range
from real.errors import (
    HardwareNotFoundError,
    MotorFaultError,
    MotorNotRespondingError,
    StartupCheckError,
)
from sarm2_env.errors import InvalidActionError

__all__ = ["LeaderArm", "YAMArm", "available_can_channels"]

logger = logging.getLogger(__name__)

ARM_JOINTS = 6
#: The SDK widens the model's joint range by this much before clipping commands (``get_yam_robot``).
SDK_LIMIT_BUFFER = 0.15
_MODEL_CACHE: dict[tuple[str, str], str] = {}
_MODEL_LOCK = threading.Lock()


def available_can_channels() -> list[str]:
    """SocketCAN interfaces present on this machine (from ``/sys/class/net``)."""
    root = Path("/sys/class/net")
    if not root.is_dir():
        return []
    out = []
    for dev in sorted(root.iterdir()):
        try:
            if (dev / "type").read_text().strip() == "280":  # ARPHRD_CAN
                out.append(dev.name)
        except OSError:
            continue
    return out


def _combined_model(arm_type: Any, gripper_type: Any) -> str:
    """The SDK's arm+gripper MJCF (for gravity compensation), written once per process and reused."""
    from i2rt.robots.utils import combine_arm_and_gripper_xml

    key = (arm_type.value, gripper_type.value)
    with _MODEL_LOCK:
        path = _MODEL_CACHE.get(key)
        if path is None or not os.path.exists(path):
            path = _MODEL_CACHE[key] = combine_arm_and_gripper_xml(arm_type, gripper_type)
        return path


class _ChainArm(ClosedOnExit):
    """Shared bring-up and shutdown of an SDK motor chain + robot on one CAN channel."""

    role = "arm"

    def __init__(self, config: ArmConfig | LeaderConfig, name: str) -> None:
        self.config = config
        self.name = name
        self.robot: Any = None
        self.chain: Any = None
        self.bringup_time_s: float | None = None
        self._chain_thread: threading.Thread | None = None
        self._lock = threading.RLock()
        self._cycles = 0
        self._last_cycle = 0.0
        self._first_cycle = 0.0
        self._fault: str | None = None
        self._closed = False

    # -- bring-up
    def _gripper_type_name(self) -> str | None:
        raise NotImplementedError

    def _gripper_limits(self) -> np.ndarray | None:
        raise NotImplementedError

    def _same_bus_device(self) -> Any:
        return None

    def _check_channel(self) -> None:
        cfg = self.config
        if cfg.interface == "socketcan":
            present = available_can_channels()
            if not Path("/sys/class/net", cfg.channel).exists():
                raise HardwareNotFoundError(
                    f"{self.role} {self.name!r}: CAN channel {cfg.channel!r} is not present on this machine; "
                    f"CAN channels found: {present or 'none'}. Plug the CAN adapter in and bring it up with "
                    f"`sudo ip link set {cfg.channel} up type can bitrate 1000000`, or fix `channel` in the config."
                )

    def open(self) -> _ChainArm:
        """Bring the chain up (motors enabled, gravity-compensation idle: no position gains, so nothing moves).

        Raises:
            HardwareNotFoundError: the CAN channel does not exist.
            StartupCheckError: an enabled start-up check refused the chain (nothing was written unless
                ``allow_flash_write``).
            MotorNotRespondingError: a motor did not answer.
            MotorFaultError: the arm reports a pose outside its joint range, or a motor error.
        """
        if self.robot is not None:
            return self
        self._check_channel()
        require("can", f"the YAM {self.role} driver")
        require("i2rt.robots.get_robot", f"the YAM {self.role} driver")
        from i2rt.motor_drivers.dm_driver import ControlMode, DMChainCanInterface, ReceiveMode
        from i2rt.motor_drivers.motor_check import run_startup_checks
        from i2rt.robots.motor_chain_robot import MotorChainRobot
        from i2rt.robots.utils import ArmType, GripperType, _load_arm_config

        t0 = time.perf_counter()  # bring-up time, without the one-off SDK import
        cfg = self.config
        arm_type = ArmType.from_string_name(cfg.arm_type)
        gripper_name = self._gripper_type_name()
        gripper_type = GripperType.from_string_name(gripper_name or "no_gripper")
        hw = _load_arm_config(arm_type)
        motor_list = [[int(mid), str(mtype)] for mid, mtype in hw.motor_list]
        directions = list(hw.directions)
        kp, kd = hw.kp.copy(), hw.kd.copy()
        grav_comp_kd, friction = hw.grav_comp_kd.copy(), hw.coulomb_friction.copy()
        gravity_factor = hw.gravity_comp_factor.copy()
        with_gripper = gripper_name is not None and gripper_type not in (
            GripperType.YAM_TEACHING_HANDLE,
            GripperType.NO_GRIPPER,
        )
        if with_gripper:
            g_kp, g_kd = gripper_type.get_motor_kp_kd(arm_type)
            motor_list.append([0x07, gripper_type.get_motor_type(arm_type)])
            directions.append(gripper_type.get_motor_direction(arm_type))
            kp, kd = np.append(kp, g_kp), np.append(kd, g_kd)
            grav_comp_kd, friction = np.append(grav_comp_kd, 0.0), np.append(friction, 0.0)
            gravity_factor = np.append(gravity_factor, 1.0)
        sdk_limits = arm_joint_range(cfg.arm_type).copy()
        sdk_limits[:, 0] -= SDK_LIMIT_BUFFER
        sdk_limits[:, 1] += SDK_LIMIT_BUFFER
        model_path = _combined_model(arm_type, gripper_type)

        with sdk_can_interface(cfg.interface), sdk_output_to_log():
            if cfg.check_motor_types:
                mode = "check" if cfg.allow_flash_write else "read-only survey"
                logger.info(
                    "%s %s: motor start-up checks on %s (types%s, %s)",
                    self.role,
                    self.name,
                    cfg.channel,
                    " + control mode/scaling" if cfg.check_motor_config else "",
                    mode if cfg.check_motor_config else "read-only",
                )
                try:
                    run_startup_checks(
                        cfg.channel,
                        motor_list,
                        check_motor_types=True,
                        check_motor_config=cfg.check_motor_config,
                        control_mode=ControlMode.MIT,
                        repair=cfg.allow_flash_write,
                    )
                except (RuntimeError, ValueError, OSError) as exc:
                    hint = (
                        ""
                        if cfg.allow_flash_write
                        else " Nothing was written to motor flash (allow_flash_write is false)."
                    )
                    raise StartupCheckError(
                        f"{self.role} {self.name!r} on {cfg.channel}: the motor start-up checks refused the chain: "
                        f"{exc}.{hint}"
                    ) from exc
            chain = self._build_chain(DMChainCanInterface, ReceiveMode, motor_list, directions)
            self.chain = chain
            try:
                self._instrument(chain)
                for idx, state in enumerate(chain.read_states()):  # unwrap multi-turn offsets, as get_yam_robot
                    if state.pos < -np.pi:
                        chain.motor_offset[idx] -= 2 * np.pi
                    elif state.pos > np.pi:
                        chain.motor_offset[idx] += 2 * np.pi
                before = set(threading.enumerate())
                chain.start_thread()
                started = [t for t in threading.enumerate() if t not in before]
                self._chain_thread = started[0] if started else None
                gripper_limits = self._gripper_limits() if with_gripper else None
                robot_kwargs: dict[str, Any] = {}
                if with_gripper:
                    robot_kwargs = {
                        "gripper_index": ARM_JOINTS,
                        "gripper_limits": gripper_limits,
                        "enable_gripper_calibration": gripper_limits is None,
                        "gripper_type": gripper_type,
                        "arm_type": arm_type,
                        "limit_gripper_force": 50.0,
                    }
                    if gripper_limits is None:
                        logger.warning(
                            "%s %s: no gripper_limits in the config, so the SDK calibrates the gripper now "
                            "(it opens and closes); pin the logged limits in the config to skip this",
                            self.role,
                            self.name,
                        )
                self.robot = MotorChainRobot(
                    motor_chain=chain,
                    xml_path=model_path,
                    use_gravity_comp=True,
                    gravity_comp_factor=gravity_factor,
                    joint_limits=sdk_limits,
                    kp=kp,
                    kd=kd,
                    grav_comp_kd=grav_comp_kd,
                    coulomb_friction=friction,
                    use_coulomb_friction=False,
                    zero_gravity_mode=True,
                    **robot_kwargs,
                )
            except Exception as exc:
                self._shutdown_chain()
                if isinstance(exc, (MotorFaultError, HardwareNotFoundError)):
                    raise
                raise MotorFaultError(f"{self.role} {self.name!r} on {cfg.channel}: bring-up failed: {exc}") from exc
        self._kp, self._kd = np.asarray(kp, dtype=float), np.asarray(kd, dtype=float)
        self.bringup_time_s = time.perf_counter() - t0
        logger.info(
            "%s %s up on %s (%s) in %.3f s: %d motors",
            self.role,
            self.name,
            cfg.channel,
            cfg.interface,
            self.bringup_time_s,
            len(motor_list),
        )
        return self

    def _build_chain(self, chain_cls: Any, receive_mode: Any, motor_list: list, directions: list) -> Any:
        """The SDK chain (motors enabled, thread not started), with its own start-up checks off (ours ran above).

        A motor that misses the SDK's 5 x 10 ms enable window once (a busy host) gets one more try before the
        bring-up is declared failed; enabling an enabled motor is harmless.
        """
        cfg = self.config
        missed: AssertionError | None = None
        for attempt in (1, 2):
            try:
                return chain_cls(
                    motor_list,
                    [0.0] * len(motor_list),
                    directions,
                    cfg.channel,
                    motor_chain_name=f"yam_{self.role}_{self.name}",
                    receive_mode=receive_mode.p16,
                    start_thread=False,
                    get_same_bus_device_driver=self._same_bus_device(),
                    use_buffered_reader=False,
                    enable_auto_recovery=False,
                    check_motor_types=False,
                    check_motor_config=False,
                )
            except AssertionError as exc:  # the SDK's "fail to communicate with the motor"
                missed = exc
                if attempt == 1:
                    logger.warning("%s %s: a motor did not answer (%s); trying once more", self.role, self.name, exc)
            except Exception as exc:
                raise HardwareNotFoundError(
                    f"{self.role} {self.name!r}: could not open CAN channel {cfg.channel!r} ({type(exc).__name__}: "
                    f"{exc})"
                ) from exc
        raise MotorNotRespondingError(
            f"{self.role} {self.name!r}: a motor on {cfg.channel} did not answer ({missed}). Check that the arm "
            "is powered, its hardware E-stop released, and the CAN cable seated."
        ) from missed

    def _instrument(self, chain: Any) -> None:
        """Count motor-loop cycles and keep the exception that stops the SDK's loop (wraps two chain methods)."""
        update, set_commands = chain._update_absolute_positions, chain._set_commands

        def counted_update(feedback: Any) -> None:
            update(feedback)
            now = time.monotonic()
            if not self._cycles:
                self._first_cycle = now
            self._cycles += 1
            self._last_cycle = now

        def guarded_set_commands(commands: Any) -> Any:
            try:
                return set_commands(commands)
            except Exception as exc:
                if self._fault is None:
                    self._fault = f"{type(exc).__name__}: {exc}"
                raise

        chain._update_absolute_positions = counted_update
        chain._set_commands = guarded_set_commands

    # -- health
    @property
    def fault(self) -> str | None:
        """Why the arm cannot be commanded any more (motor error, dead motor loop), or ``None``."""
        if self._fault is None and self.chain is not None and not getattr(self.chain, "running", True):
            self._fault = "the SDK motor loop stopped"
        if self._fault is None and self.robot is not None and not self.robot._server_thread.is_alive():
            self._fault = "the SDK robot thread stopped"
        return self._fault

    def bus_age(self) -> float:
        """Seconds since the motor loop last completed a cycle over the whole chain (inf before the first)."""
        return time.monotonic() - self._last_cycle if self._cycles else float("inf")

    @property
    def bus_cycles(self) -> int:
        """Completed motor-loop cycles since bring-up (each one commands and reads every motor once)."""
        return self._cycles

    def bus_rate(self) -> float:
        """Mean motor-loop rate (Hz) since bring-up."""
        span = self._last_cycle - self._first_cycle
        return (self._cycles - 1) / span if self._cycles > 1 and span > 0 else 0.0

    def check(self) -> None:
        """Raise :class:`MotorFaultError` if the arm is faulted or closed."""
        if self.robot is None:
            raise MotorFaultError(f"{self.role} {self.name!r} is not open; call open() first")
        fault = self.fault
        if fault is not None:
            raise MotorFaultError(f"{self.role} {self.name!r} on {self.config.channel} faulted: {fault}")

    def _raw_pos(self) -> np.ndarray:
        self.check()
        return np.asarray(self.robot.get_joint_pos(), dtype=np.float64).copy()

    # -- shutdown
    def _shutdown_chain(self) -> None:
        chain, self.chain = self.chain, None
        if chain is None:
            return
        chain.running = False
        if self._chain_thread is not None:
            self._chain_thread.join(timeout=1.0)
        try:
            chain.motor_interface.close()
        except Exception as exc:  # noqa: BLE001 - closing a dead bus
            logger.debug("%s %s: closing the bus: %s", self.role, self.name, exc)

    def close(self) -> None:
        """Stop the SDK threads and close the bus (idempotent). The motors then fall back to their firmware
        timeout behaviour (damping) once commands stop arriving."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            robot, self.robot = self.robot, None
            if robot is not None:
                robot._stop_event.set()
                robot._server_thread.join(timeout=1.0)
            self._shutdown_chain()
            logger.info("%s %s on %s closed", self.role, self.name, self.config.channel)

    def __enter__(self) -> _ChainArm:
        return self.open()


class YAMArm(_ChainArm):
    """A follower YAM arm with gripper on one CAN channel.

    ``YAMArm(config, "left").open()`` brings the motors up in gravity-compensation idle; :meth:`command` sends
    absolute targets (joints in rad, gripper in [0, 1]) with the arm's nominal PD gains, scaled by
    :meth:`set_gain_scale`. This class does no speed limiting: :mod:`real.safety` filters every target first.
    Use it as a context manager, or call :meth:`close`.
    """

    role = "arm"

    def __init__(self, config: ArmConfig, name: str = "arm") -> None:
        if not isinstance(config, ArmConfig):
            raise TypeError(f"`config` must be an ArmConfig; got {type(config).__name__}")
        super().__init__(config, name)
        self._gain_scale = 1.0

    def _gripper_type_name(self) -> str:
        return self.config.gripper_type

    def _gripper_limits(self) -> np.ndarray | None:
        limits = self.config.gripper_limits
        return None if limits is None else np.asarray(limits, dtype=float)

    def joint_pos(self) -> np.ndarray:
        """Measured ``(7,)``: 6 joints (rad) + gripper opening (normalised, 0 closed, 1 open)."""
        return self._raw_pos()

    def joint_vel(self) -> np.ndarray:
        """Measured joint velocities ``(7,)`` (gripper in normalised units per second)."""
        self.check()
        return np.asarray(self.robot._joint_state.vel, dtype=np.float64).copy()

    def command(self, target: np.ndarray) -> None:
        """Send absolute position targets ``(7,)`` with the current gains. Raises on a fault or bad input."""
        q = np.array(target, dtype=np.float64).reshape(-1)
        if q.shape != (ARM_JOINTS + 1,) or not np.all(np.isfinite(q)):
            raise InvalidActionError(f"`target` must be 7 finite values (6 joints + gripper); got {target!r}")
        with self._lock:
            self.check()
            self.robot.command_joint_pos(q)

    def set_gain_scale(self, scale: float) -> None:
        """Scale the position gains (kp) by ``scale`` in [0, 1] for the next commands (used by ramped engage)."""
        scale = float(np.clip(scale, 0.0, 1.0))
        with self._lock:
            self.check()
            self._gain_scale = scale
            self.robot.update_kp_kd(self._kp * scale, self._kd.copy())

    def hold(self) -> np.ndarray:
        """Hold the measured pose with the nominal gains; returns the held pose."""
        with self._lock:
            q = self.joint_pos()
            self.robot.update_kp_kd(self._kp.copy(), self._kd.copy())
            self._gain_scale = 1.0
            self.robot.command_joint_pos(q.copy())
            return q

    def damp(self, kd: np.ndarray | None = None) -> None:
        """No position gains, damping ``kd`` (7,) and gravity compensation: the arm is compliant and slows down."""
        kd = np.asarray(self._kd if kd is None else kd, dtype=np.float64)
        with self._lock:
            self.check()
            q = self.joint_pos()
            self.robot.command_joint_state({"pos": q, "vel": np.zeros_like(q), "kp": np.zeros_like(q), "kd": kd})

    @property
    def gain_scale(self) -> float:
        """Current position-gain scale (1 = nominal)."""
        return self._gain_scale


class LeaderArm(_ChainArm):
    """A leader arm for teleoperation: a YAM (GELLO-style) read over the same SDK, in gravity-compensation idle.

    :meth:`read` returns ``(7,)`` in the follower's units: 6 joint angles (rad) and a gripper opening in [0, 1]
    from the teaching handle's trigger (I2RT's convention: ``1 - encoder position``), a gripper motor, or the
    configured default.
    """

    role = "leader"

    def __init__(self, config: LeaderConfig, name: str = "leader") -> None:
        if not isinstance(config, LeaderConfig):
            raise TypeError(f"`config` must be a LeaderConfig; got {type(config).__name__}")
        super().__init__(config, name)

    def _check_channel(self) -> None:
        if self.config.handle == "teaching_handle" and self.config.interface != "socketcan":
            raise HardwareNotFoundError(
                f"leader {self.name!r}: the teaching handle's encoder is only reachable over socketcan; the "
                f"{self.config.interface!r} bus has none. Use handle: gripper or none."
            )
        super()._check_channel()

    def _gripper_type_name(self) -> str | None:
        handle = self.config.handle
        if handle == "teaching_handle":
            return "yam_teaching_handle"
        return self.config.gripper_type if handle == "gripper" else None

    def _gripper_limits(self) -> np.ndarray | None:
        return np.asarray(self.config.gripper_limits, dtype=float)

    def _same_bus_device(self) -> Any:
        if self.config.handle != "teaching_handle":
            return None
        from i2rt.robots.get_robot import get_encoder_chain

        return get_encoder_chain

    def read(self) -> np.ndarray:
        """Leader pose ``(7,)``: 6 joints (rad) + gripper command in [0, 1]."""
        q = self._raw_pos()
        handle = self.config.handle
        if handle == "gripper":
            return np.concatenate([q[:ARM_JOINTS], [float(np.clip(q[ARM_JOINTS], 0.0, 1.0))]])
        if handle == "teaching_handle":
            states = self.chain.get_same_bus_device_states()
            if not states:
                raise MotorNotRespondingError(f"leader {self.name!r}: the teaching handle has not reported yet")
            grip = float(np.clip(1.0 - states[0].position, 0.0, 1.0))
            return np.concatenate([q[:ARM_JOINTS], [grip]])
        return np.concatenate([q[:ARM_JOINTS], [self.config.gripper_default]])
