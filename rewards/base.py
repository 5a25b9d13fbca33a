"""The one reward-model interface every backend implements (docs/design.md §3).

Two entry points that must agree frame for frame:

* offline ``predict_episode(episode) -> RewardOutput`` over a whole recorded episode;
* online ``reset(task)`` then ``step(frame_embeddings, state) -> float`` using only the past.

Batched online use (vector envs) goes through :meth:`RewardModel.start` / :meth:`RewardModel.step_batch`
with one :class:`Session` per sub-env. Backends that learn implement :class:`TrainableRewardModel` as well
(config class, ``fit``, ``save`` / ``load``, optionally ``adapt``); the contract is checked when the class is
defined, so callers read ``cls.trainable`` / ``cls.adaptable`` instead of probing for methods.

A session keeps the episode's frame embeddings in memory, keyed by frame index, so every frame is encoded
once however many windows later reuse it.
"""

from __future__ import annotations

import abc
import dataclasses
import inspect
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from rewards.data import EpisodeFeatures, check_state, stack_cameras
from sarm2_env.constants import PRIMITIVES
from sarm2_env.errors import InputShapeError

if TYPE_CHECKING:  # rewards.train_loop imports torch; the base stays importable without it
    from typing_extensions import Unpack

    from rewards.train_loop import FitOptions

#: What the benchmark reports a backend as (``RewardModel.role``): the method under test, its ablations, the
#: published methods it is compared with, and references that read ground truth or the clock (never "the
#: strongest baseline"); ``upper_bound`` marks a variant fed privileged ground truth.
ROLES = ("model", "ablation", "published_baseline", "upper_bound", "reference")


@dataclasses.dataclass
class RewardOutput:
    """Per-frame predictions for one episode.

    ``progress (T,)`` in [0, 1]; ``primitive_probs (T, 22)`` when the model estimates primitives;
    ``normalization`` says how raw scores became progress (``"none"``, ``"per-episode-minmax"``, ...);
    ``query_indices`` are the frames the model was actually queried at (others interpolated);
    ``extras`` holds model-specific per-frame arrays (e.g. MoE ``expert_weights (T, E)``, raw log-probs).
    """

    progress: np.ndarray
    primitive_probs: np.ndarray | None = None
    normalization: str = "none"
    query_indices: np.ndarray | None = None
    extras: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)

    @property
    def primitive(self) -> list[str] | None:
        """Most likely primitive name per frame, when the model estimates primitives."""
        if self.primitive_probs is None:
            return None
        return [PRIMITIVES[i] for i in self.primitive_probs.argmax(-1)]


def spread_to_steps(progress: np.ndarray, per_step: Mapping[str, np.ndarray | None], steps: np.ndarray, length: int):
    """Predictions made at ``steps`` only -> every step ``0..length-1``.

    ``progress`` is interpolated linearly between query steps; every array of ``per_step`` (primitive
    probabilities, gate weights, ...) keeps the newest query step's row. When ``steps`` is every step the arrays
    come back unchanged. Returns ``(progress (length,), {name: (length, ...) or None})``.
    """
    steps = np.asarray(steps, dtype=np.int64)
    if len(steps) == length:
        return progress, dict(per_step)
    from sarm2_env.dataset import hold_rows

    every = np.arange(length)
    rows = hold_rows(steps, length)
    dense = np.interp(every, steps, np.asarray(progress, dtype=np.float64)).astype(np.float32)
    return dense, {k: None if v is None else np.asarray(v)[rows] for k, v in per_step.items()}


@dataclasses.dataclass
class Session:
    """Online state of one live episode: the in-memory embedding cache and the last prediction."""

    task: str
    instruction: str
    embeddings: list[np.ndarray] = dataclasses.field(default_factory=list)  # per frame: (C, D)
    states: list[np.ndarray] = dataclasses.field(default_factory=list)  # per frame: (S,)
    context: dict[str, Any] = dataclasses.field(default_factory=dict)
    last: dict[str, Any] = dataclasses.field(default_factory=dict)
    #: the env's info dict of the newest step, set by the wrappers before ``step_batch`` (only reference
    #: backends such as ``oracle`` and ``sparse`` may read it: it holds ground truth)
    info: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def frame(self) -> int:
        """Index of the newest frame (-1 before the first step)."""
        return len(self.embeddings) - 1


#: Encoding at least this many frames (all cameras) shows a progress bar on a terminal (about 10 s on 2 CPU cores).
PROGRESS_MIN_FRAMES = 300


def encode_with_progress(
    encoder, frames: Mapping[str, np.ndarray], progress: bool | None = None
) -> dict[str, np.ndarray]:
    """Embed each camera's frames with ``encoder``, with a progress bar on long jobs.

    ``progress``: None shows the bar on a terminal for at least :data:`PROGRESS_MIN_FRAMES` frames; True or
    False force it on or off. Chunks are whole encoder batches, so the embeddings equal one ``encode`` call's.
    """
    total = sum(len(v) for v in frames.values())
    show = progress if progress is not None else (total >= PROGRESS_MIN_FRAMES and sys.stderr.isatty())
    if not show:
        return {cam: encoder.encode(v) for cam, v in frames.items()}
    from tqdm import tqdm

    chunk = max(1, int(getattr(encoder, "batch_size", 32))) * 4
    out = {}
    with tqdm(total=total, unit="frame", desc=f"encoding {len(frames)} camera(s)", file=sys.stderr) as bar:
        for cam, v in frames.items():
            parts = []
            for start in range(0, len(v), chunk):
                parts.append(encoder.encode(v[start : start + chunk]))
                bar.update(len(v[start : start + chunk]))
            out[cam] = np.concatenate(parts) if parts else encoder.encode(v)
    return out


class RewardModel(abc.ABC):
    """Base class of every reward backend. Subclasses set ``name`` and implement the abstract methods."""

    name: ClassVar[str] = ""
    #: one of :data:`ROLES`; the benchmark groups its rows by it
    role: ClassVar[str] = "model"
    #: subclasses of :class:`TrainableRewardModel` (set there, not by hand)
    trainable: ClassVar[bool] = False
    #: backends with ``adapt(episodes, targets)``: the paper's one-time RM1 -> RM2 adaptation
    adaptable: ClassVar[bool] = False
    #: ``fit`` takes ``negatives=``: episodes that do not advance the task, trained towards their physics progress
    trains_on_negatives: ClassVar[bool] = False
    #: zero-shot judges that need a vision-language model (``vlm=...``) to be built
    requires_vlm: ClassVar[bool] = False
    #: the config dataclass of a trainable backend (:class:`TrainableRewardModel` requires one)
    config_cls: ClassVar[Any] = None
    #: name of the shipped checkpoint directory under ``rewards/checkpoints`` (``checkpoint="default"``), if any
    default_checkpoint: ClassVar[str | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.role not in ROLES:
            raise TypeError(f"{cls.__qualname__}.role must be one of {ROLES}; got {cls.role!r}")
        trainable_base = globals().get("TrainableRewardModel")  # None while that class itself is being defined
        if cls.trainable and trainable_base is not None and not issubclass(cls, trainable_base):
            raise TypeError(f"{cls.__qualname__}: a trainable backend derives from TrainableRewardModel")

    def __init__(self) -> None:
        self._session: Session | None = None
        self._image_encoder = None

    # --- description -------------------------------------------------------------------------------
    @property
    def label(self) -> str:
        """Human label for tables and plots (includes anything that qualifies the numbers)."""
        return self.name

    @property
    def encoder_spec(self):
        """The :class:`rewards.encoders.EncoderSpec` this model reads, or ``None`` if it takes raw frames."""
        return None

    def covers(self, task: str) -> bool:
        """Whether the model was trained for (or can judge) ``task`` (a task id or instruction)."""
        return True

    @property
    def needs_frames(self) -> bool:
        """Whether :meth:`predict_episode` needs the episode's raw frames (True for pixel judges such as VLMs);
        embedding models take cached embeddings, reference backends read ground truth only."""
        return self.encoder_spec is None

    # --- encoding ----------------------------------------------------------------------------------
    @property
    def image_encoder(self):
        """The frozen image encoder matching :attr:`encoder_spec`, built on first use."""
        if self._image_encoder is None:
            from rewards.encoders import image_encoder_from_spec

            self._image_encoder = image_encoder_from_spec(self.encoder_spec, **self._encoder_kwargs())
        return self._image_encoder

    def _encoder_kwargs(self) -> dict[str, Any]:
        return {}

    def encode_frames(self, frames: np.ndarray) -> np.ndarray:
        """What :meth:`step_batch` consumes, from raw frames ``(N, C, H, W, 3)`` uint8 -> ``(N, C, ...)``.

        Embedding models encode all ``N * C`` frames in one encoder call -> ``(N, C, D)``. Models that judge
        raw pixels (VLMs, the ``encoder_spec is None`` case) return the frames unchanged.
        """
        frames = np.asarray(frames)
        if frames.ndim != 5 or frames.shape[-1] != 3:
            raise InputShapeError(f"`frames`: expected shape (N, C, H, W, 3); got {frames.shape}")
        if self.encoder_spec is None:
            return frames
        n, c = frames.shape[:2]
        return self.image_encoder.encode(frames.reshape(n * c, *frames.shape[2:])).reshape(n, c, -1)

    def set_image_encoder(self, encoder) -> None:
        """Use an already-built encoder (its spec must match the model's)."""
        from sarm2_env.errors import CheckpointError

        if self.encoder_spec is not None and encoder.spec != self.encoder_spec:
            raise CheckpointError(
                f"`encoder`: this {self.name} model was trained on {self.encoder_spec.key}; got {encoder.spec.key}"
            )
        self._image_encoder = encoder

    def features(self, episode, embeddings: Mapping[str, np.ndarray] | np.ndarray | None = None) -> EpisodeFeatures:
        """An :class:`EpisodeFeatures` from features, or an episode plus embeddings, or an episode with frames."""
        if isinstance(episode, EpisodeFeatures):
            return episode
        if embeddings is None:
            if not getattr(episode, "frames", None):
                raise InputShapeError(
                    "`episode`: expected frames (load it with frames=True) or pass `embeddings`; got neither"
                )
            from sarm2_env.constants import CAMERAS

            missing = [c for c in CAMERAS if c not in episode.frames]
            if missing:
                raise InputShapeError(f"`episode.frames`: expected cameras {list(CAMERAS)}; missing {missing}")
            embeddings = encode_with_progress(self.image_encoder, {cam: episode.frames[cam] for cam in CAMERAS})
        return EpisodeFeatures.from_episode(episode, embeddings)

    # --- offline -----------------------------------------------------------------------------------
    @abc.abstractmethod
    def predict_episode(self, episode, embeddings=None) -> RewardOutput:
        """Per-frame progress for a whole episode (features, or an episode with frames or embeddings)."""

    # --- online ------------------------------------------------------------------------------------
    @abc.abstractmethod
    def start(self, task: str) -> Session:
        """A new online session for an episode of ``task`` (a task id or an instruction)."""

    @abc.abstractmethod
    def step_batch(self, sessions: Sequence[Session], frame_embeddings: np.ndarray, states: np.ndarray) -> np.ndarray:
        """Advance each session by one frame.

        ``frame_embeddings (N, C, D)`` and ``states (N, 14)`` -> progress ``(N,)``; each session's ``last``
        is updated with the prediction's details (primitive, gate group, ...).
        """

    def reset(self, task: str) -> None:
        """Start the single online episode used by :meth:`step`."""
        self._session = self.start(task)

    def step(self, frame_embeddings: Mapping[str, np.ndarray] | np.ndarray, state: np.ndarray) -> float:
        """Progress at the newest frame, from this frame's per-camera embeddings and the 14-d state."""
        if self._session is None:
            from sarm2_env.errors import SARM2Error

            raise SARM2Error(f"{type(self).__name__}.step called before reset(task)")
        emb = stack_cameras(frame_embeddings)
        if emb.ndim != 2:
            raise InputShapeError(f"`frame_embeddings`: expected one frame of shape (C, D); got {emb.shape}")
        state = check_state(state)
        return float(self.step_batch([self._session], emb[None], state[None])[0])

    @property
    def session(self) -> Session | None:
        """The session of :meth:`reset` / :meth:`step` (``last`` holds the newest prediction's details)."""
        return self._session


class TrainableRewardModel(RewardModel):
    """The contract of a backend that learns: a config class, ``fit``, ``save`` / ``load``, and ``adapt`` where
    ``adaptable`` is set.

    Checked when a concrete subclass is defined: ``config_cls`` must be a class with ``to_dict``, ``from_dict``
    and ``preset`` (the benchmark builds configs by preset name plus overrides and stores them as dicts).
    """

    trainable = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if inspect.isabstract(cls) or cls.__name__.startswith("_"):
            return
        config_cls = getattr(cls, "config_cls", None)
        missing = [m for m in ("to_dict", "from_dict", "preset") if not hasattr(config_cls, m)]
        if not isinstance(config_cls, type) or missing:
            raise TypeError(
                f"{cls.__qualname__}: a trainable reward model declares `config_cls`, a class with to_dict, from_dict "
                f"and preset; got {config_cls!r}" + (f" (missing {', '.join(missing)})" if config_cls else "")
            )
        if cls.adaptable and cls.adapt is TrainableRewardModel.adapt:
            raise TypeError(f"{cls.__qualname__}: `adaptable` is set but the class does not implement adapt()")

    @abc.abstractmethod
    def fit(
        self,
        train: Sequence[EpisodeFeatures],
        val: Sequence[EpisodeFeatures] = (),
        *,
        include_failures: bool = False,
        **options: Unpack[FitOptions],
    ) -> Any:
        """Train on ``train`` (successful demonstrations, unless ``include_failures``) and validate on ``val``;
        ``options`` are the run options of :class:`rewards.train_loop.FitOptions` (``out_dir=`` writes the checkpoint
        as training goes). A backend may take more keywords (SARM2: ``negatives=``)."""

    @abc.abstractmethod
    def save(self, path: str | os.PathLike, *, half: bool = False) -> Path:
        """Write a checkpoint directory that :meth:`load` reads back."""

    @classmethod
    @abc.abstractmethod
    def load(cls, path: str | os.PathLike, **kwargs: Any) -> TrainableRewardModel:
        """A model from a checkpoint directory (``"default"``: the shipped one, where the backend has one)."""

    def adapt(
        self,
        episodes: Sequence[EpisodeFeatures],
        targets: Sequence[np.ndarray | None],
        *,
        steps: int = 500,
        lr_scale: float = 0.1,
        seed: int = 0,
        progress: bool = False,
    ) -> Any:
        """One-time adaptation on annotated rollouts (backends with ``adaptable = True`` implement it): ``steps``
        optimiser steps at the config's learning rates times ``lr_scale``; ``targets`` are per-step progress curves
        (``None``: time-linear, for demonstrations)."""
        raise NotImplementedError(f"{self.name} does not adapt from annotated rollouts (its `adaptable` is False)")
