"""RM1 -> RM2: the paper's one-time reward-model adaptation on annotated rollouts, as benchmark rows.

    python benchmarks/adaptation.py                                  # full.yaml's data, N = 0, 10, 30, 100 per task
    python benchmarks/adaptation.py --config quick --sizes 0,10      # smaller
    python benchmarks/adaptation.py --rollouts DIR --annotations FILE.jsonl  # your rollouts and annotations

SPIRAL adapts the reward model once, on rollouts of the policy it improves, annotated by a person (the annotation
page, :mod:`agents.annotate`) or, in simulation, from physics (:func:`agents.annotation.auto_annotate`). This script
measures what that buys, per backend and per number ``N`` of annotated rollouts per task:

1. **RM1**: each backend trained on the benchmark config's demonstrations (``benchmarks/run.py``'s checkpoints
   in ``--run``, trained there first when missing or stale).
2. **Adaptation rollouts**: imperfect rollouts of the held-out rollouts' kind (scripted experts at the config's
   ``rollout_skills``, its operator variability and query rate) on a seed range disjoint from every benchmark
   split (from ``seed + 30000``), or the dataset ``--rollouts`` names. Annotated from their calibrated physics
   progress, or read from ``--annotations`` (one line per rollout, the annotation page's JSONL).
3. **RM2** per ``N``: a copy of RM1 fine-tuned (:meth:`adapt`) on the first ``N`` rollouts of every task (the
   sets are nested) mixed with the training demos (time-linear targets), the same steps and learning-rate
   scale for every backend. SARM2 is compared with the baselines fine-tuned on the same annotations (the
   paper's "RM (FT)").
4. **Evaluation** on the benchmark's held-out rollouts, never used for adaptation: value MSE against calibrated
   physics progress (task-macro, 95 % bootstrap interval), rollout rho (Spearman of final predicted vs true
   progress across a task's rollouts, mean over tasks), success AUROC (final predicted progress against success,
   pooled over tasks), held-out demo MSE against time-linear progress (does adaptation forget the demos?), and
   SARM2's MSE over each baseline's on the same episodes (paired bootstrap).

Resumable: rollouts, embeddings, each RM2 checkpoint and each evaluation are cached with a stamp (RM1's weights,
the rollouts, their annotations, the settings); a rerun redoes only what changed. Writes ``<out>/results.json``,
``<out>/summary.md`` and a copy in ``--docs``, stamped with the date and commit.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
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
from rewards.data import FEATURES_VERSION
from sarm2_env.errors import ConfigError, DatasetError
from sarm2_env.stats import macro_mean, nanmean, stratified_bootstrap

log = logging.getLogger("benchmarks.adaptation")

#: Seed offset of the adaptation rollouts from the config's seed, beside ``tasks.collect.SPLITS`` (0, 10000, 20000).
ADAPTATION_SEED_OFFSET = 30_000
#: Backends adapted by default: SARM2 and the trainable baselines that predict progress from a window.
BACKENDS = ("sarm2", "rewind", "robometer_lite")
SIZES = (0, 10, 30, 100)
#: Issue-level targets, shown beside the measurements.
RHO_TARGET = 0.9
AUROC_TARGET = 0.95


# --- data ------------------------------------------------------------------------------------------


def adaptation_seeds(state, start: int | None, count: int) -> range:
    """Seeds of the adaptation rollouts (per task), refused when they overlap a seed range the benchmark uses.

    Raises:
        ConfigError: naming the overlapping split and both ranges.
    """
    from benchmarks.pipeline import _motion_seeds, _negative_seeds, _suite

    first = state.config.data.seed + ADAPTATION_SEED_OFFSET if start is None else start
    seeds = range(first, first + count)
    used = {split: _suite(state).seeds(split) for split in ("train_demos", "heldout_demos", "heldout_rollouts")}
    used["motion controls"] = _motion_seeds(state)
    used["motion negatives"] = _negative_seeds(state)
    for split, other in used.items():
        if len(other) and len(seeds) and seeds.start < other.stop and other.start < seeds.stop:
            raise ConfigError(
                f"`--seed`: adaptation rollouts {seeds.start}..{seeds.stop - 1} overlap the {split} seeds "
                f"{other.start}..{other.stop - 1}; an adaptation set must be disjoint from what the benchmark "
                f"trains and evaluates on (default start: seed + {ADAPTATION_SEED_OFFSET})"
            )
    return seeds


def collect_rollouts(state, path: Path, seeds: range) -> dict[str, int]:
    """Record the adaptation rollouts like the held-out ones (resumable, one process per core)."""
    import os

    from tasks.collect import CollectConfig, collect

    d = state.config.data
    config = CollectConfig(
        tasks=tuple(state.task_ids),
        episodes=len(seeds),
        skills=tuple(d.rollout_skills),
        seed=seeds.start,
        image_size=d.image_size,
        variability=d.variability,
        render_every=d.heldout_render_every,
    )
    workers = max(1, min(4, os.cpu_count() or 1))
    return collect(config, str(path), progress_bar=state.progress, workers=workers)


def first_seeds(entries: Sequence[dict], task_ids: Sequence[str], count: int) -> list[int]:
    """The seeds of the first ``count`` episodes of each task in a dataset's index (only those get encoded)."""
    seeds: set[int] = set()
    for task in task_ids:
        seeds.update([int(e["seed"]) for e in entries if e["task_id"] == task][:count])
    return sorted(seeds)


def nested_subsets(rollouts: Sequence, sizes: Sequence[int]) -> dict[int, list]:
    """``{N: the first N rollouts of every task, in dataset order (seed order when recorded here)}``; nested sets.

    Raises:
        DatasetError: a task has fewer rollouts than the largest ``N`` (before anything trains).
    """
    per_task: dict[str, list] = {}
    for f in rollouts:
        per_task.setdefault(f.task_id, []).append(f)
    largest = max(sizes)
    short = {t: len(v) for t, v in sorted(per_task.items()) if len(v) < largest}
    if largest and (short or not per_task):
        raise DatasetError(
            f"`--sizes`: N = {largest} annotated rollouts per task requested; available {short or 'none'}: "
            "collect more (a larger --max-rollouts, or a larger --rollouts dataset) or pass smaller --sizes"
        )
    return {n: [f for t in sorted(per_task) for f in per_task[t][:n]] for n in sizes}


def annotation_targets(
    rollouts: Sequence, annotations: Path | None, out: Path, annotator: str = "auto"
) -> dict[str, np.ndarray]:
    """Per rollout, the progress curve its annotation synthesises (:func:`agents.annotation.synthesize_progress`).

    With ``annotations`` (a JSONL file, e.g. the annotation page's), every rollout must have its line there and every
    line must match a rollout; without, each rollout is auto-annotated from its calibrated physics progress, and the
    annotations are written to ``out`` (the same JSONL format) so they can be inspected or edited. ``annotator=
    "physics"`` skips annotation and uses the calibrated physics progress itself: a perfect annotator, an upper bound
    that no person or segment label reaches (reported as such).

    Raises:
        DatasetError: annotations of another dataset (episode ids that match no rollout), rollouts without an
            annotation, or an annotation whose length differs from its rollout's.
    """
    from agents.annotation import AnnotationStore, synthesize_progress
    from agents.auto_annotation import auto_annotate
    from sarm2_env.atomic import atomic_write

    by_id = {f.episode_id: f for f in rollouts}
    if annotator == "physics":
        return {i: np.clip(np.asarray(f.physics_progress, dtype=np.float32), 0.0, 1.0) for i, f in by_id.items()}
    if annotations is not None:
        given = AnnotationStore(annotations).load()
        foreign = sorted(set(given) - set(by_id))
        missing = sorted(set(by_id) - set(given))
        if foreign or missing:
            raise DatasetError(
                f"`--annotations` {annotations}: expected one annotation per adaptation rollout; "
                f"{len(foreign)} annotate episodes not in the rollouts (e.g. {foreign[:2]}: another dataset?), "
                f"{len(missing)} rollouts have none (e.g. {missing[:2]})"
            )
        anns = {i: given[i] for i in by_id}
    else:
        anns = {
            i: auto_annotate(SimpleNamespace(progress=np.clip(f.physics_progress, 0.0, 1.0), episode_id=i))
            for i, f in by_id.items()
        }
        text = "".join(a.to_json() + "\n" for a in anns.values())
        out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(out, lambda fh: fh.write(text.encode("utf-8")))
    for i, ann in anns.items():
        if ann.length != by_id[i].length:
            raise DatasetError(
                f"annotation of {i}: covers {ann.length} steps; the rollout has {by_id[i].length} (another dataset?)"
            )
    return {i: synthesize_progress(a) for i, a in anns.items()}


def annotation_error(rollouts: Sequence, curves: dict[str, np.ndarray]) -> dict[str, Any] | None:
    """Value MSE of the annotated curves against the calibrated physics progress (task-macro, with interval): the
    floor a model trained to reproduce the annotations is held to. None without rollouts."""
    if not rollouts:
        return None
    return macro_summary(
        by_task(rollouts, lambda f: float(np.mean((curves[f.episode_id] - np.clip(f.physics_progress, 0, 1)) ** 2)))
    )


# --- models ----------------------------------------------------------------------------------------


def _curvesfingerprint_ids(curves: dict[str, np.ndarray]) -> str:
    digest = hashlib.sha256()
    for key in sorted(curves):
        digest.update(key.encode())
        digest.update(np.round(np.asarray(curves[key], dtype=np.float64), 6).tobytes())
    return digest.hexdigest()[:12]


def adapted_model(
    state,
    name: str,
    rm1: Path,
    n: int,
    subset: Sequence,
    curves: dict[str, np.ndarray],
    out: Path,
    steps: int,
    lr_scale: float,
) -> tuple[Any, Path, float | None]:
    """RM2 of backend ``name``: RM1 (loaded from ``rm1``) adapted on ``subset`` (``n`` rollouts per task) plus the
    training demos, or its cached checkpoint when the stamp matches. Returns ``(model, checkpoint, seconds spent
    adapting or None)``."""
    from benchmarks.pipeline import _read_json, load_checkpoint
    from sarm2_env.atomic import write_json_atomic

    ckpt = out / "checkpoints" / f"{name}-N{n}"
    stamp_file = ckpt.with_name(ckpt.name + ".stamp.json")
    demos = [f for f in state.features["train_demos"] if f.success]
    stamp = {
        "rm1": _read_json(rm1 / "config.json"),
        "rollouts": fingerprint_ids([f.episode_id for f in subset]),
        "targets": _curvesfingerprint_ids({f.episode_id: curves[f.episode_id] for f in subset}),
        "demos": fingerprint_ids([f.episode_id for f in demos]),
        "steps": steps,
        "lr_scale": lr_scale,
        "seed": state.config.seed,
        "features": FEATURES_VERSION,
    }
    stamp = json.loads(json.dumps(stamp, default=str))
    if _read_json(stamp_file) == stamp and (ckpt / "config.json").exists():
        log.info("adapt %s: cached", ckpt.name)
        return load_checkpoint(state, name, ckpt), ckpt, None
    model = load_checkpoint(state, name, rm1)
    episodes = [*demos, *subset]
    targets = [None] * len(demos) + [curves[f.episode_id] for f in subset]
    log.info("adapt %s: %d rollouts + %d demos, %d steps", ckpt.name, len(subset), len(demos), steps)
    started = time.perf_counter()
    model.adapt(episodes, targets, steps=steps, lr_scale=lr_scale, seed=state.config.seed, progress=state.progress)
    seconds = time.perf_counter() - started
    model.save(ckpt)
    write_json_atomic(stamp_file, stamp)
    return model, ckpt, seconds


# --- measurements ----------------------------------------------------------------------------------


def evaluate(model, state, policy_rollouts: Sequence = ()) -> dict[str, Any]:
    """The benchmark's held-out rollouts (:func:`score_rollouts`), its held-out demos (MSE against time-linear
    progress) and, when given, policy rollouts (:func:`score_rollouts`, under ``"policy"``)."""
    from benchmarks.report import ground_truth, scored, successful_demos

    def demo_error(f) -> float:
        p = scored(f, model.predict_episode(f).progress).astype(np.float64)
        return float(np.mean((p - ground_truth("heldout_demos", f)) ** 2))

    result = score_rollouts(model, state.features["heldout_rollouts"])
    result["demo_mse"] = macro_summary(by_task(successful_demos(state), demo_error))
    result["policy"] = score_rollouts(model, policy_rollouts) if policy_rollouts else None
    return result


def load_policy_rollouts(folder: Path, state) -> list:
    """SPIRAL ``pi_0`` rollouts (:class:`agents.state_spiral.StateRollout` files, ``*.npz``) of the run's tasks as
    evaluation episodes at their query rate, with the benchmark's instruction of each task.

    Raises:
        DatasetError: no rollouts there, a task the benchmark has no demos of, or embeddings of another size than
            the run's encoder gives.
    """
    from agents.state_spiral import StateRollout

    instructions = {f.task_id: f.instruction for f in state.features["train_demos"]}
    paths = sorted(folder.glob("*.npz"))
    if not paths:
        raise DatasetError(f"`--policy-rollouts` {folder}: no rollout files (*.npz) there")
    episodes = []
    for path in paths:
        rollout = StateRollout.from_file(path)
        if rollout.task_id not in instructions:
            raise DatasetError(
                f"`--policy-rollouts` {path}: task {rollout.task_id} is not among the run's tasks "
                f"{sorted(instructions)}"
            )
        dim = rollout.embeddings.shape[-1]
        if dim != state.encoder.spec.dim:
            raise DatasetError(
                f"`--policy-rollouts` {path}: {dim}-d frame embeddings; the run's encoder {state.encoder.spec.key} "
                f"gives {state.encoder.spec.dim}-d: collect the rollouts with the same encoder"
            )
        episodes.append(rollout.features(instructions[rollout.task_id], at_query_rate=True))
    return episodes


def paired_ratio(state, ours: dict[str, float], baseline: dict[str, float]) -> dict[str, Any]:
    """Task-macro MSE of ``ours`` over ``baseline`` on the same held-out rollouts, with a paired 95 % interval."""
    groups: dict[str, list[list[float]]] = {}
    for f in state.features["heldout_rollouts"]:
        groups.setdefault(f.task_id, []).append([ours[f.episode_id], baseline[f.episode_id]])
    arrays = [np.asarray(v) for _, v in sorted(groups.items())]

    def ratio(resampled: Sequence[np.ndarray]) -> float:
        return macro_mean([a[:, 0] for a in resampled]) / max(macro_mean([a[:, 1] for a in resampled]), 1e-12)

    low, high = stratified_bootstrap(arrays, ratio)
    return {"ratio": ratio(arrays), "ci": [low, high]}


# --- report ----------------------------------------------------------------------------------------


def _fmt(x: float | None, digits: int = 4) -> str:
    return "–" if x is None or not np.isfinite(x) else f"{x:.{digits}f}"


def summary_table(results: dict[str, Any]) -> list[str]:
    """One row per (N, backend), and SARM2's paired MSE ratio to each baseline at that N."""
    lines = [
        "| N per task | backend | rollout MSE [95 % CI] | rollout rho (mean / min task) | concordance | "
        "success AUROC | demo MSE [95 % CI] | SARM2 MSE / this [95 % CI] |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for n, rows in results["sizes"].items():
        for name, r in rows.items():
            ratio = r.get("sarm2_ratio")
            ratio_text = f"{ratio['ratio']:.2f} [{ratio['ci'][0]:.2f}, {ratio['ci'][1]:.2f}]" if ratio else "–"
            rho = r["rollout_rho"]
            lines.append(
                f"| {n} | {results['labels'][name]} | {mean_ci(r['rollout_mse'], _fmt)} | "
                f"{_fmt(rho['mean'], 2)} / {_fmt(rho['min'], 2)} | {_concordance(r)} | {_fmt(r['success_auroc'], 3)} | "
                f"{mean_ci(r['demo_mse'], _fmt)} | {ratio_text} |"
            )
    return lines


def _concordance(scores: dict[str, Any]) -> str:
    """Mean per-task concordance of a rollout evaluation ("–" for one saved before the metric existed)."""
    return _fmt(scores.get("concordance", {}).get("mean"), 2)


def policy_table(results: dict[str, Any]) -> list[str]:
    """The same models on the SPIRAL ``pi_0`` rollouts, when the run had them."""
    lines = [
        "| N per task | backend | pi_0 rollout MSE [95 % CI] | rollout rho | concordance | success AUROC |",
        "|---|---|---|---|---|---|",
    ]
    for n, rows in results["sizes"].items():
        for name, r in rows.items():
            p = r.get("policy")
            if p:
                lines.append(
                    f"| {n} | {results['labels'][name]} | {mean_ci(p['rollout_mse'], _fmt)} | "
                    f"{_fmt(p['rollout_rho']['mean'], 2)} | {_concordance(p)} | {_fmt(p['success_auroc'], 3)} |"
                )
    return lines if len(lines) > 2 else []


def per_task_table(results: dict[str, Any]) -> list[str]:
    """Rollout rho per task and backend at the largest N (and at N = 0 for reference)."""
    sizes = list(results["sizes"])
    shown = sorted({sizes[0], sizes[-1]}, key=sizes.index)
    tasks = sorted(next(iter(next(iter(results["sizes"].values())).values()))["rollout_rho"]["per_task"])
    columns = [(n, name) for n in shown for name in results["sizes"][n]]
    ceiling = results["meta"].get("rho_ceiling", {})
    lines = [
        "| task | ceiling | " + " | ".join(f"{results['labels'][name]}, N={n}" for n, name in columns) + " |",
        "|---|---|" + "---|" * len(columns),
    ]
    for task in tasks:
        cells = [_fmt(results["sizes"][n][name]["rollout_rho"]["per_task"].get(task), 2) for n, name in columns]
        lines.append(
            f"| {task.split('/')[-1].split('-')[0]} | {_fmt(ceiling.get(task), 2)} | " + " | ".join(cells) + " |"
        )
    return lines


def write_report(results: dict[str, Any], out: Path, docs: Path | None, command: str) -> str:
    """Write the adaptation results (JSON, Markdown) under ``out`` and ``docs``; returns the Markdown."""
    from benchmarks.report import _git_revision, short_revision

    stamp = f"{dt.date.today().isoformat()}, commit {short_revision(_git_revision())}"
    meta = results["meta"]
    ceiling = meta.get("rho_ceiling", {})
    times = ", ".join(f"{k} {v:.0f} s" for k, v in meta["adapt_seconds"].items()) or "none recorded"
    lines = [
        "# RM1 -> RM2: adapting reward models on annotated rollouts",
        "",
        f"{stamp}. `{command}` ({meta['wall_min']:.1f} min on {meta['machine']}, reusing what earlier runs cached; "
        f"adaptation times, this run's or the run's that made the checkpoint: {times}).",
        "",
        f"RM1: each backend trained on benchmark config `{meta['config']}`'s demonstrations ({meta['tasks']} tasks, "
        f"preset `{meta['preset']}`, encoder {meta['encoder']} frozen). Adaptation rollouts: {meta['rollouts']} "
        f"({meta['rollout_source']}), annotated {meta['annotation_source']}; RM2 = RM1 fine-tuned on the first N "
        f"rollouts of every task plus the {meta['demos']} training demos, {meta['steps']} steps at "
        f"{meta['lr_scale']}x the training learning rate, one seed. Evaluated on the benchmark's "
        f"{meta['heldout_rollouts']} held-out rollouts (never adapted on; queried at 1 Hz) and "
        f"{meta['heldout_demos']} held-out demos"
        + (
            f" (the {len(failed)} the expert failed left out: {', '.join(failed)})."
            if (failed := meta.get("failed_demos"))
            else "."
        ),
        "",
        *(
            [
                "How far the annotations themselves are from the ground truth the rows are scored against (value MSE "
                "of the annotated curves vs calibrated physics progress on the adaptation rollouts, task-macro): "
                f"{mean_ci(meta['annotation_mse'], _fmt)}; per task "
                + ", ".join(
                    f"{t.split('/')[-1].split('-')[0]} {v:.4f}" for t, v in meta["annotation_mse"]["per_task"].items()
                )
                + ". A model that learned the annotations exactly would score about this much.",
            ]
            if meta.get("annotation_mse")
            else []
        ),
        "",
        "Columns: value MSE on held-out rollouts vs calibrated physics progress (task-macro, 95 % bootstrap interval "
        "over episodes within tasks); rollout rho (Spearman of final predicted vs true progress across a task's "
        f"rollouts; mean over tasks / worst task; target >= {RHO_TARGET} after N = 100); concordance (of the rollout "
        "pairs whose true final progress differs, the fraction ordered right, mean over tasks; 0.5 chance, 1 perfect "
        "whatever the ties); success AUROC (final "
        f"predicted progress vs success, pooled; target >= {AUROC_TARGET}); held-out demo MSE vs time-linear "
        "progress; SARM2's rollout MSE over this row's at the same N, paired on the same episodes (< 1: SARM2 better).",
        "",
        *summary_table(results),
        "",
        *(
            [
                "## SPIRAL's own rollouts",
                "",
                f"{meta['policy_rollouts']}: rollouts of SPIRAL's `pi_0` (the state BC policy, a sim-only stand-in "
                "for a VLA), the distribution SPIRAL relabels; frames rendered every 10 steps; scored against the "
                "same calibrated physics progress.",
                "",
                *policy_table(results),
                "",
            ]
            if meta.get("policy_rollouts")
            else []
        ),
        "## Rollout rho per task",
        "",
        "Ceiling: the highest rho a prediction without ties can reach on that task's held-out rollouts (the truth's "
        "own order; most rollouts of some tasks end at exactly 1.0, and Spearman's rho of a continuous prediction "
        f"cannot rank inside that tie). Mean ceiling {nanmean(ceiling.values()):.2f}.",
        "",
        *per_task_table(results),
        "",
    ]
    text = "\n".join(lines)
    write_summary(text, out, docs)
    return text


# --- main ------------------------------------------------------------------------------------------


def parse_sizes(text: str) -> list[int]:
    """``"0,10,30"`` -> ``[0, 10, 30]``: distinct integers >= 0, ascending.

    Raises:
        ConfigError: naming ``--sizes`` and what was got.
    """
    try:
        sizes = sorted({int(s) for s in text.split(",") if s.strip()})
    except ValueError:
        raise ConfigError(f"`--sizes` must be comma-separated integers >= 0; got {text!r}") from None
    if not sizes or sizes[0] < 0:
        raise ConfigError(f"`--sizes` must be comma-separated integers >= 0; got {text!r}")
    return sizes


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``python -m benchmarks.adaptation``."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    add_data_arguments(p, what="data and RM1")
    p.add_argument("--backends", default=",".join(BACKENDS), help="comma-separated trainable backends to adapt")
    p.add_argument("--sizes", default=",".join(map(str, SIZES)), help="annotated rollouts per task (N), 0 = RM1")
    p.add_argument("--steps", type=int, default=1000, help="adaptation steps (every backend)")
    p.add_argument("--lr-scale", type=float, default=0.3, help="adaptation learning rate / training learning rate")
    p.add_argument("--run", default=None, help="benchmark run folder holding RM1 (default: <config out>/<name>)")
    p.add_argument("--rollouts", default=None, help="dataset of adaptation rollouts (default: recorded here)")
    p.add_argument(
        "--seed", type=int, default=None, help=f"first adaptation seed (default seed + {ADAPTATION_SEED_OFFSET})"
    )
    p.add_argument("--annotations", default=None, help="annotation JSONL of the rollouts (default: auto_annotate)")
    p.add_argument(
        "--annotator",
        choices=("auto", "physics"),
        default="auto",
        help="auto: auto_annotate's segment labels; physics: the physics progress itself (a perfect annotator, an "
        "upper bound)",
    )
    p.add_argument(
        "--policy-rollouts",
        default=None,
        help="folder of SPIRAL pi_0 rollouts (*.npz, e.g. <spiral run>/shared/round_01_rollouts), a second "
        "evaluation set",
    )
    add_output_arguments(p, out="results/adaptation", docs="docs/results/adaptation.md")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the RM1 -> RM2 adaptation benchmark; returns the exit status."""
    from benchmarks.evaluation import publish_results, run_footer, start_run
    from benchmarks.pipeline import RunState, _read_json, encoded_episodes, stage_collect, stage_encode, stage_train
    from benchmarks.report import failed_demos, successful_demos
    from rewards.registry import reward_model_class

    args, started = start_run(build_parser(), argv)
    sizes = parse_sizes(args.sizes)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    for name in backends:
        if not callable(getattr(reward_model_class(name), "adapt", None)):
            raise ConfigError(f"`--backends`: {name!r} cannot be adapted (no adapt()); adaptable: {list(BACKENDS)}")
    config = config_from_arguments(args, backends=backends)
    out = Path(args.out)
    run_dir = Path(args.run) if args.run else Path(config.out) / config.name
    state = RunState(
        config=config, run_dir=run_dir, task_ids=config.task_ids(), force=set(), progress=not args.no_progress
    )
    # Everything that can be refused is checked before collecting or training.
    if args.rollouts is None:
        seeds = adaptation_seeds(state, args.seed, max(sizes))
        rollout_path = state.data_root() / "adaptation_rollouts"
    else:
        rollout_path, seeds = Path(args.rollouts), None
        if not (rollout_path / "dataset.json").is_file():
            raise DatasetError(f"`--rollouts` {rollout_path}: no dataset there (expected {rollout_path}/dataset.json)")
    if args.annotator == "physics" and args.annotations:
        raise ConfigError("`--annotator physics` uses no annotation file; drop `--annotations` or the annotator")
    if args.annotations is not None and not Path(args.annotations).is_file():
        raise DatasetError(f"`--annotations` {args.annotations}: no such file (an annotation JSONL)")
    stage_collect(state)
    stage_encode(state)
    if seeds is not None and max(sizes):
        log.info("adaptation rollouts -> %s: %s", rollout_path, collect_rollouts(state, rollout_path, seeds))
    if max(sizes):
        if seeds is None:
            from sarm2_env.dataset import EpisodeDataset

            seeds = first_seeds(EpisodeDataset(rollout_path).entries, state.task_ids, max(sizes))
        rollouts = encoded_episodes(state, rollout_path, seeds)
    else:
        rollouts = []
    subsets = nested_subsets(rollouts, sizes)
    curves = annotation_targets(
        subsets[max(sizes)],
        Path(args.annotations) if args.annotations else None,
        out / "annotations.jsonl",
        args.annotator,
    )
    floor = annotation_error(subsets[max(sizes)], curves)
    policy_rollouts = load_policy_rollouts(Path(args.policy_rollouts), state) if args.policy_rollouts else []
    stage_train(state)  # RM1: the benchmark run's checkpoints, trained there when missing or stale
    for name in backends:
        if name not in state.models:
            raise ConfigError(
                f"backend {name}: RM1 is unavailable ({state.failures.get(name) or state.skipped.get(name)})"
            )
    results: dict[str, Any] = {"sizes": {}, "labels": {}}
    # adaptation times of checkpoints an earlier run made (a rerun that reuses them still reports what they cost)
    earlier = _read_json(out / "results.json")
    wanted = {f"{name} N={n}" for name in backends for n in sizes if n}
    adapt_seconds = {k: v for k, v in (earlier or {}).get("meta", {}).get("adapt_seconds", {}).items() if k in wanted}
    held_out = [f.episode_id for s in ("heldout_rollouts", "heldout_demos") for f in state.features[s]]
    held_out += [f"policy|{f.episode_id}" for f in policy_rollouts]
    for n in sizes:
        rows: dict[str, Any] = {}
        for name in backends:
            rm1 = run_dir / "checkpoints" / name
            if n == 0:
                model, ckpt = state.models[name], rm1
            else:
                model, ckpt, seconds = adapted_model(
                    state, name, rm1, n, subsets[n], curves, out, args.steps, args.lr_scale
                )
                if seconds is not None:
                    adapt_seconds[f"{name} N={n}"] = seconds
            results["labels"][name] = model.label
            stamp = {"weights": _read_json(ckpt / "config.json"), "episodes": fingerprint_ids(held_out)}
            rows[name] = cached_evaluation(
                out / "evaluations" / f"{name}-N{n}.json",
                stamp,
                lambda model=model: evaluate(model, state, policy_rollouts),
            )
        if "sarm2" in rows:
            for name, row in rows.items():
                if name != "sarm2":
                    row["sarm2_ratio"] = paired_ratio(state, rows["sarm2"]["episode_mse"], row["episode_mse"])
        results["sizes"][n] = rows
    d = config.data
    results["meta"] = {
        "config": config.name,
        "tasks": len(state.task_ids),
        "preset": config.train.preset,
        "encoder": config.encoder,
        "rollouts": f"{len(rollouts)} ({len(rollouts) // max(len(state.task_ids), 1)} per task)",
        "rollout_source": (
            f"scripted experts at skills {list(d.rollout_skills)}, variability {d.variability:g}, frames every "
            f"{d.heldout_render_every} steps, seeds {seeds.start}+"
            if isinstance(seeds, range)
            else str(rollout_path)
        ),
        "annotation_source": (
            f"from {args.annotations}"
            if args.annotations
            else "with the calibrated physics progress itself (a perfect annotator: an upper bound)"
            if args.annotator == "physics"
            else "by auto_annotate from physics"
        ),
        "annotation_mse": floor,
        "rho_ceiling": rho_ceiling(state.features["heldout_rollouts"]),
        "demos": len([f for f in state.features["train_demos"] if f.success]),
        "steps": args.steps,
        "lr_scale": args.lr_scale,
        "heldout_rollouts": len(state.features["heldout_rollouts"]),
        "heldout_demos": len(successful_demos(state)),
        "failed_demos": failed_demos(state),
        "policy_rollouts": f"{len(policy_rollouts)} from {args.policy_rollouts}" if policy_rollouts else None,
        "adapt_seconds": adapt_seconds,
        **run_footer(started),
    }
    return publish_results(results, args, argv, "adaptation", write_report)


if __name__ == "__main__":
    raise SystemExit(main())
