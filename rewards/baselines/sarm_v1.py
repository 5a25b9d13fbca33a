"""SARM v1 (arXiv 2509.25358): task-specific stage classifier + within-stage progress (tau) regressor.

``SARMRewardModel`` (the backend, registered as ``"sarm"``), ``SARMConfig`` (its hyper-parameters), and the
stage tables built from the expert's primitive labels (:func:`build_stage_table`, :func:`assign_stages`).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from typing_extensions import (
    Unpack,  # typing.Unpack needs Python 3.11
    override,
)

from rewards.baselines.common import (
    TINY_TRANSFORMER,
    BaselineConfig,
    EpisodeStore,
    WindowRewardModel,
    state_stats,
    time_targets,
)
from rewards.blocks import CausalTransformer, FrameTokens, init_positions
from rewards.data import EpisodeFeatures
from rewards.sarm2.windows import causal_windows, rewind_windows
from rewards.train_loop import FitOptions
from sarm2_env.constants import NUM_PRIMITIVES, PRIMITIVE_INDEX, PRIMITIVES, STATE_DIM
from sarm2_env.errors import CheckpointError, ConfigError

log = logging.getLogger(__name__)

_UNLABELLED = -1
_DUMMY = PRIMITIVE_INDEX["dummy"]


# --- config ----------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class SARMConfig(BaselineConfig):
    """Hyper-parameters of SARM v1. The defaults are the ``small`` preset (one net per task, trains on 2 CPU
    cores); ``paper`` has the published sizes and optimiser; ``tiny`` is for tests only.

    Windows: the episode's first frame, ``n_history`` earlier frames ``frame_stride`` apart and the current
    frame (9 frames by default, as the paper; its stride was 30 frames at 30 fps, ours 10 frames at 10 Hz).
    ``steps`` are optimiser steps *per task*.
    """

    # windows
    n_history: int = 7
    frame_stride: int = 10
    # both Transformers (stage classifier and tau regressor) of each task's net
    d_model: int = 64
    # losses: stage cross-entropy (weighted) + tau MSE
    stage_loss_weight: float = 1.0
    #: fraction of training windows whose tau regressor is conditioned on the labelled stage (teacher forcing);
    #: the rest use the stage classifier's own prediction, as at inference
    gt_stage_ratio: float = 0.75
    # rewind augmentation: up to `rewind_max_frames` strides played backwards, targets of the frame it ends on
    rewind_prob: float = 0.8
    rewind_max_frames: int = 4
    # changed from BaselineConfig's defaults
    weight_decay: float = 1e-3
    warmup_steps: int = 100
    steps: int = 1000

    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "small": {},
        # the published model (hidden 768, 12 heads, 8 layers, AdamW 5e-5, weight decay 1e-3, warm-up 500)
        "paper": {
            "n_history": 8,
            "d_model": 768,
            "n_heads": 12,
            "n_layers": 8,
            "lr": 5e-5,
            "warmup_steps": 500,
            "steps": 20000,
        },
        # for tests only: trains in seconds, predicts nothing useful
        "tiny": {
            **TINY_TRANSFORMER,
            "n_history": 3,
            "frame_stride": 2,
        },
    }

    def __post_init__(self) -> None:
        self._check_positive_ints("n_history", "frame_stride", "rewind_max_frames")
        self._check_transformer()
        self._check_range("rewind_prob", 0.0, 1.0)
        self._check_range("gt_stage_ratio", 0.0, 1.0)
        self._check_non_negative("stage_loss_weight")

    @property
    def window(self) -> int:
        """Frames each prediction reads: the episode's first frame, ``n_history`` earlier ones, the current one."""
        return self.n_history + 2


# --- stage tables ----------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class StageTable:
    """The stages of one task: its canonical primitive sequence and mean stage durations.

    ``sequence`` holds one primitive index per stage (-1: unlabelled frames); ``proportions`` the mean
    duration of each stage over the demos that follow the canonical sequence, normalised to sum to 1;
    ``episodes`` / ``canonical_episodes`` count the demos seen and those that followed the sequence exactly.
    """

    sequence: tuple[int, ...]
    proportions: tuple[float, ...]
    episodes: int = 0
    canonical_episodes: int = 0

    @property
    def n_stages(self) -> int:
        """Stages of the task."""
        return len(self.sequence)

    @property
    def breakpoints(self) -> np.ndarray:
        """``P_0 = 0 <= P_1 <= ... <= P_K = 1``: cumulative mean stage durations ``(K + 1,)``."""
        cum = np.concatenate([[0.0], np.cumsum(self.proportions)])
        cum /= max(cum[-1], 1e-12)
        cum[-1] = 1.0
        return cum.astype(np.float32)

    @property
    def names(self) -> list[str]:
        """Each stage's primitive name (``unlabelled`` for -1)."""
        return [PRIMITIVES[p] if p >= 0 else "unlabelled" for p in self.sequence]

    def progress(self, stage: np.ndarray, tau: np.ndarray) -> np.ndarray:
        """``P_k + tau * (P_{k+1} - P_k)``."""
        bp = self.breakpoints
        stage = np.asarray(stage, dtype=np.int64)
        return (bp[stage] + np.asarray(tau) * (bp[stage + 1] - bp[stage])).astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        """The table as plain values (stored in the checkpoint)."""
        return {
            "sequence": list(self.sequence),
            "names": self.names,
            "proportions": list(self.proportions),
            "breakpoints": self.breakpoints.tolist(),
            "episodes": self.episodes,
            "canonical_episodes": self.canonical_episodes,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StageTable:
        """A table written by :meth:`to_dict`."""
        return cls(
            sequence=tuple(int(p) for p in data["sequence"]),
            proportions=tuple(float(p) for p in data["proportions"]),
            episodes=int(data.get("episodes", 0)),
            canonical_episodes=int(data.get("canonical_episodes", 0)),
        )


def fill_unlabelled(labels: np.ndarray) -> np.ndarray:
    """Frames labelled -1 take the previous frame's label (leading ones the first known label)."""
    labels = np.asarray(labels, dtype=np.int64).copy()
    known = np.flatnonzero(labels >= 0)
    if len(known) == 0 or len(known) == len(labels):
        return labels
    last = np.maximum.accumulate(np.where(labels >= 0, np.arange(len(labels)), -1))
    labels[last >= 0] = labels[last[last >= 0]]
    labels[: known[0]] = labels[known[0]]
    return labels


def segments(labels: np.ndarray) -> list[tuple[int, int, int]]:
    """Consecutive runs of one primitive label: ``[(label, start, stop), ...]`` (stop exclusive)."""
    labels = fill_unlabelled(labels)
    if len(labels) == 0:
        return []
    cuts = np.flatnonzero(np.diff(labels)) + 1
    starts = np.concatenate([[0], cuts])
    stops = np.concatenate([cuts, [len(labels)]])
    return [(int(labels[a]), int(a), int(b)) for a, b in zip(starts, stops)]


def align(sequence: Sequence[int], canonical: Sequence[int]) -> list[int | None]:
    """Map each segment of ``sequence`` to a canonical stage (longest common subsequence), or ``None``."""
    n, m = len(sequence), len(canonical)
    dp = np.zeros((n + 1, m + 1), dtype=np.int64)
    for i in range(n):
        for j in range(m):
            dp[i + 1, j + 1] = dp[i, j] + 1 if sequence[i] == canonical[j] else max(dp[i, j + 1], dp[i + 1, j])
    mapping: list[int | None] = [None] * n
    i, j = n, m
    while i > 0 and j > 0:
        if sequence[i - 1] == canonical[j - 1] and dp[i, j] == dp[i - 1, j - 1] + 1:
            mapping[i - 1] = j - 1
            i, j = i - 1, j - 1
        elif dp[i - 1, j] >= dp[i, j - 1]:
            i -= 1
        else:
            j -= 1
    return mapping


def build_stage_table(label_sequences: Sequence[np.ndarray]) -> StageTable:
    """The stage table of one task from its demos' per-frame primitive labels.

    The canonical stage sequence is the most common sequence of segments (ties: the first seen); the
    proportions are the mean stage durations over the demos that follow it exactly, normalised to 1.
    """
    if not label_sequences:
        raise ConfigError("`label_sequences` must hold at least one episode's labels; got none")
    segs = [segments(labels) for labels in label_sequences]
    keys = [tuple(label for label, _, _ in s) for s in segs]
    counts = Counter(keys)
    canonical = max(dict.fromkeys(keys), key=lambda k: counts[k])  # first seen wins ties
    durations = np.array([[b - a for _, a, b in s] for s, k in zip(segs, keys) if k == canonical], dtype=np.float64)
    mean = durations.mean(0)
    return StageTable(
        sequence=canonical,
        proportions=tuple(float(x) for x in mean / mean.sum()),
        episodes=len(keys),
        canonical_episodes=counts[canonical],
    )


def assign_stages(labels: np.ndarray, table: StageTable) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame stage index ``(T,)`` and within-stage progress tau ``(T,)`` of one demo.

    A demo whose segment sequence differs from the canonical one is aligned to it by longest common
    subsequence: matched segments take their stage, an unmatched segment (a retry, an extra pause) joins the
    stage before it (or, before the first match, the stage after it); canonical stages the demo skips get no
    frames, so its progress jumps over them. A demo sharing no stage with the sequence is staged by time.
    Tau runs linearly from 0 at a stage's first frame to 1 at the next stage's first frame (the last stage
    reaches 1 on the last frame), so the progress target starts at 0 and ends at 1.
    """
    labels = np.asarray(labels)
    length = len(labels)
    segs = segments(labels)
    mapping = align([label for label, _, _ in segs], table.sequence)
    matched = [k for k in mapping if k is not None]
    if not matched:  # nothing in common: stage by time, so that the progress target is time-linear
        bp = table.breakpoints
        u = np.arange(length) / max(length - 1, 1)
        stage = np.clip(np.searchsorted(bp, u, side="right") - 1, 0, table.n_stages - 1).astype(np.int64)
        return stage, ((u - bp[stage]) / np.maximum(bp[stage + 1] - bp[stage], 1e-12)).astype(np.float32)
    stage = np.empty(length, dtype=np.int64)
    current = matched[0]
    for (_, a, b), k in zip(segs, mapping):
        current = k if k is not None else current
        stage[a:b] = current
    tau = np.ones(length, dtype=np.float32)
    starts = np.flatnonzero(np.concatenate([[True], np.diff(stage) != 0])) if length else np.zeros(0, np.int64)
    stops = np.concatenate([starts[1:], [length]])
    for s, stop in zip(starts, stops):
        end = stop if stop < length else length - 1  # tau reaches 1 at the next stage's start / the last frame
        if end > s:
            tau[s:stop] = (np.arange(s, stop) - s) / (end - s)
    return stage, tau


# --- network ---------------------------------------------------------------------------------------
class SARMTaskNet(nn.Module):
    """One task's SARM v1: a stage classifier and a tau regressor, two causal Transformers over the window.

    The tau regressor is conditioned on a stage (the prediction, or the label under teacher forcing) through a
    learned stage token placed before the frames; progress = ``P_k + tau * (P_{k+1} - P_k)``.
    """

    def __init__(self, emb_dim: int, n_stages: int, config: SARMConfig) -> None:
        super().__init__()
        c, d, w = config, config.d_model, config.window
        self.stage_tokens = FrameTokens(emb_dim, d, use_state=True)
        self.stage_position = init_positions(w, d)
        self.stage_encoder = CausalTransformer(d, c.n_layers, c.n_heads, c.ff_mult, c.dropout)
        self.stage_head = nn.Linear(d, n_stages)
        self.tau_tokens = FrameTokens(emb_dim, d, use_state=True)
        self.stage_prior = nn.Embedding(n_stages, d)
        self.tau_position = init_positions(w + 1, d)
        self.tau_encoder = CausalTransformer(d, c.n_layers, c.n_heads, c.ff_mult, c.dropout)
        self.tau_head = nn.Linear(d, 1)
        self.register_buffer("state_mean", torch.zeros(STATE_DIM))
        self.register_buffer("state_std", torch.ones(STATE_DIM))
        self.register_buffer("breakpoints", torch.linspace(0.0, 1.0, n_stages + 1))

    def forward(
        self,
        emb: torch.Tensor,
        state: torch.Tensor,
        stage: torch.Tensor | None = None,
        teacher: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """``emb (B, W, C, D)``, ``state (B, W, S)`` (episode-start frame first, current frame last).

        ``stage (B,)`` labels replace the predicted stage for the tau regressor where ``teacher (B,)`` is true
        (everywhere when ``teacher`` is None).
        """
        state = (state - self.state_mean) / self.state_std
        h = self.stage_encoder(self.stage_tokens(emb, state) + self.stage_position)  # (B, W, d)
        logits = self.stage_head(h[:, -1])  # (B, K): read out at the current frame
        used = logits.argmax(-1)  # (B,)
        if stage is not None:
            used = stage if teacher is None else torch.where(teacher, stage, used)
        x = torch.cat([self.stage_prior(used)[:, None], self.tau_tokens(emb, state)], dim=1) + self.tau_position
        tau = torch.sigmoid(self.tau_head(self.tau_encoder(x)[:, -1]).squeeze(-1))  # (B,)
        lo, hi = self.breakpoints[used], self.breakpoints[used + 1]
        return {"stage_logits": logits, "stage": used, "tau": tau, "progress": lo + tau * (hi - lo)}


# --- the reward model ------------------------------------------------------------------------------
def _stage_tables(by_task: Mapping[str, Sequence[EpisodeFeatures]]) -> dict[str, StageTable]:
    """Each task's stage table from its demos' primitive labels (logged: stages, proportions, canonical demos)."""
    tables = {task: build_stage_table([f.primitive for f in eps]) for task, eps in by_task.items()}
    for task, table in tables.items():
        log.info(
            "sarm %s: stages %s, proportions %s (%d of %d demos follow the sequence exactly)",
            task,
            table.names,
            [round(p, 3) for p in table.proportions],
            table.canonical_episodes,
            table.episodes,
        )
    return tables


class SARMRewardModel(WindowRewardModel):
    """SARM v1, the task-specific stage-aware baseline: one small net per task, trained on that task's demos.

    Each net classifies the current stage and regresses the within-stage progress tau from a causal window
    (episode-start frame + ``n_history`` strided frames + current frame, 3 cameras + state each); progress =
    ``P_k + tau * (P_{k+1} - P_k)`` with ``P`` the cumulative mean stage durations of the task's demos.

    Faithful to the paper: separate stage and tau Transformers, tau conditioned on the stage (teacher forcing
    with the labelled stage 75 % of the time), stage cross-entropy + tau MSE, rewind augmentation (p 0.8, up to
    4 strides), a 9-frame window anchored at the episode start, dataset-level stage proportions.
    Differs: stages come from the scripted expert's primitive labels (runs of one primitive = one stage, the
    task's canonical sequence = the most common sequence; see :func:`assign_stages`) rather than annotated
    natural-language subtasks; the window is causal (no future frames, so it works online) and each net has
    no language input (one instruction per net is a constant); 3 cameras instead of one; small nets trained
    from scratch on frozen embeddings (EfficientNet-Lite0 or SigLIP-2 instead of CLIP). A task without a net
    is not covered: predicting on it raises :class:`CheckpointError`.
    """

    name = "sarm"
    role = "published_baseline"
    display_name = "SARM v1"
    config_cls = SARMConfig

    def __init__(
        self,
        config: SARMConfig | Mapping[str, Any] | None = None,
        *,
        stage_tables: Mapping[str, StageTable | Mapping[str, Any]] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(config, **kwargs)
        self.stage_tables: dict[str, StageTable] = {
            task: t if isinstance(t, StageTable) else StageTable.from_dict(t)
            for task, t in (stage_tables or {}).items()
        }

    # --- tasks -------------------------------------------------------------------------------------
    def _task_id(self, task: str) -> str | None:
        if task in self.stage_tables:
            return task
        for task_id, instruction in self.tasks.items():
            if instruction == task and task_id in self.stage_tables:
                return task_id
        return None

    @override
    def covers(self, task: str) -> bool:
        return self._task_id(task) is not None

    def _episode_task(self, feats: EpisodeFeatures) -> str:
        return feats.instruction if not self.covers(feats.task_id) and self.covers(feats.instruction) else feats.task_id

    def _context(self, task: str) -> str:
        task_id = self._task_id(task)
        if task_id is None:
            raise CheckpointError(
                f"`task`: SARM v1 is task-specific and this model has no net for {task!r}; it covers "
                f"{sorted(self.stage_tables)}. Train one on that task's demos with "
                "`python -m rewards.train --model sarm --data <dataset dir>`"
            )
        return task_id

    def _net_key(self, task_id: str) -> str:
        return f"task{sorted(self.stage_tables).index(task_id)}"

    def _build_net(self, text_dim: int) -> nn.ModuleDict:
        nets = {
            self._net_key(task): SARMTaskNet(self._spec.dim, table.n_stages, self.config)
            for task, table in self.stage_tables.items()
        }
        for task, table in self.stage_tables.items():
            nets[self._net_key(task)].breakpoints.copy_(torch.from_numpy(table.breakpoints))
        self.net = nn.ModuleDict(nets).to(self.device).eval()
        return self.net

    # --- persistence -------------------------------------------------------------------------------
    def _extra_meta(self) -> dict[str, Any]:
        return {"stage_tables": {task: table.to_dict() for task, table in sorted(self.stage_tables.items())}}

    def _load_extra_meta(self, meta: dict[str, Any]) -> None:
        self.stage_tables = {task: StageTable.from_dict(t) for task, t in meta.get("stage_tables", {}).items()}

    @classmethod
    def load(cls, path: str | os.PathLike, **kwargs: Any):
        """Load a checkpoint (the per-task nets are sized from the stage tables stored with it)."""
        if "stage_tables" not in kwargs:
            try:
                meta = json.loads((Path(path) / "config.json").read_text())
                kwargs["stage_tables"] = meta.get("extra", {}).get("stage_tables")
            except (OSError, ValueError, AttributeError):
                pass  # the base loader reports what is wrong with the checkpoint
        return super().load(path, **kwargs)

    # --- inference ---------------------------------------------------------------------------------
    def _indices(self, t: np.ndarray) -> np.ndarray:
        w = causal_windows(t, self.config.n_history, self.config.frame_stride)  # (B, n_history + 1)
        return np.concatenate([np.zeros((len(w), 1), dtype=np.int64), w], axis=1)  # episode start first

    @torch.no_grad()
    def _run(self, emb: np.ndarray, state: np.ndarray, contexts: Sequence[str]) -> dict[str, np.ndarray]:
        net = self._require_net()
        batch = len(contexts)
        out = {
            "progress": np.zeros(batch, np.float32),
            "primitive_probs": np.zeros((batch, NUM_PRIMITIVES), np.float32),
            "stage": np.zeros(batch, np.int64),
            "tau": np.zeros(batch, np.float32),
            "stage_confidence": np.zeros(batch, np.float32),
        }
        for task in dict.fromkeys(contexts):
            rows = np.array([i for i, c in enumerate(contexts) if c == task])
            res = net[self._net_key(task)](
                torch.from_numpy(emb[rows]).to(self.device, torch.float32),
                torch.from_numpy(state[rows]).to(self.device),
            )
            probs = torch.softmax(res["stage_logits"].float(), -1).cpu().numpy()  # (b, K)
            out["progress"][rows] = res["progress"].float().cpu().numpy()
            out["stage"][rows] = res["stage"].cpu().numpy()
            out["tau"][rows] = res["tau"].float().cpu().numpy()
            out["stage_confidence"][rows] = probs.max(-1)
            for k, primitive in enumerate(self.stage_tables[task].sequence):  # stages -> their primitive
                out["primitive_probs"][rows, primitive if primitive >= 0 else _DUMMY] += probs[:, k]
        return out

    # --- training ----------------------------------------------------------------------------------
    def fit(
        self,
        train: Sequence[EpisodeFeatures],
        val: Sequence[EpisodeFeatures] = (),
        *,
        include_failures: bool = False,
        **options: Unpack[FitOptions],
    ) -> dict[str, Any]:
        """Train one net per task on its demos (``config.steps`` steps each); validate on ``val``.

        Unsuccessful episodes are dropped unless ``include_failures``. Held-out episodes of tasks without
        training demos are skipped. Each task's optimiser state goes to ``out_dir/sarm-tasks/taskN`` (resume).
        ``options``: the run options of :class:`rewards.train_loop.FitOptions`.
        """
        from rewards.train_loop import fit_options, init_distributed, run_training, seeded_init

        opts = fit_options(options, self.name)
        out_dir, seed = opts["out_dir"], opts["seed"]
        ctx = opts["ctx"] or init_distributed(self.device)
        self.device = ctx.device
        c = self.config
        train = self._usable(train, include_failures, "training")
        val = self._usable(val, include_failures, "validation") if val else []
        self._register_tasks(train)
        by_task = {task: [f for f in train if f.task_id == task] for task in sorted({f.task_id for f in train})}
        self.stage_tables = _stage_tables(by_task)
        skipped = sorted({f.task_id for f in val} - set(by_task))
        if skipped:
            log.warning("sarm validation: no training demos for %s; their held-out episodes are skipped", skipped)
        val = [f for f in val if f.task_id in by_task]
        with seeded_init(seed):
            net = self._build_net(self._text_dim)
        batch_size = max(1, c.batch_size // ctx.world_size)
        per_task: dict[str, Any] = {}
        for task, eps in by_task.items():
            sub = net[self._net_key(task)]
            mean, std = state_stats(eps)
            sub.state_mean.copy_(mean)
            sub.state_std.copy_(std)
            data = _StagedEpisodes(eps, self.stage_tables[task], ctx.device)
            held_out = [f for f in val if f.task_id == task]
            val_data = _StagedEpisodes(held_out, self.stage_tables[task], ctx.device) if held_out else None

            loss_fn = self._loss_fn(data, batch_size, ctx.device)

            log.info("sarm: training the net for %s on %d demos", task, len(eps))
            per_task[task] = run_training(
                module=sub,
                param_groups=[{"params": list(sub.parameters()), "lr": c.lr, "weight_decay": c.weight_decay}],
                loss_fn=loss_fn,
                steps=c.steps,
                warmup=c.warmup_steps,
                grad_clip=c.grad_clip,
                seed=seed,
                ctx=ctx,
                out_dir=None if out_dir is None else Path(out_dir) / "sarm-tasks" / self._net_key(task),
                resume=opts["resume"],
                evaluate=(lambda m, v=val_data: self._validate(m, v)) if val_data is not None else None,
                eval_every=opts["eval_every"],
                checkpoint_every=opts["checkpoint_every"],
                progress=opts["progress"],
            )
            sub.eval()
        final = self.validate(val) if val else {}
        if final:
            log.info("sarm held-out: %s", " ".join(f"{k}={v:.4f}" for k, v in final.items()))
        self.training_summary = {
            "steps": c.steps,
            "steps_per_task": c.steps,
            "history": [{"task": task, **h} for task, s in per_task.items() for h in s.get("history", [])],
            "final": final,
            "world_size": ctx.world_size,
            "tasks": {task: s.get("final", {}) for task, s in per_task.items()},
            "train_episodes": len(train),
            "val_episodes": len(val),
        }
        if out_dir is not None and ctx.is_main:
            self.save(out_dir)
        return self.training_summary

    def _loss_fn(self, data: _StagedEpisodes, batch_size: int, device: torch.device) -> Callable:
        """Stage cross-entropy plus tau MSE on rewound windows of one task's demos (teacher-forced stages at
        ``gt_stage_ratio``)."""
        c = self.config

        def loss_fn(model, rng):
            episode = rng.integers(0, len(data.store), size=batch_size)
            window, _ = rewind_windows(
                data.store.lengths[episode], c.n_history, c.frame_stride, rng, c.rewind_prob, c.rewind_max_frames
            )
            idx = np.concatenate([np.zeros((len(window), 1), dtype=np.int64), window], axis=1)
            emb, state = data.store.gather(episode, idx)
            stage, tau = data.labels(episode, idx[:, -1])  # the labels of the frame the window ends on
            teacher = torch.from_numpy(rng.random(batch_size) < c.gt_stage_ratio).to(device)
            out = model(emb, state, stage, teacher)
            ce = F.cross_entropy(out["stage_logits"], stage)
            mse = F.mse_loss(out["tau"], tau)
            return c.stage_loss_weight * ce + mse, {"ce": ce.item(), "tau_mse": mse.item()}

        return loss_fn

    @torch.no_grad()
    def _validate(self, sub: SARMTaskNet, data: _StagedEpisodes, max_frames: int = 4096) -> dict[str, float]:
        sums = self._validate_sums(sub, data, max_frames)
        return {"val_mse": sums[0] / max(sums[2], 1), "val_stage_acc": sums[1] / max(sums[2], 1)}

    @torch.no_grad()
    def _validate_sums(self, sub: SARMTaskNet, data: _StagedEpisodes, max_frames: int) -> tuple[float, int, int]:
        episode, frame = data.store.all_frames(max_frames)
        se, correct = 0.0, 0
        for lo in range(0, len(frame), 512):
            ep, t = episode[lo : lo + 512], frame[lo : lo + 512]
            emb, state = data.store.gather(ep, self._indices(t))
            out = sub(emb, state)
            pred = out["progress"].float().cpu().numpy()
            se += float(((pred - time_targets(t, data.store.lengths[ep])) ** 2).sum())
            correct += int((out["stage"] == data.labels(ep, t)[0]).sum())
        return se, correct, len(frame)

    def validate(self, episodes: Sequence[EpisodeFeatures], max_frames: int = 4096) -> dict[str, float]:
        """Value MSE against time-linear progress and stage accuracy, pooled over every covered task's frames."""
        net = self._require_net()
        net.eval()
        se, correct, n = 0.0, 0, 0
        for task in sorted({f.task_id for f in episodes}):
            task_id = self._context(task)
            data = _StagedEpisodes([f for f in episodes if f.task_id == task], self.stage_tables[task_id], self.device)
            s, k, m = self._validate_sums(net[self._net_key(task_id)], data, max_frames)
            se, correct, n = se + s, correct + k, n + m
        return {"val_mse": se / max(n, 1), "val_stage_acc": correct / max(n, 1)}


class _StagedEpisodes:
    """One task's episodes with per-frame stage and tau labels, gathered with the same frame indices."""

    def __init__(self, episodes: Sequence[EpisodeFeatures], table: StageTable, device: torch.device) -> None:
        self.store = EpisodeStore(episodes, device)
        labels = [assign_stages(f.primitive, table) for f in episodes]
        self.stage = torch.from_numpy(np.concatenate([s for s, _ in labels])).to(device)  # (N,)
        self.tau = torch.from_numpy(np.concatenate([t for _, t in labels])).to(device)  # (N,)

    def labels(self, episode: np.ndarray, frame: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        flat = torch.from_numpy(self.store.offsets[episode] + frame).to(self.store.device)
        return self.stage[flat], self.tau[flat]
