"""LeRobot interop: export our episodes as a LeRobotDataset v3, import one, and write the SARM progress sidecar.

Nothing here imports ``lerobot``: the v3 layout is written and read with pyarrow, numpy and imageio-ffmpeg.

LeRobotDataset v3 layout (``codebase_version`` ``"v3.0"``), as written by :func:`export_lerobot`::

    <root>/
      meta/info.json                                   # fps, features (dtype/shape/names), totals, path templates
      meta/stats.json                                  # per feature: min, max, mean, std, count, q01..q99
      meta/tasks.parquet                               # task (the pandas index) -> task_index
      meta/episodes/chunk-000/file-000.parquet         # one row per episode: length, tasks, row and video ranges
      meta/sarm2.json                                  # ours: per-episode ids, seeds, skills, success, extra
      data/chunk-000/file-000.parquet                  # one row per frame, all episodes back to back
      videos/observation.images.<camera>/chunk-000/file-000.mp4   # one stream per camera, episodes back to back

Frame table columns: ``observation.state`` (14 float32), ``action`` (14 float32), ``timestamp`` (float32,
``frame_index / fps`` as LeRobot expects), ``frame_index``, ``episode_index``, ``index`` (global row),
``task_index`` (int64), plus ``next.success`` / ``next.done`` (bool) and our ``sarm2.primitive`` (int64 index into
:data:`~sarm2_env.constants.PRIMITIVES`), ``sarm2.progress`` (float32 physics progress) and ``sarm2.timestamp``
(float64, the recorded seconds). An episode's frames sit in its camera's mp4 from
``videos/<key>/from_timestamp`` to ``to_timestamp`` seconds. Files roll over to ``file-001`` ... when they grow
past ``data_files_size_in_mb`` / ``video_files_size_in_mb`` (chunks hold ``chunks_size`` files), as in LeRobot.

Videos are H.264 (libx264, yuv420p, crf 23, a keyframe every ``gop`` = 2 frames as LeRobot records) by default:
lossy, 27-34 dB PSNR on 64 px simulator renders, about the size of our lossless ``.npz`` files.
``lossless=True`` writes libx264rgb at crf 0 instead, which decodes to the exact pixels (about 8x larger).

:func:`import_lerobot` reads any v3 dataset (one recorded with LeRobot on a real YAM station included) into our
format: camera keys are mapped onto ``top`` / ``left_wrist`` / ``right_wrist`` (explicitly, or by name), the
state and action must have 14 values per frame, and labels the dataset lacks are filled in and recorded in
``Episode.extra`` (``progress_source``: time-linear; ``primitive_source``: ``dummy``; ``success_source``).

:func:`write_progress_sidecar` writes the ``sarm_progress.parquet`` that LeRobot's reward-aligned behaviour
cloning (RA-BC) reads: columns ``index``, ``episode_index``, ``frame_index`` (int64), ``progress_sparse`` and
optionally ``progress_dense`` (float32), sorted by ``index``.

Every write is atomic: the export and the import are built in a hidden ``.<name>.tmp-<pid>`` directory beside the
destination and renamed into place when complete; the sidecar goes through a temporary file and ``os.replace``.

Command line::

    python -m sarm2_env.lerobot_io export --data data/heldout_demos --out exports/yam_lerobot [--lossless]
    python -m sarm2_env.lerobot_io import --lerobot /path/to/yam_recording --out data/yam_real \\
        [--camera top=observation.images.cam_high ...]
    python -m sarm2_env.lerobot_io sidecar --lerobot exports/yam_lerobot --backend sarm2 [--checkpoint PATH]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import os
import shutil
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sarm2_env.atomic import atomic_path
from sarm2_env.constants import ARMS, CAMERAS, PRIMITIVE_INDEX, PRIMITIVES, STATE_DIM
from sarm2_env.errors import ConfigError, DatasetError, NonFiniteError

if TYPE_CHECKING:
    import pyarrow as pa

    from sarm2_env.dataset import Episode, EpisodeDataset

__all__ = [
    "CODEBASE_VERSION",
    "SIDECAR_FILE",
    "ExportConfig",
    "ImportConfig",
    "export_lerobot",
    "import_lerobot",
    "read_lerobot_episodes",
    "resolve_cameras",
    "write_progress_sidecar",
    "read_progress_sidecar",
    "predict_progress",
    "main",
]

log = logging.getLogger(__name__)

CODEBASE_VERSION = "v3.0"
SIDECAR_FILE = "sarm_progress.parquet"
INFO_PATH = "meta/info.json"
STATS_PATH = "meta/stats.json"
TASKS_PATH = "meta/tasks.parquet"
SARM2_META_PATH = "meta/sarm2.json"
CHUNK_FILE = "chunk-{chunk_index:03d}/file-{file_index:03d}"
DATA_PATH = "data/" + CHUNK_FILE + ".parquet"
VIDEO_PATH = "videos/{video_key}/" + CHUNK_FILE + ".mp4"
EPISODES_PATH = "meta/episodes/" + CHUNK_FILE + ".parquet"
IMAGE_PREFIX = "observation.images."
STATE_KEY = "observation.state"
ACTION_KEY = "action"
PRIMITIVE_KEY = "sarm2.primitive"
PROGRESS_KEY = "sarm2.progress"
TIMESTAMP_KEY = "sarm2.timestamp"
SUCCESS_KEY = "next.success"
DONE_KEY = "next.done"
QUANTILES = (0.01, 0.10, 0.50, 0.90, 0.99)
#: joint names of the 14-d state / action, per arm: 6 joints (rad) + gripper opening in [0, 1]
JOINT_NAMES: tuple[str, ...] = tuple(
    name for arm in ARMS for name in [*(f"{arm}_joint{j}.pos" for j in range(1, 7)), f"{arm}_gripper.pos"]
)
_MB = 1024 * 1024
_SARM2_META_FORMAT = "sarm2-lerobot-meta"

#: name fragments that identify each of our cameras in a LeRobot camera key (checked in order)
_CAMERA_HINTS: dict[str, tuple[tuple[str, ...], ...]] = {
    "left_wrist": (("left", "wrist"), ("wrist", "left"), ("left", "hand"), ("cam_left",)),
    "right_wrist": (("right", "wrist"), ("wrist", "right"), ("right", "hand"), ("cam_right",)),
    "top": (("top",), ("high",), ("overhead",), ("scene",), ("front",), ("main",)),
}


# --------------------------------------------------------------------------------------------------- configs


@dataclasses.dataclass(frozen=True)
class ExportConfig:
    """How :func:`export_lerobot` writes a LeRobotDataset v3.

    Args:
        lossless: libx264rgb at crf 0 (exact pixels, ~8x larger) instead of libx264 yuv420p.
        crf: libx264 constant rate factor of the lossy videos (0-51; 23 is ffmpeg's default quality).
        gop: keyframe interval in frames (LeRobot records with 2 so random frame access stays cheap).
        preset: libx264 speed preset.
        robot_type: ``info.json``'s ``robot_type``.
        chunks_size: files per ``chunk-XXX`` folder.
        data_files_size_in_mb: a data parquet file rolls over past this size.
        video_files_size_in_mb: a camera's mp4 rolls over past this size.
        overwrite: replace an existing LeRobot dataset at the destination.
    """

    lossless: bool = False
    crf: int = 23
    gop: int = 2
    preset: str = "medium"
    robot_type: str = "yam_bimanual"
    chunks_size: int = 1000
    data_files_size_in_mb: int = 100
    video_files_size_in_mb: int = 500
    overwrite: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.crf, int) or not 0 <= self.crf <= 51:
            raise ConfigError(f"`crf` must be an int in [0, 51]; got {self.crf!r}")
        for name in ("gop", "chunks_size", "data_files_size_in_mb", "video_files_size_in_mb"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"`{name}` must be a positive int; got {value!r}")
        if not isinstance(self.preset, str) or not self.preset:
            raise ConfigError(f"`preset` must be a libx264 preset name; got {self.preset!r}")


@dataclasses.dataclass(frozen=True)
class ImportConfig:
    """How a LeRobotDataset v3 is read into our episodes.

    Args:
        cameras: our camera name -> the dataset's camera key (``observation.images.cam_high`` or just
            ``cam_high``). Cameras not given are found by name (``top``/``high``/``overhead``;
            ``left_wrist``/``wrist_left``/``cam_left_wrist``; the same for right).
        state_key: the 14-d joint state feature.
        action_key: the 14-d action feature.
        episodes: the episode indices to read (default: all).
        task_id: our ``task_id`` for every episode (default: the one recorded by our exporter, else the task text).
        assume_success: ``success`` of episodes with neither our metadata nor a ``next.success`` column.
        overwrite: replace an existing dataset of ours at the destination (:func:`import_lerobot`).
    """

    cameras: Mapping[str, str] = dataclasses.field(default_factory=dict)
    state_key: str = STATE_KEY
    action_key: str = ACTION_KEY
    episodes: tuple[int, ...] | None = None
    task_id: str | None = None
    assume_success: bool = True
    overwrite: bool = False

    def __post_init__(self) -> None:
        unknown = sorted(set(self.cameras) - set(CAMERAS))
        if unknown:
            raise ConfigError(f"`cameras` keys must be among {list(CAMERAS)}; got {unknown}")
        if any(not isinstance(v, str) or not v for v in self.cameras.values()):
            raise ConfigError(f"`cameras` values must be non-empty camera keys; got {dict(self.cameras)!r}")
        if self.episodes is not None:
            episodes = tuple(self.episodes)
            if any(not isinstance(e, (int, np.integer)) or e < 0 for e in episodes):
                raise ConfigError(f"`episodes` must be non-negative episode indices; got {episodes!r}")
            object.__setattr__(self, "episodes", tuple(int(e) for e in episodes))
        if self.task_id is not None and (not isinstance(self.task_id, str) or not self.task_id):
            raise ConfigError(f"`task_id` must be a non-empty str or None; got {self.task_id!r}")


# --------------------------------------------------------------------------------------------------- small helpers


def _pa():
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise DatasetError("LeRobot interop needs pyarrow: `pip install 'pyarrow>=15'`") from exc
    return pa, pq


def imageio_ffmpeg_module(needed_by: str = "LeRobot videos need") -> Any:
    """The ``imageio_ffmpeg`` module (MP4 reading and writing); without it an ``ImportError`` that starts with
    ``needed_by`` (``"LeRobot videos need"``) and says how to install it."""
    try:
        import imageio_ffmpeg
    except ImportError as exc:  # pragma: no cover - installed with the dev extras
        raise ImportError(f"{needed_by} imageio-ffmpeg: `pip install imageio-ffmpeg`") from exc
    return imageio_ffmpeg


def _fsync_tree(root: Path) -> None:
    for path in sorted(root.rglob("*")):
        if path.is_file():
            with open(path, "rb") as f:
                os.fsync(f.fileno())


@contextlib.contextmanager
def _staged_directory(final: Path, is_ours: Callable[[Path], bool], what: str, overwrite: bool) -> Iterator[Path]:
    """Yield a hidden temporary directory beside ``final``; on success rename it to ``final`` (atomically).

    An existing ``final`` is replaced only when ``overwrite`` and it is empty or ``is_ours(final)``.
    """
    if final.exists():
        if not final.is_dir():
            raise DatasetError(f"{final}: expected a directory for the {what}; got a file")
        empty = not any(final.iterdir())
        if not empty and not overwrite:
            raise DatasetError(f"{final} already exists and is not empty: pass overwrite=True to replace it")
        if not empty and not is_ours(final):
            raise DatasetError(f"{final} holds something other than a {what}: refusing to replace it")
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        yield tmp
        _fsync_tree(tmp)
        if final.exists():
            old = final.with_name(f".{final.name}.old-{os.getpid()}")
            os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=4, allow_nan=False) + "\n", encoding="utf-8")


def _stats(values: np.ndarray) -> dict[str, np.ndarray]:
    """LeRobot's per-feature statistics over axis 0 of ``values (N, ...)``."""
    values = values.astype(np.float64)
    out = {
        "min": values.min(0),
        "max": values.max(0),
        "mean": values.mean(0),
        "std": values.std(0),
        "count": np.array([len(values)]),
    }
    for q, v in zip(QUANTILES, np.quantile(values, QUANTILES, axis=0)):
        out[f"q{int(round(q * 100)):02d}"] = v
    return out


def _image_stats(frames: np.ndarray) -> dict[str, np.ndarray]:
    """Per-channel statistics of ``frames (N, H, W, 3)`` uint8, scaled to [0, 1], each of shape (3, 1, 1)."""
    pixels = frames.reshape(-1, 3).astype(np.float64) / 255.0
    stats = _stats(pixels)
    stats = {k: v if k == "count" else v.reshape(3, 1, 1) for k, v in stats.items()}
    stats["count"] = np.array([len(frames)])
    return stats


def _merge_stats(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Combine per-episode statistics (count-weighted mean and variance; quantiles count-weighted, approximate)."""
    counts = np.array([float(p["count"][0]) for p in parts])
    w = counts / counts.sum()
    shape = (-1,) + (1,) * np.ndim(parts[0]["mean"])
    means = np.stack([p["mean"] for p in parts])
    mean = (w.reshape(shape) * means).sum(0)
    var = (w.reshape(shape) * (np.stack([p["std"] for p in parts]) ** 2 + (means - mean) ** 2)).sum(0)
    out = {
        "min": np.min(np.stack([p["min"] for p in parts]), 0),
        "max": np.max(np.stack([p["max"] for p in parts]), 0),
        "mean": mean,
        "std": np.sqrt(np.maximum(var, 0.0)),
        "count": np.array([int(counts.sum())]),
    }
    for key in parts[0]:
        if key.startswith("q"):
            out[key] = (w.reshape(shape) * np.stack([p[key] for p in parts])).sum(0)
    return out


def _jsonable(stats: Mapping[str, Mapping[str, np.ndarray]]) -> dict[str, dict[str, Any]]:
    return {key: {k: np.asarray(v).tolist() for k, v in s.items()} for key, s in stats.items()}


class _Roller:
    """LeRobot's chunk/file numbering: file-000, file-001, ...; a new chunk after ``chunks_size`` files."""

    def __init__(self, chunks_size: int) -> None:
        self.chunks_size = chunks_size
        self.chunk = 0
        self.file = 0

    def advance(self) -> None:
        if self.file == self.chunks_size - 1:
            self.chunk, self.file = self.chunk + 1, 0
        else:
            self.file += 1


# --------------------------------------------------------------------------------------------------- export


class _VideoSink:
    """One camera's mp4 files: frames stream into ffmpeg; a new file when the current one grows too large."""

    def __init__(self, root: Path, key: str, size: tuple[int, int], fps: float, config: ExportConfig) -> None:
        self.root, self.key, self.size, self.fps, self.config = root, key, size, fps, config
        self.roller = _Roller(config.chunks_size)
        self.writer = None
        self.path: Path | None = None
        self.frames_in_file = 0

    def _open(self) -> None:
        c = self.config
        self.path = self.root / VIDEO_PATH.format(
            video_key=self.key, chunk_index=self.roller.chunk, file_index=self.roller.file
        )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if c.lossless:
            codec, pix_fmt, params = "libx264rgb", "rgb24", ["-crf", "0", "-qp", "0"]
        else:
            codec, pix_fmt, params = "libx264", "yuv420p", ["-crf", str(c.crf)]
        self.writer = imageio_ffmpeg_module().write_frames(
            str(self.path),
            self.size,
            fps=self.fps,
            codec=codec,
            pix_fmt_in="rgb24",
            pix_fmt_out=pix_fmt,
            quality=None,
            macro_block_size=1,
            ffmpeg_log_level="error",
            output_params=[*params, "-g", str(c.gop), "-preset", c.preset],
        )
        self.writer.send(None)
        self.frames_in_file = 0

    def _size(self) -> int:
        """Bytes ffmpeg has written so far (it creates the file only once it has output to write)."""
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return 0

    def add(self, frames: np.ndarray) -> dict[str, Any]:
        """Append one episode's frames; return its ``videos/<key>/...`` episode-metadata fields."""
        if self.writer is not None and self._size() >= self.config.video_files_size_in_mb * _MB:
            self.close()
            self.roller.advance()
        if self.writer is None:
            self._open()
        start = self.frames_in_file
        for frame in frames:
            self.writer.send(np.ascontiguousarray(frame))
        self.frames_in_file += len(frames)
        prefix = f"videos/{self.key}/"
        return {
            prefix + "chunk_index": self.roller.chunk,
            prefix + "file_index": self.roller.file,
            prefix + "from_timestamp": start / self.fps,
            prefix + "to_timestamp": self.frames_in_file / self.fps,
        }

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def _frame_table(episode: Episode, episode_index: int, first_index: int, task_index: int) -> pa.Table:
    pa, _ = _pa()
    n = episode.length
    frame_index = np.arange(n, dtype=np.int64)
    done = np.zeros(n, dtype=bool)
    done[-1] = True

    def vec(x: np.ndarray) -> pa.Array:
        return pa.FixedSizeListArray.from_arrays(pa.array(np.ascontiguousarray(x, np.float32).reshape(-1)), STATE_DIM)

    columns = {
        STATE_KEY: vec(episode.state),
        ACTION_KEY: vec(episode.action),
        "timestamp": pa.array((frame_index / episode.fps).astype(np.float32)),
        "frame_index": pa.array(frame_index),
        "episode_index": pa.array(np.full(n, episode_index, dtype=np.int64)),
        "index": pa.array(first_index + frame_index),
        "task_index": pa.array(np.full(n, task_index, dtype=np.int64)),
        SUCCESS_KEY: pa.array(np.asarray(episode.success_flags, dtype=bool)),
        DONE_KEY: pa.array(done),
        PRIMITIVE_KEY: pa.array(np.asarray(episode.primitive, dtype=np.int64)),
        PROGRESS_KEY: pa.array(np.asarray(episode.progress, dtype=np.float32)),
        TIMESTAMP_KEY: pa.array(np.asarray(episode.timestamp, dtype=np.float64)),
    }
    return pa.table(columns)


def _features(size: tuple[int, int], fps: float, config: ExportConfig) -> dict[str, dict[str, Any]]:
    h, w = size
    scalar = {"shape": [1], "names": None}
    features: dict[str, dict[str, Any]] = {
        STATE_KEY: {"dtype": "float32", "shape": [STATE_DIM], "names": list(JOINT_NAMES)},
        ACTION_KEY: {"dtype": "float32", "shape": [STATE_DIM], "names": list(JOINT_NAMES)},
    }
    for cam in CAMERAS:
        features[IMAGE_PREFIX + cam] = {
            "dtype": "video",
            "shape": [h, w, 3],
            "names": ["height", "width", "channels"],
            "info": {
                "video.height": h,
                "video.width": w,
                "video.codec": "h264",
                "video.pix_fmt": "rgb24" if config.lossless else "yuv420p",
                "video.is_depth_map": False,
                "video.fps": fps,
                "video.channels": 3,
                "has_audio": False,
            },
        }
    features.update(
        {
            "timestamp": {"dtype": "float32", **scalar},
            "frame_index": {"dtype": "int64", **scalar},
            "episode_index": {"dtype": "int64", **scalar},
            "index": {"dtype": "int64", **scalar},
            "task_index": {"dtype": "int64", **scalar},
            SUCCESS_KEY: {"dtype": "bool", **scalar},
            DONE_KEY: {"dtype": "bool", **scalar},
            PRIMITIVE_KEY: {"dtype": "int64", **scalar},
            PROGRESS_KEY: {"dtype": "float32", **scalar},
            TIMESTAMP_KEY: {"dtype": "float64", **scalar},
        }
    )
    return features


def _tasks_table(tasks: Sequence[str]) -> pa.Table:
    """``meta/tasks.parquet`` as pandas writes it: ``task_index`` column, ``task`` strings as the index."""
    pa, _ = _pa()
    pandas_meta = {
        "index_columns": ["task"],
        "column_indexes": [
            {
                "name": None,
                "field_name": None,
                "pandas_type": "unicode",
                "numpy_type": "object",
                "metadata": {"encoding": "UTF-8"},
            }
        ],
        "columns": [
            {
                "name": "task_index",
                "field_name": "task_index",
                "pandas_type": "int64",
                "numpy_type": "int64",
                "metadata": None,
            },
            {"name": "task", "field_name": "task", "pandas_type": "unicode", "numpy_type": "object", "metadata": None},
        ],
        "creator": {"library": "pyarrow", "version": pa.__version__},
        "pandas_version": "2.2.0",
    }
    table = pa.table(
        {"task_index": pa.array(np.arange(len(tasks), dtype=np.int64)), "task": pa.array(list(tasks), pa.string())}
    )
    return table.replace_schema_metadata({b"pandas": json.dumps(pandas_meta).encode("utf-8")})


def _episode_source(src: str | os.PathLike[str] | EpisodeDataset | Iterable[Episode]) -> Iterator[Episode]:
    from sarm2_env.dataset import EpisodeDataset

    if isinstance(src, (str, os.PathLike)):
        src = EpisodeDataset(src)
    if isinstance(src, EpisodeDataset):
        return (src.load(i, frames=True) for i in range(len(src)))
    return iter(src)


def export_lerobot(
    src: str | os.PathLike[str] | EpisodeDataset | Iterable[Episode],
    out: str | os.PathLike[str],
    config: ExportConfig | None = None,
    *,
    progress: bool = False,
) -> dict[str, Any]:
    """Write episodes as a LeRobotDataset v3 at ``out`` (see the module docstring for the layout).

    Args:
        src: a dataset root of ours, an :class:`~sarm2_env.dataset.EpisodeDataset`, or episodes with frames.
        out: the LeRobot dataset root to create (it appears only when complete).
        config: video and file-size settings.
        progress: show a progress bar.

    Returns:
        ``{"root", "episodes", "frames", "fps", "tasks"}``.

    Raises:
        DatasetError: no episodes, an episode without frames, episodes that disagree on fps or image size, an
            odd image size for lossy yuv420p video, or ``out`` exists and may not be replaced.
    """
    from tqdm import tqdm

    from sarm2_env.dataset import Episode

    config = config or ExportConfig()
    pa, pq = _pa()
    final = Path(out)
    with _staged_directory(final, lambda p: (p / INFO_PATH).is_file(), "LeRobot dataset", config.overwrite) as root:
        fps: float | None = None
        size: tuple[int, int] | None = None
        tasks: dict[str, int] = {}
        sinks: dict[str, _VideoSink] = {}
        data_roller = _Roller(config.chunks_size)
        data_parts: list[pa.Table] = []
        data_bytes = 0
        episode_rows: list[dict[str, Any]] = []
        episode_stats: list[dict[str, dict[str, np.ndarray]]] = []
        sarm2_episodes: list[dict[str, Any]] = []
        total = 0

        def flush_data() -> None:
            nonlocal data_parts, data_bytes
            if data_parts:
                path = root / DATA_PATH.format(chunk_index=data_roller.chunk, file_index=data_roller.file)
                path.parent.mkdir(parents=True, exist_ok=True)
                pq.write_table(pa.concat_tables(data_parts), path, compression="snappy")
                data_parts, data_bytes = [], 0
                data_roller.advance()

        try:
            for k, episode in enumerate(tqdm(_episode_source(src), desc="export", disable=not progress, unit="ep")):
                if not isinstance(episode, Episode):
                    raise DatasetError(
                        f"episode {k}: expected a sarm2_env.dataset.Episode; got {type(episode).__name__}"
                    )
                try:
                    episode.validate(require_frames=True)
                except DatasetError as exc:
                    raise DatasetError(f"episode {k} ({episode.episode_id!r}): {exc}") from exc
                if episode.frame_index is not None:  # a LeRobot video has one frame per step; held frames would lie
                    raise DatasetError(
                        f"episode {k} ({episode.episode_id!r}): `frame_index`: expected a frame at every step; got "
                        f"frames at {episode.frame_count} of {episode.length} steps (an evaluation episode recorded "
                        "with render_every > 1); export episodes recorded with render_every=1"
                    )
                ep_size = episode.image_size
                if fps is None:
                    fps, size = float(episode.fps), ep_size
                    if not config.lossless and (size[0] % 2 or size[1] % 2):
                        raise DatasetError(
                            f"episode {k}: H.264 yuv420p video needs an even image size; got {size} "
                            "(export with lossless=True, which stores RGB)"
                        )
                    sinks = {
                        cam: _VideoSink(root, IMAGE_PREFIX + cam, (size[1], size[0]), fps, config) for cam in CAMERAS
                    }
                if float(episode.fps) != fps:
                    raise DatasetError(f"episode {k}: `fps`: expected {fps} like the first episode; got {episode.fps}")
                if ep_size != size:
                    raise DatasetError(
                        f"episode {k}: `frames`: expected images of {size} like the first; got {ep_size}"
                    )
                task = episode.instruction or episode.task_id
                task_index = tasks.setdefault(task, len(tasks))
                table = _frame_table(episode, k, total, task_index)
                if data_parts and data_bytes + table.nbytes > config.data_files_size_in_mb * _MB:
                    flush_data()
                row: dict[str, Any] = {
                    "episode_index": k,
                    "tasks": [task],
                    "length": episode.length,
                    "data/chunk_index": data_roller.chunk,
                    "data/file_index": data_roller.file,
                    "dataset_from_index": total,
                    "dataset_to_index": total + episode.length,
                }
                data_parts.append(table)
                data_bytes += table.nbytes
                stats = {key: _stats(_column(table, key)) for key in table.column_names}
                # image statistics on ~100 frames per episode, downsampled to ~150 px, as LeRobot does
                step, ds = max(1, episode.length // 100), max(1, max(size) // 150)
                for cam in CAMERAS:
                    frames = episode.frames[cam]
                    row.update(sinks[cam].add(frames))
                    stats[IMAGE_PREFIX + cam] = _image_stats(frames[::step, ::ds, ::ds])
                row["meta/episodes/chunk_index"] = 0
                row["meta/episodes/file_index"] = 0
                for key, s in stats.items():
                    for name, value in s.items():
                        row[f"stats/{key}/{name}"] = np.asarray(value).tolist()
                episode_rows.append(row)
                episode_stats.append(stats)
                sarm2_episodes.append(
                    {
                        "episode_index": k,
                        "episode_id": episode.episode_id,
                        "task_id": episode.task_id,
                        "instruction": episode.instruction,
                        "seed": int(episode.seed),
                        "skill": float(episode.skill),
                        "success": bool(episode.success),
                        "fps": float(episode.fps),
                        "extra": episode.extra,
                    }
                )
                total += episode.length
            flush_data()
        finally:
            for sink in sinks.values():
                sink.close()
        if not episode_rows:
            raise DatasetError(f"export to {final}: expected at least one episode; got none")
        path = root / EPISODES_PATH.format(chunk_index=0, file_index=0)
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pylist(episode_rows), path, compression="snappy")
        pq.write_table(_tasks_table(list(tasks)), root / TASKS_PATH)
        merged = {key: _merge_stats([s[key] for s in episode_stats]) for key in episode_stats[0]}
        _write_json(root / STATS_PATH, _jsonable(merged))
        _write_json(
            root / SARM2_META_PATH,
            {
                "format": _SARM2_META_FORMAT,
                "version": 1,
                "primitives": list(PRIMITIVES),
                "cameras": {cam: IMAGE_PREFIX + cam for cam in CAMERAS},
                "episodes": sarm2_episodes,
            },
        )
        fps_value: int | float = int(fps) if float(fps).is_integer() else fps
        info = {
            "codebase_version": CODEBASE_VERSION,
            "robot_type": config.robot_type,
            "total_episodes": len(episode_rows),
            "total_frames": total,
            "total_tasks": len(tasks),
            "chunks_size": config.chunks_size,
            "data_files_size_in_mb": config.data_files_size_in_mb,
            "video_files_size_in_mb": config.video_files_size_in_mb,
            "fps": fps_value,
            "splits": {"train": f"0:{len(episode_rows)}"},
            "data_path": DATA_PATH,
            "video_path": VIDEO_PATH,
            "features": _features(size, fps_value, config),
        }
        _write_json(root / INFO_PATH, info)  # last: a dataset without info.json is not a dataset
    log.info("exported %d episodes (%d frames) to %s", len(episode_rows), total, final)
    return {"root": final, "episodes": len(episode_rows), "frames": total, "fps": fps_value, "tasks": list(tasks)}


# --------------------------------------------------------------------------------------------------- import


def _load_info(root: Path) -> dict[str, Any]:
    path = root / INFO_PATH
    if not path.is_file():
        raise DatasetError(f"{root}: expected a LeRobotDataset v3 ({path} is missing)")
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DatasetError(f"{path}: could not read the dataset info ({exc})") from exc
    version = str(info.get("codebase_version", ""))
    if not version.startswith("v3."):
        raise DatasetError(
            f"{path}: `codebase_version`: expected a v3.x LeRobotDataset; got {version!r} "
            "(convert older datasets with LeRobot's v2.1 -> v3.0 converter first)"
        )
    for key in ("fps", "features", "data_path"):
        if key not in info:
            raise DatasetError(f"{path}: expected the key {key!r}; it is missing")
    return info


def _read_parquets(root: Path, folder: str) -> pa.Table:
    pa, pq = _pa()
    paths = sorted((root / folder).glob("chunk-*/file-*.parquet"))
    if not paths:
        raise DatasetError(f"{root / folder}: expected chunk-XXX/file-XXX.parquet files; found none")
    tables = []
    for path in paths:
        try:
            tables.append(pq.read_table(path))
        except (OSError, pa.ArrowException) as exc:
            raise DatasetError(f"{path}: could not read the parquet file ({exc})") from exc
    return pa.concat_tables(tables, promote_options="default")


def _read_tasks(root: Path) -> list[str]:
    pa, pq = _pa()
    path = root / TASKS_PATH
    if not path.is_file():
        return []
    table = pq.read_table(path)
    names = table.column_names
    text = "task" if "task" in names else "__index_level_0__" if "__index_level_0__" in names else None
    if text is None or "task_index" not in names:
        raise DatasetError(f"{path}: expected columns `task` (or the pandas index) and `task_index`; got {names}")
    tasks: dict[int, str] = {}
    for index, task in zip(table.column("task_index").to_pylist(), table.column(text).to_pylist()):
        tasks[int(index)] = str(task)
    return [tasks.get(i, "") for i in range(max(tasks) + 1)] if tasks else []


def _camera_keys(info: Mapping[str, Any]) -> list[str]:
    return [k for k, f in info["features"].items() if isinstance(f, Mapping) and f.get("dtype") in ("video", "image")]


def resolve_cameras(available: Sequence[str], mapping: Mapping[str, str] | None = None) -> dict[str, str]:
    """Our camera -> the dataset's camera key: the explicit ``mapping`` first, the rest matched by name.

    Raises:
        DatasetError: a mapped key is not in the dataset, or a camera cannot be matched unambiguously; the
            message lists the available keys and how to map them.
    """
    mapping = dict(mapping or {})
    hint = "map them explicitly, e.g. --camera top=observation.images.cam_high (or ImportConfig(cameras=...))"
    resolved: dict[str, str] = {}
    for cam, key in mapping.items():
        full = key if key in available else IMAGE_PREFIX + key
        if full not in available:
            raise DatasetError(f"camera {cam!r}: the key {key!r} is not in the dataset; available: {list(available)}")
        resolved[cam] = full
    free = [k for k in available if k not in resolved.values()]
    for cam in CAMERAS:
        if cam in resolved:
            continue
        for key in free:  # an exact name wins
            if key.removeprefix(IMAGE_PREFIX).lower() in (cam, "_".join(reversed(cam.split("_")))):
                resolved[cam] = key
                break
        else:
            for fragments in _CAMERA_HINTS[cam]:
                matches = [k for k in free if all(f in k.removeprefix(IMAGE_PREFIX).lower() for f in fragments)]
                matches = [k for k in matches if k not in resolved.values()]
                if len(matches) == 1:
                    resolved[cam] = matches[0]
                    break
                if len(matches) > 1:
                    raise DatasetError(f"camera {cam!r}: several keys match {fragments}: {matches}; {hint}")
        if cam not in resolved:
            raise DatasetError(f"camera {cam!r}: no camera key matches it among {list(available)}; {hint}")
        free = [k for k in free if k != resolved[cam]]
    return resolved


class _VideoReader:
    """Sequential frame access to one mp4 (reopened only when asked for frames before the current position)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.gen = None
        self.pos = 0

    def _open(self) -> None:
        self.close()
        if not self.path.is_file():
            raise DatasetError(f"{self.path}: the video file is missing")
        self.gen = imageio_ffmpeg_module().read_frames(
            str(self.path), pix_fmt="rgb24", output_params=["-fps_mode", "passthrough"]
        )
        meta = next(self.gen)
        w, h = meta["size"]
        self.shape = (int(h), int(w), 3)
        self.pos = 0

    def read(self, start: int, count: int) -> np.ndarray:
        if self.gen is None or start < self.pos:
            self._open()
        out = np.empty((count, *self.shape), dtype=np.uint8)
        try:
            while self.pos < start:
                next(self.gen)
                self.pos += 1
            for i in range(count):
                out[i] = np.frombuffer(next(self.gen), dtype=np.uint8).reshape(self.shape)
                self.pos += 1
        except StopIteration:
            raise DatasetError(
                f"{self.path}: expected frames {start}..{start + count - 1}; the video ends at frame {self.pos}"
            ) from None
        return out

    def close(self) -> None:
        if self.gen is not None:
            self.gen.close()
            self.gen = None


def _vector(table: pa.Table, key: str, length: int, where: str) -> np.ndarray:
    """A list-valued column as a ``(length, 14)`` float32 array; a wrong size names the field."""
    pa, _ = _pa()
    column = table.column(key).combine_chunks()
    if not (
        pa.types.is_list(column.type) or pa.types.is_fixed_size_list(column.type) or pa.types.is_large_list(column.type)
    ):
        raise DatasetError(f"{where}: `{key}`: expected a vector per frame; got a column of {column.type}")
    import pyarrow.compute as pc

    sizes = set(pc.list_value_length(column).to_pylist())
    if sizes != {STATE_DIM}:
        raise DatasetError(
            f"{where}: `{key}`: expected {STATE_DIM} values per frame (2 arms x (6 joint angles + gripper)); "
            f"got {sorted(sizes)}. Select or reorder the joints into this layout before importing"
        )
    values = column.flatten().to_numpy(zero_copy_only=False)
    return np.ascontiguousarray(values.reshape(length, STATE_DIM), dtype=np.float32)


def _column(table: pa.Table, key: str) -> np.ndarray:
    """A scalar or fixed-size-list column as numpy, ``(N,)`` or ``(N, D)``."""
    pa, _ = _pa()
    column = table.column(key).combine_chunks()
    if pa.types.is_fixed_size_list(column.type):
        return column.flatten().to_numpy(zero_copy_only=False).reshape(len(column), column.type.list_size)
    return column.to_numpy(zero_copy_only=False)


def _decode_image(cell: Any, where: str) -> np.ndarray:
    import io

    from PIL import Image

    data = cell.get("bytes") if isinstance(cell, Mapping) else cell
    if not data:
        raise DatasetError(f"{where}: expected an embedded image; got {type(cell).__name__}")
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def read_lerobot_episodes(root: str | os.PathLike[str], config: ImportConfig | None = None) -> Iterator[Episode]:
    """Yield the episodes of a LeRobotDataset v3 as our :class:`~sarm2_env.dataset.Episode` (frames decoded).

    Labels the dataset does not carry are filled in and named in ``Episode.extra``: ``progress_source``
    (``"sarm2.progress"`` or ``"time_linear"``), ``primitive_source`` (``"sarm2.primitive"`` or ``"dummy"``) and
    ``success_source`` (``"sarm2"``, ``"next.success"`` or ``"assumed"``).

    Raises:
        DatasetError: not a v3 dataset, a missing file, the state/action not 14-d (naming the field), cameras
            that cannot be mapped, or cameras of different image sizes.
    """
    for _, episode in _iter_episodes(root, config):
        yield episode


def _iter_episodes(root: str | os.PathLike[str], config: ImportConfig | None) -> Iterator[tuple[int, Episode]]:
    from sarm2_env.dataset import Episode

    config = config or ImportConfig()
    root = Path(root)
    info = _load_info(root)
    fps = float(info["fps"])
    features = info["features"]
    for key in (config.state_key, config.action_key):
        if key not in features:
            raise DatasetError(f"{root / INFO_PATH}: `{key}`: expected this feature; features are {sorted(features)}")
        shape = list(features[key].get("shape", []))
        if shape != [STATE_DIM]:
            raise DatasetError(
                f"{root / INFO_PATH}: `{key}`: expected shape [{STATE_DIM}] (2 arms x (6 joint angles + gripper)); "
                f"got {shape}"
            )
    cameras = resolve_cameras(_camera_keys(info), config.cameras)
    episodes = _read_parquets(root, "meta/episodes").to_pylist()
    episodes.sort(key=lambda r: int(r["episode_index"]))
    tasks = _read_tasks(root)
    sarm2_meta: dict[int, dict[str, Any]] = {}
    meta_path = root / SARM2_META_PATH
    if meta_path.is_file():
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise DatasetError(f"{meta_path}: could not read our episode metadata ({exc})") from exc
        if isinstance(meta, dict) and meta.get("format") == _SARM2_META_FORMAT:
            if list(meta.get("primitives", [])) != list(PRIMITIVES):
                raise DatasetError(f"{meta_path}: `primitives` differs from this toolkit's PRIMITIVES")
            sarm2_meta = {int(e["episode_index"]): e for e in meta.get("episodes", [])}
    wanted = None if config.episodes is None else set(config.episodes)
    if wanted is not None:
        missing = sorted(wanted - {int(r["episode_index"]) for r in episodes})
        if missing:
            raise DatasetError(f"{root}: episodes {missing} are not in the dataset ({len(episodes)} episodes)")
    _, pq = _pa()
    import pyarrow.compute as pc

    data_cache: dict[str, pa.Table] = {}
    readers: dict[str, _VideoReader] = {}
    try:
        for row in episodes:
            ep = int(row["episode_index"])
            if wanted is not None and ep not in wanted:
                continue
            where = f"{root} episode {ep}"
            data_file = info["data_path"].format(
                chunk_index=int(row["data/chunk_index"]), file_index=int(row["data/file_index"])
            )
            if data_file not in data_cache:
                path = root / data_file
                if not path.is_file():
                    raise DatasetError(f"{where}: the data file {path} is missing")
                data_cache.clear()  # keep one data file in memory
                data_cache[data_file] = pq.read_table(path)
            table = data_cache[data_file]
            table = table.filter(pc.equal(table.column("episode_index"), ep))
            table = table.take(pc.sort_indices(table.column("frame_index")))
            length = table.num_rows
            if length == 0 or length != int(row["length"]):
                raise DatasetError(f"{where}: expected {row['length']} frames in {data_file}; found {length}")
            names = set(table.column_names)
            frames: dict[str, np.ndarray] = {}
            for cam, key in cameras.items():
                if features[key]["dtype"] == "image":
                    frames[cam] = np.stack([_decode_image(c, f"{where} {key}") for c in table.column(key).to_pylist()])
                    continue
                video = info.get("video_path") or VIDEO_PATH
                path = root / video.format(
                    video_key=key,
                    chunk_index=int(row[f"videos/{key}/chunk_index"]),
                    file_index=int(row[f"videos/{key}/file_index"]),
                )
                if str(path) not in readers:
                    readers[str(path)] = _VideoReader(path)
                start = int(round(float(row[f"videos/{key}/from_timestamp"]) * fps))
                frames[cam] = readers[str(path)].read(start, length)
            sizes = {cam: f.shape[1:3] for cam, f in frames.items()}
            if len(set(sizes.values())) != 1:
                raise DatasetError(
                    f"{where}: our format needs one image size for all cameras; got {sizes}. Resize the videos first"
                )
            mine = sarm2_meta.get(ep, {})
            task_index = int(table.column("task_index")[0].as_py()) if "task_index" in names else 0
            task_text = tasks[task_index] if task_index < len(tasks) else (row.get("tasks") or [""])[0]
            # our own exports carry their episode's extra; others get their provenance
            extra: dict[str, Any] = (
                dict(mine.get("extra", {})) if mine else {"source": "lerobot", "lerobot_episode_index": ep}
            )
            if PROGRESS_KEY in names:
                progress = _column(table, PROGRESS_KEY).astype(np.float32)
            else:
                progress = (np.arange(length) / max(length - 1, 1)).astype(np.float32) if length > 1 else np.ones(1)
                extra["progress_source"] = "time_linear"
            if PRIMITIVE_KEY in names:
                primitive = _column(table, PRIMITIVE_KEY).astype(np.int16)
            else:
                primitive = np.full(length, PRIMITIVE_INDEX["dummy"], dtype=np.int16)
                extra["primitive_source"] = "dummy"
            if SUCCESS_KEY in names:
                flags = _column(table, SUCCESS_KEY).astype(bool)
            else:
                flags = None
            if mine:
                success = bool(mine["success"])
            elif flags is not None:
                success = bool(flags[-1])
                extra["success_source"] = SUCCESS_KEY
            else:
                success = bool(config.assume_success)
                extra["success_source"] = "assumed"
            if flags is None:
                flags = np.zeros(length, dtype=bool)
                flags[-1] = success
            if TIMESTAMP_KEY in names:
                timestamp = _column(table, TIMESTAMP_KEY).astype(np.float64)
            else:
                timestamp = _column(table, "timestamp").astype(np.float64)
            state = _vector(table, config.state_key, length, where)
            action = _vector(table, config.action_key, length, where)
            try:
                episode = Episode.create(
                    task_id=config.task_id or mine.get("task_id") or task_text or "lerobot",
                    instruction=mine.get("instruction", task_text),
                    seed=int(mine.get("seed", ep)),
                    skill=float(mine.get("skill", 1.0)),
                    success=success,
                    fps=float(mine.get("fps", fps)),
                    episode_id=mine.get("episode_id") or f"lerobot_{ep:06d}",
                    extra=extra,
                    state=state,
                    action=action,
                    primitive=primitive,
                    progress=progress,
                    success_flags=flags,
                    timestamp=timestamp,
                    frames=frames,
                )
            except DatasetError as exc:
                raise DatasetError(f"{where}: {exc}") from exc
            yield ep, episode
    finally:
        for reader in readers.values():
            reader.close()


def import_lerobot(
    src: str | os.PathLike[str],
    out: str | os.PathLike[str],
    config: ImportConfig | None = None,
    *,
    progress: bool = False,
) -> Path:
    """Read a LeRobotDataset v3 at ``src`` into a dataset of ours at ``out`` (which appears only when complete).

    Returns:
        ``out`` as a :class:`~pathlib.Path`.

    Raises:
        DatasetError: see :func:`read_lerobot_episodes`; or ``out`` exists and may not be replaced.
    """
    from tqdm import tqdm

    from sarm2_env.dataset import INDEX_FILE, DatasetWriter

    config = config or ImportConfig()
    final = Path(out)
    with _staged_directory(final, lambda p: (p / INDEX_FILE).is_file(), "dataset", config.overwrite) as tmp:
        count = 0
        with DatasetWriter(tmp) as writer:
            for episode in tqdm(read_lerobot_episodes(src, config), desc="import", disable=not progress, unit="ep"):
                writer.add(episode)
                count += 1
        (tmp / ".dataset.lock").unlink(missing_ok=True)
        if count == 0:
            raise DatasetError(f"{src}: expected at least one episode to import; got none")
    log.info("imported %d episodes from %s to %s", count, src, final)
    return final


# --------------------------------------------------------------------------------------------------- sidecar


def _episode_ranges(root: Path) -> dict[int, tuple[int, int]]:
    rows = _read_parquets(root, "meta/episodes").select(["episode_index", "dataset_from_index", "length"]).to_pylist()
    return {int(r["episode_index"]): (int(r["dataset_from_index"]), int(r["length"])) for r in rows}


def write_progress_sidecar(
    root: str | os.PathLike[str],
    progress_sparse: Mapping[int, np.ndarray] | Sequence[np.ndarray],
    progress_dense: Mapping[int, np.ndarray] | Sequence[np.ndarray] | None = None,
    path: str | os.PathLike[str] | None = None,
) -> Path:
    """Write per-frame progress as LeRobot's RA-BC sidecar ``sarm_progress.parquet``.

    Args:
        root: the LeRobotDataset v3 the progress belongs to (its episode metadata gives the global ``index``).
        progress_sparse: episode index -> per-frame progress (a sequence is read as episodes 0, 1, ...).
            Episodes left out get no rows.
        progress_dense: optional second head, same episodes (``progress_dense`` column).
        path: where to write (default: ``<root>/sarm_progress.parquet``, where LeRobot looks for it).

    Returns:
        The written path.

    Raises:
        DatasetError: an unknown episode or a length that differs from the episode's.
        NonFiniteError: NaN or infinite progress.
    """
    pa, pq = _pa()
    root = Path(root)
    ranges = _episode_ranges(root)

    def as_dict(values: Mapping[int, np.ndarray] | Sequence[np.ndarray], name: str) -> dict[int, np.ndarray]:
        items = values.items() if isinstance(values, Mapping) else enumerate(values)
        out = {}
        for ep, arr in items:
            ep = int(ep)
            if ep not in ranges:
                raise DatasetError(f"`{name}`: episode {ep} is not in {root} (episodes 0..{len(ranges) - 1})")
            arr = np.asarray(arr, dtype=np.float64).reshape(-1)
            if len(arr) != ranges[ep][1]:
                raise DatasetError(f"`{name}`: episode {ep}: expected {ranges[ep][1]} frames; got {len(arr)}")
            if not np.isfinite(arr).all():
                raise NonFiniteError(f"`{name}`: episode {ep}: expected finite progress; got NaN or inf")
            out[ep] = arr
        return out

    sparse = as_dict(progress_sparse, "progress_sparse")
    dense = None if progress_dense is None else as_dict(progress_dense, "progress_dense")
    if dense is not None and set(dense) != set(sparse):
        raise DatasetError(
            f"`progress_dense`: expected the episodes of `progress_sparse` {sorted(sparse)}; got {sorted(dense)}"
        )
    episodes = sorted(sparse, key=lambda e: ranges[e][0])
    index = [np.arange(ranges[e][0], ranges[e][0] + ranges[e][1], dtype=np.int64) for e in episodes]
    columns = {
        "index": np.concatenate(index) if index else np.zeros(0, np.int64),
        "episode_index": np.concatenate([np.full(ranges[e][1], e, np.int64) for e in episodes])
        if episodes
        else np.zeros(0, np.int64),
        "frame_index": np.concatenate([np.arange(ranges[e][1], dtype=np.int64) for e in episodes])
        if episodes
        else np.zeros(0, np.int64),
        "progress_sparse": np.concatenate([sparse[e] for e in episodes]).astype(np.float32)
        if episodes
        else np.zeros(0, np.float32),
    }
    if dense is not None:
        columns["progress_dense"] = (
            np.concatenate([dense[e] for e in episodes]).astype(np.float32) if episodes else np.zeros(0, np.float32)
        )
    table = pa.table({k: pa.array(v) for k, v in columns.items()})
    final = Path(path) if path is not None else root / SIDECAR_FILE
    final.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(final) as tmp:
        pq.write_table(table, tmp)
    log.info("wrote %d frames of progress for %d episodes to %s", table.num_rows, len(episodes), final)
    return final


def read_progress_sidecar(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """The columns of a ``sarm_progress.parquet`` as numpy arrays (``index``, ``episode_index``, ...)."""
    _, pq = _pa()
    table = pq.read_table(path)
    return {name: table.column(name).to_numpy() for name in table.column_names}


def predict_progress(
    root: str | os.PathLike[str], model: Any, config: ImportConfig | None = None, *, progress: bool = False
) -> dict[int, np.ndarray]:
    """Run a reward backend's ``predict_episode`` over every episode of a LeRobotDataset v3.

    Returns:
        LeRobot episode index -> per-frame progress.
    """
    from tqdm import tqdm

    out: dict[int, np.ndarray] = {}
    for ep, episode in tqdm(_iter_episodes(root, config), desc="predict", disable=not progress, unit="ep"):
        out[ep] = np.asarray(model.predict_episode(episode).progress)
    return out


# --------------------------------------------------------------------------------------------------- CLI


def _parse_cameras(items: Sequence[str]) -> dict[str, str]:
    out = {}
    for item in items:
        cam, sep, key = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"`--camera` must be OURS=KEY (e.g. top=observation.images.cam_high); got {item!r}")
        out[cam] = key
    return out


def _model(name: str, checkpoint: str | None, device: str | None) -> Any:
    from rewards.registry import reward_model_from_command_line

    return reward_model_from_command_line(name, checkpoint, device)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m sarm2_env.lerobot_io export|import|sidecar``."""
    parser = argparse.ArgumentParser(prog="python -m sarm2_env.lerobot_io", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("export", help="our dataset -> LeRobotDataset v3")
    p.add_argument("--data", required=True, help="our dataset root")
    p.add_argument("--out", required=True, help="the LeRobot dataset root to create")
    p.add_argument("--lossless", action="store_true", help="libx264rgb crf 0 (exact pixels) instead of yuv420p")
    p.add_argument("--crf", type=int, default=23)
    p.add_argument("--robot-type", default="yam_bimanual")
    p.add_argument("--overwrite", action="store_true")
    p = sub.add_parser("import", help="LeRobotDataset v3 -> our dataset")
    p.add_argument("--lerobot", required=True, help="the LeRobot dataset root")
    p.add_argument("--out", required=True, help="our dataset root to create")
    p.add_argument("--camera", action="append", default=[], metavar="OURS=KEY", help="camera mapping (repeatable)")
    p.add_argument("--state-key", default=STATE_KEY)
    p.add_argument("--action-key", default=ACTION_KEY)
    p.add_argument("--task-id", default=None)
    p.add_argument("--overwrite", action="store_true")
    p = sub.add_parser("sidecar", help="a reward backend's progress -> sarm_progress.parquet")
    p.add_argument("--lerobot", required=True, help="the LeRobot dataset root")
    p.add_argument("--backend", default="sarm2")
    p.add_argument("--checkpoint", default=None, help="default: the backend's shipped checkpoint")
    p.add_argument("--dense-backend", default=None, help="a second backend written as progress_dense")
    p.add_argument("--dense-checkpoint", default=None)
    p.add_argument("--camera", action="append", default=[], metavar="OURS=KEY")
    p.add_argument("--device", default=None)
    p.add_argument("--out", default=None, help=f"default: <lerobot>/{SIDECAR_FILE}")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.command == "export":
        config = ExportConfig(
            lossless=args.lossless, crf=args.crf, robot_type=args.robot_type, overwrite=args.overwrite
        )
        result = export_lerobot(args.data, args.out, config, progress=True)
        print(f"exported {result['episodes']} episodes ({result['frames']} frames) to {result['root']}")
    elif args.command == "import":
        config = ImportConfig(
            cameras=_parse_cameras(args.camera),
            state_key=args.state_key,
            action_key=args.action_key,
            task_id=args.task_id,
            overwrite=args.overwrite,
        )
        print(f"imported to {import_lerobot(args.lerobot, args.out, config, progress=True)}")
    else:
        config = ImportConfig(cameras=_parse_cameras(args.camera))
        sparse = predict_progress(
            args.lerobot, _model(args.backend, args.checkpoint, args.device), config, progress=True
        )
        dense = None
        if args.dense_backend:
            model = _model(args.dense_backend, args.dense_checkpoint, args.device)
            dense = predict_progress(args.lerobot, model, config, progress=True)
        print(f"wrote {write_progress_sidecar(args.lerobot, sparse, dense, args.out)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
