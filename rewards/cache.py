"""On-disk cache of per-frame image embeddings, so each frame of each camera is encoded exactly once.

Layout, beside the dataset (or under ``root``)::

    <dataset root>/embeddings/<encoder.spec.key>/
        encoder.json            # the encoder spec and label, for humans; the code does not rely on it
        <episode_id>.npz        # np.savez (uncompressed): one array per camera + meta

Each ``.npz`` holds ``emb_<camera>`` ``(T, dim)`` float16 (``(K, dim)`` for an episode rendered at ``K`` steps only)
for every camera in :data:`~sarm2_env.constants.CAMERAS`, and ``meta``: UTF-8 JSON bytes ``{"format":
"sarm2-embeddings", "version": 1, "episode_id", "episode_sha256" (from the dataset index), "encoder" (spec dict),
"length" (T), "cameras"}``.

A file counts only if it reads back completely and its sha256, spec, cameras and shapes match; anything else (an
episode re-recorded under the same id, a truncated or corrupt file, another encoder) is re-encoded and rewritten
atomically (temp file, fsync, ``os.replace``), so a half-written file is never read as valid. Encoders round
their output through float16 (see :meth:`ImageEncoder.encode`), so cached and live embeddings are bit-identical.
Reading needs only numpy::

    with np.load(path) as z:
        top = z["emb_top"].astype(np.float32)  # (T, dim)
"""

from __future__ import annotations

import collections
import json
import logging
import os
import zipfile
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from rewards.encoders.base import ImageEncoder
from sarm2_env.atomic import atomic_write
from sarm2_env.constants import CAMERAS
from sarm2_env.dataset import EpisodeDataset
from sarm2_env.errors import DatasetError

__all__ = ["FORMAT", "VERSION", "EmbeddingCache"]

logger = logging.getLogger(__name__)

FORMAT = "sarm2-embeddings"
VERSION = 1
EMBEDDINGS_DIR = "embeddings"
_KEYS: dict[str, str] = {cam: f"emb_{cam}" for cam in CAMERAS}


class _Stale(Exception):
    """A cache file exists but does not hold valid embeddings for the current episode and encoder."""


class EmbeddingCache:
    """Per-frame image embeddings of an :class:`~sarm2_env.dataset.EpisodeDataset`, computed once and kept on disk.

    Args:
        dataset: the dataset, or its root directory.
        encoder: the image encoder; its ``spec.key`` names the cache directory.
        root: directory under which ``embeddings/`` lives (default: the dataset root), e.g. when the dataset is
            read-only.
        memory: how many recently used episodes to also keep in memory (0 disables).

    Attributes:
        hits: episode lookups served without encoding (from disk or memory).
        misses: episode lookups that had to encode.
        directory: ``<root>/embeddings/<encoder.spec.key>``.
    """

    def __init__(
        self,
        dataset: EpisodeDataset | str | os.PathLike[str],
        encoder: ImageEncoder,
        *,
        root: str | os.PathLike[str] | None = None,
        memory: int = 8,
    ) -> None:
        self.dataset = dataset if isinstance(dataset, EpisodeDataset) else EpisodeDataset(dataset)
        self.encoder = encoder
        self.directory = Path(root if root is not None else self.dataset.root) / EMBEDDINGS_DIR / encoder.spec.key
        self.memory = max(int(memory), 0)
        self.hits = 0
        self.misses = 0
        self._frames_encoded = 0
        self._spec = encoder.spec.to_dict()
        self._entries = self.dataset.entries  # the index is read once, at the dataset's construction
        self._recent: collections.OrderedDict[tuple[str, str], dict[str, np.ndarray]] = collections.OrderedDict()

    def __repr__(self) -> str:
        n = len(self._entries)
        return f"EmbeddingCache({str(self.directory)!r}, episodes={n}, hits={self.hits}, misses={self.misses})"

    @property
    def frames_encoded(self) -> int:
        """Frames this cache has sent through the encoder (T x cameras, summed over misses)."""
        return self._frames_encoded

    def path_for(self, episode: int | str) -> Path:
        """The cache file of ``episode`` (an index into the dataset or an episode id); it may not exist yet."""
        return self.directory / f"{self._entry(episode)['episode_id']}.npz"

    def get(self, episode: int | str) -> dict[str, np.ndarray]:
        """Embeddings of every camera of ``episode``: ``{camera: (T, dim) float32}`` (fresh arrays).

        The episode's frames are loaded from the dataset and encoded only on a miss.

        Raises:
            IndexError / KeyError: no such episode index / id.
            DatasetError: the episode file cannot be read (on a miss).
        """
        stored = self._lookup(self._entry(episode))
        assert stored is not None  # full lookups always return arrays
        return {cam: stored[cam].astype(np.float32) for cam in CAMERAS}

    def ensure(self, episodes: Iterable[int | str] | None = None, *, progress: bool = False) -> None:
        """Encode every episode (or those given, by index or id) that has no valid cache file yet.

        Args:
            episodes: indices or ids; ``None`` = the whole dataset.
            progress: show a tqdm progress bar.
        """
        from tqdm.auto import tqdm

        items = list(range(len(self.dataset))) if episodes is None else list(episodes)
        entries = [self._entry(e) for e in items]  # fail on a bad id before encoding anything
        bar = tqdm(entries, desc=f"embeddings {self.encoder.spec.key}", unit="episode", disable=not progress)
        for entry in bar:
            self._lookup(entry, full=False)

    # -- internals

    def _entry(self, episode: int | str) -> dict[str, Any]:
        if isinstance(episode, str):
            index = self.dataset.index_of(episode)
        elif isinstance(episode, (int, np.integer)) and not isinstance(episode, bool):
            index = int(episode)
            n = len(self._entries)
            if not -n <= index < n:
                raise IndexError(f"episode index {index} out of range for a dataset of {n} episodes")
            index %= n
        else:
            raise TypeError(f"`episode` must be an int index or a str episode id; got {type(episode).__name__}")
        return {**self._entries[index], "index": index}

    def _lookup(self, entry: dict[str, Any], full: bool = True) -> dict[str, np.ndarray] | None:
        """Embeddings of one episode (``None`` for a valid file when not ``full``), encoding them on a miss."""
        memo = (entry["episode_id"], entry["sha256"])
        if memo in self._recent:
            self._recent.move_to_end(memo)
            self.hits += 1
            return self._recent[memo]
        path = self.directory / f"{entry['episode_id']}.npz"
        try:
            stored = self._read(path, entry, full=full)
            self.hits += 1
        except _Stale as exc:
            logger.info("re-encoding %s: %s", path, exc)
            stored = self._encode(entry, path)
        except FileNotFoundError:
            stored = self._encode(entry, path)
        if full and self.memory:
            self._recent[memo] = stored
            while len(self._recent) > self.memory:
                self._recent.popitem(last=False)
        return stored

    def _read(self, path: Path, entry: dict[str, Any], full: bool = True) -> dict[str, np.ndarray] | None:
        """Load and check a cache file; raise FileNotFoundError if absent, :class:`_Stale` if unusable.

        With ``full=False`` only the metadata and the arrays' headers are read (what :meth:`ensure` needs; a damaged
        array body is still caught, by the zip CRC, when :meth:`get` reads it) and ``None`` is returned.
        """
        keys = [*_KEYS.values(), "meta"]
        try:
            with np.load(path, allow_pickle=False) as z:  # lazy: opening reads only the zip directory
                missing = [k for k in keys if k not in z.files]
                if missing:
                    raise _Stale(f"missing arrays {missing}")
                meta_raw = z["meta"]
                arrays = {key: z[key] for key in _KEYS.values()} if full else {}
                layouts = (
                    {key: (a.dtype, a.shape) for key, a in arrays.items()}
                    if full
                    else {key: _npy_layout(z.zip, f"{key}.npy") for key in _KEYS.values()}
                )
        except FileNotFoundError:
            raise
        except (zipfile.BadZipFile, zlib.error, ValueError, OSError, EOFError, KeyError) as exc:
            raise _Stale(f"unreadable ({type(exc).__name__}: {exc})") from exc
        try:
            meta = json.loads(meta_raw.tobytes().decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise _Stale(f"`meta` is not UTF-8 JSON ({exc})") from exc
        if not isinstance(meta, dict):
            raise _Stale(f"`meta` is a {type(meta).__name__}, not an object")
        for key, want in self._meta(entry).items():
            if meta.get(key) != want:
                raise _Stale(f"`{key}`: expected {want!r}; got {meta.get(key)!r}")
        shape = (entry.get("frames", entry["length"]), self.encoder.spec.dim)  # query-rate episodes: K frames
        for key, (dtype, got) in layouts.items():
            if dtype != np.float16 or got != shape:
                raise _Stale(f"`{key}`: expected float16 of shape {shape}; got {dtype} {got}")
        if not full:
            return None
        for key, arr in arrays.items():
            if not np.isfinite(arr).all():
                raise _Stale(f"`{key}`: holds NaN/inf")
        return {cam: arrays[key] for cam, key in _KEYS.items()}

    def _meta(self, entry: dict[str, Any]) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "episode_id": entry["episode_id"],
            "episode_sha256": entry["sha256"],
            "encoder": self._spec,
            "length": entry["length"],
            "cameras": list(CAMERAS),
        }

    def _encode(self, entry: dict[str, Any], path: Path) -> dict[str, np.ndarray]:
        episode = self.dataset.load(entry["index"])
        want = entry.get("frames", entry["length"])
        if episode.frame_count != want:  # the dataset checks this too; keep the cache's own invariant
            raise DatasetError(
                f"{path}: episode {entry['episode_id']!r} has {episode.frame_count} frames, index says {want}"
            )
        stored: dict[str, np.ndarray] = {}
        for cam in CAMERAS:  # one encode() call per camera: same chunking as a live call on the same frames
            stored[cam] = self.encoder.encode(episode.frames[cam]).astype(np.float16)  # exact: already fp16-rounded
        self.misses += 1
        self._frames_encoded += episode.frame_count * len(CAMERAS)
        arrays = {_KEYS[cam]: stored[cam] for cam in CAMERAS}
        arrays["meta"] = np.array(json.dumps(self._meta(entry)).encode("utf-8"))
        self._write(path, arrays)
        return stored

    def _write(self, path: Path, arrays: dict[str, np.ndarray]) -> None:
        spec_file = self.directory / "encoder.json"
        info = json.dumps({"spec": self._spec, "label": self.encoder.label}, indent=1).encode("utf-8")
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            if not spec_file.exists():
                atomic_write(spec_file, lambda f: f.write(info))
            atomic_write(path, lambda f: np.savez(f, **arrays))
        except OSError as exc:
            # The embeddings are still returned; only persisting them failed (e.g. a read-only dataset).
            logger.warning("could not write embedding cache %s (%s); pass root= a writable directory", path, exc)


def _npy_layout(archive: zipfile.ZipFile, name: str) -> tuple[np.dtype, tuple[int, ...]]:
    """dtype and shape of an ``.npy`` member, from its header alone."""
    with archive.open(name) as f:
        version = np.lib.format.read_magic(f)
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _, dtype = read(f)
    return dtype, shape
