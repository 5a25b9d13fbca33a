"""Benchmark metrics as pure functions of arrays (docs/design.md §6). Names are exact; there is no bare "VOC".

Every function takes numpy arrays and returns floats or arrays; none reads files or models. Rank
statistics are implemented here (average ranks for ties, Kendall's tau-b) so results do not depend on
which scipy version is installed; the tests check them against hand-computed values.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from sarm2_env.constants import NUM_GROUPS, NUM_PRIMITIVES

NAN = float("nan")


def _pair(pred: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred = np.asarray(pred, dtype=np.float64).reshape(-1)
    target = np.asarray(target, dtype=np.float64).reshape(-1)
    if pred.shape != target.shape:
        raise ValueError(f"`pred` and `target` must have the same length; got {pred.shape} and {target.shape}")
    return pred, target


def minmax(x: np.ndarray) -> np.ndarray:
    """Rescale to [0, 1] by the episode's own min and max (a constant series maps to 0)."""
    x = np.asarray(x, dtype=np.float64)
    span = x.max() - x.min() if x.size else 0.0
    return np.zeros_like(x) if span <= 0 else (x - x.min()) / span


def squared_errors(pred: np.ndarray, target: np.ndarray, rescale: bool = False) -> np.ndarray:
    """Per-frame squared error; ``rescale`` min-max normalises the prediction per episode first."""
    pred, target = _pair(pred, target)
    if rescale:
        pred = minmax(pred)
    return (pred - target) ** 2


def value_mse(preds: Sequence[np.ndarray], targets: Sequence[np.ndarray], rescale: bool = False) -> dict[str, float]:
    """``value_mse`` over episodes: ``micro`` (all frames pooled) and ``macro`` (mean of per-episode MSE)."""
    errors = [squared_errors(p, t, rescale) for p, t in zip(preds, targets)]
    if not errors:
        return {"micro": NAN, "macro": NAN}
    return {"micro": float(np.concatenate(errors).mean()), "macro": float(np.mean([e.mean() for e in errors]))}


def rankdata(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n with ties given their average rank."""
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x), dtype=np.float64)
    sorted_x = x[order]
    i = 0
    while i < len(x):
        j = i
        while j + 1 < len(x) and sorted_x[j + 1] == sorted_x[i]:
            j += 1
        ranks[order[i : j + 1]] = 0.5 * (i + j) + 1.0
        i = j + 1
    return ranks


def pearson(pred: np.ndarray, target: np.ndarray) -> float:
    """``pearson`` (Robometer's "VOC"): Pearson correlation; NaN when either side is constant."""
    pred, target = _pair(pred, target)
    if len(pred) < 2 or pred.std() == 0 or target.std() == 0:
        return NAN
    return float(np.corrcoef(pred, target)[0, 1])


def spearman(pred: np.ndarray, target: np.ndarray) -> float:
    """Spearman rank correlation (Pearson of average ranks)."""
    pred, target = _pair(pred, target)
    return pearson(rankdata(pred), rankdata(target))


def voc_time(pred: np.ndarray) -> float:
    """``voc_time`` (GVL): Spearman(prediction, frame index); meaningful on successful demos."""
    pred = np.asarray(pred, dtype=np.float64).reshape(-1)
    return spearman(pred, np.arange(len(pred)))


def voc_progress(pred: np.ndarray, progress: np.ndarray) -> float:
    """``voc_progress`` (TOPReward): Spearman(prediction, ground-truth progress)."""
    return spearman(pred, progress)


def kendall_tau_b(x: np.ndarray, y: np.ndarray) -> float:
    """Kendall's tau-b (tie-corrected); NaN when either side is constant."""
    x, y = _pair(x, y)
    n = len(x)
    if n < 2:
        return NAN
    dx = np.sign(x[:, None] - x[None, :])
    dy = np.sign(y[:, None] - y[None, :])
    upper = np.triu_indices(n, k=1)
    concordance = (dx * dy)[upper].sum()
    tied_x = (dx[upper] == 0).sum()
    tied_y = (dy[upper] == 0).sum()
    pairs = n * (n - 1) / 2
    denom = np.sqrt((pairs - tied_x) * (pairs - tied_y))
    return NAN if denom == 0 else float(concordance / denom)


def outcome_category(success: bool, final_progress: float, partial_threshold: float = 0.3) -> int:
    """0 failure, 1 partial (no success but ground-truth progress >= ``partial_threshold``), 2 success."""
    if success:
        return 2
    return 1 if final_progress >= partial_threshold else 0


def kendall_rank(final_preds: Sequence[float], categories: Sequence[int]) -> float:
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


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95 % Wilson score interval of a success rate."""
    if n == 0:
        return NAN, NAN
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, float(centre - half)), min(1.0, float(centre + half))


def bootstrap_interval(
    values: Sequence[float] | np.ndarray,
    statistic=np.mean,
    level: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``statistic`` over the items of ``values`` (resampled with replacement).

    ``values`` may be 1-d (one number per episode) or 2-d with episodes along axis 0 (e.g. paired columns,
    for a ``statistic`` that takes the resampled rows). Returns ``(nan, nan)`` for fewer than 2 items.
    """
    x = np.asarray(values, dtype=float)
    if len(x) < 2:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    index = rng.integers(0, len(x), size=(resamples, len(x)))
    return _percentile_interval(np.array([statistic(x[row]) for row in index], dtype=float), level)


def _percentile_interval(stats: np.ndarray, level: float) -> tuple[float, float]:
    """The central ``level`` range of bootstrap statistics (NaN draws ignored)."""
    alpha = (1.0 - level) / 2.0
    return float(np.nanquantile(stats, alpha)), float(np.nanquantile(stats, 1.0 - alpha))


def auroc(scores: Sequence[float] | np.ndarray, positive: Sequence[bool] | np.ndarray) -> float:
    """Area under the ROC curve of ``scores`` for ``positive`` (ties count half); NaN without both classes.

    Used on final predicted progress against rollout success: 1 = every success scored above every failure.
    """
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    y = np.asarray(positive, dtype=bool).reshape(-1)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return NAN
    ranks = rankdata(s)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def stratified_bootstrap(
    groups: Sequence[np.ndarray],
    statistic,
    level: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile interval of ``statistic(resampled_groups)``, resampling items with replacement within each group.

    ``groups`` holds one array per task with episodes along axis 0 (columns may pair several backends on the
    same episodes, which keeps a comparison paired). ``statistic`` receives the list of resampled arrays.
    When no group has 2 items (one episode per task), the groups themselves are resampled instead (a
    bootstrap over tasks). Returns ``(nan, nan)`` for fewer than 2 items in all.
    """
    arrays = [np.asarray(g, dtype=float) for g in groups if len(g)]
    if sum(len(a) for a in arrays) < 2:
        return NAN, NAN
    if all(len(a) < 2 for a in arrays):
        arrays = [np.concatenate(arrays)]
    rng = np.random.default_rng(seed)
    stats = np.empty(resamples)
    for i in range(resamples):
        stats[i] = statistic([a[rng.integers(0, len(a), size=len(a))] for a in arrays])
    return _percentile_interval(stats, level)


def nanmean(values) -> float:
    """Mean of ``values`` with None and NaN entries skipped; NaN when nothing is left (e.g. a rank correlation over
    one rollout per task)."""
    kept = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    return float(np.mean(kept)) if kept else NAN


def macro_mean(groups: Sequence[np.ndarray]) -> float:
    """Mean over groups of each group's mean (a task-macro average of per-episode values)."""
    return float(np.mean([np.mean(g) for g in groups]))


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


def spearman_per_task(finals: dict[str, Sequence[tuple[float, float]]]) -> dict[str, float]:
    """Per task, Spearman's rho of ``(predicted, true)`` pairs (e.g. final progress across a task's rollouts)."""
    return {t: spearman(np.array([p for p, _ in v]), np.array([y for _, y in v])) for t, v in sorted(finals.items())}
