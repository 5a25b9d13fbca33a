"""SARM2: windows, shapes, causality, MoE routing, online == offline, checkpoints, errors, learning."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rewards.sarm2.config import SARM2Config
from rewards.sarm2.network import SARM2Net
from rewards.sarm2.windows import causal_windows, rewind_windows, time_progress
from sarm2_env.constants import NUM_GROUPS, NUM_PRIMITIVES, PRIMITIVE_TO_GROUP, STATE_DIM
from sarm2_env.errors import CheckpointError, ConfigError, InputShapeError, NonFiniteError
from tests.rewards.fixtures import SIM_TASKS, TINY_DIM, synthetic_features

TASK = SIM_TASKS[0]


def load(path):
    from rewards.sarm2.model import SARM2RewardModel

    return SARM2RewardModel.load(path, device="cpu")


# --- windows and targets ---------------------------------------------------------------------------


def test_causal_windows_clamp_at_start_and_never_look_ahead() -> None:
    w = causal_windows(np.array([0, 3, 25]), n_history=5, stride=5)
    assert w.tolist() == [[0] * 6, [0, 0, 0, 0, 0, 3], [0, 5, 10, 15, 20, 25]]
    t = np.arange(100)
    assert (causal_windows(t, 5, 10) <= t[:, None]).all()


def test_rewind_windows_play_backwards_and_stay_in_range() -> None:
    rng = np.random.default_rng(0)
    lengths = np.full(2000, 80)
    idx, k = rewind_windows(lengths, n_history=5, stride=3, rng=rng, rewind_prob=0.8, max_rewind=3)
    assert idx.shape == (2000, 6) and (idx >= 0).all() and (idx < 80).all()
    assert 0.7 < (k > 0).mean() < 0.85 and k.max() == 3
    for row, kb in zip(idx, k):
        steps = np.diff(row)
        if kb == 0:
            assert (steps >= 0).all()  # forward in time (0 where clamped at the first frame)
        else:
            assert (steps[-kb:] == -3).all()  # the last k frames go back one stride each
            assert steps[-kb - 1] >= 0


def test_time_progress() -> None:
    assert time_progress(5).tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert time_progress(1).tolist() == [1.0]


def test_rewind_alignment_images_states_labels_targets_share_frames() -> None:
    """A batch's embeddings, states, primitive label and target all come from the same frame indices."""
    from rewards.data import EpisodeFeatures
    from rewards.sarm2.objective import WindowBatcher

    length = 50
    frame = np.arange(length, dtype=np.float32)
    feats = EpisodeFeatures(
        episode_id="e",
        task_id=TASK,
        instruction="x",
        success=True,
        skill=1.0,
        embeddings=np.broadcast_to(frame[:, None, None], (length, 3, 4)).copy(),  # embedding value = frame index
        state=np.broadcast_to(frame[:, None], (length, STATE_DIM)).copy(),
        primitive=np.arange(length) % NUM_PRIMITIVES,
        progress=np.zeros(length, dtype=np.float32),
    )
    config = SARM2Config.preset("tiny", rewind_prob=1.0, rewind_max_frames=3)
    batcher = WindowBatcher([feats], {"x": np.zeros(8, dtype=np.float32)}, config, torch.device("cpu"))
    batch = batcher.sample(np.random.default_rng(1), 256)
    frames = batch["emb"][:, :, 0, 0]  # (B, 1 + W)
    assert torch.equal(frames, batch["state"][:, :, 0])
    assert (frames[:, 0] == 0).all()  # episode-start anchor
    current = frames[:, -1]
    assert torch.allclose(batch["target"], current / (length - 1))
    assert torch.equal(batch["primitive"], current.long() % NUM_PRIMITIVES)
    assert (frames[:, -1] < frames[:, -2]).any()  # some windows really are rewound


# --- network ---------------------------------------------------------------------------------------


def tiny_net(**overrides) -> SARM2Net:
    torch.manual_seed(0)
    return SARM2Net(SARM2Config.preset("tiny", **overrides), emb_dim=TINY_DIM, text_dim=8).eval()


def test_network_shapes() -> None:
    net = tiny_net()
    w = net.config.window
    out = net(torch.randn(5, 1 + w, 3, TINY_DIM), torch.randn(5, 1 + w, STATE_DIM), torch.randn(5, 8))
    assert out["progress"].shape == (5,) and ((out["progress"] >= 0) & (out["progress"] <= 1)).all()
    assert out["primitive_logits"].shape == (5, NUM_PRIMITIVES)
    assert out["group_logits"].shape == (5, NUM_GROUPS)
    assert out["expert_weights"].shape == (5, net.config.n_experts)
    assert ((out["expert_weights"] > 0).sum(-1) == net.config.top_k).all()
    assert torch.allclose(out["expert_weights"].sum(-1), torch.ones(5))
    assert out["aux_loss"].ndim == 0 and out["aux_loss"] > 0


def test_paper_preset_has_the_published_sizes() -> None:
    c = SARM2Config.preset("paper")
    assert (c.stage_d_model, c.stage_layers, c.value_d_model, c.value_layers, c.n_heads) == (512, 4, 512, 6, 8)
    assert (c.n_experts, c.top_k, c.aux_loss_weight, c.rewind_prob, c.rewind_max_frames) == (10, 2, 0.2, 0.8, 3)
    assert (c.lr_value, c.lr_stage, c.batch_size, c.warmup_steps) == (5e-5, 2.5e-5, 64, 1000)


@pytest.mark.parametrize("primitive", [7, 8, 1, 16, 10, 21])
def test_moe_routes_through_the_gate_of_the_predicted_group(primitive: int) -> None:
    net = tiny_net()
    w = net.config.window
    with torch.no_grad():  # force the stage estimator to predict `primitive`
        net.stage.primitive_head.weight.zero_()
        net.stage.primitive_head.bias.zero_()
        net.stage.primitive_head.bias[primitive] = 10.0
    args = (torch.randn(4, 1 + w, 3, TINY_DIM), torch.randn(4, 1 + w, STATE_DIM), torch.randn(4, 8))
    out = net(*args)
    group = PRIMITIVE_TO_GROUP[primitive]
    assert (out["primitive"] == primitive).all() and (out["group"] == group).all()
    e = net.config.n_experts
    with torch.no_grad():  # change every other group's gate: nothing moves
        other = [g for g in range(NUM_GROUPS) if g != group]
        for g in other:
            net.value.moe.gates.weight[g * e : (g + 1) * e] += torch.randn(e, net.config.value_d_model)
    assert torch.allclose(net(*args)["progress"], out["progress"])
    with torch.no_grad():  # change the predicted group's gate: the routing changes
        net.value.moe.gates.weight[group * e : (group + 1) * e] = torch.randn(e, net.config.value_d_model) * 3
    assert not torch.allclose(net(*args)["expert_weights"], out["expert_weights"])


def test_load_balancing_loss_is_one_when_balanced_and_higher_when_collapsed() -> None:
    net = tiny_net()
    moe = net.value.moe
    h = torch.randn(4000, net.config.value_d_model)
    group = torch.zeros(4000, dtype=torch.long)
    with torch.no_grad():
        moe.gates.weight.zero_()
        moe.gates.bias.zero_()
        moe.gates.weight[: moe.n_experts] = torch.randn(moe.n_experts, h.shape[1])  # random, ~balanced routing
        _, _, balanced = moe(h, group)
        moe.gates.weight.zero_()
        moe.gates.bias[:2] = 10.0  # group 0 always picks experts 0 and 1
        _, _, collapsed = moe(h, group)
    assert 0.9 < float(balanced) < 1.5
    # all mass on 2 of E experts: E * (2 * 0.5 * 0.5) = E / 2
    assert float(collapsed) == pytest.approx(moe.n_experts / 2, rel=1e-3)


# --- the reward model ------------------------------------------------------------------------------


def test_online_and_offline_agree_at_every_frame(tiny_sarm2_checkpoint) -> None:
    model = load(tiny_sarm2_checkpoint)
    (feats,) = synthetic_features(TASK, 1, length=37, seed=9)
    offline = model.predict_episode(feats)
    assert offline.progress.shape == (37,) and offline.primitive_probs.shape == (37, NUM_PRIMITIVES)
    assert offline.query_indices.tolist() == list(range(37))
    model.reset(TASK)
    online = np.array([model.step(feats.embeddings[t], feats.state[t]) for t in range(37)])
    np.testing.assert_allclose(online, offline.progress, atol=1e-5)
    assert model.session.last["primitive"] == offline.primitive[-1]


def test_batched_sessions_match_single_ones(tiny_sarm2_checkpoint) -> None:
    model = load(tiny_sarm2_checkpoint)
    a, b = synthetic_features(TASK, 2, length=20, seed=3)
    sessions = [model.start(TASK), model.start(SIM_TASKS[1])]
    batched = np.stack(
        [
            model.step_batch(sessions, np.stack([a.embeddings[t], b.embeddings[t]]), np.stack([a.state[t], b.state[t]]))
            for t in range(20)
        ]
    )
    np.testing.assert_allclose(batched[:, 0], model.predict_episode(a).progress, atol=1e-5)


def test_prediction_at_t_never_depends_on_later_frames(tiny_sarm2_checkpoint) -> None:
    """Perturb every frame after t (images and state): progress and primitives up to t are unchanged."""
    import dataclasses

    model = load(tiny_sarm2_checkpoint)
    (feats,) = synthetic_features(TASK, 1, length=40, seed=5)
    base = model.predict_episode(feats)
    rng = np.random.default_rng(0)
    for t in (0, 7, 20, 38):
        emb, state = feats.embeddings.copy(), feats.state.copy()
        emb[t + 1 :] = rng.normal(size=emb[t + 1 :].shape) * 5
        state[t + 1 :] = rng.normal(size=state[t + 1 :].shape) * 5
        out = model.predict_episode(dataclasses.replace(feats, embeddings=emb, state=state))
        np.testing.assert_allclose(out.progress[: t + 1], base.progress[: t + 1], atol=1e-6)
        np.testing.assert_allclose(out.primitive_probs[: t + 1], base.primitive_probs[: t + 1], atol=1e-6)
        if t < 38:
            assert not np.allclose(out.progress[t + 1 :], base.progress[t + 1 :])


def test_checkpoint_round_trip_fp32_exact_fp16_close(tiny_sarm2_checkpoint, tmp_path) -> None:
    model = load(tiny_sarm2_checkpoint)
    (feats,) = synthetic_features(TASK, 1, seed=11)
    ref = model.predict_episode(feats).progress
    model.save(tmp_path / "fp32")
    np.testing.assert_array_equal(load(tmp_path / "fp32").predict_episode(feats).progress, ref)
    model.save(tmp_path / "fp16", half=True)
    np.testing.assert_allclose(load(tmp_path / "fp16").predict_episode(feats).progress, ref, atol=5e-3)
    assert (tmp_path / "fp16" / "model.safetensors").stat().st_size < (
        tmp_path / "fp32" / "model.safetensors"
    ).stat().st_size
    restored = load(tmp_path / "fp32")
    assert restored.config == model.config and restored.encoder_spec == model.encoder_spec
    assert restored.tasks == model.tasks and set(restored.tasks) == set(SIM_TASKS)
    assert not list(tmp_path.glob("**/.*tmp*"))


def test_loading_with_a_different_encoder_is_a_clear_error(tiny_sarm2_checkpoint) -> None:
    from rewards.registry import make_reward_model

    with pytest.raises(CheckpointError, match="trained with image encoder tiny"):
        make_reward_model("sarm2", checkpoint=tiny_sarm2_checkpoint, encoder="efficientnet-lite0", device="cpu")
    assert make_reward_model("sarm2", checkpoint=tiny_sarm2_checkpoint, encoder="tiny", device="cpu").net is not None


def test_missing_or_corrupt_checkpoint_errors(tmp_path, tiny_sarm2_checkpoint) -> None:
    import shutil

    with pytest.raises(CheckpointError, match="python -m rewards.train"):
        load(tmp_path / "nope")
    broken = tmp_path / "broken"
    shutil.copytree(tiny_sarm2_checkpoint, broken)
    (broken / "model.safetensors").write_bytes(b"not a tensor file")
    with pytest.raises(CheckpointError, match="sha256"):
        load(broken)  # weights that are not the ones config.json recorded
    import json

    meta = json.loads((broken / "config.json").read_text())
    del meta["weights_sha256"]
    (broken / "config.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="safetensors"):
        load(broken)
    (broken / "config.json").write_text("{")
    with pytest.raises(CheckpointError, match="JSON"):
        load(broken)


def test_bad_online_input_raises_typed_errors(tiny_sarm2_checkpoint) -> None:
    model = load(tiny_sarm2_checkpoint)
    (feats,) = synthetic_features(TASK, 1, length=5)
    model.reset(TASK)
    emb, state = feats.embeddings[0], feats.state[0]
    with pytest.raises(InputShapeError, match="missing \\['right_wrist'\\]"):
        model.step({"top": emb[0], "left_wrist": emb[1]}, state)
    with pytest.raises(InputShapeError, match=f"expected {TINY_DIM}-d"):
        model.step(np.zeros((3, TINY_DIM + 1), np.float32), state)
    with pytest.raises(InputShapeError, match="`state`: expected shape \\(14,\\)"):
        model.step(emb, state[:7])
    with pytest.raises(NonFiniteError, match="state"):
        model.step(emb, np.full(STATE_DIM, np.nan, np.float32))
    with pytest.raises(NonFiniteError, match="frame_embeddings"):
        model.step(np.full_like(emb, np.nan), state)
    assert model.session.frame == -1  # nothing half-recorded by the failed steps
    assert 0.0 <= model.step(emb, state) <= 1.0


def test_config_validation_names_the_field() -> None:
    with pytest.raises(ConfigError, match="`top_k` must be <= `n_experts`"):
        SARM2Config(top_k=11)
    with pytest.raises(ConfigError, match="`frame_stride` must be an integer >= 1; got 0"):
        SARM2Config(frame_stride=0)
    with pytest.raises(ConfigError, match="unknown keys \\['stride'\\]"):
        SARM2Config.from_dict({"stride": 3})


def test_fit_learns_time_linear_progress_on_held_out_episodes() -> None:
    """On features that carry a time signal, held-out MSE ends far below a constant predictor's 1/12."""
    from rewards.encoders import make_image_encoder
    from rewards.sarm2.model import SARM2RewardModel

    train = [f for k, task in enumerate(SIM_TASKS) for f in synthetic_features(task, 6, seed=k)]
    val = synthetic_features(TASK, 2, seed=7)
    model = SARM2RewardModel(
        SARM2Config.preset("tiny", steps=300, lr_value=3e-3, lr_stage=3e-3),
        encoder=make_image_encoder("tiny", device="cpu"),
        text_encoder="tiny-hash",
        device="cpu",
    )
    summary = model.fit(train, val, progress=False, eval_every=300)
    final = summary["final"]
    assert final["val_mse"] < 0.03, final
    assert final["val_primitive_acc"] > 0.8, final
    mse = np.mean([(model.predict_episode(v).progress - np.linspace(0, 1, v.length)) ** 2 for v in val])
    assert mse == pytest.approx(final["val_mse"], rel=1e-3, abs=1e-5)


def test_oracle_stage_gates_by_label(tiny_sarm2_checkpoint) -> None:
    from rewards.sarm2.model import SARM2RewardModel

    model = SARM2RewardModel.load(tiny_sarm2_checkpoint, device="cpu", gate_source="label")
    (feats,) = synthetic_features(TASK, 1, seed=2)
    out = model.predict_episode(feats)
    assert out.extras["group"].tolist() == [PRIMITIVE_TO_GROUP[p] for p in feats.primitive]
    assert "oracle stage" in model.label and "test only" in model.label


@pytest.mark.parametrize("name", ["sarm2_no_moe", "sarm2_no_stage", "sarm2_oracle_stage"])
def test_ablations_train_save_load_and_predict(name: str, tmp_path) -> None:
    from rewards.encoders import make_image_encoder
    from rewards.registry import make_reward_model, reward_model_class

    cls = reward_model_class(name)
    model = cls(
        SARM2Config.preset("tiny", steps=5),
        encoder=make_image_encoder("tiny", device="cpu"),
        text_encoder="tiny-hash",
        device="cpu",
    )
    train = synthetic_features(TASK, 3)
    model.fit(train, progress=False)
    model.save(tmp_path / name)
    loaded = make_reward_model(name, checkpoint=tmp_path / name, device="cpu")
    out = loaded.predict_episode(train[0])
    np.testing.assert_allclose(out.progress, model.predict_episode(train[0]).progress, atol=1e-6)
    if name == "sarm2_no_stage":
        assert out.primitive_probs is None and loaded.net.stage is None
    else:
        assert out.primitive_probs.shape == (train[0].length, NUM_PRIMITIVES)
    if name == "sarm2_no_moe":
        assert out.extras["expert_weights"].shape == (train[0].length, 1)
    # online: the oracle reads the expert's label from the env info, the others need nothing
    session = loaded.start(TASK)
    session.info = {"primitive": "place"}
    value = loaded.step_batch([session], train[0].embeddings[:1], train[0].state[:1])
    assert value.shape == (1,)
    if name == "sarm2_oracle_stage":
        assert session.last["group"] == PRIMITIVE_TO_GROUP[8]
        session.info = {}
        from sarm2_env.errors import DatasetError

        with pytest.raises(DatasetError, match="info\\['primitive'\\]"):
            loaded.step_batch([session], train[0].embeddings[:1], train[0].state[:1])
    with pytest.raises(CheckpointError, match="expected a 'sarm2' checkpoint"):
        make_reward_model("sarm2", checkpoint=tmp_path / name)


def test_adaptation_fits_annotated_rollout_targets(tiny_sarm2_checkpoint) -> None:
    """RM1 -> RM2: an annotated failed rollout (progress up, then back down) pulls predictions towards its curve,
    and the loaded checkpoint is left untouched."""
    from rewards.registry import make_reward_model
    from rewards.sarm2.objective import WindowBatcher

    model = make_reward_model("sarm2", checkpoint=tiny_sarm2_checkpoint, device="cpu")
    rollout = synthetic_features(SIM_TASKS[0], 1, seed=7)[0]
    t = np.linspace(0.0, 1.0, rollout.length, dtype=np.float32)
    curve = np.where(t < 0.5, t, 1.0 - t).astype(np.float32)  # got half way, then undid it
    before = float(np.mean((model.predict_episode(rollout).progress - curve) ** 2))
    demos = synthetic_features(SIM_TASKS[0], 2, seed=8)
    summary = model.adapt([rollout, *demos], [curve, None, None], steps=150, lr_scale=1.0, seed=0)
    after = float(np.mean((model.predict_episode(rollout).progress - curve) ** 2))
    assert summary["steps"] == 150 and model.training_summary["adapted"]["annotated"] == 1
    assert after < 0.6 * before, (before, after)
    # Targets: the annotated curve where given, time-linear elsewhere (checked on the batcher directly).
    batcher = WindowBatcher(
        [rollout, demos[0]], model.instruction_embeddings, model.config, torch.device("cpu"), [curve, None]
    )
    windows = causal_windows(np.array([10, 10]), model.config.n_history, model.config.frame_stride)
    got = batcher.gather(np.array([0, 1]), windows)["target"].numpy()
    np.testing.assert_allclose(got, [curve[10], 10 / (demos[0].length - 1)], rtol=1e-6)
    with pytest.raises(InputShapeError, match="targets"):
        model.adapt([rollout], [curve[:5]], steps=1)
    untrained = make_reward_model("sarm2", checkpoint=None, device="cpu", encoder="tiny", text_encoder="tiny-hash")
    with pytest.raises(CheckpointError, match="no weights"):
        untrained.adapt([rollout], [curve], steps=1)


def test_query_rate_episode_matches_the_full_one_at_stride_aligned_steps(tiny_sarm2_checkpoint) -> None:
    from tests.rewards.fixtures import at_query_rate

    model = load(tiny_sarm2_checkpoint)
    (full,) = synthetic_features(TASK, 1, length=37, seed=9)
    sparse = at_query_rate(full, 2)  # tiny preset: frame_stride 2, so windows of even steps read rendered frames
    out, exact = model.predict_episode(sparse), model.predict_episode(full)
    steps = sparse.query_indices
    assert out.query_indices.tolist() == steps.tolist() and out.progress.shape == (37,)
    assert out.primitive_probs.shape == (37, NUM_PRIMITIVES) and out.extras["expert_weights"].shape[0] == 37
    np.testing.assert_allclose(out.progress[steps[:-1]], exact.progress[steps[:-1]], atol=1e-5)
    np.testing.assert_allclose(out.primitive_probs[steps[:-1]], exact.primitive_probs[steps[:-1]], atol=1e-5)
    np.testing.assert_allclose(out.progress[5], (out.progress[4] + out.progress[6]) / 2, atol=1e-6)  # linear
    assert np.array_equal(out.primitive_probs[5], out.primitive_probs[4])  # held from the newest query step
