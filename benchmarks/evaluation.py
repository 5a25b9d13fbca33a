"""Evaluation helpers shared by the benchmark scripts: rollout scores and resumable, stamped evaluations."""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from benchmarks.metrics import by_task, macro_summary, rollout_ranking
from sarm2_env.stats import auroc, spearman_ceiling

log = logging.getLogger("benchmarks")

_Settings = TypeVar("_Settings")


def score_rollouts(model, rollouts: Sequence) -> dict[str, Any]:
    """Value MSE against calibrated physics progress, the ranking of final progress (rollout rho, its ceiling on
    these rollouts, concordance: :func:`~benchmarks.metrics.rollout_ranking`), success AUROC and per-episode errors
    (for paired ratios) of ``model`` on imperfect rollouts, at their scored steps."""
    from benchmarks.report import ground_truth, scored

    finals: dict[str, list[tuple[float, float]]] = {}
    scores, success = [], []
    per_episode: dict[str, float] = {}

    def error(f) -> float:
        p = scored(f, model.predict_episode(f).progress).astype(np.float64)
        truth = ground_truth("heldout_rollouts", f)
        finals.setdefault(f.task_id, []).append((float(p[-1]), float(truth[-1])))
        scores.append(float(p[-1]))
        success.append(bool(f.success))
        per_episode[f.episode_id] = float(np.mean((p - truth) ** 2))
        return per_episode[f.episode_id]

    mse = macro_summary(by_task(rollouts, error))  # fills finals, scores, success, per_episode
    return {
        "rollout_mse": mse,
        **rollout_ranking(finals),
        "success_auroc": auroc(scores, success),
        "success_rate": float(np.mean(success)) if success else float("nan"),
        "episode_mse": per_episode,
    }


def fingerprint_ids(ids: Sequence[str]) -> str:
    """A short, order-independent hash of episode ids (what an evaluation was computed on)."""
    return hashlib.sha256(json.dumps(sorted(ids)).encode()).hexdigest()[:12]


#: Bumped when the metrics an evaluation computes change, so that evaluations cached before are computed again
#: (2: rollout concordance; held-out demos the expert failed left out of demo metrics; 3: rollout rho NaN on a task
#: with fewer than 3 rollouts, as in the benchmark table). The stamp also carries
#: :data:`rewards.data.FEATURES_VERSION` (what models read).
EVALUATION_VERSION = 3


def cached_evaluation(path: Path, stamp: dict[str, Any], compute: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """``compute()``, or its saved result when ``path`` holds one made with the same ``stamp`` and
    :data:`EVALUATION_VERSION` (resumable)."""
    from benchmarks.pipeline import _read_json
    from rewards.data import FEATURES_VERSION
    from sarm2_env.atomic import write_json_atomic

    versions = {"evaluation_version": EVALUATION_VERSION, "features": FEATURES_VERSION}
    stamp = json.loads(json.dumps({**stamp, **versions}, default=str))
    saved = _read_json(path)
    if isinstance(saved, dict) and saved.get("stamp") == stamp:
        log.info("evaluate %s: cached", path.stem)
        return saved["result"]
    log.info("evaluate %s", path.stem)
    result = compute()
    write_json_atomic(path, {"stamp": stamp, "result": result})
    return result


# --- the scripts' shared command line and output ---------------------------------------------------


def add_data_arguments(parser, *, what: str) -> None:
    """``--config``, ``--tasks`` and ``--set``: which benchmark config's data (and checkpoints) a script reuses."""
    parser.add_argument("--config", default="full", help=f"benchmark config whose {what} to use (name or path)")
    parser.add_argument("--tasks", default=None, help="comma-separated task ids or short names (default: the config's)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key")


def add_output_arguments(parser, *, out: str, docs: str) -> None:
    """``--out`` (results folder), ``--docs`` (markdown copy, '' = none) and ``--no-progress``."""
    parser.add_argument("--out", default=out, help="output folder")
    parser.add_argument("--docs", default=docs, help="markdown copy of the summary ('' = none)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def config_from_arguments(args, **overrides: Any):
    """The benchmark config named by :func:`add_data_arguments`'s options, with ``overrides`` on top."""
    from benchmarks.bench_config import load_config
    from rewards.train import parse_overrides

    merged: dict[str, Any] = parse_overrides(args.set)
    if args.tasks:
        merged["tasks"] = [t.strip() for t in args.tasks.split(",") if t.strip()]
    return load_config(args.config, {**merged, **overrides})


def start_run(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> tuple[argparse.Namespace, float]:
    """A benchmark script's start: its parsed command line, INFO logging with timestamps, and the
    ``time.perf_counter()`` it started at (for :func:`run_footer`)."""
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    return args, time.perf_counter()


def task_parser(doc: str, tasks: str = "all") -> argparse.ArgumentParser:
    """A per-task benchmark's argument parser: described by the first line of ``doc`` (the script's docstring),
    with its ``--tasks`` option (default ``tasks``)."""
    parser = argparse.ArgumentParser(description=doc.split("\n")[0])
    parser.add_argument("--tasks", default=tasks, help="comma-separated ids or short names, or all")
    return parser


def parse_task_arguments(
    parser: argparse.ArgumentParser,
    argv: Sequence[str] | None,
    check: Callable[[argparse.Namespace], _Settings],
) -> tuple[argparse.Namespace, list[str], _Settings]:
    """A per-task benchmark's start (see :func:`task_parser`): its parsed command line, INFO logging with
    timestamps, the task ids ``--tasks`` names and what ``check(args)`` returns (the settings it parsed and
    checked). An unknown task, or a ``ValueError`` from ``check`` (``ConfigError`` is one), exits through
    ``parser.error`` with its message."""
    import tasks

    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    try:
        return args, tasks.resolve_task_ids(args.tasks), check(args)
    except ValueError as exc:  # ConfigError and UnknownNameError are ValueErrors
        parser.error(str(exc))


def run_footer(started: float) -> dict[str, Any]:
    """The last entries of a script's results: ``wall_min`` (minutes since ``started``) and ``machine``."""
    return {
        "wall_min": (time.perf_counter() - started) / 60,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
    }


def publish_results(
    results: dict[str, Any],
    args: argparse.Namespace,
    argv: Sequence[str] | None,
    script: str,
    write_report: Callable[[dict[str, Any], Path, Path | None, str], str],
) -> int:
    """Write ``results.json`` into ``args.out`` and print ``write_report(results, out, docs, command)`` (the
    summary, also written to ``args.docs`` unless that is ''), ``command`` being how ``benchmarks/<script>.py``
    was called; returns the exit status 0."""
    from sarm2_env.atomic import write_json_atomic

    out = Path(args.out)
    write_json_atomic(out / "results.json", results)
    command = f"python benchmarks/{script}.py " + " ".join(sys.argv[1:] if argv is None else argv)
    print(write_report(results, out, Path(args.docs) if args.docs else None, command.strip()))
    return 0


def mean_ci(m: dict[str, Any], fmt: Callable[[Any], str]) -> str:
    """``mean [low, high]`` of a bootstrap summary ``{"mean": ..., "ci": [low, high]}``, each number written by
    ``fmt``."""
    low, high = m["ci"]
    return f"{fmt(m['mean'])} [{fmt(low)}, {fmt(high)}]"


def write_summary(text: str, out: Path, docs: Path | None) -> None:
    """``<out>/summary.md`` and, when given, its copy in ``docs``, each written atomically."""
    from sarm2_env.atomic import atomic_write

    for path in [out / "summary.md", *([docs] if docs is not None else [])]:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def rho_ceiling(rollouts: Sequence) -> dict[str, float]:
    """Per task, the highest rollout rho any prediction without ties can reach
    (:func:`~sarm2_env.stats.spearman_ceiling` of the rollouts' true final progress). Where most rollouts end at
    the same progress (all successes at 1.0), Spearman's rho of a continuous prediction is capped well below 1
    however well it ranks."""
    finals: dict[str, list[float]] = {}
    for f in rollouts:
        finals.setdefault(f.task_id, []).append(float(np.asarray(f.physics_progress)[f.scored_steps[-1]]))
    return {task: spearman_ceiling(np.asarray(values)) for task, values in sorted(finals.items())}
