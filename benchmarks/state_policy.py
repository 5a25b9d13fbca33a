"""Calibrate SPIRAL's ``pi_0``: the state BC policy (sim-only stand-in for a VLA) by its demonstration budget.

    python benchmarks/state_policy.py                                   # FoldShorts + CleanWhiteboard
    python benchmarks/state_policy.py --tasks all --budgets 40 --eval 10  # every task at one budget
    python benchmarks/state_policy.py --tasks CleanWhiteboard --budgets 5,10,20 --ignore-fields ink_remaining

For each task and budget ``N`` it trains :class:`agents.state_policy.StatePolicy` on the first ``N`` full-skill
expert demos (executed with DART noise, labelled with the expert's targets; seeds from 300000) and rolls it out
on held-out seeds (from 900000), nothing rendered. Success is the simulator's, with a 95 % Wilson interval;
mean final progress beside it. The paper starts SPIRAL from policies at 40-65 % success; the table shows which
budget lands there.

Resumable: demos are cached per task (``<out>/demos/``) and each (task, budget) cell is written atomically as
it finishes (``<out>/cells/``); a rerun skips what is there. Cells run in ``--workers`` processes (one torch
thread each). Writes ``<out>/results.json`` and ``<out>/summary.md`` (date and commit stamped).
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import datetime as dt
import io
import json
import logging
import multiprocessing as mp
import time
from pathlib import Path
from typing import Any

import numpy as np

DEMO_SEED = 300_000
EVAL_SEED = 900_000
DEFAULT_TASKS = ("SARM2/FoldShorts-v0", "SARM2/CleanWhiteboard-v0")
log = logging.getLogger("benchmarks.state_policy")


def _short(task_id: str) -> str:
    return task_id.split("/")[-1].removesuffix("-v0")


def _demo_file(out: Path, task_id: str, noise: float) -> Path:
    return out / "demos" / f"{_short(task_id)}_noise{noise:g}.npz"


def _cell_file(out: Path, task_id: str, budget: int, noise: float, episodes: int, ignore: tuple[str, ...] = ()) -> Path:
    without = "".join(f"_without-{name.replace('/', '-')}" for name in ignore)
    return out / "cells" / f"{_short(task_id)}_n{budget}_noise{noise:g}_eval{episodes}{without}.json"


def collect_demos(out: Path, task_id: str, episodes: int, noise: float) -> str:
    """Collect (or extend) the cached demos of one task; returns a log line."""
    import torch

    from agents.state_policy import collect_state_demos
    from sarm2_env.atomic import atomic_write

    torch.set_num_threads(1)
    path = _demo_file(out, task_id, noise)
    have = _load_demos(path, task_id)
    if len(have) >= episodes:
        return f"{_short(task_id)}: {len(have)} demos cached"
    started = time.perf_counter()
    more = collect_state_demos(task_id, episodes - len(have), DEMO_SEED + len(have), action_noise=noise)
    demos = have + more
    arrays: dict[str, np.ndarray] = {}
    for i, d in enumerate(demos):
        arrays[f"state_{i}"], arrays[f"action_{i}"] = d.state, d.action
    arrays["success"] = np.array([d.success for d in demos])
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda f: f.write(buffer.getvalue()))
    ok = int(arrays["success"].sum())
    return (
        f"{_short(task_id)}: {len(more)} demos in {time.perf_counter() - started:.0f} s ({ok}/{len(demos)} succeeded)"
    )


def _load_demos(path: Path, task_id: str) -> list:
    from agents.state_policy import StateEpisode

    if not path.exists():
        return []
    with np.load(path) as z:
        n = len(z["success"])
        return [
            StateEpisode(task_id, z[f"state_{i}"], z[f"action_{i}"], success=bool(z["success"][i])) for i in range(n)
        ]


def run_cell(
    out: Path, task_id: str, budget: int, noise: float, episodes: int, steps: int, ignore: tuple[str, ...] = ()
) -> dict[str, Any]:
    """Train on the first ``budget`` demos (the head not reading the state fields ``ignore``), evaluate on
    ``episodes`` held-out seeds; the cell's record."""
    import torch

    from agents.state_policy import LABEL, StatePolicy, StatePolicyConfig, evaluate_state_policy
    from sarm2_env.atomic import write_json_atomic

    torch.set_num_threads(1)
    demos = _load_demos(_demo_file(out, task_id, noise), task_id)[:budget]
    started = time.perf_counter()
    policy = StatePolicy(StatePolicyConfig(steps=steps, ignore_fields=ignore), device="cpu")
    policy.fit(demos, seed=0)
    trained = time.perf_counter() - started
    results = evaluate_state_policy(policy, task_id, range(EVAL_SEED, EVAL_SEED + episodes))
    from benchmarks.report import _git_revision

    record = {
        "policy": LABEL,
        "revision": _git_revision(),  # the code that produced this cell (a summary may gather several runs)
        "task": task_id,
        "demos": budget,
        "action_noise": noise,
        "bc_steps": steps,
        "ignore_fields": list(ignore),
        "episodes": results,
        "successes": int(sum(r["success"] for r in results)),
        "n": len(results),
        "mean_final_progress": float(np.mean([r["progress"] for r in results])),
        "train_s": trained,
        "eval_s": time.perf_counter() - started - trained,
    }
    write_json_atomic(_cell_file(out, task_id, budget, noise, episodes, ignore), record)
    return record


def summarise(out: Path, args: argparse.Namespace) -> str:
    """Tables of every cell under ``<out>/cells`` with this run's noise and steps (other runs' tasks included)."""
    from agents.state_policy import LABEL
    from benchmarks.report import _git_revision, short_revision
    from sarm2_env.stats import wilson_interval

    cells = [json.loads(p.read_text()) for p in sorted((out / "cells").glob("*.json"))]
    cells = [c for c in cells if c["action_noise"] == args.noise and c["bc_steps"] == args.steps]
    revision = _git_revision()
    stamp = f"{dt.date.today().isoformat()}, commit {short_revision(revision)}"
    lines = [
        f"# `pi_0` calibration: {LABEL}",
        "",
        f"{stamp}. Full-skill expert demos executed with DART noise {args.noise:g} rad (labels: the expert's targets), "
        f"{args.steps} BC steps; held-out seeds from {EVAL_SEED}; nothing rendered. Success from the simulator "
        "(95 % Wilson interval); the paper starts SPIRAL at 40-65 %.",
        "",
        "| task | inputs | demos | success | 95 % interval | mean final progress | train / eval (s) |",
        "|---|---|---|---|---|---|---|",
    ]
    for c in sorted(cells, key=lambda c: (c["task"], c.get("ignore_fields", []), c["demos"])):
        lo, hi = wilson_interval(c["successes"], c["n"])
        rate = f"{c['successes']}/{c['n']} ({100 * c['successes'] / c['n']:.0f} %)"
        timing = f"{c['train_s']:.0f} / {c['eval_s']:.0f}"
        lines.append(
            f"| {_short(c['task'])} | {_inputs(c)} | {c['demos']} | {rate} | {100 * lo:.0f}-{100 * hi:.0f} % "
            f"| {c['mean_final_progress']:.2f} | {timing} |"
        )
    text = "\n".join(lines) + "\n"
    from sarm2_env.atomic import write_json_atomic

    write_json_atomic(out / "results.json", {"policy": LABEL, "stamp": stamp, "cells": cells})
    (out / "summary.md").write_text(text)
    return text


def _inputs(cell: dict[str, Any]) -> str:
    """How a cell's policy read the state: every field, or every field but those it ignored."""
    ignored = cell.get("ignore_fields", [])  # cells written before the option existed read everything
    return "all state" if not ignored else "without " + ", ".join(f"`{name}`" for name in ignored)


def _budgets(args: argparse.Namespace) -> list[int]:
    """The ``--budgets``, sorted; a ConfigError for a budget, evaluation or worker count < 1 or noise < 0."""
    from sarm2_env.errors import ConfigError

    budgets = sorted({int(b) for b in args.budgets.split(",")})
    if not budgets or budgets[0] < 1 or args.eval < 1 or args.workers < 1 or args.noise < 0:
        raise ConfigError("`--budgets`, `--eval` and `--workers` must be >= 1 and `--noise` >= 0")
    return budgets


def main(argv: list[str] | None = None) -> int:
    """Calibrate the state BC policy by its data budget (success per task); returns the exit status."""
    from benchmarks.evaluation import parse_task_arguments, task_parser

    parser = task_parser(__doc__, tasks=",".join(DEFAULT_TASKS))
    parser.add_argument("--budgets", default="20,40,80,160", help="demo budgets (comma-separated)")
    parser.add_argument("--noise", type=float, default=0.02, help="DART action noise (rad) while collecting demos")
    parser.add_argument("--eval", type=int, default=20, help="held-out evaluation episodes per cell")
    parser.add_argument("--steps", type=int, default=6000, help="BC training steps")
    parser.add_argument("--workers", type=int, default=2, help="processes (each uses one torch thread)")
    parser.add_argument(
        "--ignore-fields", default="", help="state fields the policy does not read (comma-separated layout names)"
    )
    parser.add_argument("--out", default="results/state_policy")
    args, ids, budgets = parse_task_arguments(parser, argv, _budgets)
    out = Path(args.out)
    ignore = tuple(name for name in args.ignore_fields.split(",") if name)
    ctx = mp.get_context("spawn")  # forked workers deadlock after torch/GL initialisation
    with cf.ProcessPoolExecutor(max_workers=args.workers, mp_context=ctx) as pool:
        for line in pool.map(collect_demos, [out] * len(ids), ids, [budgets[-1]] * len(ids), [args.noise] * len(ids)):
            log.info("%s", line)
        todo = []
        for task_id in ids:
            for budget in budgets:
                path = _cell_file(out, task_id, budget, args.noise, args.eval, ignore)
                done = json.loads(path.read_text()) if path.exists() else None
                if not (done and done["n"] == args.eval and done["bc_steps"] == args.steps):
                    todo.append((task_id, budget))
        futures = {pool.submit(run_cell, out, t, b, args.noise, args.eval, args.steps, ignore): (t, b) for t, b in todo}
        for future in cf.as_completed(futures):
            cell = future.result()
            log.info(
                "%s n=%d: %d/%d success, progress %.2f",
                _short(cell["task"]),
                cell["demos"],
                cell["successes"],
                cell["n"],
                cell["mean_final_progress"],
            )
    print(summarise(out, args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
