"""The robustness sets' metrics: each backend's value MSE on held-out episodes recorded again under camera-pose and
lighting jitter (``data.robustness_episodes``; :mod:`tasks.jitter`), or with wider object poses
(``data.robustness_pose_range``), paired with the same seeds' episodes as registered.

The jitter changes the pixels only: a jittered episode has the seed, motion and ground truth of its nominal twin,
so the ratio of the two MSEs isolates what a different camera mount or light costs a reward model. A wider-pose
episode has its twin's seed and skill but its objects further from where training put them, so its motion and
ground truth differ too; the ratio (paired by seed) says what scenes outside the training range cost. Kept apart
from the headline tables, which score the nominal held-out sets.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from benchmarks import metrics as M
from benchmarks.pipeline import JITTER, RunState, held_out_split
from sarm2_env import stats as S


def robustness_table(state: RunState, predictions: dict, prefix: str = JITTER) -> dict[str, dict[str, dict[str, Any]]]:
    """``{backend: {held-out split: metrics}}`` on the seeds held in both the split and its robustness copy
    (``prefix``: :data:`JITTER` or :data:`POSES`): ``episodes``, ``nominal_mse`` and ``jittered_mse`` (macro over
    tasks of the mean per-episode value MSE at the scored steps, each episode against its own ground truth; for the
    wider-pose copy "jittered" means "with wider poses"), ``ratio`` (copy / nominal) and ``ratio_ci`` (95 % paired
    bootstrap over the episodes, resampled within each task). Empty without that robustness set."""
    from benchmarks.report import ground_truth, scored

    out: dict[str, dict[str, dict[str, Any]]] = {}
    for jittered in sorted(s for s in state.features if s.startswith(prefix)):
        split = held_out_split(jittered)
        nominal = {(f.task_id, f.seed): f for f in state.features.get(split, [])}
        paired = [
            (nominal[f.task_id, f.seed], f)
            for f in state.features[jittered]
            if f.seed is not None and (f.task_id, f.seed) in nominal
        ]
        # A demo is scored against time-linear progress, which only a successful demo follows: a held-out demo that
        # failed, as registered or in its copy (wider poses can put an object where the expert misses it), is left
        # out of the pairs, and counted.
        pairs = [(a, b) for a, b in paired if split != "heldout_demos" or (a.success and b.success)]
        for backend, results in predictions.items():
            per_task: dict[str, list[tuple[float, float]]] = {}
            for plain, shaken in pairs:
                keys = (f"{split}|{plain.episode_id}", f"{jittered}|{shaken.episode_id}")
                if not all(k in results for k in keys):
                    continue
                errors = [
                    float(M.squared_errors(scored(f, results[k]["progress"]), ground_truth(split, f)).mean())
                    for f, k in zip((plain, shaken), keys)
                ]
                per_task.setdefault(plain.task_id, []).append((errors[0], errors[1]))
            if per_task:
                entry = _paired_entry(list(per_task.values()))
                out.setdefault(backend, {})[split] = {**entry, "failed_demos_left_out": len(paired) - len(pairs)}
    return out


def _paired_entry(groups: list[list[tuple[float, float]]]) -> dict[str, Any]:
    """Macro MSEs without and with jitter, their ratio and its interval from per-task ``(nominal, jittered)``
    per-episode errors."""
    arrays = [np.asarray(g, dtype=float) for g in groups]
    ratio, interval = S.paired_macro_ratio([a[:, ::-1] for a in arrays])  # jittered over nominal
    return {
        "episodes": int(sum(len(a) for a in arrays)),
        "nominal_mse": S.macro_mean([a[:, 0] for a in arrays]),
        "jittered_mse": S.macro_mean([a[:, 1] for a in arrays]),
        "ratio": ratio,
        "ratio_ci": list(interval),
    }


def robustness_lines(
    table: dict[str, dict[str, dict[str, Any]]], labels: dict[str, str], jitter: float, pose_range: float | None = None
) -> list[str]:
    """The summary's section on one robustness set (nothing without it): camera and lighting jitter at ``jitter``,
    or, with ``pose_range``, the wider-pose set."""
    if not table:
        return []
    if pose_range is None:
        title = f"## Robustness: camera-pose and lighting jitter at {jitter:g}"
        text = (
            "The first held-out demos and rollouts of every task recorded again with the cameras' mounts moved and "
            "tilted and the light rescaled and tilted (`tasks.jitter`): the same seeds, so the same motion and ground "
            "truth under other pixels. Macro value MSE on those episodes without and with jitter; the ratio's 95 % "
            "interval resamples the same episodes for both (within each task). References that read ground truth "
            "are unaffected by construction."
        )
        columns = ("MSE without jitter", "MSE with jitter")
    else:
        title = f"## Robustness: object poses {pose_range:g}x the training range"
        text = (
            "The same seeds and skills recorded again with every task's object position and yaw ranges widened "
            f"{pose_range:g}x (the tasks' `pose_range` option): scenes outside the range the models were trained "
            "on, each episode scored against its own ground truth. Macro value MSE as registered and widened, paired "
            "by seed; the ratio's 95 % interval resamples the seeds (within each task). A held-out demo that failed, "
            "as registered or widened, is left out (count in brackets): time-linear progress is no ground truth for it."
        )
        columns = ("MSE as registered", "MSE with wider poses")
    lines = [
        "",
        title,
        "",
        text,
        "",
        f"| backend | set | episodes | {columns[0]} | {columns[1]} | ratio [95 % paired CI] |",
        "|---|---|---|---|---|---|",
    ]
    for backend, sets in table.items():
        for split, e in sets.items():
            lo, hi = e["ratio_ci"]
            interval = "–" if math.isnan(lo) else f"[{lo:.2f}, {hi:.2f}]"
            dropped = e.get("failed_demos_left_out", 0)
            episodes = f"{e['episodes']} ({dropped} failed demos left out)" if dropped else str(e["episodes"])
            lines.append(
                f"| {labels.get(backend, backend)} | {split.replace('_', ' ')} | {episodes} "
                f"| {e['nominal_mse']:.4f} | {e['jittered_mse']:.4f} | {e['ratio']:.2f} {interval} |"
            )
    return lines
