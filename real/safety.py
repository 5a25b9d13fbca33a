"""The safety layer the ``i2rt`` SDK does not have: target filtering, e-stop, watchdog.

* :class:`SafetyFilter` turns a requested 14-d action into a target the arms may receive: joint-limit and
  gripper-range clipping, a per-step velocity clamp (target change <= ``max_joint_velocity / control_hz``) and a
  delta clamp (target within ``max_joint_delta`` of the *measured* joints). Pure numpy; counts every clip.
* :class:`SafetySupervisor` is a thread that watches the arms' CAN feedback, the cameras' frame ages and the
  policy's heartbeat, and executes stops: **hold** the measured pose with nominal gains, then after
  ``hold_time_s`` **damp** (no position gains, damping only, gravity compensation on). Every stop is logged and
  counted. An e-stop stays engaged until :meth:`SafetySupervisor.release_estop`; a watchdog stop clears on the
  next ``reset()``.
* :class:`SignalEStop` maps POSIX signals (``SIGUSR1``, ``SIGINT``, ...) to the e-stop; SIGINT then still ends
  the program (``KeyboardInterrupt``) so it unwinds through the env's context manager and shuts down safely.
* :class:`KeyListener` reads single key presses from a terminal (cbreak mode) or any file descriptor (a pipe in
  tests, a FIFO for a foot pedal script) in a thread and calls bound callbacks.

Signal handlers and key callbacks only *request* a stop; the supervisor thread performs it, so a handler never
blocks on a lock the interrupted thread holds.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import select
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import IO, Any

import numpy as np

from real.config import SafetyConfig, StationConfig
from sarm2_env.constants import ACTION_DIM, ARMS, GRIPPER_INDICES

__all__ = [
    "FilterResult",
    "KeyListener",
    "SafetyFilter",
    "SafetySupervisor",
    "SignalEStop",
    "StopEvent",
    "estop_key_bindings",
]

logger = logging.getLogger(__name__)


# ----------------------------------------------------------------------------------------------- filter


@dataclasses.dataclass(frozen=True)
class FilterResult:
    """A filtered target and how many of its 14 values each rule changed."""

    target: np.ndarray
    joint_limit: int = 0
    gripper_limit: int = 0
    velocity: int = 0
    delta: int = 0

    @property
    def clipped(self) -> int:
        """Values changed by any rule (a value changed by two rules counts once per rule)."""
        return self.joint_limit + self.gripper_limit + self.velocity + self.delta

    def counts(self) -> dict[str, int]:
        """``{"joint_limit", "gripper_limit", "velocity", "delta"}`` counts."""
        return {
            "joint_limit": self.joint_limit,
            "gripper_limit": self.gripper_limit,
            "velocity": self.velocity,
            "delta": self.delta,
        }


class SafetyFilter:
    """Clip and clamp 14-d joint targets (2 x [6 joints in rad, gripper in [0, 1]]).

    Args:
        lower, upper: ``(14,)`` limits (joint limits and the gripper range).
        max_step: ``(14,)`` largest change of a target from the previous target per step.
        max_delta: ``(14,)`` largest distance of a target from the measured position (``inf`` = none).

    Order: limits, then the velocity clamp against the previous target, then the delta clamp against the measured
    position, then limits again (a measured pose outside the limits must not pull a target outside them).
    """

    def __init__(self, lower: np.ndarray, upper: np.ndarray, max_step: np.ndarray, max_delta: np.ndarray) -> None:
        self.lower = np.asarray(lower, dtype=np.float64).reshape(ACTION_DIM)
        self.upper = np.asarray(upper, dtype=np.float64).reshape(ACTION_DIM)
        self.max_step = np.asarray(max_step, dtype=np.float64).reshape(ACTION_DIM)
        self.max_delta = np.asarray(max_delta, dtype=np.float64).reshape(ACTION_DIM)
        self._grip = np.zeros(ACTION_DIM, dtype=bool)
        self._grip[list(GRIPPER_INDICES)] = True

    @classmethod
    def from_config(cls, config: StationConfig) -> SafetyFilter:
        """The filter for a station: arm joint limits, gripper range, velocity limits at ``control_hz``."""
        s = config.safety
        lower, upper = [], []
        for arm in ARMS:
            limits = config.arms[arm].limits()
            lower += [*limits[:, 0], s.gripper_range[0]]
            upper += [*limits[:, 1], s.gripper_range[1]]
        step_joint, step_grip = s.max_joint_velocity / config.control_hz, s.max_gripper_velocity / config.control_hz
        max_step = np.array(([step_joint] * 6 + [step_grip]) * 2)
        # The gripper has no delta clamp: a grasp holds it away from its target by design.
        max_delta = np.array(([s.max_joint_delta] * 6 + [np.inf]) * 2)
        return cls(np.array(lower), np.array(upper), max_step, max_delta)

    def __call__(self, action: np.ndarray, previous: np.ndarray, measured: np.ndarray) -> FilterResult:
        """Filter ``action`` given the previous target and the measured position (all ``(14,)``)."""
        a = np.asarray(action, dtype=np.float64).reshape(ACTION_DIM)
        prev = np.asarray(previous, dtype=np.float64).reshape(ACTION_DIM)
        meas = np.asarray(measured, dtype=np.float64).reshape(ACTION_DIM)
        limited = np.clip(a, self.lower, self.upper)
        changed = limited != a
        joint_limit = int(np.count_nonzero(changed & ~self._grip))
        gripper_limit = int(np.count_nonzero(changed & self._grip))
        stepped = prev + np.clip(limited - prev, -self.max_step, self.max_step)
        velocity = int(np.count_nonzero(stepped != limited))
        near = meas + np.clip(stepped - meas, -self.max_delta, self.max_delta)
        delta = int(np.count_nonzero(near != stepped))
        target = np.clip(near, self.lower, self.upper)
        return FilterResult(target, joint_limit, gripper_limit, velocity, delta)


# ----------------------------------------------------------------------------------------------- supervisor


_COUNT_KEYS = {"estop": "estops", "watchdog": "watchdog_trips", "fault": "faults", "shutdown": "shutdowns"}


@dataclasses.dataclass(frozen=True)
class StopEvent:
    """One stop: when (``time.monotonic()``), what kind (``estop``, ``watchdog``, ``fault``, ``shutdown``) and why."""

    time: float
    kind: str
    reason: str


class SafetySupervisor:
    """Watchdog and stop executor for a set of arms and cameras (see the module docstring).

    Args:
        arms: name -> arm with ``hold()``, ``damp(kd)``, ``bus_age()`` and ``fault`` (a :class:`real.arm.YAMArm`).
        cameras: name -> camera with ``frame_age()`` and ``error`` (a :class:`real.camera.D405Camera`).
        config: timeouts, hold time, damping gains.

    :attr:`command_lock` must be held while commanding the arms; a stop takes it, so after :meth:`stopped` turns
    true no further policy command reaches a motor.
    """

    def __init__(self, arms: Mapping[str, Any], cameras: Mapping[str, Any], config: SafetyConfig) -> None:
        self.arms = dict(arms)
        self.cameras = dict(cameras)
        self.config = config
        self.command_lock = threading.RLock()
        self.events: list[StopEvent] = []
        self.counts = {"estops": 0, "watchdog_trips": 0, "faults": 0, "shutdowns": 0, "damped": 0}
        self._stopped = False
        self._estopped = False
        self._damped = False
        self._stop_time = 0.0
        self._reason: str | None = None
        self._engaged = False
        self._policy_watch = False
        self._camera_watch = True
        self._heartbeat = time.monotonic()
        self._pending: list[str] = []
        self._wake = threading.Event()
        self._halt = threading.Event()
        self._thread: threading.Thread | None = None

    # -- lifetime
    def start(self) -> SafetySupervisor:
        """Start the watchdog thread."""
        if self._thread is None:
            self._halt.clear()
            self._thread = threading.Thread(target=self._loop, name="sarm2-safety", daemon=True)
            self._thread.start()
        return self

    def close(self) -> None:
        """Stop the watchdog thread (idempotent)."""
        self._halt.set()
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=2.0)
        self._thread = None

    # -- state
    @property
    def stopped(self) -> bool:
        """True after any stop until :meth:`clear` (watchdog) or :meth:`release_estop` + :meth:`clear` (e-stop)."""
        return self._stopped

    @property
    def estopped(self) -> bool:
        """True while the e-stop is engaged."""
        return self._estopped

    @property
    def damped(self) -> bool:
        """True once a stop has moved from holding to damping."""
        return self._damped

    @property
    def reason(self) -> str | None:
        """Why the station stopped, or ``None``."""
        return self._reason

    def set_engaged(self, engaged: bool) -> None:
        """Watch the bus and cameras (while the arms are under position control)."""
        self._engaged = engaged

    def watch_cameras(self, active: bool) -> None:
        """Check camera frame ages (on by default; off while a reset waits for fresh frames)."""
        self._camera_watch = active

    def watch_policy(self, active: bool) -> None:
        """Require :meth:`heartbeat` at least every ``policy_timeout_s`` (during an episode)."""
        self._heartbeat = time.monotonic()
        self._policy_watch = active

    def heartbeat(self) -> None:
        """The policy delivered an action."""
        self._heartbeat = time.monotonic()

    # -- stops
    def request_estop(self, reason: str, wake: bool = True) -> None:
        """Ask for an e-stop from anywhere (key callbacks, other threads); the watchdog thread executes it within
        one watchdog period. Signal handlers pass ``wake=False`` (they must not touch the event's lock)."""
        self._pending.append(reason)
        if wake:
            self._wake.set()
        if self._thread is None:  # no watchdog running: act now
            self._drain_pending()

    def estop(self, reason: str) -> None:
        """Engage the e-stop now (from a normal thread)."""
        self.trip("estop", reason)

    def release_estop(self) -> None:
        """Release the e-stop. The arms stay damped; ``reset()`` re-engages them with ramped gains."""
        if self._estopped:
            logger.warning("e-stop released (the arms stay damped until the next reset)")
        self._estopped = False

    def clear(self) -> None:
        """Forget a watchdog stop before re-engaging. Raises nothing; an engaged e-stop stays engaged."""
        if self._estopped:
            return
        self._stopped = False
        self._damped = False
        self._reason = None

    def _drain_pending(self) -> None:
        while self._pending:
            self.trip("estop", self._pending.pop(0))

    def trip(self, kind: str, reason: str) -> None:
        """Stop now: ``kind`` is ``estop``, ``watchdog``, ``fault`` or ``shutdown``; hold the measured pose (damping
        follows after ``hold_time_s``). A second stop only upgrades a watchdog stop to an e-stop."""
        with self.command_lock:
            first = not self._stopped
            upgrade = kind == "estop" and not self._estopped
            if not first and not upgrade:
                return
            self.events.append(StopEvent(time.monotonic(), kind, reason))
            self.counts[_COUNT_KEYS.get(kind, "watchdog_trips")] += 1
            if kind == "estop":
                self._estopped = True
            if first:
                self._stopped = True
                self._damped = False
                self._reason = f"{kind}: {reason}"
                self._stop_time = time.monotonic()
                self._policy_watch = False
            logger.warning(
                "STOP (%s): %s -- holding the measured pose, damping in %.2f s", kind, reason, self.config.hold_time_s
            )
            if first:
                for name, arm in self._arms_in_command_order():
                    if not self._commandable(arm):
                        logger.error(
                            "arm %s cannot be commanded (fault or stalled bus); its motors fall back to damping on "
                            "their own once commands stop (firmware timeout)",
                            name,
                        )
                        continue
                    try:
                        arm.hold()
                    except Exception as exc:  # noqa: BLE001 - a dead arm cannot hold; its motors time out to damping
                        logger.error(
                            "arm %s could not hold (%s); its motors fall back to damping on their own", name, exc
                        )

    def _commandable(self, arm: Any) -> bool:
        """Whether a command to ``arm`` can get through now (a stalled bus would block the caller)."""
        try:
            return arm.fault is None and arm.bus_age() <= self.config.bus_timeout_s
        except Exception:  # noqa: BLE001
            return False

    def _arms_in_command_order(self) -> list[tuple[str, Any]]:
        """Healthy arms first, so a stalled arm never delays stopping the others."""
        return sorted(self.arms.items(), key=lambda item: not self._commandable(item[1]))

    def _damp_all(self) -> None:
        with self.command_lock:
            if self._damped or not self._stopped:
                return
            kd = np.asarray(self.config.damping_kd, dtype=np.float64)
            for name, arm in self._arms_in_command_order():
                if not self._commandable(arm):
                    continue
                try:
                    arm.damp(kd)
                except Exception as exc:  # noqa: BLE001
                    logger.error("arm %s could not damp (%s)", name, exc)
            self._damped = True
            self.counts["damped"] += 1
            logger.warning("arms damped after the stop (%s)", self._reason)

    def damp_now(self) -> None:
        """Damp immediately (used on shutdown)."""
        if not self._stopped:
            self.trip("shutdown", "shutdown")
        self._damp_all()

    def check(self) -> None:
        """Run one round of checks now (the watchdog thread calls this at ``watchdog_hz``)."""
        self._drain_pending()
        now = time.monotonic()
        cfg = self.config
        if self._stopped:
            if not self._damped and now - self._stop_time >= cfg.hold_time_s:
                self._damp_all()
            return
        if not self._engaged:
            return
        for name, arm in self.arms.items():
            stalled = "no CAN feedback for {:.0f} ms (bus stalled)"
            if self._trip_stream(f"arm {name}", arm.fault, arm.bus_age, cfg.bus_timeout_s, stalled):
                return
        for name, cam in self.cameras.items() if self._camera_watch else ():
            stalled = "newest frame is {:.0f} ms old (camera stalled)"
            if self._trip_stream(f"camera {name}", cam.error, cam.frame_age, cfg.camera_timeout_s, stalled):
                return
        if self._policy_watch and now - self._heartbeat > cfg.policy_timeout_s:
            self.trip("watchdog", f"policy stalled: no action for {(now - self._heartbeat) * 1000:.0f} ms")

    def _trip_stream(self, what: str, fault: object, age: Callable[[], float], timeout_s: float, stalled: str) -> bool:
        """Trip on ``what``'s ``fault``, else when its newest data is older than ``timeout_s`` (``stalled``: the
        message, formatted with the age in ms); returns whether it tripped."""
        if fault is not None:
            self.trip("fault", f"{what}: {fault}")
            return True
        seconds = age()
        if seconds > timeout_s:
            self.trip("watchdog", f"{what}: {stalled.format(seconds * 1000)}")
            return True
        return False

    def _loop(self) -> None:
        period = 1.0 / self.config.watchdog_hz
        while not self._halt.is_set():
            self._wake.wait(period)
            self._wake.clear()
            if self._halt.is_set():
                break
            try:
                self.check()
            except Exception:  # pragma: no cover - the watchdog must keep running
                logger.exception("safety watchdog check failed")

    def snapshot(self) -> dict[str, Any]:
        """Counts, state and the stop events, for ``info`` and ``stats()``."""
        return {
            **self.counts,
            "stopped": self._stopped,
            "estopped": self._estopped,
            "reason": self._reason,
            "events": [dataclasses.asdict(e) for e in self.events],
        }


# ----------------------------------------------------------------------------------------------- e-stop inputs


class SignalEStop:
    """Map POSIX signals to the e-stop. Install from the main thread; :meth:`uninstall` restores the handlers.

    ``SIGINT`` (Ctrl-C) engages the e-stop and then raises ``KeyboardInterrupt`` as usual, so the program unwinds
    through ``with RealStationEnv(...)`` and shuts the arms down safely.
    """

    def __init__(self, supervisor: SafetySupervisor, signals: Sequence[str]) -> None:
        self.supervisor = supervisor
        self.signals = tuple(signals)
        self.received: list[str] = []
        self._previous: dict[int, Any] = {}

    def install(self) -> SignalEStop:
        """Install the handlers (a no-op with a warning outside the main thread)."""
        if threading.current_thread() is not threading.main_thread():
            logger.warning("e-stop signals %s not installed: signal handlers need the main thread", self.signals)
            return self
        for name in self.signals:
            signum = getattr(signal, name)
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        name = signal.Signals(signum).name
        self.received.append(name)
        self.supervisor.request_estop(f"signal {name}", wake=False)
        if signum == signal.SIGINT:
            previous = self._previous.get(signum)
            if callable(previous):
                previous(signum, frame)
            elif previous != signal.SIG_IGN:
                raise KeyboardInterrupt

    def uninstall(self) -> None:
        """Restore the previous handlers."""
        if threading.current_thread() is not threading.main_thread():
            return
        for signum, previous in self._previous.items():
            try:
                signal.signal(signum, previous if previous is not None else signal.SIG_DFL)
            except (ValueError, TypeError):  # pragma: no cover
                pass
        self._previous.clear()


class KeyListener:
    """Call ``bindings[key]()`` for every key read from ``source`` (a file descriptor or file object), in a thread.

    ``source=None`` uses stdin when it is a terminal (switched to cbreak mode, so keys arrive without Enter, and
    restored on :meth:`close`) and otherwise listens to nothing. Any other descriptor (a pipe, a FIFO) is read as it
    is, which is how tests and external tools (a foot pedal script writing ``" "`` to a FIFO) press keys.
    """

    def __init__(self, bindings: Mapping[str, Callable[[], None]], source: int | IO[Any] | None = None) -> None:
        self.bindings = dict(bindings)
        self.keys_received = 0
        self._fd: int | None = None
        self._tty_state: Any = None
        if source is None:
            try:
                if sys.stdin is not None and sys.stdin.isatty():
                    self._fd = sys.stdin.fileno()
            except (ValueError, OSError):
                self._fd = None
        else:
            self._fd = source if isinstance(source, int) else source.fileno()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def active(self) -> bool:
        """Whether a source is being read."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> KeyListener:
        """Start reading (no-op without a source)."""
        if self._fd is None or self._thread is not None:
            return self
        if os.isatty(self._fd):
            try:
                import termios
                import tty

                self._tty_state = termios.tcgetattr(self._fd)
                tty.setcbreak(self._fd)
            except (ImportError, OSError) as exc:  # pragma: no cover - not a real terminal
                logger.debug("key listener: cannot switch the terminal to cbreak mode: %s", exc)
        self._thread = threading.Thread(target=self._run, name="sarm2-keys", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        fd = self._fd
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([fd], [], [], 0.05)
                if not ready:
                    continue
                data = os.read(fd, 64)
            except (OSError, ValueError):
                return
            if not data:  # end of file: nothing more will be pressed
                return
            for key in data.decode("utf-8", errors="ignore"):
                self.keys_received += 1
                callback = self.bindings.get(key)
                if callback is None:
                    continue
                try:
                    callback()
                except Exception:  # noqa: BLE001 - a bad binding must not kill the listener
                    logger.exception("key %r binding failed", key)

    def close(self) -> None:
        """Stop reading and restore the terminal."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=1.0)
        self._thread = None
        if self._tty_state is not None:
            try:
                import termios

                termios.tcsetattr(self._fd, termios.TCSADRAIN, self._tty_state)
            except (ImportError, OSError):  # pragma: no cover
                pass
            self._tty_state = None


def estop_key_bindings(supervisor: SafetySupervisor, config: SafetyConfig) -> dict[str, Callable[[], None]]:
    """Key -> callback for the e-stop keys and the release key."""
    bindings: dict[str, Callable[[], None]] = {
        key: (lambda key=key: supervisor.request_estop(f"key {key!r}")) for key in config.estop_keys
    }
    bindings[config.release_key] = supervisor.release_estop
    return bindings
