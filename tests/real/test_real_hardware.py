"""On the real station only (``pytest tests/real --run-hardware`` or ``SARM2_HARDWARE=1``).

The station config comes from ``SARM2_STATION_CONFIG`` (default ``real/configs/yam_station.yaml``). These tests
move the arms: clear the workspace, keep a hand on the hardware E-stop. They hold the home pose and move one
wrist joint by 0.1 rad; nothing else.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.hardware

CONFIG = os.environ.get(
    "SARM2_STATION_CONFIG", str(Path(__file__).resolve().parents[2] / "real" / "configs" / "yam_station.yaml")
)


@pytest.fixture(scope="module")
def env():
    from real.env import RealStationEnv

    with RealStationEnv(CONFIG, task="hardware test", listen_keys=False) as station:
        yield station


def test_station_comes_up_and_holds_home(env) -> None:
    obs, info = env.reset()
    assert env.observation_space.contains(obs)
    for _ in range(60):
        obs, _, _, truncated, info = env.step(env.home_action)
        assert not truncated, info["safety/stop_reason"]
    np.testing.assert_allclose(obs["agent_pos"][:6], env.home_action[:6], atol=0.05)
    stats = env.stats()
    assert stats["overruns"] <= 3 and all(a["bus_hz"] > 150 for a in stats["arms"].values())
    assert all(c["fps"] > 20 for c in stats["cameras"].values())


def test_small_wrist_move_is_tracked_and_estop_damps(env) -> None:
    obs, _ = env.reset()
    goal = env.home_action.copy()
    goal[5] += 0.1
    for _ in range(45):
        obs, *_ = env.step(goal)
    assert abs(obs["agent_pos"][5] - goal[5]) < 0.03
    env.estop("hardware test")
    obs, _, _, truncated, info = env.step(goal)
    assert truncated and info["safety/estop"]
    env.release_estop()
