"""Numpy-only statistics against hand-computed values (and scipy where it is installed)."""

from __future__ import annotations

import numpy as np
import pytest

from sarm2_env import stats as s
from sarm2_env.errors import InputShapeError


def test_rankdata_averages_ties() -> None:
    assert s.rankdata(np.array([10, 20, 20, 5])).tolist() == [2.0, 3.5, 3.5, 1.0]


def test_kendall_tau_b_by_hand_and_against_scipy() -> None:
    # x = 1,2,3 ; y = 1,3,2 -> pairs (12 C)(13 C)(23 D): (2 - 1) / 3
    assert s.kendall_tau_b(np.array([1, 2, 3]), np.array([1, 3, 2])) == pytest.approx(1 / 3)
    scipy_stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 4, 30), rng.normal(size=30)
    assert s.kendall_tau_b(a, b) == pytest.approx(scipy_stats.kendalltau(a, b).statistic)
    assert s.spearman(a, b) == pytest.approx(scipy_stats.spearmanr(a, b).statistic)


def test_bootstrap_interval() -> None:
    values = np.arange(100, dtype=float)
    lo, hi = s.bootstrap_interval(values)
    assert lo < values.mean() < hi and hi - lo < 25  # about 2 x 1.96 x 29 / sqrt(100)
    assert s.bootstrap_interval(values) == (lo, hi)  # seeded
    assert s.bootstrap_interval(np.full(10, 3.0)) == (3.0, 3.0)
    assert all(np.isnan(s.bootstrap_interval([1.0])))
    # Paired rows: the interval of a difference of means over the same episodes.
    pairs = np.stack([values, values + 1.0], axis=1)
    assert s.bootstrap_interval(pairs, lambda rows: float(np.mean(rows[:, 1] - rows[:, 0]))) == (1.0, 1.0)


def test_auroc() -> None:
    assert s.auroc([0.9, 0.8, 0.1, 0.2], [True, True, False, False]) == 1.0
    assert s.auroc([0.1, 0.2, 0.9, 0.8], [True, True, False, False]) == 0.0
    assert s.auroc([0.5, 0.5], [True, False]) == 0.5  # a tie counts half
    assert s.auroc([0.9, 0.3, 0.5], [True, False, True]) == 1.0
    assert s.auroc([0.2, 0.7, 0.5, 0.1], [True, False, True, False]) == 0.5
    assert np.isnan(s.auroc([0.1, 0.2], [True, True]))


def test_spearman_ceiling_from_the_targets_ties() -> None:
    assert s.spearman_ceiling(np.array([0.1, 0.5, 0.9])) == pytest.approx(1.0)
    # 19 successes and one failure: sqrt(95 / 665) by hand (the tied block's ranks average 11)
    target = np.array([0.4] + [1.0] * 19)
    assert s.spearman_ceiling(target) == pytest.approx(np.sqrt(95 / 665))
    # the best continuous prediction (failure lowest, successes in any order) reaches it and no more
    rng = np.random.default_rng(0)
    best = np.concatenate([[0.0], rng.uniform(0.5, 1.0, 19)])
    assert s.spearman(best, target) == pytest.approx(s.spearman_ceiling(target))
    assert np.isnan(s.spearman_ceiling(np.ones(5)))


def test_concordance_leaves_out_pairs_tied_in_the_target() -> None:
    target = np.array([0.4, 1.0, 1.0, 1.0])
    assert s.concordance(np.array([0.1, 0.9, 0.7, 0.8]), target) == 1.0  # order among the successes is free
    assert s.concordance(np.array([0.9, 0.1, 0.2, 0.3]), target) == 0.0
    assert s.concordance(np.array([0.8, 0.9, 0.7, 0.8]), target) == pytest.approx((1 + 0 + 0.5) / 3)
    assert np.isnan(s.concordance(np.array([0.1, 0.2]), np.array([1.0, 1.0])))
    with pytest.raises(InputShapeError):
        s.concordance(np.zeros(3), np.zeros(4))


def test_stratified_bootstrap_keeps_groups_and_pairs() -> None:
    a = np.array([0.0, 0.0, 0.0])
    b = np.array([1.0, 1.0, 1.0, 1.0, 1.0])
    # Each group is resampled on its own: the task-macro mean of two constant groups never moves.
    assert s.stratified_bootstrap([a, b], s.macro_mean) == (0.5, 0.5)
    noisy = [np.arange(10.0), np.arange(10.0) + 100.0]
    lo, hi = s.stratified_bootstrap(noisy, s.macro_mean)
    assert lo < s.macro_mean(noisy) < hi and hi - lo < 6.0
    # Paired columns: a ratio of two backends' macro errors on the same episodes.
    paired = [np.stack([np.arange(1.0, 11.0), 2.0 * np.arange(1.0, 11.0)], axis=1)]
    ratio = lambda gs: s.macro_mean([g[:, 0] for g in gs]) / s.macro_mean([g[:, 1] for g in gs])  # noqa: E731
    assert s.stratified_bootstrap(paired, ratio) == (0.5, 0.5)
    assert all(np.isnan(s.stratified_bootstrap([np.array([1.0])], s.macro_mean)))
    # One episode per task: the tasks are resampled (the interval is not a point).
    singles = [np.array([float(k)]) for k in range(10)]
    lo, hi = s.stratified_bootstrap(singles, s.macro_mean)
    assert lo < s.macro_mean(singles) < hi


def test_mcnemar_exact_by_hand_and_against_scipy() -> None:
    # 5 discordant pairs, all one way: 2 * (1/2)^5
    assert s.mcnemar_exact(5, 0) == pytest.approx(2 / 32) == s.mcnemar_exact(0, 5)
    # 16 gained, 2 lost: 2 * (C(18,0) + C(18,1) + C(18,2)) / 2^18
    assert s.mcnemar_exact(16, 2) == pytest.approx(2 * (1 + 18 + 153) / 2**18)
    assert s.mcnemar_exact(3, 3) == 1.0 and s.mcnemar_exact(0, 0) == 1.0
    with pytest.raises(ValueError, match="counts"):
        s.mcnemar_exact(-1, 2)
    scipy_stats = pytest.importorskip("scipy.stats")
    assert s.mcnemar_exact(12, 4) == pytest.approx(scipy_stats.binomtest(4, 16).pvalue)


def test_wilson_interval() -> None:
    lo, hi = s.wilson_interval(20, 20)
    assert lo == pytest.approx(0.8389, abs=1e-3) and hi == pytest.approx(1.0)
    assert all(np.isnan(s.wilson_interval(0, 0)))


def test_paired_arrays_refuses_unequal_lengths() -> None:
    with pytest.raises(InputShapeError, match="same length"):
        s.pearson(np.ones(3), np.ones(4))


def test_seed_bootstrap_interval_counts_training_and_pairs_episodes() -> None:
    rng = np.random.default_rng(1)
    episodes = rng.random(200) < 0.5
    # Three policies that solve the same episodes: only the evaluation varies, like one policy.
    same = np.stack([episodes] * 3).astype(float)
    assert s.seed_bootstrap_interval(same) == pytest.approx(s.bootstrap_interval(episodes.astype(float)), abs=0.02)
    # Policies whose success differs by seed (0.3 .. 0.7): the interval widens to cover the training's noise.
    spread = np.stack([rng.random(200) < p for p in (0.3, 0.5, 0.7)]).astype(float)
    lo, hi = s.seed_bootstrap_interval(spread)
    narrow = s.bootstrap_interval(spread.mean(axis=0))
    assert hi - lo > 1.5 * (narrow[1] - narrow[0])
    # A difference on the same episodes: identical sides give exactly 0, paired columns cancel.
    assert s.seed_bootstrap_interval(same, same) == (0.0, 0.0)
    shifted = same.copy()
    shifted[:, np.flatnonzero(~episodes)[:20]] = 1.0  # 20 more episodes solved by every policy
    assert s.seed_bootstrap_interval(shifted, same) == pytest.approx((0.1 - 0.06, 0.1 + 0.06), abs=0.03)
    assert all(np.isnan(s.seed_bootstrap_interval([[1.0]])))
    with pytest.raises(InputShapeError, match="members"):
        s.seed_bootstrap_interval(same, same[:, :10])


def test_paired_macro_ratio_resamples_the_same_episodes_for_both_columns() -> None:
    from sarm2_env.stats import paired_macro_ratio

    rng = np.random.default_rng(0)
    groups = [np.stack([x, 2 * x], axis=1) for x in (rng.uniform(0.01, 0.1, 5), rng.uniform(0.1, 1.0, 7))]
    ratio, (low, high) = paired_macro_ratio(groups)
    assert ratio == pytest.approx(0.5) and low == pytest.approx(0.5) and high == pytest.approx(0.5)  # paired: no spread
    assert np.isnan(paired_macro_ratio([np.zeros((3, 2))])[0])  # nothing to divide by
