"""Record teleoperated demonstrations and policy rollouts on the real station into the sim collector's dataset format.

Examples::

    # GELLO / teaching-handle teleop with the leader arms of the config; keys label the episode
    python -m real.record --config real/configs/yam_station.yaml --out data/real_fold --leader \\
        --task-id real/fold_shorts --instruction "fold the shorts" --episodes 10

    # roll out a policy (any object with predict(obs) -> action, or a factory returning one)
    python -m real.record --config real/configs/yam_station.yaml --out data/real_rollouts \\
        --policy my_package.policies:make_policy --episodes 20 --max-steps 900

    # dry run without hardware: emulated CAN bus + recorded camera streams, a scripted operator
    python -m real.record --emulate --leader --out /tmp/dry_run --episodes 1 --max-steps 60

Keys (terminal, or ``--keys PATH`` for a FIFO): digits set progress 0.0-0.9, ``s`` success, ``f`` fail, ``n`` end
the episode, ``d`` primitive ``dummy``, the config's ``labels.primitive_keys`` other primitives, space / ``e``
e-stop, ``r`` release it (keys are configurable in the station YAML). Frame ``t`` is the observation at step
``t``; ``action[t]`` and ``primitive[t]`` are what was commanded (and labelled) after seeing it; the final frame
repeats the last action, exactly as :mod:`tasks.collect` does. Unlabelled steps are ``dummy``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from real.config import LeaderConfig, StationConfig, load_station_config
from sarm2_env.constants import CAMERAS, PRIMITIVE_INDEX
from sarm2_env.errors import ConfigError, SARM2Error
from sarm2_env.policy import Policy, act_once, as_policy

__all__ = ["main", "open_leaders", "record_episode", "record_episodes"]

logger = logging.getLogger(__name__)


def _json_safe(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (np.floating, float)):
        v = float(value)
        return v if np.isfinite(v) else None
    if isinstance(value, (np.integer, int)) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    return value if value is None or isinstance(value, str) else str(value)


def record_episode(
    env: Any,
    policy: Policy,
    *,
    seed: int = 0,
    skill: float = 1.0,
    max_steps: int | None = None,
    reset_options: dict[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
):
    """Run one episode of ``policy`` on ``env`` (a :class:`~real.env.RealStationEnv`, possibly wrapped) and return
    a validated :class:`sarm2_env.dataset.Episode`.

    The episode ends when the env terminates or truncates (success, operator end, safety stop) or after
    ``max_steps`` steps. ``policy`` is a :class:`sarm2_env.policy.Policy` acting with ``N = 1``, or an object with
    ``predict(obs)`` returning an action or a chunk ``(k, 14)`` (executed in order, one action per step).
    ``info["progress"]`` and ``info["success"]`` are the operator's labels; ``primitive[t]`` is the primitive
    labelled when action ``t`` was chosen (``dummy`` when none).
    """
    from sarm2_env.dataset import Episode

    base = env.unwrapped
    frames: dict[str, list[np.ndarray]] = {cam: [] for cam in CAMERAS}
    states, actions, prims, progress, success, stamps = [], [], [], [], [], []

    def keep(obs: Mapping[str, Any], info: Mapping[str, Any], t: float) -> None:
        for cam in CAMERAS:
            frames[cam].append(np.asarray(obs["pixels"][cam], dtype=np.uint8))
        states.append(np.asarray(obs["agent_pos"], dtype=np.float32))
        progress.append(float(info["progress"]))
        success.append(bool(info["success"]))
        stamps.append(t)

    policy_name = type(policy).__name__  # before wrapping: a predict-only model is recorded under its own name
    policy = as_policy(policy)
    obs, info = env.reset(seed=seed, options=reset_options)
    policy.reset([str(info.get("task", base.task))])
    start = time.monotonic()
    keep(obs, info, 0.0)
    steps, done = 0, False
    while not done:
        action = act_once(policy, obs).astype(np.float32)
        label = info.get("primitive") or "dummy"
        obs, _reward, terminated, truncated, info = env.step(action)
        actions.append(action)
        prims.append(PRIMITIVE_INDEX[label])
        steps += 1
        keep(obs, info, time.monotonic() - start)
        done = terminated or truncated or (max_steps is not None and steps >= max_steps)
    actions.append(actions[-1])
    prims.append(prims[-1])
    stats = base.stats()
    meta = {
        "source": "real",
        "policy": policy_name,
        "control_hz": base.control_hz,
        "image_size": [base.height, base.width],
        "station_config": base.config.source,
        "stop_reason": info.get("safety/stop_reason", ""),
        "safety": {k: v for k, v in stats["safety"].items() if k != "events"},
        "timing": {k: stats[k] for k in ("loop_hz", "period_ms_mean", "period_ms_p95", "period_ms_max", "overruns")},
        **dict(extra or {}),
    }
    return Episode.create(
        task_id=base.task_id,
        instruction=str(info.get("task", base.task)),
        seed=int(seed),
        skill=float(skill),
        success=bool(success[-1]),
        fps=float(base.control_hz),
        state=np.stack(states),
        action=np.stack(actions),
        primitive=np.asarray(prims, dtype=np.int16),
        progress=np.asarray(progress, dtype=np.float32),
        success_flags=np.asarray(success, dtype=bool),
        timestamp=np.asarray(stamps, dtype=np.float64),
        frames={cam: np.stack(v) for cam, v in frames.items()},
        extra=_json_safe(meta),
    )


@contextlib.contextmanager
def open_leaders(leaders: Mapping[str, LeaderConfig]) -> Iterator[dict[str, Any]]:
    """Open the leader arms (``{"left": LeaderArm, "right": LeaderArm}``) and close them on exit."""
    from real.arm import LeaderArm

    opened: dict[str, Any] = {}
    try:
        for name, cfg in leaders.items():
            opened[name] = LeaderArm(cfg, name).open()
        yield opened
    finally:
        for arm in opened.values():
            arm.close()


def record_episodes(
    env: Any,
    policy: Policy,
    out: str | Path,
    *,
    episodes: int = 1,
    seed: int = 0,
    skill: float = 1.0,
    max_steps: int | None = None,
    reset_options: dict[str, Any] | None = None,
    wait_for_release: bool = False,
) -> list[str]:
    """Record ``episodes`` episodes into the dataset at ``out`` (created or appended to); returns their ids.

    Episode ``i`` gets seed ``seed + i``. After an e-stop, recording stops unless ``wait_for_release`` (then it
    waits for the operator to release the e-stop, e.g. with the release key).
    """
    from sarm2_env.dataset import DatasetWriter

    base = env.unwrapped
    ids: list[str] = []
    with DatasetWriter(out) as writer:
        for i in range(episodes):
            if base.supervisor.estopped:
                if not wait_for_release:
                    logger.warning("e-stop engaged; stopping after %d episode(s)", len(ids))
                    break
                logger.warning(
                    "e-stop engaged: release it (key %r) to record the next episode", base.config.safety.release_key
                )
                while base.supervisor.estopped:
                    time.sleep(0.1)
            episode = record_episode(
                env, policy, seed=seed + i, skill=skill, max_steps=max_steps, reset_options=reset_options
            )
            path = writer.add(episode)
            ids.append(path.stem)
            logger.info(
                "episode %s: %d frames, success=%s, stop=%r",
                path.stem,
                episode.length,
                episode.success,
                episode.extra.get("stop_reason", ""),
            )
    return ids


def _load_policy(spec: str) -> Policy:
    module, _, attr = spec.partition(":")
    if not module or not attr:
        raise ConfigError(f"`--policy` must be 'module:attribute'; got {spec!r}")
    try:
        obj = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"`--policy` must name an importable object; got {spec!r} ({exc})") from exc
    if isinstance(obj, type) or (not isinstance(obj, Policy) and not hasattr(obj, "predict") and callable(obj)):
        obj = obj()  # a class or a factory
    try:
        return as_policy(obj)
    except TypeError as exc:
        raise ConfigError(f"`--policy`: {exc}, or a factory of one") from None


def _leader_configs(config: StationConfig, value: str) -> dict[str, LeaderConfig]:
    if value == "config":
        if config.leaders is None:
            raise ConfigError(
                "`--leader` needs a `leaders:` section in the station config, or two channels: --leader LEFT,RIGHT"
            )
        return dict(config.leaders)
    channels = [c.strip() for c in value.split(",")]
    if len(channels) != 2 or not all(channels):
        raise ConfigError(f"`--leader` must be empty (use the config) or 'LEFT_CHANNEL,RIGHT_CHANNEL'; got {value!r}")
    return {arm: LeaderConfig(channel=ch) for arm, ch in zip(("left", "right"), channels)}


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m real.record``: record teleoperated demos or policy rollouts; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m real.record", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", help="station YAML (e.g. real/configs/yam_station.yaml)")
    parser.add_argument("--out", required=True, help="dataset directory (created, or appended to)")
    parser.add_argument(
        "--leader",
        nargs="?",
        const="config",
        default=None,
        help="teleoperate with leader arms: the config's `leaders`, or LEFT_CHANNEL,RIGHT_CHANNEL",
    )
    parser.add_argument(
        "--policy", default=None, help="roll out a policy instead: module:attribute (object or factory)"
    )
    parser.add_argument("--task-id", default="real/station", help="task id stored with the episodes")
    parser.add_argument("--instruction", default="", help="task instruction (info['task'])")
    parser.add_argument("--episodes", type=int, default=1)
    parser.add_argument(
        "--max-steps", type=int, default=None, help="steps per episode (default: until the operator ends it)"
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the first episode (stored; the station is not seeded)"
    )
    parser.add_argument("--skill", type=float, default=1.0, help="skill value stored with the episodes")
    parser.add_argument("--primitive", default=None, help="initial primitive label (default: none, recorded as dummy)")
    parser.add_argument("--image-size", type=int, default=None, help="square image size (default: the config's)")
    parser.add_argument("--no-home", action="store_true", help="do not move to the home pose at each reset")
    parser.add_argument(
        "--keys", default=None, help="read operator keys from this file or FIFO instead of the terminal"
    )
    parser.add_argument("--emulate", action="store_true", help="dry run on an emulated station (no hardware)")
    parser.add_argument(
        "--emulate-dir", default=None, help="where --emulate keeps its camera recordings (default: the temp dir)"
    )
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    # Before anything imports the SDK: its driver module calls logging.basicConfig(level=ERROR) on import.
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if (args.leader is None) == (args.policy is None):
        print("error: pass exactly one of --leader (teleoperation) or --policy (rollouts)", file=sys.stderr)
        return 2
    if args.config is None and not args.emulate:
        print("error: --config is required (or --emulate for a dry run)", file=sys.stderr)
        return 2
    try:
        return _run(args)
    except SARM2Error as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: the arms were held, damped and released", file=sys.stderr)
        return 130


def _run(args: argparse.Namespace) -> int:
    from real.env import RealStationEnv
    from real.labels import OperatorLabels
    from real.policy import LeaderPolicy
    from sarm2_env.dataset import summarise

    config = load_station_config(args.config) if args.config else None
    policy: Policy | None = _load_policy(args.policy) if args.policy is not None else None  # fail before hardware
    stack = contextlib.ExitStack()
    with stack:
        station = None
        if args.emulate:
            from real.emulation import EmulatedStation

            workdir = Path(args.emulate_dir or Path(tempfile.gettempdir()) / "sarm2_emulated_station")
            kwargs: dict[str, Any] = {"leaders": args.leader is not None}
            if config is not None:
                kwargs.update(
                    safety=config.safety,
                    labels=config.labels,
                    control_hz=config.control_hz,
                    image_size=config.image_size,
                )
            station = stack.enter_context(EmulatedStation(workdir, **kwargs))
            config = station.config
            print(f"emulated station: virtual CAN channels, camera recordings in {workdir}")
        if config is None:  # pragma: no cover - main() checks this
            raise ConfigError("`--config` is required without --emulate")
        leader_configs = _leader_configs(config, args.leader) if policy is None else None
        key_file = stack.enter_context(open(args.keys, "rb", buffering=0)) if args.keys else None
        interactive = key_file is not None or sys.stdin.isatty()
        if args.max_steps is None and not interactive:
            raise ConfigError(
                "`--max-steps` must be given when no operator keys can end an episode (no terminal, no --keys)"
            )
        labels = OperatorLabels(initial_primitive=args.primitive)
        env = stack.enter_context(
            RealStationEnv(
                config,
                task=args.instruction,
                task_id=args.task_id,
                image_size=args.image_size,
                labels=labels,
                key_source=key_file,
            )
        )
        if leader_configs is not None:
            leaders = stack.enter_context(open_leaders(leader_configs))
            policy = LeaderPolicy(leaders)
            if station is not None:
                stack.enter_context(station.operator())
        t0 = time.perf_counter()
        ids = record_episodes(
            env,
            policy,
            args.out,
            episodes=args.episodes,
            seed=args.seed,
            skill=args.skill,
            max_steps=args.max_steps,
            reset_options={"home": not args.no_home},
            wait_for_release=interactive,
        )
        stats = env.stats()
    print(f"recorded {len(ids)} episode(s) in {time.perf_counter() - t0:.1f} s; loop {stats['loop_hz']:.1f} Hz")
    print(summarise(args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
