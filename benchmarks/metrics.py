"""Benchmark metrics as pure functions of arrays (docs/design.md §6). Names are exact; there is no bare "VOC".

Every function takes numpy arrays and returns floats or arrays; none reads files or models. The general
statistics they build on (ranks, correlations, intervals, AUROC) live in :mod:`sarm2_env.stats`, where every
layer of the toolkit can use them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from sarm2_env.constants import NUM_GROUPS, NUM_PRIMITIVES
from sarm2_env.stats import (
    auroc,
    concordance,
    kendall_tau_b,
    macro_mean,
    nanmean,
    nanmin,
    paired_arrays,
    percentile_interval,
    spearman,
    stratified_bootstrap,
    stratified_draws,
)

NAN = float("nan")


def minmax(x: np.ndarray) -> np.ndarray:
    """Rescale to [0, 1] by the episode's own min and max (a constant series maps to 0)."""
    x = np.asarray(x, dtype=np.float64)
    span = x.max() - x.min() if x.size else 0.0
    return np.zeros_like(x) if span <= 0 else (x - x.min()) / span


def squared_errors(pred: np.ndarray, target: np.ndarray, rescale: bool = False) -> np.ndarray:
    """Per-frame squared error; ``rescale`` min-max normalises the prediction per episode first."""
    pred, target = paired_arrays(pred, target)
    if rescale:
        pred = minmax(pred)
    return (pred - target) ** 2


def value_mse(preds: Sequence[np.ndarray], targets: Sequence[np.ndarray], rescale: bool = False) -> dict[str, float]:
    """``value_mse`` over episodes: ``micro`` (all frames pooled) and ``macro`` (mean of per-episode MSE)."""
    errors = [squared_errors(p, t, rescale) for p, t in zip(preds, targets)]
    if not errors:
        return {"micro": NAN, "macro": NAN}
    return {"micro": float(np.concatenate(errors).mean()), "macro": float(np.mean([e.mean() for e in errors]))}


def voc_time(pred: np.ndarray) -> float:
    """``voc_time`` (GVL): Spearman(prediction, frame index); meaningful on successful demos."""
    pred = np.asarray(pred, dtype=np.float64).reshape(-1)
    return spearman(pred, np.arange(len(pred)))


def voc_progress(pred: np.ndarray, progress: np.ndarray) -> float:
    """``voc_progress`` (TOPReward): Spearman(prediction, ground-truth progress)."""
    return spearman(pred, progress)


def outcome_category(success: bool, final_progress: float, partial_threshold: float = 0.3) -> int:
    """0 failure, 1 partial (no success but ground-truth progress >= ``partial_threshold``), 2 success."""
    if success:
        return 2
    return 1 if final_progress >= partial_threshold else 0


def kendall_rank(final_preds: Sequence[float] | np.ndarray, categories: Sequence[int] | np.ndarray) -> float:
    """``kendall_rank`` (Robometer): Kendall tau-b between final predicted progress and the outcome order
    failure < partial < success over one task's rollouts."""
    return kendall_tau_b(np.asarray(final_preds), np.asarray(categories))


# --- controls --------------------------------------------------------------------------------------


def static_flatness(pred_static: np.ndarray) -> float:
    """Static-video control: range (max - min) of the prediction on a repeated first frame; 0 is ideal."""
    pred = np.asarray(pred_static, dtype=np.float64)
    return float(pred.max() - pred.min()) if pred.size else NAN


def reversed_voc_time(pred_reversed: np.ndarray) -> float:
    """Reversed-video control: ``voc_time`` of the prediction on the time-reversed video; -1 is ideal."""
    return voc_time(pred_reversed)


def wrong_instruction_drop(pred_right: np.ndarray, pred_wrong: np.ndarray) -> float:
    """Wrong-instruction control: mean prediction with the right instruction minus with a wrong one (> 0 good)."""
    return float(np.mean(pred_right) - np.mean(pred_wrong))


# --- primitives and experts ------------------------------------------------------------------------


def confusion_matrix(true: np.ndarray, pred: np.ndarray, n: int = NUM_PRIMITIVES) -> np.ndarray:
    """``(n, n)`` counts: rows = true class, columns = predicted. Labels < 0 are ignored."""
    true = np.asarray(true, dtype=np.int64).reshape(-1)
    pred = np.asarray(pred, dtype=np.int64).reshape(-1)
    keep = true >= 0
    matrix = np.zeros((n, n), dtype=np.int64)
    np.add.at(matrix, (true[keep], pred[keep]), 1)
    return matrix


def primitive_accuracy(true: np.ndarray, pred: np.ndarray) -> float:
    """``primitive_accuracy``: fraction of labelled frames whose predicted primitive is the label."""
    true = np.asarray(true).reshape(-1)
    pred = np.asarray(pred).reshape(-1)
    keep = true >= 0
    return float((true[keep] == pred[keep]).mean()) if keep.any() else NAN


def expert_load(weights: np.ndarray, groups: np.ndarray, n_groups: int = NUM_GROUPS) -> np.ndarray:
    """Mean MoE routing weight per (gate group, expert): ``(G, E)``; rows of unused groups are NaN."""
    weights = np.asarray(weights, dtype=np.float64)
    groups = np.asarray(groups, dtype=np.int64).reshape(-1)
    load = np.full((n_groups, weights.shape[1]), NAN)
    for g in range(n_groups):
        if (groups == g).any():
            load[g] = weights[groups == g].mean(0)
    return load


def expert_collapse(weights: np.ndarray, threshold: float = 0.01) -> dict[str, float]:
    """How concentrated routing is over all frames: experts used (mean weight > ``threshold``) and the
    normalised entropy of the mean load (1 = perfectly even, 0 = one expert)."""
    weights = np.asarray(weights, dtype=np.float64)
    if weights.size == 0 or weights.shape[1] < 2:
        return {"experts_used": NAN, "load_entropy": NAN}
    mean = weights.mean(0)
    p = mean / mean.sum() if mean.sum() > 0 else mean
    entropy = -(p[p > 0] * np.log(p[p > 0])).sum() / np.log(len(p))
    return {"experts_used": float((mean > threshold).sum()), "load_entropy": float(entropy)}


def relative_reduction(ours: float, baseline: float) -> float:
    """1 - ours / baseline (0.8 = "80 % lower")."""
    return NAN if not baseline or np.isnan(baseline) or np.isnan(ours) else float(1.0 - ours / baseline)


def by_task(episodes: Sequence, value: Callable[[Any], float]) -> dict[str, np.ndarray]:
    """``{task_id: (n,) values}``: ``value(episode)`` for each episode (anything with ``task_id``), tasks sorted."""
    out: dict[str, list[float]] = {}
    for episode in episodes:
        out.setdefault(episode.task_id, []).append(value(episode))
    return {task: np.asarray(v, dtype=np.float64) for task, v in sorted(out.items())}


def macro_summary(per_task: dict[str, np.ndarray]) -> dict[str, Any]:
    """Task-macro mean of per-episode values, its 95 % interval (episodes resampled within tasks) and per-task means:
    ``{"mean", "ci": [low, high], "per_task"}``."""
    groups = list(per_task.values())
    low, high = stratified_bootstrap(groups, macro_mean)
    return {
        "mean": macro_mean(groups),
        "ci": [low, high],
        "per_task": {t: float(v.mean()) for t, v in per_task.items()},
    }


def task_rollout_rho(pred: np.ndarray, truth: np.ndarray) -> float:
    """Spearman's rho of one task's final predicted and true progress; NaN below 3 rollouts (too few to rank)."""
    return spearman(pred, truth) if len(pred) >= 3 else NAN


#: The per-task ranking metrics of final predicted against final true progress, by result name: rho (capped below
#: 1 where the truth has ties: :func:`~sarm2_env.stats.spearman_ceiling`) and concordance (Harrell's C over the
#: pairs whose true final progress differs: 1 = every such pair ordered right whatever the ties, 0.5 = chance).
TASK_RANKING: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "rollout_rho": task_rollout_rho,
    "concordance": concordance,
}


def rollout_ranking(finals: Mapping[str, Sequence[tuple[float, float]]]) -> dict[str, dict[str, Any]]:
    """How final predicted progress ranks a set of rollouts, per task (``finals``: ``{task: [(predicted, true)]}``):
    each :data:`TASK_RANKING` metric as ``{"mean", "min", "per_task"}``."""
    out = {}
    for name, metric in TASK_RANKING.items():
        per_task = {
            t: metric(np.array([p for p, _ in v]), np.array([y for _, y in v])) for t, v in sorted(finals.items())
        }
        out[name] = {"mean": nanmean(per_task.values()), "min": nanmin(per_task.values()), "per_task": per_task}
    return out


#: Columns of the per-task arrays :func:`ranking_statistics` reads: one row per rollout.
RANKING_COLUMNS = ("final_pred", "final_gt", "success", "outcome")


def ranking_statistics(groups: Sequence[np.ndarray]) -> dict[str, float]:
    """The rollout-ranking metrics of one set: ``groups`` holds one ``(n, 4)`` array per task (columns
    :data:`RANKING_COLUMNS`). ``rollout_rho``, ``concordance`` and ``kendall_rank`` are per-task means (a task needs
    3 rollouts for rho); ``success_auroc`` and ``success_gap`` pool the tasks' rollouts."""
    groups = [np.asarray(g, dtype=np.float64).reshape(-1, len(RANKING_COLUMNS)) for g in groups]
    pooled = np.concatenate(groups) if groups else np.zeros((0, len(RANKING_COLUMNS)))
    success = pooled[:, 2] > 0.5
    gap = float(pooled[success, 0].mean() - pooled[~success, 0].mean()) if success.any() and (~success).any() else NAN
    return {
        **{name: nanmean(metric(g[:, 0], g[:, 1]) for g in groups) for name, metric in TASK_RANKING.items()},
        "kendall_rank": nanmean(kendall_rank(g[:, 0], g[:, 3]) for g in groups),
        "success_auroc": auroc(pooled[:, 0], success),
        "success_gap": gap,
    }


def ranking_intervals(groups: Sequence[np.ndarray], resamples: int = 1000) -> dict[str, list[float]]:
    """95 % bootstrap intervals of every :func:`ranking_statistics` metric, rollouts resampled within each task."""
    draws = stratified_draws(groups, ranking_statistics, resamples=resamples)
    out = {}
    for name in ranking_statistics(groups):
        values = np.array([d[name] for d in draws], dtype=np.float64)
        values = values[np.isfinite(values)]
        out[name] = list(percentile_interval(values, 0.95)) if len(values) else [NAN, NAN]
    return out
