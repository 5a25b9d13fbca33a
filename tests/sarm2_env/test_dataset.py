"""Tests of the on-disk episode dataset (sarm2_env/dataset.py)."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from sarm2_env import dataset as ds_mod
from sarm2_env.constants import CAMERAS, NUM_PRIMITIVES, PRIMITIVES, STATE_DIM
from sarm2_env.dataset import DatasetWriter, Episode, EpisodeDataset, summarise
from sarm2_env.errors import DatasetError

TASK_A = "SARM2/FoldShorts-v0"
TASK_B = "SARM2/CleanWhiteboard-v0"


def make_episode(
    length: int = 8,
    *,
    seed: int = 0,
    task_id: str = TASK_A,
    success: bool = True,
    episode_id: str = "",
    size: tuple[int, int] = (16, 16),
    **overrides,
) -> Episode:
    """A small valid episode with random content; ``overrides`` replace fields without validation."""
    rng = np.random.default_rng(seed)
    h, w = size
    flags = np.zeros(length, dtype=bool)
    flags[-1] = success
    fields = {
        "task_id": task_id,
        "instruction": f"do {task_id} #{seed}",
        "seed": seed,
        "skill": 0.25 + 0.01 * seed,
        "success": success,
        "fps": 10.0,
        "episode_id": episode_id,
        "extra": {"backend": "sim", "notes": ["a", 1, 2.5], "nested": {"x": None}},
        "state": rng.normal(size=(length, STATE_DIM)).astype(np.float32),
        "action": rng.normal(size=(length, STATE_DIM)).astype(np.float32),
        "primitive": rng.integers(0, NUM_PRIMITIVES, size=length).astype(np.int16),
        "progress": np.linspace(0.0, 1.0, length, dtype=np.float32),
        "success_flags": flags,
        "timestamp": np.arange(length, dtype=np.float64) / 10.0,
        "frames": {cam: rng.integers(0, 256, size=(length, h, w, 3), dtype=np.uint8) for cam in CAMERAS},
    }
    fields.update(overrides)
    return Episode(**fields)


def assert_same(a: Episode, b: Episode, frames: bool = True) -> None:
    for f in dataclasses.fields(Episode):
        va, vb = getattr(a, f.name), getattr(b, f.name)
        if f.name == "frames":
            if frames:
                assert sorted(va) == sorted(vb)
                for cam in va:
                    assert va[cam].dtype == vb[cam].dtype
                    np.testing.assert_array_equal(va[cam], vb[cam])
        elif isinstance(va, np.ndarray):
            assert va.dtype == vb.dtype, f.name
            np.testing.assert_array_equal(va, vb, err_msg=f.name)
        else:
            assert va == vb, f.name
            assert type(va) is type(vb), f.name


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "data"


def write(root: Path, *episodes: Episode, **kwargs) -> list[Path]:
    with DatasetWriter(root, **kwargs) as w:
        return [w.add(e) for e in episodes]


# ------------------------------------------------------------------------------------------------ round trip


@pytest.mark.parametrize("compress", [True, False])
def test_round_trip_every_field(root: Path, compress: bool) -> None:
    eps = [
        make_episode(5, seed=1, episode_id="ep-one"),
        make_episode(12, seed=2, task_id=TASK_B, success=False, episode_id="ep.two"),
    ]
    paths = write(root, *eps, compress=compress)
    assert [p.name for p in paths] == ["ep-one.npz", "ep.two.npz"]
    data = EpisodeDataset(root, verify=True)
    assert len(data) == 2
    assert data.episode_ids == ["ep-one", "ep.two"]
    for original, loaded in zip(eps, data, strict=True):
        assert_same(original, loaded)
    assert_same(eps[1], data[-1])
    assert data[0].length == 5
    assert data[0].primitive_names == [PRIMITIVES[i] for i in eps[0].primitive]
    assert data[0].image_size == (16, 16)


def test_metadata_only_load_skips_frames(root: Path) -> None:
    ep = make_episode(6, episode_id="x")
    write(root, ep)
    loaded = EpisodeDataset(root).load(0, frames=False)
    assert loaded.frames == {}
    assert loaded.image_size is None
    assert_same(ep, loaded, frames=False)


def test_readable_with_numpy_and_json_only(root: Path) -> None:
    ep = make_episode(7, episode_id="plain")
    write(root, ep)
    index = json.loads((root / "dataset.json").read_text())
    assert index["format"] == "sarm2-episodes" and index["version"] == 1
    assert index["primitives"] == list(PRIMITIVES) and index["cameras"] == list(CAMERAS)
    entry = index["episodes"][0]
    assert set(entry) >= {"episode_id", "task_id", "file", "length", "success", "seed", "skill", "sha256", "bytes"}
    assert entry["file"] == "episodes/plain.npz" and entry["length"] == 7
    with np.load(root / entry["file"]) as z:
        meta = json.loads(z["meta"].tobytes().decode("utf-8"))
        assert meta["task_id"] == TASK_A and meta["episode_id"] == "plain" and meta["extra"] == ep.extra
        np.testing.assert_array_equal(z["frames_left_wrist"], ep.frames["left_wrist"])
        assert z["meta"].shape == ()


def test_generated_ids_are_unique(root: Path) -> None:
    with DatasetWriter(root) as w:
        paths = [w.add(make_episode(5, seed=7)) for _ in range(3)]
        assert len(set(w.episode_ids)) == 3
    assert all(p.stem.startswith("sarm2_foldshorts_v0_000007_") for p in paths)
    assert EpisodeDataset(root).episode_ids == [p.stem for p in paths]


def test_create_casts_dtypes_and_primitive_names() -> None:
    ref = make_episode(5)
    ep = Episode.create(
        **{
            **{f.name: getattr(ref, f.name) for f in dataclasses.fields(Episode)},
            "state": ref.state.astype(np.float64),
            "progress": ref.progress.tolist(),
            "success_flags": ref.success_flags.astype(int),
            "primitive": [PRIMITIVES[i] for i in ref.primitive],
            "seed": np.int64(0),
        }
    )
    assert ep.state.dtype == np.float32 and ep.primitive.dtype == np.int16 and ep.success_flags.dtype == bool
    assert type(ep.seed) is int
    np.testing.assert_array_equal(ep.primitive, ref.primitive)
    with pytest.raises(DatasetError, match="primitive"):
        Episode.create(**{**{f.name: getattr(ref, f.name) for f in dataclasses.fields(Episode)}, "primitive": [99] * 5})


# ------------------------------------------------------------------------------------------------ validation


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"state": np.zeros((8, 13), np.float32)}, "state"),
        ({"state": np.zeros((8, STATE_DIM), np.float64)}, "state"),
        ({"action": np.zeros((7, STATE_DIM), np.float32)}, "action"),
        ({"action": np.full((8, STATE_DIM), np.nan, np.float32)}, "action"),
        ({"progress": np.full(8, 1.5, np.float32)}, "progress"),
        ({"progress": np.linspace(0, 1, 9, dtype=np.float32)}, "progress"),
        ({"primitive": np.full(8, 99, np.int16)}, "primitive"),
        ({"primitive": np.zeros(8, np.int64)}, "primitive"),
        ({"success_flags": np.zeros(8, np.float32)}, "success_flags"),
        ({"timestamp": np.array([0, 1, 2, 1, 4, 5, 6, 7], np.float64)}, "timestamp"),
        ({"timestamp": np.arange(8, dtype=np.float32)}, "timestamp"),
        ({"frames": {"top": np.zeros((8, 16, 16, 3), np.uint8)}}, "frames"),
        ({"frames": {c: np.zeros((8, 16, 16, 3), np.float32) for c in CAMERAS}}, "frames['top']"),
        ({"frames": {c: np.zeros((7, 16, 16, 3), np.uint8) for c in CAMERAS}}, "frames['top']"),
        (
            {"frames": {c: np.zeros((8, 16, 16 + (c == "top"), 3), np.uint8) for c in CAMERAS}},
            "frames['left_wrist']",
        ),
        ({"task_id": ""}, "task_id"),
        ({"seed": 1.5}, "seed"),
        ({"fps": 0.0}, "fps"),
        ({"skill": float("inf")}, "skill"),
        ({"episode_id": "../escape"}, "episode_id"),
        ({"extra": {"bad": object()}}, "extra"),
    ],
)
def test_validate_names_the_field(overrides: dict, field: str) -> None:
    ep = dataclasses.replace(make_episode(8), **overrides)
    with pytest.raises(DatasetError) as info:
        ep.validate()
    assert f"`{field}`" in str(info.value)
    assert "expected" in str(info.value) and "got" in str(info.value)


def test_valid_episode_passes_and_writer_validates(root: Path) -> None:
    make_episode(5).validate()
    with DatasetWriter(root) as w, pytest.raises(DatasetError, match="`progress`"):
        w.add(make_episode(5, progress=np.full(5, -0.1, np.float32)))
    assert len(EpisodeDataset(root)) == 0


# ------------------------------------------------------------------------------------------------ writer behaviour


def test_duplicate_id_refused(root: Path) -> None:
    with DatasetWriter(root) as w:
        w.add(make_episode(5, episode_id="same"))
        with pytest.raises(DatasetError, match="duplicate 'same'"):
            w.add(make_episode(6, episode_id="same"))
    assert EpisodeDataset(root)[0].length == 5


def test_append_to_existing_dataset(root: Path) -> None:
    write(root, make_episode(5, seed=1, episode_id="a"))
    with DatasetWriter(root) as w:
        assert w.episode_ids == ["a"]
        with pytest.raises(DatasetError, match="duplicate"):
            w.add(make_episode(5, episode_id="a"))
        w.add(make_episode(6, seed=2))
    data = EpisodeDataset(root)
    assert len(data) == 2 and data.episode_ids[0] == "a"
    assert [e.length for e in data] == [5, 6]


def test_overwrite_starts_fresh(root: Path) -> None:
    write(root, make_episode(5, episode_id="old"))
    write(root, make_episode(6, episode_id="new"), overwrite=True)
    data = EpisodeDataset(root)
    assert data.episode_ids == ["new"]
    assert not (root / "episodes" / "old.npz").exists()


def test_foreign_directory_refused_unless_overwrite(root: Path) -> None:
    root.mkdir()
    (root / "notes.txt").write_text("not a dataset")
    with pytest.raises(DatasetError, match="notes.txt"):
        DatasetWriter(root)
    assert not (root / ".dataset.lock").exists()
    write(root, make_episode(5, episode_id="a"), overwrite=True)
    assert (root / "notes.txt").read_text() == "not a dataset"
    assert len(EpisodeDataset(root)) == 1


def test_empty_existing_directory_becomes_dataset(root: Path) -> None:
    root.mkdir()
    with DatasetWriter(root):
        pass
    assert len(EpisodeDataset(root)) == 0


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX lock")
def test_second_writer_on_same_root_refused(root: Path) -> None:
    with DatasetWriter(root), pytest.raises(DatasetError, match="another DatasetWriter"):
        DatasetWriter(root)
    with DatasetWriter(root):  # released on close
        pass


def test_closed_writer_refuses_add(root: Path) -> None:
    w = DatasetWriter(root)
    w.close()
    with pytest.raises(DatasetError, match="closed"):
        w.add(make_episode(5))


# ------------------------------------------------------------------------------------------------ crash safety


def test_crash_during_episode_write_leaves_index_consistent(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = make_episode(5, seed=1, episode_id="first")
    with DatasetWriter(root) as w:
        w.add(first)

        def crash(src, dst):
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(ds_mod.os, "replace", crash)
        with pytest.raises(DatasetError, match="second"):
            w.add(make_episode(6, seed=2, episode_id="second"))
        monkeypatch.undo()
        assert w.episode_ids == ["first"]
        assert not (root / "episodes" / "second.npz").exists()
        assert not [p for p in (root / "episodes").iterdir() if ".tmp-" in p.name]
        assert EpisodeDataset(root).episode_ids == ["first"]
        # the writer recovers: the same id can be written after the failure
        w.add(make_episode(7, seed=3, episode_id="second"))
    data = EpisodeDataset(root)
    assert data.episode_ids == ["first", "second"]
    assert_same(first, data[0])
    assert data[1].length == 7


def test_crash_between_episode_and_index_write(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(root, make_episode(5, episode_id="first"))
    real_replace = os.replace

    def crash_on_index(src, dst):
        if str(dst).endswith("dataset.json"):
            raise OSError(5, "I/O error")
        real_replace(src, dst)

    with DatasetWriter(root) as w:
        monkeypatch.setattr(ds_mod.os, "replace", crash_on_index)
        with pytest.raises(DatasetError, match="dataset.json"):
            w.add(make_episode(6, episode_id="orphan"))
        monkeypatch.undo()
        assert w.episode_ids == ["first"]
    assert (root / "episodes" / "orphan.npz").exists()  # complete but unlisted
    data = EpisodeDataset(root)
    assert data.episode_ids == ["first"]
    with DatasetWriter(root) as w:  # the next writer lists the complete file: nothing is lost or re-recorded
        assert w.adopted == ["orphan"] and w.episode_ids == ["first", "orphan"]
    assert EpisodeDataset(root, verify=True)[1].length == 6


def test_an_unreadable_unlisted_file_is_removed(root: Path) -> None:
    write(root, make_episode(5, episode_id="first"))
    junk = root / "episodes" / "junk.npz"
    junk.write_bytes(b"PK\x03\x04 not an episode")
    with DatasetWriter(root) as w:
        assert w.adopted == [] and w.episode_ids == ["first"]
    assert not junk.exists()


def test_repair_drops_broken_episodes_and_keeps_the_rest(root: Path) -> None:
    with DatasetWriter(root) as w:
        for k, eid in enumerate(("a", "b", "c")):
            w.add(make_episode(5 + k, episode_id=eid))
    broken = root / "episodes" / "b.npz"
    broken.write_bytes(broken.read_bytes()[:-100])  # truncated
    with pytest.raises(DatasetError, match="--repair"):
        EpisodeDataset(root)[1]
    (root / "episodes" / "c.npz").unlink()  # missing
    with DatasetWriter(root) as w:  # without repair nothing is dropped
        assert w.repaired == [] and w.episode_ids == ["a", "b", "c"]
    with DatasetWriter(root, repair=True) as w:
        assert w.repaired == ["b", "c"] and w.episode_ids == ["a"]
    assert not broken.exists()
    assert [e.length for e in EpisodeDataset(root, verify=True)] == [5]


def test_stray_tmp_files_ignored_by_reader_and_cleaned_by_writer(root: Path) -> None:
    write(root, make_episode(5, episode_id="ok"))
    stray_ep = root / "episodes" / ".half.npz.tmp-12345"
    stray_ep.write_bytes(b"PK\x03\x04 partial")
    stray_index = root / ".dataset.json.tmp-12345"
    stray_index.write_text('{"format": "sarm2-ep')
    data = EpisodeDataset(root)
    assert data.episode_ids == ["ok"]
    assert data[0].length == 5
    with DatasetWriter(root) as w:
        assert w.episode_ids == ["ok"]
    assert not stray_ep.exists() and not stray_index.exists()


# ------------------------------------------------------------------------------------------------ corruption


def test_truncated_file_raises_naming_it(root: Path) -> None:
    (path,) = write(root, make_episode(8, episode_id="trunc"))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DatasetError, match=r"trunc\.npz.*--repair"):
        EpisodeDataset(root)[0]


def test_truncated_file_with_patched_index_size_still_raises(root: Path) -> None:
    """Even if the size check is defeated, a broken zip is reported as a DatasetError naming the file."""
    (path,) = write(root, make_episode(8, episode_id="broken"))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    index_path = root / "dataset.json"
    index = json.loads(index_path.read_text())
    index["episodes"][0]["bytes"] = path.stat().st_size
    index_path.write_text(json.dumps(index))
    with pytest.raises(DatasetError, match=r"broken\.npz") as info:
        EpisodeDataset(root)[0]
    assert "--repair" in str(info.value)


def test_flipped_bytes_detected_by_verify(root: Path) -> None:
    (path,) = write(root, make_episode(8, episode_id="flip"))
    data = bytearray(path.read_bytes())
    data[len(data) // 3] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(DatasetError, match=r"flip\.npz.*sha256"):
        EpisodeDataset(root, verify=True)[0]
    # without verify the corruption is still caught (by the zip CRC or the decoder) or the content differs
    try:
        EpisodeDataset(root)[0]
    except DatasetError as exc:
        assert "flip.npz" in str(exc)


def test_missing_file(root: Path) -> None:
    (path,) = write(root, make_episode(5, episode_id="gone"))
    path.unlink()
    with pytest.raises(DatasetError, match=r"gone\.npz.*missing"):
        EpisodeDataset(root)[0]


def _rewrite_npz(path: Path, drop: str | None = None, **replace: np.ndarray) -> None:
    """Rewrite an episode file (and let the caller fix the index) with a key dropped or replaced."""
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files if k != drop}
    arrays.update(replace)
    with open(path, "wb") as f:
        np.savez_compressed(f, **arrays)


def _fix_index(root: Path) -> None:
    index_path = root / "dataset.json"
    index = json.loads(index_path.read_text())
    for e in index["episodes"]:
        e["bytes"] = (root / e["file"]).stat().st_size
    index_path.write_text(json.dumps(index))


def test_missing_key(root: Path) -> None:
    (path,) = write(root, make_episode(5, episode_id="nokey"))
    _rewrite_npz(path, drop="frames_right_wrist")
    _fix_index(root)
    with pytest.raises(DatasetError, match=r"nokey\.npz.*frames_right_wrist"):
        EpisodeDataset(root)[0]
    assert EpisodeDataset(root).load(0, frames=False).length == 5  # frames not needed


def test_bad_array_in_file_names_field(root: Path) -> None:
    (path,) = write(root, make_episode(5, episode_id="badprog"))
    _rewrite_npz(path, progress=np.full(5, 2.0, np.float32))
    _fix_index(root)
    with pytest.raises(DatasetError, match=r"badprog\.npz.*`progress`"):
        EpisodeDataset(root)[0]


def test_garbled_meta(root: Path) -> None:
    (path,) = write(root, make_episode(5, episode_id="meta"))
    _rewrite_npz(path, meta=np.array(b'{"task_id": '))
    _fix_index(root)
    with pytest.raises(DatasetError, match=r"meta\.npz.*`meta`"):
        EpisodeDataset(root)[0]


def test_file_disagreeing_with_index(root: Path) -> None:
    write(root, make_episode(5, episode_id="a"))
    index_path = root / "dataset.json"
    index = json.loads(index_path.read_text())
    index["episodes"][0]["length"] = 6
    index_path.write_text(json.dumps(index))
    with pytest.raises(DatasetError, match=r"`length`: expected 6.*got 5"):
        EpisodeDataset(root)[0]


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ('{"format": "sarm2-episodes", "version": 1, "episodes": [', "JSON"),
        ("\x00\x01garbage", "JSON"),
        ("[1, 2]", "JSON object"),
        ('{"format": "other", "version": 1, "episodes": []}', "format"),
        ('{"format": "sarm2-episodes", "version": 99, "episodes": []}', "version"),
        ('{"format": "sarm2-episodes", "version": 1}', "episodes"),
        ('{"format": "sarm2-episodes", "version": 1, "episodes": [{"episode_id": "a"}]}', "episodes\\[0\\]"),
    ],
)
def test_bad_index_raises_naming_path(root: Path, content: str, match: str) -> None:
    root.mkdir()
    (root / "dataset.json").write_text(content)
    with pytest.raises(DatasetError, match=match) as info:
        EpisodeDataset(root)
    assert "dataset.json" in str(info.value)
    with pytest.raises(DatasetError):
        DatasetWriter(root)  # a writer does not append to a garbled index either


def test_index_path_escape_refused(root: Path) -> None:
    write(root, make_episode(5, episode_id="a"))
    index_path = root / "dataset.json"
    index = json.loads(index_path.read_text())
    index["episodes"][0]["file"] = "../../etc/passwd"
    index_path.write_text(json.dumps(index))
    with pytest.raises(DatasetError, match="file"):
        EpisodeDataset(root)


def test_missing_root(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="does not exist"):
        EpisodeDataset(tmp_path / "nope")


# ------------------------------------------------------------------------------------------------ queries


def test_summary_filter_and_tasks(root: Path) -> None:
    eps = [
        make_episode(5, seed=1, task_id=TASK_A, success=True),
        make_episode(7, seed=2, task_id=TASK_A, success=False),
        make_episode(9, seed=3, task_id=TASK_B, success=True),
        make_episode(11, seed=4, task_id=TASK_B, success=True),
    ]
    paths = write(root, *eps)
    data = EpisodeDataset(root)
    assert data.tasks == sorted([TASK_A, TASK_B])
    assert data.filter(task_id=TASK_A) == [0, 1]
    assert data.filter(success=True) == [0, 2, 3]
    assert data.filter(task_id=TASK_B, success=False) == []
    assert data.index_of(data.episode_ids[2]) == 2
    with pytest.raises(KeyError):
        data.index_of("nope")
    with pytest.raises(IndexError):
        data[4]
    s = data.summary()
    assert s["episodes"] == 4
    assert s["frames"] == 32
    assert s["mean_length"] == pytest.approx(8.0)
    assert s["success_rate"] == pytest.approx(0.75)
    assert s["bytes"] == sum(p.stat().st_size for p in paths)
    assert s["tasks"][TASK_A] == {"episodes": 2, "successes": 1, "frames": 12, "success_rate": 0.5}
    assert s["tasks"][TASK_B]["success_rate"] == 1.0
    text = summarise(root)
    assert "4 episodes" in text and "32 frames" in text and "75.0%" in text
    assert TASK_A in text and TASK_B in text


def test_empty_dataset_summary(root: Path) -> None:
    with DatasetWriter(root):
        pass
    s = EpisodeDataset(root).summary()
    assert s == {"episodes": 0, "frames": 0, "bytes": 0, "success_rate": 0.0, "mean_length": 0.0, "tasks": {}}
    assert "0 episodes" in summarise(root)


def test_module_does_not_import_simulator() -> None:
    """sarm2_env/dataset.py itself (without the package __init__) needs neither mujoco nor gymnasium."""
    import subprocess

    code = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('dataset_alone', {ds_mod.__file__!r})\n"
        "mod = importlib.util.module_from_spec(spec); sys.modules['dataset_alone'] = mod\n"
        "spec.loader.exec_module(mod)\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'mujoco', 'gymnasium', 'torch'}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=Path(__file__).parents[2]
    )
    assert out.stdout.strip() == "[]"


# --- episodes recorded at a query rate (frames at some steps only) ------------------------------------------


def query_rate_episode(length: int = 12, index=(0, 5, 10, 11), seed: int = 3) -> Episode:
    rng = np.random.default_rng(seed)
    frames = {cam: rng.integers(0, 256, size=(len(index), 16, 16, 3), dtype=np.uint8) for cam in CAMERAS}
    return make_episode(length, seed=seed, frames=frames, frame_index=np.asarray(index, dtype=np.int32))


def test_query_rate_episode_round_trips_and_holds_frames_between_rendered_steps(tmp_path: Path) -> None:
    episode = query_rate_episode()
    episode.validate()
    assert (episode.length, episode.frame_count) == (12, 4)
    assert episode.rendered_steps.tolist() == [0, 5, 10, 11]
    with DatasetWriter(tmp_path / "d") as writer:
        writer.add(episode)
        entry = writer.entries[0]
    assert entry["length"] == 12 and entry["frames"] == 4
    back = EpisodeDataset(tmp_path / "d").load(0)
    assert_same(dataclasses.replace(episode, episode_id=back.episode_id), back)
    assert EpisodeDataset(tmp_path / "d").load(0, frames=False).frame_index.tolist() == [0, 5, 10, 11]
    held = back.frames_by_step()["top"]
    assert held.shape == (12, 16, 16, 3)
    for step, row in ((0, 0), (4, 0), (5, 1), (9, 1), (10, 2), (11, 3)):
        np.testing.assert_array_equal(held[step], back.frames["top"][row])
    full = make_episode(5)
    assert full.frame_count == 5 and full.frame_index is None and full.frames_by_step()["top"] is full.frames["top"]


def test_calibrated_progress_is_optional_round_trips_and_is_checked(tmp_path: Path) -> None:
    calibrated = np.linspace(0.0, 1.0, 8, dtype=np.float32)
    episode = Episode.create(**{**dataclasses.asdict(make_episode(8)), "calibrated_progress": calibrated.tolist()})
    with DatasetWriter(tmp_path / "d") as writer:
        writer.add(episode)
        writer.add(make_episode(8, seed=1))
    first, second = EpisodeDataset(tmp_path / "d")
    np.testing.assert_array_equal(first.calibrated_progress, calibrated)
    assert second.calibrated_progress is None  # absent, as in datasets recorded before it existed
    for bad, needle in ((calibrated * 2, r"values in \[0, 1\]"), (calibrated[:5], r"shape \(8,\)")):
        with pytest.raises(DatasetError, match=f"`calibrated_progress`: expected .*{needle}"):
            dataclasses.replace(episode, calibrated_progress=bad).validate()


@pytest.mark.parametrize(
    "index, needle",
    [
        ((1, 5, 11), "from 0 to the last step 11"),
        ((0, 5, 10), "from 0 to the last step 11"),
        ((0, 7, 5, 11), "increasing steps"),
        ((0, 12, 11), "increasing steps"),
    ],
)
def test_bad_frame_index_is_a_dataset_error(index, needle) -> None:
    with pytest.raises(DatasetError, match=f"`frame_index`: expected .*{needle}"):
        query_rate_episode(index=index).validate()


def test_frames_must_match_the_frame_index(tmp_path: Path) -> None:
    episode = dataclasses.replace(query_rate_episode(), frame_index=np.array([0, 11], dtype=np.int32))
    with pytest.raises(DatasetError, match=r"`frames\['top'\]`: expected a uint8 array of shape \(2, H, W, 3\)"):
        episode.validate()
    with pytest.raises(DatasetError, match="`frame_index`: expected integer steps"):
        Episode.create(**{**dataclasses.asdict(query_rate_episode()), "frame_index": [0.0, 11.0]})
    with DatasetWriter(tmp_path / "d") as writer:
        writer.add(query_rate_episode())
    index_path = tmp_path / "d" / "dataset.json"
    index = json.loads(index_path.read_text())
    index["episodes"][0]["frames"] = 3
    index_path.write_text(json.dumps(index))
    with pytest.raises(DatasetError, match="`frames`: expected 3 as recorded in dataset.json; got 4"):
        EpisodeDataset(tmp_path / "d").load(0)
    index["episodes"][0]["frames"] = 13
    index_path.write_text(json.dumps(index))
    with pytest.raises(DatasetError, match=r"episodes\[0\].frames: expected an int in \[1, length=12\]"):
        EpisodeDataset(tmp_path / "d")
