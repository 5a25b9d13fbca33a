"""Motion controls: policies that move (or not) without doing the task."""

from __future__ import annotations

import numpy as np
import pytest

from sarm2_env.errors import ConfigError, UnknownNameError

TASK = "SARM2/PlatesToBin-v0"


@pytest.fixture(scope="module")
def env():
    import tasks

    e = tasks.make_task_env(TASK, image_size=32, obs_mode="state")
    yield e
    e.close()


def _record(env, name: str, steps: int = 60, render_every: int = 10):
    from tasks.collect import record_episode
    from tasks.motion_controls import make_control

    return record_episode(env, make_control(name, env), seed=3, skill=0.0, render_every=render_every, max_steps=steps)


def test_idle_holds_the_home_pose(env) -> None:
    episode = _record(env, "idle")
    assert episode.length == 61
    assert np.abs(episode.state - episode.state[0]).max() < 0.05
    assert episode.calibrated_progress.max() == 0.0


def test_play_moves_the_arms_high_above_the_table_without_progress(env) -> None:
    from tasks.calibration import home_tcp_positions
    from tasks.motion_controls import PLAY_HEIGHT_M

    episode = _record(env, "play", steps=80)
    assert np.abs(np.diff(episode.state, axis=0)).sum() > 1.0  # the arms really move
    base = env.unwrapped
    tcp_z = base.data.site_xpos[base.model.site("tcp_left").id][2]
    assert tcp_z > PLAY_HEIGHT_M[0] - 0.05  # still high at the end (IK may fall a little short)
    assert home_tcp_positions(base.model)["left"][2] > 0  # the yardstick the waypoints are drawn around
    assert episode.calibrated_progress.max() < 0.05
    assert set(episode.primitive_names) == {"dummy"}


def test_random_actions_are_seeded_and_cover_the_action_space(env) -> None:
    a, b = _record(env, "random"), _record(env, "random")
    assert np.array_equal(a.action, b.action)
    low, high = env.action_space.low, env.action_space.high
    assert (a.action >= low).all() and (a.action <= high).all()
    assert np.ptp(a.action, axis=0).min() > 0.05 * (high - low).min()


def test_unknown_control_and_bad_steps_are_clear_errors(env, tmp_path) -> None:
    from tasks.motion_controls import collect_controls, make_control

    with pytest.raises(UnknownNameError, match="pley"):
        make_control("pley", env)
    with pytest.raises(ConfigError, match="steps"):
        collect_controls(tmp_path / "d", [TASK], "idle", [0], steps=0)


def test_collect_controls_resumes(tmp_path) -> None:
    from sarm2_env.dataset import EpisodeDataset
    from tasks.motion_controls import collect_controls

    out = tmp_path / "idle"
    first = collect_controls(out, ["PlatesToBin"], "idle", [1, 2], steps=20, image_size=32, render_every=10)
    again = collect_controls(out, ["PlatesToBin"], "idle", [1, 2, 3], steps=20, image_size=32, render_every=10)
    assert first == {"written": 2, "skipped": 0} and again == {"written": 1, "skipped": 2}
    dataset = EpisodeDataset(out)
    assert len(dataset) == 3
    assert dataset.load(0).frame_count == 3  # steps 0, 10, 20


def test_cli_records_and_reports_bad_input(tmp_path, capsys) -> None:
    from tasks.motion_controls import main

    out = tmp_path / "play"
    args = ["--control", "play", "--task", "PlatesToBin", "--episodes", "1", "--steps", "10", "--image-size", "32"]
    assert main([*args, "--out", str(out)]) == 0
    assert "play: 1 written" in capsys.readouterr().out
    assert main([*args[:3], "PlatesToBn", *args[4:], "--out", str(out)]) == 2
    assert "Did you mean" in capsys.readouterr().err
