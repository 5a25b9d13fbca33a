"""Real-station timings on the emulated station (fake DM motors on virtual CAN, recorded D405 streams).

    python benchmarks/real_timing.py [--steps 300] [--image-size 128]

Prints what docs/real_station.md reports, measured in one run on this machine:

- the env control loop at ``control_hz`` (30 Hz): mean, p95 and max period, jitter (std), overruns;
- the e-stop: from the request until the hold command (the measured pose) reaches the motors, and until the
  motors are damped (``kp = 0``; expected at ``hold_time_s`` plus the loop's latency);
- the watchdog: a stalled policy (from the last ``step()``), a paused camera and a stalled CAN bus (from the
  moment it stalled) until the stop is recorded, against the configured timeouts.

The bus and cameras are emulated, so these are the software's own latencies; on the real station the CAN bus
sets the motor loop's rate (the SDK targets 250 Hz).
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

POLL_S = 0.0005


def _poll_until(condition: Callable[[], bool], timeout: float = 10.0) -> float:
    """``time.monotonic()`` of the first poll at which ``condition`` held (raises after ``timeout``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return time.monotonic()
        time.sleep(POLL_S)
    raise TimeoutError("the condition never held")


def control_loop(env: Any, steps: int) -> dict[str, float]:
    """Step the emulated station ``steps`` times: achieved loop rate and period statistics."""
    obs, _ = env.reset()
    periods, overruns = [], 0
    for _ in range(steps):
        obs, _, _, _, info = env.step(obs["agent_pos"])
        periods.append(info["timing/period_s"])
        overruns += int(info["timing/overrun"])
    p = np.asarray(periods[1:]) * 1e3  # the first period includes the start of the episode
    return {"mean": p.mean(), "p95": np.percentile(p, 95), "max": p.max(), "std": p.std(), "overruns": overruns}


def estop_latency(env: Any, station: Any) -> dict[str, float]:
    """Request the e-stop while the left arm ramps toward a far target; watch the first joint's motor commands."""
    obs, _ = env.reset()
    away = env.home_action.copy()
    away[0] += 0.5
    for _ in range(5):  # the speed clamp makes the commanded target ramp: it changes at every step
        env.step(away)
    chain = station.chains["left"]
    asked = time.monotonic()
    env.estop("timing")
    held = chain.commands()[1]
    # The hold target is the pose measured at the stop: poll until the commanded position stops moving.
    hold_seen, last, since = None, held["pos"], asked
    while time.monotonic() - asked < 1.0:
        pos = chain.commands()[1]["pos"]
        if pos != last:
            last, since = pos, time.monotonic()
        elif time.monotonic() - since > 0.05:
            hold_seen = since
            break
        time.sleep(POLL_S)
    damped = _poll_until(lambda: all(c["kp"] == 0.0 for c in chain.commands().values()))
    env.release_estop()
    return {
        "hold_ms": (hold_seen - asked) * 1e3 if hold_seen is not None else float("nan"),
        "damped_ms": (damped - asked) * 1e3,
        "hold_time_ms": env.config.safety.hold_time_s * 1e3,
    }


def _stop_time(env: Any) -> float:
    _poll_until(lambda: env.supervisor.stopped)
    return env.supervisor.events[-1].time


def watchdog_trips(env: Any, station: Any) -> dict[str, Any]:
    """Stall the policy and the cameras in turn: how fast each watchdog stops the station."""
    out: dict[str, Any] = {}
    obs, _ = env.reset()
    env.step(obs["agent_pos"])
    last_step = time.monotonic()  # the policy never comes back
    out["policy_s"] = _stop_time(env) - last_step
    obs, _ = env.reset()
    paused = time.monotonic()
    env.cameras["top"].pause()
    out["camera_s"] = _stop_time(env) - paused
    env.cameras["top"].resume()
    obs, _ = env.reset()
    stalled = time.monotonic()
    station.chains["left"].stall()
    out["bus_s"] = _stop_time(env) - stalled
    out["bus_reason"] = env.supervisor.reason
    return out


def main() -> None:
    """Print the real station's timing on the emulated bus (control loop, watchdogs)."""
    from real.config import SafetyConfig
    from real.emulation import EmulatedStation
    from real.env import RealStationEnv

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=300, help="control-loop steps timed")
    parser.add_argument("--image-size", type=int, default=128, help="observation image side (px)")
    parser.add_argument("--timeout", type=float, default=0.5, help="policy and camera watchdog timeouts (s)")
    parser.add_argument("--bus-timeout", type=float, default=0.1, help="CAN-bus watchdog timeout (s)")
    args = parser.parse_args()
    # Every stop here is deliberate: keep the safety layer's warnings and the SDK motor thread's traceback (its
    # loop gives up when the stalled bus stops answering) out of the report.
    logging.basicConfig(level=logging.CRITICAL)
    sdk_thread_exits: list[str] = []
    threading.excepthook = lambda a: sdk_thread_exits.append(a.thread.name if a.thread else "?")
    safety = SafetyConfig(policy_timeout_s=args.timeout, camera_timeout_s=args.timeout, bus_timeout_s=args.bus_timeout)
    size = (args.image_size, args.image_size)
    with tempfile.TemporaryDirectory() as tmp:

        def station_env() -> tuple[Any, Any]:
            station = EmulatedStation(Path(tmp), safety=safety, image_size=size, camera_size=(240, 320)).start()
            env = RealStationEnv(station.config, task="timing", listen_keys=False, install_signal_handlers=False)
            return station, env

        station, env = station_env()
        try:
            loop = control_loop(env, args.steps)
            estop = estop_latency(env, station)
            trips = watchdog_trips(env, station)
        finally:
            env.close()
            station.stop()
    hz = env.config.control_hz
    print(f"emulated station, {args.image_size}^2 images, {hz:g} Hz target ({1e3 / hz:.2f} ms):")
    print(
        f"  control period over {args.steps} steps: mean {loop['mean']:.2f} ms, p95 {loop['p95']:.2f} ms, "
        f"max {loop['max']:.1f} ms, jitter (std) {loop['std']:.2f} ms, {loop['overruns']} overruns"
    )
    print(
        f"  e-stop: hold command at the motors {estop['hold_ms']:.0f} ms after the request; damped after "
        f"{estop['damped_ms']:.0f} ms (hold_time_s {estop['hold_time_ms']:.0f} ms)"
    )
    print(
        f"  watchdog ({args.timeout:g} s timeouts): stalled policy tripped {trips['policy_s']:.2f} s after the last "
        f"step, paused camera {trips['camera_s']:.2f} s after the pause"
    )
    print(
        f"  watchdog ({args.bus_timeout:g} s bus timeout): stalled bus tripped {trips['bus_s']:.2f} s after the "
        f"stall; reason: {trips['bus_reason']}"
    )
    if sdk_thread_exits:
        print(f"  (SDK threads that exited after the stalled bus, as expected: {', '.join(sdk_thread_exits)})")


if __name__ == "__main__":
    main()
