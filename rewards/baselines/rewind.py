"""ReWiND (arXiv 2505.10911): a language-conditioned progress model trained with video rewind and
mismatched-instruction negatives.

``ReWiNDRewardModel`` (the backend, registered as ``"rewind"``), ``ReWiNDConfig``, ``ReWiNDBatcher``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from typing_extensions import override

from rewards.baselines.common import (
    EpisodeStore,
    PrefixConfig,
    PrefixRewardModel,
    PrefixTrunk,
    prefix_progress_fn,
    sample_rewound_prefixes,
    time_linear_mse,
    time_targets,
)


@dataclasses.dataclass(frozen=True)
class ReWiNDConfig(PrefixConfig):
    """Hyper-parameters of ReWiND. The defaults are the ``small`` preset; ``tiny`` is for tests only.

    Each prediction at frame ``t`` reads the episode prefix ``0..t`` subsampled uniformly to ``n_frames``
    frames (first and current included), plus the instruction.
    """

    #: probability that a training clip is rewound (played forward to a peak, then backwards)
    rewind_prob: float = 0.8
    #: probability that a training clip is paired with another task's instruction (target 0 on every frame)
    negative_prob: float = 0.2

    def __post_init__(self) -> None:
        self._check_prefix()
        self._check_range("rewind_prob", 0.0, 1.0)
        self._check_range("negative_prob", 0.0, 1.0, hi_open=True)


class ReWiNDNet(PrefixTrunk):
    """Instruction token + one fused token per frame -> causal Transformer -> sigmoid progress at every frame."""

    def __init__(self, emb_dim: int, text_dim: int, config: ReWiNDConfig) -> None:
        super().__init__(emb_dim, text_dim, config)
        self.head = nn.Linear(config.d_model, 1)

    @override
    def forward(self, emb: torch.Tensor, task_emb: torch.Tensor) -> dict[str, torch.Tensor]:
        # emb (B, W, C, D), task_emb (B, L) -> progress (B, W): frame i's progress from frames <= i
        h = self.encode(emb, task_emb)  # (B, W, d)
        return {"progress": torch.sigmoid(self.head(h).squeeze(-1))}


class ReWiNDBatcher:
    """Training clips: a demo prefix (rewound with ``rewind_prob``) and its per-frame time-linear targets, both
    from the same frame indices; with ``negative_prob`` the clip gets another task's instruction and target 0.
    """

    def __init__(
        self, store: EpisodeStore, episode_emb: torch.Tensor, task_emb: torch.Tensor, config: ReWiNDConfig
    ) -> None:
        self.store, self.episode_emb, self.task_emb, self.config = store, episode_emb, task_emb, config

    def sample(self, rng: np.random.Generator, batch_size: int) -> dict[str, Any]:
        """A training batch: rewound prefixes (and negatives), their embeddings and per-frame targets."""
        c, store = self.config, self.store
        episode = rng.integers(0, len(store), size=batch_size)  # episodes uniformly
        idx, back = sample_rewound_prefixes(store.lengths[episode], c.n_frames, rng, c.rewind_prob)  # (B, W)
        emb, _ = store.gather(episode, idx)
        target = time_targets(idx, store.lengths[episode])  # (B, W)
        own = store.task_of[episode]
        instruction_task = own.copy()
        negative = np.zeros(batch_size, dtype=bool)
        n_tasks = len(store.task_ids)
        if n_tasks > 1 and c.negative_prob > 0:  # mismatched pairs need a second task
            negative = rng.random(batch_size) < c.negative_prob
            other = (own + rng.integers(1, n_tasks, size=batch_size)) % n_tasks  # any other task, uniformly
            instruction_task = np.where(negative, other, own)
            target[negative] = 0.0
        device = store.device
        task_emb = self.episode_emb[torch.from_numpy(episode).to(device)]
        if negative.any():
            rows = torch.from_numpy(np.flatnonzero(negative)).to(device)
            task_emb[rows] = self.task_emb[torch.from_numpy(instruction_task[negative]).to(device)]
        return {
            "emb": emb,  # (B, W, C, D)
            "task_emb": task_emb,  # (B, L)
            "target": torch.from_numpy(target).to(device),  # (B, W)
            "episode": episode,
            "idx": idx,
            "rewound": back,
            "negative": negative,
            "episode_task": own,
            "instruction_task": instruction_task,
        }


class ReWiNDRewardModel(PrefixRewardModel):
    """ReWiND: a language-conditioned, multi-task progress model over frozen frame embeddings.

    A causal Transformer reads the instruction token and the episode prefix subsampled to ``n_frames`` frames
    (3 cameras fused per frame) and outputs a sigmoid progress per frame; the reward at frame ``t`` is the
    output at ``t``.

    Faithful to the paper: frozen image and instruction embeddings, a Transformer over the video prefix and
    the instruction predicting per-frame progress supervised at every frame with MSE against time-linear
    progress of demos, video rewind (play forward to a split point, then backwards; targets follow the frames),
    mismatched video-instruction pairs with target 0, vision and language only (no robot state).
    Differs: causal attention (the published aggregator is not required to be; ours must match online),
    frames subsampled from the whole prefix ``0..t`` at every step, 3 cameras fused per step, EfficientNet-Lite0
    or SigLIP-2 features instead of DINOv2, MiniLM-L6 instead of L12, no Open-X co-training or LLM-paraphrased
    instructions, small model trained from scratch on our demos only.
    """

    name = "rewind"
    role = "published_baseline"
    display_name = "ReWiND"
    net_cls = ReWiNDNet
    config_cls = ReWiNDConfig

    def __init__(self, config: ReWiNDConfig | Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)

    def _loss_fn(self, store: EpisodeStore, episode_emb: torch.Tensor, task_emb: torch.Tensor, batch_size: int):
        """Rewound demo prefixes (and mismatched-instruction negatives) against time-linear targets: MSE."""
        batcher = ReWiNDBatcher(store, episode_emb, task_emb, self.config)

        def loss_fn(model, rng):
            batch = batcher.sample(rng, batch_size)
            out = model(batch["emb"], batch["task_emb"])
            mse = F.mse_loss(out["progress"], batch["target"])
            return mse, {"mse": mse.item()}

        return loss_fn

    def _evaluator(self, store: EpisodeStore, episode_emb: torch.Tensor):
        """Held-out value MSE against time-linear progress."""
        n_frames = self.config.n_frames
        return lambda m: {"val_mse": time_linear_mse(prefix_progress_fn(m, store, episode_emb, n_frames), store)}
