"""Metric functions against hand-computed values (and scipy where it is installed)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from benchmarks import metrics as m
from sarm2_env import stats


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


def test_correlations_by_hand() -> None:
    x = np.array([1.0, 2.0, 3.0, 4.0])
    assert stats.pearson(x, 2 * x + 1) == pytest.approx(1.0)
    assert stats.spearman(x, x**3) == pytest.approx(1.0)
    assert m.voc_time(np.array([0.1, 0.2, 0.15, 0.9])) == pytest.approx(0.8)  # ranks 1,3,2,4 vs 1..4
    assert m.voc_progress(x, -x) == pytest.approx(-1.0)
    assert math.isnan(stats.pearson(np.ones(4), x))


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


def test_relative_reduction() -> None:
    assert m.relative_reduction(0.2, 1.0) == pytest.approx(0.8)
    assert math.isnan(m.relative_reduction(0.2, float("nan")))


def test_ranking_statistics_and_their_intervals() -> None:
    # columns: final predicted, final true, success, outcome category
    task_a = np.array([[0.9, 1.0, 1, 2], [0.5, 0.6, 0, 1], [0.1, 0.0, 0, 0], [0.8, 1.0, 1, 2]])
    task_b = np.array([[0.2, 1.0, 1, 2], [0.6, 0.3, 0, 1], [0.7, 0.0, 0, 0]])  # ranked backwards
    stats = m.ranking_statistics([task_a, task_b])
    assert stats["concordance"] == pytest.approx((1.0 + 0.0) / 2)  # a mean over tasks
    assert stats["kendall_rank"] == pytest.approx((5 / np.sqrt(6 * 5) - 1.0) / 2)  # tau-b: one pair tied in a
    # pooled over tasks: successes 0.9, 0.8, 0.2 against failures 0.5, 0.1, 0.6, 0.7 -> 4 + 4 + 1 of 12 pairs
    assert stats["success_auroc"] == pytest.approx(9 / 12)
    assert stats["success_gap"] == pytest.approx(np.mean([0.9, 0.8, 0.2]) - np.mean([0.5, 0.1, 0.6, 0.7]))
    ci = m.ranking_intervals([task_a, task_b], resamples=200)
    assert set(ci) == set(stats)
    for name, (lo, hi) in ci.items():
        assert lo <= hi, name
    assert ci["concordance"][0] < stats["concordance"] < ci["concordance"][1]
    assert all(np.isnan(m.ranking_intervals([task_a[:1]], resamples=50)["rollout_rho"]))  # one rollout: no rho


def test_rollout_ranking_per_task_agrees_with_ranking_statistics() -> None:
    finals = {
        "a": [(0.9, 1.0), (0.5, 0.6), (0.1, 0.0), (0.8, 1.0)],
        "b": [(0.2, 1.0), (0.6, 0.3), (0.7, 0.0)],  # ranked backwards
        "c": [(0.3, 0.2), (0.4, 0.9)],  # two rollouts: too few for rho, enough for concordance
    }
    r = m.rollout_ranking(finals)
    assert r["concordance"]["per_task"] == {"a": 1.0, "b": 0.0, "c": 1.0}
    assert r["rollout_rho"]["per_task"]["b"] == pytest.approx(-1.0)
    assert math.isnan(r["rollout_rho"]["per_task"]["c"])
    assert r["rollout_rho"]["min"] == pytest.approx(-1.0)
    groups = [np.array([[p, y, 0.0, 0.0] for p, y in v]) for v in finals.values()]
    stats = m.ranking_statistics(groups)
    for name in m.TASK_RANKING:
        assert stats[name] == pytest.approx(r[name]["mean"]), name
