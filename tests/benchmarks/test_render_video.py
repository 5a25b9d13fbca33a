"""Reward-model videos (benchmarks/render_video.py): size and frame count, the plot is really drawn, typed errors,
the benchmark hook and the command line."""

from __future__ import annotations

import types

import numpy as np
import pytest

from benchmarks import render_video as rv
from rewards.registry import make_reward_model
from sarm2_env.constants import CAMERAS, NUM_PRIMITIVES, STATE_DIM
from sarm2_env.dataset import DatasetWriter, Episode
from sarm2_env.errors import ConfigError, InputShapeError, UnknownNameError

TASK = "SARM2/FoldShorts-v0"
LENGTH, SIZE = 20, 32


def make_episode(seed: int = 0, length: int = LENGTH, success: bool = True, episode_id: str = "") -> Episode:
    """Smooth moving gradients (so H.264 keeps them recognisable) and a linear ground truth."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    frames = {
        cam: np.stack(
            [
                np.stack([(xx * 6 + 7 * t) % 256, (yy * 6 + 50 * k) % 256, np.full_like(xx, 90 + 40 * k)], -1)
                for t in range(length)
            ]
        ).astype(np.uint8)
        for k, cam in enumerate(CAMERAS)
    }
    flags = np.zeros(length, dtype=bool)
    flags[-1] = success
    return Episode.create(
        task_id=TASK,
        instruction="fold the shorts",
        seed=seed,
        skill=1.0 if success else 0.3,
        success=success,
        fps=10.0,
        state=rng.normal(size=(length, STATE_DIM)),
        action=rng.normal(size=(length, STATE_DIM)),
        primitive=np.where(np.arange(length) < length // 2, 7, 8),
        progress=np.linspace(0.0, 1.0 if success else 0.6, length),
        success_flags=flags,
        timestamp=np.arange(length) / 10.0,
        frames=frames,
        episode_id=episode_id,
    )


@pytest.fixture(scope="module")
def episode() -> Episode:
    return make_episode()


def _read(path) -> np.ndarray:
    import imageio.v3 as iio

    return iio.imread(path, plugin="FFMPEG")


def _hex(colour: str) -> np.ndarray:
    return np.array([int(colour[i : i + 2], 16) for i in (1, 3, 5)], dtype=float)


def test_video_has_one_frame_per_step_and_shows_the_plot(episode, tiny_sarm2_checkpoint, tmp_path) -> None:
    sarm2 = make_reward_model("sarm2", checkpoint=tiny_sarm2_checkpoint)
    outputs = {"oracle": make_reward_model("oracle").predict_episode(episode), "sarm2": sarm2.predict_episode(episode)}
    assert outputs["sarm2"].primitive_probs is not None and "expert_weights" in outputs["sarm2"].extras
    stats = rv.render_video(episode, outputs, tmp_path / "sub" / "ep.mp4", labels={"sarm2": sarm2.label})
    assert stats.path.is_file() and not list(stats.path.parent.glob(".*tmp*"))
    scale = -(-rv.MIN_CAMERA_HEIGHT // SIZE)
    assert (stats.frames, stats.width, stats.fps) == (LENGTH, 3 * scale * SIZE, 10.0)
    assert stats.width % 2 == 0 and stats.height % 2 == 0 and stats.ms_per_frame > 0
    video = _read(stats.path)
    assert video.shape == (LENGTH, stats.height, stats.width, 3)

    cam_top = 2 * 8  # below the two-line header
    cams = video[5, cam_top + 8 : cam_top + scale * SIZE - 8].astype(float)
    plot = video[5, -stats.height // 3 :].astype(float)
    assert plot.mean() > 200 > cams.mean() + 20  # a mostly white plot below darker camera tiles
    # the first backend's curve colour (tab10 blue) and the ground-truth black are drawn in the plot area
    blue = np.abs(plot - _hex(rv._COLOURS[0])).sum(-1) < 60
    assert blue.sum() > 50
    assert (plot.sum(-1) < 80).sum() > 50
    # the cursor (crimson) moves right with the frame index
    crimson = [np.abs(video[i, -stats.height // 2 :].astype(float) - rv._CURSOR).sum(-1) < 80 for i in (2, 15)]
    cols = [np.flatnonzero(c.sum(0) > 10) for c in crimson]
    assert len(cols[0]) and len(cols[1]) and cols[1].mean() > cols[0].mean() + 20


def test_flat_arrays_as_the_benchmark_stores_them(episode, tmp_path) -> None:
    rng = np.random.default_rng(1)
    weights = rng.dirichlet(np.ones(10), size=LENGTH)
    flat = {
        "progress": np.linspace(0, 1, LENGTH, dtype=np.float32),
        "primitive": rng.integers(0, NUM_PRIMITIVES, LENGTH).astype(np.int16),
        "group": rng.integers(0, 8, LENGTH),
        "expert_weights": weights,
        "query_indices": np.arange(0, LENGTH, 5),
    }
    stats = rv.render_video(episode, {"model": flat}, tmp_path / "flat.mp4", scale=2, plot_height=260)
    assert stats.frames == LENGTH and stats.width == 3 * 2 * SIZE
    assert _read(stats.path).shape[0] == LENGTH
    text = rv._describe_track(rv._as_track("m", flat, LENGTH, "m", "#000000"), 3)
    assert "gate " in text and "experts e" in text and "p=" in text


def test_bad_inputs_raise_typed_errors(episode, tmp_path) -> None:
    good = {"progress": np.zeros(LENGTH)}
    with pytest.raises(InputShapeError, match="backend 'b'.*progress.*T=20"):
        rv.render_video(episode, {"b": {"progress": np.zeros(LENGTH - 1)}}, tmp_path / "x.mp4")
    with pytest.raises(InputShapeError, match="primitive_probs"):
        rv.render_video(episode, {"b": {**good, "primitive_probs": np.zeros((LENGTH, 5))}}, tmp_path / "x.mp4")
    with pytest.raises(InputShapeError, match="expert_weights"):
        rv.render_video(episode, {"b": {**good, "expert_weights": np.zeros(LENGTH)}}, tmp_path / "x.mp4")
    with pytest.raises(InputShapeError, match="progress"):
        rv.render_video(episode, {"b": {}}, tmp_path / "x.mp4")
    no_frames = Episode(**{**{f: getattr(episode, f) for f in episode.__dataclass_fields__}, "frames": {}})
    with pytest.raises(InputShapeError, match="frames"):
        rv.render_video(no_frames, {}, tmp_path / "x.mp4")
    with pytest.raises(ConfigError, match="at most 9"):
        rv.render_video(episode, {f"b{i}": good for i in range(10)}, tmp_path / "x.mp4")
    with pytest.raises(ConfigError, match="scale"):
        rv.render_video(episode, {}, tmp_path / "x.mp4", scale=0)
    with pytest.raises(ConfigError, match="plot_height"):
        rv.render_video(episode, {"b": good}, tmp_path / "x.mp4", plot_height=40)
    assert not list(tmp_path.iterdir())  # nothing half-written


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("videos") / "data"
    with DatasetWriter(root) as writer:
        for i in range(3):
            writer.add(make_episode(seed=i, length=12, success=i != 1, episode_id=f"ep{i}"))
    return root


def test_load_episode_by_id_or_position(dataset) -> None:
    assert rv.load_episode(dataset, "ep1").episode_id == "ep1"
    assert rv.load_episode(dataset, "2").episode_id == "ep2"
    assert rv.load_episode(dataset, -1).episode_id == "ep2"
    with pytest.raises(UnknownNameError, match="'ep7'.*Did you mean"):
        rv.load_episode(dataset, "ep7")
    with pytest.raises(UnknownNameError, match="out of range"):
        rv.load_episode(dataset, 3)


def test_write_videos_hook(dataset, tmp_path) -> None:
    from sarm2_env.dataset import EpisodeDataset

    ds = EpisodeDataset(dataset)
    feats = [
        types.SimpleNamespace(task_id=e["task_id"], episode_id=e["episode_id"], success=e["success"])
        for e in ds.entries
    ]
    state = types.SimpleNamespace(
        run_dir=tmp_path,
        task_ids=[TASK],
        features={"heldout_rollouts": feats},
        models={},
        data_dir=lambda split: dataset,
    )
    predictions = {"oracle": {f"heldout_rollouts|ep{i}": {"progress": np.linspace(0, 1, 12)} for i in range(3)}}
    written = rv.write_videos(state, predictions, per_task=2)
    assert [p.name for p in written] == ["FoldShorts_heldout_rollouts_ep1.mp4", "FoldShorts_heldout_rollouts_ep0.mp4"]
    assert all(p.parent == tmp_path / "videos" and p.stat().st_size > 0 for p in written)


def test_command_line(dataset, tiny_sarm2_checkpoint, tmp_path, capsys) -> None:
    out = tmp_path / "cli.mp4"
    argv = ["--data", str(dataset), "--episode", "ep0", "--backends", "oracle,sarm2", "--out", str(out), "--scale", "2"]
    assert rv.main([*argv, "--checkpoint", f"sarm2={tiny_sarm2_checkpoint}"]) == 0
    assert "12 frames" in capsys.readouterr().out and _read(out).shape[0] == 12
    with pytest.raises(ConfigError, match="NAME=PATH"):
        rv.main([*argv, "--checkpoint", "sarm2"])
    with pytest.raises(ConfigError, match="not in --backends"):
        rv.main([*argv, "--checkpoint", "rewind=/x"])
