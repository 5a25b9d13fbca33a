"""Tests of SARM2/SetDinnerTable-v0 (tasks/set_dinner_table.py): ground truth and the scripted expert."""

from __future__ import annotations

import mujoco
import numpy as np
import pytest

import tasks
from tasks.expert import run_expert_episode
from tasks.set_dinner_table import TABLEWARE, TABLEWARE_BY_NAME, YAW_TOL, wrap_half_turn
from tests.tasks.rollouts import (
    check_declared_primitives,
    check_full_skill_rollout,
    close_shared_envs,
    expert_rollout,
    shared_env,
)

TASK = "SARM2/SetDinnerTable-v0"


@pytest.fixture(scope="module", autouse=True)
def _close_envs():
    yield
    close_shared_envs()


def _env():
    env = shared_env(TASK).unwrapped
    env.reset(seed=0)
    return env


def _put(env, name: str, x: float, y: float, yaw: float = 0.0, z: float | None = None, tilt: bool = False) -> None:
    """Set an object's pose by hand (``tilt``: lying on its side)."""
    t = TABLEWARE_BY_NAME[name]
    adr = env._qadr[name]
    quat = np.array([np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)])
    if tilt:  # a quarter turn about x, then the yaw
        side = np.array([np.cos(np.pi / 4), np.sin(np.pi / 4), 0.0, 0.0])
        mujoco.mju_mulQuat(quat, quat.copy(), side)
    env.data.qpos[adr : adr + 3] = [x, y, t.half_height if z is None else z]
    env.data.qpos[adr + 3 : adr + 7] = quat
    mujoco.mj_forward(env.model, env.data)


def _set_all(env) -> None:
    for t in TABLEWARE:
        xy, yaw = env.marker(t.name)
        _put(env, t.name, *xy, yaw=yaw)


# ---------------------------------------------------------------------- expert
def test_full_skill_expert_succeeds():
    ep = expert_rollout(TASK, 0, 1.0)
    check_full_skill_rollout(TASK, ep, 0)
    assert 380 <= len(ep.infos) <= 520  # the longest task: ~420-500 steps
    assert ep.final["eval/n_placed"] == 4.0 and ep.final["eval/held"] == 0.0


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2])
def test_full_skill_expert_succeeds_on_more_seeds(seed):
    check_full_skill_rollout(TASK, expert_rollout(TASK, seed, 1.0), seed)


def test_full_skill_expert_uses_the_declared_primitives():
    ep = expert_rollout(TASK, 0, 1.0)
    check_declared_primitives(TASK, ep)
    placed = ep.series("eval/n_placed")
    assert placed[0] == 0.0 and np.all(np.diff(placed) >= 0)  # the expert never undoes a placement
    # Cutlery is turned only while it is held.
    labels = [info["primitive"] for info in ep.infos]
    held = ep.series("eval/held")
    assert all(h == 1.0 for lab, h in zip(labels, held) if lab == "rotate_turn")


@pytest.mark.slow
def test_low_skill_expert_fails_sometimes():
    outcomes, progress = [], []
    for seed in range(6):
        ep = expert_rollout(TASK, seed, 0.3)
        outcomes.append(ep.final["success"])
        progress.append(ep.final["progress"])
        if not outcomes[-1]:
            break
    assert not all(outcomes)
    assert max(p for p, ok in zip(progress, outcomes) if not ok) > 0.25  # failures still make partial progress


def test_expert_is_reproducible():
    first = expert_rollout(TASK, 3, 0.5, expert_seed=11, max_steps=40)
    again = expert_rollout.__wrapped__(TASK, 3, 0.5, expert_seed=11, max_steps=40)
    for a, b in zip(first.actions, again.actions):
        np.testing.assert_array_equal(a, b)
    assert first.infos == again.infos


# ---------------------------------------------------------------------- ground truth
def test_fresh_episode_scores_zero_and_randomises_the_layout():
    env = shared_env(TASK).unwrapped
    starts = []
    for seed in range(3):
        _, info = env.reset(seed=seed)
        assert info["progress"] == 0.0 and not info["success"]
        starts.append(np.concatenate([env.object_pose(t.name)[0] for t in TABLEWARE] + [env.marker("plate")[0]]))
    assert not np.allclose(starts[0], starts[1])


def test_everything_in_place_is_success():
    env = _env()
    _set_all(env)
    ev = env.evaluate()
    assert ev.success and ev.progress == pytest.approx(1.0)
    assert ev.terms["n_placed"] == 4.0


def test_taking_an_object_off_its_place_lowers_progress():
    env = _env()
    _set_all(env)
    full = env.evaluate().progress
    xy, _ = env.marker("fork")
    _put(env, "fork", xy[0] - 0.06, xy[1])  # part way back towards the tray
    part = env.evaluate()
    assert not part.success and part.terms["fork_placed"] == 0.0
    assert 0.75 < part.progress < full
    _put(env, "fork", *env.object_pose("fork")[0][:2] - np.array([0.1, 0.0]))  # back in the tray
    back = env.evaluate()
    assert back.progress == pytest.approx(0.75) and back.terms["fork_align"] == 0.0


def test_cutlery_must_be_aligned_with_its_marker():
    env = _env()
    _set_all(env)
    xy, yaw = env.marker("knife")
    _put(env, "knife", *xy, yaw=yaw + YAW_TOL + 0.1)
    turned = env.evaluate()
    assert not turned.success and turned.terms["knife_placed"] == 0.0
    _put(env, "knife", *xy, yaw=yaw + np.pi)  # end for end: the proxy's cutlery is symmetric
    assert env.evaluate().success
    _put(env, "knife", *xy, yaw=yaw + np.pi / 2)  # across its marker: position counts, yaw does not
    across = env.evaluate()
    assert across.terms["knife_align"] == pytest.approx(0.6)
    assert across.progress < turned.progress


def test_success_needs_release_upright_and_on_the_table():
    env = _env()
    _set_all(env)
    grasp = env.grasps[("right", "cup")]
    env.data.eq_active[grasp.eq_id] = 1
    held = env.evaluate()
    assert not held.success and held.terms["held"] == 1.0 and held.progress < 1.0
    env.data.eq_active[grasp.eq_id] = 0
    xy, _ = env.marker("cup")
    _put(env, "cup", *xy, z=0.03, tilt=True)  # knocked over on its place
    assert not env.evaluate().success
    _put(env, "cup", *xy, z=0.1)  # hovering over its place
    assert not env.evaluate().success
    _put(env, "cup", *xy)
    assert env.evaluate().success


def test_wrap_half_turn():
    for angle, expected in [
        (0.0, 0.0),
        (np.pi, 0.0),
        (np.pi / 2, np.pi / 2),
        (-np.pi / 2, np.pi / 2),
        (2.0, 2.0 - np.pi),
    ]:
        assert wrap_half_turn(angle) == pytest.approx(expected)


def test_grasp_assist_holds_only_one_object_per_hand():
    env = shared_env(TASK)
    expert = tasks.make_expert(env)
    for _ in run_expert_episode(env, expert, seed=0, max_steps=45):  # through the plate's pick
        pass
    u = env.unwrapped
    assert u.holding("left") == "plate" and u.holding("right") is None
    assert sum(g.active(u.data) for g in u.grasps.values()) == 1
