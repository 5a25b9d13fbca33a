"""The success gate's threshold (agents/success_gate.py): calibrated on annotated rollouts, reported per round."""

from __future__ import annotations

import numpy as np
import pytest

from agents.success_gate import FALLBACK_THRESHOLD, calibrate_threshold, gate_report
from sarm2_env.errors import InputShapeError, NonFiniteError


def test_the_threshold_separates_the_annotated_successes():
    finals = [0.1, 0.3, 0.62, 0.7, 0.8, 0.9]
    gate = calibrate_threshold(finals, [False, False, False, True, True, True])
    assert gate.calibrated and gate.threshold == pytest.approx(0.66)  # midway between the classes
    assert (gate.true_positive_rate, gate.false_positive_rate) == (1.0, 0.0)
    assert (gate.rollouts, gate.successes) == (6, 3)


def test_overlapping_classes_get_the_best_youden_j_and_ties_go_higher():
    # A failure at 0.75 sits among the successes: at 0.72 J = 1 - 1/3, at 0.775 J = 2/3 - 0; a tie, the higher wins
    # (cloning a failure costs more than missing a success).
    gate = calibrate_threshold([0.2, 0.4, 0.75, 0.7, 0.8, 0.9], [False, False, False, True, True, True])
    assert gate.threshold == pytest.approx(0.775)
    assert gate.true_positive_rate == pytest.approx(2 / 3) and gate.false_positive_rate == 0.0


def test_one_class_only_falls_back_and_says_so():
    gate = calibrate_threshold([0.2, 0.6, 0.4], [False, False, False])
    assert not gate.calibrated and gate.threshold == FALLBACK_THRESHOLD
    assert gate.true_positive_rate is None and gate.false_positive_rate == pytest.approx(1 / 3)
    assert gate.to_dict()["calibrated"] is False


def test_the_report_counts_judged_and_true_successes():
    report = gate_report(np.array([0.9, 0.8, 0.3, 0.95]), [True, False, False, False], 0.75)
    assert report["judged_successes"] == 3 and report["true_successes"] == 1
    assert report["precision"] == pytest.approx(1 / 3) and report["recall"] == 1.0
    assert gate_report([0.1], [False], 0.5)["precision"] is None


def test_bad_input_names_the_field():
    with pytest.raises(InputShapeError, match="`finals` and `successes`"):
        calibrate_threshold([0.1, 0.2], [True])
    with pytest.raises(NonFiniteError, match="`finals`"):
        calibrate_threshold([0.1, float("nan")], [True, False])
