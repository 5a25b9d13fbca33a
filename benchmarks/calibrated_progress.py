"""How well each task's physics ground truth agrees with the time-linear progress reward models learn.

    python benchmarks/calibrated_progress.py                          # every task: 20 demos, 3 seeds per skill
    python benchmarks/calibrated_progress.py --tasks PullPlug --demos 5 --seeds 2
    python benchmarks/calibrated_progress.py --tasks PullPlug --fit   # also print the measured stage weights

Reward models are trained on ``t / (T - 1)`` of full-skill demos. This script rolls out ``--demos`` full-skill
demos per task at operator variability 1 (env and expert seeds 0, 1, ...; ``obs_mode="state"``, nothing is
rendered) and reports, per task, the mean over demos of the per-demo MSE between the oracle and time-linear
progress, for the raw physics ``info["progress"]`` and the ``info["calibrated_progress"]`` of
:mod:`tasks.calibration` (target: <= 0.005 on every task), each with a 95 % bootstrap interval over demos. It
then rolls out ``--seeds`` imperfect episodes per skill in ``--skills`` and reports the final calibrated
progress of failures and successes (it must stay below 1 without success and reach 1 with it).

``--fit`` also prints each task's stage weights as measured on these demos (each stage's mean share of demo
time, from the previous stage's completion to its own): what the tasks' ``CALIBRATION_WEIGHTS`` constants
hold. Single process; the two cloth tasks take a few minutes each. Resumable: each task's results are written
atomically as it finishes (``<cells>/cells/``) and a rerun with the same settings reuses them (``--fit`` always
reruns), so tasks can be run one at a time and the table assembled at the end. Writes the tables to ``--out`` (date
and commit stamped).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger("benchmarks.calibrated_progress")

#: The calibrated progress's target: macro MSE against time-linear progress on full-skill demos.
TARGET_MSE = 0.005


@dataclass(frozen=True)
class Episode:
    """One rollout: per frame (the reset, then every step) raw and calibrated progress and stage fractions."""

    seed: int
    skill: float
    raw: np.ndarray  # (T,)
    calibrated: np.ndarray  # (T,)
    stages: tuple[str, ...]
    fractions: np.ndarray  # (T, n_stages)
    success: bool

    def time_linear(self) -> np.ndarray:
        """``t / (T - 1)``: the progress target reward models are trained on."""
        return np.linspace(0.0, 1.0, len(self.raw))


def _short(task_id: str) -> str:
    return task_id.split("/")[-1].removesuffix("-v0")


def run_episode(env, expert, seed: int, skill: float) -> Episode:
    """Roll out ``expert`` on ``env`` (state mode) for one seed, recording the ground truths at every frame."""
    from tasks.expert import run_expert_episode

    unwrapped = env.unwrapped
    raw, calibrated, fractions, success = [], [], [], False
    stages: tuple[str, ...] = ()
    for _obs, _action, _reward, info in run_expert_episode(env, expert, seed=seed):
        raw.append(info["progress"])
        calibrated.append(info["calibrated_progress"])
        frac = unwrapped.calibration_stages()
        stages = tuple(frac)
        fractions.append([frac[name] for name in stages])
        success = bool(info["success"])
    return Episode(seed, skill, np.array(raw), np.array(calibrated), stages, np.array(fractions), success)


def episode_mse(values: np.ndarray) -> float:
    """MSE of one episode's progress series against ``t / (T - 1)``."""
    target = np.linspace(0.0, 1.0, len(values))
    return float(np.mean((np.asarray(values, dtype=float) - target) ** 2))


def time_shares(ep: Episode, complete: float | None = None) -> dict[str, float]:
    """Each stage's share of the demo's time: from the previous stage's completion to its own.

    A stage completes the first frame its fraction reaches ``complete``; stages are taken in order of
    completion (a stage never completed by the end completes at the last frame); stages completed on the same
    frame share the interval equally. Shares sum to 1.
    """
    from tasks.calibration import COMPLETE

    threshold = COMPLETE if complete is None else complete
    last = len(ep.raw) - 1
    done = ep.fractions >= threshold
    finish = np.where(done.any(axis=0), done.argmax(axis=0), last).astype(float)
    shares = dict.fromkeys(ep.stages, 0.0)
    previous = 0.0
    for t in np.unique(finish):
        tied = [name for name, f in zip(ep.stages, finish) if f == t]
        for name in tied:
            shares[name] += (t - previous) / len(tied) / max(last, 1)
        previous = t
    if previous < last:  # time after the last completion (none on a successful demo) goes to the last stage
        shares[tied[-1]] += (last - previous) / last
    return shares


def fit_weights(demos: Sequence[Episode]) -> dict[str, float]:
    """Mean time share of each stage over ``demos`` (rounded to 3 decimals): a task's calibrated weights."""
    shares = [time_shares(ep) for ep in demos]
    return {name: round(float(np.mean([s[name] for s in shares])), 3) for name in demos[0].stages}


def rollouts(task_id: str, seeds: Sequence[int], skill: float, variability: float) -> list[Episode]:
    """One episode per seed of ``task_id``'s scripted expert at ``skill`` and ``variability``."""
    import tasks

    env = tasks.make_task_env(task_id, obs_mode="state")
    expert = tasks.make_expert(env, skill=skill, variability=variability)
    try:
        return [run_episode(env, expert, seed, skill) for seed in seeds]
    finally:
        env.close()


def run_cell(
    out: Path, task_id: str, demos: int, seeds: int, skills: Sequence[float], variability: float, fit: bool
) -> dict:
    """Roll out one task's demos and imperfect episodes; write (atomically) and return its cell."""
    from sarm2_env.atomic import write_json_atomic

    started = time.perf_counter()
    episodes = rollouts(task_id, range(demos), 1.0, variability)
    cell = {
        "task": task_id,
        "demos": demos,
        "variability": variability,
        "raw_mse": [episode_mse(ep.raw) for ep in episodes],
        "calibrated_mse": [episode_mse(ep.calibrated) for ep in episodes],
        "successes": [ep.success for ep in episodes],
        "weights": fit_weights(episodes) if fit else None,
        "imperfect": [
            {
                "skill": ep.skill,
                "seed": ep.seed,
                "success": ep.success,
                "final": float(ep.calibrated[-1]),
                "peak": float(ep.calibrated.max()),
            }
            for skill in skills
            for ep in (rollouts(task_id, range(seeds), skill, variability) if seeds else [])
        ],
    }
    cell["seconds"] = time.perf_counter() - started
    write_json_atomic(_cell_file(out, task_id, demos, seeds, skills, variability), cell)
    return cell


def _cell_file(out: Path, task_id: str, demos: int, seeds: int, skills: Sequence[float], variability: float) -> Path:
    skill_text = "-".join(f"{s:g}" for s in skills) or "none"
    return out / "cells" / f"{_short(task_id)}_n{demos}_s{seeds}_skills{skill_text}_var{variability:g}.json"


def demo_row(cell: dict) -> str:
    """Markdown row of raw vs calibrated MSE on a cell's demos."""
    from sarm2_env.stats import bootstrap_interval

    raw, cal = np.array(cell["raw_mse"]), np.array(cell["calibrated_mse"])
    raw_lo, raw_hi = bootstrap_interval(raw)
    cal_lo, cal_hi = bootstrap_interval(cal)
    met = "yes" if cal.mean() <= TARGET_MSE else "**no**"
    return (
        f"| {_short(cell['task'])} | {len(raw)} | {sum(cell['successes'])}/{len(raw)} | {raw.mean():.4f} | "
        f"{raw_lo:.4f}-{raw_hi:.4f} | {cal.mean():.4f} | {cal_lo:.4f}-{cal_hi:.4f} | {met} |"
    )


def skill_rows(cell: dict) -> list[str]:
    """Markdown rows, one per skill: final calibrated progress of the imperfect failures and successes."""

    def summary(values: list[float]) -> str:
        return f"{np.mean(values):.2f} ({min(values):.2f}-{max(values):.2f})" if values else "-"

    rows = []
    for skill in sorted({e["skill"] for e in cell["imperfect"]}):
        eps = [e for e in cell["imperfect"] if e["skill"] == skill]
        fails = [e for e in eps if not e["success"]]
        wins = [e["final"] for e in eps if e["success"]]
        peak = f"{max(e['peak'] for e in fails):.2f}" if fails else "-"
        rows.append(
            f"| {_short(cell['task'])} | {skill:g} | {len(wins)}/{len(eps)} | {summary([e['final'] for e in fails])} | "
            f"{peak} | {summary(wins)} |"
        )
    return rows


def _skills(args: argparse.Namespace) -> list[float]:
    """The ``--skills``; a ConfigError for a skill outside [0, 1], fewer than 2 demos or negative seeds."""
    from sarm2_env.errors import ConfigError

    skills = [float(s) for s in args.skills.split(",") if s.strip()]
    if args.demos < 2 or args.seeds < 0 or not all(0.0 <= s <= 1.0 for s in skills):
        raise ConfigError(
            f"`--demos` must be >= 2, `--seeds` >= 0 and skills in [0, 1]; got {args.demos}, {args.seeds}, "
            f"{args.skills!r}"
        )
    return skills


def main(argv: list[str] | None = None) -> int:
    """Print and write the calibrated-progress agreement table; returns the exit status."""
    from benchmarks.evaluation import parse_task_arguments, task_parser
    from benchmarks.report import _git_revision, short_revision

    parser = task_parser(__doc__)
    parser.add_argument("--demos", type=int, default=20, help="full-skill demos per task (seeds 0, 1, ...)")
    parser.add_argument("--seeds", type=int, default=3, help="imperfect rollouts per task and skill (seeds 0, 1, ...)")
    parser.add_argument("--skills", default="0.3,0.6,0.8", help="imperfect skills (comma-separated; empty: none)")
    parser.add_argument("--variability", type=float, default=1.0, help="operator variability of every rollout")
    parser.add_argument("--fit", action="store_true", help="print each task's stage weights measured on the demos")
    parser.add_argument("--out", default="docs/results/calibrated_progress.md", help="markdown file to write")
    parser.add_argument("--cells", default="results/calibrated_progress", help="where per-task results are cached")
    args, ids, skills = parse_task_arguments(parser, argv, _skills)

    out = Path(args.cells)
    cells = []
    for task_id in ids:
        path = _cell_file(out, task_id, args.demos, args.seeds, skills, args.variability)
        if path.exists() and not args.fit:
            cells.append(json.loads(path.read_text()))
            continue
        cell = run_cell(out, task_id, args.demos, args.seeds, skills, args.variability, args.fit)
        cells.append(cell)
        log.info(
            "%s: raw MSE %.4f, calibrated MSE %.4f (%.0f s)",
            _short(task_id),
            np.mean(cell["raw_mse"]),
            np.mean(cell["calibrated_mse"]),
            cell["seconds"],
        )
        if args.fit:
            print(f"{_short(task_id)} measured stage weights: {cell['weights']}")
    demo_lines = [demo_row(c) for c in cells]
    skill_lines = [row for c in cells for row in skill_rows(c)]

    stamp = f"{dt.date.today().isoformat()}, commit {short_revision(_git_revision())}"
    lines = [
        "# Calibrated physics progress vs time-linear progress",
        "",
        f"{stamp}. `python benchmarks/calibrated_progress.py --demos {args.demos} --seeds {args.seeds}`. "
        f'Scripted experts on `obs_mode="state"`, operator variability {args.variability:g}. MSE: per demo, the mean '
        "squared difference between the oracle and `t / (T - 1)` over its frames (reset included); mean over demos "
        f"with a 95 % bootstrap interval over demos. Target: calibrated MSE <= {TARGET_MSE} on every task.",
        "",
        "| task | demos | success | raw MSE | raw 95 % interval | calibrated MSE | calibrated 95 % interval | "
        "target met |",
        "|---|---|---|---|---|---|---|---|",
        *demo_lines,
    ]
    if skill_lines:
        lines += [
            "",
            "Imperfect rollouts (same variability): final calibrated progress, mean (min-max), of failures and "
            "successes, and the highest calibrated progress any failure reached at any frame.",
            "",
            "| task | skill | success | final, failures | peak, failures | final, successes |",
            "|---|---|---|---|---|---|",
            *skill_lines,
        ]
    text = "\n".join(lines) + "\n"
    print(text)
    from sarm2_env.atomic import atomic_write

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(out, lambda f: f.write(text.encode("utf-8")))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
