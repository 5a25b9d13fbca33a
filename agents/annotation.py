"""Rollout annotation for reward-model adaptation (docs/design.md §4, SPIRAL step "annotate ~100 rollouts").

A human (or, in simulation, :func:`agents.auto_annotation.auto_annotate`) describes each rollout coarsely: a final
progress in [0, 1], time segments labelled by how the task moved during them, and optionally the frame of a
catastrophic failure.
:func:`synthesize_progress` turns that description into a dense per-frame progress curve, the regression target
used to adapt a reward model to the policy's own rollouts.

Labels
------
===========  =============  =======  ======================================================
label        meaning        slope    use it when
===========  =============  =======  ======================================================
``fast``     fast progress  +2 s     the task advances quickly (a clean grasp, a long wipe)
``slow``     slow progress  +1 s     the task advances, hesitantly
``adjust``   adjust         0        re-grasping, re-positioning: no progress, no regress
``mistake``  mistake        -1 s     progress is undone (a drop, a fold coming apart)
===========  =============  =======  ======================================================

``s`` is the rollout's speed, solved per rollout (see below).

Frames covered by no segment count as ``slow``: an unlabelled stretch is assumed to be ordinary progress, so a
rollout annotated with nothing but its final progress gets the time-linear curve ``t / (T - 1) * final``.

Synthesis rule
--------------
Segments are half-open frame ranges ``[start, end)``; the label of frame ``t`` sets the slope of the curve from
frame ``t`` to frame ``t + 1`` (the last frame's label has no effect). Let ``E`` be the number of *active*
frames: ``catastrophic_frame`` when one is set, else ``length``. With ``w_t`` the label weight of step ``t``
(2 / 1 / 0 / -1) and ``C_t = w_0 + ... + w_{t-1}`` (``C_0 = 0``), ``W = C_{E-1}``:

* ``W > 0``: ``p_t = final_progress * C_t / W`` for ``t < E`` (so ``s = final_progress / W``, ``p_0 = 0`` and
  ``p_{E-1} = final_progress``), then clipped to [0, 1]. Clipping happens after the whole curve is built, so a
  curve that dips below 0 after an early mistake, or overshoots 1 before a late one, still ends exactly at the
  final progress.
* ``W <= 0`` (only ``adjust`` / ``mistake`` steps, or more mistake than progress): the labels cannot end at a
  positive final progress, so the curve is the linear ramp ``final_progress * t / (E - 1)``; when
  ``final_progress == 0`` that ramp is all zeros, which also honours every label.
* ``E == 1`` (a one-frame rollout, or a catastrophe at frame 1): the single active frame is ``final_progress``.
* Frames ``t >= catastrophic_frame`` are 0. With a catastrophe, ``final_progress`` therefore means the progress
  reached just before it (frame ``catastrophic_frame - 1``); the rollout itself ends at 0.

The browser annotation page (``python -m agents.annotate``) computes the same curve in JavaScript, with the same
operations in the same order, and the server re-checks it with :func:`synthesize_progress` on every save.

File format (JSONL)
-------------------
One JSON object per line, one line per rollout, UTF-8; blank lines are ignored; when two lines name the same
episode the later one wins (so a tool may append an updated line instead of rewriting the file).
:class:`AnnotationStore` always rewrites the whole file atomically and keeps one line per episode::

    {"format": "sarm2-rollout-annotation", "version": 1,
     "episode_id": "fold_shorts_000012", "length": 240, "final_progress": 0.85,
     "segments": [{"start": 0, "end": 60, "label": "fast"},
                  {"start": 60, "end": 95, "label": "adjust"},
                  {"start": 95, "end": 120, "label": "mistake"}],
     "catastrophic_frame": null, "annotator": "alice",
     "created": "2026-05-01T12:00:00+00:00", "updated": "2026-05-01T12:03:10+00:00", "notes": ""}

====================== ======== ===========================================================================
key                    required meaning
====================== ======== ===========================================================================
``format``             yes      the string ``"sarm2-rollout-annotation"``
``version``            yes      the integer ``1``
``episode_id``         yes      the episode's id in its dataset (``dataset.json``)
``length``             yes      frames T in the episode (a check that the annotation fits the episode)
``final_progress``     yes      number in [0, 1]: progress at the last frame (before the catastrophe if any)
``segments``           yes      list of ``{"start": int, "end": int, "label": str}``; ``0 <= start < end <=
                                length``; ``end`` exclusive; no two overlap; any order (stored sorted)
``catastrophic_frame`` no       ``null`` (default) or an int in [0, length): the curve is 0 from this frame on
``annotator``          yes      non-empty str: who labelled it (``"auto"`` for the auto-labeller)
``created``            yes      ISO 8601 date-time (``datetime.fromisoformat``; a trailing ``Z`` is accepted)
``updated``            yes      ISO 8601 date-time of the last change
``notes``              no       free text, default ``""``
====================== ======== ===========================================================================

Unknown keys are errors (a typo must not silently drop a field).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import json
import logging
import math
import os
import threading
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from sarm2_env.atomic import atomic_write_bytes, lock_file, unlock_file
from sarm2_env.errors import SARM2Error

if TYPE_CHECKING:
    from sarm2_env.dataset import EpisodeDataset

__all__ = [
    "FORMAT",
    "LABELS",
    "LABEL_DESCRIPTIONS",
    "LABEL_WEIGHTS",
    "VERSION",
    "AnnotationError",
    "AnnotationFileError",
    "AnnotationStore",
    "AnnotationWarning",
    "BadLine",
    "RolloutAnnotation",
    "AnnotatedSegment",
    "parse_segments",
    "synthesize_progress",
]

logger = logging.getLogger(__name__)

FORMAT = "sarm2-rollout-annotation"
VERSION = 1

#: AnnotatedSegment labels, in the order of the annotation page's shortcut keys 1-4.
LABELS: tuple[str, str, str, str] = ("fast", "slow", "adjust", "mistake")
#: Slope of each label, in units of the per-rollout speed ``s``.
LABEL_WEIGHTS: dict[str, int] = {"fast": 2, "slow": 1, "adjust": 0, "mistake": -1}
#: Human-readable names.
LABEL_DESCRIPTIONS: dict[str, str] = {
    "fast": "fast progress",
    "slow": "slow progress",
    "adjust": "adjust",
    "mistake": "mistake",
}
#: The label of frames that no segment covers.
DEFAULT_LABEL = "slow"

_REQUIRED_KEYS = (
    "format",
    "version",
    "episode_id",
    "length",
    "final_progress",
    "segments",
    "annotator",
    "created",
    "updated",
)
_OPTIONAL_KEYS = ("catastrophic_frame", "notes")
_SEGMENT_KEYS = ("start", "end", "label")


class AnnotationError(SARM2Error, ValueError):
    """An annotation field is missing, of the wrong type, or out of range."""


class AnnotationFileError(SARM2Error):
    """A rollout-annotation file cannot be read; ``line`` is the 1-based line number when one line is to blame."""

    def __init__(self, path: str | os.PathLike[str], message: str, line: int | None = None) -> None:
        self.path = Path(path)
        self.line = line
        self.message = message
        where = f"{self.path}:{line}" if line is not None else str(self.path)
        super().__init__(f"{where}: {message}")


class AnnotationWarning(UserWarning):
    """A bad line was skipped by ``AnnotationStore.load(strict=False)``."""


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _is_int(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def _parse_time(name: str, value: object) -> str:
    if not isinstance(value, str):
        raise AnnotationError(f"`{name}` must be an ISO 8601 date-time string; got {type(value).__name__} {value!r}")
    text = value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value
    try:
        _dt.datetime.fromisoformat(text)
    except ValueError:
        raise AnnotationError(f"`{name}` must be an ISO 8601 date-time string; got {value!r}") from None
    return value


# --------------------------------------------------------------------------------------------------- schema


@dataclasses.dataclass(frozen=True)
class AnnotatedSegment:
    """Frames ``[start, end)`` of a rollout (``end`` exclusive) and how the task moved during them.

    Args:
        start: first frame, >= 0.
        end: one past the last frame, > ``start``.
        label: one of :data:`LABELS`.
    """

    start: int
    end: int
    label: str

    def __post_init__(self) -> None:
        for name in ("start", "end"):
            value = getattr(self, name)
            if not _is_int(value):
                raise AnnotationError(f"`{name}` must be an int frame index; got {type(value).__name__} {value!r}")
            object.__setattr__(self, name, int(value))
        if self.start < 0:
            raise AnnotationError(f"`start` must be >= 0; got {self.start}")
        if self.end <= self.start:
            raise AnnotationError(f"`end` must be > start ({self.start}); got {self.end}")
        if self.label not in LABELS:
            raise AnnotationError(f"`label` must be one of {list(LABELS)}; got {self.label!r}")

    @property
    def weight(self) -> int:
        """Slope of the label in units of the rollout's speed ``s``."""
        return LABEL_WEIGHTS[self.label]

    def __len__(self) -> int:
        return self.end - self.start

    def to_dict(self) -> dict[str, Any]:
        """``{"start", "end", "label"}``."""
        return {"start": self.start, "end": self.end, "label": self.label}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AnnotatedSegment:
        """Inverse of :meth:`to_dict`; unknown or missing keys are errors."""
        if not isinstance(data, Mapping):
            raise AnnotationError(f"a segment must be an object with keys {list(_SEGMENT_KEYS)}; got {data!r:.80}")
        unknown = sorted(set(data) - set(_SEGMENT_KEYS))
        missing = [k for k in _SEGMENT_KEYS if k not in data]
        if unknown or missing:
            raise AnnotationError(
                f"a segment must have exactly the keys {list(_SEGMENT_KEYS)}; got {sorted(data)}"
                + (f" (missing {missing})" if missing else "")
                + (f" (unknown {unknown})" if unknown else "")
            )
        return cls(start=data["start"], end=data["end"], label=data["label"])


def _describe_segment(i: int, seg: AnnotatedSegment) -> str:
    return f"segments[{i}] [{seg.start}, {seg.end}) {seg.label!r}"


def parse_segments(segments: Any) -> tuple[AnnotatedSegment, ...]:
    """A JSON list of segment objects -> segments; an :class:`AnnotationError` names the first bad entry."""
    if not isinstance(segments, list):
        raise AnnotationError(f"`segments` must be a list of objects; got {type(segments).__name__}")
    parsed = []
    for i, seg in enumerate(segments):
        try:
            parsed.append(AnnotatedSegment.from_dict(seg))
        except AnnotationError as exc:
            raise AnnotationError(f"`segments[{i}]`: {exc}") from None
    return tuple(parsed)


@dataclasses.dataclass(frozen=True)
class RolloutAnnotation:
    """A human's (or the auto-labeller's) coarse description of one rollout; see the module docstring.

    ``segments`` may be given in any order and as a list; it is stored as a tuple sorted by ``start``.

    Raises:
        AnnotationError: a field is of the wrong type or out of range, a segment leaves ``[0, length)``, or two
            segments overlap (the message names both).
    """

    episode_id: str
    length: int
    final_progress: float
    segments: tuple[AnnotatedSegment, ...] = ()
    catastrophic_frame: int | None = None
    annotator: str = "unknown"
    created: str = dataclasses.field(default_factory=_now)
    updated: str = dataclasses.field(default_factory=_now)
    notes: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.episode_id, str) or not self.episode_id:
            raise AnnotationError(f"`episode_id` must be a non-empty str; got {self.episode_id!r}")
        if not _is_int(self.length) or self.length < 1:
            raise AnnotationError(f"`length` must be an int >= 1; got {self.length!r}")
        object.__setattr__(self, "length", int(self.length))
        fp = self.final_progress
        if not _is_number(fp) or not math.isfinite(fp) or not 0.0 <= fp <= 1.0:
            raise AnnotationError(f"`final_progress` must be a number in [0, 1]; got {fp!r}")
        object.__setattr__(self, "final_progress", float(fp))
        c = self.catastrophic_frame
        if c is not None:
            if not _is_int(c) or not 0 <= c < self.length:
                raise AnnotationError(
                    f"`catastrophic_frame` must be None or an int in [0, length) = [0, {self.length}); got {c!r}"
                )
            object.__setattr__(self, "catastrophic_frame", int(c))
        if not isinstance(self.annotator, str) or not self.annotator.strip():
            raise AnnotationError(f"`annotator` must be a non-empty str; got {self.annotator!r}")
        if not isinstance(self.notes, str):
            raise AnnotationError(f"`notes` must be a str; got {type(self.notes).__name__}")
        _parse_time("created", self.created)
        _parse_time("updated", self.updated)
        self._check_segments()

    def _check_segments(self) -> None:
        segs = self.segments
        if isinstance(segs, (str, bytes, Mapping)) or not isinstance(segs, Iterable):
            raise AnnotationError(f"`segments` must be a sequence of AnnotatedSegment; got {type(segs).__name__}")
        segs = tuple(segs)
        for i, seg in enumerate(segs):
            if not isinstance(seg, AnnotatedSegment):
                raise AnnotationError(
                    f"`segments[{i}]` must be an AnnotatedSegment; got {type(seg).__name__} {seg!r:.80}"
                )
            if seg.end > self.length:
                raise AnnotationError(
                    f"`segments[{i}].end` must be <= length ({self.length}); got {seg.end} "
                    f"({_describe_segment(i, seg)} leaves the rollout)"
                )
        order = sorted(range(len(segs)), key=lambda i: (segs[i].start, segs[i].end))
        for a, b in zip(order, order[1:]):
            if segs[b].start < segs[a].end:
                raise AnnotationError(
                    f"`segments` must not overlap; got {_describe_segment(a, segs[a])} and "
                    f"{_describe_segment(b, segs[b])}, which share frames [{segs[b].start}, "
                    f"{min(segs[a].end, segs[b].end)})"
                )
        object.__setattr__(self, "segments", tuple(segs[i] for i in order))

    # -- derived

    @property
    def active_length(self) -> int:
        """Frames before the catastrophe (all frames when there is none)."""
        return self.length if self.catastrophic_frame is None else self.catastrophic_frame

    def frame_labels(self) -> list[str]:
        """The label of every frame (``slow`` where no segment covers it)."""
        labels = [DEFAULT_LABEL] * self.length
        for seg in self.segments:
            labels[seg.start : seg.end] = [seg.label] * (seg.end - seg.start)
        return labels

    def uncovered(self) -> list[tuple[int, int]]:
        """The ``[start, end)`` ranges that no segment covers (they count as ``slow``)."""
        gaps, cursor = [], 0
        for seg in self.segments:
            if seg.start > cursor:
                gaps.append((cursor, seg.start))
            cursor = max(cursor, seg.end)
        if cursor < self.length:
            gaps.append((cursor, self.length))
        return gaps

    def touched(self, **changes: Any) -> RolloutAnnotation:
        """A copy with ``changes`` applied and ``updated`` set to now (``created`` is kept)."""
        return dataclasses.replace(self, **changes, updated=_now())

    # -- (de)serialisation

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of one JSONL line (see the module docstring)."""
        return {
            "format": FORMAT,
            "version": VERSION,
            "episode_id": self.episode_id,
            "length": self.length,
            "final_progress": self.final_progress,
            "segments": [s.to_dict() for s in self.segments],
            "catastrophic_frame": self.catastrophic_frame,
            "annotator": self.annotator,
            "created": self.created,
            "updated": self.updated,
            "notes": self.notes,
        }

    def to_json(self) -> str:
        """One JSONL line, without the trailing newline."""
        return json.dumps(self.to_dict(), ensure_ascii=False, allow_nan=False, separators=(", ", ": "))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RolloutAnnotation:
        """Parse one JSONL object strictly: ``format`` and ``version`` must match, unknown keys are errors.

        Raises:
            AnnotationError: naming the offending key.
        """
        if not isinstance(data, Mapping):
            raise AnnotationError(f"an annotation must be a JSON object; got {type(data).__name__}")
        missing = [k for k in _REQUIRED_KEYS if k not in data]
        if missing:
            raise AnnotationError(f"annotation keys {missing} are required; got keys {sorted(data)}")
        unknown = sorted(set(data) - set(_REQUIRED_KEYS) - set(_OPTIONAL_KEYS))
        if unknown:
            raise AnnotationError(
                f"annotation keys must be among {[*_REQUIRED_KEYS, *_OPTIONAL_KEYS]}; got unknown {unknown}"
            )
        if data["format"] != FORMAT:
            raise AnnotationError(f"`format` must be {FORMAT!r}; got {data['format']!r}")
        if not _is_int(data["version"]) or data["version"] != VERSION:
            hint = " (written by a newer sarm2?)" if _is_int(data["version"]) and data["version"] > VERSION else ""
            raise AnnotationError(f"`version` must be {VERSION}; got {data['version']!r}{hint}")
        return cls(
            episode_id=data["episode_id"],
            length=data["length"],
            final_progress=data["final_progress"],
            segments=parse_segments(data["segments"]),
            catastrophic_frame=data.get("catastrophic_frame"),
            annotator=data["annotator"],
            created=data["created"],
            updated=data["updated"],
            notes=data.get("notes", ""),
        )

    @classmethod
    def from_json(cls, line: str) -> RolloutAnnotation:
        """Parse one JSONL line.

        Raises:
            AnnotationError: the line is not JSON or not a valid annotation.
        """
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            raise AnnotationError(f"not valid JSON ({exc})") from None
        return cls.from_dict(data)


# --------------------------------------------------------------------------------------------------- synthesis


def synthesize_progress(annotation: RolloutAnnotation) -> np.ndarray:
    """Dense progress curve of an annotated rollout (the rule is in the module docstring).

    Returns:
        ``(length,)`` float32 array in [0, 1]: starts at 0, reaches ``final_progress`` at the last active frame,
        0 from ``catastrophic_frame`` on.
    """
    length, final = annotation.length, annotation.final_progress
    active = annotation.active_length
    curve = np.zeros(length, dtype=np.float64)
    if active == 1:
        curve[0] = final
    elif active > 1:
        weights = np.full(active - 1, LABEL_WEIGHTS[DEFAULT_LABEL], dtype=np.int64)  # step t: frame t -> t + 1
        for seg in annotation.segments:
            if seg.start < active - 1:
                weights[seg.start : min(seg.end, active - 1)] = seg.weight
        cum = np.concatenate([[0], np.cumsum(weights)])  # (active,) exact integers
        total = int(cum[-1])
        if total > 0:
            curve[:active] = final * cum / total
        else:  # the labels cannot reach a positive final progress: linear ramp (all zeros when final == 0)
            curve[:active] = final * np.arange(active) / (active - 1)
    return np.clip(curve, 0.0, 1.0).astype(np.float32)


# --------------------------------------------------------------------------------------------------- store


class _EpisodeIds(Protocol):
    @property
    def episode_ids(self) -> list[str]: ...


@dataclasses.dataclass(frozen=True)
class BadLine:
    """A line of an annotation file that could not be parsed; ``text`` is kept verbatim on rewrites."""

    line: int
    text: str
    message: str


class AnnotationStore:
    """The rollout annotations of one dataset, in one JSONL file (format in the module docstring).

    Reads never modify the file. :meth:`upsert` re-reads the file under an advisory lock, replaces or appends one
    line and rewrites the whole file atomically (temporary file, fsync, ``os.replace``, directory fsync), so a
    crash leaves either the old or the new file. Lines that do not parse are kept verbatim, in place, on every
    rewrite: a corrupted line is reported (``load`` raises, or warns with ``strict=False``) but never lost.

    Args:
        path: the ``.jsonl`` file; it need not exist yet (its directory is created on the first write).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        #: bad lines met by the last :meth:`load` / :meth:`upsert`
        self.bad_lines: list[BadLine] = []

    def __repr__(self) -> str:
        return f"AnnotationStore({str(self.path)!r})"

    # -- reading

    def _read_lines(self) -> list[str]:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise AnnotationFileError(self.path, f"could not read the annotation file ({exc})") from exc
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = raw[: exc.start].count(b"\n") + 1
            raise AnnotationFileError(self.path, f"not UTF-8 text ({exc.reason})", line=line) from None
        return text.splitlines()

    def _parse(self, lines: Sequence[str]) -> tuple[list[RolloutAnnotation | BadLine | None], list[BadLine]]:
        """Per line: the annotation, a BadLine, or None (blank)."""
        out: list[RolloutAnnotation | BadLine | None] = []
        bad: list[BadLine] = []
        for number, text in enumerate(lines, start=1):
            if not text.strip():
                out.append(None)
                continue
            try:
                out.append(RolloutAnnotation.from_json(text))
            except AnnotationError as exc:
                b = BadLine(line=number, text=text, message=str(exc))
                out.append(b)
                bad.append(b)
        return out, bad

    def load(self, strict: bool = True) -> dict[str, RolloutAnnotation]:
        """All annotations by episode id, in file order; a missing file is an empty store.

        Args:
            strict: raise on the first bad line; when False, skip bad lines with an :class:`AnnotationWarning`
                each (they are listed in :attr:`bad_lines`).

        Raises:
            AnnotationFileError: a line is not JSON or not a valid annotation (``line`` names it), or the file is
                not UTF-8.
        """
        result, bad = self.read()
        if bad and strict:
            first = bad[0]
            more = f" ({len(bad) - 1} more bad line(s); load(strict=False) skips them)" if len(bad) > 1 else ""
            raise AnnotationFileError(self.path, first.message + more, line=first.line)
        for b in bad:
            warnings.warn(
                f"{self.path}:{b.line}: skipped a bad annotation line: {b.message}", AnnotationWarning, stacklevel=2
            )
        return result

    def read(self) -> tuple[dict[str, RolloutAnnotation], list[BadLine]]:
        """The good annotations (as :meth:`load` returns them) and the bad lines, without raising or warning
        about bad lines (for tools that show them, like the annotation page).

        Raises:
            AnnotationFileError: the file cannot be read or is not UTF-8.
        """
        parsed, bad = self._parse(self._read_lines())
        self.bad_lines = bad
        result: dict[str, RolloutAnnotation] = {}
        for item in parsed:
            if isinstance(item, RolloutAnnotation):
                if item.episode_id in result:
                    logger.debug("%s: a later line replaces the annotation of %s", self.path, item.episode_id)
                    del result[item.episode_id]
                result[item.episode_id] = item
        return result, bad

    def get(self, episode_id: str, strict: bool = False) -> RolloutAnnotation | None:
        """The annotation of ``episode_id``, or None (bad lines are skipped unless ``strict``)."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", AnnotationWarning)
            return self.load(strict=strict).get(episode_id)

    # iteration, ``len`` and ``in`` go through the strict :meth:`load`

    def __iter__(self) -> Iterator[RolloutAnnotation]:
        return iter(self.load().values())

    def __len__(self) -> int:
        return len(self.load())

    def __contains__(self, episode_id: object) -> bool:
        return episode_id in self.load()

    # -- resume

    def unannotated(self, episodes: _EpisodeIds | Iterable[str], strict: bool = False) -> list[str]:
        """Episode ids (an :class:`~sarm2_env.dataset.EpisodeDataset` or an iterable of ids) with no annotation yet,
        in the given order: the work left to do when an annotation session resumes."""
        ids = list(episodes.episode_ids) if hasattr(episodes, "episode_ids") else list(episodes)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", AnnotationWarning)
            done = self.load(strict=strict)
        return [i for i in ids if i not in done]

    def check_against(self, dataset: EpisodeDataset) -> list[str]:
        """Problems between the annotations and ``dataset``: annotated episodes missing from it, or whose
        ``length`` differs from the episode's (empty list when all is consistent)."""
        lengths = {e["episode_id"]: e["length"] for e in dataset.entries}
        problems = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", AnnotationWarning)
            annotations = self.load(strict=False)
        for eid, ann in annotations.items():
            if eid not in lengths:
                problems.append(f"episode {eid!r} is annotated but not in {dataset.root}")
            elif lengths[eid] != ann.length:
                problems.append(
                    f"episode {eid!r}: `length` must be {lengths[eid]} (the episode's frames); got {ann.length}"
                )
        return problems

    # -- writing

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # a POSIX advisory lock beside the file, so two writers never interleave read-modify-write cycles
            fd = lock_file(self.path.with_name(f".{self.path.name}.lock"))
            try:
                yield
            finally:
                if fd is not None:
                    unlock_file(fd)

    def upsert(self, annotation: RolloutAnnotation) -> RolloutAnnotation:
        """Insert or replace the annotation of ``annotation.episode_id`` and rewrite the file atomically.

        An existing annotation's ``created`` time is kept. Every other line is kept (bad lines verbatim; other
        lines of the same episode are dropped, the new one takes the place of the first).

        Returns:
            the annotation as stored.

        Raises:
            AnnotationFileError: the file cannot be read (not UTF-8) or written.
        """
        if not isinstance(annotation, RolloutAnnotation):
            raise AnnotationError(f"`annotation` must be a RolloutAnnotation; got {type(annotation).__name__}")
        with self._locked():
            parsed, bad = self._parse(self._read_lines())
            self.bad_lines = bad
            for b in bad:
                logger.warning("%s:%d: keeping a bad annotation line as is: %s", self.path, b.line, b.message)
            out_lines: list[str] = []
            placed = False
            for item in parsed:
                if item is None:
                    continue
                if isinstance(item, BadLine):
                    out_lines.append(item.text)
                elif item.episode_id == annotation.episode_id:
                    if not placed:
                        if item.created != annotation.created:
                            annotation = dataclasses.replace(annotation, created=item.created)
                        out_lines.append(annotation.to_json())
                        placed = True
                else:
                    out_lines.append(item.to_json())
            if not placed:
                out_lines.append(annotation.to_json())
            self._write(out_lines)
        return annotation

    def _write(self, lines: Sequence[str]) -> None:
        data = "".join(line + "\n" for line in lines).encode("utf-8")
        try:  # per-thread temporary name: the annotation page's server writes from its request threads
            atomic_write_bytes(self.path, data, suffix=f"-{threading.get_ident()}")
        except OSError as exc:
            raise AnnotationFileError(self.path, f"could not write the annotation file ({exc})") from exc
