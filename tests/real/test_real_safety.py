"""Safety layer pieces on their own: the target filter (hand-computed cases), e-stop inputs, operator labels."""

from __future__ import annotations

import math
import os
import signal

import numpy as np
import pytest

from real.config import LabelConfig, SafetyConfig, StationConfig
from real.labels import OperatorLabels
from real.safety import KeyListener, SafetyFilter, SafetySupervisor, SignalEStop, estop_key_bindings
from sarm2_env.errors import ConfigError
from tests.real.helpers import wait_until

LOWER = np.array(([-1.0] * 6 + [0.1]) * 2)
UPPER = np.array(([1.0] * 6 + [0.9]) * 2)
STEP = np.array(([0.05] * 6 + [0.1]) * 2)
DELTA = np.array(([0.2] * 6 + [np.inf]) * 2)


@pytest.fixture()
def filt() -> SafetyFilter:
    return SafetyFilter(LOWER, UPPER, STEP, DELTA)


def test_inside_everything_passes_unchanged(filt: SafetyFilter) -> None:
    previous = np.full(14, 0.5)
    action = previous + 0.01
    result = filt(action, previous, previous)
    np.testing.assert_allclose(result.target, action)
    assert result.clipped == 0 and result.counts() == {"joint_limit": 0, "gripper_limit": 0, "velocity": 0, "delta": 0}


def test_joint_and_gripper_limits_are_clipped_and_counted(filt: SafetyFilter) -> None:
    previous = measured = np.zeros(14)
    action = np.zeros(14)
    action[0], action[8] = 5.0, -5.0  # joints beyond the limits
    action[6], action[13] = 1.0, 0.0  # grippers beyond the range
    wide = SafetyFilter(LOWER, UPPER, np.full(14, 10.0), np.full(14, 10.0))
    result = wide(action, previous, measured)
    assert result.joint_limit == 2 and result.gripper_limit == 2
    assert result.target[0] == 1.0 and result.target[8] == -1.0
    assert result.target[6] == 0.9 and result.target[13] == 0.1
    result = filt(action, previous, measured)  # the velocity clamp then limits the first step
    assert result.target[0] == pytest.approx(0.05) and result.velocity >= 2


def test_velocity_clamp_ramps_a_jump_at_max_step(filt: SafetyFilter) -> None:
    start = np.full(14, 0.5)
    goal = start.copy()
    goal[[0, 8]] = -0.1  # two joints 0.6 rad away
    target, clamped = start, []
    while not np.allclose(target, goal):
        measured = target  # a perfectly tracking arm
        result = filt(goal, target, measured)
        assert np.all(np.abs(result.target - target) <= STEP + 1e-12)
        target = result.target
        clamped.append(result.velocity)
    assert len(clamped) == math.ceil(0.6 / 0.05)
    assert clamped[:-1] == [2] * (len(clamped) - 1)


def test_delta_clamp_keeps_targets_near_a_lagging_arm(filt: SafetyFilter) -> None:
    previous = np.zeros(14)
    previous[0] = 0.5  # the last target ...
    measured = np.zeros(14)  # ... but the arm is stuck at 0
    action = previous.copy()
    action[0] = 0.55
    result = filt(action, previous, measured)
    assert result.target[0] == pytest.approx(0.2) and result.delta == 1
    # the gripper has no delta clamp: a closed grasp holds it away from its target
    previous[6] = measured[6] = 0.1
    action[6] = 0.2
    assert filt(action, previous, measured).target[6] == pytest.approx(0.2)


def test_a_pose_outside_the_limits_never_pulls_targets_outside(filt: SafetyFilter) -> None:
    measured = np.zeros(14)
    measured[0] = 1.3  # sagged past the upper limit
    result = filt(measured, measured, measured)
    assert result.target[0] == 1.0


def test_filter_from_station_config(tmp_path) -> None:
    from real.emulation import EmulatedStation

    config = EmulatedStation(tmp_path).config
    f = SafetyFilter.from_config(config)
    assert isinstance(config, StationConfig)
    assert f.max_step[0] == pytest.approx(config.safety.max_joint_velocity / config.control_hz)
    assert f.max_step[6] == pytest.approx(config.safety.max_gripper_velocity / config.control_hz)
    assert np.isinf(f.max_delta[6]) and f.max_delta[0] == config.safety.max_joint_delta
    np.testing.assert_allclose(f.lower[:6], config.arms["left"].limits()[:, 0])


class _Arm:
    """The bits of an arm the supervisor uses, recording what it was told to do."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.fault = None

    def hold(self):
        self.calls.append("hold")

    def damp(self, kd):
        self.calls.append("damp")

    def bus_age(self) -> float:
        return 0.0


def test_supervisor_holds_then_damps_and_counts() -> None:
    arm = _Arm()
    sup = SafetySupervisor({"left": arm}, {}, SafetyConfig(hold_time_s=0.05)).start()
    try:
        sup.request_estop("test")
        assert wait_until(lambda: arm.calls == ["hold", "damp"])
        assert sup.stopped and sup.estopped and sup.damped and sup.reason == "estop: test"
        sup.clear()
        assert sup.stopped  # an engaged e-stop survives clear()
        sup.release_estop()
        sup.clear()
        assert not sup.stopped and sup.snapshot()["estops"] == 1
    finally:
        sup.close()


def test_sigusr1_engages_the_estop_and_handlers_are_restored() -> None:
    sup = SafetySupervisor({}, {}, SafetyConfig())
    before = signal.getsignal(signal.SIGUSR1)
    estop = SignalEStop(sup, ["SIGUSR1"]).install()
    try:
        os.kill(os.getpid(), signal.SIGUSR1)
        assert wait_until(lambda: sup.estopped, timeout=5.0)
        assert estop.received == ["SIGUSR1"] and "signal SIGUSR1" in sup.reason
    finally:
        estop.uninstall()
    assert signal.getsignal(signal.SIGUSR1) == before


def test_sigint_engages_the_estop_then_interrupts() -> None:
    # Python's own Ctrl-C handler underneath, even when the suite was started with SIGINT ignored (nohup, `&`).
    outer = signal.signal(signal.SIGINT, signal.default_int_handler)
    sup = SafetySupervisor({}, {}, SafetyConfig())
    estop = SignalEStop(sup, ["SIGINT"]).install()
    try:
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
            wait_until(lambda: False, timeout=2.0)
        assert sup.estopped
    finally:
        estop.uninstall()
        signal.signal(signal.SIGINT, outer)


def test_key_listener_reads_a_pipe_without_a_tty() -> None:
    read_fd, write_fd = os.pipe()
    sup = SafetySupervisor({}, {}, SafetyConfig())
    labels = OperatorLabels()
    bindings = {
        **labels.key_bindings(LabelConfig(primitive_keys=(("g", "pick_grab"),))),
        **estop_key_bindings(sup, sup.config),
    }
    listener = KeyListener(bindings, read_fd).start()
    try:
        assert listener.active
        os.write(write_fd, b"7gx")  # progress 0.7, primitive pick_grab, an unbound key
        assert wait_until(lambda: labels.snapshot().primitive == "pick_grab")
        assert labels.snapshot().progress == pytest.approx(0.7)
        os.write(write_fd, b"s ")  # success, then the e-stop (space)
        assert wait_until(lambda: sup.estopped)
        assert labels.snapshot().success and labels.snapshot().progress == 1.0
        os.write(write_fd, b"r")
        assert wait_until(lambda: not sup.estopped)
        assert listener.keys_received == 6
        os.close(write_fd)  # end of file ends the listener
        assert wait_until(lambda: not listener.active)
    finally:
        listener.close()
        os.close(read_fd)


def test_key_listener_without_a_terminal_listens_to_nothing() -> None:
    listener = KeyListener({"x": lambda: None}).start()  # pytest's stdin is not a terminal
    assert not listener.active
    listener.close()


def test_operator_labels() -> None:
    labels = OperatorLabels(initial_primitive="dummy")
    labels.set_progress(1.7)
    assert labels.snapshot().progress == 1.0
    labels.set_primitive("fold_flatten")
    labels.mark_failure()
    state = labels.snapshot()
    assert state.done and state.failed and not state.success and state.primitive == "fold_flatten"
    labels.reset()
    assert labels.snapshot().primitive == "dummy" and not labels.snapshot().done
    with pytest.raises(ConfigError, match="22 SARM2 primitives"):
        labels.set_primitive("juggle")
