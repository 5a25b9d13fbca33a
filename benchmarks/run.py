"""Benchmark every reward backend: value-estimation MSE (and more) on held-out demos and imperfect rollouts.

    python benchmarks/run.py                                  # configs/quick.yaml: CPU, ~30 min from scratch
    python benchmarks/run.py --config full                    # configs/full.yaml: a GPU machine
    python benchmarks/run.py --backends sarm2,rewind --set train.steps=500 --name try
    python benchmarks/run.py --force train                    # retrain, reuse data and embeddings
    python benchmarks/run.py --config spiral                  # SPIRAL success rates per round (kind: spiral)
    python benchmarks/run.py --config spiral_state_whiteboard # SPIRAL on the state stand-in (kind: spiral_state)

Stages: collect -> encode -> train -> predict -> report. Each is cached: a rerun skips what is done and
still valid; ``--force STAGE`` redoes one (repeatable). Outputs go to ``results/<name>/``: results.json,
summary.md, summary.csv, plots/. Training uses demonstrations (time-linear labels) only; the physics
ground truth is read only to score the held-out rollouts.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path

# ``python benchmarks/run.py`` puts benchmarks/ first on sys.path; the repository root must come first so
# that ``benchmarks``, ``rewards`` and ``tasks`` resolve as packages even without an editable install.
ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

log = logging.getLogger("benchmarks")


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``python benchmarks/run.py``."""
    from benchmarks.pipeline import STAGES

    p = argparse.ArgumentParser(prog="python benchmarks/run.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default="quick", help="config name in benchmarks/configs/ or a YAML path")
    p.add_argument("--name", default=None, help="run name (results/<name>/); default: the config's")
    p.add_argument("--tasks", default=None, help="comma-separated task names (default: the config's)")
    p.add_argument("--backends", default=None, help="comma-separated backends (default: the config's)")
    p.add_argument("--device", default=None, help="cpu, cuda (default: the config's, else cuda when present)")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key, e.g. --set data.train_demos=20 --set train.steps=2000",
    )
    p.add_argument("--force", action="append", default=[], choices=[*STAGES, "all"], help="redo a stage")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark named by ``--config``; returns the exit status (2 on bad input, 1 when no backend ran)."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    import tasks  # noqa: F401  (headless GL before anything imports mujoco)
    from sarm2_env.errors import SARM2Error

    try:
        results = run(args)
    except SARM2Error as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 1 if results["failures"] and not results["table"] else 0


def run(args: argparse.Namespace) -> dict:
    """Run one benchmark config (reward models or SPIRAL) and return its aggregate results."""
    from benchmarks.bench_config import CONFIG_DIR, load_config
    from benchmarks.spiral_bench import is_spiral_config

    path = Path(args.config) if Path(args.config).suffix else CONFIG_DIR / f"{args.config}.yaml"
    if is_spiral_config(path):
        return run_spiral(args, path)
    if is_spiral_config(path, kind="spiral_state"):
        return run_spiral_state(args, path)

    from benchmarks.pipeline import STAGES, RunState, stage_collect, stage_encode, stage_predict, stage_train
    from benchmarks.report import write_report
    from rewards.train import parse_overrides

    overrides = parse_overrides(args.set)
    for flag, key in (("name", "name"), ("device", "device")):
        if getattr(args, flag) is not None:
            overrides[key] = getattr(args, flag)
    for flag in ("tasks", "backends"):
        if getattr(args, flag) is not None:
            overrides[flag] = [x.strip() for x in getattr(args, flag).split(",") if x.strip()]
    config = load_config(args.config, overrides)
    force = set(STAGES) if "all" in args.force else set(args.force)
    state = RunState(
        config=config,
        run_dir=Path(config.out) / config.name,
        task_ids=config.task_ids(),
        force=force,
        progress=not args.no_progress,
    )
    state.run_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    log.info(
        "benchmark %s: %d task(s), backends %s -> %s",
        config.name,
        len(state.task_ids),
        ", ".join(config.backends),
        state.run_dir,
    )
    for stage in (stage_collect, stage_encode, stage_train):
        t0 = time.perf_counter()
        stage(state)
        state.timings[stage.__name__.removeprefix("stage_")] = time.perf_counter() - t0
    t0 = time.perf_counter()
    predictions = stage_predict(state)
    state.timings["predict"] = time.perf_counter() - t0
    results = write_report(state, predictions, started)
    print((state.run_dir / "summary.md").read_text())
    print(
        f"results: {state.run_dir}/ (results.json, summary.md, summary.csv, plots/); {results['wall_minutes']:.1f} min"
    )
    return results


def run_spiral(args: argparse.Namespace, path: Path) -> dict:
    """``kind: spiral`` configs: SPIRAL success-rate curves per reward source (benchmarks/spiral_bench.py)."""
    from benchmarks.spiral_bench import load_spiral_config, run_spiral_benchmark
    from rewards.train import parse_overrides
    from sarm2_env.errors import ConfigError

    if args.backends is not None or args.force:
        raise ConfigError("`--backends` and `--force` apply to reward benchmarks; set reward_sources with --set")
    overrides = parse_overrides(args.set)
    for flag in ("name", "device"):
        if getattr(args, flag) is not None:
            overrides[flag] = getattr(args, flag)
    if args.tasks is not None:
        overrides["tasks"] = [x.strip() for x in args.tasks.split(",") if x.strip()]
    config = load_spiral_config(path, overrides)
    results = run_spiral_benchmark(config)
    run_dir = Path(config.out) / config.name
    print((run_dir / "spiral_summary.md").read_text())
    print(f"results: {run_dir}/ (spiral_results.json, spiral_summary.md, plots/); {results['wall_minutes']:.1f} min")
    return {"failures": {}, "table": results["tasks"], **results}


def run_spiral_state(args: argparse.Namespace, path: Path) -> dict:
    """``kind: spiral_state`` configs: SPIRAL on the state-policy stand-in (benchmarks/spiral_state.py); they take
    ``--name`` and nothing else of the reward benchmark's flags."""
    import dataclasses

    from benchmarks.spiral_state import SpiralStateBench, run_bench
    from sarm2_env.errors import ConfigError

    other = [f"--{flag}" for flag in ("tasks", "backends", "device", "set", "force") if getattr(args, flag)]
    if other:
        raise ConfigError(f"{', '.join(other)}: a `kind: spiral_state` config takes only --name; edit its YAML")
    bench = SpiralStateBench.load(path)
    if args.name is not None:
        bench = dataclasses.replace(bench, name=args.name)
    started = time.perf_counter()
    text, curves = run_bench(bench)
    print(text)
    minutes = (time.perf_counter() - started) / 60
    print(f"results: {Path(bench.out) / bench.name}/ (results.json, summary.md, success.png); {minutes:.1f} min")
    return {"failures": {}, "table": curves}


if __name__ == "__main__":
    sys.exit(main())
