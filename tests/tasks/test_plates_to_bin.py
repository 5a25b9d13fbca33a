"""Tests of SARM2/PlatesToBin-v0: expert episodes and physics ground truth."""

from __future__ import annotations

import mujoco
import numpy as np
import pytest

from tasks.plates import REST_Z
from tasks.plates_to_bin import BIN_FLOOR_TOP, BIN_HEIGHT, DROP_OFFSETS, PlatesToBinEnv
from tests.tasks.rollouts import (
    check_declared_primitives,
    check_full_skill_rollout,
    close_shared_envs,
    expert_rollout,
    shared_env,
)

TASK = "SARM2/PlatesToBin-v0"


@pytest.fixture(scope="module", autouse=True)
def _close_envs():
    yield
    close_shared_envs()


def _env(seed: int = 0) -> PlatesToBinEnv:
    env = shared_env(TASK).unwrapped
    env.reset(seed=seed)
    return env


def _put(env: PlatesToBinEnv, k: int, pos) -> None:
    env.set_plate(k, np.asarray(pos, dtype=float))
    mujoco.mj_forward(env.model, env.data)


def _in_bin(env: PlatesToBinEnv, k: int) -> np.ndarray:
    return np.array([*(env.bin_center() + DROP_OFFSETS[k]), BIN_FLOOR_TOP + REST_Z])


# ---------------------------------------------------------------------- expert
@pytest.mark.parametrize("seed", [0, pytest.param(1, marks=pytest.mark.slow), pytest.param(2, marks=pytest.mark.slow)])
def test_full_skill_expert_succeeds(seed):
    ep = expert_rollout(TASK, seed, 1.0)
    check_full_skill_rollout(TASK, ep, seed)
    assert ep.final["eval/plates_in_bin"] == 2.0
    assert ep.final["eval/plate0_held"] == ep.final["eval/plate1_held"] == 0.0


def test_full_skill_expert_uses_the_task_primitives():
    check_declared_primitives(TASK, expert_rollout(TASK, 0, 1.0))


def test_full_skill_expert_fills_the_bin_one_plate_after_the_other():
    ep = expert_rollout(TASK, 0, 1.0)
    inside = ep.series("eval/plates_in_bin")
    first, second = np.argmax(inside >= 1), np.argmax(inside >= 2)
    assert 0 < first < second
    progress = ep.series("progress")
    assert progress[first - 1] < 0.5 < progress[-1]
    assert 150 <= len(ep.infos) <= 300  # a full-skill episode, about half the episode limit


@pytest.mark.slow
def test_low_skill_expert_fails_sometimes():
    outcomes = []
    for seed in range(8):
        ep = expert_rollout(TASK, seed, 0.2)
        outcomes.append(ep.final["success"])
        if not outcomes[-1]:
            assert ep.final["progress"] < 1.0
            break
    assert not all(outcomes)


def test_expert_is_reproducible():
    first = expert_rollout(TASK, 3, 0.5, expert_seed=11, max_steps=50)
    again = expert_rollout.__wrapped__(TASK, 3, 0.5, expert_seed=11, max_steps=50)
    for a, b in zip(first.actions, again.actions, strict=True):
        np.testing.assert_array_equal(a, b)
    assert first.infos == again.infos


# ---------------------------------------------------------------------- ground truth
def test_progress_follows_the_plates_into_the_bin_and_out_again():
    env = _env(0)
    ev = env.evaluate()
    assert ev.progress == 0.0 and not ev.success

    start = env.plate_pos(0)
    _put(env, 0, start + [0.0, 0.0, 0.05])  # lifted 5 cm where it lay: raised, not moved
    lifted = env.evaluate()
    assert lifted.terms["plate0_score"] == pytest.approx(0.2)

    above = _in_bin(env, 0) + [0.0, 0.0, BIN_HEIGHT + 0.03]  # carried over the bin, above the walls
    _put(env, 0, above)
    carried = env.evaluate()
    assert carried.terms["plate0_inside"] == 0.0
    assert carried.terms["plate0_score"] == pytest.approx(0.6)

    _put(env, 0, _in_bin(env, 0))  # resting in the bin
    one = env.evaluate()
    assert one.terms["plate0_inside"] == 1.0 and one.terms["plate0_score"] == pytest.approx(1.0)
    assert one.progress == pytest.approx(0.5) and not one.success

    _put(env, 1, _in_bin(env, 1))
    both = env.evaluate()
    assert both.success and both.progress == pytest.approx(1.0)
    assert both.terms["plates_in_bin"] == 2.0

    _put(env, 0, start)  # taken back out and put down where it was
    out = env.evaluate()
    assert not out.success and out.progress == pytest.approx(0.5)


def test_success_needs_released_plates_at_rest():
    env = _env(1)
    for k in range(2):
        _put(env, k, _in_bin(env, k))
    assert env.evaluate().success
    grasp = env.grasps["left"][0]
    env.data.eq_active[grasp.eq_id] = 1  # still held by the left gripper
    ev = env.evaluate()
    assert not ev.success and ev.terms["plate0_held"] == 1.0 and ev.progress == pytest.approx(0.8)
    env.data.eq_active[grasp.eq_id] = 0
    env.data.qvel[env._plate_dadr[1]] = 0.3  # still sliding
    assert not env.evaluate().success


def test_plate_on_the_wall_or_beside_the_bin_is_not_inside():
    env = _env(2)
    centre = env.bin_center()
    _put(env, 0, [*centre, BIN_HEIGHT + REST_Z])  # lying across the wall tops
    assert not env.plate_inside(0)
    _put(env, 0, [centre[0] + 0.12, centre[1], REST_Z])  # on the table just past the far wall
    assert not env.plate_inside(0)
    assert env.evaluate().terms["plate0_score"] == 0.0


def test_a_plate_dropped_into_the_bin_settles_there_and_succeeds():
    env = _env(4)
    for k in range(2):
        _put(env, k, _in_bin(env, k) + [0.0, 0.0, 0.03])  # let go 3 cm above the floor
    for _ in range(15):
        _, reward, terminated, _, info = env.step(env.home_action)
        if terminated:
            break
    assert info["success"] and reward == 1.0 and info["progress"] == pytest.approx(1.0)
