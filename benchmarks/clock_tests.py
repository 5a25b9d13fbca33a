"""Episodes re-timed to tell a model that reads the scene from one that reads the clock.

Each function takes an encoded episode (:class:`rewards.data.EpisodeFeatures`, at every step or at a query rate)
and returns a new one plus the scene progress of every step, without re-rendering: rows of the episode's
per-step embeddings and states are repeated or dropped.

* :func:`held_still` - the scene frozen for a few seconds in the middle (a robot that pauses): a model that
  reads the scene keeps its prediction flat; a clock keeps rising.
* :func:`replayed` - the whole episode at another speed (0.5x by repeating every row, 2x by keeping every
  other one): a model that reads the scene follows the scene's progress; a clock runs ahead or behind.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from rewards.data import EpisodeFeatures
from sarm2_env.errors import ConfigError

#: Frames per second of the simulated station (a held-still of ``seconds`` lasts ``seconds * FPS`` steps).
FPS = 10


def _rows(feats: EpisodeFeatures, rows: np.ndarray, queries: np.ndarray) -> EpisodeFeatures:
    """``feats`` with its per-step arrays taken at ``rows`` and the model queried at ``queries`` (new steps)."""

    def take(array: np.ndarray | None) -> np.ndarray | None:
        return None if array is None else np.asarray(array)[rows]

    return dataclasses.replace(
        feats,
        frame_of_step=feats.step_rows(rows),
        state=feats.state[rows],
        primitive=feats.primitive[rows],
        progress=feats.progress[rows],
        success_flags=take(feats.success_flags),
        calibrated_progress=take(feats.calibrated_progress),
        query_indices=None if feats.query_indices is None else np.unique(queries).astype(np.int64),
    )


def scene_progress(feats: EpisodeFeatures) -> np.ndarray:
    """Time-linear progress ``t / (T - 1)`` of a demonstration: the scene's progress in demo-time units."""
    return np.arange(feats.length, dtype=np.float64) / max(feats.length - 1, 1)


def held_still(feats: EpisodeFeatures, seconds: float = 3.0) -> tuple[EpisodeFeatures, np.ndarray, np.ndarray]:
    """The episode with its middle query step held for ``seconds``.

    Returns ``(episode, hold_queries, scene)``: the new episode, the query steps inside the hold (its first one is
    the step the scene froze at), and the scene progress of every new step (flat during the hold).
    """
    if seconds <= 0:
        raise ConfigError(f"`seconds` must be > 0; got {seconds!r}")
    hold = int(round(seconds * FPS))
    queries = feats.scored_steps
    rate = int(np.median(np.diff(queries))) if len(queries) > 1 else 1
    at = int(queries[len(queries) // 2])
    rows = np.concatenate([np.arange(at + 1), np.full(hold, at), np.arange(at + 1, feats.length)])
    inside = np.arange(at, at + hold + 1, rate)
    new_queries = np.concatenate([queries[queries <= at], inside, queries[queries > at] + hold])
    scene = scene_progress(feats)[rows]
    return _rows(feats, rows, new_queries), inside, scene


def replayed(feats: EpisodeFeatures, speed: float) -> tuple[EpisodeFeatures, np.ndarray]:
    """The episode played at ``speed`` 0.5 (every row twice) or 2 (every other row).

    Returns ``(episode, scene)``: the new episode (queried at the old query steps' new positions) and the scene
    progress of every new step.
    """
    queries = feats.scored_steps
    if speed == 0.5:
        rows = np.repeat(np.arange(feats.length), 2)
        new_queries = 2 * queries
    elif speed == 2.0:
        rows = np.arange(0, feats.length, 2)
        new_queries = queries // 2
    else:
        raise ConfigError(f"`speed` must be 0.5 or 2.0; got {speed!r}")
    return _rows(feats, rows, new_queries), scene_progress(feats)[rows]
