"""Turn predictions into metrics, tables, ``results.json`` and plots (benchmark stages 5 and 6)."""

from __future__ import annotations

import csv
import io
import logging
import math
import platform
import subprocess
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import metrics as M
from benchmarks.pipeline import EVAL_SETS, MOTION, POSES, ROBUSTNESS, RunState
from benchmarks.robustness import robustness_lines, robustness_table
from sarm2_env import stats as S
from sarm2_env.atomic import write_json_atomic
from tasks.motion_controls import CONTROLS

log = logging.getLogger("benchmarks")
NAN = M.NAN

SET_TITLES = {
    "heldout_demos": "held-out demos vs time-linear progress (the paper's protocol)",
    "heldout_rollouts": "held-out imperfect rollouts vs calibrated physics progress",
}


def ground_truth(split: str, feats) -> np.ndarray:
    """The target of an evaluation set at its scored steps: time-linear ``t / (T-1)`` on demos, physics progress
    on rollouts (calibrated to demo-time units where the episode has it, :mod:`tasks.calibration`)."""
    steps = feats.scored_steps
    if split == "heldout_demos":
        n = feats.length
        return steps / (n - 1) if n > 1 else np.ones(len(steps))
    return np.asarray(feats.physics_progress, dtype=np.float64)[steps]


def scored(feats, per_step: np.ndarray) -> np.ndarray:
    """A per-step prediction at the steps the evaluation scores (every step, or the episode's query steps)."""
    return np.asarray(per_step)[feats.scored_steps]


def scored_episodes(state: RunState) -> dict[str, Any]:
    """The episodes the evaluation tables score, by ``"<set>|<episode_id>"``: every held-out rollout and every
    held-out demo that succeeded. A demo the expert failed has no time-linear ground truth (the label runs to 1.0,
    the task did not), so it is left out of the demo tables and counted (:func:`failed_demos`)."""
    return {
        f"{s}|{f.episode_id}": f
        for s in EVAL_SETS
        for f in state.features.get(s, [])
        if s != "heldout_demos" or f.success
    }


def successful_demos(state: RunState) -> list:
    """The held-out demos the expert completed: the ones scored against time-linear progress."""
    return [f for f in state.features.get("heldout_demos", []) if f.success]


def failed_demos(state: RunState) -> list[str]:
    """Ids of the held-out demos the expert failed (left out of the demo tables)."""
    return [f.episode_id for f in state.features.get("heldout_demos", []) if not f.success]


def episode_rows(state: RunState, predictions: dict) -> list[dict[str, Any]]:
    """One row per (backend, evaluation set, scored episode: :func:`scored_episodes`) with the per-episode metrics."""
    feats_by_key = scored_episodes(state)
    rows = []
    for backend, results in predictions.items():
        for key, arrays in results.items():
            if key not in feats_by_key:
                continue  # controls
            split = key.split("|")[0]
            feats = feats_by_key[key]
            pred, gt = scored(feats, arrays["progress"]).astype(np.float64), ground_truth(split, feats)
            row = {
                "backend": backend,
                "set": split,
                "task": feats.task_id,
                "episode_id": feats.episode_id,
                "skill": feats.skill,
                "success": feats.success,
                "length": feats.length,
                "value_mse": float(M.squared_errors(pred, gt).mean()),
                "value_mse_minmax": float(M.squared_errors(pred, gt, rescale=True).mean()),
                "voc_progress": M.voc_progress(pred, gt) if split == "heldout_rollouts" else float("nan"),
                "voc_time": M.voc_time(pred) if feats.success else float("nan"),
                "pearson": S.pearson(pred, gt),
                "final_pred": float(pred[-1]),
                "final_gt": float(gt[-1]),
                "outcome": M.outcome_category(feats.success, float(feats.progress[-1])),
            }
            if "primitive" in arrays:
                row["primitive_accuracy"] = M.primitive_accuracy(
                    scored(feats, feats.primitive), scored(feats, arrays["primitive"])
                )
            rows.append(row)
    return rows


def aggregate(state: RunState, predictions: dict, rows: list[dict]) -> dict[str, Any]:
    """Per (backend, set, task) and overall metrics over :func:`scored_episodes`, controls, confusion matrices, MoE
    expert load."""
    feats_by_key = scored_episodes(state)
    table: dict[str, dict[str, dict[str, dict[str, float]]]] = {}
    for backend, results in predictions.items():
        table[backend] = {}
        for split in EVAL_SETS:
            per_task: dict[str, dict[str, float]] = {}
            all_pred, all_gt = [], []
            for task in state.task_ids:
                keys = [
                    k for k in results if k in feats_by_key and k.startswith(split) and feats_by_key[k].task_id == task
                ]
                if not keys:
                    continue
                preds = [scored(feats_by_key[k], results[k]["progress"]) for k in keys]
                gts = [ground_truth(split, feats_by_key[k]) for k in keys]
                raw, rescaled = M.value_mse(preds, gts), M.value_mse(preds, gts, rescale=True)
                task_rows = [r for r in rows if r["backend"] == backend and r["set"] == split and r["task"] == task]
                entry = {
                    "episodes": len(keys),
                    "value_mse_micro": raw["micro"],
                    "value_mse_macro": raw["macro"],
                    "value_mse_minmax_micro": rescaled["micro"],
                    "value_mse_minmax_macro": rescaled["macro"],
                    "voc_time": S.nanmean(r["voc_time"] for r in task_rows),
                    "voc_progress": S.nanmean(r["voc_progress"] for r in task_rows),
                    "pearson": S.nanmean(r["pearson"] for r in task_rows),
                    "primitive_accuracy": S.nanmean(r.get("primitive_accuracy") for r in task_rows),
                }
                entry["value_mse_macro_ci"] = list(S.bootstrap_interval([r["value_mse"] for r in task_rows]))
                if split == "heldout_rollouts":
                    entry.update(_rollout_ranking(task_rows))
                per_task[task] = entry
                all_pred += preds
                all_gt += gts
            if per_task:
                micro = M.value_mse(all_pred, all_gt)["micro"]
                overall = {
                    "value_mse_micro": micro,
                    "value_mse_macro": S.nanmean(t["value_mse_macro"] for t in per_task.values()),
                    "value_mse_minmax_macro": S.nanmean(t["value_mse_minmax_macro"] for t in per_task.values()),
                    "voc_time": S.nanmean(t["voc_time"] for t in per_task.values()),
                    "voc_progress": S.nanmean(t["voc_progress"] for t in per_task.values()),
                    "pearson": S.nanmean(t["pearson"] for t in per_task.values()),
                    "primitive_accuracy": S.nanmean(t["primitive_accuracy"] for t in per_task.values()),
                    "kendall_rank": S.nanmean(t.get("kendall_rank") for t in per_task.values()),
                }
                split_rows = [r for r in rows if r["backend"] == backend and r["set"] == split]
                groups = [np.array([r["value_mse"] for r in split_rows if r["task"] == t]) for t in per_task]
                overall["value_mse_macro_ci"] = list(S.stratified_bootstrap(groups, S.macro_mean))
                if split == "heldout_rollouts":
                    ranking = [_ranking_array([r for r in split_rows if r["task"] == t]) for t in per_task]
                    overall.update(M.ranking_statistics(ranking))
                    overall["rho_ceiling"] = S.nanmean(t.get("rho_ceiling") for t in per_task.values())
                    overall["ranking_ci"] = M.ranking_intervals(ranking)
                table[backend][split] = {"overall": overall, "tasks": per_task}
    return {
        "table": table,
        "controls": _controls(predictions),
        "confusion": _confusions(predictions, feats_by_key),
        "expert_load": _expert_loads(predictions),
        "headline": headline(table, rows),
        "robustness": robustness_table(state, predictions),
        **({"robustness_poses": poses} if (poses := robustness_table(state, predictions, POSES)) else {}),
    }


def _ranking_array(rows: list[dict]) -> np.ndarray:
    """``(n, 4)``: the rows' :data:`~benchmarks.metrics.RANKING_COLUMNS` (final predicted and true progress,
    success, outcome category)."""
    return np.array([[r["final_pred"], r["final_gt"], float(bool(r["success"])), r["outcome"]] for r in rows])


def _rollout_ranking(rows: list[dict]) -> dict[str, float]:
    """How a backend ranks rollouts by their final predicted progress (:func:`~benchmarks.metrics.ranking_statistics`
    on one set of rows), and ``rho_ceiling``: the highest rho a prediction without ties reaches given the truth's
    ties."""
    ranking = _ranking_array(rows)
    return {
        **M.ranking_statistics([ranking]),
        "rho_ceiling": S.spearman_ceiling(ranking[:, 1]) if len(rows) >= 3 else NAN,
    }


def _controls(predictions: dict) -> dict[str, dict[str, float]]:
    out = {}
    for backend, results in predictions.items():
        static = [M.static_flatness(a["progress"]) for k, a in results.items() if k.endswith("|static")]
        reverse = [M.reversed_voc_time(a["progress"]) for k, a in results.items() if k.endswith("|reversed")]
        wrong = [
            M.wrong_instruction_drop(results[k.rsplit("|", 1)[0]]["progress"], a["progress"])
            for k, a in results.items()
            if k.endswith("|wrong_instruction") and k.rsplit("|", 1)[0] in results
        ]
        motion: dict[str, list[float]] = {}
        for key, arrays in results.items():
            if key.startswith(MOTION):  # the prediction at the episode's last step (always a query step)
                motion.setdefault(key.split("|")[0].removeprefix(MOTION), []).append(float(arrays["progress"][-1]))
        if static or reverse or wrong or motion:
            out[backend] = {
                "static_flatness": S.nanmean(static),
                "reversed_voc_time": S.nanmean(reverse),
                "wrong_instruction_drop": S.nanmean(wrong),
                **{f"motion_{c}_final": S.nanmean(motion.get(c, [])) for c in CONTROLS if c in motion},
            }
    return out


def _confusions(predictions: dict, feats_by_key: dict) -> dict[str, list[list[int]]]:
    out = {}
    for backend, results in predictions.items():
        pairs = [
            (scored(feats_by_key[k], feats_by_key[k].primitive), scored(feats_by_key[k], a["primitive"]))
            for k, a in results.items()
            if k in feats_by_key and "primitive" in a
        ]
        if pairs:
            out[backend] = sum(M.confusion_matrix(t, p) for t, p in pairs).tolist()
    return out


def _expert_loads(predictions: dict) -> dict[str, Any]:
    out = {}
    for backend, results in predictions.items():
        kept = [
            a for k, a in results.items() if "expert_weights" in a and "group" in a and not k.startswith(ROBUSTNESS)
        ]
        weights, groups = [a["expert_weights"] for a in kept], [a["group"] for a in kept]
        if weights and weights[0].shape[-1] > 1:
            w, g = np.concatenate(weights), np.concatenate(groups)
            out[backend] = {"by_group": M.expert_load(w, g).tolist(), **M.expert_collapse(w)}
    return out


def headline(table: dict, rows: list[dict] | None = None) -> dict[str, dict[str, Any]]:
    """Relative macro value-MSE reduction of SARM2 vs the strongest published-method baseline, per set.

    With the per-episode ``rows``, also the ratio SARM2 / baseline and its 95 % paired bootstrap interval
    (episodes resampled within each task, the same draws for both models).
    """
    from rewards.registry import reward_models_with_role

    # The backends declare their role; references and upper bounds are never "the strongest baseline".
    published = reward_models_with_role("published_baseline")
    out = {}
    for split in EVAL_SETS:
        ours = table.get("sarm2", {}).get(split, {}).get("overall", {}).get("value_mse_macro", float("nan"))
        candidates = {b: table[b][split]["overall"]["value_mse_macro"] for b in published if split in table.get(b, {})}
        if not candidates:
            out[split] = {
                "sarm2": ours,
                "baseline": None,
                "reduction": float("nan"),
                "note": "no published-method baseline ran",
            }
            continue
        best = min(candidates, key=candidates.get)
        out[split] = {
            "sarm2": ours,
            "baseline": best,
            "baseline_mse": candidates[best],
            "reduction": M.relative_reduction(ours, candidates[best]),
        }
        if rows is not None:
            out[split].update(_paired_ratio(rows, split, "sarm2", best))
    return out


def _paired_ratio(rows: list[dict], split: str, ours: str, baseline: str) -> dict[str, Any]:
    """Macro value-MSE ratio ``ours / baseline`` on the episodes both scored, with its paired bootstrap interval."""
    mse: dict[str, dict[tuple[str, str], float]] = {ours: {}, baseline: {}}
    for r in rows:
        if r["set"] == split and r["backend"] in mse:
            mse[r["backend"]][(r["task"], r["episode_id"])] = r["value_mse"]
    shared = sorted(set(mse[ours]) & set(mse[baseline]))
    tasks = sorted({task for task, _ in shared})
    groups = [np.array([[mse[ours][k], mse[baseline][k]] for k in shared if k[0] == t]) for t in tasks]
    if not groups:
        return {"ratio": NAN, "ratio_ci": [NAN, NAN], "paired_episodes": 0}
    ratio, interval = S.paired_macro_ratio(groups)
    return {"ratio": ratio, "ratio_ci": list(interval), "paired_episodes": len(shared)}


# --- files -----------------------------------------------------------------------------------------


def _git_revision() -> str:
    root = Path(__file__).resolve().parents[1]
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
        )
        if rev.returncode == 0:
            return rev.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        pass
    return "unknown"


def short_revision(revision: str) -> str:
    """A :func:`_git_revision` for tables: 12 hex digits, ``-dirty`` kept."""
    return f"{revision[:12]}{'-dirty' if revision.endswith('-dirty') else ''}"


def _versions() -> dict[str, str]:
    import gymnasium
    import mujoco
    import torch
    import transformers

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "mujoco": mujoco.__version__,
        "gymnasium": gymnasium.__version__,
        "transformers": transformers.__version__,
        "numpy": np.__version__,
    }


def _fmt(x: Any, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    if isinstance(x, float):
        return f"{x:.{digits}f}" if abs(x) >= 1e-3 or x == 0 else f"{x:.2e}"
    return str(x)


def _short(task: str) -> str:
    return task.split("/")[-1].removesuffix("-v0")


def labels_of(state: RunState) -> dict[str, str]:
    """Each backend's table label (with its honest qualifiers: random-init, tiny, stand-in)."""
    return {name: getattr(model, "label", name) for name, model in state.models.items()}


def summary_markdown(state: RunState, agg: dict, labels: dict[str, str], minutes: float) -> str:
    """The run's Markdown summary: headline table, per-task tables, intervals and paired comparisons."""
    c = state.config
    lines: list[str] = [f"# Benchmark `{c.name}`", ""]
    encoder = f"{state.encoder.label} (`{state.encoder.spec.key}`)" if state.encoder else c.encoder
    lines += [
        f"Encoder: {encoder}; text: `{c.text_encoder}`; {len(state.task_ids)} task(s); per task: "
        f"{c.data.train_demos} training demos, {c.data.heldout_demos} held-out demos, {c.data.heldout_rollouts} "
        f"held-out rollouts (skills {list(c.data.rollout_skills)}); {c.data.image_size} px; "
        f"operator variability {c.data.variability:g}; held-out episodes rendered, queried and scored "
        + ("at every step" if c.data.heldout_render_every == 1 else f"every {c.data.heldout_render_every} steps")
        + f"; training preset `{c.train.preset}`, {c.train.steps} steps"
        + (
            f"; SARM2 and its ablations also train on {c.data.motion_negatives} random-action and "
            f"{c.data.motion_negatives} arm-play episodes per task (motion negatives, target: their physics progress)"
            if c.data.motion_negatives
            else ""
        )
        + f"; wall time {minutes:.1f} min."
        + (
            f" Held-out demos the expert failed are left out of the demo tables (no time-linear ground truth): "
            f"{len(failed)} of {len(state.features.get('heldout_demos', []))} ({', '.join(failed)})."
            if (failed := failed_demos(state))
            else ""
        ),
        "",
        "Stage wall times (this run; cached stages take seconds): "
        + ", ".join(
            f"{stage} {state.timings[stage] / 60:.1f} min"
            for stage in ("collect", "encode", "train", "predict")
            if stage in state.timings
        )
        + ".",
        "",
        "## Headline: relative macro value-MSE reduction of SARM2 vs the strongest published-method baseline",
        "",
        _row(
            ["evaluation set", "SARM2", "strongest baseline", "its MSE", "reduction", "MSE ratio [95 % paired CI]"],
            header=True,
        ),
    ]
    for split, h in agg["headline"].items():
        reduction = "–" if math.isnan(h["reduction"]) else f"{100 * h['reduction']:.1f} %"
        baseline = labels.get(h["baseline"], h["baseline"]) if h["baseline"] else h.get("note")
        ratio = f"{_fmt(h.get('ratio'), 3)} {_interval(h.get('ratio_ci'), 3)}" if "ratio" in h else "–"
        lines.append(
            _row([SET_TITLES[split], _fmt(h["sarm2"]), baseline, _fmt(h.get("baseline_mse")), reduction, ratio])
        )
    lines += [
        "",
        "References (`oracle`, `sparse`, `time_linear`) and the oracle-stage ablation read ground truth or the "
        "label definition; they are shown for scale and never count as the strongest baseline. Intervals are 95 % "
        "bootstrap intervals over episodes (resampled within each task; over tasks when each has one episode); the "
        "ratio's interval resamples the same episodes for both models.",
    ]
    for split in EVAL_SETS:
        lines += ["", f"## {SET_TITLES[split]}: value MSE (macro) per task", ""]
        backends = [b for b in agg["table"] if split in agg["table"][b]]
        if not backends:
            lines.append("No backend produced predictions for this set.")
            continue
        extra = ["voc_time"] if split == "heldout_demos" else ["voc_progress"]
        header = [
            "backend",
            *(_short(t) for t in state.task_ids),
            "overall macro",
            "95 % CI",
            "micro",
            "min-max macro",
            *extra,
            "pearson",
            "primitive acc",
        ]
        lines.append(_row(header, header=True))
        for b in backends:
            e, o = agg["table"][b][split], agg["table"][b][split]["overall"]
            cells = [_fmt(e["tasks"].get(t, {}).get("value_mse_macro")) for t in state.task_ids]
            lines.append(
                _row(
                    [
                        labels.get(b, b),
                        *cells,
                        f"**{_fmt(o['value_mse_macro'])}**",
                        _interval(o.get("value_mse_macro_ci")),
                        _fmt(o["value_mse_micro"]),
                        _fmt(o["value_mse_minmax_macro"]),
                        *(_fmt(o[k], 3) for k in extra),
                        _fmt(o["pearson"], 3),
                        _fmt(o["primitive_accuracy"], 3),
                    ]
                )
            )
        if split == "heldout_rollouts":
            lines += ranking_lines(agg["table"], backends, labels, state.task_ids)
    if agg["controls"]:
        motion = [c for c in CONTROLS if any(f"motion_{c}_final" in v for v in agg["controls"].values())]
        lines += ["", "## Controls (first held-out demo of each task; motion controls: every task)", ""]
        if motion:
            lines += [
                f"Motion controls (`tasks.motion_controls`): {', '.join(motion)} for 30 s on every task; the mean "
                "final progress a backend gives them (the oracle row: their physics progress; a reward that pays "
                "for motion alone is far above it).",
                "",
            ]
        lines.append(
            _row(
                [
                    "backend",
                    "static flatness (0 ideal)",
                    "reversed voc_time (-1 ideal)",
                    "wrong-instruction drop (> 0 good)",
                    *(f"{c}: final progress" for c in motion),
                ],
                header=True,
            )
        )
        for b, v in agg["controls"].items():
            lines.append(
                _row(
                    [
                        labels.get(b, b),
                        _fmt(v["static_flatness"], 3),
                        _fmt(v["reversed_voc_time"], 3),
                        _fmt(v["wrong_instruction_drop"], 3),
                        *(_fmt(v.get(f"motion_{c}_final", float("nan")), 3) for c in motion),
                    ]
                )
            )
    lines += robustness_lines(agg.get("robustness", {}), labels, c.data.robustness_jitter)
    lines += robustness_lines(
        agg.get("robustness_poses", {}), labels, c.data.robustness_jitter, c.data.robustness_pose_range
    )
    if agg["expert_load"]:
        lines += ["", "## MoE expert use", ""]
        lines.append(_row(["backend", "experts used (mean weight > 0.01)", "load entropy (1 = even)"], header=True))
        for b, v in agg["expert_load"].items():
            lines.append(_row([labels.get(b, b), _fmt(v["experts_used"], 0), _fmt(v["load_entropy"], 3)]))
    if state.skipped or state.failures:
        lines += ["", "## Not run", ""]
        lines += [f"- `{b}` skipped: {why}" for b, why in state.skipped.items()]
        lines += [
            f"- `{b}` FAILED in {f['stage']}: {f['error']} (traceback in results.json)"
            for b, f in state.failures.items()
        ]
    return "\n".join(lines) + "\n"


def _interval(interval: Any, digits: int = 4) -> str:
    """``[lo, hi]`` of a 95 % interval, or a dash when there is none (fewer than 2 episodes)."""
    if not interval or any(v is None or math.isnan(v) for v in interval):
        return "–"
    return f"[{_fmt(interval[0], digits)}, {_fmt(interval[1], digits)}]"


def _row(cells: list[str], header: bool = False) -> str:
    row = "| " + " | ".join(str(c) for c in cells) + " |"
    return row + "\n" + "|---" * len(cells) + "|" if header else row


#: The rollout-ranking metrics in the summary's ranking table, in column order, with their headers.
RANKING_HEADERS = {
    "rollout_rho": "rollout rho",
    "concordance": "concordance",
    "success_auroc": "success AUROC",
    "success_gap": "success gap",
    "kendall_rank": "kendall_rank",
}


def ranking_lines(table: dict, backends: list[str], labels: dict[str, str], task_ids: list[str]) -> list[str]:
    """The held-out rollouts' ranking section: each metric with its 95 % interval (rollouts resampled within
    tasks), what the metrics mean with the set's rho ceiling, and rho / concordance per task."""
    lines = ["", "## held-out imperfect rollouts: ranked by final predicted progress", ""]
    lines.append(_row(["backend", *(f"{h} [95 % CI]" for h in RANKING_HEADERS.values())], header=True))
    for b in backends:
        o = table[b]["heldout_rollouts"]["overall"]
        ci = o.get("ranking_ci", {})
        lines.append(
            _row([labels.get(b, b), *(f"{_fmt(o.get(k), 3)} {_interval(ci.get(k), 3)}" for k in RANKING_HEADERS)])
        )
    lines += ["", _ranking_note(table[backends[0]]["heldout_rollouts"], task_ids), ""]
    lines.append(_row(["rollout rho / concordance", *(_short(t) for t in task_ids)], header=True))
    for b in backends:
        tasks = table[b]["heldout_rollouts"]["tasks"]
        cells = [
            f"{_fmt(tasks.get(t, {}).get('rollout_rho'), 2)} / {_fmt(tasks.get(t, {}).get('concordance'), 2)}"
            for t in task_ids
        ]
        lines.append(_row([labels.get(b, b), *cells]))
    return lines


def _ranking_note(table: dict, task_ids: list[str]) -> str:
    """What the rollout-ranking columns mean, with the rho ceiling of this rollout set (the same for every backend:
    it depends on the truth only)."""
    per_task = ", ".join(f"{_short(t)} {_fmt(table['tasks'].get(t, {}).get('rho_ceiling'), 2)}" for t in task_ids)
    return (
        "`rollout_rho`: Spearman of final predicted vs true progress across a task's rollouts (mean over tasks). Its "
        "ceiling, the best a prediction without ties can reach given the truth's ties (every success ends at 1.0), "
        f"is {_fmt(table['overall'].get('rho_ceiling'), 2)} on this set ({per_task}). `concordance`: of the rollout "
        "pairs whose true final progress differs, the fraction a backend orders right (0.5 chance, 1 perfect whatever "
        "the ties). `success_auroc` and `success_gap` pool the tasks' rollouts; `kendall_rank`: Kendall tau-b over "
        "failure < partial < success. Intervals: 95 % bootstrap, rollouts resampled within each task."
    )


def summary_csv(agg: dict, labels: dict[str, str]) -> str:
    """The headline metrics per backend as CSV."""
    out = io.StringIO()
    writer = csv.writer(out)
    keys = [
        "value_mse_macro",
        "value_mse_micro",
        "value_mse_minmax_macro",
        "voc_time",
        "voc_progress",
        "pearson",
        "kendall_rank",
        "rollout_rho",
        "rho_ceiling",
        "concordance",
        "success_auroc",
        "success_gap",
        "primitive_accuracy",
    ]
    writer.writerow(["backend", "label", "set", "task", "episodes", *keys])
    for b, sets in agg["table"].items():
        for split, e in sets.items():
            for task, v in e["tasks"].items():
                writer.writerow([b, labels.get(b, b), split, task, v["episodes"], *[v.get(k, "") for k in keys]])
            writer.writerow([b, labels.get(b, b), split, "overall", "", *[e["overall"].get(k, "") for k in keys]])
    return out.getvalue()


def write_report(state: RunState, predictions: dict, started: float) -> dict[str, Any]:
    """Aggregate the predictions, write summary.md / .csv / .json and the plots; returns the aggregate."""
    import time

    rows = episode_rows(state, predictions)
    agg = aggregate(state, predictions, rows)
    labels = labels_of(state)
    minutes = (time.perf_counter() - started) / 60
    results = {
        "config": state.config.to_dict(),
        "git_revision": _git_revision(),
        "versions": _versions(),
        "encoder": {"label": state.encoder.label, **state.encoder.spec.to_dict()} if state.encoder else None,
        "backends": labels,
        "tasks": state.task_ids,
        "timings_s": state.timings,
        "wall_minutes": minutes,
        "failures": state.failures,
        "skipped": state.skipped,
        **agg,
        "rows": rows,
    }
    write_json_atomic(state.run_dir / "results.json", results)
    (state.run_dir / "summary.md").write_text(summary_markdown(state, agg, labels, minutes))
    (state.run_dir / "summary.csv").write_text(summary_csv(agg, labels))
    if state.config.plots:
        try:
            from benchmarks.plots import write_plots

            write_plots(state, predictions, agg, labels)
        except Exception as exc:  # plots are a convenience: never lose the numbers over them
            log.error("plots failed: %s: %s", type(exc).__name__, exc)
            results["failures"]["plots"] = {"stage": "report", "error": f"{type(exc).__name__}: {exc}"}
            write_json_atomic(state.run_dir / "results.json", results)
        try:
            from benchmarks.render_video import write_videos

            write_videos(state, predictions, per_task=2)
        except Exception as exc:  # videos are a convenience: never lose the numbers over them
            log.error("videos failed: %s: %s", type(exc).__name__, exc)
    return results
