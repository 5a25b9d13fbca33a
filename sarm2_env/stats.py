"""Numpy-only statistics shared by every layer: correlations and ranks, success-rate and bootstrap intervals, AUROC,
the paired comparison of two policies' successes on the same episodes, intervals over retrained policies.

Pure functions of arrays; none reads files or models. Rank statistics are implemented here (average ranks
for ties, Kendall's tau-b) so results do not depend on which scipy version is installed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from sarm2_env.errors import InputShapeError

NAN = float("nan")


def paired_arrays(pred: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``pred`` and ``target`` as flat float64 arrays of the same length (an error names both shapes otherwise)."""
    pred = np.asarray(pred, dtype=np.float64).reshape(-1)
    target = np.asarray(target, dtype=np.float64).reshape(-1)
    if pred.shape != target.shape:
        raise InputShapeError(f"`pred` and `target` must have the same length; got {pred.shape} and {target.shape}")
    return pred, target


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
    pred, target = paired_arrays(pred, target)
    if len(pred) < 2 or pred.std() == 0 or target.std() == 0:
        return NAN
    return float(np.corrcoef(pred, target)[0, 1])


def spearman(pred: np.ndarray, target: np.ndarray) -> float:
    """Spearman rank correlation (Pearson of average ranks)."""
    pred, target = paired_arrays(pred, target)
    return pearson(rankdata(pred), rankdata(target))


def spearman_ceiling(target: np.ndarray) -> float:
    """The highest Spearman rho a prediction without ties can reach against ``target``.

    When the target has ties (every successful rollout's true final progress is 1.0), a continuous prediction
    orders the tied items somehow and loses rank correlation that no model can win back: with 19 successes and
    one failure among 20 rollouts the best such rho is 0.38. Every order consistent with ``target`` reaches the
    same value (1.0 without ties; NaN for fewer than 2 items or a constant target).
    """
    target = np.asarray(target, dtype=np.float64).reshape(-1)
    strict = np.empty(len(target), dtype=np.float64)
    strict[np.argsort(target, kind="mergesort")] = np.arange(1, len(target) + 1)
    return pearson(strict, rankdata(target))


def concordance(pred: np.ndarray, target: np.ndarray) -> float:
    """Harrell's C: of the pairs whose ``target`` differs, the fraction ``pred`` orders the same way (a tie in
    ``pred`` counts half). Pairs tied in the target are left out, so a perfect ranking scores 1 whatever the
    target's ties, and 0.5 is chance; NaN when every pair is tied in the target."""
    pred, target = paired_arrays(pred, target)
    upper = np.triu_indices(len(pred), k=1)
    dt = np.sign(target[:, None] - target[None, :])[upper]
    dp = np.sign(pred[:, None] - pred[None, :])[upper]
    ordered = dt != 0
    if not ordered.any():
        return NAN
    return float(((dp[ordered] * dt[ordered]) + 1.0).sum() / (2.0 * ordered.sum()))


def kendall_tau_b(x: np.ndarray, y: np.ndarray) -> float:
    """Kendall's tau-b (tie-corrected); NaN when either side is constant."""
    x, y = paired_arrays(x, y)
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


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95 % Wilson score interval of a success rate."""
    if n == 0:
        return NAN, NAN
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, float(centre - half)), min(1.0, float(centre + half))


def mcnemar_exact(gained: int, lost: int) -> float:
    """Two-sided exact McNemar p-value of two policies evaluated on the same episodes: ``gained`` episodes only
    the second succeeds on, ``lost`` only the first (episodes both solve or both fail carry no evidence)."""
    if gained < 0 or lost < 0:
        raise ValueError(f"`gained` and `lost` must be counts >= 0; got {gained!r}, {lost!r}")
    n = gained + lost
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, k) for k in range(min(gained, lost) + 1)) / 2.0**n
    return min(1.0, 2.0 * tail)


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
    return percentile_interval(np.array([statistic(x[row]) for row in index], dtype=float), level)


def percentile_interval(stats: np.ndarray, level: float) -> tuple[float, float]:
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
    draws = stratified_draws(groups, statistic, resamples, seed)
    return percentile_interval(np.asarray(draws, dtype=float), level) if draws else (NAN, NAN)


def stratified_draws(groups: Sequence[np.ndarray], statistic, resamples: int = 2000, seed: int = 0) -> list:
    """``statistic`` of each of ``resamples`` stratified bootstrap draws (as in :func:`stratified_bootstrap`, whose
    resampling this is), for a statistic that returns several values at once; ``[]`` for fewer than 2 items."""
    arrays = [np.asarray(g, dtype=float) for g in groups if len(g)]
    if sum(len(a) for a in arrays) < 2:
        return []
    if all(len(a) < 2 for a in arrays):
        arrays = [np.concatenate(arrays)]
    rng = np.random.default_rng(seed)
    return [statistic([a[rng.integers(0, len(a), size=len(a))] for a in arrays]) for _ in range(resamples)]


def seed_bootstrap_interval(
    members: Sequence[Sequence[float]] | np.ndarray,
    baseline: Sequence[Sequence[float]] | np.ndarray | None = None,
    level: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile interval of the mean over policies retrained with different seeds (``members``: one row per
    policy, one column per evaluation episode, the same episodes in every row), or of its difference from
    ``baseline``'s mean (rows: its own policies, the same columns).

    Both the training and the evaluation count: each draw resamples the rows (with replacement, separately for
    each side) and the columns (the same columns for both sides, which keeps the comparison paired on the
    episodes). With one row per side only the episodes vary. Returns ``(nan, nan)`` for fewer than 2 columns.
    """
    a = np.asarray(members, dtype=float)
    b = None if baseline is None else np.asarray(baseline, dtype=float)
    if a.ndim != 2 or (b is not None and (b.ndim != 2 or b.shape[1] != a.shape[1])):
        got = a.shape if b is None else (a.shape, b.shape)
        raise InputShapeError(f"`members`/`baseline`: expected (policies, episodes) with the same episodes; got {got}")
    if a.shape[1] < 2:
        return NAN, NAN
    rng = np.random.default_rng(seed)
    stats = np.empty(resamples)
    for i in range(resamples):
        cols = rng.integers(0, a.shape[1], size=a.shape[1])
        value = a[rng.integers(0, len(a), size=len(a))][:, cols].mean()
        if b is not None:
            value -= b[rng.integers(0, len(b), size=len(b))][:, cols].mean()
        stats[i] = value
    return percentile_interval(stats, level)


def nanmean(values) -> float:
    """Mean of ``values`` with None and NaN entries skipped; NaN when nothing is left (e.g. a rank correlation over
    one rollout per task)."""
    kept = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    return float(np.mean(kept)) if kept else NAN


def nanmin(values) -> float:
    """Minimum of ``values`` with None and NaN entries skipped; NaN when nothing is left."""
    kept = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    return float(min(kept)) if kept else NAN


def macro_mean(groups: Sequence[np.ndarray]) -> float:
    """Mean over groups of each group's mean (a task-macro average of per-episode values)."""
    return float(np.mean([np.mean(g) for g in groups]))


def paired_macro_ratio(groups: Sequence[np.ndarray]) -> tuple[float, tuple[float, float]]:
    """Task-macro mean of column 0 over that of column 1, and its 95 % interval from :func:`stratified_bootstrap`.

    ``groups`` holds one ``(episodes, 2)`` array per task, the two columns one model (or condition) each on the same
    episodes, so every resample draws the same episodes for both. NaN where column 1's macro mean is not > 0.
    """
    arrays = [np.asarray(g, dtype=float) for g in groups]

    def ratio(resampled: Sequence[np.ndarray]) -> float:
        base = macro_mean([a[:, 1] for a in resampled])
        return macro_mean([a[:, 0] for a in resampled]) / base if base > 0 else NAN

    return ratio(arrays), stratified_bootstrap(arrays, ratio)
