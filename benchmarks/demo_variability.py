"""How much full-skill demonstrations vary in length, and whether they still succeed, per operator variability.

    python benchmarks/demo_variability.py                        # every task, 20 episodes at variability 0 and 1
    python benchmarks/demo_variability.py --tasks PullPlug --episodes 5 --variability 1
    python benchmarks/demo_variability.py --variability 1 --pose-range 1,2   # wider object poses (env option)

A clock predicts a demo's progress perfectly when every demo of a task has the same length. The scripted
experts' ``variability`` setting (see :class:`tasks.expert.ScriptedExpert`) makes full-skill demos vary the way
teleoperated ones do; this script measures, per task and setting, the coefficient of variation (CV) of the demo
length (95 % bootstrap interval over episodes) and the success rate (95 % Wilson interval). The target is a CV of
at least 0.2 on every task at variability 1 with every demo still successful. ``--pose-range`` repeats the
measurement with the tasks' object position and yaw ranges scaled (the env's ``pose_range`` option): where the
experts still succeed on every episode, the task allows that wider scene variation.

Episodes run on ``obs_mode="state"`` (nothing rendered), env and expert seed ``--seed + i``, the same seeds at
every setting. Resumable: each (task, variability) cell is written atomically as it finishes
(``<out>/cells/``); a rerun skips the cells it finds. Writes ``<out>/results.json`` and ``<out>/summary.md``
(date and commit stamped).
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import datetime as dt
import json
import logging
import multiprocessing as mp
import time
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger("benchmarks.demo_variability")


def _short(task_id: str) -> str:
    return task_id.split("/")[-1].removesuffix("-v0")


def _cell_file(out: Path, task_id: str, variability: float, episodes: int, seed: int, pose_range: float) -> Path:
    poses = "" if pose_range == 1.0 else f"_poses{pose_range:g}"  # the registered ranges keep their old names
    return out / "cells" / f"{_short(task_id)}_var{variability:g}{poses}_n{episodes}_seed{seed}.json"


def run_cell(
    out: Path, task_id: str, variability: float, episodes: int, seed: int, pose_range: float = 1.0
) -> dict[str, Any]:
    """Roll out ``episodes`` full-skill expert demos of one task at one variability and pose range; write and
    return the cell."""
    import gymnasium as gym

    import tasks
    from sarm2_env.atomic import write_json_atomic
    from tasks.expert import run_expert_episode

    env = gym.make(task_id, obs_mode="state", pose_range=pose_range)
    expert = tasks.make_expert(env, skill=1.0, variability=variability)
    lengths, successes = [], []
    started = time.perf_counter()
    try:
        for i in range(episodes):
            items = list(run_expert_episode(env, expert, seed=seed + i))
            lengths.append(len(items) - 1)  # the first item is the reset
            successes.append(bool(items[-1][3]["success"]))
    finally:
        env.close()
    record = {
        "task": task_id,
        "variability": variability,
        "pose_range": pose_range,
        "seed": seed,
        "n": episodes,
        "lengths": lengths,
        "successes": successes,
        "max_episode_steps": env.spec.max_episode_steps if env.spec is not None else None,
        "seconds": time.perf_counter() - started,
    }
    write_json_atomic(_cell_file(out, task_id, variability, episodes, seed, pose_range), record)
    return record


def cv(lengths: np.ndarray) -> float:
    """Coefficient of variation (population std / mean)."""
    lengths = np.asarray(lengths, dtype=float)
    return float(lengths.std() / lengths.mean())


def summarise(out: Path, cells: list[dict[str, Any]]) -> str:
    """The per-task table of ``cells``; also writes ``results.json`` and ``summary.md`` under ``out``."""
    from benchmarks.report import _git_revision, short_revision
    from sarm2_env.atomic import write_json_atomic
    from sarm2_env.stats import bootstrap_interval, wilson_interval

    stamp = f"{dt.date.today().isoformat()}, commit {short_revision(_git_revision())}"
    lines = [
        "# Full-skill demo length and success by operator variability",
        "",
        f'{stamp}. Scripted full-skill experts on `obs_mode="state"`, the same env/expert seeds at every setting. '
        "CV: coefficient of variation of the demo length in steps (10 Hz), 95 % bootstrap interval over episodes. "
        "Success from the simulator, 95 % Wilson interval. Target: CV >= 0.2 and every demo successful at "
        "variability 1. Pose range: the env's `pose_range` (object position and yaw ranges x this; 1 = as "
        "registered).",
        "",
        "| task | variability | pose range | episodes | length mean (min-max) | CV | CV 95 % interval | success | "
        "success 95 % interval | step limit |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    rows = []
    cells = [{"pose_range": 1.0, **c} for c in cells]  # cells written before the option existed: as registered
    for c in sorted(cells, key=lambda c: (c["task"], c["variability"], c["pose_range"])):
        lengths = np.asarray(c["lengths"], dtype=float)
        lo, hi = bootstrap_interval(lengths, cv)
        s = int(sum(c["successes"]))
        slo, shi = wilson_interval(s, c["n"])
        row = {**c, "cv": cv(lengths), "cv_interval": [lo, hi], "success_interval": [slo, shi]}
        rows.append(row)
        lines.append(
            f"| {_short(c['task'])} | {c['variability']:g} | {c['pose_range']:g} | {c['n']} | {lengths.mean():.0f} "
            f"({lengths.min():.0f}-{lengths.max():.0f}) | {row['cv']:.2f} | {lo:.2f}-{hi:.2f} | {s}/{c['n']} | "
            f"{100 * slo:.0f}-{100 * shi:.0f} % | {c['max_episode_steps']} |"
        )
    text = "\n".join(lines) + "\n"
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / "results.json", {"stamp": stamp, "cells": rows})
    (out / "summary.md").write_text(text)
    return text


def _settings(args: argparse.Namespace) -> list[tuple[float, float]]:
    """The (variability, pose range) cells to run, sorted; a ConfigError for a variability outside [0, 1], a pose
    range outside the env's, or too few episodes."""
    from sarm2_env.errors import ConfigError
    from tasks.base import MAX_POSE_RANGE

    settings = sorted({float(v) for v in args.variability.split(",")})
    if settings[0] < 0.0 or settings[-1] > 1.0:
        raise ConfigError(f"`--variability` must be in [0, 1]; got {args.variability!r}")
    ranges = sorted({float(r) for r in args.pose_range.split(",")})
    if ranges[0] < 0.0 or ranges[-1] > MAX_POSE_RANGE:
        raise ConfigError(f"`--pose-range` must be in [0, {MAX_POSE_RANGE:g}]; got {args.pose_range!r}")
    if args.episodes < 2 or args.workers < 1:
        raise ConfigError(f"`--episodes` must be >= 2 and `--workers` >= 1; got {args.episodes}, {args.workers}")
    return [(v, r) for v in settings for r in ranges]


def main(argv: list[str] | None = None) -> int:
    """Measure the demos' length variation per task at each operator variability; returns the exit status."""
    from benchmarks.evaluation import parse_task_arguments, task_parser

    parser = task_parser(__doc__)
    parser.add_argument("--variability", default="0,1", help="settings in [0, 1] (comma-separated)")
    parser.add_argument("--pose-range", default="1", help="the env's pose_range settings (comma-separated)")
    parser.add_argument("--episodes", type=int, default=20, help="episodes per task and setting")
    parser.add_argument("--seed", type=int, default=0, help="first env/expert seed")
    parser.add_argument("--workers", type=int, default=2, help="processes")
    parser.add_argument("--out", default="results/demo_variability")
    args, ids, settings = parse_task_arguments(parser, argv, _settings)
    out = Path(args.out)
    cells, todo = [], []
    # Slowest tasks first, so the two workers finish together.
    for task_id in sorted(ids, key=lambda t: ("Fold" not in t, t)):
        for v, r in settings:
            path = _cell_file(out, task_id, v, args.episodes, args.seed, r)
            if path.exists():
                cells.append(json.loads(path.read_text()))
            else:
                todo.append((task_id, v, r))
    ctx = mp.get_context("spawn")  # forked workers deadlock after GL initialisation
    with cf.ProcessPoolExecutor(max_workers=args.workers, mp_context=ctx) as pool:
        futures = [pool.submit(run_cell, out, t, v, args.episodes, args.seed, r) for t, v, r in todo]
        for future in cf.as_completed(futures):
            cell = future.result()
            cells.append(cell)
            log.info(
                "%s variability %g, pose range %g: CV %.2f, %d/%d successful (%.0f s)",
                _short(cell["task"]),
                cell["variability"],
                cell["pose_range"],
                cv(np.asarray(cell["lengths"])),
                sum(cell["successes"]),
                cell["n"],
                cell["seconds"],
            )
    print(summarise(out, cells))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
