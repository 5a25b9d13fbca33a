"""Tests of SARM2/PlatesToDishRack-v0: expert episodes and physics ground truth."""

from __future__ import annotations

import mujoco
import numpy as np
import pytest

from tasks.plates import PLATE_RADIUS, REST_Z
from tasks.plates_to_dish_rack import RACK_FLOOR, RIB_HEIGHT, PlatesToDishRackEnv
from tests.tasks.rollouts import (
    check_declared_primitives,
    check_full_skill_rollout,
    close_shared_envs,
    expert_rollout,
    shared_env,
)

TASK = "SARM2/PlatesToDishRack-v0"


@pytest.fixture(scope="module", autouse=True)
def _close_envs():
    yield
    close_shared_envs()


def _env(seed: int = 0) -> PlatesToDishRackEnv:
    env = shared_env(TASK).unwrapped
    env.reset(seed=seed)
    return env


def _upright(lean_deg: float = 0.0) -> np.ndarray:
    """Plate standing on its edge, face normal towards -y, leaning ``lean_deg`` towards -y."""
    a = np.radians(90.0 - lean_deg) / 2
    return np.array([np.cos(a), np.sin(a), 0.0, 0.0])


def _put(env: PlatesToDishRackEnv, k: int, pos, quat=None) -> None:
    env.set_plate(k, np.asarray(pos, dtype=float), quat)
    mujoco.mj_forward(env.model, env.data)


def _in_slot(env: PlatesToDishRackEnv, s: int) -> np.ndarray:
    # The feet stick out on the +y face of a plate standing this way: keep the plate 4 mm towards -y.
    x, y = env.slot_centers()[s]
    return np.array([x, y - 0.004, RACK_FLOOR + PLATE_RADIUS + 0.0005])


# ---------------------------------------------------------------------- expert
@pytest.mark.parametrize("seed", [0, pytest.param(1, marks=pytest.mark.slow), pytest.param(2, marks=pytest.mark.slow)])
def test_full_skill_expert_succeeds(seed):
    ep = expert_rollout(TASK, seed, 1.0)
    check_full_skill_rollout(TASK, ep, seed)
    assert ep.final["eval/plates_in_rack"] == 2.0
    assert ep.final["eval/plate0_tilt_deg"] > 60 and ep.final["eval/plate1_tilt_deg"] > 60


def test_full_skill_expert_uses_the_task_primitives():
    check_declared_primitives(TASK, expert_rollout(TASK, 0, 1.0))


def test_full_skill_expert_turns_each_plate_upright_before_inserting_it():
    ep = expert_rollout(TASK, 0, 1.0)
    labels = [info["primitive"] for info in ep.infos]
    tilt = ep.series("eval/plate0_tilt_deg")
    in_slot = ep.series("eval/plate0_in_slot")
    turned, slotted = np.argmax(tilt > 80), np.argmax(in_slot > 0)
    assert 0 < turned < slotted
    assert labels[turned] in ("rotate_turn", "insert") and labels[slotted] == "insert"
    assert np.all(tilt[: labels.index("rotate_turn")] < 10)  # flat while being picked
    assert 220 <= len(ep.infos) <= 350  # a full-skill episode, about half the episode limit


@pytest.mark.slow
def test_low_skill_expert_fails_sometimes():
    outcomes = []
    for seed in range(6):
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
def test_progress_rises_with_pick_turn_insert_and_drops_when_the_plate_falls_flat():
    env = _env(0)
    ev = env.evaluate()
    assert ev.progress == 0.0 and not ev.success
    assert ev.terms["plate0_tilt_deg"] == pytest.approx(0.0, abs=1e-6)

    start = env.plate_pos(0)
    _put(env, 0, start + [0.0, 0.0, 0.06])  # picked up, still flat
    picked = env.evaluate().terms["plate0_score"]
    assert picked == pytest.approx(0.15)

    _put(env, 0, start + [0.0, 0.0, 0.08], _upright())  # turned upright in the air
    turned = env.evaluate().terms["plate0_score"]
    assert turned == pytest.approx(0.35)

    over = _in_slot(env, 0) + [0.0, 0.0, 0.05]  # upright over its slot
    _put(env, 0, over, _upright())
    assert env.slot_of(0) is None
    assert env.evaluate().terms["plate0_score"] == pytest.approx(0.55, abs=0.01)

    _put(env, 0, _in_slot(env, 0), _upright())  # standing in the slot, released
    one = env.evaluate()
    assert env.slot_of(0) == 0 and one.terms["plate0_score"] == pytest.approx(1.0)
    assert one.progress == pytest.approx(0.5) and not one.success

    _put(env, 1, _in_slot(env, 1), _upright(10.0))  # leaning a little: still in its slot
    both = env.evaluate()
    assert env.slot_of(1) == 1 and both.success and both.progress == pytest.approx(1.0)

    _put(env, 0, [*_in_slot(env, 0)[:2], RACK_FLOOR + RIB_HEIGHT + REST_Z])  # fallen flat onto the ribs
    fallen = env.evaluate()
    assert env.slot_of(0) is None and not fallen.success
    assert fallen.terms["plate0_score"] < 0.3 and fallen.progress < 0.7


def test_success_needs_released_plates_in_distinct_slots():
    env = _env(1)
    _put(env, 0, _in_slot(env, 0), _upright())
    _put(env, 1, _in_slot(env, 1), _upright())
    assert env.evaluate().success
    grasp = env.grasps["right"][1]
    env.data.eq_active[grasp.eq_id] = 1  # still held
    ev = env.evaluate()
    assert not ev.success and ev.terms["plate1_score"] == pytest.approx(0.8)
    env.data.eq_active[grasp.eq_id] = 0
    _put(env, 1, env.plate_pos(1) + [0.0, 0.0, 0.04], _upright())  # lifted back out of the slot
    assert env.slot_of(1) is None and not env.evaluate().success


def test_plates_stay_upright_in_the_rack_under_physics():
    env = _env(2)
    _put(env, 0, _in_slot(env, 0) + [0.0, 0.0, 0.005], _upright(5.0))
    _put(env, 1, _in_slot(env, 1) + [0.0, 0.0, 0.005], _upright(-5.0))
    for _ in range(15):
        _, reward, terminated, _, info = env.step(env.home_action)
        if terminated:
            break
    assert info["success"] and reward == 1.0
    assert info["eval/plate0_tilt_deg"] > 60 and info["eval/plate1_tilt_deg"] > 60


def test_an_upright_plate_outside_the_rack_falls_over():
    env = _env(3)
    _put(env, 0, env.plate_pos(0) + [0.0, 0.0, PLATE_RADIUS], _upright(10.0))
    tilts = []
    for _ in range(20):
        _, _, _, _, info = env.step(env.home_action)
        tilts.append(info["eval/plate0_tilt_deg"])
    assert tilts[-1] < 20  # nothing holds it up: it ends flat on the table
    assert info["eval/plate0_score"] < 0.05
