"""Robometer-lite: a small Robometer-style reward model (a shared trunk with a per-frame progress head and a
trajectory-preference head trained with a Bradley-Terry loss). It is *not* Robometer-4B.

``RobometerLiteRewardModel`` (registered as ``"robometer_lite"``), ``RobometerLiteConfig``, :func:`build_pairs`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
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
    played_windows,
    prefix_progress_fn,
    prefix_windows,
    time_linear_mse,
    time_targets,
)
from rewards.data import EpisodeFeatures
from sarm2_env.errors import ConfigError, DatasetError

#: How a preference pair is made from demonstrations (the chosen clip is always a forward demo prefix):
#: ``prefix`` - the rejected clip is a shorter prefix of the same demo (ends at least ``min_prefix_gap`` earlier);
#: ``rewind`` - the rejected clip plays the same prefix, then rewinds (backwards) to an earlier frame;
#: ``reverse`` - the rejected clip is the same prefix played backwards (ends on the first frame);
#: ``different_task`` - the rejected clip is a demo of another task, judged under the chosen clip's instruction.
PAIR_KINDS: tuple[str, ...] = ("prefix", "rewind", "reverse", "different_task")


@dataclasses.dataclass(frozen=True)
class RobometerLiteConfig(PrefixConfig):
    """Hyper-parameters of Robometer-lite. The defaults are the ``small`` preset; ``tiny`` is for tests only.

    ``batch_size`` counts preference pairs (each pair is two clips). ``pair_*`` are the relative frequencies
    of the pair kinds (see :data:`PAIR_KINDS`); ``different_task`` pairs need 2+ tasks and fall back to
    ``rewind`` pairs otherwise.
    """

    # losses: progress MSE on both clips of every pair + Bradley-Terry on the pair
    progress_loss_weight: float = 1.0
    preference_loss_weight: float = 1.0
    # pair mix and the minimum gap between prefix ends (fraction of the episode)
    pair_prefix: float = 0.4
    pair_rewind: float = 0.3
    pair_reverse: float = 0.15
    pair_different_task: float = 0.15
    min_prefix_gap: float = 0.1
    # changed from BaselineConfig's defaults
    batch_size: int = 32

    def __post_init__(self) -> None:
        self._check_prefix()
        self._check_non_negative(
            "progress_loss_weight",
            "preference_loss_weight",
            "pair_prefix",
            "pair_rewind",
            "pair_reverse",
            "pair_different_task",
        )
        if not sum(self.pair_weights) > 0:
            raise ConfigError(f"`pair_*` weights must not all be 0; got {list(self.pair_weights)}")
        self._check_range("min_prefix_gap", 0.0, 1.0, hi_open=True)

    @property
    def pair_weights(self) -> tuple[float, float, float, float]:
        """Relative frequencies of :data:`PAIR_KINDS`, in that order."""
        return (self.pair_prefix, self.pair_rewind, self.pair_reverse, self.pair_different_task)


def build_pairs(
    lengths: np.ndarray,
    task_of: np.ndarray,
    n_frames: int,
    rng: np.random.Generator,
    n_pairs: int,
    weights: Sequence[float] = (0.4, 0.3, 0.15, 0.15),
    min_gap: float = 0.1,
) -> dict[str, np.ndarray]:
    """Preference pairs from demonstrations only (lengths ``(E,)`` >= 2, task index per episode ``(E,)``).

    Returns ``kind (P,)`` (index into :data:`PAIR_KINDS`), ``chosen_episode (P,)``, ``chosen_idx (P, W)``,
    ``rejected_episode (P,)``, ``rejected_idx (P, W)``. Both clips are judged under the chosen episode's
    instruction. The labels come from how the clips were made (later beats earlier, forward beats rewound or
    reversed, the right task beats another), never from success flags or the physics progress.
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    task_of = np.asarray(task_of, dtype=np.int64)
    if (lengths < 2).any():
        raise DatasetError(f"preference pairs: expected episodes of 2+ frames; got lengths {sorted(set(lengths))[:5]}")
    w = np.asarray(weights, dtype=np.float64).copy()
    if len(np.unique(task_of)) < 2:  # no other task to draw from: those pairs become rewind pairs
        w[1] += w[3]
        w[3] = 0.0
    kind = rng.choice(len(PAIR_KINDS), size=n_pairs, p=w / w.sum())
    chosen = rng.integers(0, len(lengths), size=n_pairs)
    last = lengths[chosen] - 1  # (P,) >= 1
    # the chosen clip: a forward prefix ending at t in [1, T-1] (prefix pairs: in [gap, T-1])
    gap = np.maximum(1, np.ceil(min_gap * last)).astype(np.int64)
    lo = np.where(kind == 0, gap, 1)
    t = lo + np.floor(rng.random(n_pairs) * (last - lo + 1)).astype(np.int64)
    chosen_idx = prefix_windows(t, n_frames)
    rejected = chosen.copy()
    rejected_idx = np.empty_like(chosen_idx)
    # prefix: a shorter prefix of the same demo, ending in [0, t - gap]
    sel = kind == 0
    t_short = np.floor(rng.random(n_pairs) * (t - gap + 1)).astype(np.int64)
    rejected_idx[sel] = prefix_windows(t_short[sel], n_frames)
    # rewind: forward to t, then backwards for 1..t frames
    sel = kind == 1
    back = np.floor(rng.random(n_pairs) * t).astype(np.int64) + 1
    rejected_idx[sel] = played_windows(t[sel], back[sel], n_frames)
    # reverse: the same prefix played backwards, from t to the first frame
    sel = kind == 2
    rejected_idx[sel] = t[sel, None] - prefix_windows(t[sel], n_frames)
    # different task: a demo of another task, forward to the same fraction of its length
    sel = np.flatnonzero(kind == 3)
    for p in sel:
        others = np.flatnonzero(task_of != task_of[chosen[p]])
        rejected[p] = others[rng.integers(0, len(others))]
        t_other = int(round(t[p] / last[p] * (lengths[rejected[p]] - 1)))
        rejected_idx[p] = prefix_windows(np.array([t_other]), n_frames)[0]
    return {
        "kind": kind,
        "chosen_episode": chosen,
        "chosen_idx": chosen_idx,
        "rejected_episode": rejected,
        "rejected_idx": rejected_idx,
    }


class RobometerLiteNet(PrefixTrunk):
    """Shared trunk (instruction token + frame tokens, causal Transformer) with two heads: sigmoid progress at
    every frame, and a preference score of the clip read at its last frame."""

    def __init__(self, emb_dim: int, text_dim: int, config: RobometerLiteConfig) -> None:
        super().__init__(emb_dim, text_dim, config)
        d = config.d_model
        self.progress_head = nn.Linear(d, 1)
        self.preference_head = nn.Sequential(nn.Linear(d, d), nn.GELU(), nn.Linear(d, 1))

    @override
    def forward(self, emb: torch.Tensor, task_emb: torch.Tensor) -> dict[str, torch.Tensor]:
        # emb (B, W, C, D), task_emb (B, L) -> progress (B, W), preference_score (B,)
        h = self.encode(emb, task_emb)  # (B, W, d)
        return {
            "progress": torch.sigmoid(self.progress_head(h).squeeze(-1)),
            "preference_score": self.preference_head(h[:, -1]).squeeze(-1),
        }


class PairBatcher:
    """Gathers both clips of each pair (frames and progress targets from the same indices) into one batch."""

    def __init__(self, store: EpisodeStore, episode_emb: torch.Tensor, config: RobometerLiteConfig) -> None:
        self.store, self.episode_emb, self.config = store, episode_emb, config

    def batch(self, pairs: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
        """Tensors of both clips of every pair (embeddings, instructions, targets, which is further)."""
        store, dev = self.store, self.store.device
        episode = np.concatenate([pairs["chosen_episode"], pairs["rejected_episode"]])  # (2P,)
        idx = np.concatenate([pairs["chosen_idx"], pairs["rejected_idx"]])  # (2P, W)
        emb, _ = store.gather(episode, idx)
        target = time_targets(idx, store.lengths[episode])  # (2P, W)
        n = len(pairs["kind"])
        target[n:][pairs["kind"] == PAIR_KINDS.index("different_task")] = 0.0  # another task's video: no progress
        instruction = np.concatenate([pairs["chosen_episode"], pairs["chosen_episode"]])  # the chosen's, for both
        return {
            "emb": emb,
            "task_emb": self.episode_emb[torch.from_numpy(instruction).to(dev)],
            "target": torch.from_numpy(target).to(dev),
        }

    def sample(self, rng: np.random.Generator, n_pairs: int) -> dict[str, torch.Tensor]:
        """``n_pairs`` random preference pairs as a training batch."""
        c = self.config
        pairs = build_pairs(
            self.store.lengths, self.store.task_of, c.n_frames, rng, n_pairs, c.pair_weights, c.min_prefix_gap
        )
        return self.batch(pairs)


def preference_losses(
    model: nn.Module, batch: dict[str, torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(progress MSE, Bradley-Terry loss, preference accuracy)`` of a pair batch (chosen clips first)."""
    out = model(batch["emb"], batch["task_emb"])
    mse = F.mse_loss(out["progress"], batch["target"])
    chosen, rejected = out["preference_score"].chunk(2)
    bt = F.softplus(rejected - chosen).mean()  # -log sigmoid(s_chosen - s_rejected)
    return mse, bt, (chosen > rejected).float().mean()


class RobometerLiteRewardModel(PrefixRewardModel):
    """Robometer-lite: a small Robometer-style multi-task reward model (not Robometer-4B).

    A shared causal Transformer trunk over the instruction token and the episode prefix subsampled to
    ``n_frames`` frames (3 cameras fused per frame) feeds a per-frame progress head (sigmoid, MSE against
    time-linear progress of demos; the reward) and a trajectory-preference head (a scalar score of the clip,
    trained with a Bradley-Terry loss on pairs; reported as the ``preference_score`` extra).

    Training labels come from demonstrations only (never ``EpisodeFeatures.progress``, success flags only to
    select demos): pairs are built as :func:`build_pairs` documents - a longer prefix of a demo beats a shorter
    one, a forward clip beats its rewound and its time-reversed versions, a demo beats another task's demo
    under its instruction. Progress is supervised on both clips (0 for the other task's clip).

    Faithful to Robometer: one trunk with a frame-level progress head and a trajectory-level preference head
    trained jointly, Bradley-Terry preferences, rejected clips synthesised by rewinding, reversing and
    swapping tasks. Differs: a ~1M-parameter Transformer over frozen frame embeddings instead of a
    fine-tuned 4B VLM over pixels; each clip is scored on its own (``P(A > B) = sigmoid(s_A - s_B)``) rather
    than both in one context; continuous progress instead of binned; no success head; no suboptimal or
    failed rollouts (demos only) and no RBM-1M pre-training; causal, so it works online.
    """

    name = "robometer_lite"
    role = "published_baseline"
    display_name = "Robometer-lite"
    net_cls = RobometerLiteNet
    config_cls = RobometerLiteConfig
    min_episode_length = 2  # a preference pair needs two prefix ends

    def __init__(self, config: RobometerLiteConfig | Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)

    def _loss_fn(self, store: EpisodeStore, episode_emb: torch.Tensor, task_emb: torch.Tensor, batch_size: int):
        """Preference pairs: progress MSE on both clips plus the Bradley-Terry loss on the pair."""
        c = self.config
        batcher = PairBatcher(store, episode_emb, c)

        def loss_fn(model, rng):
            mse, bt, acc = preference_losses(model, batcher.sample(rng, batch_size))
            loss = c.progress_loss_weight * mse + c.preference_loss_weight * bt
            return loss, {"mse": mse.item(), "bt": bt.item(), "acc": acc.item()}

        return loss_fn

    def _evaluator(self, store: EpisodeStore, episode_emb: torch.Tensor, n_pairs: int = 256):
        """Held-out metrics: value MSE, and BT loss / accuracy on a fixed set of pairs (seeded, built once)."""
        c = self.config
        batcher = PairBatcher(store, episode_emb, c)
        pairs = build_pairs(
            store.lengths,
            store.task_of,
            c.n_frames,
            np.random.default_rng(0),
            n_pairs,
            c.pair_weights,
            c.min_prefix_gap,
        )
        batch = batcher.batch(pairs)

        @torch.no_grad()
        def evaluate(module: nn.Module) -> dict[str, float]:
            _, bt, acc = preference_losses(module, batch)
            mse = time_linear_mse(prefix_progress_fn(module, store, episode_emb, c.n_frames), store)
            return {"val_mse": mse, "val_bt": float(bt), "val_pref_acc": float(acc)}

        return evaluate

    def evaluate_preferences(self, episodes: Sequence[EpisodeFeatures], n_pairs: int = 256) -> dict[str, float]:
        """The held-out metrics of :meth:`fit` on ``episodes`` with the current weights."""
        net = self._require_net()
        net.eval()
        store = EpisodeStore([f for f in episodes if f.length >= 2], self.device, "evaluation")
        with torch.no_grad():
            return self._evaluator(store, store.instruction_tables(self.task_embedding)[0], n_pairs)(net)
