"""Relabelling (agents/relabel.py) and update-rule weights (agents/updates.py) against hand-computed arrays."""

from __future__ import annotations

import numpy as np
import pytest

from agents.relabel import RelabelConfig, chunk_advantages, query_frames, relabel_progress, smooth
from agents.updates import UpdateConfig, awr_weights, rabc_weights, recap_indicators, sample_targets
from sarm2_env.errors import ConfigError, InputShapeError, NonFiniteError, UnknownNameError


# ---------------------------------------------------------------------- relabelling
def test_query_frames_always_include_the_last_frame():
    np.testing.assert_array_equal(query_frames(25, 10), [0, 10, 20, 24])
    np.testing.assert_array_equal(query_frames(21, 10), [0, 10, 20])
    np.testing.assert_array_equal(query_frames(1, 10), [0])


def test_smoothers():
    v = np.array([0.0, 0.4, 0.2, 0.6])
    np.testing.assert_allclose(smooth(v, "none"), v)
    np.testing.assert_allclose(smooth(v, "monotone"), [0.0, 0.4, 0.4, 0.6])
    np.testing.assert_allclose(smooth(v, "moving_average", 3), [0.2, 0.2, 0.4, 0.4])


def test_chunk_advantages_extrapolate_the_last_slope():
    p = np.array([0.0, 0.1, 0.2, 0.3, 0.3])
    # H = 2: inside, p[t+2] - p[t]; the last H frames' slope is (0.3 - 0.2) / 2 = 0.05 per frame.
    np.testing.assert_allclose(chunk_advantages(p, 2), [0.2, 0.2, 0.1, 0.0 + 0.05, 0.0 + 0.1])
    assert chunk_advantages(np.array([0.5]), 3).tolist() == [0.0]


def test_relabel_reads_only_queried_frames_and_keeps_regress_unless_told():
    pred = np.array([0.0, 9.0, 0.2, 9.0, 0.4, 9.0, 0.1])  # 9 = never queried with query_every=2
    out = relabel_progress(pred, RelabelConfig(query_every=2, chunk=1))
    np.testing.assert_array_equal(out.query_frames, [0, 2, 4, 6])
    np.testing.assert_allclose(out.progress, [0.0, 0.1, 0.2, 0.3, 0.4, 0.25, 0.1], atol=1e-6)
    np.testing.assert_allclose(out.reward, [0.0, 0.1, 0.1, 0.1, 0.1, -0.15, -0.15], atol=1e-6)
    assert out.reward.sum() == pytest.approx(0.1)  # telescopes to p_T - p_0
    clipped = relabel_progress(pred, RelabelConfig(query_every=2, clip_negative=True, chunk=1))
    assert clipped.reward.min() == 0.0
    mono = relabel_progress(pred, RelabelConfig(query_every=2, smoothing="monotone", chunk=1))
    assert mono.progress[-1] == pytest.approx(0.4)  # the authors' smoother cannot see the regress


@pytest.mark.parametrize(
    "kwargs, field",
    [({"query_every": 0}, "query_every"), ({"smoothing": "ema"}, "smoothing"), ({"smooth_window": 4}, "smooth_window")],
)
def test_relabel_config_validation(kwargs, field):
    with pytest.raises(ConfigError, match=field):
        RelabelConfig(**kwargs)


def test_relabel_rejects_nan_and_bad_shapes():
    with pytest.raises(NonFiniteError, match="frame 1"):
        relabel_progress(np.array([0.0, np.nan, 0.2]), RelabelConfig())
    with pytest.raises(InputShapeError, match=r"\(T,\)"):
        relabel_progress(np.zeros((3, 2)), RelabelConfig())


# ---------------------------------------------------------------------- update rules
def test_rabc_weights_by_hand():
    a = np.array([-0.1, 0.0, 0.005, 0.02, 0.5])
    mu, sigma = a.mean(), a.std()
    expected = [0.0, np.clip((0.0 - (mu - 2 * sigma)) / (4 * sigma + 1e-6), 0, 1)]
    expected.append(np.clip((0.005 - (mu - 2 * sigma)) / (4 * sigma + 1e-6), 0, 1))
    expected += [1.0, 1.0]
    np.testing.assert_allclose(rabc_weights(a, kappa=0.01), expected, rtol=1e-6)


def test_awr_weights_by_hand_and_capped():
    a = np.array([-1.0, 0.0, 1.0])
    norm = (a - a.mean()) / a.std()
    np.testing.assert_allclose(awr_weights(a, beta=1.0), np.exp(norm), rtol=1e-5)
    assert awr_weights(np.array([0.0] * 99 + [100.0]), beta=0.1, max_weight=20.0).max() == 20.0


def test_recap_indicators_top_fraction_per_group():
    a = np.array([0.1, 0.2, 0.3, 0.4, 0.5, -1.0, -2.0, -3.0, -4.0, -5.0])
    groups = np.array([0] * 5 + [1] * 5)
    np.testing.assert_array_equal(recap_indicators(a, 0.4, groups), [0, 0, 0, 1, 1, 1, 1, 0, 0, 0])
    np.testing.assert_array_equal(recap_indicators(a, 0.2), [0, 0, 0, 1, 1, 0, 0, 0, 0, 0])  # top 2 of 10
    np.testing.assert_array_equal(recap_indicators(np.zeros(3), 0.3), [0, 0, 0])  # flat, not positive


def test_sample_targets_per_rule():
    a = np.linspace(-0.05, 0.05, 11)
    assert sample_targets(a, UpdateConfig(rule="rabc")).condition is None
    recap = sample_targets(a, UpdateConfig(rule="recap", positive_fraction=0.3))
    assert recap.weight.tolist() == [1.0] * 11 and recap.condition.sum() == 4  # ties at the quantile count
    assert sample_targets(a, UpdateConfig(rule="awr")).weight.argmax() == 10


def test_update_config_validation():
    with pytest.raises(UnknownNameError, match="awr"):
        UpdateConfig(rule="awrr")
    with pytest.raises(ConfigError, match="positive_fraction"):
        UpdateConfig(positive_fraction=1.0)
    with pytest.raises(NonFiniteError):
        rabc_weights(np.array([0.1, np.inf]))
