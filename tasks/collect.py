"""Collect scripted-expert episodes into an on-disk dataset (format: :mod:`sarm2_env.dataset`).

Examples::

    python -m tasks.collect --task FoldShorts --episodes 20 --skill 1.0 --out data/fold_demos
    python -m tasks.collect --task all --episodes 10 --skill 0.3,0.6,1.0 --out data/mixed
    python -m tasks.collect --preset demo --out data/demo      # a small mixed-skill set
    python -m tasks.collect --suite quick --out data/suite     # the 10-task benchmark dataset (CPU size)
    python -m tasks.collect --suite full --train-demos 60 --out data/suite_full   # more demos than the preset

Episode ``i`` of a task uses env seed ``seed + i`` and the same expert seed, so every episode can be
replayed from the dataset's recorded ``seed``, ``skill`` and ``extra["variability"]`` (``--variability``:
0, the default, gives identical pacing on every seed; 1 varies pace, pauses, paths, corrections and
sub-task order the way teleoperators do). Rerunning into an existing dataset skips
episodes already there (same task and seed), so an interrupted collection resumes where it stopped.

A *suite* is the benchmark dataset: per task, full-skill training demos, held-out full-skill demos
and held-out imperfect rollouts (mixed skills: misses, drops, partial progress, recoveries and
failures), one dataset per split under ``<out>/<split>/``, with disjoint seed ranges
(:data:`SPLITS`) and the layout recorded in ``<out>/suite.json``. ``benchmarks/run.py`` builds the
same datasets from its config's ``data`` section.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sarm2_env.atomic import write_json_atomic
from sarm2_env.constants import CAMERAS, PRIMITIVE_INDEX
from sarm2_env.errors import ConfigError, SARM2Error, check_fraction, check_positive_int, check_range

log = logging.getLogger(__name__)


def _check_image_size(image_size: object) -> None:
    """Refuse a bad ``image_size`` when the config is made, before any dataset folder exists."""
    from tasks.base import _parse_image_size

    _parse_image_size(image_size)  # type: ignore[arg-type]


def _check_dataset(
    skills_name: str, skills: tuple[float, ...], tasks: tuple[str, ...], image_size: int, variability: float
) -> None:
    """The checks of the fields a collection and a suite share, in this order: skills (``skills_name``), tasks,
    image size and operator variability."""
    if not skills or any(not 0.0 <= s <= 1.0 for s in skills):
        raise ConfigError(f"`{skills_name}` must be numbers in [0, 1]; got {skills!r}")
    if not tasks:
        raise ConfigError("`tasks` must name at least one task; got none")
    _check_image_size(image_size)
    check_fraction("variability", variability)


def _check_render_every(name: str, value: object) -> None:
    check_positive_int(name, value, " (1 = a frame at every step)")


@dataclass(frozen=True)
class CollectConfig:
    """What to collect: ``episodes`` per task, skills cycled over episodes, seeds from ``seed``, the
    experts' operator ``variability`` (0 = identical pacing on every seed, 1 = teleoperation-like), and
    ``render_every``: camera frames at every step (1), or only every ``n`` steps plus the last step (the reward's
    query rate; state, actions and ground truth are still recorded at every step). ``jitter`` in [0, 1]: the
    envs' camera-pose and lighting jitter (:mod:`tasks.jitter`; 0 = off): the same seed then gives the same
    motion and ground truth under other pixels. ``pose_range``: the envs' object position and yaw ranges x this
    (the tasks' ``pose_range`` option; 1 = as registered)."""

    tasks: tuple[str, ...]
    episodes: int
    skills: tuple[float, ...] = (1.0,)
    seed: int = 0
    image_size: int = 128
    variability: float = 0.0
    render_every: int = 1
    jitter: float = 0.0
    pose_range: float = 1.0

    def __post_init__(self) -> None:
        if self.episodes < 1:
            raise ConfigError(f"`episodes` must be >= 1; got {self.episodes}")
        _check_dataset("skills", self.skills, self.tasks, self.image_size, self.variability)
        _check_render_every("render_every", self.render_every)
        check_fraction("jitter", self.jitter, " (0 = off)")
        from tasks.base import MAX_POSE_RANGE

        check_range("pose_range", self.pose_range, 0.0, MAX_POSE_RANGE, " (1 = as registered)")


#: Named presets of a single dataset.
PRESETS: dict[str, dict] = {
    "demo": {"episodes": 3, "skills": (1.0, 0.4, 1.0), "image_size": 96},
}

#: The suite's splits -> seed offset from the suite's ``seed``. The ranges never overlap (a split
#: holds fewer than 10000 episodes per task), and the shipped checkpoint's demos start at 100000.
SPLITS: dict[str, int] = {"train_demos": 0, "heldout_demos": 10_000, "heldout_rollouts": 20_000}
#: Splits scored by the benchmark (the rest train the reward models).
EVAL_SPLITS = ("heldout_demos", "heldout_rollouts")
_SPLIT_SIZE_LIMIT = 10_000


@dataclass(frozen=True)
class SuiteConfig:
    """The benchmark dataset: per task, ``train_demos`` and ``heldout_demos`` at full skill and
    ``heldout_rollouts`` at ``rollout_skills`` (cycled), with seeds from ``seed + SPLITS[split]``, every split
    at the experts' operator ``variability``. The held-out splits are rendered every ``heldout_render_every``
    steps (plus the last step): what a reward model queried at that rate reads, at a tenth of the rendering and
    encoding cost for 10."""

    tasks: tuple[str, ...]
    train_demos: int
    heldout_demos: int
    heldout_rollouts: int
    rollout_skills: tuple[float, ...] = (0.3, 0.6, 0.3, 0.8)
    image_size: int = 128
    seed: int = 0
    variability: float = 0.0
    heldout_render_every: int = 1

    def __post_init__(self) -> None:
        for name in ("train_demos", "heldout_demos", "heldout_rollouts"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < _SPLIT_SIZE_LIMIT:
                raise ConfigError(f"`{name}` must be an integer in [0, {_SPLIT_SIZE_LIMIT}); got {value!r}")
        _check_dataset("rollout_skills", self.rollout_skills, self.tasks, self.image_size, self.variability)
        _check_render_every("heldout_render_every", self.heldout_render_every)

    def seeds(self, split: str) -> range:
        """Env (and expert) seeds of ``split``'s episodes, per task."""
        if split not in SPLITS:
            raise ConfigError(f"`split` must be one of {list(SPLITS)}; got {split!r}")
        start = self.seed + SPLITS[split]
        return range(start, start + getattr(self, split))

    def skills(self, split: str) -> tuple[float, ...]:
        """Expert skills cycled over ``split``'s episodes."""
        return self.rollout_skills if split == "heldout_rollouts" else (1.0,)

    def split_config(self, split: str) -> CollectConfig | None:
        """The :class:`CollectConfig` of one split (``None`` for an empty split)."""
        seeds = self.seeds(split)
        if not len(seeds):
            return None
        return CollectConfig(
            tasks=self.tasks,
            episodes=len(seeds),
            skills=self.skills(split),
            seed=seeds.start,
            image_size=self.image_size,
            variability=self.variability,
            render_every=self.heldout_render_every if split in EVAL_SPLITS else 1,
        )

    def manifest(self) -> dict:
        """What ``suite.json`` records: the tasks, and per split its seed range and skills."""
        return {
            "tasks": list(self.tasks),
            "image_size": self.image_size,
            "variability": self.variability,
            "heldout_render_every": self.heldout_render_every,
            "splits": {
                split: {
                    "seeds": [self.seeds(split).start, self.seeds(split).stop],
                    "skills": list(self.skills(split)),
                    "episodes_per_task": len(self.seeds(split)),
                }
                for split in SPLITS
            },
        }


#: Suite sizes. ``quick`` fits the 30-minute CPU benchmark budget (``benchmarks/configs/quick.yaml`` uses the
#: same numbers); ``full`` the 2-hour one (``benchmarks/configs/full.yaml``).
SUITE_PRESETS: dict[str, dict] = {
    "quick": {
        "train_demos": 6,
        "heldout_demos": 5,
        "heldout_rollouts": 10,
        "rollout_skills": (0.2, 0.4, 0.6, 0.8, 0.9),
        "variability": 1.0,
        "heldout_render_every": 10,
    },
    "full": {
        "train_demos": 20,
        "heldout_demos": 8,
        "heldout_rollouts": 20,
        "rollout_skills": (0.2, 0.4, 0.6, 0.8, 0.9),
        "variability": 1.0,
        "heldout_render_every": 10,
    },
}


def record_episode(env, expert, seed: int, skill: float, render_every: int = 1, max_steps: int | None = None):
    """Roll out ``expert`` once and return a validated :class:`sarm2_env.dataset.Episode`.

    Frame ``t`` is the observation at step ``t``; ``action[t]`` and ``primitive[t]`` are what the
    expert did after seeing it. The final observation is kept (it shows the outcome) with the last
    action repeated and its primitive label.

    With ``render_every`` > 1 camera frames are kept only at steps ``0, n, 2n, ...`` and the last step (recorded
    in ``frame_index``). Give such a recording an ``obs_mode="state"`` env: it renders only those steps, the
    expensive part of recording (an env with pixels renders every step and the others are dropped).
    ``max_steps`` ends the episode earlier than the env's step limit (the motion controls of
    :mod:`tasks.motion_controls` never finish on their own).
    """
    from sarm2_env.dataset import Episode
    from tasks.expert import run_expert_episode

    _check_render_every("render_every", render_every)
    base = env.unwrapped
    frames: dict[str, list[np.ndarray]] = {cam: [] for cam in CAMERAS}
    frame_index: list[int] = []
    states, actions, prims, progress, success = [], [], [], [], []
    calibrated: list[float] = []
    for obs, action, _reward, info in run_expert_episode(env, expert, seed=seed, max_steps=max_steps):
        if action is not None:
            actions.append(np.asarray(action, dtype=np.float32))
            prims.append(PRIMITIVE_INDEX[info.get("primitive", "dummy")])
        if len(states) % render_every == 0:
            _keep_views(frames, frame_index, base, obs, len(states))
        states.append(obs["agent_pos"] if isinstance(obs, dict) and "agent_pos" in obs else base.agent_pos())
        progress.append(info["progress"])
        success.append(info["success"])
        if "calibrated_progress" in info:
            calibrated.append(info["calibrated_progress"])
    if frame_index[-1] != len(states) - 1:  # the outcome frame: the env still holds the final state
        _keep_views(frames, frame_index, base, obs, len(states) - 1)
    actions.append(actions[-1] if actions else np.asarray(env.unwrapped.home_action, dtype=np.float32))
    prims.append(prims[-1] if prims else PRIMITIVE_INDEX["dummy"])
    hz = env.unwrapped.control_hz
    spec = env.unwrapped.spec
    return Episode.create(
        task_id=spec.id if spec is not None else env.unwrapped.task_name,
        instruction=env.unwrapped.instruction,
        seed=seed,
        skill=skill,
        success=bool(success[-1]),
        fps=float(hz),
        state=np.stack(states),
        action=np.stack(actions),
        primitive=np.asarray(prims, dtype=np.int16),
        progress=np.asarray(progress, dtype=np.float32),
        calibrated_progress=np.asarray(calibrated, dtype=np.float32) if len(calibrated) == len(states) else None,
        success_flags=np.asarray(success, dtype=bool),
        timestamp=np.arange(len(states), dtype=np.float64) / hz,
        frames={cam: np.stack(v) for cam, v in frames.items()},
        frame_index=None if render_every == 1 else np.asarray(frame_index),
        extra={
            "expert": type(expert).__name__,
            "image_size": list(frames["top"][0].shape[:2]),
            "variability": getattr(expert, "variability", 0.0),
            **({"scene_jitter": dict(base.jitter_drawn)} if getattr(base, "jitter_drawn", None) else {}),
            **({"pose_range": base.pose_range} if getattr(base, "pose_range", 1.0) != 1.0 else {}),
        },
    )


def _keep_views(frames: dict[str, list[np.ndarray]], frame_index: list[int], base, obs, step: int) -> None:
    """Append step ``step``'s camera views: the observation's, or rendered now when it carries none."""
    views = obs["pixels"] if isinstance(obs, dict) and "pixels" in obs else base.render_views()
    for cam in CAMERAS:
        frames[cam].append(views[cam])
    frame_index.append(step)


#: Envs of a collection worker process, one per (task, image size, obs mode, jitter, pose range), reused across its
#: jobs.
_WORKER_ENVS: dict[tuple[str, int, str, float, float], object] = {}


def _record_job(
    task_id: str,
    seed: int,
    skill: float,
    image_size: int,
    variability: float,
    render_every: int = 1,
    jitter: float = 0.0,
    pose_range: float = 1.0,
):
    """One episode, recorded in a worker process (its env is kept for the worker's next job of the task)."""
    import tasks

    obs_mode = "pixels" if render_every == 1 else "state"  # state: render only the steps that are kept
    key = (task_id, image_size, obs_mode, jitter, pose_range)
    if key not in _WORKER_ENVS:
        scene: dict[str, float] = {"camera_jitter": jitter, "lighting_jitter": jitter} if jitter else {}
        if pose_range != 1.0:
            scene["pose_range"] = pose_range
        _WORKER_ENVS[key] = tasks.make_task_env(task_id, image_size=image_size, obs_mode=obs_mode, **scene)
    env = _WORKER_ENVS[key]
    t0 = time.perf_counter()
    expert = tasks.make_expert(env, skill=skill, variability=variability)
    episode = record_episode(env, expert, seed=seed, skill=skill, render_every=render_every)
    return episode, time.perf_counter() - t0


def _job_settings(config: CollectConfig) -> tuple[int, float, int, float, float]:
    """The per-collection arguments of :func:`_record_job` after the job's own (task, seed, skill)."""
    return config.image_size, config.variability, config.render_every, config.jitter, config.pose_range


def _recorded_in_order(config: CollectConfig, jobs: list[tuple[str, int, float]], workers: int):
    """``(job, episode, seconds)`` in job order: in this process, or from ``workers`` spawned processes.

    Episodes come back in job order whatever order the workers finish in, so a dataset's episode order
    does not depend on the worker count; at most ``2 * workers`` recorded episodes wait in memory.
    """
    if workers <= 1 or len(jobs) <= 1:
        for job in jobs:
            yield (job, *_record_job(*job, *_job_settings(config)))
        return
    import concurrent.futures as cf
    import multiprocessing as mp

    # spawn: forked workers deadlock after GL / torch initialisation in the parent.
    with cf.ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn")) as pool:
        pending: list[tuple[tuple[str, int, float], cf.Future]] = []
        queued = iter(jobs)
        try:
            for job in queued:
                args = (*job, *_job_settings(config))
                pending.append((job, pool.submit(_record_job, *args)))
                if len(pending) >= 2 * workers:
                    head, future = pending.pop(0)
                    yield (head, *future.result())
            for head, future in pending:
                yield (head, *future.result())
        except BaseException:
            for _, future in pending:
                future.cancel()
            raise


def collect(
    config: CollectConfig, out: str, progress_bar: bool = True, workers: int = 1, repair: bool = False
) -> dict[str, int]:
    """Collect ``config`` into the dataset at ``out``; returns counts of written and skipped episodes.

    ``workers`` > 1 records episodes in that many processes (the simulator and its renderer use one core
    each); this process writes them, in the same order as with one worker. ``repair`` first drops listed
    episodes whose files are missing, altered or unreadable, so they are recorded again. The counts also
    hold ``repaired`` and ``adopted`` (unlisted complete files taken into the index) when there were any.
    """
    import tasks
    from sarm2_env.dataset import DatasetWriter

    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ConfigError(f"`workers` must be an integer >= 1; got {workers!r}")
    task_ids = [tasks.resolve_task_id(t) for t in config.tasks]
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm is a dependency
        tqdm = None
    bar = None
    try:
        with DatasetWriter(out, repair=repair) as writer:
            done = {(e["task_id"], int(e["seed"])) for e in writer.entries}
            jobs = [
                (task_id, config.seed + i, config.skills[i % len(config.skills)])
                for task_id in task_ids
                for i in range(config.episodes)
                if (task_id, config.seed + i) not in done
            ]
            counts = {"written": 0, "skipped": len(task_ids) * config.episodes - len(jobs)}
            for key, ids in (("repaired", writer.repaired), ("adopted", writer.adopted)):
                if ids:
                    counts[key] = len(ids)
            bar = tqdm(total=len(jobs), unit="ep", disable=not progress_bar) if tqdm else None
            for (task_id, seed, skill), episode, seconds in _recorded_in_order(config, jobs, workers):
                writer.add(episode)
                counts["written"] += 1
                log.info(
                    "%s seed %d skill %.2f: %d frames, success=%s (%.1f s)",
                    task_id,
                    seed,
                    skill,
                    episode.length,
                    episode.success,
                    seconds,
                )
                if bar is not None:
                    bar.set_postfix_str(f"{task_id.split('/')[-1]} seed={seed} ok={episode.success}")
                    bar.update()
    finally:
        if bar is not None:
            bar.close()
        _close_worker_envs()  # the envs this process made (workers > 1: the worker processes held theirs)
    return counts


def _close_worker_envs() -> None:
    for env in _WORKER_ENVS.values():
        env.close()
    _WORKER_ENVS.clear()


def collect_suite(
    config: SuiteConfig,
    out: str | Path,
    progress_bar: bool = True,
    fresh: Sequence[str] = (),
    workers: int = 1,
    repair: bool = False,
) -> dict[str, dict[str, int]]:
    """Collect every split of ``config`` into ``<out>/<split>/`` and record the layout in ``suite.json``.

    Resumes per episode like :func:`collect` (``workers`` and ``repair`` as there). Splits named in ``fresh``
    are deleted and collected again. Returns written/skipped counts per split.
    """
    root = Path(out)
    previous = root / "suite.json"
    if previous.exists():
        try:
            manifest = json.loads(previous.read_text())
            recorded = {
                "variability": manifest.get("variability", 0.0),
                "heldout_render_every": manifest.get("heldout_render_every", 1),
            }
        except (OSError, ValueError, AttributeError):
            recorded = {}  # unreadable: rewritten below
        for name, value in recorded.items():
            if value != getattr(config, name):
                raise ConfigError(
                    f"`{name}`: the suite at {root} was collected at {value:g}, this config asks for "
                    f"{getattr(config, name):g}; collect into another folder (or delete this one) to change it"
                )
    counts: dict[str, dict[str, int]] = {}
    for split in SPLITS:
        cfg = config.split_config(split)
        path = root / split
        if split in fresh and path.exists():
            shutil.rmtree(path)
        if cfg is None:
            continue
        log.info("collect %s -> %s", split, path)
        counts[split] = collect(cfg, str(path), progress_bar=progress_bar, workers=workers, repair=repair)
    write_json_atomic(root / "suite.json", config.manifest())
    return counts


def _parse_skills(text: str, flag: str = "--skill") -> tuple[float, ...]:
    try:
        return tuple(float(s) for s in text.split(","))
    except ValueError as exc:
        raise ConfigError(f"`{flag}` must be a number or comma-separated numbers in [0, 1]; got {text!r}") from exc


def _suite_config(args: argparse.Namespace, task_names: tuple[str, ...]) -> SuiteConfig:
    if args.episodes is not None or args.skill is not None or args.preset is not None:
        raise ConfigError(
            "`--suite` sets the episodes and skills of every split; use --train-demos / --heldout-demos / "
            "--heldout-rollouts / --rollout-skills instead of --episodes, --skill or --preset"
        )
    sizes = dict(SUITE_PRESETS[args.suite])
    for name in ("train_demos", "heldout_demos", "heldout_rollouts"):
        if getattr(args, name) is not None:
            sizes[name] = getattr(args, name)
    if args.rollout_skills is not None:
        sizes["rollout_skills"] = _parse_skills(args.rollout_skills, "--rollout-skills")
    if args.variability is not None:
        sizes["variability"] = args.variability
    if args.render_every is not None:
        sizes["heldout_render_every"] = args.render_every
    return SuiteConfig(
        tasks=task_names,
        seed=args.seed,
        image_size=args.image_size if args.image_size is not None else 128,
        **sizes,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m tasks.collect``: collect scripted-expert episodes; returns the exit status."""
    import tasks
    from sarm2_env.dataset import summarise

    parser = argparse.ArgumentParser(prog="python -m tasks.collect", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--task", default="all", help=f"task name(s), comma-separated, or 'all' ({', '.join(tasks.TASKS)})"
    )
    parser.add_argument("--episodes", type=int, default=None, help="episodes per task")
    parser.add_argument(
        "--skill", default=None, help="expert skill in [0, 1], or a comma-separated list cycled over episodes"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the first episode")
    parser.add_argument("--image-size", type=int, default=None, help="camera resolution (square), default 128")
    parser.add_argument(
        "--variability",
        type=float,
        default=None,
        help="operator variability in [0, 1]: 0 = identical pacing on every seed, 1 = teleoperation-like "
        "(pace, pauses, detours, corrections, sub-task order); default 0, or the suite preset's (1)",
    )
    parser.add_argument(
        "--render-every",
        type=int,
        default=None,
        help="keep camera frames every N steps plus the last step (the reward's query rate; only those steps are "
        "rendered); default 1 = every step. With --suite it applies to the held-out splits (preset: 10)",
    )
    parser.add_argument(
        "--jitter",
        type=float,
        default=0.0,
        help="camera-pose and lighting jitter in [0, 1] (tasks.jitter; 0 = off): the same seeds then repeat the "
        "same motion under other pixels, e.g. a robustness copy of a held-out set",
    )
    parser.add_argument(
        "--pose-range",
        type=float,
        default=1.0,
        help="object position and yaw ranges x this (the tasks' pose_range option; 1 = as registered, at most 2)",
    )
    parser.add_argument("--preset", choices=sorted(PRESETS), default=None, help="a named set of the options above")
    suite = parser.add_argument_group("benchmark suite (train / held-out demos, held-out imperfect rollouts)")
    suite.add_argument(
        "--suite", choices=sorted(SUITE_PRESETS), default=None, help="collect every split under <out>/<split>/"
    )
    suite.add_argument("--train-demos", type=int, default=None, help="full-skill training demos per task")
    suite.add_argument("--heldout-demos", type=int, default=None, help="held-out full-skill demos per task")
    suite.add_argument("--heldout-rollouts", type=int, default=None, help="held-out imperfect rollouts per task")
    suite.add_argument("--rollout-skills", default=None, help="comma-separated skills cycled over the rollouts")
    parser.add_argument("--out", required=True, help="dataset directory (created, or appended to)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument(
        "--repair",
        action="store_true",
        help="first drop episodes whose files are missing, truncated or corrupt (checks every file), then record "
        "them again",
    )
    parser.add_argument(
        "--workers", type=int, default=1, help="processes recording episodes (one core each); written in order"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    task_names = tuple(tasks.TASKS) if args.task == "all" else tuple(t.strip() for t in args.task.split(","))
    t0 = time.perf_counter()
    try:
        if args.suite is not None:
            if args.jitter or args.pose_range != 1.0:
                raise ConfigError(
                    "`--jitter` and `--pose-range` collect one dataset; the benchmark's robustness sets are its "
                    "config's `data.robustness_episodes` (a suite is collected as registered)"
                )
            suite_config = _suite_config(args, task_names)
            suite_counts = collect_suite(
                suite_config, args.out, progress_bar=not args.quiet, workers=args.workers, repair=args.repair
            )
        else:
            for flag in ("train_demos", "heldout_demos", "heldout_rollouts", "rollout_skills"):
                if getattr(args, flag) is not None:
                    raise ConfigError(f"`--{flag.replace('_', '-')}` needs `--suite quick` or `--suite full`")
            preset = PRESETS.get(args.preset, {}) if args.preset else {}
            config = CollectConfig(
                tasks=task_names,
                episodes=args.episodes if args.episodes is not None else preset.get("episodes", 10),
                skills=_parse_skills(args.skill) if args.skill is not None else tuple(preset.get("skills", (1.0,))),
                seed=args.seed,
                image_size=args.image_size if args.image_size is not None else preset.get("image_size", 128),
                variability=args.variability if args.variability is not None else 0.0,
                render_every=args.render_every if args.render_every is not None else 1,
                jitter=args.jitter,
                pose_range=args.pose_range,
            )
            counts = collect(config, args.out, progress_bar=not args.quiet, workers=args.workers, repair=args.repair)
    except SARM2Error as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        # One line instead of a traceback: finished episodes are on disk; the one in progress is dropped.
        print(
            f"interrupted; rerun the same command to resume (episodes written to {args.out} are kept)", file=sys.stderr
        )
        return 130
    elapsed = time.perf_counter() - t0
    if args.suite is not None:
        for split, c in suite_counts.items():
            print(f"{split}: collected {c['written']} episodes ({c['skipped']} already present)")
            print(summarise(str(Path(args.out) / split)))
        print(f"suite written to {args.out} (layout and seeds in suite.json) in {elapsed:.1f} s")
        return 0
    extra = "".join(f", {counts[k]} {k}" for k in ("repaired", "adopted") if k in counts)
    print(f"collected {counts['written']} episodes ({counts['skipped']} already present{extra}) in {elapsed:.1f} s")
    print(summarise(args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
