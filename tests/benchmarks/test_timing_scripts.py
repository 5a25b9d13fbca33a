"""The timing scripts behind docs/measured.md and docs/real_station.md run and print their figures (small sizes)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_script(name: str, *args: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / name), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


@pytest.mark.slow
def test_real_timing_prints_the_readme_figures() -> None:
    pytest.importorskip("pyrealsense2", reason="pyrealsense2 wheel not installed (pip install pyrealsense2)")
    out = run_script("real_timing.py", "--steps", "20", "--image-size", "32")
    assert "control period over 20 steps: mean" in out and "p95" in out and "overruns" in out
    assert "e-stop: hold command at the motors" in out and "damped after" in out
    assert "stalled policy tripped" in out and "paused camera" in out
    assert "stalled bus tripped" in out and "no CAN feedback" in out


def test_residual_speed_times_the_real_trainer() -> None:
    out = run_script("residual_speed.py", "--steps", "2", "--episodes", "2", "--frames", "60")
    assert "chunk transitions from 2 rollouts x 60 frames" in out and "per TD3 step" in out


def test_encoder_speed_times_every_encoder_on_the_same_frames() -> None:
    out = run_script(
        "encoder_speed.py",
        *("--encoders", "efficientnet-lite0,efficientnet-lite0-grid2", "--task", "SARM2/PullPlug-v0"),
        *("--frames", "6", "--image-size", "32", "--repeats", "1"),
    )
    assert "6 frames at 32 px from SARM2/PullPlug-v0" in out
    assert "efficientnet-lite0: 1280-d" in out and "(1.00x the first)" in out
    assert "efficientnet-lite0-grid2: 5120-d" in out and "ms/frame" in out
