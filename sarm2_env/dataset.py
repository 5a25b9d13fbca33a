"""On-disk episode dataset, readable with numpy and json alone.

Layout
------
::

    <root>/
      dataset.json                 # the index; the only list of complete episodes
      episodes/<episode_id>.npz    # one episode per file (np.savez_compressed by default)
      .dataset.lock                # held by an open DatasetWriter; ignore it
      (.dataset.json.tmp-<pid>, episodes/.<episode_id>.npz.tmp-<pid>: leftovers of an interrupted write; ignore them)

``dataset.json`` is a JSON object::

    {"format": "sarm2-episodes", "version": 1, "created_by": "...",
     "cameras": ["top", "left_wrist", "right_wrist"], "primitives": ["clamp", ..., "dummy"],
     "episodes": [{"episode_id": str, "task_id": str, "file": "episodes/<episode_id>.npz",
                   "length": int, "success": bool, "seed": int, "skill": float,
                   "sha256": hex str of the file's bytes, "bytes": int file size}, ...]}

``file`` is relative to ``<root>`` and uses ``/``. Each ``.npz`` holds these arrays (T = frames in the episode):

=====================  ===============  =======  =====================================================
key                    shape            dtype    meaning
=====================  ===============  =======  =====================================================
``state``              (T, 14)          float32  ``agent_pos``: per arm 6 joint angles (rad) + gripper
``action``             (T, 14)          float32  commanded action, same layout as ``state``
``primitive``          (T,)             int16    index into the index's ``primitives`` list
``progress``           (T,)             float32  task progress in [0, 1] (the simulator's raw physics progress)
``success_flags``      (T,)             bool     task solved at this frame
``timestamp``          (T,)             float64  seconds since the episode started, non-decreasing
``frames_<camera>``    (T, H, W, 3)     uint8    RGB, one key per camera: top, left_wrist, right_wrist
``frame_index``        (K,)             int32    optional: the steps whose frames were rendered (then the frames
                                                 are (K, H, W, 3)); absent = every step
``meta``               ()               bytes    UTF-8 JSON of the scalar fields: task_id, instruction,
                                                 seed, skill, success, fps, episode_id, extra, version
=====================  ===============  =======  =====================================================

Simulated episodes also hold ``calibrated_progress`` (T,) float32: the physics progress in demo-time units
(``info["calibrated_progress"]``, :mod:`tasks.calibration`); it is absent from older datasets and real stations.

Reading an episode without this module::

    import json, numpy as np
    index = json.load(open(f"{root}/dataset.json"))
    entry = index["episodes"][0]
    with np.load(f"{root}/{entry['file']}") as z:          # allow_pickle is not needed
        meta = json.loads(z["meta"].tobytes().decode("utf-8"))
        top = z["frames_top"]                              # (T, H, W, 3) uint8

Evaluation episodes may be recorded at the reward's query rate (``collect --render-every 10``): every step's
state, action and ground truth, but camera frames only at steps ``0, 10, 20, ...`` and the last step, listed in
``frame_index`` (the index row then also has ``"frames": K``). :meth:`Episode.frames_by_step` holds each rendered
frame until the next one, for readers that need a frame at every step.

Only episodes listed in ``dataset.json`` are complete. Every file is written to a temporary name in the same
directory, flushed, fsync'ed and ``os.replace``'d into place, the episode first and the index after it, so a
crash leaves at worst an unlisted episode file or a stray ``*.tmp-*`` file, never a listed partial one. The
next :class:`DatasetWriter` lists the unlisted file (it is complete) and removes the stray ones; its
``repair=True`` (``collect --repair``) drops listed episodes whose files were damaged afterwards.
Adding an episode rewrites the whole index (O(episodes) per add; fine up to tens of thousands).

Format choice
-------------
Frames dominate the size. ``benchmarks/dataset_format.py`` compares ``np.savez``, ``np.savez_compressed`` and
H.264 mp4 via imageio-ffmpeg (one file per camera). Measured on 2-core CPU (numpy 2.4.6, ffmpeg 9.0), 128x128
frames, 3 cameras; "rendered" = CleanWhiteboard, 100 steps of ``home_action`` + 0.3 rad joint sinusoid; "synthetic"
= 300 frames of moving shaded shapes on smooth gradients; decode = frames/s summed over cameras, one process:

    ==========================  ==================  ==================  ===================  ===============
    format                      rendered MB / ep.   synthetic MB / ep.  decode frames/s      fidelity
                                (bytes/frame/cam)   (bytes/frame/cam)   rendered / synth.
    ==========================  ==================  ==================  ===================  ===============
    np.savez                    14.75 (49,155)      44.24 (49,153)      49,300 / 50,500      exact
    np.savez_compressed         1.80 (5,999)        14.87 (16,519)      12,400 / 7,700       exact
    mp4 libx264 crf 23          0.17 (553)          0.23 (252)          1,700 / 3,700        PSNR 32-36 dB
    mp4 libx264rgb crf 0        1.45 (4,817)        5.10 (5,672)        1,300 / 1,800        exact
    ==========================  ==================  ==================  ===================  ===============

``np.savez_compressed`` is the default (``DatasetWriter(compress=True)``): lossless, so frames stay pixel-exact
for reward-model training; readable with numpy alone (no ffmpeg); 8x smaller than raw on rendered frames; and it
decodes ~10k frames/s on one core, far above what training consumes. Lossy mp4 is 10-60x smaller again but
changes pixels and decodes 2-7x slower through an ffmpeg pipe; lossless mp4 is 1.2-3x smaller than zlib but needs
ffmpeg and decodes 4-9x slower. ``compress=False`` trades 3-8x disk for 4-6x decode speed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import re
import zipfile
import zlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sarm2_env.atomic import atomic_write, lock_file, unlock_file
from sarm2_env.constants import ACTION_DIM, CAMERAS, NUM_PRIMITIVES, PRIMITIVES, STATE_DIM
from sarm2_env.errors import DatasetError, key_mismatch

if TYPE_CHECKING:
    from typing import Self

__all__ = [
    "FORMAT",
    "INDEX_FILE",
    "VERSION",
    "DatasetWriter",
    "Episode",
    "EpisodeDataset",
    "summarise",
]

logger = logging.getLogger(__name__)

FORMAT = "sarm2-episodes"
VERSION = 1
INDEX_FILE = "dataset.json"
EPISODES_DIR = "episodes"
LOCK_FILE = ".dataset.lock"

_ARRAY_KEYS: tuple[str, ...] = ("state", "action", "primitive", "progress", "success_flags", "timestamp")
_FRAME_KEYS: dict[str, str] = {cam: f"frames_{cam}" for cam in CAMERAS}
_FRAME_INDEX_KEY = "frame_index"
_CALIBRATED_KEY = "calibrated_progress"
_META_KEYS: tuple[str, ...] = ("task_id", "instruction", "seed", "skill", "success", "fps", "episode_id", "extra")
_ENTRY_KEYS: dict[str, tuple[type, ...]] = {
    "episode_id": (str,),
    "task_id": (str,),
    "file": (str,),
    "length": (int,),
    "success": (bool,),
    "seed": (int,),
    "skill": (int, float),
    "sha256": (str,),
    "bytes": (int,),
}
_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")
_TMP_RE = re.compile(r".+\.tmp-\d+")
_RECOLLECT = (
    "rerun the collection with --repair (python -m tasks.collect ... --repair drops broken episodes and records "
    "them again), or delete its entry from dataset.json"
)


def _describe(array: Any) -> str:
    if isinstance(array, np.ndarray):
        return f"array of shape {array.shape} and dtype {array.dtype}"
    return f"{type(array).__name__}"


@dataclasses.dataclass(frozen=True, eq=False, kw_only=True)
class Episode:
    """One recorded episode: scalar metadata plus per-frame arrays (T frames).

    Arrays must already have the canonical dtypes (see the module docstring); :meth:`create` casts them.
    ``frames`` maps each of :data:`~sarm2_env.constants.CAMERAS` to a ``(T, H, W, 3)`` uint8 array; it is empty
    for an episode loaded with ``frames=False``. An episode recorded at a query rate has frames only at the steps
    ``frame_index`` ``(K,)`` (increasing, from step 0 to the last step): its frames are ``(K, H, W, 3)``. An empty
    ``episode_id`` is filled in by :class:`DatasetWriter`.
    """

    task_id: str
    instruction: str
    seed: int
    skill: float
    success: bool
    fps: float
    state: np.ndarray
    action: np.ndarray
    primitive: np.ndarray
    progress: np.ndarray
    success_flags: np.ndarray
    timestamp: np.ndarray
    frames: dict[str, np.ndarray]
    episode_id: str = ""
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)
    frame_index: np.ndarray | None = None
    #: physics progress in demo-time units (``info["calibrated_progress"]``), or None where unknown (older
    #: datasets, real stations)
    calibrated_progress: np.ndarray | None = None

    @classmethod
    def create(cls, **fields: Any) -> Episode:
        """Build an episode from array-likes, casting them to the canonical dtypes, then :meth:`validate` it.

        ``primitive`` may also be a sequence of primitive names. Frames must already be uint8 (a float image
        cast to uint8 silently would be wrong), but lists of per-step images are stacked.
        """
        arrays = {
            "state": np.float32,
            "action": np.float32,
            "progress": np.float32,
            "calibrated_progress": np.float32,
            "success_flags": np.bool_,
            "timestamp": np.float64,
        }
        for key, dtype in arrays.items():
            if fields.get(key) is not None:
                try:
                    fields[key] = np.ascontiguousarray(np.asarray(fields[key]), dtype=dtype)
                except (TypeError, ValueError) as exc:
                    raise DatasetError(
                        f"`{key}`: expected numbers convertible to {np.dtype(dtype)}; got {exc}"
                    ) from exc
        if "primitive" in fields:
            prim = fields["primitive"]
            if isinstance(prim, str) or np.ndim(prim) != 1:
                raise DatasetError(f"`primitive`: expected a 1-D sequence of indices or names; got {prim!r:.80}")
            if len(prim) and all(isinstance(p, str) for p in prim):
                unknown = sorted({p for p in prim if p not in PRIMITIVES})
                if unknown:
                    raise DatasetError(f"`primitive`: expected names from PRIMITIVES; got unknown {unknown}")
                prim = [PRIMITIVES.index(p) for p in prim]
            prim = np.asarray(prim)
            if prim.size and (prim.dtype.kind not in "iu" or prim.min() < 0 or prim.max() >= NUM_PRIMITIVES):
                raise DatasetError(
                    f"`primitive`: expected integer indices in [0, {NUM_PRIMITIVES}); got {_describe(prim)}"
                    + (f" with values in [{prim.min()}, {prim.max()}]" if prim.dtype.kind in "iuf" else "")
                )
            fields["primitive"] = prim.astype(np.int16)
        if "frames" in fields and isinstance(fields["frames"], Mapping):
            fields["frames"] = {cam: np.ascontiguousarray(np.asarray(f)) for cam, f in fields["frames"].items()}
        if fields.get("frame_index") is not None:
            index = np.asarray(fields["frame_index"])
            if index.dtype.kind not in "iu":
                raise DatasetError(f"`frame_index`: expected integer steps; got {_describe(index)}")
            fields["frame_index"] = np.ascontiguousarray(index, dtype=np.int32)
        for key, typ in (("seed", int), ("skill", float), ("success", bool), ("fps", float)):
            value = fields.get(key)
            if isinstance(value, np.generic) or (
                typ is float and isinstance(value, int) and not isinstance(value, bool)
            ):
                fields[key] = typ(value)
        try:
            episode = cls(**fields)
        except TypeError as exc:
            raise DatasetError(f"Episode.create: {exc}") from exc
        episode.validate()
        return episode

    @property
    def length(self) -> int:
        """Number of frames T."""
        return len(self.state)

    @property
    def frame_count(self) -> int:
        """Number of rendered frames: T, or K for an episode recorded at a query rate."""
        return self.length if self.frame_index is None else len(self.frame_index)

    @property
    def rendered_steps(self) -> np.ndarray:
        """The steps that have camera frames: ``frame_index``, or every step ``0..T-1``."""
        if self.frame_index is None:
            return np.arange(self.length, dtype=np.int64)
        return self.frame_index.astype(np.int64)

    def frames_by_step(self) -> dict[str, np.ndarray]:
        """``{camera: (T, H, W, 3)}``: the frames, each rendered frame held until the next rendered step."""
        if self.frame_index is None:
            return dict(self.frames)
        rows = hold_rows(self.frame_index, self.length)
        return {cam: image[rows] for cam, image in self.frames.items()}

    def with_frames_at_every_step(self) -> Episode:
        """This episode with :meth:`frames_by_step` as its frames (itself when every step was rendered): for readers
        that need one frame per step (videos, pixel judges)."""
        if self.frame_index is None:
            return self
        return dataclasses.replace(self, frames=self.frames_by_step(), frame_index=None)

    @property
    def variability(self) -> float:
        """The scripted expert's operator variability (``extra["variability"]``; 0 for episodes recorded before it
        existed, when every expert paced identically)."""
        return float(self.extra.get("variability", 0.0))

    @property
    def primitive_names(self) -> list[str]:
        """The primitive of each frame, as names."""
        return [PRIMITIVES[int(i)] for i in self.primitive]

    @property
    def image_size(self) -> tuple[int, int] | None:
        """``(H, W)`` of the camera frames, or ``None`` when frames were not loaded."""
        if not self.frames:
            return None
        first = next(iter(self.frames.values()))
        return int(first.shape[1]), int(first.shape[2])

    def validate(self, *, require_frames: bool = True) -> None:
        """Check every field's type, shape, dtype, length and value range.

        Args:
            require_frames: when False an empty ``frames`` dict is accepted (metadata-only loads); frames that
                are present are still checked.

        Raises:
            DatasetError: naming the first offending field, what was expected and what was got.
        """
        self._validate_scalars()
        state = self.state
        if not isinstance(state, np.ndarray) or state.ndim != 2 or state.shape[0] < 1:
            raise DatasetError(
                f"`state`: expected a (T, {STATE_DIM}) float32 array with T >= 1; got {_describe(state)}"
            )
        length = state.shape[0]
        expected: dict[str, tuple[tuple[int, ...], np.dtype]] = {
            "state": ((length, STATE_DIM), np.dtype(np.float32)),
            "action": ((length, ACTION_DIM), np.dtype(np.float32)),
            "primitive": ((length,), np.dtype(np.int16)),
            "progress": ((length,), np.dtype(np.float32)),
            "success_flags": ((length,), np.dtype(np.bool_)),
            "timestamp": ((length,), np.dtype(np.float64)),
        }
        for name, (shape, dtype) in expected.items():
            value = getattr(self, name)
            if not isinstance(value, np.ndarray) or value.shape != shape or value.dtype != dtype:
                raise DatasetError(
                    f"`{name}`: expected a {dtype} array of shape {shape} (T={length} from `state`); "
                    f"got {_describe(value)}"
                )
        for name in ("state", "action", "progress", "timestamp"):
            bad = ~np.isfinite(getattr(self, name))
            if bad.any():
                where = np.argwhere(bad)[0].tolist()
                raise DatasetError(f"`{name}`: expected finite values; got {int(bad.sum())} NaN/inf, first at {where}")
        lo, hi = int(self.primitive.min()), int(self.primitive.max())
        if lo < 0 or hi >= NUM_PRIMITIVES:
            raise DatasetError(f"`primitive`: expected indices in [0, {NUM_PRIMITIVES}); got values in [{lo}, {hi}]")
        for name in ("progress", "calibrated_progress"):
            value = getattr(self, name)
            if value is None:  # only calibrated_progress is optional; `progress` was checked above
                continue
            if not isinstance(value, np.ndarray) or value.shape != (length,) or value.dtype != np.float32:
                raise DatasetError(f"`{name}`: expected a float32 array of shape ({length},); got {_describe(value)}")
            plo, phi = float(np.min(value)), float(np.max(value))
            if not (0.0 <= plo and phi <= 1.0):  # also refuses NaN
                raise DatasetError(f"`{name}`: expected values in [0, 1]; got values in [{plo:g}, {phi:g}]")
        steps = np.diff(self.timestamp)
        if (steps < 0).any():
            i = int(np.argmax(steps < 0))
            raise DatasetError(
                f"`timestamp`: expected non-decreasing seconds; got {self.timestamp[i + 1]!r} after "
                f"{self.timestamp[i]!r} at frame {i + 1}"
            )
        self._validate_frame_index(length)
        self._validate_frames(self.frame_count, require_frames)

    def _validate_frame_index(self, length: int) -> None:
        index = self.frame_index
        if index is None:
            return
        if not isinstance(index, np.ndarray) or index.dtype != np.int32 or index.ndim != 1 or not len(index):
            raise DatasetError(f"`frame_index`: expected a non-empty 1-D int32 array of steps; got {_describe(index)}")
        if index[0] != 0 or index[-1] != length - 1 or (np.diff(index) <= 0).any():
            raise DatasetError(
                f"`frame_index`: expected increasing steps from 0 to the last step {length - 1}; got "
                f"{index[:4].tolist()}...{index[-2:].tolist()}"
            )

    def _validate_scalars(self) -> None:
        checks: tuple[tuple[str, tuple[type, ...], str], ...] = (
            ("task_id", (str,), "a non-empty str"),
            ("instruction", (str,), "a str"),
            ("seed", (int,), "an int"),
            ("skill", (int, float), "a finite float"),
            ("success", (bool, np.bool_), "a bool"),
            ("fps", (int, float), "a positive finite float"),
            ("episode_id", (str,), "a str"),
            ("extra", (dict,), "a JSON-serialisable dict"),
        )
        for name, types, what in checks:
            value = getattr(self, name)
            if not isinstance(value, types) or (name in ("seed", "skill", "fps") and isinstance(value, bool)):
                raise DatasetError(f"`{name}`: expected {what}; got {type(value).__name__} {value!r:.80}")
        if not self.task_id:
            raise DatasetError("`task_id`: expected a non-empty str; got ''")
        if not np.isfinite(self.skill):
            raise DatasetError(f"`skill`: expected a finite float; got {self.skill!r}")
        if not (np.isfinite(self.fps) and self.fps > 0):
            raise DatasetError(f"`fps`: expected a positive finite float; got {self.fps!r}")
        if self.episode_id and not _ID_RE.fullmatch(self.episode_id):
            raise DatasetError(
                "`episode_id`: expected 1-200 characters from [A-Za-z0-9._-], not starting with '.', '_' or '-'; "
                f"got {self.episode_id!r}"
            )
        try:
            json.dumps(self.extra, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise DatasetError(f"`extra`: expected a JSON-serialisable dict; got {self.extra!r:.80} ({exc})") from exc

    def _validate_frames(self, length: int, require_frames: bool) -> None:
        frames = self.frames
        if not isinstance(frames, Mapping):
            raise DatasetError(f"`frames`: expected a dict camera -> (T, H, W, 3) uint8 array; got {_describe(frames)}")
        if not frames and not require_frames:
            return
        mismatch = key_mismatch(frames, CAMERAS)
        if mismatch is not None:
            raise DatasetError(
                f"`frames`: expected exactly the cameras {list(CAMERAS)}; got {sorted(frames)}{mismatch}"
            )
        size: tuple[int, int] | None = None
        for cam in CAMERAS:
            image = frames[cam]
            if (
                not isinstance(image, np.ndarray)
                or image.dtype != np.uint8
                or image.ndim != 4
                or image.shape[0] != length
                or image.shape[3] != 3
            ):
                raise DatasetError(
                    f"`frames[{cam!r}]`: expected a uint8 array of shape ({length}, H, W, 3); got {_describe(image)}"
                )
            if size is None:
                size = image.shape[1:3]
            elif image.shape[1:3] != size:
                raise DatasetError(
                    f"`frames[{cam!r}]`: expected the same (H, W) as `frames[{CAMERAS[0]!r}]` {tuple(size)}; "
                    f"got {tuple(image.shape[1:3])}"
                )

    def _meta(self) -> dict[str, Any]:
        return {
            "version": VERSION,
            "task_id": self.task_id,
            "instruction": self.instruction,
            "seed": int(self.seed),
            "skill": float(self.skill),
            "success": bool(self.success),
            "fps": float(self.fps),
            "episode_id": self.episode_id,
            "extra": self.extra,
        }


# --------------------------------------------------------------------------------------------------- file helpers


def hold_rows(frame_index: np.ndarray, length: int) -> np.ndarray:
    """For every step ``0..length-1``, the row of the newest rendered frame at or before it: ``(length,)``."""
    steps = np.arange(length)
    return np.searchsorted(np.asarray(frame_index), steps, side="right") - 1


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_") or "episode"


def _read_index(root: Path) -> dict[str, Any]:
    """Load and check ``<root>/dataset.json``; raise :class:`DatasetError` naming the path on any problem."""
    path = root / INDEX_FILE
    if not path.is_file():
        what = "does not exist" if not root.exists() else "holds no dataset.json"
        raise DatasetError(f"{root} {what}: expected a dataset written by DatasetWriter ({path} is missing)")
    try:
        index = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: expected the dataset index as JSON; got unparsable content ({exc})") from exc
    except OSError as exc:
        raise DatasetError(f"{path}: could not read the dataset index ({exc})") from exc
    if not isinstance(index, dict):
        raise DatasetError(f"{path}: expected a JSON object; got {type(index).__name__}")
    if index.get("format") != FORMAT:
        raise DatasetError(f'{path}: expected "format": {FORMAT!r}; got {index.get("format")!r}')
    if index.get("version") != VERSION:
        raise DatasetError(
            f'{path}: expected "version": {VERSION}; got {index.get("version")!r} (written by a different release?)'
        )
    if "primitives" in index and list(index["primitives"]) != list(PRIMITIVES):
        raise DatasetError(
            f"{path}: `primitives` differs from this toolkit's PRIMITIVES, so primitive indices would be misread; "
            f"got {index['primitives']!r:.200}"
        )
    episodes = index.get("episodes")
    if not isinstance(episodes, list):
        raise DatasetError(f'{path}: expected "episodes" to be a list; got {type(episodes).__name__}')
    seen: set[str] = set()
    for i, entry in enumerate(episodes):
        if not isinstance(entry, dict):
            raise DatasetError(f"{path}: episodes[{i}]: expected an object; got {type(entry).__name__}")
        for key, types in _ENTRY_KEYS.items():
            value = entry.get(key)
            if not isinstance(value, types) or (key != "success" and isinstance(value, bool)):
                raise DatasetError(
                    f"{path}: episodes[{i}].{key}: expected {'/'.join(t.__name__ for t in types)}; got {value!r:.80}"
                )
        frames = entry.get("frames", entry["length"])
        if not isinstance(frames, int) or isinstance(frames, bool) or not 1 <= frames <= entry["length"]:
            raise DatasetError(
                f"{path}: episodes[{i}].frames: expected an int in [1, length={entry['length']}]; got {frames!r:.80}"
            )
        eid = entry["episode_id"]
        if eid in seen:
            raise DatasetError(f"{path}: episodes[{i}]: duplicate episode_id {eid!r}")
        seen.add(eid)
        file = entry["file"]
        if file != f"{EPISODES_DIR}/{eid}.npz" or not _ID_RE.fullmatch(eid):
            raise DatasetError(f"{path}: episodes[{i}].file: expected '{EPISODES_DIR}/<episode_id>.npz'; got {file!r}")
    return index


# --------------------------------------------------------------------------------------------------- writer


class DatasetWriter:
    """Appends episodes to a dataset root, crash-safely (see the module docstring for the layout).

    Opening a root that holds a dataset appends to it; a missing or empty root becomes a new dataset. A root
    holding other files (and no ``dataset.json``) is refused unless ``overwrite``. ``overwrite=True`` starts an
    empty dataset: it drops an existing index and the ``episodes/*.npz`` files, leaving unrelated files alone.
    Leftover ``*.tmp-*`` files from interrupted writes are removed on open. While open, the writer holds an
    exclusive lock on ``<root>/.dataset.lock`` (POSIX), so a second writer on the same root fails fast.

    Args:
        root: dataset directory (created if missing).
        overwrite: discard an existing dataset / accept a non-empty non-dataset directory.
        compress: ``np.savez_compressed`` (default, lossless) or ``np.savez``.
        repair: check every listed episode file (size, sha256, contents) and drop the broken ones from the
            index, deleting their files, so that a collection records them again (names in :attr:`repaired`).

    An episode file that is complete but missing from the index (an add interrupted between writing the
    file and updating the index) is adopted into the index on opening; one that cannot be read is deleted.
    """

    def __init__(
        self, root: str | os.PathLike[str], overwrite: bool = False, compress: bool = True, repair: bool = False
    ) -> None:
        self.root = Path(root)
        self.compress = compress
        self.repair = repair
        #: Episode ids dropped by ``repair`` (their files were broken), and episode ids adopted from unlisted files.
        self.repaired: list[str] = []
        self.adopted: list[str] = []
        self._lock_fd: int | None = None
        self._closed = False
        self._episodes_dir = self.root / EPISODES_DIR
        if self.root.exists() and not self.root.is_dir():
            raise DatasetError(f"{self.root}: expected a directory for the dataset root; got a file")
        if self.root.is_dir() and not overwrite:
            self._refuse_foreign_root()
        self.root.mkdir(parents=True, exist_ok=True)
        self._acquire_lock()
        try:
            self._open(overwrite)
        except BaseException:
            self.close()
            raise

    # -- opening

    def _acquire_lock(self) -> None:
        # a POSIX advisory lock, so two writers never interleave index rewrites
        self._lock_fd = lock_file(
            self.root / LOCK_FILE,
            busy=lambda: DatasetError(
                f"{self.root}: another DatasetWriter holds {LOCK_FILE}; write parallel collections to separate roots"
            ),
        )

    def _refuse_foreign_root(self) -> None:
        """Raise unless the existing root holds a dataset index or nothing but this module's own files."""
        if (self.root / INDEX_FILE).exists():
            return
        own = {LOCK_FILE, EPISODES_DIR}
        others = sorted(p.name for p in self.root.iterdir() if p.name not in own and not _TMP_RE.fullmatch(p.name))
        episode_files = self._episodes_dir.is_dir() and any(
            not _TMP_RE.fullmatch(p.name) for p in self._episodes_dir.iterdir()
        )
        if others or episode_files:
            shown = others[:5] + ([f"{EPISODES_DIR}/..."] if episode_files else [])
            raise DatasetError(
                f"{self.root}: expected an empty directory or a dataset (with {INDEX_FILE}); got other files "
                f"{shown}. Pass overwrite=True to use it anyway, or choose another root"
            )

    def _open(self, overwrite: bool) -> None:
        index_path = self.root / INDEX_FILE
        self._remove_stray_tmp()
        if overwrite:
            self._discard_existing()
        self._episodes_dir.mkdir(exist_ok=True)
        if index_path.exists():
            self._index = _read_index(self.root)
            if self.repair:
                self._drop_broken()
            self._adopt_orphans()
        else:
            self._index = {
                "format": FORMAT,
                "version": VERSION,
                "created_by": f"sarm2 sarm2_env.dataset (numpy {np.__version__})",
                "cameras": list(CAMERAS),
                "primitives": list(PRIMITIVES),
                "episodes": [],
            }
            self._write_index(self._index)
        self._ids = {e["episode_id"] for e in self._index["episodes"]}
        self._counter = len(self._index["episodes"])

    def _adopt_orphans(self) -> None:
        """List complete episode files the index misses (an interrupted add); delete unreadable ones."""
        listed = {e["file"] for e in self._index["episodes"]}
        ids = {e["episode_id"] for e in self._index["episodes"]}
        episodes = list(self._index["episodes"])
        for path in sorted(self._episodes_dir.glob("*.npz")):
            if f"{EPISODES_DIR}/{path.name}" in listed:
                continue
            try:
                episode = _read_episode_file(path)
                if episode.episode_id != path.stem or episode.episode_id in ids:
                    raise DatasetError(
                        f"`episode_id`: expected {path.stem!r}, not yet listed; got {episode.episode_id!r}"
                    )
            except DatasetError as exc:
                logger.warning("%s: removing an unlisted, unusable episode file (%s)", path, exc)
                path.unlink(missing_ok=True)
                continue
            episodes.append(self._entry(path, episode))
            ids.add(episode.episode_id)
            self.adopted.append(episode.episode_id)
            logger.warning("%s: adopted %s, written before an interrupted add could list it", self.root, path.name)
        if self.adopted:
            self._index = dict(self._index, episodes=episodes)
            self._write_index(self._index)

    def _drop_broken(self) -> None:
        """``repair``: drop (and delete) every listed episode whose file is missing, altered or unreadable."""
        kept = []
        for entry in self._index["episodes"]:
            path = self.root / entry["file"]
            try:
                if not path.is_file() or path.stat().st_size != entry["bytes"] or _sha256(path) != entry["sha256"]:
                    raise DatasetError("missing, or its size or sha256 differs from the index")
                _read_episode_file(path)
            except DatasetError as exc:
                logger.warning("%s: dropping broken episode %s (%s)", self.root, entry["episode_id"], exc)
                path.unlink(missing_ok=True)
                self.repaired.append(entry["episode_id"])
                continue
            kept.append(entry)
        if self.repaired:
            self._index = dict(self._index, episodes=kept)
            self._write_index(self._index)

    def _remove_stray_tmp(self) -> None:
        for directory in (self.root, self._episodes_dir):
            if not directory.is_dir():
                continue
            for p in directory.iterdir():
                if p.name.startswith(".") and _TMP_RE.fullmatch(p.name) and p.is_file():
                    logger.info("removing %s left by an interrupted write", p)
                    p.unlink(missing_ok=True)

    def _discard_existing(self) -> None:
        (self.root / INDEX_FILE).unlink(missing_ok=True)
        if self._episodes_dir.is_dir():
            for p in self._episodes_dir.glob("*.npz"):
                p.unlink()

    # -- writing

    def _write_index(self, index: dict[str, Any]) -> None:
        # One header field and one episode per line: readable, diffable, and still plain JSON.
        fields = [f" {json.dumps(k)}: {json.dumps(v)}" for k, v in index.items() if k != "episodes"]
        rows = ",\n".join(f"  {json.dumps(e)}" for e in index["episodes"])
        fields.append(f' "episodes": [\n{rows}\n ]' if rows else ' "episodes": []')
        data = ("{\n" + ",\n".join(fields) + "\n}\n").encode("utf-8")
        atomic_write(self.root / INDEX_FILE, lambda f: f.write(data))

    def _new_id(self, episode: Episode) -> str:
        stem = _slug(episode.task_id)[:150]
        while True:
            eid = f"{stem}_{int(episode.seed):06d}_{self._counter:04d}"
            self._counter += 1
            if eid not in self._ids and not (self._episodes_dir / f"{eid}.npz").exists():
                return eid

    def add(self, episode: Episode) -> Path:
        """Validate ``episode`` and store it; return the path of its ``.npz``.

        An empty ``episode_id`` is replaced by a generated unique one (``<task slug>_<seed>_<counter>``); read it
        back from the returned path's stem or :attr:`episode_ids`.

        Raises:
            DatasetError: the episode is invalid, its id is already in the dataset, or the write failed.
        """
        if self._closed:
            raise DatasetError(f"{self.root}: this DatasetWriter is closed")
        if not isinstance(episode, Episode):
            raise DatasetError(f"`episode`: expected an Episode; got {type(episode).__name__}")
        episode.validate()
        if not episode.episode_id:
            episode = dataclasses.replace(episode, episode_id=self._new_id(episode))
        eid = episode.episode_id
        if eid in self._ids:
            raise DatasetError(f"`episode_id`: expected an id not yet in {self.root}; got duplicate {eid!r}")
        final = self._episodes_dir / f"{eid}.npz"
        arrays: dict[str, np.ndarray] = {key: getattr(episode, key) for key in _ARRAY_KEYS}
        for cam, key in _FRAME_KEYS.items():
            arrays[key] = episode.frames[cam]
        if episode.frame_index is not None:
            arrays[_FRAME_INDEX_KEY] = episode.frame_index
        if episode.calibrated_progress is not None:
            arrays[_CALIBRATED_KEY] = episode.calibrated_progress
        arrays["meta"] = np.array(json.dumps(episode._meta(), allow_nan=False).encode("utf-8"))
        save = np.savez_compressed if self.compress else np.savez
        try:
            atomic_write(final, lambda f: save(f, **arrays))
        except OSError as exc:
            raise DatasetError(f"could not write episode {eid!r} to {final}: {exc}") from exc
        entry = self._entry(final, episode)
        new_index = dict(self._index, episodes=[*self._index["episodes"], entry])
        try:
            self._write_index(new_index)
        except OSError as exc:
            raise DatasetError(f"wrote {final} but could not update {self.root / INDEX_FILE}: {exc}") from exc
        self._index = new_index
        self._ids.add(eid)
        logger.debug("added episode %s (%d frames, %d bytes)", eid, entry["length"], entry["bytes"])
        return final

    def _entry(self, path: Path, episode: Episode) -> dict[str, Any]:
        """The index row of ``episode`` stored at ``path`` (``frames``: only for a query-rate episode)."""
        entry = {
            "episode_id": episode.episode_id,
            "task_id": episode.task_id,
            "file": f"{EPISODES_DIR}/{path.name}",
            "length": episode.length,
            "success": bool(episode.success),
            "seed": int(episode.seed),
            "skill": float(episode.skill),
            "sha256": _sha256(path),
            "bytes": path.stat().st_size,
        }
        if episode.frame_index is not None:
            entry["frames"] = episode.frame_count
        return entry

    # -- info and lifetime

    @property
    def entries(self) -> list[dict[str, Any]]:
        """Copies of the index rows, in insertion order."""
        return [dict(e) for e in self._index["episodes"]]

    @property
    def episode_ids(self) -> list[str]:
        """Ids of the episodes in the dataset, in insertion order."""
        return [e["episode_id"] for e in self._index["episodes"]]

    def __len__(self) -> int:
        return len(self._index["episodes"])

    def close(self) -> None:
        """Release the writer's lock; every :meth:`add` is already durable, so there is nothing to flush."""
        self._closed = True
        if self._lock_fd is not None:
            fd, self._lock_fd = self._lock_fd, None
            unlock_file(fd)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # interpreter shutdown
            self.close()

    def __repr__(self) -> str:
        return f"DatasetWriter({str(self.root)!r}, episodes={len(self)}, compress={self.compress})"


# --------------------------------------------------------------------------------------------------- reader


class EpisodeDataset:
    """Read-only view of a dataset root: only the episodes listed in ``dataset.json`` exist.

    The index is read once, at construction. Episodes are loaded on demand; every load checks the file's size
    against the index (and its sha256 when ``verify``), the keys, the metadata, and :meth:`Episode.validate`.

    Args:
        root: dataset directory.
        verify: also check each file's sha256 on load (reads the file twice).

    Raises:
        DatasetError: the index is missing, not JSON, or not a version-1 ``sarm2-episodes`` index.
    """

    def __init__(self, root: str | os.PathLike[str], verify: bool = False) -> None:
        self.root = Path(root)
        self.verify = verify
        self._index = _read_index(self.root)
        self._entries: list[dict[str, Any]] = self._index["episodes"]
        self._by_id = {e["episode_id"]: i for i, e in enumerate(self._entries)}

    def __len__(self) -> int:
        return len(self._entries)

    def __getitem__(self, i: int) -> Episode:
        return self.load(i)

    def __iter__(self) -> Iterator[Episode]:
        for i in range(len(self)):
            yield self.load(i)

    def __repr__(self) -> str:
        return f"EpisodeDataset({str(self.root)!r}, episodes={len(self)})"

    @property
    def episode_ids(self) -> list[str]:
        """Episode ids in index order."""
        return [e["episode_id"] for e in self._entries]

    @property
    def tasks(self) -> list[str]:
        """Sorted unique task ids."""
        return sorted({e["task_id"] for e in self._entries})

    @property
    def entries(self) -> list[dict[str, Any]]:
        """Copies of the index rows (episode_id, task_id, file, length, success, seed, skill, sha256, bytes)."""
        return [dict(e) for e in self._entries]

    def index_of(self, episode_id: str) -> int:
        """Position of ``episode_id``; raises ``KeyError`` if it is not in the dataset."""
        try:
            return self._by_id[episode_id]
        except KeyError:
            raise KeyError(f"episode {episode_id!r} is not in {self.root}") from None

    def filter(self, task_id: str | None = None, success: bool | None = None) -> list[int]:
        """Indices of the episodes matching every given criterion (``None`` = any)."""
        return [
            i
            for i, e in enumerate(self._entries)
            if (task_id is None or e["task_id"] == task_id) and (success is None or e["success"] == success)
        ]

    def summary(self) -> dict[str, Any]:
        """Counts from the index alone (no episode file is opened).

        Returns:
            ``{"episodes", "frames", "bytes", "success_rate", "mean_length", "tasks": {task_id: {"episodes",
            "successes", "frames", "success_rate"}}}``; rates and mean are 0.0 for an empty dataset.
        """
        n = len(self._entries)
        frames = sum(e["length"] for e in self._entries)
        tasks: dict[str, dict[str, Any]] = {}
        for e in self._entries:
            t = tasks.setdefault(e["task_id"], {"episodes": 0, "successes": 0, "frames": 0})
            t["episodes"] += 1
            t["successes"] += int(e["success"])
            t["frames"] += e["length"]
        for t in tasks.values():
            t["success_rate"] = t["successes"] / t["episodes"]
        return {
            "episodes": n,
            "frames": frames,
            "bytes": sum(e["bytes"] for e in self._entries),
            "success_rate": sum(int(e["success"]) for e in self._entries) / n if n else 0.0,
            "mean_length": frames / n if n else 0.0,
            "tasks": dict(sorted(tasks.items())),
        }

    def load(self, i: int, frames: bool = True) -> Episode:
        """Load episode ``i`` (negative indices count from the end).

        Args:
            i: position in the index.
            frames: when False the camera arrays are not decompressed and ``Episode.frames`` is ``{}``.

        Raises:
            IndexError: ``i`` is out of range.
            DatasetError: the file is missing, truncated, corrupt, or disagrees with the index.
        """
        n = len(self._entries)
        if not -n <= i < n:
            raise IndexError(f"episode index {i} out of range for a dataset of {n} episodes")
        entry = self._entries[i]
        path = self.root / entry["file"]
        name = str(path)
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            raise DatasetError(f"{name}: listed in {INDEX_FILE} but missing from {self.root}; {_RECOLLECT}") from None
        if size != entry["bytes"]:
            raise DatasetError(
                f"{name}: expected {entry['bytes']} bytes as recorded in {INDEX_FILE}; got {size} "
                f"(truncated or replaced); {_RECOLLECT}"
            )
        if self.verify:
            digest = _sha256(path)
            if digest != entry["sha256"]:
                raise DatasetError(
                    f"{name}: expected sha256 {entry['sha256']} as recorded in {INDEX_FILE}; got {digest} "
                    f"(the file is corrupt); {_RECOLLECT}"
                )
        episode = _read_episode_file(path, frames)
        for key, got in (
            ("episode_id", episode.episode_id),
            ("task_id", episode.task_id),
            ("length", episode.length),
            ("success", episode.success),
            ("frames", episode.frame_count),
        ):
            want = entry.get(key, entry["length"]) if key == "frames" else entry[key]
            if got != want:
                raise DatasetError(
                    f"{name}: `{key}`: expected {want!r} as recorded in {INDEX_FILE}; got {got!r} in the file"
                )
        return episode


def _read_episode_file(path: Path, frames: bool = True) -> Episode:
    """The validated :class:`Episode` stored in ``path`` (frames left out when ``frames`` is False).

    Raises:
        DatasetError: the file cannot be read, lacks arrays or metadata, or its episode is invalid.
    """
    name = str(path)
    keys = [*_ARRAY_KEYS, "meta"] + (list(_FRAME_KEYS.values()) if frames else [])
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in keys if k not in z.files]
            if missing:
                raise DatasetError(f"{name}: expected arrays {keys}; missing {missing}; {_RECOLLECT}")
            data = {k: z[k] for k in keys}
            frame_index = z[_FRAME_INDEX_KEY] if _FRAME_INDEX_KEY in z.files else None
            calibrated = z[_CALIBRATED_KEY] if _CALIBRATED_KEY in z.files else None
    except DatasetError:
        raise
    except (zipfile.BadZipFile, zlib.error, ValueError, OSError, EOFError, KeyError) as exc:
        raise DatasetError(
            f"{name}: could not read the episode file ({type(exc).__name__}: {exc}); {_RECOLLECT}"
        ) from exc
    meta_raw = data.pop("meta")
    try:
        meta = json.loads(meta_raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DatasetError(f"{name}: `meta`: expected UTF-8 JSON; got unparsable bytes ({exc}); {_RECOLLECT}") from exc
    if not isinstance(meta, dict) or any(k not in meta for k in _META_KEYS):
        got = sorted(meta) if isinstance(meta, dict) else type(meta).__name__
        raise DatasetError(f"{name}: `meta`: expected keys {list(_META_KEYS)}; got {got}; {_RECOLLECT}")
    try:
        episode = Episode(
            **{k: meta[k] for k in _META_KEYS},
            **{k: data[k] for k in _ARRAY_KEYS},
            frames={cam: data[key] for cam, key in _FRAME_KEYS.items()} if frames else {},
            frame_index=frame_index,
            calibrated_progress=calibrated,
        )
        episode.validate(require_frames=frames)
    except DatasetError as exc:
        raise DatasetError(f"{name}: {exc}") from exc
    return episode


def _human_bytes(n: int) -> str:
    if n < 1000:
        return f"{n} B"
    size, unit = float(n), "B"
    for unit in ("kB", "MB", "GB"):  # noqa: B007 - the unit reached is the one printed
        size /= 1000
        if size < 1000:
            break
    return f"{size:,.1f} {unit}"


def summarise(root: str | os.PathLike[str]) -> str:
    """Human-readable multi-line summary of the dataset at ``root`` (from its index only)."""
    ds = EpisodeDataset(root)
    s = ds.summary()
    lines = [
        f"dataset {ds.root}: {s['episodes']} episodes, {s['frames']:,} frames, {_human_bytes(s['bytes'])}",
        f"success rate {100 * s['success_rate']:.1f}%, mean length {s['mean_length']:.1f} frames",
    ]
    if s["tasks"]:
        width = max(len("task"), *(len(t) for t in s["tasks"]))
        lines.append(f"{'task':<{width}}  {'episodes':>8}  {'success':>7}  {'frames':>9}")
        for task, t in s["tasks"].items():
            lines.append(f"{task:<{width}}  {t['episodes']:>8}  {100 * t['success_rate']:>6.1f}%  {t['frames']:>9,}")
    return "\n".join(lines)
