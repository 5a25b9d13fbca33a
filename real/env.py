"""``RealStationEnv``: the real bimanual YAM + D405 station behind the simulated tasks' Gymnasium API.

Task card
---------
Description
    Two follower YAM arms (6 joints + linear gripper each) and three RealSense D405 cameras (top, left wrist,
    right wrist), driven at a fixed control rate. Same spaces and info keys as the simulated ``SARM2/*`` tasks,
    so ``SARM2RewardWrapper``, the benchmark's evaluation loop and SPIRAL run unchanged on hardware.
Observation
    ``Dict(pixels=Dict(top, left_wrist, right_wrist: Box(H, W, 3, uint8)), agent_pos=Box(14,))``; ``agent_pos`` is
    2 x [6 measured joint angles (rad), gripper opening in [0, 1]] (left arm first). Images are the newest frame of
    each camera, resized to ``image_size`` by area averaging.
Action
    ``Box(14,)``: absolute joint-position targets in the same units (what YAM / GELLO teleop and VLAs emit). Bounds
    are the arm model's joint ranges, exactly as in simulation. Every action passes the safety filter
    (:mod:`real.safety`): joint limits of the config, gripper range, per-step velocity clamp, delta clamp to the
    measured pose. A wrong shape, NaN or inf raises :class:`~sarm2_env.errors.InvalidActionError` before
    anything moves.
Success and progress
    From the operator (keys, :class:`real.labels.OperatorLabels`) or a labelling hook: ``info["success"]``,
    ``info["progress"]`` in [0, 1], ``info["task"]``, and ``info["primitive"]`` when a primitive is labelled.
    Reward = ``float(success)``, as in simulation.
Episode end
    ``terminated`` on success (``terminate_on_success``) or an operator "fail"; ``truncated`` on the operator's
    "end", ``max_episode_steps``, or any safety stop (e-stop, watchdog, fault).
Reset
    Engages the arms with gains ramped from 0 over ``engage_time_s`` while holding the measured pose, then moves
    both arms to the configured home pose at ``home_velocity`` (``options={"home": False}`` skips the move).
Extra info keys
    ``action/clipped`` (action values outside the bounds, as in simulation), ``safety/clipped``,
    ``safety/joint_limit_clips``, ``safety/gripper_clips``, ``safety/velocity_clamps``,
    ``safety/delta_clamps`` (values changed this step), ``safety/stopped``, ``safety/estop``,
    ``safety/stop_reason``, ``safety/stops`` (e-stops, watchdog trips and faults so far), ``timing/period_s``,
    ``timing/overrun``. Totals and timing statistics: :meth:`RealStationEnv.stats`.
Version history
    v0: first release.
"""

from __future__ import annotations

import atexit
import collections
import dataclasses
import functools
import logging
import os
import threading
import time
import weakref
from collections.abc import Mapping
from typing import IO, Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium.envs.registration import EnvSpec
from typing_extensions import override

from real.arm import YAMArm
from real.camera import D405Camera
from real.closing import ClosedOnExit
from real.config import StationConfig, _image_size, arm_joint_range, load_station_config
from real.errors import CameraError, EStopActiveError, MotorFaultError, SafetyStopError, StaleFrameError
from real.labels import LabelHook, OperatorLabels
from real.safety import KeyListener, SafetyFilter, SafetySupervisor, SignalEStop, estop_key_bindings
from sarm2_env.actions import JOINT_OVERSHOOT, check_action, station_spaces
from sarm2_env.constants import ACTION_DIM, ARMS, CAMERAS, PRIMITIVES
from sarm2_env.errors import ConfigError

__all__ = ["JOINT_OVERSHOOT", "RealStationEnv"]

logger = logging.getLogger(__name__)

#: Joint error (rad) under which the move to home counts as arrived.
HOME_TOLERANCE = 0.03
_LIVE: weakref.WeakSet[RealStationEnv] = weakref.WeakSet()
#: The bimanual station model in the i2rt wheel (the simulated tasks build on it too).
_STATION_XML = "robot_models/station/yam_station_linear_4310_d405/yam_station_linear_4310_d405.xml"


@atexit.register
def _close_live_envs() -> None:  # pragma: no cover - runs at interpreter exit
    for env in list(_LIVE):
        try:
            env.close()
        except Exception:  # noqa: BLE001
            logger.exception("closing the station at exit failed")


@functools.cache
def _station_range_cached(arm: str) -> tuple[tuple[float, float], ...]:
    import xml.etree.ElementTree as ET
    from importlib.resources import files

    path = files("i2rt") / _STATION_XML
    ranges = {j.get("name"): j.get("range") for j in ET.parse(str(path)).getroot().iter("joint")}
    return tuple(tuple(float(v) for v in ranges[f"{arm}_joint{i}"].split()) for i in range(1, 7))  # type: ignore[misc]


def _station_joint_range(arm: str) -> np.ndarray:
    """Joint ranges ``(6, 2)`` of ``arm`` in the station model the simulated tasks use (so the spaces are equal to
    the last bit; the YAM arm model agrees with it to 1e-15 rad)."""
    return np.array(_station_range_cached(arm), dtype=np.float64)


class _RateKeeper:
    """Sleeps until the next tick of a fixed-rate loop and keeps period statistics."""

    def __init__(self, hz: float, history: int = 10_000) -> None:
        self.period = 1.0 / hz
        self.periods: collections.deque[float] = collections.deque(maxlen=history)
        self.overruns = 0
        self.ticks = 0
        self.reset()

    def reset(self) -> None:
        now = time.monotonic()
        self._last = now
        self._next = now + self.period

    def sleep(self) -> tuple[float, bool]:
        """Wait for the next tick; returns the measured period and whether the tick was missed."""
        now = time.monotonic()
        overrun = now > self._next
        if not overrun:
            time.sleep(self._next - now)
        tick = time.monotonic()
        period, self._last = tick - self._last, tick
        self._next += self.period
        if self._next < tick:  # fell behind: restart the schedule rather than rushing to catch up
            self._next = tick + self.period
        self.periods.append(period)
        self.ticks += 1
        self.overruns += int(overrun)
        return period, overrun

    def stats(self) -> dict[str, float]:
        if not self.periods:
            return {"loop_hz": 0.0, "period_ms_mean": 0.0, "period_ms_p95": 0.0, "period_ms_max": 0.0, "jitter_ms": 0.0}
        p = np.asarray(self.periods) * 1000.0
        return {
            "loop_hz": float(1000.0 / p.mean()),
            "period_ms_mean": float(p.mean()),
            "period_ms_p95": float(np.percentile(p, 95)),
            "period_ms_max": float(p.max()),
            "jitter_ms": float(p.std()),
        }


def _checked_arguments(
    config: Any, image_size: Any, render_mode: str | None, max_episode_steps: int | None
) -> StationConfig:
    """The station config (loaded from a path where one is given, resized to ``image_size``) once the env's
    arguments are checked; bad ones are :class:`ConfigError` before any hardware is touched."""
    if not isinstance(config, StationConfig):
        config = load_station_config(config)
    if image_size is not None:
        config = dataclasses.replace(config, image_size=_image_size(image_size, "image_size"))
    if render_mode not in (None, "rgb_array"):
        raise ConfigError(f"`render_mode` must be None or 'rgb_array'; got {render_mode!r}")
    if max_episode_steps is not None and (not isinstance(max_episode_steps, int) or max_episode_steps < 1):
        raise ConfigError(f"`max_episode_steps` must be None or a positive integer; got {max_episode_steps!r}")
    return config


class RealStationEnv(ClosedOnExit, gym.Env):
    """The real station as a Gymnasium env (see the module docstring, the task card).

    Args:
        config: a :class:`StationConfig` or the path of a station YAML file.
        task: the instruction reported as ``info["task"]`` (what a reward model is conditioned on).
        task_id: dataset / reward-model task id of the episodes (e.g. ``"real/fold_shorts"``); also ``env.spec.id``,
            so a reward model trained on demos recorded under this id covers the env.
        image_size: overrides the config's ``image_size`` (int or ``(height, width)``).
        max_episode_steps: truncate after this many steps (``None``: only the operator or a stop ends episodes).
        terminate_on_success: end the episode (``terminated``) once ``info["success"]``.
        labels: the operator's labels (created when not given); read each step.
        label_hook: ``hook(obs, info) -> mapping`` overriding ``progress`` / ``success`` / ``primitive`` / ``done``.
        key_source: where operator keys come from: ``None`` = the terminal if stdin is one, else none; or a file
            descriptor / file object (a pipe, a FIFO). ``listen_keys=False`` disables keys.
        install_signal_handlers: map the config's ``estop_signals`` to the e-stop (main thread only).
        render_mode: ``None`` or ``"rgb_array"`` (the three views side by side).

    The constructor opens the cameras, then the arms (motors enabled in gravity-compensation idle: nothing moves);
    ``reset()`` engages them. Use ``with RealStationEnv(...) as env:`` so the arms are held, damped and released
    on every exit path (``close()`` also runs at interpreter exit).
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": 30}

    def __init__(
        self,
        config: StationConfig | str | os.PathLike[str],
        *,
        task: str = "",
        task_id: str = "real/station",
        image_size: int | tuple[int, int] | None = None,
        max_episode_steps: int | None = None,
        terminate_on_success: bool = True,
        labels: OperatorLabels | None = None,
        label_hook: LabelHook | None = None,
        key_source: int | IO[Any] | None = None,
        listen_keys: bool = True,
        install_signal_handlers: bool = True,
        render_mode: str | None = None,
    ) -> None:
        config = _checked_arguments(config, image_size, render_mode, max_episode_steps)
        self.config = config
        self.task = str(task)
        self.task_id = str(task_id)
        try:  # the spec carries the task id, which reward models look up (SARM2RewardWrapper's coverage check)
            self.spec = EnvSpec(
                id=self.task_id,
                entry_point="real.env:RealStationEnv",
                max_episode_steps=max_episode_steps,
                kwargs={"task": self.task, "task_id": self.task_id},
            )
        except gym.error.Error as exc:
            raise ConfigError(
                f"`task_id` must look like 'real/fold_shorts' (letters, digits, _ . : - and one '/'); got {task_id!r}"
            ) from exc
        self.render_mode = render_mode
        self.max_episode_steps = max_episode_steps
        self.terminate_on_success = bool(terminate_on_success)
        self.control_hz = float(config.control_hz)
        self.metadata = {**self.metadata, "render_fps": self.control_hz}
        self.height, self.width = config.image_size
        self.labels = labels if labels is not None else OperatorLabels()
        self.label_hook = label_hook
        self._build_spaces()
        self.home_action = np.concatenate([np.asarray(config.arms[a].home) for a in ARMS]).astype(np.float32)
        self.safety_filter = SafetyFilter.from_config(config)

        self.arms: dict[str, YAMArm] = {}
        self.cameras: dict[str, D405Camera] = {}
        self._closed = False
        self._close_lock = threading.Lock()
        self._engaged = False
        self._episode_active = False
        self._elapsed_steps = 0
        self._episode_start = time.monotonic()
        self._target = np.zeros(ACTION_DIM)
        self._last_pixels: dict[str, np.ndarray] | None = None
        self._rate = _RateKeeper(self.control_hz)
        self._clip_totals = {"joint_limit": 0, "gripper_limit": 0, "velocity": 0, "delta": 0}
        self._clip_warned: set[str] = set()
        self._steps_total = 0
        self._signals: SignalEStop | None = None
        self._keys: KeyListener | None = None
        try:
            for cam in CAMERAS:
                self.cameras[cam] = D405Camera(config.cameras[cam], cam, output_size=config.image_size).open()
            for arm in ARMS:
                self.arms[arm] = YAMArm(config.arms[arm], arm).open()
        except BaseException:
            self._release_hardware()
            raise
        self.supervisor = SafetySupervisor(self.arms, self.cameras, config.safety).start()
        if install_signal_handlers:
            self._signals = SignalEStop(self.supervisor, config.safety.estop_signals).install()
        if listen_keys:
            bindings = {**self.labels.key_bindings(config.labels), **estop_key_bindings(self.supervisor, config.safety)}
            self._keys = KeyListener(bindings, key_source).start()
        _LIVE.add(self)

    # ------------------------------------------------------------------ spaces
    def _build_spaces(self) -> None:
        lo, hi = [], []
        for arm in ARMS:
            arm_type = self.config.arms[arm].arm_type
            r = _station_joint_range(arm) if arm_type == "yam" else arm_joint_range(arm_type)
            lo += [*r[:, 0], 0.0]
            hi += [*r[:, 1], 1.0]
        low, high = np.asarray(lo, dtype=np.float32), np.asarray(hi, dtype=np.float32)
        self.action_space, self.observation_space = station_spaces(low, high, self.height, self.width)

    # ------------------------------------------------------------------ hardware helpers
    def _measured(self) -> np.ndarray:
        return np.concatenate([self.arms[a].joint_pos() for a in ARMS])

    def _command(self, target: np.ndarray) -> bool:
        """Send ``target`` (14,) unless the station is stopped; returns whether it was sent."""
        with self.supervisor.command_lock:
            if self.supervisor.stopped:
                return False
            for i, arm in enumerate(ARMS):
                self.arms[arm].command(target[7 * i : 7 * i + 7])
            self._target = np.asarray(target, dtype=np.float64).copy()
            return True

    def _check_hardware(self) -> None:
        if self._closed:
            raise gym.error.ClosedEnvironmentError("RealStationEnv is closed")
        for arm in self.arms.values():
            arm.check()
        for name, cam in self.cameras.items():
            if cam.error is not None:
                raise CameraError(f"camera {name!r} (serial {cam.config.serial}) stopped: {cam.error}")

    def _stopped(self, where: str) -> None:
        if self.supervisor.estopped:
            raise EStopActiveError(
                f"the e-stop engaged during {where} ({self.supervisor.reason}); release it with env.release_estop() "
                f"or key {self.config.safety.release_key!r}, then reset()"
            )
        raise SafetyStopError(f"the station stopped during {where}: {self.supervisor.reason}")

    def _engage(self) -> None:
        """Ramp the position gains from 0 to nominal while holding the measured pose."""
        q = self._measured()
        steps = max(1, int(round(self.config.safety.engage_time_s * self.control_hz)))
        self.supervisor.set_engaged(True)  # watch the bus and cameras from the first gain step on
        self._rate.reset()
        for k in range(1, steps + 1):
            with self.supervisor.command_lock:
                if self.supervisor.stopped:
                    self._stopped("engage")
                for i, arm in enumerate(ARMS):
                    self.arms[arm].set_gain_scale(k / steps)
                    self.arms[arm].command(q[7 * i : 7 * i + 7])
            self._target = q.copy()
            self._rate.sleep()
        self._engaged = True
        logger.info("arms engaged (gains ramped over %d steps)", steps)

    def _move_to(self, goal: np.ndarray, timeout_s: float = 30.0) -> None:
        """Move the targets to ``goal`` at ``home_velocity`` (and within the safety filter), then wait to settle."""
        goal = np.clip(np.asarray(goal, dtype=np.float64), self.safety_filter.lower, self.safety_filter.upper)
        s = self.config.safety
        step = np.array(([s.home_velocity] * 6 + [s.max_gripper_velocity]) * 2) / self.control_hz
        joints = np.ones(ACTION_DIM, dtype=bool)
        joints[[6, 13]] = False
        deadline = time.monotonic() + timeout_s
        self._rate.reset()
        while True:
            if self.supervisor.stopped:
                self._stopped("the move to home")
            measured = self._measured()
            wanted = self._target + np.clip(goal - self._target, -step, step)
            target = self.safety_filter(wanted, self._target, measured).target
            if not self._command(target):
                self._stopped("the move to home")
            self._rate.sleep()
            arrived = np.allclose(self._target, goal, atol=1e-9)
            settled = np.all(np.abs(self._measured()[joints] - goal[joints]) < HOME_TOLERANCE)
            if arrived and settled:
                return
            if time.monotonic() > deadline:
                logger.warning(
                    "the arms did not settle at home within %.0f s; continuing from where they are", timeout_s
                )
                return

    # ------------------------------------------------------------------ observation / info
    def _observe(self) -> dict[str, Any]:
        pixels: dict[str, np.ndarray] = {}
        timeout = self.config.safety.camera_timeout_s
        for name, cam in self.cameras.items():
            try:
                pixels[name] = cam.latest(max_age_s=timeout).image
            except StaleFrameError as exc:
                self.supervisor.trip("watchdog", str(exc))
            except CameraError as exc:
                self.supervisor.trip("fault", str(exc))
            if name not in pixels:
                previous = self._last_pixels[name] if self._last_pixels is not None else None
                pixels[name] = (
                    previous if previous is not None else np.zeros((self.height, self.width, 3), dtype=np.uint8)
                )
        try:
            state = self._measured()
        except MotorFaultError as exc:
            self.supervisor.trip("fault", str(exc))
            state = self._target.copy()
        space = self.observation_space["agent_pos"]
        agent_pos = np.clip(state, space.low, space.high).astype(np.float32)
        self._last_pixels = pixels
        return {"pixels": pixels, "agent_pos": agent_pos}

    def _labels(self, obs: dict[str, Any]) -> tuple[dict[str, Any], bool, bool]:
        state = self.labels.snapshot()
        info: dict[str, Any] = {"success": bool(state.success), "progress": float(state.progress), "task": self.task}
        if state.primitive is not None:
            info["primitive"] = state.primitive
        done, failed = state.done, state.failed
        if self.label_hook is not None:
            extra = self.label_hook(obs, dict(info))
            if not isinstance(extra, Mapping):
                raise ConfigError(f"`label_hook` must return a mapping; got {type(extra).__name__}")
            unknown = sorted(set(extra) - {"progress", "success", "primitive", "done"})
            if unknown:
                raise ConfigError(f"`label_hook` may set progress, success, primitive, done; got {unknown}")
            if "progress" in extra:
                info["progress"] = float(np.clip(float(extra["progress"]), 0.0, 1.0))
            if "success" in extra:
                info["success"] = bool(extra["success"])
            if extra.get("primitive") is not None:
                if extra["primitive"] not in PRIMITIVES:
                    raise ConfigError(
                        f"`label_hook` primitive must be one of the 22 SARM2 names; got {extra['primitive']!r}"
                    )
                info["primitive"] = extra["primitive"]
            done = done or bool(extra.get("done", False))
        return info, done, failed

    def _safety_info(self, counts: Mapping[str, int] | None = None) -> dict[str, Any]:
        counts = counts or {}
        return {
            # Values outside the action space's bounds, as the simulated tasks report them.
            "action/clipped": int(counts.get("joint_limit", 0) + counts.get("gripper_limit", 0)),
            "safety/clipped": int(sum(counts.values())),
            "safety/joint_limit_clips": int(counts.get("joint_limit", 0)),
            "safety/gripper_clips": int(counts.get("gripper_limit", 0)),
            "safety/velocity_clamps": int(counts.get("velocity", 0)),
            "safety/delta_clamps": int(counts.get("delta", 0)),
            "safety/stopped": bool(self.supervisor.stopped),
            "safety/estop": bool(self.supervisor.estopped),
            "safety/stop_reason": self.supervisor.reason or "",
            "safety/stops": int(sum(self.supervisor.counts[k] for k in ("estops", "watchdog_trips", "faults"))),
        }

    # ------------------------------------------------------------------ gym API
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        """Engage (ramped gains at the measured pose) and move home; see the module docstring."""
        super().reset(seed=seed)
        options = dict(options or {})
        unknown = sorted(set(options) - {"home"})
        if unknown:
            raise ConfigError(f"`options` may contain 'home'; got {unknown}")
        self._episode_active = False
        self.supervisor.watch_policy(False)
        if self.supervisor.estopped:
            raise EStopActiveError(
                f"the e-stop is engaged ({self.supervisor.reason}); release it with env.release_estop() or key "
                f"{self.config.safety.release_key!r} before reset()"
            )
        self._check_hardware()
        timeout = self.config.safety.camera_timeout_s
        self.supervisor.watch_cameras(False)  # a camera recovering from a stall is not a new stall
        try:
            for cam in self.cameras.values():  # a fresh frame from every camera before anything moves
                cam.wait_for_frame(timeout_s=max(2.0, 4 * timeout), newer_than=time.monotonic() - timeout / 2)
        finally:
            self.supervisor.watch_cameras(True)
        if self.supervisor.stopped:
            logger.info("re-engaging after the stop (%s)", self.supervisor.reason)
            self.supervisor.clear()
            self._engaged = False
        if not self._engaged:
            self._engage()
        if options.get("home", True):
            self._move_to(self.home_action.astype(np.float64))
        self.labels.reset()
        self._elapsed_steps = 0
        self._episode_start = time.monotonic()
        self._clip_warned.clear()
        self._episode_active = True
        self._rate.reset()
        obs = self._observe()
        info, _, _ = self._labels(obs)
        info.update(self._safety_info())
        info.update({"timing/period_s": 0.0, "timing/overrun": False})
        return obs, info

    def step(self, action):
        """Filter and send ``action``, wait for the next control tick, observe. See the module docstring."""
        arr = check_action(action)  # before anything can move
        if self._closed:
            raise gym.error.ClosedEnvironmentError("RealStationEnv is closed")
        if not self._episode_active:
            raise gym.error.ResetNeeded("RealStationEnv: call reset() before step() (and after an episode ends)")
        counts: dict[str, int] = {}
        sent = False
        if not self.supervisor.stopped:
            try:
                measured = self._measured()
                result = self.safety_filter(arr, self._target, measured)
                counts = result.counts()
                sent = self._command(result.target)
            except MotorFaultError as exc:
                self.supervisor.trip("fault", str(exc))
            if sent:
                if self._elapsed_steps == 0:
                    self.supervisor.watch_policy(True)
                self.supervisor.heartbeat()
                self._account_clips(counts, arr, result.target)
        period, overrun = self._rate.sleep()
        self._elapsed_steps += 1
        self._steps_total += 1
        obs = self._observe()
        info, done, failed = self._labels(obs)
        info.update(self._safety_info(counts))
        info.update({"timing/period_s": float(period), "timing/overrun": bool(overrun)})
        success = bool(info["success"])
        terminated = bool((success and self.terminate_on_success) or failed)
        stopped = self.supervisor.stopped
        limit = self.max_episode_steps is not None and self._elapsed_steps >= self.max_episode_steps
        truncated = bool(not terminated and (done or stopped or limit))
        if terminated or truncated:
            self._end_episode()
        return obs, float(success), terminated, truncated, info

    def _account_clips(self, counts: Mapping[str, int], requested: np.ndarray, target: np.ndarray) -> None:
        for kind, n in counts.items():
            if not n:
                continue
            self._clip_totals[kind] += n
            logger.debug("step %d: %s clipped %d value(s)", self._elapsed_steps, kind, n)
            if kind not in self._clip_warned:
                self._clip_warned.add(kind)
                worst = int(np.argmax(np.abs(requested - target)))
                logger.warning(
                    "safety %s clip (first this episode, step %d): action[%d] %.3f -> %.3f",
                    kind,
                    self._elapsed_steps,
                    worst,
                    requested[worst],
                    target[worst],
                )

    def _end_episode(self) -> None:
        if self._episode_active:
            self._episode_active = False
            self.supervisor.watch_policy(False)
            if any(self._clip_totals.values()):
                logger.info("safety clips so far: %s", self._clip_totals)

    @override
    def render(self):
        if self.render_mode != "rgb_array":
            return None
        pixels = self._last_pixels if self._last_pixels is not None else self._observe()["pixels"]
        return np.concatenate([pixels[cam] for cam in CAMERAS], axis=1)

    # ------------------------------------------------------------------ operator / safety API
    def estop(self, reason: str = "software e-stop") -> None:
        """Engage the e-stop now: hold the measured pose, then damp."""
        self.supervisor.estop(reason)

    def release_estop(self) -> None:
        """Release the e-stop; the next ``reset()`` re-engages the arms with ramped gains."""
        self.supervisor.release_estop()

    @property
    def elapsed_steps(self) -> int:
        """Steps in the current episode."""
        return self._elapsed_steps

    def stats(self) -> dict[str, Any]:
        """Loop timing, safety totals and stops, per-arm bus and per-camera stream statistics."""
        return {
            "control_hz": self.control_hz,
            "steps": self._steps_total,
            **self._rate.stats(),
            "overruns": self._rate.overruns,
            "safety": {**self.supervisor.snapshot(), "clips": dict(self._clip_totals)},
            "arms": {
                name: {"bringup_s": arm.bringup_time_s, "bus_hz": arm.bus_rate(), "bus_cycles": arm.bus_cycles}
                for name, arm in self.arms.items()
            },
            "cameras": {
                name: {"fps": cam.fps(), "frames": cam.frames_received, "timeouts": cam.timeouts}
                for name, cam in self.cameras.items()
            },
        }

    # ------------------------------------------------------------------ shutdown
    def _release_hardware(self) -> None:
        for arm in self.arms.values():
            try:
                arm.close()
            except Exception:  # noqa: BLE001
                logger.exception("closing arm %s failed", arm.name)
        for cam in self.cameras.values():
            try:
                cam.close()
            except Exception:  # noqa: BLE001
                logger.exception("closing camera %s failed", cam.name)

    def close(self) -> None:
        """Hold, damp, and release the arms, stop the cameras, the watchdog and the input listeners (idempotent)."""
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
        self._episode_active = False
        if self._keys is not None:
            self._keys.close()
        if self._signals is not None:
            self._signals.uninstall()
        supervisor = getattr(self, "supervisor", None)
        if supervisor is not None:
            supervisor.watch_policy(False)
            if self._engaged and any(arm.fault is None for arm in self.arms.values()):
                if not supervisor.stopped:
                    supervisor.trip("shutdown", "close()")
                    time.sleep(min(self.config.safety.hold_time_s, 0.5))
                cycles = {name: arm.bus_cycles for name, arm in self.arms.items()}
                supervisor.damp_now()
                deadline = time.monotonic() + 0.25  # let the damping command reach every motor (2 bus cycles)
                while time.monotonic() < deadline and any(
                    arm.fault is None and arm.bus_cycles < cycles[name] + 2 for name, arm in self.arms.items()
                ):
                    time.sleep(0.005)
            supervisor.close()
        self._release_hardware()
        _LIVE.discard(self)
        if supervisor is not None:
            logger.info("station closed: %s", {k: v for k, v in supervisor.snapshot().items() if k != "events"})

    def __enter__(self) -> RealStationEnv:
        return self
