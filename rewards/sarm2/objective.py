"""SARM2's training objective: window batches over cached frame embeddings, the loss, and held-out validation."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from rewards.data import EpisodeFeatures, require_every_frame, stacked_rows
from rewards.sarm2.config import SARM2Config
from rewards.sarm2.windows import causal_windows, hold_windows, rewind_windows, speed_strides
from sarm2_env.constants import PRIMITIVE_TO_GROUP


class WindowBatcher:
    """All training episodes in flat tensors (embeddings kept as fp16, which is their stored precision), and
    window gathering by (episode, frame indices) so images, states, labels and targets share indices.

    Targets are whole-task time-linear progress ``t / (T - 1)`` (demonstrations), or, for episodes given a
    curve in ``targets`` (annotated rollouts for reward-model adaptation), that curve's value at the
    window's current frame. The physics oracle in ``EpisodeFeatures.progress`` is never read here.
    ``held_frames`` admits episodes recorded at a query rate (adaptation only: their curves must be held like
    their frames, :func:`rewards.data.adaptation_targets`).
    """

    def __init__(
        self,
        episodes: Sequence[EpisodeFeatures],
        task_embeddings: Mapping[str, np.ndarray],
        config: SARM2Config,
        device: torch.device,
        targets: Sequence[np.ndarray | None] | None = None,
        held_frames: bool = False,
    ) -> None:
        if not episodes:
            from sarm2_env.errors import DatasetError

            raise DatasetError("SARM2 training: expected at least one episode; got none")
        if not held_frames:  # adaptation passes query-rate rollouts with targets held like their frames
            require_every_frame(episodes, "SARM2 training")
        self.config, self.device = config, device
        self.lengths = np.array([e.length for e in episodes], dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(self.lengths)[:-1]]).astype(np.int64)
        self.emb, self.row = stacked_rows(episodes, device)  # (R, C, D) half, (N,) the row each step sees
        self.state = torch.from_numpy(np.concatenate([e.state for e in episodes])).to(device)  # (N, S)
        self.primitive = torch.from_numpy(np.concatenate([e.primitive for e in episodes])).long().to(device)  # (N,)
        self.task_emb = torch.from_numpy(np.stack([task_embeddings[e.instruction] for e in episodes])).float()
        self.task_emb = self.task_emb.to(device)  # (E, L)
        # the distinct instructions, for mismatched-instruction negatives
        instructions = sorted({e.instruction for e in episodes})
        self.instruction_id = np.array([instructions.index(e.instruction) for e in episodes], dtype=np.int64)  # (E,)
        self.instruction_emb = torch.from_numpy(np.stack([task_embeddings[i] for i in instructions])).float()
        self.instruction_emb = self.instruction_emb.to(device)  # (U, L)
        #: (N,) per-frame target curves; NaN where the time-linear target applies
        self.curve = np.full(int(self.lengths.sum()), np.nan, dtype=np.float32)
        if targets is not None:
            if len(targets) != len(episodes):
                from sarm2_env.errors import InputShapeError

                want = len(episodes)
                raise InputShapeError(f"`targets`: expected one entry per episode ({want}); got {len(targets)}")
            for k, curve in enumerate(targets):
                if curve is None:
                    continue
                curve = np.asarray(curve, dtype=np.float32)
                if curve.shape != (self.lengths[k],) or not np.all(np.isfinite(curve)):
                    from sarm2_env.errors import InputShapeError

                    raise InputShapeError(
                        f"`targets[{k}]`: expected {self.lengths[k]} finite values; got shape {curve.shape}"
                    )
                self.curve[self.offsets[k] : self.offsets[k] + self.lengths[k]] = np.clip(curve, 0.0, 1.0)

    def __len__(self) -> int:
        return len(self.lengths)

    def gather(self, episode: np.ndarray, window: np.ndarray) -> dict[str, torch.Tensor]:
        """Inputs and targets for windows ``window (B, W)`` of episodes ``episode (B,)``."""
        full = np.concatenate([np.zeros((len(window), 1), dtype=np.int64), window], axis=1)  # (B, 1 + W)
        flat = torch.from_numpy(self.offsets[episode][:, None] + full).to(self.device)  # (B, 1 + W)
        current = window[:, -1]
        target = current / np.maximum(self.lengths[episode] - 1, 1)  # (B,) time-linear progress
        given = self.curve[self.offsets[episode] + current]  # (B,) annotated targets, NaN if none
        target = np.where(np.isnan(given), target, given)
        return {
            "emb": self.emb[self.row[flat]].float(),  # (B, 1 + W, C, D)
            "state": self.state[flat],  # (B, 1 + W, S)
            "task_emb": self.task_emb[torch.from_numpy(episode).to(self.device)],  # (B, L)
            "primitive": self.primitive[flat[:, -1]],  # (B,) label of the current frame
            "target": torch.from_numpy(target.astype(np.float32)).to(self.device),
        }

    def sample(self, rng: np.random.Generator, batch_size: int) -> dict[str, torch.Tensor]:
        """Episodes uniformly (so short tasks are not drowned by long ones), then an augmented window.

        Augmentations, each off at probability 0 (and then drawing nothing from ``rng``): rewind, speed (the
        window read at 2x or 0.5x the demo's pace), hold (the scene frozen for the window's last frames, the
        target not advancing) and mismatched instructions (another task's instruction, target 0).
        """
        c = self.config
        episode = rng.integers(0, len(self.lengths), size=batch_size)
        stride = c.frame_stride
        if c.speed_prob > 0:
            stride = speed_strides(c.frame_stride, batch_size, rng, c.speed_prob)
        window, _ = rewind_windows(self.lengths[episode], c.n_history, stride, rng, c.rewind_prob, c.rewind_max_frames)
        if c.hold_prob > 0:
            window = hold_windows(window, rng, c.hold_prob)
        batch = self.gather(episode, window)
        n_instructions = len(self.instruction_emb)
        if c.negative_prob > 0 and n_instructions > 1:
            negative = rng.random(batch_size) < c.negative_prob
            other = (self.instruction_id[episode] + rng.integers(1, n_instructions, size=batch_size)) % n_instructions
            mask = torch.from_numpy(negative).to(self.device)
            batch["task_emb"] = torch.where(
                mask[:, None], self.instruction_emb[torch.from_numpy(other).to(self.device)], batch["task_emb"]
            )
            batch["target"] = torch.where(mask, torch.zeros_like(batch["target"]), batch["target"])
        return batch

    def all_windows(self, max_windows: int | None = None, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
        """Causal windows for every frame (or an even subsample), in chunks of 512, for validation."""
        episode = np.repeat(np.arange(len(self.lengths)), self.lengths)
        frame = np.concatenate([np.arange(n) for n in self.lengths])
        if max_windows is not None and len(frame) > max_windows:
            keep = np.sort(np.random.default_rng(seed).choice(len(frame), max_windows, replace=False))
            episode, frame = episode[keep], frame[keep]
        windows = causal_windows(frame, self.config.n_history, self.config.frame_stride)
        return [(episode[i : i + 512], windows[i : i + 512]) for i in range(0, len(frame), 512)]


_GROUP_OF = torch.tensor(PRIMITIVE_TO_GROUP, dtype=torch.long)


def sarm2_loss(model, batch: dict[str, torch.Tensor], config: SARM2Config) -> tuple[torch.Tensor, dict[str, float]]:
    """MSE on progress + aux load balancing + primitive and group cross-entropy (labels -1 are ignored)."""
    label = batch["primitive"]
    known = label >= 0
    override = label.clamp(min=0) if config.train_gate_source == "label" else None
    out = model(batch["emb"], batch["state"], batch["task_emb"], override)
    mse = F.mse_loss(out["progress"], batch["target"])
    loss = mse + config.aux_loss_weight * out["aux_loss"]
    scalars = {"mse": mse.item(), "aux": out["aux_loss"].item()}
    if out["primitive_logits"] is not None and known.any():
        ce = F.cross_entropy(out["primitive_logits"][known], label[known])
        group = _GROUP_OF.to(label.device)[label[known]]
        ce_group = F.cross_entropy(out["group_logits"][known], group)
        loss = loss + config.stage_loss_weight * ce + config.group_loss_weight * ce_group
        scalars["ce"] = ce.item()
    return loss, scalars


@torch.no_grad()
def validate(net, batcher: WindowBatcher, max_windows: int = 4096) -> dict[str, float]:
    """Held-out value MSE against time-linear progress, primitive and group accuracy (causal windows)."""
    se, n, correct, correct_group, labelled = 0.0, 0, 0, 0, 0
    for episode, window in batcher.all_windows(max_windows):
        batch = batcher.gather(episode, window)
        out = net(batch["emb"], batch["state"], batch["task_emb"])
        se += float(((out["progress"] - batch["target"]) ** 2).sum())
        n += len(episode)
        if out["primitive_logits"] is None:
            continue
        known = batch["primitive"] >= 0
        correct += int((out["primitive_logits"].argmax(-1)[known] == batch["primitive"][known]).sum())
        group = _GROUP_OF.to(known.device)[batch["primitive"][known]]
        correct_group += int((out["group_logits"].argmax(-1)[known] == group).sum())
        labelled += int(known.sum())
    metrics = {"val_mse": se / max(n, 1)}
    if labelled:
        metrics["val_primitive_acc"] = correct / labelled
        metrics["val_group_acc"] = correct_group / labelled
    return metrics
