"""Calibrated physics progress (tasks.calibration): time-linear on full-skill demos, physics-driven, regresses."""

from __future__ import annotations

import numpy as np
import pytest

import tasks
from sarm2_env.errors import ConfigError
from tasks.calibration import UNSUCCESSFUL_CAP, approach, calibrated_progress, stage_weights
from tasks.expert import run_expert_episode

#: Short tasks whose full-skill demo runs in about a second in state mode.
FAST_TASKS = ("PullPlug", "PlatesToBin", "PutAwayUmbrella")


def _demo(task: str, seed: int = 0) -> tuple[object, list[dict]]:
    """A full-skill, operator-variability-1 demo in state mode: the env (left at the demo's last state) and infos."""
    env = tasks.make_task_env(task, obs_mode="state")
    expert = tasks.make_expert(env, skill=1.0, variability=1.0)
    infos = [info for *_, info in run_expert_episode(env, expert, seed=seed)]
    return env, infos


# ---------------------------------------------------------------------------------------------- the helpers
def test_stage_weights_normalise_and_refuse_bad_values():
    assert stage_weights(a=1.0, b=3.0) == {"a": 0.25, "b": 0.75}
    for bad in ({"a": -0.1, "b": 1.0}, {"a": 0.0}, {"a": float("nan")}, {}):
        with pytest.raises(ConfigError, match="stage weights"):
            stage_weights(**bad)


def test_calibrated_progress_sums_caps_and_checks_stages():
    weights = stage_weights(reach=0.25, fold=0.75)
    assert calibrated_progress({"reach": 1.0, "fold": 0.5}, weights, success=False) == pytest.approx(0.625)
    assert calibrated_progress({"reach": 2.0, "fold": -1.0}, weights, success=False) == pytest.approx(0.25)  # clipped
    # Without success it stays below 1 even when every stage looks done; success is 1 whatever the stages say.
    assert calibrated_progress({"reach": 1.0, "fold": 1.0}, weights, success=False) == UNSUCCESSFUL_CAP
    assert calibrated_progress({"reach": 0.0, "fold": 0.0}, weights, success=True) == 1.0
    with pytest.raises(ConfigError, match="do not match"):
        calibrated_progress({"reach": 1.0}, weights, success=False)


def test_approach_counts_from_the_start_distance_to_arrival():
    assert approach(0.3, 0.3) == 0.0
    assert approach(0.15, 0.3) == pytest.approx(0.5)
    assert approach(0.02, 0.3, arrived=0.03) == 1.0
    assert approach(0.5, 0.3) == 0.0


# ---------------------------------------------------------------------------------------------- every task
@pytest.mark.parametrize("task_id", sorted(tasks.TASKS))
def test_every_task_reports_both_progresses_and_starts_at_zero(task_id):
    env = tasks.make_task_env(task_id, obs_mode="state")
    try:
        _, info = env.reset(seed=3)
        unwrapped = env.unwrapped
        assert "progress" in info and "calibrated_progress" in info
        assert info["calibrated_progress"] < 0.02, info["calibrated_progress"]
        # The stages the task measures are exactly the stages it has weights for, and those weights sum to 1.
        stages = unwrapped.calibration_stages()
        assert stages.keys() == unwrapped.calibration_weights.keys()
        assert sum(unwrapped.calibration_weights.values()) == pytest.approx(1.0)
        assert all(0.0 <= f <= 1.0 for f in stages.values())
        # The calibrated value is not a new state block: the observation layout is unchanged.
        assert not any("calibrated" in name for name, _ in unwrapped.state_layout)
    finally:
        env.close()


# ---------------------------------------------------------------------------------------------- on demos
@pytest.mark.parametrize("task", FAST_TASKS)
def test_full_skill_demo_is_close_to_time_linear(task):
    env, infos = _demo(task)
    env.close()
    calibrated = np.array([info["calibrated_progress"] for info in infos])
    raw = np.array([info["progress"] for info in infos])
    linear = np.linspace(0.0, 1.0, len(infos))
    assert infos[-1]["success"]
    assert calibrated[0] < 0.02 and calibrated[-1] == 1.0
    assert np.all(calibrated[:-1] <= UNSUCCESSFUL_CAP)  # 1 only on the success frame
    mse = float(np.mean((calibrated - linear) ** 2))
    assert mse < 0.01, mse
    assert mse < float(np.mean((raw - linear) ** 2))  # closer to time-linear than raw physics progress
    # Monotone-ish: no large step back on a successful demo.
    assert np.min(np.diff(calibrated)) > -0.1


def test_pull_plug_calibrated_progress_drops_when_the_plug_is_pushed_back_in():
    import mujoco

    env = tasks.make_task_env("PullPlug", obs_mode="state")
    expert = tasks.make_expert(env, skill=1.0, variability=1.0)
    unwrapped = env.unwrapped
    try:
        for *_, info in run_expert_episode(env, expert, seed=1):
            if info["eval/pull_distance"] > 0.015:  # half way out
                break
        before = info["calibrated_progress"]
        assert 0.5 < before < 1.0
        unwrapped.data.qpos[unwrapped.model.joint("plug_slide").qposadr[0]] = 0.0  # push it back in
        mujoco.mj_forward(unwrapped.model, unwrapped.data)
        after = unwrapped.evaluate().calibrated_progress
        assert after < before - 0.05
    finally:
        env.close()


def test_plates_to_bin_calibrated_progress_drops_when_a_placed_plate_is_taken_back_out():
    import mujoco

    from tasks.plates import REST_Z
    from tasks.plates_to_bin import PLATE_HOMES

    env = tasks.make_task_env("PlatesToBin", obs_mode="state")
    expert = tasks.make_expert(env, skill=1.0, variability=0.0)
    unwrapped = env.unwrapped
    try:
        for *_, info in run_expert_episode(env, expert, seed=0):
            if info["eval/plates_in_bin"] == 1.0 and not info["eval/plate0_held"] and not info["eval/plate1_held"]:
                break
        before = info["calibrated_progress"]
        assert 0.3 < before < 0.8
        placed = 0 if info["eval/plate0_inside"] else 1
        unwrapped.set_plate(placed, np.array([*PLATE_HOMES[placed], REST_Z]))  # back on the table where it began
        mujoco.mj_forward(unwrapped.model, unwrapped.data)
        after = unwrapped.evaluate().calibrated_progress
        # It loses all of the plate's carrying stages (its hand is still close, so reaching it counts).
        stages = unwrapped.calibration_stages()
        assert all(stages[f"plate{placed}/{s}"] == 0.0 for s in ("lift", "carry", "lower", "release", "clear"))
        assert after < before - 0.2
    finally:
        env.close()
