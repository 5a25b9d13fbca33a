"""The collect CLI: real expert episodes to disk and back, resume, and bad input."""

from __future__ import annotations

import numpy as np
import pytest

import tasks
from sarm2_env.constants import CAMERAS, PRIMITIVE_INDEX, STATE_DIM
from sarm2_env.errors import ConfigError
from tasks.collect import CollectConfig, collect, main
from tasks.dataset import EpisodeDataset


def test_collect_round_trip_and_resume(tmp_path):
    out = tmp_path / "ds"
    config = CollectConfig(tasks=("CleanWhiteboard",), episodes=1, skills=(1.0,), seed=3, image_size=32)
    assert collect(config, str(out), progress_bar=False) == {"written": 1, "skipped": 0}
    ds = EpisodeDataset(out, verify=True)
    assert len(ds) == 1
    ep = ds[0]
    assert ep.task_id == "SARM2/CleanWhiteboard-v0" and ep.seed == 3 and ep.skill == 1.0
    assert ep.success and ep.success_flags[-1] and not ep.success_flags[0]
    assert ep.progress[0] == 0.0 and ep.progress[-1] == pytest.approx(1.0)
    assert ep.state.shape == (ep.length, STATE_DIM) and ep.action.shape == (ep.length, STATE_DIM)
    assert all(ep.frames[cam].shape == (ep.length, 32, 32, 3) for cam in CAMERAS)
    assert {"pick_grab", "erase", "pass", "place"} <= set(ep.primitive_names)
    np.testing.assert_allclose(np.diff(ep.timestamp), 0.1)

    # The recorded first frame is the env's reset observation for the recorded seed.
    env = tasks.make_env("CleanWhiteboard", image_size=32)
    obs, _ = env.reset(seed=ep.seed)
    np.testing.assert_array_equal(obs["pixels"]["top"], ep.frames["top"][0])
    np.testing.assert_array_equal(obs["agent_pos"], ep.state[0])
    env.close()

    # Rerunning with more episodes resumes: the existing one is skipped, only the new one written.
    more = CollectConfig(tasks=("CleanWhiteboard",), episodes=2, skills=(0.5,), seed=3, image_size=32)
    assert collect(more, str(out), progress_bar=False) == {"written": 1, "skipped": 1}
    assert sorted(e.seed for e in EpisodeDataset(out)) == [3, 4]


def test_primitive_labels_are_valid_indices(tmp_path):
    config = CollectConfig(tasks=("FoldShorts",), episodes=1, skills=(1.0,), image_size=32)
    collect(config, str(tmp_path), progress_bar=False)
    ep = EpisodeDataset(tmp_path)[0]
    assert set(ep.primitive.tolist()) <= set(PRIMITIVE_INDEX.values())
    assert "fold_flatten" in ep.primitive_names


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"episodes": 0}, "episodes"),
        ({"skills": (1.2,)}, "skills"),
        ({"skills": ()}, "skills"),
        ({"tasks": ()}, "tasks"),
    ],
)
def test_config_validation(kwargs, field):
    base = {"tasks": ("FoldShorts",), "episodes": 1}
    with pytest.raises(ConfigError, match=field):
        CollectConfig(**{**base, **kwargs})


def test_cli_reports_unknown_task_and_bad_skill(tmp_path, capsys):
    assert main(["--task", "FoldShort", "--episodes", "1", "--out", str(tmp_path / "x"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "unknown task 'FoldShort'" in err and "FoldShorts" in err
    assert main(["--task", "FoldShorts", "--skill", "high", "--out", str(tmp_path / "y"), "--quiet"]) == 2
    assert "--skill" in capsys.readouterr().err
