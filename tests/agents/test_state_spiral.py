"""SPIRAL on the state-policy stand-in (agents/state_spiral.py): query-rate rendering, shared round-1 rollouts,
relabelling per source, resume, bad configs. Tiny sizes on PullPlug (the shortest task)."""

from __future__ import annotations

import dataclasses
import json
import types

import numpy as np
import pytest

from agents.relabel import RelabelConfig
from agents.state_policy import StatePolicy, StatePolicyConfig, collect_state_demos
from agents.state_spiral import (
    StateRollout,
    StateSpiral,
    StateSpiralConfig,
    predicted_progress,
    rollout_episode,
)
from agents.updates import UpdateConfig
from sarm2_env.errors import ConfigError

TASK = "SARM2/PullPlug-v0"
TINY_ENCODER = {"name": "tiny", "image_size": 32, "key": "tiny-32"}


@pytest.fixture(scope="module")
def demos():
    return collect_state_demos(TASK, 6, seed=300_000, action_noise=0.02)


@pytest.fixture(scope="module")
def pi0(demos, tmp_path_factory):
    policy = StatePolicy(StatePolicyConfig(steps=300, hidden=128, layers=2), device="cpu")
    policy.fit(demos, seed=0)
    path = tmp_path_factory.mktemp("pi0") / "policy"
    policy.save(path)
    return policy, path


@pytest.fixture
def rollout_fits(monkeypatch):
    """The weighted (rollout) episodes every StatePolicy.fit of the test received, in order."""
    seen = []
    real_fit = StatePolicy.fit

    def fit(self, episodes, **kw):
        seen.extend(e for e in episodes if e.weight is not None)
        return real_fit(self, episodes, **kw)

    monkeypatch.setattr(StatePolicy, "fit", fit)
    return seen


def _config(**kw) -> StateSpiralConfig:
    base = dict(task=TASK, rounds=1, rollouts_per_round=3, eval_episodes=3, finetune_steps=30, workers=1)
    base["relabel"] = RelabelConfig(chunk=20)
    return StateSpiralConfig(**{**base, **kw})


def test_rollouts_render_and_encode_only_the_query_frames(pi0, tmp_path, monkeypatch):
    from tasks.base import YamTaskEnv

    rendered = []
    real = YamTaskEnv._render_pixels
    monkeypatch.setattr(YamTaskEnv, "_render_pixels", lambda self: rendered.append(self.elapsed_steps) or real(self))
    out = tmp_path / "seed_5.npz"
    rollout_episode(TASK, str(pi0[1]), 5, str(out), image_size=32, encoder=TINY_ENCODER, query_every=10)
    ro = StateRollout.from_file(out)
    expected = [t for t in range(ro.length) if t % 10 == 0 or t == ro.length - 1]
    assert ro.frames.tolist() == expected == rendered  # nothing else was rendered
    assert ro.embeddings.shape == (len(expected), 3, 64) and ro.action.shape == (ro.length - 1, 14)
    assert ro.state.shape[1] > 14 and ro.progress.shape == ro.success_flags.shape == (ro.length,)


def test_exploring_rollouts_record_the_executed_offsets(pi0, tmp_path):
    policy, path = pi0
    calm, noisy, again = (tmp_path / f"{name}.npz" for name in ("calm", "noisy", "again"))
    rollout_episode(TASK, str(path), 5, str(calm), image_size=32, encoder=None, query_every=10, max_steps=40)
    for out in (noisy, again):
        rollout_episode(
            TASK, str(path), 5, str(out), image_size=32, encoder=None, query_every=10, max_steps=40, explore_noise=0.05
        )
    a, b, c = (StateRollout.from_file(p) for p in (calm, noisy, again))
    np.testing.assert_array_equal(b.action, c.action)  # seeded by the rollout's seed
    # The first plan runs from the same states, so the recorded actions differ from the calm ones by one held offset.
    execute = policy.config.execute
    offset = b.action[:execute] - a.action[:execute]
    np.testing.assert_allclose(offset, np.broadcast_to(offset[0], offset.shape), atol=1e-6)
    assert np.all(offset[:, [6, 13]] == 0) and 0.01 < np.abs(offset[0]).max() < 0.3  # grippers are not perturbed
    with pytest.raises(ConfigError, match="explore_noise"):
        _config(explore_noise=-0.1)


def test_exploring_updates_clone_only_the_planning_frames(pi0, demos, tmp_path, rollout_fits):
    policy, _ = pi0
    seen = rollout_fits
    cfg = _config(explore_noise=0.02, max_episode_steps=60, update=UpdateConfig(rule="awr"))
    with StateSpiral(cfg, policy, demos, tmp_path) as spiral:
        spiral.run(["oracle"])
    execute = policy.config.execute
    assert seen and all(np.all(e.weight[np.arange(e.length) % execute != 0] == 0) for e in seen)
    assert all(np.all(e.weight[::execute] > 0) for e in seen)  # AWR weights are positive


@pytest.mark.parametrize("retrain", [False, True])
def test_retraining_refits_the_normalisation_and_clones_every_frame(pi0, demos, tmp_path, rollout_fits, retrain):
    from agents.state_policy import history_features

    policy, _ = pi0
    cfg = _config(retrain=retrain, explore_noise=0.02, max_episode_steps=40, update=UpdateConfig(rule="awr"))
    with StateSpiral(cfg, policy, demos, tmp_path) as spiral:
        spiral.run(["oracle"])
    new = StatePolicy.load(tmp_path / "oracle" / "round_01" / "policy", device="cpu")
    rollouts = list(rollout_fits)
    if retrain:  # a fresh policy: inputs standardised over the demos and the rollouts, every frame cloned
        x = np.concatenate([history_features(e.state, policy.config.history) for e in [*rollouts, *demos]])
        np.testing.assert_allclose(new.norm["x_mean"], x.mean(0), rtol=1e-5, atol=1e-5)
        assert all(np.all(e.weight[:-1] > 0) for e in rollouts)  # AWR weights are positive
    else:  # fine-tuned: the previous policy's normalisation, and only its planning frames
        np.testing.assert_array_equal(new.norm["x_mean"], policy.norm["x_mean"])
        assert all(np.all(e.weight[np.arange(e.length) % policy.config.execute != 0] == 0) for e in rollouts)


def test_the_stalled_tail_ends_where_progress_last_rose():
    from agents.state_spiral import _peak_frame

    assert _peak_frame(np.array([0.0, 0.2, 0.5, 0.5, 0.49, 0.3, 0.3])) == 2  # within 0.02 of the maximum
    assert _peak_frame(np.array([0.0, 0.4, 0.2, 0.41, 0.1])) == 1  # first frame near the maximum
    assert _peak_frame(np.zeros(5)) == 0  # never rose: nothing to clone (a failure under sparse success)
    assert _peak_frame(np.linspace(0, 1, 6)) == 5


def _sparse_update_with_one_success(cfg, policy, demos, tmp_path, fits: list) -> None:
    """Round 1 of ``cfg`` (40-step rollouts, which fail), then a sparse update after one rollout is made to
    succeed at its end; ``fits`` keeps only that update's weighted episodes."""
    with StateSpiral(cfg, policy, demos, tmp_path) as spiral:
        spiral.run(["oracle"])
        fits.clear()
        rollouts = [StateRollout.from_file(p) for p in sorted((tmp_path / "shared" / "round_01_rollouts").iterdir())]
        flags = np.zeros(rollouts[0].length, bool)
        flags[-3:] = True
        rollouts[0] = dataclasses.replace(rollouts[0], success_flags=flags)
        assert [ro.success for ro in rollouts] == [True, False, False, False]
        spiral.update("sparse", 1, rollouts, tmp_path / "pi0", tmp_path / "sparse_policy")


def test_dropping_stalled_tails_keeps_only_successes_under_sparse(pi0, demos, tmp_path, rollout_fits):
    policy, _ = pi0
    cfg = _config(drop_stalled_tail=True, max_episode_steps=40, rollouts_per_round=4)
    _sparse_update_with_one_success(cfg, policy, demos, tmp_path, rollout_fits)
    # the failures lost every frame, so were left out
    assert len(rollout_fits) == 1 and rollout_fits[0].success


def test_outcome_advantages_favour_the_rollout_that_ended_well(pi0, demos, tmp_path, rollout_fits):
    from sarm2_env.errors import UnknownNameError

    policy, _ = pi0
    cfg = _config(advantage="outcome", max_episode_steps=40, rollouts_per_round=4)
    _sparse_update_with_one_success(cfg, policy, demos, tmp_path, rollout_fits)
    good = [float(e.weight.mean()) for e in rollout_fits if e.success]
    bad = [float(e.weight.mean()) for e in rollout_fits if not e.success]
    # Chunk advantages would give the success's idle frames a middling weight (0.83 on average here). A failure
    # keeps one only where its value was clipped to 0, an advantage of exactly 0 on RA-BC's ramp.
    assert len(good) == 1 and good[0] > 0.9 and max(bad, default=0.0) < good[0]
    with pytest.raises(UnknownNameError, match="advantage"):
        _config(advantage="bogus")
    with pytest.raises(ConfigError, match="rollouts_per_round"):
        _config(advantage="outcome", rollouts_per_round=1)


def test_rollout_share_is_the_rollouts_part_of_every_batch():
    from agents.state_policy import StateEpisode
    from agents.state_spiral import _scale_to_share

    def episode(weight):
        t = len(weight)
        return StateEpisode(TASK, np.zeros((t, 20), np.float32), np.zeros((t, 14), np.float32), np.asarray(weight))

    rollouts = [episode([1.0, 0.0, 2.0]), episode([0.5, 0.5])]
    _scale_to_share(rollouts, demo_frames=300, share=0.25)
    total = sum(float(e.weight.sum()) for e in rollouts)
    assert total / (total + 300) == pytest.approx(0.25)
    np.testing.assert_allclose(rollouts[0].weight / rollouts[0].weight[0], [1.0, 0.0, 2.0])  # relative weights kept
    for bad in (0.0, 1.0, 1.5):
        with pytest.raises(ConfigError, match="rollout_share"):
            _config(rollout_share=bad)


def test_sources_read_progress_as_documented():
    t = 25
    ro = StateRollout(
        TASK,
        0,
        np.zeros((t, 27), np.float32),
        np.zeros((t - 1, 14), np.float32),
        np.linspace(0, 0.8, t).astype(np.float32),
        np.arange(t) >= 20,
        np.array([0, 10, 20, 24]),
        np.arange(4, dtype=np.float16)[:, None, None] * np.ones((4, 3, 2), np.float16),
    )
    np.testing.assert_allclose(predicted_progress(ro, "oracle"), ro.progress)
    np.testing.assert_array_equal(predicted_progress(ro, "sparse"), (np.arange(t) >= 20).astype(float))
    seen = {}

    def predict(features):
        seen["emb"] = features.embeddings
        return types.SimpleNamespace(progress=np.full(features.length, 0.5, np.float32))

    model = types.SimpleNamespace(predict_episode=predict)
    np.testing.assert_allclose(predicted_progress(ro, "sarm2", model), 0.5)
    held = seen["emb"][:, 0, 0]  # each frame holds the latest rendered frame's embedding
    np.testing.assert_array_equal(held, [0] * 10 + [1] * 10 + [2] * 4 + [3])
    with pytest.raises(ConfigError, match="needs a reward model"):
        predicted_progress(ro, "sarm2")


def test_run_shares_round_one_and_resumes(pi0, demos, tmp_path):
    policy, _ = pi0
    cfg = _config()
    with StateSpiral(cfg, policy, demos, tmp_path) as spiral:
        curves = spiral.run(["oracle", "sparse"])
    assert set(curves) == {"oracle", "sparse"}
    for curve in curves.values():
        assert [c["round"] for c in curve] == [0, 1] and all(c["episodes"] == 3 for c in curve)
        assert curve[0]["successes"] == curves["oracle"][0]["successes"]  # the same pi_0 evaluation
        assert curve[1]["update"]["shared_rollouts"] is True and curve[1]["update"]["rollouts"] == 3
    shared = sorted(p.name for p in (tmp_path / "shared" / "round_01_rollouts").iterdir())
    assert shared == ["seed_1010000.npz", "seed_1010001.npz", "seed_1010002.npz"]
    assert not (tmp_path / "sparse" / "round_01" / "rollouts").exists()  # relabelled, not recollected
    assert curves["oracle"][1]["update"]["reward_agreement"]["final_mae"] == pytest.approx(0.0)
    results = json.loads((tmp_path / "results.json").read_text())
    assert set(results["curves"]) == {"oracle", "sparse"}
    # Rerun: everything is on disk, nothing is collected, trained or evaluated again.
    before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.is_file() and p.name != "results.json"}
    with StateSpiral(cfg, policy, demos, tmp_path) as spiral:
        again = spiral.run(["oracle", "sparse"])
    assert again["oracle"][1]["successes"] == curves["oracle"][1]["successes"]
    changed = [p for p, t in before.items() if p.stat().st_mtime_ns != t and p.name != "config.json"]
    assert changed == []
    with pytest.raises(ConfigError, match="another config"):
        StateSpiral(_config(rollouts_per_round=4), policy, demos, tmp_path)


def test_bad_configs_are_refused(pi0, demos, tmp_path):
    policy, _ = pi0
    with pytest.raises(ConfigError, match="explore_noise"):
        _config(update=UpdateConfig(rule="residual_ac"))
    with pytest.raises(ConfigError, match="retrain"):
        _config(update=UpdateConfig(rule="recap"))
    with pytest.raises(ConfigError, match="rollouts_per_round"):
        _config(rollouts_per_round=0)
    with StateSpiral(_config(), policy, demos, tmp_path / "a") as spiral, pytest.raises(ConfigError, match="sarm2"):
        spiral.run(["sarm2"])
    spec = types.SimpleNamespace(name="tiny", image_size=64, key="tiny-64")
    model = types.SimpleNamespace(encoder_spec=spec)
    with pytest.raises(ConfigError, match="image_size"):
        StateSpiral(_config(image_size=32), policy, demos, tmp_path / "b", reward_models={"m": model})


def test_a_damaged_rollout_file_is_a_dataset_error(tmp_path):
    from sarm2_env.errors import DatasetError

    bad = tmp_path / "seed_1.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(DatasetError, match="seed_1.npz.*delete it and rerun"):
        StateRollout.from_file(bad)


def test_aggregate_updates_on_every_round_so_far(pi0, demos, tmp_path):
    policy, _ = pi0
    cfg = _config(rounds=2, aggregate=True, finetune_lr=3e-4)
    with StateSpiral(cfg, policy, demos, tmp_path) as spiral:
        curve = spiral.run(["oracle"])["oracle"]
    assert [c["update"]["replay_rollouts"] for c in curve[1:]] == [3, 6]  # round 2 also learns from round 1's
    assert [c["update"]["rollouts"] for c in curve[1:]] == [3, 3]
    with pytest.raises(ConfigError, match="finetune_lr"):
        _config(finetune_lr=0.0)


def test_rm1_adapts_once_on_the_shared_round_and_rm2_relabels_later_rounds(
    pi0, demos, tmp_path, tiny_sarm2_checkpoint, monkeypatch
):
    import agents.state_spiral as state_spiral
    from rewards.registry import make_reward_model

    policy, _ = pi0
    rm = make_reward_model("sarm2", checkpoint=tiny_sarm2_checkpoint, device="cpu")
    adapted, relabelled = [], []
    real_adapt, real_predicted = type(rm).adapt, state_spiral.predicted_progress
    monkeypatch.setattr(
        type(rm),
        "adapt",
        lambda self, eps, *a, **k: adapted.append([e.episode_id for e in eps]) or real_adapt(self, eps, *a, **k),
    )
    monkeypatch.setattr(
        state_spiral,
        "predicted_progress",
        lambda ro, source, model=None: relabelled.append((ro.seed, model is rm)) or real_predicted(ro, source, model),
    )
    cfg = _config(rounds=2, image_size=32, adapt_reward_model=True, adapt_steps=3, max_episode_steps=40)
    with StateSpiral(cfg, policy, demos, tmp_path, reward_models={"sarm2": rm}) as spiral:
        curve = spiral.run(["sarm2"])["sarm2"]
    round1, round2 = list(cfg.rollout_seeds(1)), list(cfg.rollout_seeds(2))
    assert adapted == [[f"{TASK}-{s}" for s in round1]]  # once, on round 1's shared rollouts
    # Round 1 relabels with RM1; round 2 relabels with RM2, and RM1 scores round 2's rollouts for comparison.
    assert relabelled == [(s, True) for s in round1] + [(s, False) for s in round2] + [(s, True) for s in round2]
    first, second = curve[1]["update"], curve[2]["update"]
    assert "reward_model" not in first and second["reward_model"] == "RM2"
    assert second["adaptation"]["rollouts"] == 3 and second["reward_agreement_rm1"]["rollouts"] == 3
    assert (tmp_path / "sarm2" / "reward_model_adapted" / "config.json").exists()
    # A model that cannot adapt is refused before anything is rolled out.
    fixed = types.SimpleNamespace(encoder_spec=None, adaptable=False)
    with StateSpiral(cfg, policy, demos, tmp_path / "b", reward_models={"m": fixed}) as spiral:
        with pytest.raises(ConfigError, match="'m' cannot be adapted"):
            spiral.run(["m"])
    assert not (tmp_path / "b" / "shared").exists()
    with pytest.raises(ConfigError, match="adapt_lr_scale"):
        _config(adapt_lr_scale=0.0)


def test_more_evaluation_episodes_extend_a_finished_run(pi0, demos, tmp_path):
    policy, _ = pi0
    with StateSpiral(_config(eval_episodes=2, max_episode_steps=40), policy, demos, tmp_path) as spiral:
        before = spiral.run(["oracle"])["oracle"]
    cfg = _config(eval_episodes=3, max_episode_steps=40)
    with StateSpiral(cfg, policy, demos, tmp_path) as spiral:  # the same run, more evaluation seeds
        after = spiral.run(["oracle"])["oracle"]
    for old, new in zip(before, after):
        assert [e["seed"] for e in new["per_episode"]] == cfg.eval_seeds()
        assert new["per_episode"][:2] == old["per_episode"]  # kept, not evaluated again
        assert new["episodes"] == 3 and new["eval_seconds"] > old["eval_seconds"]
    saved = tmp_path / "oracle" / "round_01" / "eval.json"
    stamp = saved.stat().st_mtime_ns
    with StateSpiral(_config(eval_episodes=2, max_episode_steps=40), policy, demos, tmp_path) as spiral:
        fewer = spiral.run(["oracle"])["oracle"]
    assert fewer[1]["per_episode"] == before[1]["per_episode"] and saved.stat().st_mtime_ns == stamp


def _oracle_update(spiral, tmp_path, finals: list[float]) -> dict:
    """Round 1's stored rollouts with their simulator progress rewritten to ramps ending at ``finals`` (1.0: a
    success; below: a failure), written back, then round 1's oracle update on them; returns its statistics."""
    root = tmp_path / "shared" / "round_01_rollouts"
    rollouts = [StateRollout.from_file(p) for p in sorted(root.iterdir())]
    for i, (ro, final) in enumerate(zip(rollouts, finals)):
        flags = np.zeros(ro.length, bool)
        flags[-1] = final >= 1.0
        rollouts[i] = dataclasses.replace(
            ro, progress=np.linspace(0.0, final, ro.length).astype(ro.progress.dtype), success_flags=flags
        )
        (root / f"seed_{ro.seed}.npz").write_bytes(rollouts[i].to_bytes())
    return spiral.update("oracle", 1, rollouts, tmp_path / "pi0", tmp_path / "gated_policy")


@pytest.mark.parametrize("gated", [False, True])
def test_the_success_gate_clones_only_judged_successes(pi0, demos, tmp_path, rollout_fits, gated):
    policy, _ = pi0
    cfg = _config(advantage="outcome", max_episode_steps=40, rollouts_per_round=6, success_gate=gated)
    with StateSpiral(cfg, policy, demos, tmp_path) as spiral:
        spiral.run(["sparse"])
        rollout_fits.clear()
        stats = _oracle_update(spiral, tmp_path, [1.0, 0.85, 0.1, 0.1, 0.1, 0.1])
        # Round 1's finals came from the update's own relabelling; without round 1 in the replay (a later round,
        # not aggregating) they are relabelled from the stored rollouts, to the same threshold.
        spiral.gates.clear()
        from_disk = spiral._gate_threshold("oracle", 2, None, [], np.zeros(0)) if gated else None
    cloned = sorted(round(float(e.weight.sum()) > 0) for e in rollout_fits)
    if not gated:  # the near miss ended above its states' promise: outcome advantages clone it
        assert any(not e.success for e in rollout_fits) and "success_gate" not in stats
        return
    # Calibrated on round 1's annotated rollouts: midway between the failure at 0.85 and the success at 1.0.
    assert len(rollout_fits) == 1 and rollout_fits[0].success and cloned == [1]
    gate = stats["success_gate"]
    assert gate["threshold"] == pytest.approx(0.925) and gate["calibration"]["calibrated"]
    assert from_disk is not None and from_disk.to_dict() == gate["calibration"]
    assert (gate["judged_successes"], gate["true_successes"], gate["precision"]) == (1, 1, 1.0)
    with pytest.raises(ConfigError, match="success_threshold"):
        _config(success_threshold=1.5)


def test_train_seeds_add_members_evaluated_on_the_same_seeds(pi0, demos, tmp_path, monkeypatch):
    policy, _ = pi0
    with StateSpiral(_config(max_episode_steps=40), policy, demos, tmp_path) as spiral:
        single = spiral.run(["oracle"])["oracle"]
    assert all("members" not in c for c in single)  # one seed: the records are as before
    lineage = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.is_file() and p.suffix != ".json"}
    relabels = []
    real_relabel = StateSpiral._relabel
    monkeypatch.setattr(StateSpiral, "_relabel", lambda self, *a: relabels.append(a[:2]) or real_relabel(self, *a))
    cfg = _config(max_episode_steps=40, train_seeds=3)
    with StateSpiral(cfg, policy, demos, tmp_path) as spiral:  # the same run, two more seeds per policy
        curve = spiral.run(["oracle"])["oracle"]
    assert relabels == [("oracle", 1)]  # members 1 and 2 of round 1 trained from one relabelling
    assert all(p.stat().st_mtime_ns == t for p, t in lineage.items())  # member 0 kept, not retrained
    for old, new in zip(single, curve):
        assert [m["member"] for m in new["members"]] == [0, 1, 2]
        assert new["members"][0]["per_episode"] == old["per_episode"]
        for member in new["members"]:
            assert [e["seed"] for e in member["per_episode"]] == cfg.eval_seeds()
    rdir = tmp_path / "oracle" / "round_01"
    assert json.loads((rdir / "update_seed2.json").read_text())["member"] == 2
    weights = [StatePolicy.load(rdir / name, device="cpu").net[0].weight for name in ("policy", "policy_seed1")]
    assert not np.allclose(weights[0].detach().numpy(), weights[1].detach().numpy())  # another initialisation
    assert (tmp_path / "pi0_seed2" / "config.json").exists() and (
        tmp_path / "shared" / "round_00" / "eval_seed2.json"
    ).exists()


def test_recap_clones_every_kept_frame_with_its_indicator(pi0, demos, tmp_path, rollout_fits):
    policy, _ = pi0
    update = UpdateConfig(rule="recap", positive_fraction=0.5)
    cfg = _config(retrain=True, advantage="outcome", max_episode_steps=40, update=update)
    with StateSpiral(cfg, policy, demos, tmp_path) as spiral:
        spiral.run(["oracle"])
    new = StatePolicy.load(tmp_path / "oracle" / "round_01" / "policy", device="cpu")
    assert new.config.condition and not policy.config.condition  # pi_0 stays unconditioned
    rollouts = list(rollout_fits)
    assert rollouts and all(np.all(e.weight[:-1] == 1.0) for e in rollouts)  # RECAP does not re-weight
    labels = np.concatenate([e.condition for e in rollouts])
    assert set(np.unique(labels)) == {0, 1}
    record = json.loads((tmp_path / "oracle" / "round_01" / "update.json").read_text())
    assert record["rule"] == "recap" and record["positive_fraction"] == pytest.approx(labels.mean(), abs=0.05)
