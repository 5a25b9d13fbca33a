"""Metric functions against hand-computed values (and scipy where it is installed)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from benchmarks import metrics as m


def test_value_mse_micro_and_macro_by_hand() -> None:
    preds = [np.array([0.0, 0.5, 1.0]), np.array([1.0])]
    targets = [np.array([0.0, 0.0, 0.0]), np.array([0.0])]
    # squared errors: [0, .25, 1] and [1] -> micro = 2.25 / 4, macro = mean(1.25/3, 1)
    out = m.value_mse(preds, targets)
    assert out["micro"] == pytest.approx(2.25 / 4)
    assert out["macro"] == pytest.approx((1.25 / 3 + 1.0) / 2)


def test_value_mse_after_minmax_rescaling() -> None:
    pred = np.array([0.2, 0.3, 0.4])  # rescaled -> [0, .5, 1] == target
    assert m.value_mse([pred], [np.array([0.0, 0.5, 1.0])], rescale=True)["micro"] == pytest.approx(0.0)
    assert m.minmax(np.array([3.0, 3.0])).tolist() == [0.0, 0.0]
    with pytest.raises(ValueError, match="same length"):
        m.squared_errors(np.zeros(2), np.zeros(3))


def test_rankdata_averages_ties() -> None:
    assert m.rankdata(np.array([10, 20, 20, 5])).tolist() == [2.0, 3.5, 3.5, 1.0]


def test_correlations_by_hand() -> None:
    x = np.array([1.0, 2.0, 3.0, 4.0])
    assert m.pearson(x, 2 * x + 1) == pytest.approx(1.0)
    assert m.spearman(x, x**3) == pytest.approx(1.0)
    assert m.voc_time(np.array([0.1, 0.2, 0.15, 0.9])) == pytest.approx(0.8)  # ranks 1,3,2,4 vs 1..4
    assert m.voc_progress(x, -x) == pytest.approx(-1.0)
    assert math.isnan(m.pearson(np.ones(4), x))


def test_kendall_tau_b_by_hand_and_against_scipy() -> None:
    # x = 1,2,3 ; y = 1,3,2 -> pairs (12 C)(13 C)(23 D): (2 - 1) / 3
    assert m.kendall_tau_b(np.array([1, 2, 3]), np.array([1, 3, 2])) == pytest.approx(1 / 3)
    scipy_stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 4, 30), rng.normal(size=30)
    assert m.kendall_tau_b(a, b) == pytest.approx(scipy_stats.kendalltau(a, b).statistic)
    assert m.spearman(a, b) == pytest.approx(scipy_stats.spearmanr(a, b).statistic)


def test_kendall_rank_orders_failure_partial_success() -> None:
    cats = [m.outcome_category(False, 0.1), m.outcome_category(False, 0.6), m.outcome_category(True, 1.0)]
    assert cats == [0, 1, 2]
    assert m.kendall_rank([0.05, 0.5, 0.95], cats) == pytest.approx(1.0)
    assert m.kendall_rank([0.95, 0.5, 0.05], cats) == pytest.approx(-1.0)


def test_controls() -> None:
    assert m.static_flatness(np.array([0.2, 0.25, 0.21])) == pytest.approx(0.05)
    assert m.reversed_voc_time(np.array([0.9, 0.5, 0.1])) == pytest.approx(-1.0)
    assert m.wrong_instruction_drop(np.array([0.5, 0.7]), np.array([0.1, 0.1])) == pytest.approx(0.5)


def test_confusion_and_primitive_accuracy() -> None:
    true = np.array([0, 0, 1, 2, -1])
    pred = np.array([0, 1, 1, 0, 2])
    cm = m.confusion_matrix(true, pred, n=3)
    assert cm.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 0]]
    assert m.primitive_accuracy(true, pred) == pytest.approx(0.5)


def test_expert_load_and_collapse() -> None:
    weights = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]])
    load = m.expert_load(weights, np.array([0, 0, 1]), n_groups=3)
    assert load[0].tolist() == [0.5, 0.5] and load[1].tolist() == [0.5, 0.5] and np.isnan(load[2]).all()
    assert m.expert_collapse(weights)["load_entropy"] == pytest.approx(1.0)
    collapsed = m.expert_collapse(np.array([[1.0, 0.0], [1.0, 0.0]]))
    assert collapsed == {"experts_used": 1.0, "load_entropy": pytest.approx(0.0)}


def test_relative_reduction_and_wilson() -> None:
    assert m.relative_reduction(0.2, 1.0) == pytest.approx(0.8)
    assert math.isnan(m.relative_reduction(0.2, float("nan")))
    lo, hi = m.wilson_interval(20, 20)
    assert lo == pytest.approx(0.8389, abs=1e-3) and hi == pytest.approx(1.0)


def test_bootstrap_interval() -> None:
    values = np.arange(100, dtype=float)
    lo, hi = m.bootstrap_interval(values)
    assert lo < values.mean() < hi and hi - lo < 25  # about 2 x 1.96 x 29 / sqrt(100)
    assert m.bootstrap_interval(values) == (lo, hi)  # seeded
    assert m.bootstrap_interval(np.full(10, 3.0)) == (3.0, 3.0)
    assert all(np.isnan(m.bootstrap_interval([1.0])))
    # Paired rows: the interval of a difference of means over the same episodes.
    pairs = np.stack([values, values + 1.0], axis=1)
    assert m.bootstrap_interval(pairs, lambda rows: float(np.mean(rows[:, 1] - rows[:, 0]))) == (1.0, 1.0)


def test_auroc() -> None:
    assert m.auroc([0.9, 0.8, 0.1, 0.2], [True, True, False, False]) == 1.0
    assert m.auroc([0.1, 0.2, 0.9, 0.8], [True, True, False, False]) == 0.0
    assert m.auroc([0.5, 0.5], [True, False]) == 0.5  # a tie counts half
    assert m.auroc([0.9, 0.3, 0.5], [True, False, True]) == 1.0
    assert m.auroc([0.2, 0.7, 0.5, 0.1], [True, False, True, False]) == 0.5
    assert np.isnan(m.auroc([0.1, 0.2], [True, True]))


def test_stratified_bootstrap_keeps_groups_and_pairs() -> None:
    a = np.array([0.0, 0.0, 0.0])
    b = np.array([1.0, 1.0, 1.0, 1.0, 1.0])
    # Each group is resampled on its own: the task-macro mean of two constant groups never moves.
    assert m.stratified_bootstrap([a, b], m.macro_mean) == (0.5, 0.5)
    noisy = [np.arange(10.0), np.arange(10.0) + 100.0]
    lo, hi = m.stratified_bootstrap(noisy, m.macro_mean)
    assert lo < m.macro_mean(noisy) < hi and hi - lo < 6.0
    # Paired columns: a ratio of two backends' macro errors on the same episodes.
    paired = [np.stack([np.arange(1.0, 11.0), 2.0 * np.arange(1.0, 11.0)], axis=1)]
    ratio = lambda gs: m.macro_mean([g[:, 0] for g in gs]) / m.macro_mean([g[:, 1] for g in gs])  # noqa: E731
    assert m.stratified_bootstrap(paired, ratio) == (0.5, 0.5)
    assert all(np.isnan(m.stratified_bootstrap([np.array([1.0])], m.macro_mean)))
    # One episode per task: the tasks are resampled (the interval is not a point).
    singles = [np.array([float(k)]) for k in range(10)]
    lo, hi = m.stratified_bootstrap(singles, m.macro_mean)
    assert lo < m.macro_mean(singles) < hi
