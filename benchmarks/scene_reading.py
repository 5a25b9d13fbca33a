"""Does a reward model read the scene or the clock, and does it pay for motion alone?

    python benchmarks/scene_reading.py                     # full.yaml's data, every variant (~50 min on 2 cores)
    python benchmarks/scene_reading.py --config quick --steps 1000 --variants sarm2,sarm2+all

Reuses a benchmark config's episodes and embedding cache (``benchmarks/run.py`` collects and encodes them; this
script does it too when they are missing) and measures, per backend, on the held-out sets:

* **value MSE** on held-out demos (vs time-linear progress) and imperfect rollouts (vs calibrated physics
  progress), and the rollout rho (Spearman of final predicted vs true progress across a task's rollouts);
* **the clock**: every held-out demo held still for 3 s in its middle (how far the prediction moves; a model that
  reads the scene stays flat) and replayed at 0.5x / 2x speed (value MSE against the scene's own progress; a
  clock runs behind or ahead);
* **the instruction**: mean progress with the right minus with another task's instruction (> 0: the model reads
  the task);
* **motion alone**: idle, random actions and arm play (:mod:`tasks.motion_controls`) for 30 s on every task,
  queried at 1 Hz: the learned progress, which should stay near the physics progress (about 0).

Rows are SARM2 training variants (``VARIANTS``, each trained here with the config's preset and steps): today's
default, speed + hold augmentation, mismatched-instruction negatives, motion negatives (random-action and
arm-play episodes of other seeds trained towards their physics progress), and all of them; then the baselines
whose checkpoints ``--baselines`` holds (a finished ``benchmarks/run.py`` run), unchanged. A privileged ridge
probe on the frozen embeddings (per camera and all cameras, trained on other rollouts' physics progress) shows
what a linear read-out of single frames' features finds; never a baseline.

Resumable: episodes, embeddings, each variant's checkpoint and each backend's evaluation are cached (stamped with
the weights and the episodes); a rerun redoes only what changed. Writes ``<out>/results.json``,
``<out>/summary.md`` and the same table to ``--docs``, stamped with the date and commit.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from benchmarks.evaluation import (
    add_data_arguments,
    add_output_arguments,
    cached_evaluation,
    config_from_arguments,
    fingerprint_ids,
    mean_ci,
    rho_ceiling,
    score_rollouts,
    write_summary,
)
from benchmarks.metrics import by_task, macro_summary
from sarm2_env.stats import nanmean

log = logging.getLogger("benchmarks.scene_reading")

#: Targets of issue-level acceptance, shown beside the measurements.
HOLD_TARGET = 0.05
MOTION_TARGET = 0.05


@dataclasses.dataclass(frozen=True)
class Variant:
    """One SARM2 training recipe: config overrides and whether motion negatives join the demos."""

    name: str
    overrides: dict[str, Any]
    negatives: bool
    note: str


VARIANTS: tuple[Variant, ...] = (
    Variant("sarm2", {}, False, "today's recipe"),
    Variant("sarm2+speed+hold", {"speed_prob": 0.3, "hold_prob": 0.3}, False, "speed and hold augmentation"),
    Variant("sarm2+wrong-task", {"negative_prob": 0.2}, False, "mismatched-instruction negatives"),
    Variant("sarm2+motion", {}, True, "random-action and arm-play negatives"),
    Variant(
        "sarm2+all",
        {"speed_prob": 0.3, "hold_prob": 0.3, "negative_prob": 0.2},
        True,
        "all of the above",
    ),
)
#: Baselines evaluated from ``--baselines`` when their checkpoints are there.
BASELINES = ("sarm", "rewind", "robometer_lite", "time_linear")


# --- data ------------------------------------------------------------------------------------------


def control_sets(state, args: argparse.Namespace) -> tuple[dict[str, list], list]:
    """``({control: evaluation episodes}, training negatives)``, recorded and encoded on first use."""
    from benchmarks.pipeline import encoded_episodes
    from tasks.motion_controls import (
        CONTROL_SEED,
        CONTROLS,
        NEGATIVE_CONTROLS,
        NEGATIVE_SEED,
        collect_controls,
        control_dir,
        negative_dir,
    )

    every = state.config.data.heldout_render_every
    root = state.data_root()
    size = state.config.data.image_size
    evaluation = {}
    for control in CONTROLS:
        path = control_dir(root, control, args.control_steps, every)
        seeds = range(CONTROL_SEED, CONTROL_SEED + args.control_episodes)
        counts = collect_controls(
            path, state.task_ids, control, seeds, steps=args.control_steps, image_size=size, render_every=every
        )
        log.info("motion control %s: %s", control, counts)
        evaluation[control] = encoded_episodes(state, path, seeds)
    negatives = []
    for control in NEGATIVE_CONTROLS:
        path = negative_dir(root, control, args.negative_steps)
        seeds = range(NEGATIVE_SEED, NEGATIVE_SEED + args.negative_episodes)
        counts = collect_controls(path, state.task_ids, control, seeds, steps=args.negative_steps, image_size=size)
        log.info("motion negatives %s: %s", control, counts)
        negatives += encoded_episodes(state, path, seeds)
    return evaluation, negatives


# --- models ----------------------------------------------------------------------------------------


def _fingerprint(episodes: Sequence) -> str:
    return fingerprint_ids([f.episode_id for f in episodes])


def train_variant(state, variant: Variant, negatives: Sequence, out: Path, steps: int | None):
    """The variant's SARM2, trained on the run's training demos (and negatives), or loaded when its stamp matches."""
    from benchmarks.pipeline import _read_json
    from rewards.data import split_episodes
    from rewards.registry import make_reward_model
    from rewards.sarm2 import SARM2Config, SARM2RewardModel
    from sarm2_env.atomic import write_json_atomic

    c = state.config
    overrides = {"steps": steps or c.train.steps, **variant.overrides}
    config = SARM2Config.preset(c.train.preset, **overrides)
    used = list(negatives) if variant.negatives else []
    ckpt = out / "checkpoints" / variant.name
    stamp_file = ckpt.with_name(f"{variant.name}.stamp.json")
    stamp = {
        "config": config.to_dict(),
        "train_data": _fingerprint(state.features["train_demos"]),
        "negatives": _fingerprint(used),
        "encoder": state.encoder.spec.key,
        "text_encoder": c.text_encoder,
        "seed": c.seed,
    }
    if _read_json(stamp_file) == stamp:
        log.info("variant %s: checkpoint found", variant.name)
        return make_reward_model("sarm2", checkpoint=ckpt, device=c.device)
    kwargs: dict[str, Any] = {"encoder": state.encoder, "text_encoder": c.text_encoder, "device": c.device}
    if c.text_encoder_path:
        kwargs["text_encoder_path"] = c.text_encoder_path
    model = SARM2RewardModel(config, **kwargs)
    train, val = split_episodes(state.features["train_demos"], 0.1, seed=c.seed)
    log.info("variant %s: %d demos, %d negatives, %s", variant.name, len(train), len(used), variant.overrides)
    started = time.perf_counter()
    model.fit(train, val, out_dir=ckpt, seed=c.seed, progress=state.progress, negatives=used)
    state.timings[f"train/{variant.name}"] = time.perf_counter() - started
    write_json_atomic(stamp_file, stamp)
    return model


def load_baselines(folder: Path, device: str | None) -> dict[str, Any]:
    """The baselines of :data:`BASELINES` whose finished checkpoints ``folder`` holds (a folder without a
    ``config.json``, left by an interrupted training, is skipped with a warning)."""
    from rewards.registry import make_reward_model

    models = {}
    for name in BASELINES:
        if (folder / name / "config.json").is_file():
            models[name] = make_reward_model(name, checkpoint=folder / name, device=device)
        elif (folder / name).is_dir():
            log.warning("baseline %s: %s holds no finished checkpoint (interrupted?); not evaluated", name, folder)
        else:
            log.warning("baseline %s: no checkpoint in %s; not evaluated", name, folder)
    return models


# --- measurements ----------------------------------------------------------------------------------


def evaluate(model, state, controls: dict[str, list], label: str) -> dict[str, Any]:
    """Every measurement of the module docstring for one model."""
    from benchmarks.clock_tests import held_still, replayed, scene_progress
    from benchmarks.report import successful_demos

    def predict(feats) -> np.ndarray:
        return np.asarray(model.predict_episode(feats).progress, dtype=np.float64)

    demos, rollouts = successful_demos(state), state.features["heldout_rollouts"]
    instructions = {}
    for f in state.features["train_demos"] + demos:
        instructions.setdefault(f.task_id, f.instruction)
    result: dict[str, Any] = {"label": label}
    pred_demo = {f.episode_id: predict(f) for f in demos}

    def demo_error(f) -> float:
        s = f.scored_steps
        return float(np.mean((pred_demo[f.episode_id][s] - scene_progress(f)[s]) ** 2))

    result["demo_mse"] = macro_summary(by_task(demos, demo_error))
    scores = score_rollouts(model, rollouts)
    result.update({k: scores[k] for k in ("rollout_mse", "rollout_rho", "concordance")})

    def hold_shift(f) -> float:
        held, inside, _ = held_still(f)
        p = predict(held)
        return float(np.max(np.abs(p[inside] - p[inside[0]])))

    shifts = by_task(demos, hold_shift)
    every = np.concatenate(list(shifts.values()))
    result["hold_shift"] = {
        **macro_summary(shifts),
        "max": float(every.max()),
        "share_ok": float(np.mean(every < HOLD_TARGET)),
    }
    for speed in (0.5, 2.0):

        def speed_error(f, speed=speed) -> float:
            played, scene = replayed(f, speed)
            s = played.scored_steps
            return float(np.mean((predict(played)[s] - scene[s]) ** 2))

        result[f"speed_{speed:g}x_mse"] = macro_summary(by_task(demos, speed_error))
    tasks_sorted = sorted(instructions)

    def wrong_drop(f) -> float:
        other = tasks_sorted[(tasks_sorted.index(f.task_id) + 1) % len(tasks_sorted)]
        wrong = dataclasses.replace(f, task_id=other, instruction=instructions[other])
        s = f.scored_steps
        return float(np.mean(pred_demo[f.episode_id][s]) - np.mean(predict(wrong)[s]))

    if len(tasks_sorted) > 1:
        result["wrong_task_drop"] = macro_summary(by_task(demos, wrong_drop))
    result["motion"] = {}
    for control, episodes in controls.items():
        finals_c = by_task(episodes, lambda f: float(predict(f)[f.scored_steps[-1]]))
        peaks = by_task(episodes, lambda f: float(np.max(predict(f)[f.scored_steps])))
        truth = by_task(episodes, lambda f: float(f.physics_progress[f.scored_steps[-1]]))
        result["motion"][control] = {
            "final": macro_summary(finals_c),
            "peak_max": float(max(v.max() for v in peaks.values())),
            "physics_final": macro_summary(truth),
        }
    return result


def _evaluation_stamp(checkpoint: Path, state, controls: dict[str, list]) -> dict[str, Any]:
    """What a backend's evaluation depends on: its weights (the checkpoint's config.json records their hash) and
    the episodes."""
    from benchmarks.pipeline import _read_json

    episodes = [f.episode_id for s in ("heldout_demos", "heldout_rollouts") for f in state.features[s]]
    episodes += [f"{c}|{f.episode_id}" for c, fs in controls.items() for f in fs]
    return {"weights": _read_json(checkpoint / "config.json"), "episodes": fingerprint_ids(episodes)}


def probe_rows(state) -> dict[str, Any]:
    """The privileged probe per view: cross-fitted on the held-out rollouts' physics progress."""
    from benchmarks.probe import VIEWS, cross_fitted

    rollouts = state.features["heldout_rollouts"]
    out = {}
    for view in VIEWS:
        scores = score_rollouts(_Fixed(rollouts, cross_fitted(rollouts, view)), rollouts)
        out[view] = {k: scores[k] for k in ("rollout_mse", "rollout_rho", "concordance")}
    return out


class _Fixed:
    """Predictions made elsewhere (at each episode's scored steps), served like a reward model's."""

    def __init__(self, episodes: Sequence, at_scored_steps: Sequence[np.ndarray]) -> None:
        self.curves = {}
        for f, values in zip(episodes, at_scored_steps):
            curve = np.zeros(f.length)
            curve[f.scored_steps] = values
            self.curves[f.episode_id] = curve

    def predict_episode(self, feats):
        return SimpleNamespace(progress=self.curves[feats.episode_id])


# --- report ----------------------------------------------------------------------------------------


def _fmt(x: float) -> str:
    return "–" if x is None or not np.isfinite(x) else (f"{x:.4f}" if abs(x) >= 1e-3 or x == 0 else f"{x:.2e}")


def summary_table(results: dict[str, Any]) -> list[str]:
    """The headline table: one row per backend."""
    lines = [
        "| backend | demo MSE [95 % CI] | rollout MSE [95 % CI] | rollout rho | concordance | "
        "3 s hold: mean shift (max) | 0.5x MSE | 2x MSE | wrong-task drop | idle final | random final | play final |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results["backends"].values():
        motion = r["motion"]
        hold = r["hold_shift"]
        drop = r.get("wrong_task_drop", {"mean": float("nan")})
        lines.append(
            f"| {r['label']} | {mean_ci(r['demo_mse'], _fmt)} | {mean_ci(r['rollout_mse'], _fmt)} | "
            f"{r['rollout_rho']['mean']:.2f} | {r['concordance']['mean']:.2f} | "
            f"{_fmt(hold['mean'])} ({_fmt(hold['max'])}) | {_fmt(r['speed_0.5x_mse']['mean'])} | "
            f"{_fmt(r['speed_2x_mse']['mean'])} | {_fmt(drop['mean'])} | "
            + " | ".join(_fmt(motion[c]["final"]["mean"]) for c in ("idle", "random", "play"))
            + " |"
        )
    return lines


def motion_table(results: dict[str, Any]) -> list[str]:
    """Per task: final learned progress after 30 s of random actions and of arm play, and the physics progress."""
    backends = results["backends"]
    first = next(iter(backends.values()))
    tasks = list(first["motion"]["random"]["final"]["per_task"])
    short = [t.split("/")[-1].removesuffix("-v0") for t in tasks]
    lines = ["| backend | control | " + " | ".join(short) + " | peak (any episode) |", "|---" * (len(tasks) + 3) + "|"]
    for control in ("random", "play"):
        truth = first["motion"][control]["physics_final"]["per_task"]
        lines.append(f"| physics progress | {control} | " + " | ".join(_fmt(truth[t]) for t in tasks) + " | – |")
        for r in backends.values():
            m = r["motion"][control]
            cells = " | ".join(_fmt(m["final"]["per_task"][t]) for t in tasks)
            lines.append(f"| {r['label']} | {control} | {cells} | {_fmt(m['peak_max'])} |")
    return lines


def _left_out(meta: dict[str, Any]) -> str:
    failed = meta.get("failed_demos", [])
    return f" ({len(failed)} the expert failed left out: {', '.join(failed)})" if failed else ""


def _train_times(timings: dict[str, float]) -> str:
    trained = {k.removeprefix("train/"): v for k, v in timings.items() if k.startswith("train/")}
    return ", ".join(f"{k} {v / 60:.1f} min" for k, v in trained.items()) or "none (checkpoints cached)"


def write_report(results: dict[str, Any], out: Path, docs: Path | None, command: str) -> str:
    """Write the scene-or-clock results (JSON, Markdown) under ``out`` and ``docs``; returns the Markdown."""
    from benchmarks.report import _git_revision, short_revision

    stamp = f"{dt.date.today().isoformat()}, commit {short_revision(_git_revision())}"
    meta = results["meta"]
    lines = [
        "# Scene or clock: where reward-model error comes from",
        "",
        f"{stamp}. `{command}` ({meta['wall_min']:.1f} min on {meta['machine']}, reusing what earlier runs cached; "
        f"training times this run: {_train_times(meta['timings'])}). Data: benchmark config "
        f"`{meta['config']}` ({meta['tasks']} tasks; {meta['heldout_demos']} held-out demos{_left_out(meta)} and "
        f"{meta['heldout_rollouts']} held-out rollouts in all, queried at 1 Hz); motion controls: "
        f"{meta['control_episodes']} episodes per task and control, {meta['control_steps']} steps (30 s). SARM2 "
        f"variants: preset `{meta['preset']}`, {meta['steps']} steps, encoder {meta['encoder']} (frozen), one "
        "training seed each. Baselines: the benchmark run's checkpoints, unchanged.",
        "",
        "Columns: value MSE (task-macro, 95 % bootstrap interval over episodes within tasks) on held-out demos vs "
        "time-linear progress and on imperfect rollouts vs calibrated physics progress; rollout rho (Spearman of "
        "final predicted vs true progress across a task's rollouts, mean over tasks; its ceiling, the best a "
        f"prediction without ties reaches given the truth's ties, is {meta['rho_ceiling']:.2f} "
        "here); concordance (of the rollout pairs whose true final progress differs, the fraction ordered right; 0.5 "
        "chance, 1 perfect); how far the prediction moves while a "
        f"demo is held still for 3 s (target < {HOLD_TARGET}); value MSE of demos replayed at 0.5x / 2x against the "
        "scene's progress; mean progress drop when told another task's instruction (> 0 good); final learned progress "
        f"after 30 s of idle / random actions / arm play (target <= {MOTION_TARGET}; the physics progress of those "
        "episodes is in the motion table).",
        "",
        *summary_table(results),
        "",
        "## Motion alone, per task (final progress after 30 s)",
        "",
        *motion_table(results),
        "",
        "## Privileged linear probe (not a baseline)",
        "",
        "Ridge regression from one frame's frozen embeddings to progress, trained on the *physics progress of other "
        "held-out rollouts* (2-fold within each task; ridge strength chosen on held-out episodes), which no reward "
        "model sees: how much failure signal a linear read-out of single frames finds in these features.",
        "",
        "| features | rollout MSE [95 % CI] | rollout rho | concordance |",
        "|---|---|---|---|",
        *(
            f"| probe: {view} | {mean_ci(r['rollout_mse'], _fmt)} | {r['rollout_rho']['mean']:.2f} | "
            f"{r['concordance']['mean']:.2f} |"
            for view, r in results["probe"].items()
        ),
        "",
    ]
    text = "\n".join(lines)
    write_summary(text, out, docs)
    return text


# --- main ------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``python -m benchmarks.scene_reading``."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    add_data_arguments(p, what="data")
    variants = ", ".join(v.name for v in VARIANTS)
    p.add_argument("--variants", default="all", help=f"comma-separated SARM2 variants, or all: {variants}")
    p.add_argument("--steps", type=int, default=None, help="training steps per variant (default: the config's)")
    p.add_argument("--baselines", default="results/full/checkpoints", help="checkpoints of a finished benchmark run")
    p.add_argument("--control-episodes", type=int, default=3, help="evaluation episodes per task and motion control")
    p.add_argument("--control-steps", type=int, default=300, help="steps per motion-control evaluation episode")
    p.add_argument("--negative-episodes", type=int, default=3, help="training negatives per task, random and play each")
    p.add_argument("--negative-steps", type=int, default=150, help="steps per training negative")
    add_output_arguments(p, out="results/scene_reading", docs="docs/results/scene_reading.md")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the scene-or-clock benchmark (controls, probes, SARM2 options); returns the exit status."""
    from benchmarks.evaluation import publish_results, run_footer, start_run
    from benchmarks.pipeline import RunState, stage_collect, stage_encode
    from benchmarks.report import failed_demos, successful_demos
    from sarm2_env.errors import UnknownNameError

    args, started = start_run(build_parser(), argv)
    config = config_from_arguments(args)
    known = {v.name: v for v in VARIANTS}
    names = list(known) if args.variants == "all" else [v.strip() for v in args.variants.split(",") if v.strip()]
    for name in names:
        if name not in known:
            raise UnknownNameError("SARM2 variant", name, known)
    out = Path(args.out)
    state = RunState(config=config, run_dir=out, task_ids=config.task_ids(), force=set(), progress=not args.no_progress)
    stage_collect(state)
    stage_encode(state)
    controls, negatives = control_sets(state, args)
    models = {name: train_variant(state, known[name], negatives, out, args.steps) for name in names}
    models.update(load_baselines(Path(args.baselines), config.device))
    checkpoints = {name: out / "checkpoints" / name for name in names}
    checkpoints.update({name: Path(args.baselines) / name for name in models if name not in known})
    results: dict[str, Any] = {"backends": {}}
    for name, model in models.items():
        label = f"{name}: {known[name].note}" if name in known else model.label
        results["backends"][name] = cached_evaluation(
            out / "evaluations" / f"{name}.json",
            _evaluation_stamp(checkpoints[name], state, controls),
            lambda model=model, label=label: evaluate(model, state, controls, label),
        )
    results["probe"] = probe_rows(state)
    d = config.data
    results["meta"] = {
        "config": config.name,
        "tasks": len(state.task_ids),
        "rho_ceiling": nanmean(rho_ceiling(state.features["heldout_rollouts"]).values()),
        "heldout_demos": len(successful_demos(state)),
        "failed_demos": failed_demos(state),
        "heldout_rollouts": len(state.features["heldout_rollouts"]),
        "control_episodes": args.control_episodes,
        "control_steps": args.control_steps,
        "negative_episodes": args.negative_episodes,
        "negative_steps": args.negative_steps,
        "preset": config.train.preset,
        "steps": args.steps or config.train.steps,
        "encoder": config.encoder,
        "image_size": d.image_size,
        "timings": state.timings,
        **run_footer(started),
    }
    return publish_results(results, args, argv, "scene_reading", write_report)


if __name__ == "__main__":
    raise SystemExit(main())
