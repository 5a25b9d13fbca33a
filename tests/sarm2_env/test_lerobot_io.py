"""LeRobot interop (sarm2_env/lerobot_io.py): the v3 layout we write, bit-exact round trips, importing datasets that
other tools wrote, atomic writes, the RA-BC progress sidecar, the command line, and (slow, opt-in) LeRobot's own
loader on our export."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import textwrap
from pathlib import Path

import numpy as np
import pytest

from rewards.registry import make_reward_model
from sarm2_env import lerobot_io as lr
from sarm2_env.constants import CAMERAS, PRIMITIVE_INDEX, STATE_DIM
from sarm2_env.dataset import DatasetWriter, Episode, EpisodeDataset
from sarm2_env.errors import ConfigError, DatasetError, NonFiniteError

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

TASKS = ("SARM2/FoldShorts-v0", "SARM2/CleanWhiteboard-v0")
LENGTHS = (9, 12, 7)
SIZE = 32
EXACT = ("state", "action", "primitive", "progress", "success_flags", "timestamp")


def make_episode(k: int, length: int) -> Episode:
    rng = np.random.default_rng(k)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    frames = {
        cam: np.stack(
            [
                np.stack([(xx * 5 + 9 * t) % 256, (yy * 5 + 60 * c) % 256, np.full_like(xx, 40 * k + 30 * c)], -1)
                for t in range(length)
            ]
        ).astype(np.uint8)
        for c, cam in enumerate(CAMERAS)
    }
    success = k != 1
    flags = np.zeros(length, dtype=bool)
    flags[-1] = success
    return Episode.create(
        task_id=TASKS[k % 2],
        instruction=f"instruction of {TASKS[k % 2]}",
        seed=100 + k,
        skill=1.0 if success else 0.4,
        success=success,
        fps=10.0,
        state=rng.normal(size=(length, STATE_DIM)),
        action=rng.normal(size=(length, STATE_DIM)),
        primitive=rng.integers(0, 22, length),
        progress=rng.uniform(0, 1, length),
        success_flags=flags,
        timestamp=np.arange(length) / 10.0 + 0.013 * k,  # not frame_index / fps: kept in sarm2.timestamp
        frames=frames,
        episode_id=f"ep{k}",
        extra={"operator": "sim", "k": k, "nested": {"x": [1, 2.5, None]}},
    )


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("lerobot") / "ours"
    with DatasetWriter(root) as writer:
        for k, n in enumerate(LENGTHS):
            writer.add(make_episode(k, n))
    return root


@pytest.fixture(scope="module")
def exported(source, tmp_path_factory) -> dict[str, Path]:
    """The source exported twice: lossy H.264 (the default) and lossless."""
    base = tmp_path_factory.mktemp("exports")
    return {
        "lossy": lr.export_lerobot(source, base / "lossy")["root"],
        "lossless": lr.export_lerobot(source, base / "lossless", lr.ExportConfig(lossless=True))["root"],
    }


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def test_export_writes_the_v3_layout(exported) -> None:
    root = exported["lossy"]
    info = json.loads((root / "meta/info.json").read_text())
    assert info["codebase_version"] == "v3.0" and info["fps"] == 10 and isinstance(info["fps"], int)
    assert (info["total_episodes"], info["total_frames"], info["total_tasks"]) == (3, sum(LENGTHS), 2)
    assert info["data_path"] == "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
    assert info["video_path"] == "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
    assert info["splits"] == {"train": "0:3"}
    feats = info["features"]
    assert feats["observation.state"] == {"dtype": "float32", "shape": [14], "names": list(lr.JOINT_NAMES)}
    assert feats["action"]["shape"] == [14] and feats["observation.state"]["names"][6] == "left_gripper.pos"
    for key in ("timestamp", "frame_index", "episode_index", "index", "task_index"):
        assert feats[key]["shape"] == [1] and feats[key]["dtype"] in ("float32", "int64")
    for cam in CAMERAS:
        video = feats[f"observation.images.{cam}"]
        assert video["dtype"] == "video" and video["shape"] == [SIZE, SIZE, 3]
        assert video["names"] == ["height", "width", "channels"] and video["info"]["video.codec"] == "h264"
        assert video["info"]["video.pix_fmt"] == "yuv420p"
        assert (root / f"videos/observation.images.{cam}/chunk-000/file-000.mp4").stat().st_size > 0

    data = pq.read_table(root / "data/chunk-000/file-000.parquet")
    assert str(data.schema.field("observation.state").type) == "fixed_size_list<element: float>[14]"
    assert data.schema.field("timestamp").type == pa.float32()
    assert data.column("index").to_pylist() == list(range(sum(LENGTHS)))
    ts = data.column("timestamp").to_numpy()
    assert np.array_equal(ts, (data.column("frame_index").to_numpy() / 10.0).astype(np.float32))

    episodes = pq.read_table(root / "meta/episodes/chunk-000/file-000.parquet").to_pylist()
    start = 0.0
    for k, (row, n) in enumerate(zip(episodes, LENGTHS)):
        assert (row["episode_index"], row["length"], row["tasks"]) == (k, n, [f"instruction of {TASKS[k % 2]}"])
        assert row["dataset_to_index"] - row["dataset_from_index"] == n
        for cam in CAMERAS:
            key = f"videos/observation.images.{cam}/"
            assert row[key + "from_timestamp"] == pytest.approx(start)
            assert row[key + "to_timestamp"] == pytest.approx(start + n / 10.0)
            assert (row[key + "chunk_index"], row[key + "file_index"]) == (0, 0)
        assert np.asarray(row["stats/observation.images.top/mean"]).shape == (3, 1, 1)
        start += n / 10.0

    tasks = pq.read_table(root / "meta/tasks.parquet")
    assert json.loads(tasks.schema.metadata[b"pandas"])["index_columns"] == ["task"]
    assert tasks.column("task_index").to_pylist() == [0, 1]
    stats = json.loads((root / "meta/stats.json").read_text())
    assert set(stats["observation.state"]) == {"min", "max", "mean", "std", "count", "q01", "q10", "q50", "q90", "q99"}
    assert stats["observation.state"]["count"] == [sum(LENGTHS)]
    state = data.column("observation.state").combine_chunks().flatten().to_numpy().reshape(-1, 14)
    np.testing.assert_allclose(stats["observation.state"]["mean"], state.mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(stats["observation.state"]["std"], state.std(0), rtol=1e-5, atol=1e-6)
    assert np.asarray(stats["observation.images.left_wrist"]["mean"]).shape == (3, 1, 1)


@pytest.mark.parametrize("kind", ["lossy", "lossless"])
def test_round_trip_is_bit_exact_except_lossy_pixels(kind, source, exported, tmp_path) -> None:
    back = lr.import_lerobot(exported[kind], tmp_path / "back")
    original, imported = EpisodeDataset(source), EpisodeDataset(back)
    assert imported.episode_ids == original.episode_ids
    for a, b in zip(original, imported):
        for field in EXACT:
            x, y = getattr(a, field), getattr(b, field)
            assert x.dtype == y.dtype and np.array_equal(x, y), field
        for field in ("task_id", "instruction", "seed", "skill", "success", "fps", "extra"):
            assert getattr(a, field) == getattr(b, field), field
        for cam in CAMERAS:
            assert a.frames[cam].shape == b.frames[cam].shape
            if kind == "lossless":
                assert np.array_equal(a.frames[cam], b.frames[cam])
            else:
                assert _psnr(a.frames[cam], b.frames[cam]) > 30.0


def test_files_roll_over_into_new_files_and_chunks(source, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(lr, "_MB", 1)  # "1 MB" = 1 byte: every episode starts a new data file
    config = lr.ExportConfig(lossless=True, chunks_size=2, data_files_size_in_mb=1)
    root = lr.export_lerobot(source, tmp_path / "rolled", config)["root"]
    data = sorted(str(p.relative_to(root)) for p in (root / "data").rglob("*.parquet"))
    assert data == [
        "data/chunk-000/file-000.parquet",
        "data/chunk-000/file-001.parquet",
        "data/chunk-001/file-000.parquet",
    ]
    rows = pq.read_table(root / "meta/episodes/chunk-000/file-000.parquet").to_pylist()
    assert [(r["data/chunk_index"], r["data/file_index"]) for r in rows] == [(0, 0), (0, 1), (1, 0)]
    assert [r["dataset_from_index"] for r in rows] == [0, LENGTHS[0], LENGTHS[0] + LENGTHS[1]]
    monkeypatch.undo()
    back = EpisodeDataset(lr.import_lerobot(root, tmp_path / "back"))
    for a, b in zip(EpisodeDataset(source), back):
        assert all(np.array_equal(getattr(a, f), getattr(b, f)) for f in EXACT)
        assert all(np.array_equal(a.frames[c], b.frames[c]) for c in CAMERAS)


def test_export_is_atomic(source, tmp_path) -> None:
    def interrupted():
        ds = EpisodeDataset(source)
        yield ds.load(0)
        raise KeyboardInterrupt

    out = tmp_path / "export"
    with pytest.raises(KeyboardInterrupt):
        lr.export_lerobot(interrupted(), out)
    assert list(tmp_path.iterdir()) == []  # neither the dataset nor its staging folder
    with pytest.raises(DatasetError, match="at least one episode"):
        lr.export_lerobot([], out)
    assert list(tmp_path.iterdir()) == []

    done = lr.export_lerobot([EpisodeDataset(source).load(2)], out)
    assert done["episodes"] == 1 and (out / "meta/info.json").is_file()
    with pytest.raises(DatasetError, match="overwrite=True"):
        lr.export_lerobot([EpisodeDataset(source).load(0)], out)
    lr.export_lerobot([EpisodeDataset(source).load(0)], out, lr.ExportConfig(overwrite=True))
    assert json.loads((out / "meta/info.json").read_text())["total_frames"] == LENGTHS[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export"]
    other = tmp_path / "notes"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    with pytest.raises(DatasetError, match="something other than"):
        lr.export_lerobot([EpisodeDataset(source).load(0)], other, lr.ExportConfig(overwrite=True))
    assert (other / "keep.txt").read_text() == "mine"


def test_export_rejects_inconsistent_episodes(source, tmp_path) -> None:
    ds = EpisodeDataset(source)
    other = make_episode(5, 6)
    faster = Episode(**{**{f: getattr(other, f) for f in Episode.__dataclass_fields__}, "fps": 30.0})
    with pytest.raises(DatasetError, match="fps"):
        lr.export_lerobot([ds.load(0), faster], tmp_path / "x")
    with pytest.raises(ConfigError, match="crf"):
        lr.ExportConfig(crf=99)
    assert not (tmp_path / "x").exists()


def _foreign(root: Path, out: Path, names: dict[str, str]) -> Path:
    """Turn our export into what another LeRobot recorder writes: other camera keys, no labels of ours, the
    task text as an unnamed pandas index."""
    shutil.copytree(root, out)
    (out / "meta/sarm2.json").unlink()
    data = out / "data/chunk-000/file-000.parquet"
    table = pq.read_table(data)
    pq.write_table(table.drop_columns([c for c in table.column_names if c.startswith(("sarm2.", "next."))]), data)
    info = json.loads((out / "meta/info.json").read_text())
    for ours, theirs in names.items():
        info["features"][theirs] = info["features"].pop(f"observation.images.{ours}")
        (out / "videos" / f"observation.images.{ours}").rename(out / "videos" / theirs)
    for key in [k for k in info["features"] if k.startswith(("sarm2.", "next."))]:
        del info["features"][key]
    (out / "meta/info.json").write_text(json.dumps(info))
    episodes = out / "meta/episodes/chunk-000/file-000.parquet"
    table = pq.read_table(episodes)
    renamed = []
    for column in table.column_names:
        for ours, theirs in names.items():
            column = column.replace(f"/observation.images.{ours}/", f"/{theirs}/")
        renamed.append(column)
    pq.write_table(table.rename_columns(renamed), episodes)
    tasks = pq.read_table(out / "meta/tasks.parquet")
    pq.write_table(
        pa.table({"task_index": tasks.column("task_index"), "__index_level_0__": tasks.column("task")}),
        out / "meta/tasks.parquet",
    )
    return out


def test_import_a_dataset_recorded_elsewhere(exported, tmp_path) -> None:
    names = {
        "top": "observation.images.cam_high",
        "left_wrist": "observation.images.cam_left_wrist",
        "right_wrist": "observation.images.wrist_right",
    }
    foreign = _foreign(exported["lossless"], tmp_path / "foreign", names)
    back = EpisodeDataset(lr.import_lerobot(foreign, tmp_path / "ours"))
    assert back.episode_ids == ["lerobot_000000", "lerobot_000001", "lerobot_000002"]
    episode = back.load(1)
    assert episode.task_id == episode.instruction == f"instruction of {TASKS[1]}"
    assert episode.success and episode.success_flags.tolist() == [False] * 11 + [True]
    assert episode.extra == {
        "source": "lerobot",
        "lerobot_episode_index": 1,
        "progress_source": "time_linear",
        "primitive_source": "dummy",
        "success_source": "assumed",
    }
    np.testing.assert_allclose(episode.progress, np.linspace(0, 1, LENGTHS[1]), atol=1e-6)
    assert set(episode.primitive.tolist()) == {PRIMITIVE_INDEX["dummy"]}
    np.testing.assert_allclose(episode.timestamp, np.arange(LENGTHS[1]) / 10.0, atol=1e-6)
    reference = make_episode(1, LENGTHS[1])
    assert np.array_equal(episode.state, reference.state) and np.array_equal(episode.action, reference.action)
    for cam in CAMERAS:  # the camera mapping put every stream in its place
        assert np.array_equal(episode.frames[cam], reference.frames[cam]), cam
    # only episode 2, with a task id of our choice
    config = lr.ImportConfig(episodes=(2,), task_id="SARM2/FoldShorts-v0", assume_success=False)
    (only,) = lr.read_lerobot_episodes(foreign, config)
    assert (only.task_id, only.length, only.success) == ("SARM2/FoldShorts-v0", LENGTHS[2], False)
    with pytest.raises(DatasetError, match=r"episodes \[7\]"):
        list(lr.read_lerobot_episodes(foreign, lr.ImportConfig(episodes=(7,))))


def test_import_image_features(exported, tmp_path) -> None:
    """A camera stored as PNG images in the frame table (LeRobot's ``"image"`` dtype) instead of an mp4."""
    import io

    from PIL import Image

    root = tmp_path / "images"
    shutil.copytree(exported["lossless"], root)
    key = "observation.images.top"
    info = json.loads((root / "meta/info.json").read_text())
    info["features"][key] = {"dtype": "image", "shape": [SIZE, SIZE, 3], "names": ["height", "width", "channels"]}
    (root / "meta/info.json").write_text(json.dumps(info))
    shutil.rmtree(root / "videos" / key)
    episodes = [make_episode(k, n) for k, n in enumerate(LENGTHS)]
    cells = []
    for frame in np.concatenate([e.frames["top"] for e in episodes]):
        buffer = io.BytesIO()
        Image.fromarray(frame).save(buffer, format="PNG")
        cells.append({"bytes": buffer.getvalue(), "path": None})
    data = root / "data/chunk-000/file-000.parquet"
    table = pq.read_table(data)
    pq.write_table(
        table.append_column(key, pa.array(cells, pa.struct([("bytes", pa.binary()), ("path", pa.string())]))), data
    )
    (second,) = lr.read_lerobot_episodes(root, lr.ImportConfig(episodes=(1,)))
    assert np.array_equal(second.frames["top"], episodes[1].frames["top"])
    assert np.array_equal(second.frames["left_wrist"], episodes[1].frames["left_wrist"])


def test_camera_mapping() -> None:
    ours = [f"observation.images.{c}" for c in CAMERAS]
    assert lr.resolve_cameras(ours) == dict(zip(CAMERAS, ours))
    aloha = ["observation.images.cam_high", "observation.images.cam_left_wrist", "observation.images.cam_right_wrist"]
    assert lr.resolve_cameras(aloha) == dict(zip(CAMERAS, aloha))
    other = ["observation.images.overhead", "observation.images.wrist_left", "observation.images.wrist_right"]
    assert lr.resolve_cameras(other) == dict(zip(CAMERAS, other))
    odd = ["observation.images.a", "observation.images.b", "observation.images.c"]
    with pytest.raises(DatasetError, match="camera 'top'.*--camera top="):
        lr.resolve_cameras(odd)
    assert lr.resolve_cameras(odd, {"top": "b", "left_wrist": "observation.images.c", "right_wrist": "a"}) == {
        "top": "observation.images.b",
        "left_wrist": "observation.images.c",
        "right_wrist": "observation.images.a",
    }
    with pytest.raises(DatasetError, match="several keys"):
        lr.resolve_cameras([*ours[1:], "observation.images.top_left", "observation.images.top_right"])
    with pytest.raises(DatasetError, match="'z' is not in the dataset"):
        lr.resolve_cameras(ours, {"top": "z"})
    with pytest.raises(ConfigError, match="cameras"):
        lr.ImportConfig(cameras={"front": "x"})


def test_state_of_another_size_names_the_field(exported, tmp_path) -> None:
    bad_info = tmp_path / "bad_info"
    shutil.copytree(exported["lossy"], bad_info)
    info = json.loads((bad_info / "meta/info.json").read_text())
    info["features"]["observation.state"]["shape"] = [12]
    (bad_info / "meta/info.json").write_text(json.dumps(info))
    with pytest.raises(DatasetError, match=r"`observation.state`: expected shape \[14\].*got \[12\]"):
        list(lr.read_lerobot_episodes(bad_info))

    bad_data = tmp_path / "bad_data"
    shutil.copytree(exported["lossy"], bad_data)
    path = bad_data / "data/chunk-000/file-000.parquet"
    table = pq.read_table(path)
    flat = table.column("action").combine_chunks().flatten().to_numpy().reshape(-1, 14)[:, :12].copy()
    short = pa.FixedSizeListArray.from_arrays(pa.array(flat.reshape(-1)), 12)
    pq.write_table(table.set_column(table.column_names.index("action"), "action", short), path)
    with pytest.raises(DatasetError, match=r"`action`: expected 14 values per frame.*got \[12\]"):
        list(lr.read_lerobot_episodes(bad_data))
    with pytest.raises(DatasetError, match="v3"):
        list(lr.read_lerobot_episodes(tmp_path))


def test_progress_sidecar(exported, tmp_path) -> None:
    root = exported["lossy"]
    oracle = make_reward_model("oracle")
    sparse = lr.predict_progress(root, oracle)
    assert sorted(sparse) == [0, 1, 2]
    dense = {k: np.clip(v * 0.5, 0, 1) for k, v in sparse.items()}
    path = lr.write_progress_sidecar(root, sparse, dense, path=tmp_path / "sarm_progress.parquet")
    table = pq.read_table(path)
    assert table.schema.names == ["index", "episode_index", "frame_index", "progress_sparse", "progress_dense"]
    assert [str(t) for t in table.schema.types] == ["int64", "int64", "int64", "float", "float"]
    data = pq.read_table(root / "data/chunk-000/file-000.parquet")
    for name in ("index", "episode_index", "frame_index"):
        assert table.column(name).to_pylist() == data.column(name).to_pylist()
    gt = np.concatenate([make_episode(k, n).progress for k, n in enumerate(LENGTHS)])
    assert np.array_equal(table.column("progress_sparse").to_numpy(), gt)
    columns = lr.read_progress_sidecar(path)
    assert np.array_equal(columns["progress_dense"], (gt * 0.5).astype(np.float32))

    default = lr.write_progress_sidecar(root, {2: sparse[2]})  # one episode, sparse only, beside the dataset
    assert default == root / lr.SIDECAR_FILE
    only = pq.read_table(default)
    assert only.column_names == ["index", "episode_index", "frame_index", "progress_sparse"]
    assert only.column("index").to_pylist() == list(range(LENGTHS[0] + LENGTHS[1], sum(LENGTHS)))
    default.unlink()
    with pytest.raises(DatasetError, match="episode 0: expected 9 frames; got 3"):
        lr.write_progress_sidecar(root, {0: np.zeros(3)})
    with pytest.raises(DatasetError, match="episode 5 is not in"):
        lr.write_progress_sidecar(root, {5: np.zeros(3)})
    with pytest.raises(NonFiniteError):
        lr.write_progress_sidecar(root, {0: np.full(9, np.nan)})
    assert not (root / lr.SIDECAR_FILE).exists() and not list(root.glob(".*tmp*"))


def test_command_line(source, tmp_path, capsys) -> None:
    out = tmp_path / "cli_export"
    assert lr.main(["export", "--data", str(source), "--out", str(out), "--lossless"]) == 0
    assert lr.main(["import", "--lerobot", str(out), "--out", str(tmp_path / "cli_import")]) == 0
    assert EpisodeDataset(tmp_path / "cli_import").episode_ids == ["ep0", "ep1", "ep2"]
    assert lr.main(["sidecar", "--lerobot", str(out), "--backend", "oracle", "--dense-backend", "sparse"]) == 0
    sidecar = lr.read_progress_sidecar(out / lr.SIDECAR_FILE)
    assert sidecar["progress_dense"].tolist() == [
        float(f) for k, n in enumerate(LENGTHS) for f in make_episode(k, n).success_flags
    ]
    assert "exported 3 episodes" in capsys.readouterr().out
    with pytest.raises(ConfigError, match="OURS=KEY"):
        lr.main(["import", "--lerobot", str(out), "--out", str(tmp_path / "x"), "--camera", "top"])


# --------------------------------------------------------------------------------------------------- LeRobot itself

_LEROBOT_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    from lerobot.datasets.lerobot_dataset import LeRobotDataset
    from lerobot.utils.rabc import RABCWeights

    ours, progress, made, result, lossy = sys.argv[1:6]
    default = LeRobotDataset("local/sarm2_lossy", root=lossy, video_backend="pyav")  # H.264 yuv420p
    assert default.num_frames == int(sys.argv[6]) and tuple(default[3]["observation.images.top"].shape) == (3, 32, 32)
    ds = LeRobotDataset("local/sarm2_export", root=ours, video_backend="pyav")
    out = {"episodes": ds.num_episodes, "frames": ds.num_frames, "fps": ds.fps, "tasks": [], "index": []}
    arrays = {}
    for i in range(len(ds)):
        item = ds[i]
        out["tasks"].append(item["task"])
        out["index"].append(int(item["index"]))
        for key in ("observation.state", "action", "observation.images.top", "observation.images.right_wrist"):
            arrays.setdefault(key, []).append(item[key].numpy())
    np.savez(result + ".npz", **{k: np.stack(v) for k, v in arrays.items()})
    rabc = RABCWeights(progress, chunk_size=3, head_mode="sparse", device="cpu")
    weights, _ = rabc.compute_batch_weights({"index": np.arange(len(ds))})
    out["rabc_weights"] = [float(w) for w in weights]

    # a dataset written by LeRobot itself, with ALOHA-style camera names, for our importer
    features = {
        "observation.state": {"dtype": "float32", "shape": (14,), "names": [f"j{i}" for i in range(14)]},
        "action": {"dtype": "float32", "shape": (14,), "names": [f"j{i}" for i in range(14)]},
    }
    for cam in ("cam_high", "cam_left_wrist", "cam_right_wrist"):
        features["observation.images." + cam] = {
            "dtype": "video", "shape": (32, 32, 3), "names": ["height", "width", "channels"]
        }
    rec = LeRobotDataset.create("local/yam_rec", fps=30, features=features, root=made, robot_type="bi_yam")
    yy, xx = np.mgrid[0:32, 0:32]
    for ep, n in enumerate((6, 5)):
        for t in range(n):
            frame = {
                "observation.state": np.full(14, ep + t / 100, np.float32),
                "action": np.full(14, -t / 10, np.float32),
                "task": f"task {ep}",
            }
            for k, cam in enumerate(("cam_high", "cam_left_wrist", "cam_right_wrist")):
                image = [(xx * 6 + 9 * t) % 256, (yy * 3 + 60 * k) % 256, np.full_like(xx, 50 * ep)]
                frame["observation.images." + cam] = np.stack(image, -1).astype(np.uint8)
            rec.add_frame(frame)
        rec.save_episode()
    rec.finalize()
    json.dump(out, open(result + ".json", "w"))
    """
)


@pytest.mark.slow
def test_lerobot_loads_our_export_and_we_import_its_recordings(exported, tmp_path) -> None:
    """Set SARM2_LEROBOT_PYTHON to the python of a venv with ``pip install lerobot`` to run this."""
    python = os.environ.get("SARM2_LEROBOT_PYTHON")
    if not python:
        pytest.skip("set SARM2_LEROBOT_PYTHON to a python with lerobot installed")
    root = exported["lossless"]
    sparse = lr.predict_progress(root, make_reward_model("oracle"))
    progress = lr.write_progress_sidecar(root, sparse, path=tmp_path / lr.SIDECAR_FILE)
    script = tmp_path / "check.py"
    script.write_text(_LEROBOT_SCRIPT)
    made, result = tmp_path / "recorded", tmp_path / "result"
    run = subprocess.run(
        [
            python,
            str(script),
            str(root),
            str(progress),
            str(made),
            str(result),
            str(exported["lossy"]),
            str(sum(LENGTHS)),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads(Path(f"{result}.json").read_text())
    arrays = np.load(f"{result}.npz")
    assert (out["episodes"], out["frames"], out["fps"]) == (3, sum(LENGTHS), 10)
    assert out["index"] == list(range(sum(LENGTHS)))
    episodes = [make_episode(k, n) for k, n in enumerate(LENGTHS)]
    assert out["tasks"] == [e.instruction for e in episodes for _ in range(e.length)]
    assert np.array_equal(arrays["observation.state"], np.concatenate([e.state for e in episodes]))
    assert np.array_equal(arrays["action"], np.concatenate([e.action for e in episodes]))
    for cam in ("top", "right_wrist"):  # LeRobot returns (C, H, W) float in [0, 1]; lossless video is exact
        theirs = np.round(arrays[f"observation.images.{cam}"].transpose(0, 2, 3, 1) * 255).astype(np.uint8)
        assert np.array_equal(theirs, np.concatenate([e.frames[cam] for e in episodes]))
    assert len(out["rabc_weights"]) == sum(LENGTHS) and all(np.isfinite(out["rabc_weights"]))

    recorded = EpisodeDataset(lr.import_lerobot(made, tmp_path / "imported"))
    assert recorded.episode_ids == ["lerobot_000000", "lerobot_000001"]
    episode = recorded.load(1)
    assert (episode.length, episode.fps, episode.instruction) == (5, 30.0, "task 1")
    np.testing.assert_array_equal(episode.state[:, 0], np.float32(1 + np.arange(5) / 100))
    yy, xx = np.mgrid[0:32, 0:32]
    for k, cam in enumerate(CAMERAS):
        reference = np.stack(
            [np.stack([(xx * 6 + 9 * t) % 256, (yy * 3 + 60 * k) % 256, np.full_like(xx, 50)], -1) for t in range(5)]
        )
        assert _psnr(episode.frames[cam], reference) > 30.0, cam
