"""The BC policy, rollout collection and the SPIRAL loop (agents/policy.py, rollouts.py, spiral.py), on tiny
configs: random-init ``tiny`` image encoder, hashed instructions, 32 px, short episodes."""

from __future__ import annotations

import functools
import json

import gymnasium as gym
import numpy as np
import pytest
import torch

from agents.policy import NEGATIVE, POSITIVE, BCPolicy, BCPolicyConfig, Policy, PolicyEpisode, demos_from_dataset
from agents.rollouts import LocalExecutor, Rollout, RolloutStore, make_executor
from agents.spiral import SPIRAL, SpiralConfig, reward_agreement, wilson_interval
from agents.updates import UpdateConfig
from sarm2_env.constants import CAMERAS
from sarm2_env.dataset import EpisodeDataset
from sarm2_env.errors import (
    CheckpointError,
    ConfigError,
    DatasetError,
    InputShapeError,
    UnknownNameError,
    WorkerTimeoutError,
)
from sarm2_env.make import make_env as sarm2_make_env
from tasks.collect import CollectConfig, collect

TASK = "SARM2/CleanWhiteboard-v0"
POLICY = BCPolicyConfig(encoder="tiny", text_encoder="tiny-hash", hidden=64, layers=2, batch_size=32, steps=30)


#: A short reward-wrapped episode (ground-truth oracle reward: no checkpoint needed). A partial of a library
#: function pickles by reference, so sub-process and Ray workers can rebuild it.
make_env = functools.partial(sarm2_make_env, TASK, reward_model="oracle", image_size=32, max_episode_steps=25)


@pytest.fixture(scope="module")
def demos(tmp_path_factory) -> list[PolicyEpisode]:
    out = tmp_path_factory.mktemp("demos")
    collect(CollectConfig(tasks=(TASK,), episodes=2, image_size=32), str(out), progress_bar=False)
    encoder = BCPolicy(POLICY).image_encoder
    episodes = demos_from_dataset(out, encoder)
    raw = EpisodeDataset(out)[0]
    np.testing.assert_array_equal(episodes[0].action, raw.action)
    np.testing.assert_allclose(episodes[0].embeddings[:, 0], encoder.encode(raw.frames[CAMERAS[0]]))
    return episodes


@pytest.fixture(scope="module")
def policy(demos) -> BCPolicy:
    pol = BCPolicy(POLICY)
    pol.fit(demos, seed=0)
    return pol


# ---------------------------------------------------------------------- policy
def test_bc_policy_fits_acts_in_chunks_and_round_trips(policy, demos, tmp_path):
    assert isinstance(policy, Policy)
    assert policy.training_summary["samples"] == sum(d.length for d in demos)
    env = gym.make(TASK, image_size=32)
    obs, info = env.reset(seed=0)
    policy.reset([info["task"]])
    actions = []
    for _ in range(POLICY.execute + 1):
        a = policy.act(obs)
        assert a.shape == (1, 14) and a.dtype == np.float32 and np.all(np.isfinite(a))
        actions.append(a[0])
        obs, *_ = env.step(a[0])
    env.close()
    # Loading gives the same chunk prediction.
    policy.save(tmp_path / "pol")
    loaded = BCPolicy.load(tmp_path / "pol")
    d = demos[0]
    np.testing.assert_allclose(
        loaded.predict_chunks(d.embeddings[:3], d.state[:3], [d.instruction] * 3),
        policy.predict_chunks(d.embeddings[:3], d.state[:3], [d.instruction] * 3),
        rtol=1e-5,
        atol=1e-5,
    )
    again = BCPolicy.from_state_dict(policy.state_dict())
    np.testing.assert_allclose(
        again.predict_chunks(d.embeddings[:1], d.state[:1], [d.instruction]),
        policy.predict_chunks(d.embeddings[:1], d.state[:1], [d.instruction]),
        rtol=1e-5,
        atol=1e-5,
    )


@pytest.mark.parametrize("targets", ["delta", "absolute"])
def test_bc_targets_map_to_and_from_absolute_joint_targets(demos, targets):
    """Either head parametrisation round-trips absolute joint targets, and only ``delta`` depends on the state:
    an absolute head sends a drifted joint back to the demos' target (the reason it exists)."""
    pol = BCPolicy(POLICY.replace(targets=targets))
    pol.fit(demos, seed=0, steps=5)
    d = demos[0]
    ahead = np.minimum(np.arange(4)[:, None] + np.arange(POLICY.chunk)[None], d.length - 1)
    actions, state = d.action[ahead].astype(np.float32), d.state[:4].astype(np.float32)
    normalised = pol.normalise_chunks(actions, state)
    assert normalised.shape == actions.shape
    arm = [j for j in range(14) if j not in (6, 13)]  # grippers are clipped to [0, 1] on the way back
    np.testing.assert_allclose(pol.chunks_from_normalised(normalised, state)[..., arm], actions[..., arm], atol=1e-5)
    drifted = state + 0.2
    moved = pol.chunks_from_normalised(normalised, drifted)[..., arm] - actions[..., arm]
    np.testing.assert_allclose(moved, 0.2 if targets == "delta" else 0.0, atol=1e-5)
    with pytest.raises(ConfigError, match="targets"):
        POLICY.replace(targets="velocity")


def test_bc_weights_steer_the_fit(demos):
    """A demo with weight 0 is not learned from: zero weights everywhere is an error, not a silent no-op."""
    zero = [PolicyEpisode(d.instruction, d.embeddings, d.state, d.action, weight=np.zeros(d.length)) for d in demos]
    with pytest.raises(ConfigError, match="weight 0"):
        BCPolicy(POLICY).fit(zero)


def test_policy_bad_input(policy, demos):
    with pytest.raises(CheckpointError, match="untrained"):
        BCPolicy(POLICY).predict_chunks(demos[0].embeddings[:1], demos[0].state[:1], ["x"])
    with pytest.raises(InputShapeError, match="agent_pos"):
        policy.act({"pixels": {}})
    with pytest.raises(InputShapeError, match="state"):
        PolicyEpisode("x", demos[0].embeddings, demos[0].state[:, :7], demos[0].action)
    with pytest.raises(ConfigError, match="execute"):
        BCPolicyConfig(chunk=4, execute=5)
    with pytest.raises(ConfigError, match="BC policy: unknown option"):
        POLICY.replace(hiden=3)
    policy.reset(["a", "b"])
    with pytest.raises(InputShapeError, match="reset for 2 envs"):
        policy.act_from_embeddings(demos[0].embeddings[:1], demos[0].state[:1])


# ---------------------------------------------------------------------- rollouts
def test_local_vector_rollouts_are_seeded_and_stored_atomically(policy, tmp_path):
    store = RolloutStore(tmp_path / "r")
    # Two sub-process envs for three episodes: one env runs a second episode, the other idles.
    n = LocalExecutor(num_envs=2, asynchronous=True).collect(make_env, policy, [5, 6, 7], store.add)
    assert n == 3 and len(store) == 3
    rollouts = sorted(store.load(), key=lambda r: r.seed)
    assert [r.seed for r in rollouts] == [5, 6, 7]
    for r in rollouts:
        assert r.task_id == TASK and r.length == 26  # 25 steps + the reset frame
        assert r.embeddings.shape[1] == len(CAMERAS) and not np.isnan(r.rm_progress).any()
        np.testing.assert_allclose(r.rm_progress, r.progress, atol=1e-6)  # the oracle reads ground truth
    # Same seed, same policy: the same episode (up to float rounding of a batch of 1 vs 2 in the head).
    again: list[Rollout] = []
    LocalExecutor(num_envs=1, asynchronous=False).collect(make_env, policy, [6], again.append)
    np.testing.assert_allclose(again[0].action, rollouts[1].action, atol=1e-3)
    np.testing.assert_array_equal(again[0].state[0], rollouts[1].state[0])
    # A truncated file is reported, not read as a rollout.
    store.files()[0].write_bytes(b"PK\x03\x04broken")
    with pytest.raises(DatasetError, match="not a readable rollout"):
        store.load()


def test_rollouts_need_sarm2_observations(policy):
    with pytest.raises(InputShapeError, match="pixels"):
        LocalExecutor(num_envs=1, asynchronous=False).collect(
            lambda: gym.make("CartPole-v1"), policy, [0], lambda r: None
        )
    with pytest.raises(UnknownNameError, match="executor"):
        make_executor("slurm")


# ---------------------------------------------------------------------- SPIRAL
def _config(**kw) -> SpiralConfig:
    base = dict(rounds=1, rollouts_per_round=3, eval_episodes=2, bc_steps=20, finetune_steps=10, num_envs=1)
    return SpiralConfig(**{**base, **kw})


@pytest.mark.parametrize("rule", ["rabc", "awr", "recap"])
def test_spiral_round_trip_and_resume(demos, tmp_path, rule, monkeypatch):
    cfg = _config(update=UpdateConfig(rule=rule))
    workdir = tmp_path / rule
    results = SPIRAL(make_env, demos, workdir, cfg, POLICY).run()
    assert [r.round for r in results] == [0, 1]
    assert all(r.episodes == 2 and 0 <= r.successes <= 2 for r in results)
    update = json.loads((workdir / "round_01" / "update.json").read_text())
    assert update["rule"] == rule and update["rollouts"] == 3
    assert len(RolloutStore(workdir / "round_01" / "rollouts")) == 3
    saved = json.loads((workdir / "results.json").read_text())
    assert saved[1]["round"] == 1 and len(saved[1]["ci95"]) == 2
    # Resuming redoes nothing: no rollout collection and no training.
    monkeypatch.setattr(BCPolicy, "fit", lambda *a, **k: pytest.fail("retrained on resume"))
    monkeypatch.setattr(LocalExecutor, "collect", lambda *a, **k: pytest.fail("recollected on resume"))
    again = SPIRAL(make_env, demos, workdir, cfg, POLICY).run()
    assert [r.to_dict() for r in again] == [r.to_dict() for r in results]


def test_interrupted_round_keeps_its_rollouts(demos, tmp_path, monkeypatch):
    cfg = _config()
    workdir = tmp_path / "run"
    calls = {"n": 0}
    real_add = RolloutStore.add

    def flaky_add(self, rollout):
        real_add(self, rollout)
        if "round_01" in str(self.root) and self.root.name == "rollouts":
            calls["n"] += 1
            if calls["n"] == 2:
                raise KeyboardInterrupt  # the user stops the run mid-round

    monkeypatch.setattr(RolloutStore, "add", flaky_add)
    with pytest.raises(KeyboardInterrupt):
        SPIRAL(make_env, demos, workdir, cfg, POLICY).run()
    monkeypatch.setattr(RolloutStore, "add", real_add)
    kept = RolloutStore(workdir / "round_01" / "rollouts").seeds()
    assert len(kept) == 2
    seen = []
    real_collect = LocalExecutor.collect

    def spy(self, make, pol, seeds, on):
        seen.append(list(seeds))
        return real_collect(self, make, pol, seeds, on)

    monkeypatch.setattr(LocalExecutor, "collect", spy)
    SPIRAL(make_env, demos, workdir, cfg, POLICY).run()
    assert seen[0] == [s for s in cfg.rollout_seeds(1) if (TASK, s) not in kept]  # only the missing one
    # The round's timing says it did not collect everything itself (benchmarks leave it out of round times).
    assert json.loads((workdir / "round_01" / "update.json").read_text())["resumed_rollouts"] == 2


def test_spiral_bad_input(demos, tmp_path):
    SPIRAL(make_env, demos, tmp_path, _config(), POLICY)
    with pytest.raises(ConfigError, match="rollouts_per_round"):
        SPIRAL(make_env, demos, tmp_path, _config(rollouts_per_round=4), POLICY)
    # A run started before an option existed resumes (the option counts as its default), and more rounds
    # extend a run.
    saved = json.loads((tmp_path / "config.json").read_text())
    del saved["policy"]["targets"], saved["spiral"]["adapt_steps"]
    (tmp_path / "config.json").write_text(json.dumps(saved))
    SPIRAL(make_env, demos, tmp_path, _config(rounds=3), POLICY)
    assert json.loads((tmp_path / "config.json").read_text())["spiral"]["rounds"] == 3
    with pytest.raises(ConfigError, match="`policy.targets`: 'delta' -> 'absolute'"):
        SPIRAL(make_env, demos, tmp_path, _config(rounds=3), POLICY.replace(targets="absolute"))
    with pytest.raises(ConfigError, match="demonstrations"):
        SPIRAL(make_env, [], tmp_path / "x", _config(), POLICY)
    with pytest.raises(ConfigError, match="SPIRAL: unknown option"):
        SpiralConfig.from_dict({"round": 3})
    unwrapped = tmp_path / "unwrapped"
    with pytest.raises(Exception, match="sarm2/progress"):
        SPIRAL(lambda: gym.make(TASK, image_size=32, max_episode_steps=10), demos, unwrapped, _config(), POLICY).run()


def test_reward_agreement_scores_a_model_against_the_physics():
    def rollout(progress) -> Rollout:
        t = len(progress)
        z = np.zeros((t, 14), np.float32)
        return Rollout(TASK, "x", 0, np.zeros((t, 3, 4), np.float16), z, z, np.full(t, np.nan), progress, np.zeros(t))

    rollouts = [rollout(np.linspace(0, f, 5)) for f in (0.2, 0.5, 0.9)]
    exact = reward_agreement([ro.progress for ro in rollouts], rollouts)
    assert exact["frame_corr"] == pytest.approx(1.0) and exact["final_corr"] == pytest.approx(1.0)
    assert exact["final_mae"] == pytest.approx(0.0) and exact["mean_true_final"] == pytest.approx(1.6 / 3)
    reversed_ = reward_agreement([np.linspace(0, 1.1 - f, 5) for f in (0.2, 0.5, 0.9)], rollouts)
    assert reversed_["final_corr"] == pytest.approx(-1.0)  # a model that ranks the rollouts backwards
    flat = reward_agreement([np.full(5, 0.5) for _ in rollouts], rollouts)
    assert flat["frame_corr"] is None and flat["final_corr"] is None  # undefined, not 0


def test_wilson_interval():
    lo, hi = wilson_interval(25, 50)
    assert lo == pytest.approx(0.366, abs=1e-3) and hi == pytest.approx(0.634, abs=1e-3)
    assert wilson_interval(0, 10)[0] == 0.0 and wilson_interval(10, 10)[1] == 1.0


def test_recap_policies_get_the_condition_input(demos, tmp_path):
    spiral = SPIRAL(make_env, demos, tmp_path, _config(update=UpdateConfig(rule="recap")), POLICY)
    assert spiral.policy_config.condition is True
    pol = BCPolicy(spiral.policy_config.replace(steps=5))
    pol.fit(demos, seed=0)
    d = demos[0]
    args = (d.embeddings[:4], d.state[:4], [d.instruction] * 4)
    positive = pol.predict_chunks(*args, condition=POSITIVE)
    assert not np.allclose(positive, pol.predict_chunks(*args, condition=NEGATIVE))  # the indicator is an input
    np.testing.assert_array_equal(pol.predict_chunks(*args), positive)  # and acting asks for "advantage positive"


@pytest.fixture(scope="module")
def ray_two_cpus():
    """A local Ray instance with exactly 2 CPUs (as on the CI machine), shared by the Ray tests."""
    ray = pytest.importorskip("ray", reason="the Ray executor is an optional extra: pip install 'sarm2[ray]'")
    if ray.is_initialized():
        ray.shutdown()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.mark.parametrize("workers", [1, 3])  # 3 workers on 2 CPUs: the third is never placed and must not block
def test_ray_executor_finishes_whatever_the_worker_cpu_ratio(ray_two_cpus, policy, tmp_path, workers):
    seeds = [5, 6, 7]
    store = RolloutStore(tmp_path / "ray")
    n = make_executor("ray", num_workers=workers, timeout_s=120).collect(make_env, policy, seeds, store.add)
    assert n == 3 and sorted(s for _, s in store.seeds()) == seeds  # stored as they arrived
    local: list[Rollout] = []
    LocalExecutor(num_envs=1, asynchronous=False).collect(make_env, policy, seeds, local.append)
    for ref in local:
        got = next(r for r in store if r.seed == ref.seed)
        np.testing.assert_array_equal(got.state[0], ref.state[0])  # same seed, same start
        np.testing.assert_allclose(got.action, ref.action, atol=1e-3)  # same policy
        np.testing.assert_allclose(got.progress, ref.progress, atol=1e-3)


def test_ray_executor_names_a_stuck_worker(ray_two_cpus, policy):
    executor = make_executor("ray", num_workers=1, timeout_s=0.05)  # a 400-step episode takes seconds
    long_episode = functools.partial(make_env, max_episode_steps=400)
    with pytest.raises(WorkerTimeoutError, match=r"worker 0 \(node .*, pid \d+\) returned no rollout for seed 5"):
        executor.collect(long_episode, policy, [5], lambda ro: None)
    unplaceable = make_executor("ray", num_workers=1, num_cpus_per_worker=3, start_timeout_s=1)  # 2 CPUs exist
    with pytest.raises(WorkerTimeoutError, match="no Ray rollout worker started .* no free CPU"):
        unplaceable.collect(make_env, policy, [5], lambda ro: None)
    for bad in ({"timeout_s": 0}, {"start_timeout_s": -1}, {"num_cpus_per_worker": -1}, {"num_workers": 0}):
        with pytest.raises(ConfigError, match=next(iter(bad))):
            make_executor("ray", **bad)


def test_spiral_end_to_end_on_ray(ray_two_cpus, demos, tmp_path):
    cfg = _config(executor="ray", num_envs=3, update=UpdateConfig(rule="awr"))
    results = SPIRAL(make_env, demos, tmp_path, cfg, POLICY).run()
    assert [r.round for r in results] == [0, 1]
    rollouts = RolloutStore(tmp_path / "round_01" / "rollouts").load()
    assert len(rollouts) == cfg.rollouts_per_round and all(ro.length > 1 for ro in rollouts)
    assert all(np.isfinite(ro.rm_progress).all() for ro in rollouts)  # scored by the wrapper inside the actors


def test_reward_model_adaptation_once_then_relabel_with_rm2(demos, tmp_path, tiny_sarm2_checkpoint, monkeypatch):
    from rewards.registry import make_reward_model

    rm = make_reward_model("sarm2", checkpoint=tiny_sarm2_checkpoint, device="cpu")
    env_fn = functools.partial(
        sarm2_make_env, TASK, reward_model=str(tiny_sarm2_checkpoint), image_size=32, max_episode_steps=25
    )
    cfg = _config(rounds=2, adapt_reward_model=True, adapt_steps=5, update=UpdateConfig(rule="awr"))
    rm1_weights = {k: v.clone() for k, v in rm.net.state_dict().items()}
    adapted = []
    real_adapt = type(rm).adapt
    monkeypatch.setattr(type(rm), "adapt", lambda self, *a, **k: adapted.append(len(a[0])) or real_adapt(self, *a, **k))
    results = SPIRAL(env_fn, demos, tmp_path, cfg, POLICY, reward_model=rm).run()
    assert [r.round for r in results] == [0, 1, 2]
    assert adapted == [cfg.rollouts_per_round]  # once, on round 1's rollouts
    update1 = json.loads((tmp_path / "round_01" / "update.json").read_text())
    assert update1["adaptation"] == {"rollouts": 3, "auto_annotated": 3, "human_annotated": 0}
    assert (tmp_path / "reward_model_adapted" / "config.json").exists()
    # RM2 is a copy: the model passed in stays RM1, and round 2 reports how each scores its rollouts.
    assert all(torch.equal(v, rm.net.state_dict()[k]) for k, v in rm1_weights.items())
    update2 = json.loads((tmp_path / "round_02" / "update.json").read_text())
    assert "reward_agreement_rm1" not in update1
    for key in ("reward_agreement", "reward_agreement_rm1"):
        assert update2[key]["rollouts"] == cfg.rollouts_per_round
        assert set(update2[key]) >= {"frame_corr", "final_corr", "final_mae", "mean_true_final"}
    # Without a reward model to adapt, or with another encoder, the config is refused up front.
    with pytest.raises(ConfigError, match="reward_model"):
        SPIRAL(env_fn, demos, tmp_path / "b", cfg, POLICY)
    with pytest.raises(ConfigError, match="image encoder"):
        SPIRAL(env_fn, demos, tmp_path / "c", cfg, POLICY.replace(encoder="efficientnet-lite0"), reward_model=rm)


def test_offline_relabelling_needs_no_reward_wrapper(demos, tmp_path, tiny_sarm2_checkpoint, monkeypatch):
    from rewards.registry import make_reward_model

    rm = make_reward_model("sarm2", checkpoint=tiny_sarm2_checkpoint, device="cpu")
    plain = functools.partial(sarm2_make_env, TASK, image_size=32, max_episode_steps=25)  # no reward wrapper
    cfg = _config(rewards="offline", update=UpdateConfig(rule="awr"))
    relabelled = []
    real_predict = type(rm).predict_episode

    def spy_predict(self, ep, *args, **kwargs):
        relabelled.append(ep.episode_id)
        return real_predict(self, ep, *args, **kwargs)

    monkeypatch.setattr(type(rm), "predict_episode", spy_predict)
    envs_used = []
    real_collect = LocalExecutor.collect
    monkeypatch.setattr(
        LocalExecutor, "collect", lambda self, make, *a: envs_used.append(make) or real_collect(self, make, *a)
    )
    results = SPIRAL(plain, demos, tmp_path, cfg, POLICY, reward_model=rm, eval_env=plain).run()
    assert [r.round for r in results] == [0, 1]
    rollouts = RolloutStore(tmp_path / "round_01" / "rollouts").load()
    assert np.isnan(rollouts[0].rm_progress).all()  # nothing online ...
    assert sorted(relabelled) == sorted(ro.episode_id for ro in rollouts)  # ... every rollout relabelled after
    assert envs_used == [plain] * 3
    with pytest.raises(ConfigError, match="needs `reward_model="):
        SPIRAL(plain, demos, tmp_path / "b", cfg, POLICY)
    with pytest.raises(ConfigError, match="image encoder"):
        SPIRAL(plain, demos, tmp_path / "c", cfg, POLICY.replace(encoder="efficientnet-lite0"), reward_model=rm)
    with pytest.raises(ConfigError, match="`rewards`"):
        SpiralConfig(rewards="later")
