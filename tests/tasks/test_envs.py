"""Tests of the Gymnasium task envs (tasks/base.py, tasks/fold_shorts.py, tasks/clean_whiteboard.py)."""

from __future__ import annotations

import warnings

import gymnasium as gym
import mujoco
import numpy as np
import pytest
from gymnasium import spaces
from gymnasium.utils.env_checker import check_env

import tasks
from sarm2_env.constants import ACTION_DIM, CAMERAS, GRIPPER_INDICES, STATE_DIM
from sarm2_env.errors import ConfigError, InvalidActionError, SARM2Error, UnknownNameError
from tasks.base import JOINT_OVERSHOOT
from tasks.clean_whiteboard import ERASER_HALF, TRAY_CENTER, CleanWhiteboardEnv
from tasks.fold_shorts import CLOTH_Z, GRID

TASK_IDS = sorted(tasks.TASKS)
WHITEBOARD = "SARM2/CleanWhiteboard-v0"
FOLD = "SARM2/FoldShorts-v0"


# ---------------------------------------------------------------------- helpers
def assert_obs_equal(a: dict, b: dict) -> None:
    assert set(a["pixels"]) == set(b["pixels"]) == set(CAMERAS)
    for cam in CAMERAS:
        np.testing.assert_array_equal(a["pixels"][cam], b["pixels"][cam], err_msg=cam)
    np.testing.assert_array_equal(a["agent_pos"], b["agent_pos"])


def near_home_actions(env: gym.Env, n: int, seed: int) -> list[np.ndarray]:
    """Small, in-range perturbations of the home pose (joint limits are not approached)."""
    rng = np.random.default_rng(seed)
    home = env.unwrapped.home_action
    space = env.action_space
    return [
        np.clip(home + rng.normal(0.0, 0.05, ACTION_DIM), space.low, space.high).astype(np.float32) for _ in range(n)
    ]


def check_info(info: dict, env: gym.Env) -> None:
    assert isinstance(info["success"], bool)
    assert isinstance(info["progress"], float)
    assert 0.0 <= info["progress"] <= 1.0
    assert isinstance(info["task"], str) and info["task"]
    assert info["task"] == env.unwrapped.instruction
    assert "primitive" not in info  # only reported while an expert labels its segments
    eval_keys = [k for k in info if k.startswith("eval/")]
    assert eval_keys, "task-specific evaluation terms are reported"
    assert all(isinstance(info[k], float) for k in eval_keys)


# ---------------------------------------------------------------------- API contract
@pytest.mark.parametrize("task_id", TASK_IDS)
def test_gymnasium_check_env(task_id):
    env = gym.make(task_id, image_size=32)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. "use a symmetric and normalized action space"
            check_env(env.unwrapped, skip_render_check=True)
    finally:
        env.close()


@pytest.mark.parametrize("task_id", TASK_IDS)
def test_spaces(cached_env, task_id):
    env = cached_env(task_id)
    obs_space = env.observation_space
    assert isinstance(obs_space, spaces.Dict)
    assert set(obs_space.spaces) == {"pixels", "agent_pos"}
    assert isinstance(obs_space["pixels"], spaces.Dict)
    assert set(obs_space["pixels"].spaces) == set(CAMERAS)
    for cam in CAMERAS:
        box = obs_space["pixels"][cam]
        assert isinstance(box, spaces.Box)
        assert box.shape == (32, 32, 3) and box.dtype == np.uint8
        assert np.all(box.low == 0) and np.all(box.high == 255)
    state = obs_space["agent_pos"]
    margin = np.full(STATE_DIM, JOINT_OVERSHOOT, dtype=np.float32)
    margin[list(GRIPPER_INDICES)] = 0.0
    assert isinstance(state, spaces.Box) and state.shape == (STATE_DIM,) and state.dtype == np.float32
    act = env.action_space
    assert isinstance(act, spaces.Box) and act.shape == (ACTION_DIM,) and act.dtype == np.float32
    assert np.all(act.low < act.high)
    np.testing.assert_array_equal(act.low[list(GRIPPER_INDICES)], 0.0)
    np.testing.assert_array_equal(act.high[list(GRIPPER_INDICES)], 1.0)
    # The state and the action are both absolute joint positions + gripper openings.
    # Joint readings may overshoot their limits by JOINT_OVERSHOOT; gripper bounds are exact.
    np.testing.assert_allclose(state.low, act.low - margin, atol=1e-6)
    np.testing.assert_allclose(state.high, act.high + margin, atol=1e-6)
    # Registered episode limit is the class's.
    assert env.spec.max_episode_steps == env.unwrapped.max_episode_steps


@pytest.mark.parametrize("task_id", TASK_IDS)
def test_observations_are_in_the_space(cached_env, task_id):
    env = cached_env(task_id)
    obs, _ = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    assert env.action_space.contains(env.unwrapped.home_action)
    for action in near_home_actions(env, 4, seed=1):
        obs, *_ = env.step(action)
        assert env.observation_space.contains(obs)


@pytest.mark.parametrize("task_id", [WHITEBOARD])
def test_agent_pos_stays_in_space_when_a_joint_is_commanded_to_its_limit(cached_env, task_id):
    env = cached_env(task_id)
    env.reset(seed=0)
    action = env.unwrapped.home_action.copy()
    action[7] = env.action_space.high[7]  # right joint 1 at its upper limit (pi)
    for _ in range(3):
        obs, *_ = env.step(action)
        assert env.observation_space["agent_pos"].contains(obs["agent_pos"]), obs["agent_pos"][7]


@pytest.mark.parametrize("task_id", TASK_IDS)
def test_image_size_tuple_and_rgb_array_render(task_id):
    env = gym.make(task_id, image_size=(40, 56), render_mode="rgb_array")
    try:
        assert env.observation_space["pixels"]["top"].shape == (40, 56, 3)
        obs, _ = env.reset(seed=0)
        for cam in CAMERAS:
            assert obs["pixels"][cam].shape == (40, 56, 3)
            assert obs["pixels"][cam].dtype == np.uint8
        frame = env.render()
        assert frame.shape == (40, 3 * 56, 3) and frame.dtype == np.uint8
        # The frame is the three views side by side, in CAMERAS order.
        np.testing.assert_array_equal(frame, np.concatenate([obs["pixels"][c] for c in CAMERAS], axis=1))
        assert frame.std() > 0  # something was drawn
    finally:
        env.close()


def test_render_without_render_mode_returns_none(cached_env):
    env = cached_env(WHITEBOARD)
    env.reset(seed=0)
    assert env.unwrapped.render_mode is None
    assert env.unwrapped.render() is None


# ---------------------------------------------------------------------- determinism
@pytest.mark.parametrize("task_id", TASK_IDS)
def test_same_seed_gives_identical_episodes(cached_env, task_id):
    env_a = cached_env(task_id)
    env_a.reset(seed=99)  # dirty the shared env first: reset must leave nothing behind
    for action in near_home_actions(env_a, 3, seed=5):
        env_a.step(action)
    env_b = gym.make(task_id, image_size=32)
    try:
        obs_a, info_a = env_a.reset(seed=123)
        obs_b, info_b = env_b.reset(seed=123)
        assert_obs_equal(obs_a, obs_b)
        assert info_a == info_b
        env_a.action_space.seed(7)
        actions = [env_a.action_space.sample() for _ in range(5)]
        for action in actions:
            out_a = env_a.step(action)
            out_b = env_b.step(action.copy())
            assert_obs_equal(out_a[0], out_b[0])
            assert out_a[1:] == out_b[1:]  # reward, terminated, truncated, info
    finally:
        env_b.close()


@pytest.mark.parametrize("task_id", TASK_IDS)
def test_different_seeds_give_different_initial_states(cached_env, task_id):
    env = cached_env(task_id)
    obs_0, _ = env.reset(seed=0)
    top_0 = obs_0["pixels"]["top"].copy()
    obs_1, _ = env.reset(seed=1)
    assert not np.array_equal(top_0, obs_1["pixels"]["top"])
    # Only the task objects are randomised: the robot starts at home either way.
    np.testing.assert_array_equal(obs_0["agent_pos"], obs_1["agent_pos"])


# ---------------------------------------------------------------------- info, progress
@pytest.mark.parametrize("task_id", TASK_IDS)
def test_info_keys(cached_env, task_id):
    env = cached_env(task_id)
    _, info = env.reset(seed=0)
    check_info(info, env)
    assert info["success"] is False
    assert info["progress"] < 0.05
    _, reward, terminated, truncated, info = env.step(env.unwrapped.home_action)
    check_info(info, env)
    assert reward == 0.0 and not terminated and not truncated


@pytest.mark.parametrize("task_id", TASK_IDS)
def test_progress_bounded_over_random_rollout(cached_env, task_id):
    env = cached_env(task_id)
    env.reset(seed=7)
    env.action_space.seed(7)
    for _ in range(20):
        _, reward, terminated, _, info = env.step(env.action_space.sample())
        assert 0.0 <= info["progress"] <= 1.0
        if info["success"]:
            assert info["progress"] >= 0.9
        assert reward == float(info["success"])
        assert terminated == info["success"]  # terminate_on_success defaults to True
        ev = env.unwrapped.evaluate()
        assert info["progress"] == pytest.approx(float(np.clip(ev.progress, 0.0, 1.0)))
        if terminated:
            break


# ---------------------------------------------------------------------- bad input
BAD_ACTIONS = {
    "short": (np.zeros(13, dtype=np.float32), r"\(14,\)"),
    "nan": (np.full(14, np.nan, dtype=np.float32), "finite"),
    "inf": (np.array([0.0] * 13 + [np.inf]), "finite"),
    "string": ("open the gripper", r"\(14,\)"),
    "batched": (np.zeros((1, 14)), r"\(14,\)"),
}


@pytest.mark.parametrize("task_id", TASK_IDS)
@pytest.mark.parametrize("kind", sorted(BAD_ACTIONS))
def test_bad_actions_raise_invalid_action_error(cached_env, task_id, kind):
    env = cached_env(task_id)
    env.reset(seed=0)
    qpos = env.unwrapped.data.qpos.copy()
    action, expected = BAD_ACTIONS[kind]
    with pytest.raises(InvalidActionError, match=expected) as exc_info:
        env.step(action)
    assert isinstance(exc_info.value, ValueError) and isinstance(exc_info.value, SARM2Error)
    assert "action" in str(exc_info.value)
    # Rejected before touching the simulation; the env stays usable.
    assert env.unwrapped.elapsed_steps == 0
    np.testing.assert_array_equal(env.unwrapped.data.qpos, qpos)
    env.step(env.unwrapped.home_action)
    assert env.unwrapped.elapsed_steps == 1


def test_out_of_range_actions_are_clipped_not_rejected(cached_env):
    env = cached_env(WHITEBOARD)
    env.reset(seed=0)
    action = env.unwrapped.home_action.copy()
    action[list(GRIPPER_INDICES)] = 5.0  # clipped to fully open
    *_, info = env.step(action)
    np.testing.assert_allclose(env.unwrapped.gripper_command(), [1.0, 1.0])
    assert info["action/clipped"] == 2  # and counted, as the real station counts its clamps
    *_, info = env.step(env.unwrapped.home_action)
    assert info["action/clipped"] == 0


BAD_CONFIGS = [
    ({"image_size": 0}, "image_size"),
    ({"image_size": 5000}, "image_size"),
    ({"image_size": "big"}, "image_size"),
    ({"image_size": (1, 2, 3)}, "image_size"),
    ({"image_size": (40.0, 40)}, "image_size"),
    ({"image_size": 64.0}, "image_size"),  # a TypeError inside tuple() before
    ({"image_size": None}, "image_size"),
    ({"image_size": True}, "image_size"),
    ({"control_hz": 7}, "control_hz"),
    ({"control_hz": 0}, "control_hz"),
    ({"control_hz": 10.0}, "control_hz"),
    ({"render_mode": "bogus"}, "render_mode"),
]


@pytest.mark.filterwarnings("ignore:.*not in the possible render_modes")
@pytest.mark.parametrize("task_id", TASK_IDS)
@pytest.mark.parametrize("kwargs,field", BAD_CONFIGS, ids=[f"{k}={v!r}" for d, _ in BAD_CONFIGS for k, v in d.items()])
def test_bad_config_raises_config_error(task_id, kwargs, field):
    with pytest.raises(ConfigError, match=field):
        gym.make(task_id, **kwargs)


def test_human_render_mode_rejected_by_the_env_itself():
    # (gym.make turns "human" into a HumanRendering wrapper around "rgb_array", so use the class.)
    with pytest.raises(ConfigError, match="render_mode"):
        CleanWhiteboardEnv(render_mode="human")


def test_control_hz_sets_the_control_period():
    env = gym.make(WHITEBOARD, image_size=16, control_hz=25)
    try:
        env.reset(seed=0)
        assert env.unwrapped.n_substeps == 20
        assert env.unwrapped.metadata["render_fps"] == 25
        env.step(env.unwrapped.home_action)
        assert env.unwrapped.data.time == pytest.approx(1 / 25)
    finally:
        env.close()


def test_unknown_task_name():
    with pytest.raises(UnknownNameError) as exc_info:
        tasks.make_task_env("FoldShort")
    err = exc_info.value
    assert isinstance(err, ValueError)
    msg = str(err)
    assert "'FoldShort'" in msg
    for task_id in tasks.TASKS:
        assert task_id in msg
    assert "Did you mean 'SARM2/FoldShorts-v0'?" in msg
    assert err.known == sorted(tasks.TASKS)


@pytest.mark.parametrize("typo", ["PulPlug", "pullplug", "PullPlug-v1"])
def test_short_name_typos_get_a_suggestion(typo):
    with pytest.raises(UnknownNameError, match="Did you mean 'SARM2/PullPlug-v0'"):
        tasks.resolve_task_id(typo)


@pytest.mark.parametrize(
    "name,expected",
    [
        ("FoldShorts", FOLD),
        ("FoldShorts-v0", FOLD),
        (FOLD, FOLD),
        ("CleanWhiteboard", WHITEBOARD),
        ("CleanWhiteboard-v0", WHITEBOARD),
    ],
)
def test_resolve_task_id(name, expected):
    assert tasks.resolve_task_id(name) == expected


def test_make_env_by_short_name():
    env = tasks.make_task_env("CleanWhiteboard", image_size=16)
    try:
        assert env.spec.id == WHITEBOARD
        assert isinstance(env.unwrapped, CleanWhiteboardEnv)
        assert env.unwrapped.height == env.unwrapped.width == 16
    finally:
        env.close()


# ---------------------------------------------------------------------- ground truth: whiteboard
def _place_eraser(env, x: float, y: float, z: float, yaw: float = 0.0) -> None:
    adr = env._eraser_qadr
    env.data.qpos[adr : adr + 7] = [x, y, z, np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)]
    mujoco.mj_forward(env.model, env.data)


def test_whiteboard_ground_truth(cached_env):
    env = cached_env(WHITEBOARD).unwrapped
    _, info = env.reset(seed=0)
    assert info["progress"] == 0.0 and info["eval/ink_cleared"] == 0.0
    assert 0.25 <= env._inked.mean() <= 0.6  # randomised ink covers 25-60 % of the cells
    assert not env._wiped.any()

    # Half the ink wiped: progress is 0.8 * the cleared fraction.
    inked = np.flatnonzero(env._inked)
    env._wiped[inked[: len(inked) // 2]] = True
    ev = env.evaluate()
    assert ev.terms["ink_cleared"] == pytest.approx((len(inked) // 2) / len(inked))
    assert ev.progress == pytest.approx(0.8 * ev.terms["ink_cleared"])
    assert not ev.success

    # All ink wiped, eraser still on the table next to the board.
    env._wiped[:] = env._inked
    ev = env.evaluate()
    assert ev.terms["ink_cleared"] == 1.0
    assert ev.progress >= 0.8
    assert not ev.success

    # Eraser resting on the tray: done.
    _place_eraser(env, *TRAY_CENTER, ERASER_HALF[2])
    ev = env.evaluate()
    assert ev.success and ev.progress == pytest.approx(1.0)
    assert ev.terms["eraser_in_tray"] == 1.0
    _, reward, terminated, _, info = env.step(env.home_action)
    assert info["success"] is True and info["progress"] == pytest.approx(1.0)
    assert reward == 1.0 and terminated

    # Still held by a gripper over the tray: not success (it must be released).
    grasp = env.grasps["right"]
    env.data.eq_active[grasp.eq_id] = 1
    ev = env.evaluate()
    assert not ev.success and ev.terms["eraser_held"] == 1.0
    env.data.eq_active[grasp.eq_id] = 0


def test_whiteboard_tray_without_wiping_is_not_success(cached_env):
    env = cached_env(WHITEBOARD).unwrapped
    env.reset(seed=1)
    _place_eraser(env, *TRAY_CENTER, ERASER_HALF[2])
    ev = env.evaluate()
    assert not ev.success
    assert ev.progress == pytest.approx(0.2)  # hold-or-tray 0.1 + placement 0.1, no ink credit


def test_whiteboard_wiping_needs_the_eraser_flat_on_the_board(cached_env):
    env = cached_env(WHITEBOARD).unwrapped
    env.reset(seed=2)
    for _ in range(5):  # the robot idling at home never wipes anything
        env.step(env.home_action)
    assert env.ink_cleared() == 0.0
    cell = env._cell_centers[np.flatnonzero(env._inked)[0]]
    board_top = float(env.model.geom("board").pos[2] + env.model.geom("board").size[2])
    _place_eraser(env, *cell, board_top + ERASER_HALF[2] + 0.02)  # 2 cm above the board
    env._after_physics()
    assert env.ink_cleared() == 0.0
    _place_eraser(env, *cell, board_top + ERASER_HALF[2])  # resting on the board
    env._after_physics()
    assert 0.0 < env.ink_cleared() < 1.0
    k = int(np.argmin(np.linalg.norm(env._cell_centers - cell, axis=1)))
    assert env._wiped[k]
    assert env.model.geom_rgba[env._ink_geoms[k], 3] == 0.0  # the wiped ink disappears from the images
    assert not (env._wiped & ~env._inked).any()  # blank cells never count
    remaining = env.remaining_ink()
    assert len(remaining) == int((env._inked & ~env._wiped).sum())


# ---------------------------------------------------------------------- ground truth: fold
def _set_cloth(env, positions: np.ndarray) -> None:
    """Put the cloth's vertices at ``positions`` (N, 3); vertex qpos are offsets from the rest layout."""
    for i, adr in enumerate(env._vqadr):
        env.data.qpos[adr : adr + 3] = positions[i] - env._rest[i]
    mujoco.mj_forward(env.model, env.data)


def _mirror_half(p: np.ndarray, axis: int, lift: float) -> np.ndarray:
    """Fold the half with the larger ``axis`` coordinate onto the other half, ``lift`` m up."""
    p = p.copy()
    mid = p[:, axis].mean()
    moving = p[:, axis] > mid + 1e-9
    p[moving, axis] = 2 * mid - p[moving, axis]
    p[moving, 2] += lift
    return p


def _fold_far_onto_near(p: np.ndarray) -> np.ndarray:
    """Fold 1: the far half (+x) mirrored onto the near half, one layer up."""
    return _mirror_half(p, axis=0, lift=0.006)


def _fold_left_onto_right(p: np.ndarray) -> np.ndarray:
    """Fold 2: the left half (+y) mirrored onto the right half, on top."""
    return _mirror_half(p, axis=1, lift=0.012)


def test_fold_grid_layout(cached_env):
    env = cached_env(FOLD).unwrapped
    env.reset(seed=0)
    rest = env._rest
    assert rest.shape == (GRID[0] * GRID[1], 3)
    # vertex index = ix * 9 + iy, ix along x (depth), iy along y (width)
    assert rest[9, 0] > rest[0, 0] and rest[9, 1] == pytest.approx(rest[0, 1])
    assert rest[1, 1] > rest[0, 1] and rest[1, 0] == pytest.approx(rest[0, 0])
    np.testing.assert_allclose(env.vertices()[:, 2], CLOTH_Z, atol=1e-6)  # reset lays it flat


def test_fold_ground_truth(cached_env):
    env = cached_env(FOLD).unwrapped
    _, info = env.reset(seed=0)
    assert info["progress"] == pytest.approx(0.0, abs=1e-9)
    flat = env._rest.copy()

    _set_cloth(env, flat)
    ev = env.evaluate()
    assert ev.progress == pytest.approx(0.0, abs=1e-9) and not ev.success

    _set_cloth(env, _fold_far_onto_near(flat))
    half = env.evaluate()
    assert 0.35 <= half.progress <= 0.5
    assert half.terms["fold1"] > 0.9 and half.terms["fold2"] < 0.05
    assert not half.success

    folded = _fold_left_onto_right(_fold_far_onto_near(flat))
    _set_cloth(env, folded)
    full = env.evaluate()
    assert full.success and full.progress >= 0.9
    assert full.terms["fold1"] > 0.9 and full.terms["fold2"] > 0.9 and full.terms["held"] == 0.0

    # Unfolding it again takes the progress back.
    _set_cloth(env, _fold_far_onto_near(flat))
    assert env.evaluate().progress == pytest.approx(half.progress)
    _set_cloth(env, flat)
    back = env.evaluate()
    assert back.progress == pytest.approx(0.0, abs=1e-9) and not back.success


def test_fold_success_needs_release_and_cloth_on_the_table(cached_env):
    env = cached_env(FOLD).unwrapped
    env.reset(seed=0)
    folded = _fold_left_onto_right(_fold_far_onto_near(env._rest))
    _set_cloth(env, folded)
    assert env.evaluate().success

    env.pinches["left"].held = [0]  # a gripper still holds the cloth
    ev = env.evaluate()
    assert not ev.success and ev.terms["held"] == 1.0
    assert ev.progress < 0.9 + 1e-9
    env.pinches["left"].held = []

    lifted = folded + np.array([0.0, 0.0, 0.05])  # folded, but in the air
    _set_cloth(env, lifted)
    assert not env.evaluate().success


@pytest.mark.parametrize("task_id", TASK_IDS)
def test_task_card_and_class_attributes(cached_env, task_id):
    """Each task declares what tooling relies on: a task card, its limit, and whether it simulates deformables."""
    env = cached_env(task_id)
    cls = type(env.unwrapped)
    doc = cls.__doc__ or ""
    for heading in ("Description", "Progress", "Success", "Randomisation", "Episode end", "Version history"):
        assert f"**{heading}" in doc, f"{cls.__name__} task card lacks {heading!r}"
    assert task_id in doc
    assert env.unwrapped.max_episode_steps == env.spec.max_episode_steps  # read from tasks.TASK_TABLE
    assert cls.deformable == (env.unwrapped.model.nflex > 0)
