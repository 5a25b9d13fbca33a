"""Tests of the Pulling Plug task (tasks/pull_plug.py): ground truth, physics of the detent, expert."""

from __future__ import annotations

from collections.abc import Iterator

import mujoco
import numpy as np
import pytest

from tasks.expert import Segment, run_expert_episode
from tasks.pull_plug import OUT_DIST, PullPlugEnv, PullPlugExpert
from tests.tasks.rollouts import (
    check_declared_primitives,
    check_full_skill_rollout,
    close_shared_envs,
    expert_rollout,
    shared_env,
)

TASK = "SARM2/PullPlug-v0"


@pytest.fixture(scope="module", autouse=True)
def _close_envs():
    yield
    close_shared_envs()


def _env() -> PullPlugEnv:
    return shared_env(TASK).unwrapped


def _set_plug(env: PullPlugEnv, travel: float) -> None:
    env.data.qpos[env._plug_qadr] = travel
    mujoco.mj_forward(env.model, env.data)


# ---------------------------------------------------------------------- ground truth
def test_progress_follows_the_plug_and_drops_when_pushed_back():
    env = _env()
    _, info = env.reset(seed=0)
    assert info["progress"] == 0.0 and not info["success"]
    assert info["eval/socket_held"] == 0.0 and info["eval/plug_grasped"] == 0.0
    _set_plug(env, 0.5 * OUT_DIST)  # half way out
    half = env.evaluate()
    assert half.progress == pytest.approx(0.4) and not half.success
    assert half.terms["pulled"] == pytest.approx(0.5)
    _set_plug(env, OUT_DIST + 0.005)  # out: success, whatever holds what
    out = env.evaluate()
    assert out.success and out.progress == pytest.approx(1.0)
    _set_plug(env, 0.2 * OUT_DIST)  # pushed back in: progress drops, no success
    back = env.evaluate()
    assert not back.success and back.progress < half.progress


def test_success_needs_the_plug_out_of_the_socket_not_the_socket_moved():
    env = _env()
    env.reset(seed=1)
    adr = env._socket_qadr
    env.data.qpos[adr : adr + 2] += [0.05, -0.08]  # the whole socket dragged across the table
    mujoco.mj_forward(env.model, env.data)
    ev = env.evaluate()
    assert not ev.success and ev.progress == 0.0


def test_grasp_and_press_terms_count_only_while_plugged():
    env = _env()
    env.reset(seed=2)
    grasp = env.grasps["right"]
    env.data.eq_active[grasp.eq_id] = 1
    ev = env.evaluate()
    assert ev.terms["plug_grasped"] == 1.0 and ev.progress == pytest.approx(0.1)
    env.data.eq_active[grasp.eq_id] = 0


def test_socket_starts_randomised_on_the_table():
    env = _env()
    poses = []
    for seed in range(3):
        env.reset(seed=seed)
        pos, yaw = env.socket_pose()
        assert env.pull_distance() == 0.0
        assert pos[2] == pytest.approx(0.02, abs=1e-6)
        poses.append((*pos[:2], yaw))
    assert len({tuple(np.round(p, 6)) for p in poses}) == 3


class _NoPressExpert(PullPlugExpert):
    """Grasps and pulls without anyone holding the socket down."""

    MAX_RETRIES = 1

    def _press(self, env) -> Iterator[Segment]:
        return iter(())


def test_pulling_an_unheld_socket_drags_it_instead_of_unplugging():
    env = _env()
    expert = _NoPressExpert(env)
    episode = run_expert_episode(env, expert, seed=0)
    next(episode)  # the reset
    start = env.socket_pose()[0]
    info = [item[3] for item in episode][-1]
    moved = float(np.linalg.norm(env.socket_pose()[0][:2] - start[:2]))
    assert moved > 0.03  # the socket slid after the hand
    assert not info["success"] and env.pull_distance() < 0.3 * OUT_DIST
    assert info["eval/socket_held"] == 0.0


# ---------------------------------------------------------------------- expert
def test_full_skill_expert_succeeds_seed_0():
    ep = expert_rollout(TASK, 0, 1.0)
    check_full_skill_rollout(TASK, ep, 0)
    assert 80 <= len(ep.infos) <= 160


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2])
def test_full_skill_expert_succeeds_more_seeds(seed):
    check_full_skill_rollout(TASK, expert_rollout(TASK, seed, 1.0), seed)


def test_full_skill_expert_uses_press_pick_grab_pull_in_order():
    ep = expert_rollout(TASK, 0, 1.0)
    check_declared_primitives(TASK, ep)
    labels = [info["primitive"] for info in ep.infos]
    first = {p: labels.index(p) for p in ("press", "pick_grab", "pull")}
    assert first["press"] < first["pick_grab"] < first["pull"]
    # The socket is held down (>= 3 N) all through the pull, and the plug only moves during the pull.
    pull = [info for info in ep.infos if info["primitive"] == "pull"]
    assert all(info["eval/socket_held"] == 1.0 for info in pull)
    assert all(info["eval/pulled"] < 0.05 for info in ep.infos[: first["pull"]])
    assert ep.final["eval/pulled"] == 1.0


@pytest.mark.slow
def test_low_skill_expert_fails_sometimes():
    outcomes = [expert_rollout(TASK, seed, 0.2).final for seed in range(6)]
    assert not all(info["success"] for info in outcomes)
    assert any(info["success"] for info in outcomes)  # clumsy, not hopeless


def test_expert_is_reproducible():
    first = expert_rollout(TASK, 3, 0.5, expert_seed=11, max_steps=40)
    again = expert_rollout.__wrapped__(TASK, 3, 0.5, expert_seed=11, max_steps=40)
    assert len(first.actions) == len(again.actions) == 40
    for a, b in zip(first.actions, again.actions):
        np.testing.assert_array_equal(a, b)
    assert first.infos == again.infos
