"""agents/outcome_advantage.py: cross-fitted outcome advantages rank episodes by how they ended against what their
states promised, and cannot learn an episode's own outcome by heart."""

from __future__ import annotations

import numpy as np
import pytest

from agents.outcome_advantage import outcome_advantages
from sarm2_env.errors import ConfigError, InputShapeError


def _episodes(n: int = 40, t: int = 12):
    rng = np.random.default_rng(0)
    features, finals = [], []
    for i in range(n):
        promising = i % 2 == 0
        x = np.zeros((t, 3), np.float32)
        x[:, 0] = float(promising)
        x[:, 1] = 0.2 * rng.normal()  # unique per episode: what a value fitted on the episode itself would memorise
        x[:, 2] = np.linspace(0, 1, t)
        features.append(x)
        finals.append((1.0 if i % 4 == 0 else 0.5) if promising else 0.0)
    return features, finals


def test_episodes_that_ended_better_than_their_states_promised_get_positive_advantages():
    features, finals = _episodes()
    adv = outcome_advantages(features, finals, steps=600)
    means = np.array([a.mean() for a in adv])
    finals = np.array(finals)
    assert np.all(means[finals == 1.0] > 0.1)  # promising states (value ~0.75) that succeeded
    assert np.all(means[finals == 0.5] < -0.1)  # the same promise, a worse end
    assert np.all(np.abs(means[finals == 0.0]) < 0.1)  # unpromising and ended as expected
    assert [a.shape for a in adv] == [(12,)] * len(features)
    worst = [a for a, f in zip(adv, finals) if f == 0.0]
    assert all(np.all(a <= 0) for a in worst)  # the value never strays below the worst outcome seen


def test_bad_inputs_are_refused():
    features, finals = _episodes(4)
    with pytest.raises(InputShapeError, match="finals"):
        outcome_advantages(features, finals[:3])
    with pytest.raises(ConfigError, match="folds"):
        outcome_advantages(features, finals, folds=5)
    with pytest.raises(InputShapeError, match="features"):
        outcome_advantages([features[0], features[1][:, :2]], finals[:2])


def test_each_episode_is_valued_by_a_regression_that_never_saw_it(monkeypatch):
    import agents.outcome_advantage as module

    features, finals = _episodes(8, t=3)
    for i, f in enumerate(features):
        f[:, 1] = i  # the episode's id, to see which episodes each regression was trained on
    trained_on, real = [], module._fit_value

    def spy(x, y, *args):
        trained_on.append(set(x[:, 1].astype(int).tolist()))
        return real(x, y, *args)

    monkeypatch.setattr(module, "_fit_value", spy)
    outcome_advantages(features, finals, folds=4, steps=5)
    assert len(trained_on) == 4
    held_out = [set(range(8)) - seen for seen in trained_on]
    assert sorted(len(h) for h in held_out) == [2, 2, 2, 2] and set().union(*held_out) == set(range(8))
