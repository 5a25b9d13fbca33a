"""RealStationEnv on the emulated station: the sim API, safety clamps, e-stop, watchdog, faults, bad input,
and an end-to-end episode with SARM2RewardWrapper recorded to a dataset that EpisodeDataset reads back."""

from __future__ import annotations

import dataclasses
import os
import signal
import warnings

import gymnasium as gym
import numpy as np
import pytest

pytest.importorskip("pyrealsense2", reason="pyrealsense2 wheel not installed (pip install pyrealsense2)")

from real.config import ArmConfig  # noqa: E402
from real.errors import CameraError, EStopActiveError, HardwareNotFoundError, MotorFaultError  # noqa: E402
from sarm2_env.constants import CAMERAS, PRIMITIVE_INDEX  # noqa: E402
from sarm2_env.errors import InvalidActionError  # noqa: E402
from tests.real.helpers import unplug, wait_until  # noqa: E402

THREAD_NOISE = pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
SIM_TASK = "SARM2/CleanWhiteboard-v0"


def _kp(chain) -> list[float]:
    return [c["kp"] for c in chain.commands().values()]


def test_spaces_and_info_keys_match_the_simulated_tasks(make_env, cached_env) -> None:
    env = make_env()
    sim = cached_env(SIM_TASK, image_size=32).unwrapped
    assert env.action_space == sim.action_space
    np.testing.assert_array_equal(env.action_space.low, sim.action_space.low)
    assert env.observation_space["agent_pos"] == sim.observation_space["agent_pos"]
    for cam in CAMERAS:
        assert env.observation_space["pixels"][cam] == sim.observation_space["pixels"][cam]
    np.testing.assert_allclose(env.home_action, sim.home_action)
    obs, info = env.reset()
    sim_obs, sim_info = sim.reset(seed=0)
    assert env.observation_space.contains(obs)
    # physics-only ground truth (the raw eval/ terms, the calibrated progress) has no real-station counterpart
    sim_only = {k for k in sim_info if k.startswith("eval/")} | {"primitive", "calibrated_progress"}
    assert {"success", "progress", "task"} <= set(info) and set(sim_info) - sim_only <= set(info)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Gymnasium's passive checker warns on any contract violation
        from gymnasium.utils.passive_env_checker import env_reset_passive_checker, env_step_passive_checker

        env_reset_passive_checker(env)
        result = env_step_passive_checker(env, obs["agent_pos"])
    obs, reward, terminated, truncated, info = result
    assert env.observation_space.contains(obs) and reward == 0.0 and not terminated and not truncated
    assert info["timing/period_s"] > 0 and info["safety/clipped"] == 0
    assert env.render() is None


def test_reset_engages_with_ramped_gains_and_moves_home(station, make_env) -> None:
    start = [0.2, 1.3, 1.2, -1.3, 0.1, -0.1, 0.5]  # not home
    for chain in station.chains.values():
        chain.set_positions([*start[:6], 1.0])
    env = make_env(render_mode="rgb_array")
    assert all(k == 0.0 for chain in station.chains.values() for k in _kp(chain))  # opening moved nothing
    obs, info = env.reset()
    np.testing.assert_allclose(obs["agent_pos"][:6], env.home_action[:6], atol=0.03)
    np.testing.assert_allclose(obs["agent_pos"][7:13], env.home_action[7:13], atol=0.03)
    assert env.render().shape == (32, 96, 3)
    assert all(k > 0 for chain in station.chains.values() for k in _kp(chain))
    away = env.home_action.copy()
    away[[0, 7]] += 0.3  # both base joints off home
    for _ in range(15):
        obs, *_ = env.step(away)
    pose = obs["agent_pos"].copy()
    assert abs(pose[0] - env.home_action[0]) > 0.15 and abs(pose[7] - env.home_action[7]) > 0.15
    obs, info = env.reset(options={"home": False})  # already engaged: no ramp, no move
    np.testing.assert_allclose(obs["agent_pos"][[0, 7]], pose[[0, 7]], atol=0.03)  # stayed put
    with pytest.raises(Exception, match="'home'"):
        env.reset(options={"speed": 1})


def test_bad_actions_raise_before_anything_moves(station, make_env) -> None:
    env = make_env()
    bad = [np.full(14, np.nan), np.zeros(13), np.zeros((2, 7)), "left arm up", [None] * 14, np.r_[np.zeros(13), np.inf]]
    for action in bad:  # even before reset: validation comes first
        with pytest.raises(InvalidActionError):
            env.step(action)
    with pytest.raises(gym.error.ResetNeeded):
        env.step(env.home_action)
    obs, _ = env.reset()
    before = {arm: chain.commands() for arm, chain in station.chains.items()}
    target = env._target.copy()
    for action in bad:
        with pytest.raises(InvalidActionError, match="`action`"):
            env.step(action)
    np.testing.assert_array_equal(env._target, target)
    for arm, chain in station.chains.items():
        after = chain.commands()
        assert all(after[m]["pos"] == before[arm][m]["pos"] for m in after)  # no new target reached a motor


def test_velocity_and_limit_clamps_are_applied_and_counted(make_env) -> None:
    env = make_env()
    obs, _ = env.reset()
    step = env.config.safety.max_joint_velocity / env.control_hz
    goal = env.home_action.astype(np.float64).copy()
    goal[0] += 0.3  # a jump 9x larger than one step allows
    goal[8] = 99.0  # far outside joint 2 of the right arm
    previous = env._target.copy()
    obs, _, _, _, info = env.step(goal)
    assert info["safety/velocity_clamps"] >= 1 and info["safety/joint_limit_clips"] == 1
    assert abs(env._target[0] - previous[0]) <= step + 1e-9
    assert env._target[8] <= env.config.arms["right"].limits()[1, 1]
    steps = 1
    while abs(env._target[0] - goal[0]) > 1e-9 and steps < 100:
        prev = env._target.copy()
        _, _, _, _, info = env.step(goal)
        assert np.all(np.abs(env._target[:6] - prev[:6]) <= step + 1e-9)
        steps += 1
    assert steps == int(np.ceil(0.3 / step - 1e-9))  # reached at exactly the velocity limit
    assert wait_until(lambda: abs(env._measured()[0] - goal[0]) < 0.02)  # and the arm followed
    totals = env.stats()["safety"]["clips"]
    assert totals["velocity"] >= steps - 1 and totals["joint_limit"] == steps


def test_estop_holds_then_damps_and_blocks_until_released(station, make_env) -> None:
    env = make_env()
    obs, _ = env.reset()
    env.estop("test button")
    assert wait_until(lambda: env.supervisor.damped)
    assert wait_until(lambda: all(k == 0.0 for chain in station.chains.values() for k in _kp(chain)))  # damped
    obs, reward, terminated, truncated, info = env.step(obs["agent_pos"])
    assert truncated and info["safety/estop"] and info["safety/stopped"] and "test button" in info["safety/stop_reason"]
    with pytest.raises(EStopActiveError, match="release"):
        env.reset()
    env.release_estop()
    obs, info = env.reset()  # re-engages
    assert not info["safety/stopped"]
    obs, *_, info = env.step(obs["agent_pos"])
    assert not info["safety/stopped"] and env.stats()["safety"]["estops"] == 1


def test_estop_from_a_key_and_from_sigusr1(station, make_env) -> None:
    read_fd, write_fd = os.pipe()
    env = make_env(key_source=read_fd, listen_keys=True, install_signal_handlers=True)
    try:
        obs, _ = env.reset()
        os.write(write_fd, b" ")
        assert wait_until(lambda: env.supervisor.estopped)
        assert "key ' '" in env.supervisor.reason
        os.write(write_fd, b"r")
        assert wait_until(lambda: not env.supervisor.estopped)
        obs, _ = env.reset()
        os.kill(os.getpid(), signal.SIGUSR1)
        assert wait_until(lambda: env.supervisor.estopped)
        assert "SIGUSR1" in env.supervisor.reason and env.stats()["safety"]["estops"] == 2
    finally:
        # The listener thread must stop before its descriptor closes: a closed number can be handed to the next
        # open() in this process, and the thread would then read someone else's file.
        env.close()
        os.close(write_fd)
        os.close(read_fd)
    assert signal.getsignal(signal.SIGUSR1) is signal.SIG_DFL  # restored


def test_watchdog_stops_a_stalled_policy(station, make_env) -> None:
    env = make_env()
    obs, _ = env.reset()
    obs, *_ = env.step(obs["agent_pos"])  # the policy watch starts with the first step ...
    assert wait_until(lambda: env.supervisor.stopped)  # ... and the policy never comes back
    assert "policy stalled" in env.supervisor.reason
    assert wait_until(lambda: env.supervisor.damped)
    obs, _, _, truncated, info = env.step(obs["agent_pos"])
    assert truncated and "policy stalled" in info["safety/stop_reason"]
    obs, info = env.reset()  # a watchdog stop clears on reset
    assert not info["safety/stopped"] and env.stats()["safety"]["watchdog_trips"] == 1


@THREAD_NOISE
def test_watchdog_stops_both_arms_when_one_bus_stalls(station, make_env) -> None:
    env = make_env()
    obs, _ = env.reset()
    station.chains["left"].stall()
    assert wait_until(lambda: env.supervisor.stopped)
    assert "arm left" in env.supervisor.reason
    assert wait_until(lambda: all(k == 0.0 for k in _kp(station.chains["right"])))  # the healthy arm is damped
    obs, _, _, truncated, info = env.step(obs["agent_pos"])
    assert truncated and info["safety/stopped"]
    assert wait_until(lambda: env.arms["left"].fault is not None)
    with pytest.raises(MotorFaultError, match="left"):
        env.reset()


def test_watchdog_stops_on_a_stale_camera_and_recovers(station, make_env) -> None:
    env = make_env()
    obs, _ = env.reset()
    env.cameras["top"].pause()
    assert wait_until(lambda: env.supervisor.stopped)
    assert "camera top" in env.supervisor.reason
    obs, _, _, truncated, _ = env.step(obs["agent_pos"])
    assert truncated
    env.cameras["top"].resume()
    obs, info = env.reset()
    assert not info["safety/stopped"]
    _, _, _, truncated, _ = env.step(obs["agent_pos"])
    assert not truncated


def test_camera_disconnect_is_a_fault(station, make_env) -> None:
    env = make_env()
    obs, _ = env.reset()
    unplug(env.cameras["left_wrist"])  # the camera went away
    assert wait_until(lambda: env.supervisor.stopped)
    assert "camera left_wrist: the stream failed: No device connected" in env.supervisor.reason  # fault, not stale
    with pytest.raises(CameraError, match="left_wrist"):
        env.reset()


def test_missing_hardware_fails_before_any_motor_moves(station, make_env, monkeypatch) -> None:
    from real.arm import YAMArm

    config = station.config
    wrong_serial = {**config.cameras, "top": dataclasses.replace(config.cameras["top"], serial="000000000999")}
    with pytest.raises(HardwareNotFoundError, match="expected serial 000000000999"):
        make_env(dataclasses.replace(config, cameras=wrong_serial))
    assert all(chain.frames_received == 0 for chain in station.chains.values())  # the arms were never opened

    opened: list[YAMArm] = []  # every arm the env brought up; the test holds them, so no __del__ closes them for us
    original_open = YAMArm.open

    def recording_open(self: YAMArm) -> YAMArm:
        opened.append(self)
        return original_open(self)

    monkeypatch.setattr(YAMArm, "open", recording_open)
    missing_can = dict(config.arms)
    missing_can["right"] = ArmConfig(
        channel="can_missing", gripper_limits=(0.0, 2.0), check_motor_types=False, check_motor_config=False
    )
    with pytest.raises(HardwareNotFoundError, match="can_missing"):
        make_env(dataclasses.replace(config, arms=missing_can))
    left = [arm for arm in opened if arm.name == "left"]
    assert len(left) == 1, [arm.name for arm in opened]
    # The left arm came up before the right one failed: the env must have stopped its SDK threads and closed its bus
    # before raising (checked on the arm itself, no waiting on the emulated bus).
    assert left[0].chain is None and left[0].robot is None and left[0]._closed


def test_task_id_is_the_env_spec_and_must_be_an_id(station, make_env) -> None:
    from sarm2_env.errors import ConfigError

    with pytest.raises(ConfigError, match="`task_id` must look like"):
        make_env(task_id="real/fold shorts")
    assert all(chain.frames_received == 0 for chain in station.chains.values())  # refused before opening anything
    assert make_env(task_id="real/fold_shorts").spec.id == "real/fold_shorts"


def test_every_exit_path_damps_and_releases_the_arms(station, make_env) -> None:
    env = make_env()
    with pytest.raises(RuntimeError, match="policy crashed"):
        with env:
            obs, _ = env.reset()
            env.step(obs["agent_pos"])
            raise RuntimeError("policy crashed")
    assert env.arms["left"].robot is None and env.arms["right"].robot is None
    for chain in station.chains.values():
        assert all(c["kp"] == 0.0 for c in chain.commands().values())  # the last command was damping
    assert env.stats()["safety"]["shutdowns"] == 1
    env.close()  # idempotent
    with pytest.raises(gym.error.ClosedEnvironmentError):
        env.reset()


class RewardLog(gym.Wrapper):
    """Keeps (reward, info["sarm2/progress"], info["progress"]) of every step."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.log: list[tuple[float, float, float]] = []

    def step(self, action):
        out = self.env.step(action)
        self.log.append((out[1], out[4]["sarm2/progress"], out[4]["progress"]))
        return out


def test_end_to_end_episode_with_reward_wrapper_and_dataset(station, make_env, tmp_path) -> None:
    from real.policy import HoldPolicy
    from real.record import record_episode
    from rewards import make_reward_model
    from sarm2_env.dataset import DatasetWriter, EpisodeDataset
    from sarm2_env.wrapper import SARM2RewardWrapper

    steps = 12

    def hook(obs, info):  # a labelling hook: progress from the step count, success at the end
        n = env.elapsed_steps
        if n == 4:
            env.labels.set_primitive("pick_grab")
        return {"progress": n / steps, "success": n >= steps}

    env = make_env(task="wipe the board", task_id="real/wipe", label_hook=hook)
    wrapped = RewardLog(SARM2RewardWrapper(env, reward_model=make_reward_model("oracle"), allow_unseen_tasks=True))
    episode = record_episode(wrapped, HoldPolicy(), seed=3, max_steps=50)
    assert episode.length == steps + 1 and episode.success  # terminated on the labelled success
    for _, predicted, truth in wrapped.log:
        assert predicted == pytest.approx(truth)  # the oracle reads info["progress"]
    assert sum(r for r, _, _ in wrapped.log) == pytest.approx(1.0)  # delta rewards telescope to the final progress
    with DatasetWriter(tmp_path / "ds") as writer:
        writer.add(episode)
    ds = EpisodeDataset(tmp_path / "ds", verify=True)
    back = ds[0]
    assert back.task_id == "real/wipe" and back.instruction == "wipe the board" and back.seed == 3
    assert back.frames["top"].shape == (steps + 1, 32, 32, 3)
    np.testing.assert_allclose(back.progress, np.arange(steps + 1) / steps, atol=1e-6)
    assert back.primitive[0] == PRIMITIVE_INDEX["dummy"] and back.primitive[-1] == PRIMITIVE_INDEX["pick_grab"]
    assert np.all(np.diff(back.timestamp) > 0) and back.fps == 30.0
    assert back.extra["source"] == "real" and back.extra["stop_reason"] == ""
    wrapped.close()
