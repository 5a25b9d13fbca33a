"""The state BC policy (agents/state_policy.py): the sim-only stand-in for a VLA that SPIRAL starts from."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from agents.policy import Policy
from agents.state_policy import (
    LABEL,
    StateEpisode,
    StatePolicy,
    StatePolicyConfig,
    collect_state_demos,
    evaluate_state_policy,
    history_features,
)
from sarm2_env.constants import STATE_DIM
from sarm2_env.errors import CheckpointError, ConfigError, InputShapeError, UnknownNameError

TASK = "SARM2/PullPlug-v0"  # the shortest task: ~100 steps, ~400 physics-only steps/s
CONFIG = StatePolicyConfig(steps=600, hidden=128, layers=2, batch_size=128)


@pytest.fixture(scope="module")
def demos() -> list[StateEpisode]:
    return collect_state_demos(TASK, 10, seed=300_000, action_noise=0.02)


@pytest.fixture(scope="module")
def policy(demos) -> StatePolicy:
    pol = StatePolicy(CONFIG, device="cpu")
    pol.fit(demos, seed=0)
    return pol


def test_demos_are_state_mode_episodes_with_clean_labels():
    noisy = collect_state_demos(TASK, 1, seed=300_000, action_noise=0.05)[0]
    clean = collect_state_demos(TASK, 1, seed=300_000)[0]
    env = gym.make(TASK, obs_mode="state")
    assert noisy.state.shape[1] == env.observation_space.shape[0] and noisy.action.shape == (noisy.length, 14)
    np.testing.assert_array_equal(noisy.state[0], clean.state[0])  # same seed, same start
    # The expert plans in its own targets: until it looks at the scene again its labels ignore the noise ...
    np.testing.assert_allclose(noisy.action[:10], clean.action[:10], atol=1e-6)
    # ... while the executed (noisy) actions moved the arms elsewhere.
    assert np.abs(noisy.state[10, :STATE_DIM] - clean.state[10, :STATE_DIM]).max() > 1e-3
    assert clean.success
    with pytest.raises(ConfigError, match="action_noise"):
        collect_state_demos(TASK, 1, seed=0, action_noise=-0.1)


def test_history_features_by_hand():
    states = np.arange(4 * 20, dtype=np.float32).reshape(4, 20)
    feats = history_features(states, (1, 2))
    assert feats.shape == (4, 20 + 2 * STATE_DIM)
    np.testing.assert_array_equal(feats[:, :20], states)
    np.testing.assert_array_equal(feats[3, 20:34], states[2, :14])  # lag 1
    np.testing.assert_array_equal(feats[3, 34:48], states[1, :14])  # lag 2
    np.testing.assert_array_equal(feats[0, 20:34], states[0, :14])  # clamped at the start


def test_policy_succeeds_on_held_out_seeds(policy):
    assert isinstance(policy, Policy) and policy.label == LABEL == policy.training_summary["label"]
    results = evaluate_state_policy(policy, TASK, range(900_000, 900_003))
    assert [r["seed"] for r in results] == [900_000, 900_001, 900_002]
    assert sum(r["success"] for r in results) >= 2, results  # PullPlug is easy from state (DESIGN: 17/20)


def test_acting_keeps_a_joint_history_per_env(policy):
    env = gym.make(TASK, obs_mode="state")
    obs, info = env.reset(seed=1)
    batch = np.stack([obs, obs])
    policy.reset([info["task"]] * 2)
    first = policy.act(batch)
    assert first.shape == (2, 14) and np.allclose(first[0], first[1], atol=1e-5)  # batch rows may round apart
    feats, joints = policy.encode_observations(batch)
    assert feats.shape == (2, obs.shape[0] + 2 * STATE_DIM) and joints.shape == (2, 14)
    policy.reset([info["task"]], indices=[1])
    assert len(policy._history[0]) == 2 and policy._history[1] == []


def test_save_load_round_trip(policy, tmp_path):
    policy.save(tmp_path / "pol")
    loaded = StatePolicy.load(tmp_path / "pol", device="cpu")
    feats = np.random.default_rng(0).normal(size=(3, policy.state_dim + 2 * STATE_DIM)).astype(np.float32)
    np.testing.assert_allclose(loaded.predict_chunks(feats), policy.predict_chunks(feats), rtol=1e-5, atol=1e-5)
    with pytest.raises(CheckpointError):
        StatePolicy.load(tmp_path / "missing")


def test_bad_input_is_a_typed_error(policy, demos):
    policy.reset(["x"])
    with pytest.raises(InputShapeError, match="obs_mode='state'"):
        policy.act({"pixels": {}, "agent_pos": np.zeros(14)})
    with pytest.raises(InputShapeError, match="trained on states of size"):
        policy.act(np.zeros(policy.state_dim + 3, np.float32))
    with pytest.raises(CheckpointError, match="untrained"):
        StatePolicy(CONFIG).predict_chunks(np.zeros((1, 5), np.float32))
    with pytest.raises(InputShapeError, match="same state size"):
        StatePolicy(CONFIG).fit([demos[0], StateEpisode(TASK, np.zeros((3, 20), np.float32), np.zeros((3, 14)))])
    with pytest.raises(ConfigError, match="execute"):
        StatePolicyConfig(chunk=5, execute=6)
    with pytest.raises(ConfigError, match="history"):
        StatePolicyConfig(history=(0,))


def _two_operators(condition: bool) -> list[StateEpisode]:
    """Identical states; "positive" episodes act +1 on every joint, "negative" ones -1 (grippers 0.5)."""
    state = np.random.default_rng(0).normal(size=(30, STATE_DIM + 4)).astype(np.float32)
    episodes = []
    for k in range(8):
        sign = 1.0 if k % 2 == 0 else -1.0
        action = np.full((30, 14), sign, np.float32)
        action[:, [6, 13]] = 0.5
        label = np.full(30, int(sign > 0)) if condition else None
        episodes.append(StateEpisode(TASK, state, action, condition=label))
    return episodes


def test_recap_head_acts_as_its_positive_samples():
    config = StatePolicyConfig(chunk=2, execute=1, history=(1,), steps=400, hidden=64, layers=2, lr=3e-3)
    episodes = _two_operators(condition=True)
    recap = StatePolicy(config.replace(condition=True, condition_dropout=0.1), device="cpu")
    recap.fit(episodes, seed=0)
    plain = StatePolicy(config, device="cpu")
    plain.fit(_two_operators(condition=False), seed=0)
    features = history_features(episodes[0].state, config.history)
    joints = [0, 1, 2, 3, 4, 5]
    assert recap.predict_chunks(features)[..., joints].mean() > 0.7  # acts like the positive operator
    assert abs(plain.predict_chunks(features)[..., joints].mean()) < 0.3  # without the indicator: their mean
    assert recap.training_summary["positive_fraction"] == pytest.approx(0.5)


def test_recap_head_round_trips_and_is_checked(tmp_path):
    config = StatePolicyConfig(chunk=2, execute=1, history=(1,), steps=20, hidden=16, layers=1, condition=True)
    episodes = _two_operators(condition=True)
    policy = StatePolicy(config, device="cpu")
    policy.fit(episodes, seed=0)
    policy.save(tmp_path / "recap")
    loaded = StatePolicy.load(tmp_path / "recap", device="cpu")
    features = history_features(episodes[0].state, config.history)
    np.testing.assert_allclose(loaded.predict_chunks(features), policy.predict_chunks(features), rtol=1e-5, atol=1e-5)
    with pytest.raises(ConfigError, match="condition"):
        StatePolicy(config.replace(condition=False)).fit(episodes, steps=2, init_from=policy)
    with pytest.raises(ConfigError, match="condition_dropout"):
        StatePolicyConfig(condition_dropout=1.0)
    state, action = episodes[0].state, episodes[0].action
    with pytest.raises(InputShapeError, match="condition"):
        StateEpisode(TASK, state, action, condition=np.ones(3))
    with pytest.raises(ConfigError, match="condition"):
        StateEpisode(TASK, state, action, condition=np.full(30, 2))


def test_ignored_fields_do_not_reach_the_head(demos, tmp_path):
    config = CONFIG.replace(steps=50, ignore_fields=("socket_free/quat",))  # PullPlug: columns 17-20
    policy = StatePolicy(config, device="cpu")
    policy.fit(demos, seed=0)
    plain = StatePolicy(CONFIG.replace(steps=50), device="cpu")
    plain.fit(demos, seed=0)
    features = history_features(demos[0].state, CONFIG.history)
    shifted = features.copy()
    shifted[:, 17:21] += 3.0
    np.testing.assert_array_equal(policy.predict_chunks(shifted), policy.predict_chunks(features))
    assert np.abs(plain.predict_chunks(shifted) - plain.predict_chunks(features)).max() > 1e-3
    shifted[:, 21] += 3.0  # the next field is read
    assert np.abs(policy.predict_chunks(shifted) - policy.predict_chunks(features)).max() > 1e-3
    policy.save(tmp_path / "pol")
    loaded = StatePolicy.load(tmp_path / "pol", device="cpu")
    assert loaded.config.ignore_fields == ("socket_free/quat",)
    np.testing.assert_allclose(loaded.predict_chunks(shifted), policy.predict_chunks(shifted), rtol=1e-5, atol=1e-5)


def test_ignored_fields_are_checked(demos, policy):
    with pytest.raises(UnknownNameError, match="socket_free/quat"):  # the error lists the layout's fields
        StatePolicy(CONFIG.replace(ignore_fields=("socket/quat",))).fit(demos[:1], steps=1)
    with pytest.raises(ConfigError, match="agent_pos"):
        StatePolicy(CONFIG.replace(ignore_fields=("agent_pos",))).fit(demos[:1], steps=1)
    with pytest.raises(ConfigError, match="ignore_fields"):
        StatePolicy(CONFIG.replace(ignore_fields=("socket_free/quat",))).fit(demos[:1], steps=1, init_from=policy)


def test_ignored_fields_need_one_layout_across_tasks(demos, monkeypatch):
    import agents.state_policy as module

    layout = module.state_layout(TASK)
    other = "SARM2/Other-v0"  # the same state size, its fields in another order
    monkeypatch.setattr(module, "state_layout", lambda task_id: layout if task_id == TASK else layout[::-1])
    mixed = [demos[0], StateEpisode(other, demos[1].state, demos[1].action)]
    config = CONFIG.replace(ignore_fields=("socket_free/quat",))
    with pytest.raises(InputShapeError, match="one state layout"):
        StatePolicy(config).fit(mixed, steps=1)
    StatePolicy(CONFIG).fit(mixed, steps=1)  # nothing ignored: no layout needed
