"""The residual actor-critic update rule (agents/residual.py) and its SPIRAL integration, on tiny configs:
random-init ``tiny`` image encoder, hashed instructions, 32 px, short episodes."""

from __future__ import annotations

import dataclasses
import functools
import json

import numpy as np
import pytest
import torch

from agents.policy import BCPolicy, BCPolicyConfig, Policy, PolicyEpisode, demos_from_dataset
from agents.residual import (
    ResidualACConfig,
    ResidualACPolicy,
    chunk_transitions,
    load_policy,
    policy_from_state_dict,
)
from agents.rollouts import LocalExecutor, RolloutStore
from agents.spiral import SPIRAL, SpiralConfig
from agents.updates import UpdateConfig, sample_targets
from sarm2_env.constants import ACTION_DIM
from sarm2_env.errors import ConfigError, InputShapeError, NonFiniteError
from sarm2_env.make import make_env as sarm2_make_env
from tasks.collect import CollectConfig, collect

TASK = "SARM2/CleanWhiteboard-v0"
POLICY = BCPolicyConfig(encoder="tiny", text_encoder="tiny-hash", hidden=64, layers=2, batch_size=32, steps=30)
SMALL_AC = ResidualACConfig(hidden=32, batch_size=64, best_of_k=4)
make_env = functools.partial(sarm2_make_env, TASK, reward_model="oracle", image_size=32, max_episode_steps=25)


@pytest.fixture(scope="module")
def demos(tmp_path_factory) -> list[PolicyEpisode]:
    out = tmp_path_factory.mktemp("demos")
    collect(CollectConfig(tasks=(TASK,), episodes=2, image_size=32), str(out), progress_bar=False)
    return demos_from_dataset(out, BCPolicy(POLICY).image_encoder)


@pytest.fixture(scope="module")
def base(demos) -> BCPolicy:
    pol = BCPolicy(POLICY)
    pol.fit(demos, seed=0)
    return pol


# ---------------------------------------------------------------------- transitions
def test_chunk_transitions_by_hand():
    p = np.array([0.0, 0.1, 0.3, 0.3, 0.6, 1.0])  # 6 frames, 5 actions
    tr = chunk_transitions([p], execute=2, gamma=1.0)
    np.testing.assert_array_equal(tr.frame, [0, 2, 4])
    np.testing.assert_allclose(tr.reward, [0.3, 0.3, 0.4], atol=1e-6)
    np.testing.assert_allclose(tr.mc_return, [1.0, 0.7, 0.4], atol=1e-6)
    np.testing.assert_array_equal(tr.next, [1, 2, 2])
    np.testing.assert_array_equal(tr.done, [False, False, True])
    # gamma per step: a chunk of 2 steps discounts by gamma^2, the last (1 step) by gamma.
    tr = chunk_transitions([p], execute=2, gamma=0.5)
    np.testing.assert_allclose(tr.discount, [0.25, 0.25, 0.5])
    np.testing.assert_allclose(tr.mc_return, [0.3 + 0.25 * 0.4, 0.3 + 0.25 * 0.4, 0.4], atol=1e-6)
    # Rows of a second episode follow the first's, and their `next` stays inside it.
    tr = chunk_transitions([p, np.array([0.2, 0.2, 0.2])], execute=2, gamma=1.0)
    np.testing.assert_array_equal(tr.episode, [0, 0, 0, 1])
    assert tr.next[3] == 3 and tr.done[3]


def test_no_terminal_bonus_a_failure_earns_nothing():
    """The released code gave every episode a terminal reward of 1; here a flat (failed) episode returns 0."""
    tr = chunk_transitions([np.full(12, 0.4)], execute=5, gamma=0.9995)
    assert np.all(tr.reward == 0) and np.all(tr.mc_return == 0)


def test_chunk_transitions_bad_input():
    with pytest.raises(InputShapeError, match="progress\\[0\\]"):
        chunk_transitions([np.array([0.5])], execute=2, gamma=1.0)
    with pytest.raises(NonFiniteError, match="progress\\[1\\]"):
        chunk_transitions([np.zeros(3), np.array([0.0, np.nan, 1.0])], execute=2, gamma=1.0)
    with pytest.raises(ConfigError, match="execute"):
        chunk_transitions([np.zeros(3)], execute=0, gamma=1.0)


def test_config_guards_the_documented_defects():
    with pytest.raises(ConfigError, match="candidate_noise"):
        ResidualACConfig(candidate_noise=0.3, explore_noise=0.1)  # candidates off the training distribution
    with pytest.raises(ConfigError, match="critics"):
        ResidualACConfig(critics=1)
    with pytest.raises(ConfigError, match="mc_weight"):
        ResidualACConfig(mc_weight=1.5)
    assert UpdateConfig(rule="residual_ac", residual={"critics": 3}).residual.critics == 3
    with pytest.raises(ConfigError, match="own trainer"):
        sample_targets(np.zeros(3), UpdateConfig(rule="residual_ac"))


# ---------------------------------------------------------------------- policy
def test_untrained_residual_acts_as_its_base_and_explores_only_when_asked(base, demos):
    pol = ResidualACPolicy.from_base(base, SMALL_AC)
    assert isinstance(pol, Policy)
    d = demos[0]
    emb, state, text = d.embeddings[:4], d.state[:4], [d.instruction] * 4
    expected = base.predict_chunks(emb, state, text)[:, : POLICY.execute]
    np.testing.assert_allclose(pol.plan(emb, state, text), expected, atol=1e-5)
    with pol.exploring():
        noisy = pol.plan(emb, state, text)
        assert pol.explore_noise == SMALL_AC.explore_noise
    assert pol.explore_noise == 0.0
    assert not np.allclose(noisy, expected, atol=1e-4)
    pol.reset([d.instruction] * 2)
    actions = [pol.act_from_embeddings(d.embeddings[:2], d.state[:2]) for _ in range(POLICY.execute + 1)]
    assert all(a.shape == (2, ACTION_DIM) and a.dtype == np.float32 for a in actions)
    with pytest.raises(InputShapeError, match="reset for 2 envs"):
        pol.act_from_embeddings(d.embeddings[:3], d.state[:3])


def _steered_episodes(base: BCPolicy, demos, direction: np.ndarray, rng: np.random.Generator):
    """Episodes whose executed chunks are the base's plus noise, with progress gained in proportion to the
    noise's projection on ``direction``: the critic must learn that, and the actor must follow it."""
    e = base.config.execute
    std, mean = base.norm["delta_std"], base.norm["delta_mean"]
    episodes, progress = [], []
    for d in demos:
        t = d.length
        frames = np.arange(0, t - 1, e)
        base_n = base.normalised_chunks(d.embeddings[frames], d.state[frames], [d.instruction] * len(frames))[:, :e]
        noise = rng.normal(0.0, 0.3, size=base_n.shape).astype(np.float32)
        action = np.repeat(d.state[-1:], t, axis=0).copy()
        p = np.zeros(t)
        for k, f in enumerate(frames):
            steps = np.arange(f, min(f + e, t - 1))
            executed = d.state[f] + (base_n[k] + noise[k]) * std + mean
            action[steps] = executed[: len(steps)]
            gain = 0.02 * float((noise[k] * direction).sum())
            p[f + 1 : min(f + e, t - 1) + 1] = p[f] + gain
        action[-1] = action[-2]
        episodes.append(dataclasses.replace(d, action=action.astype(np.float32)))
        progress.append(p)
    return episodes, progress


def test_critics_and_actor_learn_which_way_progress_lies(base, demos):
    rng = np.random.default_rng(0)
    direction = np.zeros((POLICY.execute, ACTION_DIM), np.float32)
    direction[:, 0], direction[:, 7] = 1.0, -1.0  # progress when joint 0 of the left arm goes up, of the right down
    episodes, progress = _steered_episodes(base, demos * 6, direction, rng)
    cfg = dataclasses.replace(SMALL_AC, bc_penalty=1.0, mc_weight=1.0, lr=1e-3)
    pol = ResidualACPolicy.from_base(base, cfg, seed=0)
    summary = pol.fit(episodes, progress, steps=400, seed=0)
    assert summary["transitions"] > 50 and np.isfinite(summary["critic_loss"])
    d = demos[1]
    frames = np.arange(0, d.length - 1, POLICY.execute)
    emb, state, text = d.embeddings[frames], d.state[frames], [d.instruction] * len(frames)
    obs, chunks = base.features_and_chunks(emb, state, text)
    np.testing.assert_allclose(chunks, base.normalised_chunks(emb, state, text))  # one pass, the same chunks
    base_n = torch.as_tensor(chunks[:, : POLICY.execute].reshape(len(frames), -1))
    u = torch.as_tensor(direction.reshape(-1) / np.linalg.norm(direction))
    with torch.no_grad():
        q_up = pol.critics(obs, base_n + 0.3 * u).mean(0)
        q_down = pol.critics(obs, base_n - 0.3 * u).mean(0)
        residual = pol.actor(obs, base_n)
        pol.ac = dataclasses.replace(pol.ac, best_of_k=16)
        chosen = pol.best_of_k(obs, base_n)  # 16 candidates around the base's chunk, noise sd 0.15 each way
    assert (q_up > q_down).float().mean() > 0.8
    assert float((residual @ u).mean()) > 0  # the actor moves along the rewarded direction
    assert float(((chosen - base_n) @ u).mean()) > 0.02  # best-of-K picks candidates that lean the rewarded way


def test_fit_bad_input(base, demos):
    pol = ResidualACPolicy.from_base(base, SMALL_AC)
    with pytest.raises(InputShapeError, match="one series per episode"):
        pol.fit(demos, [np.zeros(demos[0].length)], steps=1)
    with pytest.raises(InputShapeError, match="progress\\[0\\]"):
        pol.fit(demos[:1], [np.zeros(3)], steps=1)


def test_residual_policy_round_trips(base, demos, tmp_path):
    rng = np.random.default_rng(1)
    direction = np.ones((POLICY.execute, ACTION_DIM), np.float32)
    episodes, progress = _steered_episodes(base, demos, direction, rng)
    pol = ResidualACPolicy.from_base(base, SMALL_AC)
    pol.fit(episodes, progress, steps=10)
    pol.save(tmp_path / "res")
    base.save(tmp_path / "bc")
    loaded = load_policy(tmp_path / "res")
    assert isinstance(loaded, ResidualACPolicy) and loaded.critics_trained and loaded.ac == SMALL_AC
    assert isinstance(load_policy(tmp_path / "bc"), BCPolicy)
    shipped = policy_from_state_dict(pol.state_dict())
    d = demos[0]
    obs = pol.base.features_and_chunks(d.embeddings[:3], d.state[:3], [d.instruction] * 3)[0]
    act = torch.randn(3, POLICY.execute * ACTION_DIM)
    for other in (loaded, shipped):
        np.testing.assert_allclose(other.critics(obs, act).detach(), pol.critics(obs, act).detach(), atol=1e-5)
        np.testing.assert_allclose(other.actor(obs, act).detach(), pol.actor(obs, act).detach(), atol=1e-5)
        np.testing.assert_allclose(
            other.base.predict_chunks(d.embeddings[:3], d.state[:3], [d.instruction] * 3),
            base.predict_chunks(d.embeddings[:3], d.state[:3], [d.instruction] * 3),
            atol=1e-5,
        )


# ---------------------------------------------------------------------- SPIRAL
def test_spiral_with_the_residual_actor_critic(demos, tmp_path, monkeypatch):
    cfg = SpiralConfig(
        rounds=2,
        rollouts_per_round=2,
        eval_episodes=2,
        bc_steps=20,
        finetune_steps=10,
        num_envs=1,
        update=UpdateConfig(rule="residual_ac", residual=dataclasses.asdict(SMALL_AC)),
    )
    noise_seen = []
    real_collect = LocalExecutor.collect

    def spy(self, make, pol, seeds, on):
        noise_seen.append(getattr(pol, "explore_noise", None))
        return real_collect(self, make, pol, seeds, on)

    monkeypatch.setattr(LocalExecutor, "collect", spy)
    results = SPIRAL(make_env, demos, tmp_path, cfg, POLICY).run()
    assert [r.round for r in results] == [0, 1, 2]
    # eval pi_0 (BC, no noise attribute), round-1 rollouts (exploring), eval pi_1, round-2 rollouts, eval pi_2
    assert noise_seen == [None, SMALL_AC.explore_noise, 0.0, SMALL_AC.explore_noise, 0.0]
    u1 = json.loads((tmp_path / "round_01" / "update.json").read_text())
    u2 = json.loads((tmp_path / "round_02" / "update.json").read_text())
    assert u1["rule"] == u2["rule"] == "residual_ac"
    assert (u1["replay_rollouts"], u2["replay_rollouts"]) == (2, 4)  # off-policy: every round's rollouts
    assert isinstance(load_policy(tmp_path / "round_02" / "policy"), ResidualACPolicy)
    assert len(RolloutStore(tmp_path / "round_02" / "rollouts")) == 2
    # Resuming redoes nothing.
    monkeypatch.setattr(ResidualACPolicy, "fit", lambda *a, **k: pytest.fail("retrained on resume"))
    monkeypatch.setattr(LocalExecutor, "collect", lambda *a, **k: pytest.fail("recollected on resume"))
    again = SPIRAL(make_env, demos, tmp_path, cfg, POLICY).run()
    assert [r.to_dict() for r in again] == [r.to_dict() for r in results]
