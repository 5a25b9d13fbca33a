"""Tests of the simulated YAM station (tasks/station.py) and its inverse kinematics (tasks/ik.py)."""

from __future__ import annotations

import mujoco
import numpy as np
import pytest

from sarm2_env.constants import ARMS, GRIPPER_INDICES
from tasks.ik import ArmIK, tool_rotation
from tasks.station import (
    D405_FOVY_DEG,
    GRIPPER_TRAVEL,
    HOME_QPOS,
    TABLE_TOP_Z,
    build_station_spec,
    ctrl_to_gripper,
    gripper_to_ctrl,
)

ARM_BASE_Y = {"left": 0.0, "right": -0.61}


@pytest.fixture(scope="module")
def model() -> mujoco.MjModel:
    return build_station_spec().compile()


@pytest.fixture(scope="module")
def ik() -> ArmIK:
    return ArmIK()


def test_actuators(model):
    expected = [f"{arm}_{j}" for arm in ARMS for j in [*(f"joint{i}" for i in range(1, 7)), "gripper"]]
    assert model.nu == 14
    assert [model.actuator(i).name for i in range(model.nu)] == expected
    for arm in ARMS:
        grip = model.actuator(f"{arm}_gripper")
        np.testing.assert_allclose(grip.ctrlrange, [0.0, GRIPPER_TRAVEL])
        assert model.joint(grip.trnid[0]).name == f"{arm}_joint7"
        for i in range(1, 7):  # joint actuators span exactly the joint's range
            act = model.actuator(f"{arm}_joint{i}")
            np.testing.assert_allclose(act.ctrlrange, model.joint(f"{arm}_joint{i}").range)


def test_cameras(model):
    names = {model.camera(i).name for i in range(model.ncam)}
    assert names == {"top", "left_wrist", "right_wrist"}
    np.testing.assert_allclose(model.cam_fovy, D405_FOVY_DEG)


def test_base_link1_contact_excluded_for_both_arms(model):
    pairs = {(model.body(sig >> 16).name, model.body(sig & 0xFFFF).name) for sig in model.exclude_signature}
    for arm in ARMS:
        assert (f"{arm}_base", f"{arm}_link1") in pairs


def test_gravity_compensation(model):
    for arm in ARMS:
        for body in ("link2", "link3", "link4", "link5", "gripper"):
            assert model.body_gravcomp[model.body(f"{arm}_{body}").id] == 1.0, f"{arm}_{body}"
        assert model.body_gravcomp[model.body(f"{arm}_link1").id] == 0.0


def test_visual_meshes_do_not_collide_and_are_decimated(model):
    mesh_geoms = np.flatnonzero(model.geom_type == mujoco.mjtGeom.mjGEOM_MESH)
    assert len(mesh_geoms) > 0
    assert np.all(model.geom_contype[mesh_geoms] == 0)
    assert np.all(model.geom_conaffinity[mesh_geoms] == 0)
    assert model.nmesh > 0
    assert int(model.mesh_facenum.sum()) < 20_000


def test_collision_pads_and_table(model):
    for arm in ARMS:
        for name in (f"{arm}_tip_left_pad", f"{arm}_tip_right_pad", f"{arm}_palm"):
            geom = model.geom(name)
            assert geom.type[0] == mujoco.mjtGeom.mjGEOM_BOX
            assert geom.contype[0] != 0
    table = model.geom("table")
    assert table.pos[2] + table.size[2] == pytest.approx(TABLE_TOP_Z)


def test_pads_meet_at_the_tool_centre_when_closed(model):
    data = mujoco.MjData(model)
    mujoco.mj_forward(model, data)  # qpos = 0: grippers closed
    for arm in ARMS:
        left = data.geom(f"{arm}_tip_left_pad").xpos
        right = data.geom(f"{arm}_tip_right_pad").xpos
        tcp = data.site(f"tcp_{arm}").xpos
        assert np.linalg.norm(0.5 * (left + right) - tcp) < 0.02
        assert np.linalg.norm(left - right) < 0.015


@pytest.mark.parametrize(
    "arm,target",
    [
        ("left", (0.3, 0.0, 0.05)),
        ("right", (0.3, -0.61, 0.05)),
        ("left", (0.4, 0.1, 0.10)),
        ("right", (0.2, -0.5, 0.15)),
    ],
)
def test_ik_reaches_targets_pointing_down(ik, arm, target):
    rot = tool_rotation(0)
    q, err = ik.solve(arm, np.array(target), rot, HOME_QPOS[:6])
    assert q.shape == (6,)
    assert err < 0.002
    pos, got_rot = ik.forward(arm, q)
    assert np.linalg.norm(pos - np.array(target)) < 0.002
    assert err == pytest.approx(np.linalg.norm(pos - np.array(target)), abs=1e-4)
    np.testing.assert_allclose(got_rot, rot, atol=0.01)
    assert np.all(q >= ik._lo[arm] - 1e-9) and np.all(q <= ik._hi[arm] + 1e-9)


def test_ik_reports_unreachable_targets(ik):
    q, err = ik.solve("left", np.array([1.5, 0.0, 0.05]), tool_rotation(0), HOME_QPOS[:6])
    assert err > 0.5  # honest residual, not a silent success
    assert np.all(q >= ik._lo["left"] - 1e-9) and np.all(q <= ik._hi["left"] + 1e-9)


def test_tool_rotation_is_a_rotation():
    for yaw, tilt in ((0.0, 0.0), (0.7, 0.0), (-1.2, 0.3)):
        r = tool_rotation(yaw, tilt)
        np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-12)
        assert np.linalg.det(r) == pytest.approx(1.0)
    np.testing.assert_allclose(tool_rotation(0)[:, 2], [0, 0, -1])  # approach axis points down


@pytest.mark.parametrize("arm", ARMS)
def test_home_pose_matches_its_description(ik, arm):
    """HOME_QPOS: tool centre 0.25 m in front of its base, 0.15 m above the table, pointing down."""
    pos, rot = ik.forward(arm, HOME_QPOS[:6])
    np.testing.assert_allclose(pos, [0.25, ARM_BASE_Y[arm], 0.15], atol=0.002)
    np.testing.assert_allclose(rot, tool_rotation(0), atol=1e-3)


def test_gripper_conversions_round_trip():
    opening = np.linspace(0.0, 1.0, 11)
    np.testing.assert_allclose(ctrl_to_gripper(gripper_to_ctrl(opening)), opening, atol=1e-12)
    travel = np.linspace(0.0, GRIPPER_TRAVEL, 7)
    np.testing.assert_allclose(gripper_to_ctrl(ctrl_to_gripper(travel)), travel, atol=1e-12)
    assert gripper_to_ctrl(1.0) == pytest.approx(GRIPPER_TRAVEL)
    assert gripper_to_ctrl(0.0) == 0.0
    # Out-of-range values are clipped, not extrapolated.
    assert gripper_to_ctrl(1.7) == pytest.approx(GRIPPER_TRAVEL)
    assert gripper_to_ctrl(-0.5) == 0.0
    assert ctrl_to_gripper(0.2) == 1.0 and ctrl_to_gripper(-0.01) == 0.0


def test_env_grippers_open_after_reset_and_close_on_command(cached_env):
    env = cached_env("SARM2/CleanWhiteboard-v0")
    obs, _ = env.reset(seed=0)
    np.testing.assert_allclose(obs["agent_pos"][list(GRIPPER_INDICES)], 1.0, atol=1e-3)
    np.testing.assert_allclose(obs["agent_pos"][:6], HOME_QPOS[:6], atol=1e-6)
    np.testing.assert_allclose(obs["agent_pos"][7:13], HOME_QPOS[:6], atol=1e-6)
    action = env.unwrapped.home_action.copy()
    action[list(GRIPPER_INDICES)] = 0.0
    for _ in range(5):
        obs, *_ = env.step(action)
    assert np.all(obs["agent_pos"][list(GRIPPER_INDICES)] < 0.1)
    np.testing.assert_allclose(env.unwrapped.gripper_command(), [0.0, 0.0])
