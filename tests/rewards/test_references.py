"""Reference backends: oracle, time_linear, sparse — offline, online, persistence."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from rewards import make_reward_model
from sarm2_env.errors import CheckpointError, SARM2Error
from tests.rewards.fixtures import SIM_TASKS, synthetic_features

TASK = SIM_TASKS[0]


def with_success(feats, at: int):
    flags = np.zeros(feats.length, bool)
    flags[at:] = True
    flags[at + 2 :] = False  # success can flicker off; sparse stays at 1 once reached
    return dataclasses.replace(feats, success_flags=flags)


def run_online(model, feats, infos):
    session = model.start(feats.task_id)
    out = []
    for t in range(feats.length):
        session.info = infos[t]
        out.append(model.step_batch([session], feats.embeddings[t : t + 1], feats.state[t : t + 1])[0])
    return np.array(out)


def test_oracle_returns_ground_truth_offline_and_online() -> None:
    (feats,) = synthetic_features(TASK, 1, length=12)
    feats = dataclasses.replace(feats, progress=np.sin(np.linspace(0, 3, 12)).astype(np.float32) ** 2)
    model = make_reward_model("oracle")
    np.testing.assert_array_equal(model.predict_episode(feats).progress, feats.progress)
    online = run_online(model, feats, [{"progress": p} for p in feats.progress])
    np.testing.assert_allclose(online, feats.progress)
    with pytest.raises(SARM2Error, match="info\\['progress'\\]"):
        run_online(model, feats, [{}] * feats.length)


def test_oracle_prefers_the_calibrated_progress_where_there_is_one() -> None:
    (feats,) = synthetic_features(TASK, 1, length=12)
    calibrated = np.linspace(0.0, 1.0, 12, dtype=np.float32)
    feats = dataclasses.replace(feats, progress=np.zeros(12, np.float32), calibrated_progress=calibrated)
    model = make_reward_model("oracle")
    np.testing.assert_array_equal(model.predict_episode(feats).progress, calibrated)
    infos = [{"progress": 0.0, "calibrated_progress": float(c)} for c in calibrated]
    np.testing.assert_allclose(run_online(model, feats, infos), calibrated)


def test_sparse_is_zero_until_success_then_one() -> None:
    (feats,) = synthetic_features(TASK, 1, length=10)
    feats = with_success(feats, 6)
    model = make_reward_model("sparse")
    expected = [0, 0, 0, 0, 0, 0, 1, 1, 1, 1]
    assert model.predict_episode(feats).progress.tolist() == expected
    online = run_online(model, feats, [{"success": bool(s)} for s in feats.success_flags])
    assert online.tolist() == expected


def test_time_linear_fits_mean_demo_length_and_round_trips(tmp_path) -> None:
    demos = synthetic_features(TASK, 2, length=11) + synthetic_features(TASK, 1, length=21)
    model = make_reward_model("time_linear", checkpoint=None)
    model.fit(demos, out_dir=tmp_path / "tl")
    assert model.mean_length[TASK] == pytest.approx(43 / 3)
    (probe,) = synthetic_features(TASK, 1, length=30)
    out = model.predict_episode(probe).progress
    assert out[0] == 0 and out[-1] == 1 and np.all(np.diff(out) >= 0)
    np.testing.assert_allclose(run_online(model, probe, [{}] * 30), out, atol=1e-6)
    loaded = make_reward_model("time_linear", checkpoint=tmp_path / "tl")
    np.testing.assert_array_equal(loaded.predict_episode(probe).progress, out)
    assert not loaded.covers(SIM_TASKS[1])
    with pytest.raises(CheckpointError, match="no demo length"):
        loaded.predict_episode(synthetic_features(SIM_TASKS[1], 1)[0])
    with pytest.raises(CheckpointError, match="no time_linear checkpoint"):
        make_reward_model("time_linear", checkpoint=tmp_path / "missing")
