"""Teleop and rollout recording: LeaderArm -> LeaderPolicy -> RealStationEnv -> dataset, and the CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

pytest.importorskip("pyrealsense2", reason="pyrealsense2 wheel not installed (pip install pyrealsense2)")

from real.policy import HoldPolicy, LeaderPolicy, Policy, action_chunk  # noqa: E402
from real.record import main, open_leaders, record_episodes  # noqa: E402
from sarm2_env.constants import PRIMITIVE_INDEX  # noqa: E402
from sarm2_env.errors import InvalidActionError  # noqa: E402
from sarm2_env.policy import act_once  # noqa: E402
from tests.real.helpers import wait_until  # noqa: E402

EXAMPLE = Path(__file__).resolve().parents[2] / "real" / "configs" / "yam_station.yaml"


def test_policy_protocol_and_chunks() -> None:
    assert isinstance(HoldPolicy(), Policy)
    assert action_chunk(np.zeros(14)).shape == (1, 14)
    assert action_chunk(np.zeros((5, 14))).shape == (5, 14)
    for bad in (np.zeros(13), np.zeros((2, 3, 14)), "x"):
        with pytest.raises(InvalidActionError):
            action_chunk(bad)


def test_teleop_follower_tracks_the_leaders_and_records(station, make_env, tmp_path: Path) -> None:
    env = make_env(task="teleop", task_id="real/teleop")
    with open_leaders(station.config.leaders) as leaders:
        policy = LeaderPolicy(leaders)
        obs, _ = env.reset()
        pose = np.array(station.start_pose)
        pose[0] += 0.2  # the operator swings joint 1 of both leaders and half-closes the grippers
        pose[6] = 0.5
        station.move_leaders(pose.tolist())
        assert wait_until(lambda: abs(act_once(policy, obs)[0] - pose[0]) < 2e-3)
        for _ in range(30):
            obs, *_ = env.step(act_once(policy, obs))
        np.testing.assert_allclose(obs["agent_pos"][[0, 7]], pose[0], atol=0.02)
        np.testing.assert_allclose(obs["agent_pos"][[6, 13]], 0.5, atol=0.03)
        env.labels.set_primitive("pick_grab")
        ids = record_episodes(env, policy, tmp_path / "demos", episodes=2, seed=10, max_steps=8)
    from sarm2_env.dataset import EpisodeDataset

    ds = EpisodeDataset(tmp_path / "demos")
    assert len(ds) == 2 and ds.episode_ids == ids
    ep = ds[1]
    assert ep.length == 9 and ep.seed == 11 and ep.task_id == "real/teleop"
    np.testing.assert_allclose(ep.action[:, 0], pose[0], atol=2e-3)  # the actions are the leader pose
    assert set(ep.primitive.tolist()) == {PRIMITIVE_INDEX["dummy"]}  # labels reset with each episode


def _emulation_config(tmp_path: Path) -> Path:
    data = yaml.safe_load(EXAMPLE.read_text())
    data["safety"].update(
        engage_time_s=0.1, hold_time_s=0.1, policy_timeout_s=1.0, camera_timeout_s=1.0, bus_timeout_s=0.3
    )
    data["image_size"] = 32
    path = tmp_path / "station.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_cli_dry_run_with_emulated_leaders(tmp_path: Path, camera_dir: Path, capsys) -> None:
    out = tmp_path / "dry"
    argv = ["--emulate", "--emulate-dir", str(camera_dir), "--config", str(_emulation_config(tmp_path))]
    argv += ["--leader", "--out", str(out), "--episodes", "1", "--max-steps", "20", "--primitive", "wrap"]
    assert main(argv) == 0
    assert "recorded 1 episode(s)" in capsys.readouterr().out
    from sarm2_env.dataset import EpisodeDataset

    ep = EpisodeDataset(out)[0]
    assert ep.length == 21 and ep.frames["top"].shape == (21, 32, 32, 3)
    assert np.ptp(ep.action[:, 0]) > 0.0  # the scripted operator moved the leaders
    assert set(ep.primitive.tolist()) == {PRIMITIVE_INDEX["wrap"]}
    assert ep.extra["policy"] == "LeaderPolicy"


def test_cli_rollout_of_a_policy_object(tmp_path: Path, camera_dir: Path) -> None:
    argv = ["--emulate", "--emulate-dir", str(camera_dir), "--config", str(_emulation_config(tmp_path))]
    argv += ["--policy", "real.policy:HoldPolicy", "--out", str(tmp_path / "roll"), "--max-steps", "5", "--no-home"]
    assert main(argv) == 0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--out", "x"], "exactly one of --leader"),
        (["--out", "x", "--leader", "--policy", "a:b"], "exactly one of --leader"),
        (["--out", "x", "--leader"], "--config is required"),
        (["--out", "x", "--policy", "nomodule", "--config", str(EXAMPLE)], "module:attribute"),
        (["--out", "x", "--policy", "real.policy:HoldPolicy", "--config", str(EXAMPLE)], "--max-steps` must be given"),
        (
            ["--out", "x", "--policy", "real.policy:HoldPolicy", "--config", str(EXAMPLE), "--max-steps", "5"],
            "no RealSense",
        ),
    ],
)
def test_cli_errors_are_reported_not_raised(argv: list[str], message: str, capsys) -> None:
    assert main(argv) == 2
    assert message in capsys.readouterr().err
