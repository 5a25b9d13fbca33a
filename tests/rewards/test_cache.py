"""Tests of the on-disk per-frame embedding cache (rewards/cache.py)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from rewards.cache import EmbeddingCache
from rewards.encoders import ImageEncoder, make_image_encoder
from sarm2_env import dataset as ds_mod
from sarm2_env.constants import CAMERAS, STATE_DIM
from sarm2_env.dataset import DatasetWriter, Episode, EpisodeDataset

LENGTHS = (6, 9)


def make_episode(length: int, seed: int, episode_id: str) -> Episode:
    rng = np.random.default_rng(seed)
    return Episode.create(
        task_id="SARM2/FoldShorts-v0",
        instruction="fold the shorts",
        seed=seed,
        skill=1.0,
        success=True,
        fps=10.0,
        episode_id=episode_id,
        state=rng.normal(size=(length, STATE_DIM)),
        action=rng.normal(size=(length, STATE_DIM)),
        primitive=["pick_grab"] * length,
        progress=np.linspace(0.0, 1.0, length),
        success_flags=np.arange(length) == length - 1,
        timestamp=np.arange(length) / 10.0,
        frames={cam: rng.integers(0, 256, size=(length, 32, 32, 3), dtype=np.uint8) for cam in CAMERAS},
    )


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    with DatasetWriter(root) as writer:
        for i, length in enumerate(LENGTHS):
            writer.add(make_episode(length, seed=i, episode_id=f"ep{i}"))
    return root


@pytest.fixture
def encoder() -> ImageEncoder:
    return make_image_encoder("tiny", device="cpu")


def tmp_leftovers(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if ".tmp" in p.name]


def test_miss_then_hit(root: Path, encoder: ImageEncoder) -> None:
    cache = EmbeddingCache(root, encoder)
    path = cache.path_for(0)
    assert path == root / "embeddings" / encoder.spec.key / "ep0.npz" and not path.exists()
    out = cache.get(0)
    assert (cache.misses, cache.hits, cache.frames_encoded) == (1, 0, LENGTHS[0] * 3)
    assert encoder.frames_encoded == LENGTHS[0] * 3 and encoder.calls == 3  # one call per camera
    assert path.exists()
    episode = EpisodeDataset(root)[0]
    assert sorted(out) == sorted(CAMERAS)
    for cam in CAMERAS:
        assert out[cam].shape == (LENGTHS[0], 64) and out[cam].dtype == np.float32
        np.testing.assert_array_equal(out[cam], encoder.encode(episode.frames[cam]))  # live == cached, bit for bit

    again = EmbeddingCache(EpisodeDataset(root), encoder)  # a new process, in effect
    before = encoder.frames_encoded
    reread = again.get(0)
    assert (again.hits, again.misses, again.frames_encoded) == (1, 0, 0)
    assert encoder.frames_encoded == before
    for cam in CAMERAS:
        np.testing.assert_array_equal(reread[cam], out[cam])
    assert not tmp_leftovers(root)


def test_memory_hits_return_fresh_arrays(root: Path, encoder: ImageEncoder) -> None:
    cache = EmbeddingCache(root, encoder)
    first = cache.get(1)
    first["top"][:] = 0.0
    second = cache.get(1)
    assert (cache.misses, cache.hits) == (1, 1)
    assert np.abs(second["top"]).max() > 0


def test_get_by_id_and_index_agree(root: Path, encoder: ImageEncoder) -> None:
    cache = EmbeddingCache(root, encoder, memory=0)
    by_index, by_id, by_negative = cache.get(1), cache.get("ep1"), cache.get(-1)
    for cam in CAMERAS:
        np.testing.assert_array_equal(by_index[cam], by_id[cam])
        np.testing.assert_array_equal(by_index[cam], by_negative[cam])
    assert cache.path_for("ep1") == cache.path_for(1) == cache.path_for(-1)
    assert (cache.misses, cache.hits) == (1, 2)
    with pytest.raises(KeyError):
        cache.get("nope")
    with pytest.raises(IndexError):
        cache.get(2)


def test_ensure_encodes_only_what_is_missing(root: Path, encoder: ImageEncoder) -> None:
    cache = EmbeddingCache(root, encoder)
    cache.ensure(["ep1"])
    assert cache.misses == 1 and cache.frames_encoded == LENGTHS[1] * 3
    cache.ensure(progress=True)
    assert cache.misses == 2 and cache.frames_encoded == sum(LENGTHS) * 3
    assert all(cache.path_for(i).exists() for i in range(len(LENGTHS)))
    fresh = EmbeddingCache(root, encoder)
    fresh.ensure()
    assert (fresh.misses, fresh.hits, fresh.frames_encoded) == (0, 2, 0)
    with pytest.raises(KeyError):
        fresh.ensure(["ep0", "nope"])


def test_file_is_plain_numpy(root: Path, encoder: ImageEncoder) -> None:
    cache = EmbeddingCache(root, encoder)
    out = cache.get(0)
    entry = EpisodeDataset(root).entries[0]
    with np.load(cache.path_for(0), allow_pickle=False) as z:
        meta = json.loads(z["meta"].tobytes().decode("utf-8"))
        assert z["emb_left_wrist"].dtype == np.float16
        np.testing.assert_array_equal(z["emb_left_wrist"].astype(np.float32), out["left_wrist"])
    assert meta["episode_sha256"] == entry["sha256"] and meta["length"] == LENGTHS[0]
    assert meta["encoder"] == encoder.spec.to_dict() and meta["cameras"] == list(CAMERAS)
    assert json.loads((cache.directory / "encoder.json").read_text())["spec"] == encoder.spec.to_dict()


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty", "flip"])
def test_corrupt_file_is_re_encoded(root: Path, encoder: ImageEncoder, damage: str) -> None:
    cache = EmbeddingCache(root, encoder)
    reference = cache.get(1)
    path = cache.path_for(1)
    data = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "garbage":
        path.write_bytes(b"not a zip file at all")
    elif damage == "empty":
        path.write_bytes(b"")
    else:  # one flipped byte: caught by the zip CRC
        flipped = bytearray(data)
        flipped[len(data) // 3] ^= 0xFF
        path.write_bytes(bytes(flipped))
    again = EmbeddingCache(root, encoder)
    out = again.get(1)
    assert (again.misses, again.hits, again.frames_encoded) == (1, 0, LENGTHS[1] * 3)
    for cam in CAMERAS:
        np.testing.assert_array_equal(out[cam], reference[cam])
    third = EmbeddingCache(root, encoder)
    third.get(1)
    assert (third.misses, third.hits) == (0, 1)  # the rewritten file is valid
    assert not tmp_leftovers(root)


def test_stale_metadata_is_re_encoded(root: Path, encoder: ImageEncoder, caplog: pytest.LogCaptureFixture) -> None:
    cache = EmbeddingCache(root, encoder)
    cache.get(0)
    path = cache.path_for(0)
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(arrays["meta"].tobytes().decode("utf-8"))
    for key, value in (("encoder", {**meta["encoder"], "weights": "random-init:seed1"}), ("episode_sha256", "0" * 64)):
        arrays["meta"] = np.array(json.dumps({**meta, key: value}).encode("utf-8"))
        with open(path, "wb") as f:
            np.savez(f, **arrays)
        again = EmbeddingCache(root, encoder)
        with caplog.at_level(logging.INFO, logger="rewards.cache"):
            again.get(0)
        assert again.misses == 1, key
        assert f"`{key}`" in caplog.text


def test_re_recorded_episode_is_re_encoded(root: Path, encoder: ImageEncoder) -> None:
    old = EmbeddingCache(root, encoder).get(0)
    with DatasetWriter(root, overwrite=True) as writer:  # same id, new content (and new sha256)
        writer.add(make_episode(LENGTHS[0], seed=42, episode_id="ep0"))
    cache = EmbeddingCache(root, encoder)
    new = cache.get(0)
    assert cache.misses == 1
    assert np.abs(new["top"] - old["top"]).max() > 0
    np.testing.assert_array_equal(new["top"], encoder.encode(EpisodeDataset(root)[0].frames["top"]))


def test_another_encoder_gets_its_own_directory(root: Path, encoder: ImageEncoder) -> None:
    EmbeddingCache(root, encoder).ensure()
    bigger = make_image_encoder("tiny", image_size=48, device="cpu")
    cache = EmbeddingCache(root, bigger)
    assert cache.directory != EmbeddingCache(root, encoder).directory
    cache.get(0)
    assert (cache.misses, cache.hits) == (1, 0)
    assert sorted(p.name for p in (root / "embeddings").iterdir()) == sorted([encoder.spec.key, bigger.spec.key])


def test_root_override(root: Path, encoder: ImageEncoder, tmp_path: Path) -> None:
    cache = EmbeddingCache(root, encoder, root=tmp_path / "elsewhere")
    cache.get(0)
    assert cache.path_for(0) == tmp_path / "elsewhere" / "embeddings" / encoder.spec.key / "ep0.npz"
    assert cache.path_for(0).exists() and not (root / "embeddings").exists()


def test_failed_write_leaves_no_file(root: Path, encoder: ImageEncoder, monkeypatch: pytest.MonkeyPatch) -> None:
    def crash(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    cache = EmbeddingCache(root, encoder)
    monkeypatch.setattr(ds_mod.os, "replace", crash)
    out = cache.get(0)  # the embeddings are still returned
    monkeypatch.undo()
    assert out["top"].shape == (LENGTHS[0], 64)
    assert not cache.path_for(0).exists() and not tmp_leftovers(root)
    again = EmbeddingCache(root, encoder)
    again.get(0)
    assert again.misses == 1 and cache.path_for(0).exists()


def test_ensure_then_get_repair_damaged_files(root: Path, encoder: ImageEncoder) -> None:
    """ensure() reads metadata and array headers (a truncated file fails there); a damaged array body is caught by
    the zip CRC at the latest when get() reads it. Either way the caller gets the right embeddings."""
    cache = EmbeddingCache(root, encoder)
    reference = [cache.get(i) for i in range(len(LENGTHS))]
    truncated, flipped = cache.path_for(0), cache.path_for(1)
    truncated.write_bytes(truncated.read_bytes()[:-50])
    data = bytearray(flipped.read_bytes())
    with np.load(flipped) as z:
        body = data.find(z["emb_left_wrist"].tobytes())
    data[body + 100] ^= 0xFF
    flipped.write_bytes(bytes(data))
    again = EmbeddingCache(root, encoder)
    again.ensure()
    assert again.misses >= 1 and not tmp_leftovers(root)
    for i in range(len(LENGTHS)):
        out = again.get(i)
        for cam in CAMERAS:
            np.testing.assert_array_equal(out[cam], reference[i][cam])
    assert again.misses == 2
    final = EmbeddingCache(root, encoder)
    final.ensure()
    assert (final.misses, final.hits) == (0, 2)
