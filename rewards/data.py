"""Per-episode model inputs (frame embeddings, state, labels) built from a dataset and its embedding cache."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from sarm2_env.constants import CAMERAS, STATE_DIM
from sarm2_env.errors import DatasetError, InputShapeError, NonFiniteError

#: Bumped when :meth:`EpisodeFeatures.from_episode` changes what a model reads, so that stamped predictions and
#: adapted checkpoints made from older features are made again (2: at a query-rate episode's steps, the state
#: recorded with the frame each step sees; it was the state of an earlier step).
FEATURES_VERSION = 2


@dataclasses.dataclass(frozen=True, eq=False)
class EpisodeFeatures:
    """What a reward model needs of one episode, frames already encoded.

    ``embeddings (K, C, D)`` in :data:`CAMERAS` order, one row per rendered frame (or ``(T, 0, 0)`` for backends
    that need no embeddings): float16 when built by :meth:`from_episode` (the precision encoders round to and the
    cache stores, so nothing is lost, at half the memory of float32; models cast the windows they read);
    ``state (T, 14)``, ``primitive (T,)`` label indices (the expert's; -1 where unknown), ``progress (T,)`` physics
    ground truth from the simulator (for evaluation only: training never reads it).

    An episode recorded at the reward's query rate (frames rendered only at some steps) has ``query_indices``:
    those steps, and ``frame_of_step (T,)``: the embedding row each step sees, its newest rendered frame (held
    until the next rendered step), so every window a model builds reads the newest frame it could have seen, and
    its ``state`` is the one recorded with that frame. Read per-step embeddings with :meth:`embeddings_at`; the
    rows stay compact (a tenth of the memory at 1 Hz queries). Models predict at the query steps only and
    evaluation scores those steps (:attr:`scored_steps`).
    """

    episode_id: str
    task_id: str
    instruction: str
    success: bool
    skill: float
    embeddings: np.ndarray
    state: np.ndarray
    primitive: np.ndarray
    progress: np.ndarray
    #: per-frame ground-truth success (evaluation and the ``sparse`` reference only); None when unknown
    success_flags: np.ndarray | None = None
    #: the steps whose frames were rendered, for an episode recorded at a query rate; None = every step
    query_indices: np.ndarray | None = None
    #: physics progress in demo-time units (simulated episodes; evaluation only), None where unknown
    calibrated_progress: np.ndarray | None = None
    #: the env seed the episode was recorded with (pairs an episode with its re-recordings), None where unknown
    seed: int | None = None
    #: ``(T,)`` the ``embeddings`` row each step sees; None = one row per step
    frame_of_step: np.ndarray | None = None

    @property
    def length(self) -> int:
        """Steps in the episode."""
        return int(self.state.shape[0])

    def step_rows(self, steps: np.ndarray | None = None) -> np.ndarray:
        """The ``embeddings`` rows that ``steps`` (any integer array; default every step) see."""
        steps = np.arange(self.length, dtype=np.int64) if steps is None else np.asarray(steps, dtype=np.int64)
        return steps if self.frame_of_step is None else np.asarray(self.frame_of_step, dtype=np.int64)[steps]

    def embeddings_at(self, steps: np.ndarray | None = None) -> np.ndarray:
        """Embeddings seen at ``steps`` (any integer array, e.g. ``(B, W)`` windows): ``steps.shape + (C, D)``."""
        return self.embeddings[self.step_rows(steps)]

    @property
    def physics_progress(self) -> np.ndarray:
        """The evaluation's physics ground truth: ``calibrated_progress`` (demo-time units, what models learn)
        where the episode has it, else the raw ``progress``."""
        return self.progress if self.calibrated_progress is None else self.calibrated_progress

    @property
    def scored_steps(self) -> np.ndarray:
        """The steps a model is queried at and scored on: ``query_indices``, or every step."""
        if self.query_indices is None:
            return np.arange(self.length, dtype=np.int64)
        return np.asarray(self.query_indices, dtype=np.int64)

    @classmethod
    def from_episode(cls, episode, embeddings: Mapping[str, np.ndarray] | np.ndarray) -> EpisodeFeatures:
        """Pair a :class:`sarm2_env.dataset.Episode` with its per-camera embeddings (a mapping or a (T, C, D) array)."""
        # float16 is the precision embeddings are encoded at (ImageEncoder.encode rounds through it): exact, and
        # half the memory of a benchmark's hundreds of thousands of (C, D) rows
        stacked = stack_cameras(embeddings, name="embeddings").astype(np.float16)
        frame_index = getattr(episode, "frame_index", None)
        frame_count = episode.length if frame_index is None else len(frame_index)
        if stacked.shape[0] != frame_count:
            raise InputShapeError(
                f"`embeddings`: expected {frame_count} frames for episode {episode.episode_id!r}; "
                f"got {stacked.shape[0]}"
            )
        rows = None
        if frame_index is not None:  # rendered at a query rate: each step sees its newest rendered frame
            from sarm2_env.dataset import hold_rows

            rows = hold_rows(frame_index, episode.length)
        return cls(
            **episode_labels(episode),
            embeddings=stacked,
            # the state a model reads is the one recorded with the frame it sees (the step that frame was rendered
            # at), not the state of an earlier step
            state=np.asarray(
                episode.state if rows is None else episode.state[np.asarray(frame_index, dtype=np.int64)[rows]],
                dtype=np.float32,
            ),
            query_indices=None if frame_index is None else np.asarray(frame_index, dtype=np.int64),
            seed=int(episode.seed),
            frame_of_step=rows,
        )


def stacked_rows(episodes: Sequence[EpisodeFeatures], device: Any) -> tuple[Any, Any]:
    """Every episode's embedding rows in one float16 tensor ``(R, C, D)`` on ``device``, and ``(N,)`` the row each
    of the episodes' ``N`` steps sees (episodes in order, steps within each): what the training stores gather
    windows from, at the memory of the rendered frames only."""
    import torch

    rows, offset = [], 0
    for e in episodes:
        rows.append(e.step_rows() + offset)
        offset += len(e.embeddings)
    emb = torch.from_numpy(np.concatenate([np.asarray(e.embeddings, dtype=np.float16) for e in episodes]))
    return emb.to(device), torch.from_numpy(np.concatenate(rows)).to(device)


def episode_labels(episode) -> dict[str, Any]:
    """The :class:`EpisodeFeatures` fields an episode's record gives as they are (identity, outcome and per-step
    labels, converted to their dtypes): all but ``embeddings``, ``state``, ``query_indices`` and ``seed``."""
    return {
        "episode_id": episode.episode_id,
        "task_id": episode.task_id,
        "instruction": episode.instruction,
        "success": bool(episode.success),
        "skill": float(episode.skill),
        "primitive": np.asarray(episode.primitive, dtype=np.int64),
        "progress": np.asarray(episode.progress, dtype=np.float32),
        "success_flags": np.asarray(episode.success_flags, dtype=bool),
        "calibrated_progress": calibrated_progress_of(episode),
    }


def calibrated_progress_of(episode) -> np.ndarray | None:
    """An episode's recorded calibrated progress as float32; None where it has none (recorded before it existed)."""
    values = getattr(episode, "calibrated_progress", None)
    return None if values is None else np.asarray(values, dtype=np.float32)


def require_every_frame(episodes: Sequence[EpisodeFeatures], what: str) -> None:
    """Refuse episodes recorded at a query rate for training: a window there may end on a held frame, whose
    time-linear target would not match what the frame shows.

    Raises:
        DatasetError: naming the first such episode.
    """
    for episode in episodes:
        if episode.query_indices is not None:
            raise DatasetError(
                f"{what}: episode {episode.episode_id!r} has frames only at {len(episode.query_indices)} of its "
                f"{episode.length} steps (recorded with render_every > 1, for evaluation); training needs a frame at "
                "every step: record training demos with the default render_every=1"
            )


def adaptation_targets(
    episodes: Sequence[EpisodeFeatures], targets: Sequence[np.ndarray | None], what: str = "adaptation"
) -> list[np.ndarray]:
    """Per-step target curves ``(T,)`` in [0, 1] for reward-model adaptation (RM1 -> RM2), one per episode.

    A curve of ``targets`` is an annotated rollout's progress (:func:`agents.annotation.synthesize_progress`); None
    means time-linear progress ``t / (T - 1)`` (a demonstration). For an episode recorded at a query rate the curve
    is held like its frames: each step gets the value at the newest rendered frame, so a training window's target
    is the progress of the frame it shows, never of a frame it cannot see.

    Raises:
        InputShapeError: ``targets`` not one per episode, or a curve of the wrong length.
        NonFiniteError: a curve with NaN or inf.
    """
    if len(targets) != len(episodes):
        raise InputShapeError(f"`targets`: expected one entry per episode ({len(episodes)}); got {len(targets)}")
    curves = []
    for k, (episode, curve) in enumerate(zip(episodes, targets)):
        n = episode.length
        if curve is None:
            values = np.arange(n, dtype=np.float32) / max(n - 1, 1)
        else:
            values = np.asarray(curve, dtype=np.float32)
            if values.shape != (n,):
                raise InputShapeError(
                    f"`targets[{k}]` ({episode.episode_id!r}, {what}): expected shape ({n},); got {values.shape}"
                )
            if not np.isfinite(values).all():
                raise NonFiniteError(f"`targets[{k}]` ({episode.episode_id!r}, {what}): expected finite values")
        if episode.query_indices is not None:  # the newest rendered step at or before each step
            rendered = np.asarray(episode.query_indices, dtype=np.int64)
            values = values[rendered[np.searchsorted(rendered, np.arange(n), side="right") - 1]]
        curves.append(np.clip(values, 0.0, 1.0))
    return curves


def stack_cameras(embeddings: Mapping[str, np.ndarray] | np.ndarray, name: str = "frame_embeddings") -> np.ndarray:
    """``{camera: (..., D)}`` or an array ``(..., C, D)`` -> float32 ``(..., C, D)`` in :data:`CAMERAS` order.

    Raises :class:`InputShapeError` for a missing camera or mismatched shapes, :class:`NonFiniteError` for NaN.
    """
    if isinstance(embeddings, Mapping):
        missing = [c for c in CAMERAS if c not in embeddings]
        if missing:
            raise InputShapeError(f"`{name}`: expected cameras {list(CAMERAS)}; missing {missing}")
        parts = [np.asarray(embeddings[c], dtype=np.float32) for c in CAMERAS]
        shapes = {p.shape for p in parts}
        if len(shapes) != 1:
            raise InputShapeError(f"`{name}`: expected one shape for every camera; got {sorted(map(str, shapes))}")
        array = np.stack(parts, axis=-2)
    else:
        array = np.asarray(embeddings, dtype=np.float32)
        if array.ndim < 2 or array.shape[-2] != len(CAMERAS):
            raise InputShapeError(
                f"`{name}`: expected an array of shape (..., {len(CAMERAS)}, D) (cameras {list(CAMERAS)}); "
                f"got shape {array.shape}"
            )
    if not np.isfinite(array).all():
        raise NonFiniteError(f"`{name}`: expected finite values; got NaN or inf")
    return array


def check_state(state: np.ndarray, leading: tuple[int, ...] = (), name: str = "state") -> np.ndarray:
    """Validate a ``(*leading, 14)`` state array: shape and finiteness."""
    array = np.asarray(state, dtype=np.float32)
    expected = (*leading, STATE_DIM)
    if array.shape != expected:
        raise InputShapeError(f"`{name}`: expected shape {expected}; got {array.shape}")
    if not np.isfinite(array).all():
        raise NonFiniteError(f"`{name}`: expected finite values; got NaN or inf")
    return array


def load_features(
    dataset: str | os.PathLike | object,
    encoder,
    *,
    episodes: Sequence[int] | None = None,
    progress: bool = False,
    cache_root: str | os.PathLike | None = None,
) -> list[EpisodeFeatures]:
    """Encode (once, through the on-disk :class:`rewards.cache.EmbeddingCache`) and load episodes' features."""
    from rewards.cache import EmbeddingCache
    from sarm2_env.dataset import EpisodeDataset

    data = dataset if isinstance(dataset, EpisodeDataset) else EpisodeDataset(dataset)
    cache = EmbeddingCache(data, encoder, root=cache_root)
    indices = list(range(len(data))) if episodes is None else list(episodes)
    cache.ensure(indices, progress=progress)
    return [EpisodeFeatures.from_episode(data.load(i, frames=False), cache.get(i)) for i in indices]


def split_episodes(features: Sequence[EpisodeFeatures], val_fraction: float, seed: int = 0) -> tuple[list, list]:
    """Hold out ``val_fraction`` of the episodes of each task (at least one when a task has 2+)."""
    rng = np.random.default_rng(seed)
    train, val = [], []
    for task in sorted({f.task_id for f in features}):
        items = [f for f in features if f.task_id == task]
        order = rng.permutation(len(items))
        n_val = int(round(val_fraction * len(items)))
        if val_fraction > 0 and n_val == 0 and len(items) >= 2:
            n_val = 1
        val += [items[i] for i in order[:n_val]]
        train += [items[i] for i in order[n_val:]]
    return train, val
