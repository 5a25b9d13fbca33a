"""YAMArm / LeaderArm: the i2rt SDK's own CAN driver against emulated DM motors on python-can's virtual bus."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from real.arm import LeaderArm, YAMArm
from real.config import DEFAULT_HOME, ArmConfig, LeaderConfig
from real.emulation import EMULATED_GRIPPER_LIMITS, FakeDMChain, arm_motor_list
from real.errors import HardwareNotFoundError, MotorFaultError, MotorNotRespondingError, StartupCheckError
from sarm2_env.errors import InvalidActionError
from tests.real.helpers import wait_until

THREAD_NOISE = pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
_IDS = itertools.count()
#: One step of the DM position encoding (16 bits over +-12.5 rad).
POS_LSB = 25.0 / 65535
KP_LSB, KD_LSB = 500.0 / 4095, 5.0 / 4095
START = [*DEFAULT_HOME[:6], EMULATED_GRIPPER_LIMITS[1]]  # home, gripper open (motor frame)


def _arm_config(**kw) -> ArmConfig:
    base = dict(
        channel=f"vcan_armtest_{next(_IDS)}",
        interface="virtual",
        gripper_limits=EMULATED_GRIPPER_LIMITS,
        check_motor_types=False,
        check_motor_config=False,
    )
    return ArmConfig(**{**base, **kw})


@pytest.fixture()
def bus():
    """A config and a started fake chain on the same virtual channel."""
    config = _arm_config()
    with FakeDMChain(config.channel, arm_motor_list(), START) as fake:
        yield config, fake


def test_bring_up_reads_the_pose_without_moving(bus) -> None:
    config, fake = bus
    with YAMArm(config, "left") as arm:
        q = arm.joint_pos()
        np.testing.assert_allclose(q[:6], DEFAULT_HOME[:6], atol=2 * POS_LSB)
        assert q[6] == pytest.approx(1.0, abs=1e-3)  # motor at the open limit = normalised 1
        assert arm.bringup_time_s is not None and arm.bringup_time_s > 0
        assert wait_until(lambda: arm.bus_cycles > 50)  # the SDK's motor loop runs
        commands = fake.commands()
        assert all(c["kp"] == 0.0 for c in commands.values())  # gravity-comp idle: no position gains
        assert all(m.enabled for m in fake.motors.values())
        np.testing.assert_allclose(fake.positions(), START, atol=1e-9)  # nothing moved
    assert arm.robot is None and arm.chain is None  # closed


def test_tracking_gain_ramp_and_damping(bus) -> None:
    config, fake = bus
    with YAMArm(config, "left") as arm:
        arm.set_gain_scale(0.5)
        held = arm.joint_pos()
        arm.command(held)
        assert wait_until(lambda: abs(fake.commands()[1]["kp"] - 40.0) <= KP_LSB)  # joint 1 nominal kp 80
        target = held.copy()
        target[0] += 0.25
        target[3] -= 0.2
        target[6] = 0.3  # gripper 30 % open
        arm.set_gain_scale(1.0)
        arm.command(target)
        assert wait_until(lambda: np.max(np.abs(arm.joint_pos() - target)) < 0.01)
        assert fake.positions()[6] == pytest.approx(0.3 * EMULATED_GRIPPER_LIMITS[1], abs=0.02)
        arm.damp(np.full(7, 0.5))
        assert wait_until(lambda: all(c["kp"] == 0.0 for c in fake.commands().values()))
        assert all(abs(c["kd"] - 0.5) <= KD_LSB for c in fake.commands().values())
        with pytest.raises(InvalidActionError):
            arm.command(np.array([np.nan] * 7))
        with pytest.raises(InvalidActionError):
            arm.command(np.zeros(6))


@THREAD_NOISE
def test_motor_fault_is_reported_and_blocks_commands(bus) -> None:
    config, fake = bus
    with YAMArm(config, "left") as arm:
        fake.fault(3)  # over-temperature on joint 3
        assert wait_until(lambda: arm.fault is not None)
        assert "Motor error" in arm.fault or "motor loop stopped" in arm.fault
        with pytest.raises(MotorFaultError, match="faulted"):
            arm.command(np.array(DEFAULT_HOME))


@THREAD_NOISE
@pytest.mark.parametrize("how", ["stall", "disconnect"])
def test_stalled_or_unplugged_bus_is_visible_within_the_watchdog_window(bus, how: str) -> None:
    config, fake = bus
    with YAMArm(config, "left") as arm:
        assert wait_until(lambda: arm.bus_age() < 0.05)
        fake.stall() if how == "stall" else fake.disconnect()
        assert wait_until(lambda: arm.bus_age() > 0.1)
        assert wait_until(lambda: arm.fault is not None)  # the SDK gives up after its retries


def test_missing_can_channel_is_a_typed_error_before_the_sdk_runs() -> None:
    config = ArmConfig(
        channel="can_not_plugged_in", gripper_limits=(0.0, 2.0), check_motor_types=False, check_motor_config=False
    )
    with pytest.raises(HardwareNotFoundError, match=r"can_not_plugged_in.*ip link set"):
        YAMArm(config, "left").open()


def test_silent_bus_is_a_motor_not_responding_error() -> None:
    with pytest.raises(MotorNotRespondingError, match="did not answer"):
        YAMArm(_arm_config(), "left").open()  # no fake chain on this channel


def test_type_check_runs_read_only_and_refuses_a_wrong_motor() -> None:
    config = _arm_config(check_motor_types=True)
    with FakeDMChain(config.channel, arm_motor_list(), START) as fake:
        with YAMArm(config, "left"):
            assert fake.register_reads >= 7  # the SDK read every motor's gear ratio
        assert fake.flash_writes == []
    config = _arm_config(check_motor_types=True)
    with FakeDMChain(config.channel, arm_motor_list(), START) as fake:
        fake.set_register(2, 20, 10.0)  # joint 2 reports a DM4310 gearbox where a DM4340 is declared
        with pytest.raises(StartupCheckError, match="start-up checks refused"):
            YAMArm(config, "left").open()
        assert not any(m.enabled for m in fake.motors.values())  # refused before any motor was enabled
        assert fake.flash_writes == []


def test_flash_writes_only_with_allow_flash_write() -> None:
    config = _arm_config(check_motor_types=True, check_motor_config=True)
    with FakeDMChain(config.channel, arm_motor_list(), START) as fake:
        fake.set_register(5, 10, 2)  # joint 5 in position-speed mode instead of MIT
        with pytest.raises(StartupCheckError, match="Nothing was written to motor flash"):
            YAMArm(config, "left").open()
        assert fake.flash_writes == [] and fake.motors[5].registers[10] == 2
        assert not any(m.enabled for m in fake.motors.values())
    config = _arm_config(check_motor_types=True, check_motor_config=True, allow_flash_write=True)
    with FakeDMChain(config.channel, arm_motor_list(), START) as fake:
        fake.set_register(5, 10, 2)
        with YAMArm(config, "left") as arm:
            assert arm.joint_pos().shape == (7,)
        assert fake.flash_writes == [(5, 10)] and fake.motors[5].registers[10] == 1


def test_leader_arm_reads_what_the_operator_moves() -> None:
    config = LeaderConfig(
        channel=f"vcan_leadertest_{next(_IDS)}",
        interface="virtual",
        handle="gripper",
        gripper_limits=EMULATED_GRIPPER_LIMITS,
        check_motor_types=False,
    )
    with FakeDMChain(config.channel, arm_motor_list(), START) as fake, LeaderArm(config, "left") as leader:
        pose = [0.3, 1.2, 1.0, -1.0, 0.2, -0.4, 0.5 * EMULATED_GRIPPER_LIMITS[1]]
        fake.set_positions(pose)
        expected = np.array([*pose[:6], 0.5])
        assert wait_until(lambda: np.max(np.abs(leader.read() - expected)) < 2e-3)
        assert all(c["kp"] == 0.0 for c in fake.commands().values())  # the leader stays back-drivable


def test_teaching_handle_needs_socketcan() -> None:
    config = LeaderConfig(channel="vcan_x", interface="virtual", handle="teaching_handle")
    with pytest.raises(HardwareNotFoundError, match="teaching handle"):
        LeaderArm(config, "left").open()
