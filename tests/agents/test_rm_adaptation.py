"""RM1 -> RM2 on simulated rollouts (agents/rm_adaptation.py): targets an annotator's marks would give, a copy
adapted towards them, written whole or not at all, read back instead of adapted twice, bad input refused."""

from __future__ import annotations

import types

import numpy as np
import pytest
import torch

from agents.rm_adaptation import adapt_on_rollouts, annotated_targets
from agents.state_spiral import StateRollout
from sarm2_env.constants import STATE_DIM
from sarm2_env.errors import ConfigError, DatasetError
from tests.rewards.fixtures import TINY_DIM

TASK = "SARM2/CleanWhiteboard-v0"  # a task the tiny checkpoint was trained on


def _rollout(seed: int, reached: float, length: int = 41) -> StateRollout:
    """A rollout whose frames move from the tiny model's "start" to its "end" embedding, as a full demo's do, but
    whose simulator progress stops at ``reached``: the scene looks finished, the task is not."""
    t = np.linspace(0.0, 1.0, length, dtype=np.float32)
    start, end = np.random.default_rng(123).normal(size=(2, 3, TINY_DIM)).astype(np.float32)  # the fixture's
    frames = np.arange(0, length, 10)
    emb = (1 - t[frames])[:, None, None] * start + t[frames][:, None, None] * end
    progress = np.minimum(t, reached).astype(np.float32)
    return StateRollout(
        task_id=TASK,
        seed=seed,
        state=np.zeros((length, STATE_DIM + 3), np.float32),
        action=np.zeros((length - 1, 14), np.float32),
        progress=progress,
        success_flags=progress >= 1.0,
        frames=frames,
        embeddings=emb.astype(np.float16),
    )


def test_targets_follow_the_simulator_as_an_annotator_would_mark_it():
    rising = _rollout(0, 1.0)
    stalled = _rollout(1, 0.3)
    dropped = _rollout(2, 1.0)
    dropped.progress[30:] = 0.05  # knocked back for good: a catastrophe
    a, b, c = annotated_targets([rising, stalled, dropped])
    assert a.shape == (41,) and a[0] == pytest.approx(0.0) and a[-1] == pytest.approx(1.0)
    assert b[-1] == pytest.approx(0.3, abs=1e-6) and b.max() <= 0.3 + 1e-6  # ends where the rollout got to
    assert np.all(c[30:] == 0.0) and c[29] > 0.5  # zero from the catastrophe on
    assert all(np.all((x >= 0) & (x <= 1)) for x in (a, b, c))


def test_rm2_is_an_adapted_copy_written_once(tmp_path, tiny_sarm2_checkpoint, monkeypatch):
    from rewards.registry import make_reward_model

    rm1 = make_reward_model("sarm2", checkpoint=tiny_sarm2_checkpoint, device="cpu")
    before = {k: v.clone() for k, v in rm1.net.state_dict().items()}
    rollouts = [_rollout(k, 0.3) for k in range(6)]
    final = lambda m: np.mean([m.predict_episode(ro.features()).progress[-1] for ro in rollouts])  # noqa: E731
    out = tmp_path / "rm2"
    rm2, record = adapt_on_rollouts(rm1, rollouts, out, steps=80, lr_scale=1.0, seed=0)
    # RM1 reads these finished-looking scenes as nearly done; RM2 moved towards the 0.3 they stop at.
    assert final(rm1) > 0.6 and final(rm2) < final(rm1) - 0.05
    assert all(torch.equal(v, rm1.net.state_dict()[k]) for k, v in before.items())  # RM1 untouched
    assert record["rollouts"] == 6 and record["successes"] == 0 and record["steps"] == 80
    assert record["target_mse"] < 1e-3 and set(record) >= {"final_corr_rm1", "final_corr_rm2", "adapt_seconds"}
    assert (out / "config.json").exists() and not out.with_name("rm2.partial").exists()
    # A second call reads RM2 back instead of adapting again.
    monkeypatch.setattr(type(rm1), "adapt", lambda *a, **k: pytest.fail("adapted twice"))
    again, record_again = adapt_on_rollouts(rm1, rollouts, out, steps=80, lr_scale=1.0, seed=0)
    assert record_again == record and final(again) == pytest.approx(final(rm2), abs=1e-3)  # fp16 round trip


def test_an_unfinished_rm2_is_adapted_again(tmp_path, tiny_sarm2_checkpoint):
    from rewards.registry import make_reward_model

    rm1 = make_reward_model("sarm2", checkpoint=tiny_sarm2_checkpoint, device="cpu")
    out = tmp_path / "rm2"
    out.mkdir()
    (out / "config.json").write_text("{}")  # a checkpoint without its record: an interrupted run
    out.with_name("rm2.partial").mkdir()
    _, record = adapt_on_rollouts(rm1, [_rollout(0, 0.5), _rollout(1, 1.0)], out, steps=2, lr_scale=0.3, seed=0)
    assert record["rollouts"] == 2 and (out / "model.safetensors").exists()


def test_bad_input_is_refused(tmp_path, tiny_sarm2_checkpoint):
    from rewards.registry import make_reward_model

    fixed = types.SimpleNamespace(name="time_linear", adaptable=False)
    with pytest.raises(ConfigError, match="time_linear.*cannot be adapted"):
        adapt_on_rollouts(fixed, [_rollout(0, 1.0)], tmp_path / "a", steps=1, lr_scale=0.3, seed=0)
    rm1 = make_reward_model("sarm2", checkpoint=tiny_sarm2_checkpoint, device="cpu")
    with pytest.raises(DatasetError, match="at least one rollout"):
        adapt_on_rollouts(rm1, [], tmp_path / "b", steps=1, lr_scale=0.3, seed=0)
    assert not (tmp_path / "b").exists()
