"""Shared machinery of the trainable baselines (SARM v1, ReWiND, Robometer-lite).

* :class:`BaselineConfig`: the fields and checks their frozen configs share;
* :func:`prefix_windows`, :func:`played_windows`: which frames a prediction sees. Every function returns
  *frame indices*; images, states and targets are gathered with the same indices, so they cannot disagree;
* :class:`EpisodeStore`: training episodes as flat fp16 tensors, gathered by (episode, frame indices);
* :class:`WindowRewardModel`: ``predict_episode`` / ``start`` / ``step_batch`` for models whose prediction at
  frame ``t`` is a function of a window of frames ``<= t``; offline and online share one code path.

Shapes: B batch, W window frames, C = 3 cameras, D image-embedding size, S = 14 state, L text size, d width.
"""

from __future__ import annotations

import abc
import dataclasses
import logging
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from typing_extensions import (
    Unpack,  # typing.Unpack needs Python 3.11
    override,
)

from rewards.base import RewardOutput, Session, spread_to_steps
from rewards.blocks import CausalTransformer, FrameTokens, init_positions
from rewards.data import EpisodeFeatures, check_state, require_every_frame, stacked_rows
from rewards.embedding_model import AdaptableMixin, EmbeddingRewardModel
from rewards.train_loop import FitOptions
from sarm2_env.config import FrozenConfig
from sarm2_env.errors import ConfigError, DatasetError, NonFiniteError

log = logging.getLogger(__name__)

_CHUNK = 256


# --- configs ---------------------------------------------------------------------------------------
#: the ``tiny`` preset's Transformer and optimiser sizes, shared by every baseline (tests only: trains in
#: seconds, predicts nothing useful)
TINY_TRANSFORMER: dict[str, Any] = {
    "d_model": 32,
    "n_layers": 1,
    "n_heads": 2,
    "batch_size": 16,
    "warmup_steps": 5,
    "steps": 20,
    "dropout": 0.0,
}


@dataclasses.dataclass(frozen=True)
class BaselineConfig(FrozenConfig):
    """The fields every trainable baseline shares: Transformer size, optimisation (AdamW, linear warm-up then
    cosine decay, gradient clipping) and the held-out fraction. Subclasses add their own fields and may change
    these defaults by declaring the field again."""

    d_model: int = 128
    n_layers: int = 2
    n_heads: int = 4
    ff_mult: int = 4
    dropout: float = 0.1
    batch_size: int = 64
    lr: float = 3e-4
    weight_decay: float = 1e-2
    warmup_steps: int = 200
    grad_clip: float = 1.0
    steps: int = 3000
    val_fraction: float = 0.1

    def _check_transformer(self) -> None:
        """Checks of the shared fields."""
        self._check_positive_ints("d_model", "n_layers", "n_heads", "ff_mult", "batch_size", "steps")
        if self.d_model % self.n_heads:
            raise ConfigError(f"`d_model` must be divisible by `n_heads` ({self.n_heads}); got {self.d_model}")
        self._check_range("dropout", 0.0, 1.0, hi_open=True)
        self._check_range("val_fraction", 0.0, 1.0, hi_open=True)
        self._check_positive("lr")
        self._check_non_negative("weight_decay", "grad_clip", "warmup_steps")
        if not isinstance(self.warmup_steps, int) or isinstance(self.warmup_steps, bool):
            raise ConfigError(f"`warmup_steps` must be an integer >= 0; got {self.warmup_steps!r}")


@dataclasses.dataclass(frozen=True)
class PrefixConfig(BaselineConfig):
    """:class:`BaselineConfig` plus the window of the prefix models (ReWiND, Robometer-lite): each prediction at
    frame ``t`` reads the prefix ``0..t`` subsampled uniformly to ``n_frames`` frames (first and current
    included). Presets: ``small`` (the defaults) and ``tiny`` (tests only)."""

    n_frames: int = 16

    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "small": {},
        # for tests only: trains in seconds, predicts nothing useful
        "tiny": {**TINY_TRANSFORMER, "n_frames": 6},
    }

    def _check_prefix(self) -> None:
        """Checks of the window and the shared fields."""
        self._check_positive_ints("n_frames")
        if self.n_frames < 2:
            raise ConfigError(f"`n_frames` must be >= 2 (the first and the current frame); got {self.n_frames}")
        self._check_transformer()


# --- windows ---------------------------------------------------------------------------------------
def prefix_windows(t: np.ndarray, n_frames: int) -> np.ndarray:
    """The prefix ``0..t`` subsampled uniformly to ``n_frames`` indices (first and ``t`` included): ``(B, W)``.

    Integer arithmetic, so the offline and online paths pick bit-identical indices. Early frames repeat.
    """
    t = np.asarray(t, dtype=np.int64).reshape(-1)  # (B,)
    j = np.arange(n_frames, dtype=np.int64)  # (W,)
    return (t[:, None] * j[None, :]) // max(n_frames - 1, 1)  # (B, W), ascending, ends at t


class PrefixTrunk(nn.Module):
    """Instruction token + one fused token per frame -> causal Transformer: the trunk of the prefix baselines
    (ReWiND, Robometer-lite). Subclasses add their heads after calling ``__init__``."""

    def __init__(self, emb_dim: int, text_dim: int, config: PrefixConfig) -> None:
        super().__init__()
        c, d = config, config.d_model
        self.tokens = FrameTokens(emb_dim, d, use_state=False)
        self.text_proj = nn.Linear(text_dim, d)
        self.position = init_positions(c.n_frames + 1, d)
        self.encoder = CausalTransformer(d, c.n_layers, c.n_heads, c.ff_mult, c.dropout)

    def encode(self, emb: torch.Tensor, task_emb: torch.Tensor) -> torch.Tensor:
        """Per-frame features ``(B, W, d)`` of ``emb`` (B, W, C, D) under ``task_emb`` (B, L): frame i's from the
        instruction and frames <= i."""
        x = torch.cat([self.text_proj(task_emb)[:, None], self.tokens(emb)], dim=1)  # (B, 1 + W, d)
        return self.encoder(x + self.position[: x.shape[1]])[:, 1:]


def played_windows(peak: np.ndarray, back: np.ndarray, n_frames: int) -> np.ndarray:
    """Video rewind: play ``0..peak`` forward, then ``back`` frames backwards (to ``peak - back``); subsample the
    played sequence uniformly to ``n_frames`` indices ``(B, W)``. ``back = 0`` is :func:`prefix_windows`.

    The window always ends on the frame the played video ends on (``peak - back``) and, with 3+ frames and
    ``back > 0``, holds the peak frame, so the clip visibly goes back in time.
    """
    peak = np.asarray(peak, dtype=np.int64).reshape(-1)  # (B,)
    back = np.minimum(np.asarray(back, dtype=np.int64).reshape(-1), peak)  # cannot rewind before frame 0
    played = peak + 1 + back  # (B,) length of the played sequence
    pos = ((played[:, None] - 1) * np.arange(n_frames)[None, :]) // max(n_frames - 1, 1)  # (B, W) positions
    if n_frames >= 3:  # keep the turning point in view: the last forward position becomes the peak itself
        turn = np.maximum((pos <= peak[:, None]).sum(1) - 1, 1)  # (B,) < W - 1 whenever back > 0
        rows = np.flatnonzero(back > 0)
        pos[rows, turn[rows]] = peak[rows]
    return np.where(pos <= peak[:, None], pos, 2 * peak[:, None] - pos)  # forward part, then mirrored back


def sample_rewound_prefixes(
    length: np.ndarray, n_frames: int, rng: np.random.Generator, rewind_prob: float
) -> tuple[np.ndarray, np.ndarray]:
    """One training window per episode length: a uniformly drawn prefix end, rewound with ``rewind_prob``.

    A rewound window plays the demo forward to a peak frame and then backwards for ``1..peak`` frames
    (ReWiND's video rewind), so it ends lower than it peaked. Returns ``(indices (B, W), back (B,))``.
    """
    length = np.asarray(length, dtype=np.int64).reshape(-1)
    batch = len(length)
    peak = (rng.random(batch) * length).astype(np.int64)  # (B,) uniform in [0, T)
    back = np.floor(rng.random(batch) * peak).astype(np.int64) + 1  # (B,) uniform in [1, peak]
    back = np.where((rng.random(batch) < rewind_prob) & (peak > 0), back, 0)
    return played_windows(peak, back, n_frames), back


def time_targets(idx: np.ndarray, length: np.ndarray) -> np.ndarray:
    """Whole-task time-linear progress ``i / (T - 1)`` of frame indices ``idx (B, ...)`` of episodes ``(B,)``."""
    length = np.asarray(length, dtype=np.int64).reshape((-1,) + (1,) * (np.ndim(idx) - 1))
    return (idx / np.maximum(length - 1, 1)).astype(np.float32)


# --- networks --------------------------------------------------------------------------------------
# --- training data ---------------------------------------------------------------------------------
class EpisodeStore:
    """Training episodes in flat tensors (embeddings as fp16, their stored precision), gathered by
    ``(episode (B,), frame indices (B, W))`` so images, states and targets always share indices.

    Targets come from frame indices only (time-linear progress on demonstrations); the physics oracle in
    ``EpisodeFeatures.progress`` is never read.
    """

    def __init__(
        self,
        episodes: Sequence[EpisodeFeatures],
        device: torch.device,
        what: str = "training",
        held_frames: bool = False,
    ) -> None:
        if not episodes:
            raise DatasetError(f"{what}: expected at least one episode; got none")
        if not held_frames:  # adaptation reads query-rate rollouts, their targets held like their frames
            require_every_frame(episodes, what)
        self.device = device
        self.episodes = list(episodes)
        self.lengths = np.array([e.length for e in episodes], dtype=np.int64)  # (E,)
        self.offsets = np.concatenate([[0], np.cumsum(self.lengths)[:-1]]).astype(np.int64)  # (E,)
        self.emb, self.row = stacked_rows(episodes, device)  # (R, C, D) half, (N,) the row each step sees
        self.state = torch.from_numpy(np.concatenate([e.state for e in episodes])).float().to(device)  # (N, S)
        self.task_ids = sorted({e.task_id for e in episodes})
        self.task_of = np.array([self.task_ids.index(e.task_id) for e in episodes], dtype=np.int64)  # (E,)

    def __len__(self) -> int:
        return len(self.lengths)

    def gather(self, episode: np.ndarray, idx: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """``emb (B, W, C, D)`` float32 and ``state (B, W, S)`` of frames ``idx (B, W)`` of ``episode (B,)``."""
        flat = torch.from_numpy(self.offsets[episode][:, None] + idx).to(self.device)  # (B, W)
        return self.emb[self.row[flat]].float(), self.state[flat]

    def instruction_tables(self, embed: Callable[[str], np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
        """Instruction embeddings per episode ``(E, L)`` and per task ``(n_tasks, L)`` (its first episode's)."""
        per_episode = torch.from_numpy(np.stack([embed(e.instruction) for e in self.episodes])).float()
        first = [int(np.flatnonzero(self.task_of == k)[0]) for k in range(len(self.task_ids))]
        return per_episode.to(self.device), per_episode[first].to(self.device)

    def all_frames(self, max_frames: int | None = None, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """``(episode (N,), frame (N,))`` for every frame, or an even random subsample of ``max_frames``."""
        episode = np.repeat(np.arange(len(self.lengths)), self.lengths)
        frame = np.concatenate([np.arange(n) for n in self.lengths])
        if max_frames is not None and len(frame) > max_frames:
            keep = np.sort(np.random.default_rng(seed).choice(len(frame), max_frames, replace=False))
            episode, frame = episode[keep], frame[keep]
        return episode, frame


def state_stats(episodes: Sequence[EpisodeFeatures]) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-dimension mean and std (floored at 1e-3) of the training states."""
    states = np.concatenate([f.state for f in episodes])
    return torch.from_numpy(states.mean(0)).float(), torch.from_numpy(np.maximum(states.std(0), 1e-3)).float()


@torch.no_grad()
def time_linear_mse(
    progress_fn: Callable[[np.ndarray, np.ndarray], torch.Tensor],
    store: EpisodeStore,
    max_frames: int = 4096,
) -> float:
    """Held-out value MSE against time-linear progress: ``progress_fn(episode (B,), frame (B,)) -> (B,)``
    predicts each frame from its causal window, exactly as inference does."""
    episode, frame = store.all_frames(max_frames)
    se = 0.0
    for lo in range(0, len(frame), 512):
        ep, t = episode[lo : lo + 512], frame[lo : lo + 512]
        pred = progress_fn(ep, t).float().cpu().numpy()
        se += float(((pred - time_targets(t, store.lengths[ep])) ** 2).sum())
    return se / max(len(frame), 1)


# --- the reward-model side -------------------------------------------------------------------------
class WindowRewardModel(EmbeddingRewardModel):
    """A trainable reward model whose prediction at frame ``t`` reads a window of frames ``<= t``.

    Subclasses implement :meth:`_indices` (frame indices of each window), :meth:`_context` (what the model
    needs of a task: an instruction embedding, or a task id) and :meth:`_run` (a batch of windows ->
    ``{"progress": (B,), ...}`` numpy arrays). The offline and online paths both go through these, so the
    same frame gets the same window and the same value.
    """

    def _indices(self, t: np.ndarray) -> np.ndarray:
        """Frame indices ``(B, W)``, all ``<= t``, of the windows predicting frames ``t (B,)``."""
        raise NotImplementedError

    def _context(self, task: str) -> Any:
        """Per-episode conditioning for ``task`` (a task id or an instruction)."""
        return self.task_embedding(task)

    def _run(self, emb: np.ndarray, state: np.ndarray, contexts: Sequence[Any]) -> dict[str, np.ndarray]:
        """``emb (B, W, C, D)``, ``state (B, W, S)``, one context per window -> numpy outputs per window."""
        raise NotImplementedError

    def _checked(self, out: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if not np.isfinite(out["progress"]).all():
            raise NonFiniteError(f"{self.name} progress: expected finite values; the model produced NaN or inf")
        return out

    def _episode_task(self, feats: EpisodeFeatures) -> str:
        return feats.task_id if feats.task_id in self.tasks else feats.instruction

    # --- offline -----------------------------------------------------------------------------------
    @override
    def predict_episode(self, episode, embeddings=None) -> RewardOutput:
        feats = self.features(episode, embeddings)
        self._check_dim(feats.embeddings.shape[-1])
        check_state(feats.state, (feats.length,), name="episode.state")
        self._require_net()
        context = self._context(self._episode_task(feats))
        steps = feats.scored_steps  # every step, or the query steps of an episode recorded at a query rate
        parts: list[dict[str, np.ndarray]] = []
        for lo in range(0, len(steps), _CHUNK):
            t = steps[lo : lo + _CHUNK]
            idx = self._indices(t)  # (B, W)
            parts.append(self._checked(self._run(feats.embeddings_at(idx), feats.state[idx], [context] * len(t))))
        merged = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        progress, merged = spread_to_steps(merged.pop("progress").astype(np.float32), merged, steps, feats.length)
        return RewardOutput(
            progress=progress,
            primitive_probs=merged.pop("primitive_probs", None),
            normalization="none",
            query_indices=steps,
            extras=merged,
        )

    # --- online ------------------------------------------------------------------------------------
    @override
    def start(self, task: str) -> Session:
        self._require_net()
        return Session(task=task, instruction=self._instruction(task), context={"model": self._context(task)})

    @override
    def step_batch(self, sessions: Sequence[Session], frame_embeddings: np.ndarray, states: np.ndarray) -> np.ndarray:
        windows, window_states = self._push_frames(sessions, frame_embeddings, states, self._indices)
        out = self._checked(self._run(windows, window_states, [s.context["model"] for s in sessions]))
        for i, session in enumerate(sessions):
            session.last = {k: (v[i].item() if v.ndim == 1 else v[i]) for k, v in out.items()}
        return out["progress"].astype(np.float32)


class PrefixRewardModel(AdaptableMixin, WindowRewardModel):
    """An instruction-conditioned model over the episode prefix ``0..t`` subsampled to ``config.n_frames`` frames
    (ReWiND, Robometer-lite). Its net maps ``emb (B, W, C, D)``, ``task_emb (B, L)`` to ``{"progress": (B, W),
    ...}``; inference reads progress at the last frame, and any other ``(B,)`` output becomes an extra.
    """

    def _indices(self, t: np.ndarray) -> np.ndarray:
        return prefix_windows(t, self.config.n_frames)

    @torch.no_grad()
    def _run(self, emb: np.ndarray, state: np.ndarray, contexts: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
        net = self._require_net()
        out = net(
            torch.from_numpy(emb).to(self.device, torch.float32),
            torch.from_numpy(np.stack(contexts)).to(self.device),
        )
        result = {"progress": out["progress"][:, -1].float().cpu().numpy()}
        result.update({k: v.float().cpu().numpy() for k, v in out.items() if k != "progress" and v.ndim == 1})
        return result

    #: shorter episodes are left out of training and validation
    min_episode_length: ClassVar[int] = 1
    #: the network, built as ``net_cls(image_dim, text_dim, config)``
    net_cls: ClassVar[type[nn.Module]]

    @override
    def _build_net(self, text_dim: int) -> nn.Module:
        self.net = self.net_cls(self._spec.dim, text_dim, self.config).to(self.device).eval()
        return self.net

    def fit(
        self,
        train: Sequence[EpisodeFeatures],
        val: Sequence[EpisodeFeatures] = (),
        *,
        include_failures: bool = False,
        **options: Unpack[FitOptions],
    ) -> dict[str, Any]:
        """Train one net over every task on demonstrations (unsuccessful episodes dropped unless
        ``include_failures``) with the backend's :meth:`_loss_fn`; validate on ``val`` with its
        :meth:`_evaluator`; ``options``: the run options of :class:`rewards.train_loop.FitOptions` (``out_dir``
        writes the checkpoint as training goes)."""
        from rewards.train_loop import fit_options, init_distributed, seeded_init

        opts = fit_options(options, self.name)
        train = [f for f in train if f.length >= self.min_episode_length]
        val = [f for f in val if f.length >= self.min_episode_length]
        ctx = opts["ctx"] or init_distributed(self.device)
        self.device = ctx.device
        c = self.config
        train = self._usable(train, include_failures, "training")
        val = self._usable(val, include_failures, "validation") if val else []
        self._register_tasks(train)
        with seeded_init(opts["seed"]):
            net = self._build_net(self._text_dim)
        store = EpisodeStore(train, ctx.device)
        episode_emb, task_emb = store.instruction_tables(self.task_embedding)
        batch_size = max(1, c.batch_size // ctx.world_size)
        loss_fn = self._loss_fn(store, episode_emb, task_emb, batch_size)
        evaluate = None
        if val:
            val_store = EpisodeStore(val, ctx.device, "validation")
            evaluate = self._evaluator(val_store, val_store.instruction_tables(self.task_embedding)[0])

        groups = [{"params": list(net.parameters()), "lr": c.lr, "weight_decay": c.weight_decay}]
        counts = {"train_episodes": len(train), "val_episodes": len(val)}
        return self._train_net(net, groups, loss_fn, ctx=ctx, evaluate=evaluate, counts=counts, options=opts)

    @abc.abstractmethod
    def _loss_fn(
        self, store: EpisodeStore, episode_emb: torch.Tensor, task_emb: torch.Tensor, batch_size: int
    ) -> Callable:
        """``loss_fn(model, rng) -> (loss, scalars)`` over the training ``store`` (``episode_emb (E, L)``: each
        episode's instruction, ``task_emb (n_tasks, L)``: every task's, for mismatched-instruction negatives)."""

    @abc.abstractmethod
    def _evaluator(self, store: EpisodeStore, episode_emb: torch.Tensor) -> Callable[[nn.Module], dict[str, float]]:
        """The held-out evaluation ``module -> metrics`` over the validation ``store``."""

    def _adaptation_objective(self, net, episodes, curves, device, lr_scale):
        """The paper's "RM (FT)": MSE of the progress output at every frame of a prefix window against the target
        curve (episodes uniformly, window ends uniformly in the episode, no rewind: a rollout's own regressions are
        in its curve), every parameter at the config's learning rate times ``lr_scale``. Other heads
        (Robometer-lite's preference score) are not trained here."""
        c = self.config
        store = EpisodeStore(episodes, device, "adaptation", held_frames=True)
        curve = np.concatenate(curves).astype(np.float32)  # (N,) flat like the store's frames
        episode_emb, _ = store.instruction_tables(self.task_embedding)

        def loss_fn(model, rng):
            episode = rng.integers(0, len(store), size=c.batch_size)  # (B,)
            end = np.floor(rng.random(c.batch_size) * store.lengths[episode]).astype(np.int64)  # (B,)
            idx = prefix_windows(end, c.n_frames)  # (B, W)
            emb, _ = store.gather(episode, idx)
            target = torch.from_numpy(curve[store.offsets[episode][:, None] + idx]).to(store.device)  # (B, W)
            out = model(emb, episode_emb[torch.from_numpy(episode).to(store.device)])
            mse = F.mse_loss(out["progress"], target)
            return mse, {"mse": mse.item()}

        groups = [{"params": list(net.parameters()), "lr": c.lr * lr_scale, "weight_decay": c.weight_decay}]
        return groups, loss_fn


def prefix_progress_fn(module: nn.Module, store: EpisodeStore, episode_emb: torch.Tensor, n_frames: int) -> Callable:
    """``(episode (B,), frame (B,)) -> progress (B,)`` of a prefix model, read as inference reads it."""

    def progress_fn(episode: np.ndarray, frame: np.ndarray) -> torch.Tensor:
        emb, _ = store.gather(episode, prefix_windows(frame, n_frames))
        return module(emb, episode_emb[torch.from_numpy(episode).to(store.device)])["progress"][:, -1]

    return progress_fn
