"""The residual actor-critic on the state policy (agents/state_residual.py) and as state SPIRAL's `residual_ac` rule.
Tiny sizes on PullPlug (the shortest task)."""

from __future__ import annotations

import json
import types

import gymnasium as gym
import numpy as np
import pytest
import torch

from agents.relabel import RelabelConfig
from agents.residual import ResidualACConfig
from agents.state_policy import StatePolicy, StatePolicyConfig, collect_state_demos, history_features
from agents.state_residual import RESIDUAL_LABEL, StateResidualPolicy, load_state_policy
from agents.state_spiral import StateSpiral, StateSpiralConfig
from agents.updates import UpdateConfig
from sarm2_env.constants import ACTION_DIM
from sarm2_env.errors import CheckpointError, ConfigError

TASK = "SARM2/PullPlug-v0"
AC = ResidualACConfig(hidden=64, batch_size=128, best_of_k=4, critics=3)


@pytest.fixture(scope="module")
def demos():
    return collect_state_demos(TASK, 4, seed=300_000, action_noise=0.02)


@pytest.fixture(scope="module")
def base(demos) -> StatePolicy:
    policy = StatePolicy(StatePolicyConfig(steps=200, hidden=64, layers=2), device="cpu")
    policy.fit(demos, seed=0)
    return policy


def _features(policy: StatePolicy, states: np.ndarray) -> np.ndarray:
    return history_features(states, policy.config.history)


def test_an_untrained_residual_acts_exactly_as_its_base(base, demos):
    residual = StateResidualPolicy.from_base(base, AC, explore_noise=0.02)
    features = _features(base, demos[0].state)[::7]
    np.testing.assert_allclose(residual.plan(features), base.predict_chunks(features)[:, : base.config.execute])
    env = gym.make(TASK, obs_mode="state")
    actions = {}
    for name, policy in (("base", base), ("residual", residual)):
        obs, info = env.reset(seed=5)
        policy.reset([info["task"]])
        actions[name] = []
        for _ in range(25):  # across two plans: the joint history goes through the residual's reset and encoding
            action = policy.act(obs)[0]
            actions[name].append(action)
            obs, *_ = env.step(action)
    env.close()
    np.testing.assert_allclose(actions["residual"], actions["base"], atol=1e-6)
    assert residual.label == RESIDUAL_LABEL and "sim-only stand-in for a VLA" in RESIDUAL_LABEL


def _rewarded_rollouts(base: StatePolicy, demos, joint: int, rng: np.random.Generator):
    """Rollouts whose executed plans are the base's plan plus one random offset per plan, and whose progress rises
    with the offset on ``joint`` (and only with it)."""
    rollouts, progress = [], []
    execute = base.config.execute
    for demo in demos:
        states = demo.state
        plans = base.predict_chunks(_features(base, states))[:, :execute]  # (T, E, 14)
        actions, gains = [], []
        for start in range(0, len(states) - 1, execute):
            offset = rng.normal(0.0, 0.05, ACTION_DIM).astype(np.float32) * base.exploring_joints()
            steps = min(execute, len(states) - 1 - start)
            actions.append(plans[start, :steps] + offset)
            gains.append((offset[joint], steps))
        p = [0.0]
        for gain, steps in gains:
            p += list(p[-1] + gain * np.arange(1, steps + 1) / steps)
        rollouts.append(types.SimpleNamespace(state=states, action=np.concatenate(actions)))
        progress.append(np.asarray(p, np.float32))
    return rollouts, progress


def test_fit_moves_the_plan_towards_what_the_progress_rewards(base, demos):
    joint = int(np.flatnonzero(base.exploring_joints())[0])
    rollouts, progress = _rewarded_rollouts(base, demos, joint, np.random.default_rng(0))
    policy = StateResidualPolicy.from_base(base, AC, explore_noise=0.05, seed=0)
    summary = policy.fit(rollouts, progress, steps=400, seed=0)
    assert summary["episodes"] == len(demos) and summary["transitions"] > 0 and policy.critics_trained
    features = _features(base, demos[0].state)[::5]
    policy.explore_noise = 0.0  # the actor alone, no best-of-K
    execute = base.config.execute
    shift = (
        base.normalise_targets(policy.plan(features))
        - base.normalise_targets(base.predict_chunks(features))[:, :execute]
    )  # in demo standard deviations
    mean = shift.mean(axis=(0, 1))
    assert mean[joint] > 0.1  # towards the rewarded offset (measured: 0.21) ...
    assert mean[joint] > 2 * np.abs(np.delete(mean, joint)).max()  # ... and not the other joints (<= 0.07)


def test_best_of_k_candidates_are_held_offsets_on_the_exploring_joints(base, demos):
    policy = StateResidualPolicy.from_base(base, AC.replace(best_of_k=16), explore_noise=0.05, seed=3)
    joint = int(np.flatnonzero(base.exploring_joints())[0])

    class Prefers(torch.nn.Module):  # every critic scores the chunk's mean on `joint`
        def forward(self, obs, action):
            return action.view(len(action), -1, ACTION_DIM)[..., joint].mean(1)[None].repeat(3, 1)

    policy.critics, policy.critics_trained = Prefers(), True
    features = _features(base, demos[0].state)[::9]
    chosen = policy.plan(features)
    proposal = base.predict_chunks(features)[:, : base.config.execute]
    offset = chosen - proposal
    np.testing.assert_allclose(offset, offset[:, :1].repeat(offset.shape[1], 1), atol=1e-5)  # held for the plan
    still = base.exploring_joints() == 0
    assert np.abs(offset[..., still]).max() < 1e-5  # grippers and joints the demos hold still never move
    assert (offset[:, 0, joint] > 0).mean() > 0.9  # the critics' favourite among 16 is nearly always upwards


def test_save_load_and_the_checkpoint_dispatch(base, demos, tmp_path):
    joint = int(np.flatnonzero(base.exploring_joints())[0])
    rollouts, progress = _rewarded_rollouts(base, demos[:2], joint, np.random.default_rng(1))
    policy = StateResidualPolicy.from_base(base, AC, explore_noise=0.02, seed=0)
    policy.fit(rollouts, progress, steps=20, seed=0)
    policy.save(tmp_path / "residual")
    base.save(tmp_path / "base")
    loaded = load_state_policy(tmp_path / "residual")
    assert isinstance(loaded, StateResidualPolicy) and loaded.critics_trained and loaded.explore_noise == 0.02
    assert isinstance(load_state_policy(tmp_path / "base"), StatePolicy)
    features = _features(base, demos[0].state)[::11]
    policy.explore_noise = loaded.explore_noise = 0.0
    np.testing.assert_allclose(loaded.plan(features), policy.plan(features), atol=1e-6)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "config.json").write_text(json.dumps({"model": "sarm2"}))
    with pytest.raises(CheckpointError, match="expected a state policy"):
        load_state_policy(tmp_path / "other")
    with pytest.raises(CheckpointError, match="no readable state policy"):
        load_state_policy(tmp_path / "missing")
    with pytest.raises(ConfigError, match="explore_noise"):
        StateResidualPolicy(base, AC, explore_noise=-1.0)


def _config(**kw) -> StateSpiralConfig:
    base = dict(task=TASK, rounds=2, rollouts_per_round=3, eval_episodes=2, finetune_steps=20, workers=1)
    update = UpdateConfig(rule="residual_ac", residual=AC)
    return StateSpiralConfig(**{**base, "relabel": RelabelConfig(chunk=20), "update": update, **kw})


def test_state_spiral_residual_rounds_carry_the_residual_and_resume(base, demos, tmp_path):
    cfg = _config(explore_noise=0.02, aggregate=True)
    with StateSpiral(cfg, base, demos, tmp_path) as spiral:
        curves = spiral.run(["oracle"])
    one, two = (curves["oracle"][r]["update"] for r in (1, 2))
    assert one["rule"] == two["rule"] == "residual_ac"
    assert one["residual"]["episodes"] == 3 and two["residual"]["episodes"] == 6  # aggregated replay
    policies = [load_state_policy(tmp_path / "oracle" / f"round_0{r}" / "policy") for r in (1, 2)]
    assert all(isinstance(p, StateResidualPolicy) and p.critics_trained for p in policies)
    assert len(list((tmp_path / "oracle" / "round_02" / "rollouts").glob("seed_*.npz"))) == 3  # by round 1's policy
    features = _features(base, demos[0].state)[::11]
    carried = policies[0].copy(seed=9)  # what round 2 trains on from (round 1's residual, not a zero one)
    carried.explore_noise = policies[0].explore_noise = 0.0
    np.testing.assert_allclose(carried.plan(features), policies[0].plan(features), atol=1e-6)
    before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*.safetensors")}
    with StateSpiral(cfg, base, demos, tmp_path) as spiral:
        spiral.run(["oracle"])
    assert all(p.stat().st_mtime_ns == t for p, t in before.items())  # resumed: nothing retrained


def test_residual_configs_that_cannot_work_are_refused():
    with pytest.raises(ConfigError, match="explore_noise"):
        _config()
    with pytest.raises(ConfigError, match="success_gate"):
        _config(explore_noise=0.02, success_gate=True)
