"""Annotations from simulation: :func:`auto_annotate` labels a rollout from its ground-truth progress, as a
careful human would with the annotation page (segments of fast / slow / adjust / mistake, the final progress, a
catastrophic frame), so the adaptation pipeline can run without a person in the loop.

The schema, the curve synthesis and the store are in :mod:`agents.annotation`.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Protocol

import numpy as np

from agents.annotation import (
    LABEL_WEIGHTS,
    LABELS,
    AnnotatedSegment,
    AnnotationError,
    RolloutAnnotation,
    _is_int,
    _is_number,
)

__all__ = ["AutoAnnotateConfig", "auto_annotate", "find_catastrophe"]

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class AutoAnnotateConfig:
    """How :func:`auto_annotate` turns ground-truth progress into labels.

    Args:
        window: steps averaged into each step's slope (a centred window, shrunk at the ends); 1 = raw steps.
        min_segment: runs of one label shorter than this many frames are merged into their longer neighbour.
        flat_slope: per-frame slopes with ``|slope| <= flat_slope`` everywhere make the whole rollout ``adjust``
            (no measurable motion, so no speed can be fitted).
        drop_threshold: a catastrophe is a frame where progress falls more than this below its running maximum
            and never comes back above that level; ``None`` disables catastrophe detection.
        annotator: the ``annotator`` field of the result.
    """

    window: int = 5
    min_segment: int = 3
    flat_slope: float = 1e-5
    drop_threshold: float | None = 0.25
    annotator: str = "auto"

    def __post_init__(self) -> None:
        if not _is_int(self.window) or self.window < 1:
            raise AnnotationError(f"`window` must be an int >= 1; got {self.window!r}")
        if not _is_int(self.min_segment) or self.min_segment < 1:
            raise AnnotationError(f"`min_segment` must be an int >= 1; got {self.min_segment!r}")
        if not _is_number(self.flat_slope) or not self.flat_slope >= 0:
            raise AnnotationError(f"`flat_slope` must be a number >= 0; got {self.flat_slope!r}")
        dt = self.drop_threshold
        if dt is not None and (not _is_number(dt) or not 0 < dt <= 1):
            raise AnnotationError(f"`drop_threshold` must be None or a number in (0, 1]; got {dt!r}")
        if not isinstance(self.annotator, str) or not self.annotator.strip():
            raise AnnotationError(f"`annotator` must be a non-empty str; got {self.annotator!r}")


class _HasProgress(Protocol):
    @property
    def episode_id(self) -> str: ...

    @property
    def progress(self) -> np.ndarray: ...


def _window_slopes(progress: np.ndarray, window: int) -> np.ndarray:
    """Mean step (t -> t+1) over the steps ``[t - h, t + window - 1 - h]`` clipped to the rollout."""
    steps = len(progress) - 1
    h = (window - 1) // 2
    t = np.arange(steps)
    lo = np.clip(t - h, 0, steps)
    hi = np.clip(t - h + window, 0, steps)  # exclusive step index, so frame index of the window's end
    return (progress[hi] - progress[lo]) / np.maximum(hi - lo, 1)


def _fit_speed(slopes: np.ndarray) -> tuple[float, np.ndarray]:
    """The speed ``s`` and per-step weights (2, 1, 0, -1) minimising ``sum_t (slope_t - w_t s)^2``."""
    levels = np.array([LABEL_WEIGHTS[name] for name in LABELS], dtype=np.float64)  # (4,)
    positive = slopes[slopes > 0]
    scale = float(np.max(np.abs(slopes)))
    starts = {scale / 2, scale}
    if positive.size:
        starts |= {float(q) for q in np.quantile(positive, [0.25, 0.5, 0.75])}
    best: tuple[float, float, np.ndarray] | None = None
    for s in sorted(starts):
        for _ in range(20):
            idx = np.argmin((slopes[:, None] - levels[None, :] * s) ** 2, axis=1)  # (steps,)
            w = levels[idx]
            denom = float(np.sum(w * w))
            new_s = float(np.sum(w * slopes)) / denom if denom > 0 else s
            if new_s <= 0 or abs(new_s - s) <= 1e-12 * max(s, 1e-12):
                break
            s = new_s
        idx = np.argmin((slopes[:, None] - levels[None, :] * s) ** 2, axis=1)
        cost = float(np.sum((slopes - levels[idx] * s) ** 2))
        if best is None or cost < best[0]:
            best = (cost, s, idx)
    if best is None:  # pragma: no cover - ``starts`` is never empty
        raise AnnotationError("`slopes` must be non-empty; got none")
    return best[1], best[2]


def _merge_short_runs(labels: list[int], min_len: int) -> list[tuple[int, int, int]]:
    """Runs ``(start, end, label)`` of ``labels`` with runs shorter than ``min_len`` merged into a neighbour."""
    runs: list[list[int]] = []
    for i, lab in enumerate(labels):
        if runs and runs[-1][2] == lab:
            runs[-1][1] = i + 1
        else:
            runs.append([i, i + 1, lab])
    while len(runs) > 1:
        short = [k for k, r in enumerate(runs) if r[1] - r[0] < min_len]
        if not short:
            break
        k = min(short, key=lambda k: (runs[k][1] - runs[k][0], k))
        left = runs[k - 1] if k > 0 else None
        right = runs[k + 1] if k + 1 < len(runs) else None
        if right is None or (left is not None and left[1] - left[0] >= right[1] - right[0]):
            left[1] = runs[k][1]  # type: ignore[index]
            del runs[k]
        else:
            right[0] = runs[k][0]
            del runs[k]
        merged: list[list[int]] = []
        for r in runs:  # neighbours with equal labels become one run
            if merged and merged[-1][2] == r[2]:
                merged[-1][1] = r[1]
            else:
                merged.append(r)
        runs = merged
    return [(r[0], r[1], r[2]) for r in runs]


def find_catastrophe(progress: np.ndarray, drop_threshold: float) -> int | None:
    """The first frame where ``progress`` is more than ``drop_threshold`` below its running maximum and stays
    there (never climbs back above ``running max - drop_threshold``), or None."""
    p = np.asarray(progress, dtype=np.float64)
    if len(p) < 2:
        return None
    peak = np.maximum.accumulate(p)
    later_max = np.maximum.accumulate(p[::-1])[::-1]  # max of p[t:]
    for c in range(1, len(p)):
        level = peak[c - 1] - drop_threshold
        if p[c] < level and later_max[c] < level:
            return c
    return None


def auto_annotate(
    episode: _HasProgress,
    config: AutoAnnotateConfig | None = None,
    *,
    episode_id: str | None = None,
) -> RolloutAnnotation:
    """Annotate a simulated rollout from its ground-truth progress, so RM adaptation can run unattended.

    Per step, the progress slope averaged over ``config.window`` steps is matched to the label slopes
    ``(2, 1, 0, -1) * s``, with the speed ``s`` fitted to the rollout (least squares over the labelled steps);
    short runs are merged; ``final_progress`` is the last ground-truth progress (before the catastrophe, if any);
    the catastrophe is :func:`find_catastrophe`. Segments cover the active frames ``[0, catastrophic_frame)``
    (or the whole rollout).

    Args:
        episode: anything with ``progress`` (T,) in [0, 1] and ``episode_id`` (e.g. a
            :class:`~sarm2_env.dataset.Episode`).
        config: thresholds; defaults to :class:`AutoAnnotateConfig`.
        episode_id: overrides ``episode.episode_id`` (required when that is empty).

    Raises:
        AnnotationError: no episode id, or progress that is not a finite 1-D array in [0, 1].
    """
    config = config or AutoAnnotateConfig()
    eid = episode_id if episode_id is not None else getattr(episode, "episode_id", "")
    p = np.asarray(episode.progress, dtype=np.float64)
    if p.ndim != 1 or p.size < 1 or not np.all(np.isfinite(p)):
        raise AnnotationError(f"`progress` must be a finite (T,) array with T >= 1; got shape {p.shape}")
    if p.min() < -1e-6 or p.max() > 1 + 1e-6:
        raise AnnotationError(f"`progress` must lie in [0, 1]; got values in [{p.min():g}, {p.max():g}]")
    p = np.clip(p, 0.0, 1.0)
    length = len(p)
    cat = find_catastrophe(p, config.drop_threshold) if config.drop_threshold is not None else None
    active = length if cat is None else cat
    final = float(p[active - 1]) if active > 0 else 0.0
    segments: list[AnnotatedSegment] = []
    if active >= 2:
        slopes = _window_slopes(p[:active], config.window)  # (active - 1,)
        if float(np.max(np.abs(slopes))) <= config.flat_slope:
            labels = [LABELS.index("adjust")] * len(slopes)
        else:
            _, labels_arr = _fit_speed(slopes)
            labels = [int(i) for i in labels_arr]
        runs = _merge_short_runs(labels, config.min_segment)
        for k, (start, end, lab) in enumerate(runs):
            segments.append(AnnotatedSegment(start, active if k == len(runs) - 1 else end, LABELS[lab]))
    elif active == 1:
        segments.append(AnnotatedSegment(0, 1, "slow"))
    ann = RolloutAnnotation(
        episode_id=eid,
        length=length,
        final_progress=min(max(final, 0.0), 1.0),
        segments=tuple(segments),
        catastrophic_frame=cat,
        annotator=config.annotator,
        notes=f"auto_annotate(window={config.window}, min_segment={config.min_segment}, "
        f"drop_threshold={config.drop_threshold}) from ground-truth progress",
    )
    logger.debug("auto-annotated %s: %d segments, catastrophe %s", eid, len(segments), cat)
    return ann
