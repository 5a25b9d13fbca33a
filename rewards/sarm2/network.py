"""SARM2 networks: the action-primitive stage estimator and the multi-gate MoE value decoder.

Shapes: B batch, W = n_history + 1 window frames, C = 3 cameras, D image-embedding size, S = 14 state,
L text-embedding size, d model width, E experts, G = 8 gate groups, P = 22 primitives.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from typing_extensions import override

from rewards.blocks import FrameTokens, causal_encoder, causal_mask
from rewards.sarm2.config import SARM2Config
from sarm2_env.constants import NUM_GROUPS, NUM_PRIMITIVES, PRIMITIVE_TO_GROUP, STATE_DIM


def _encoder(d_model: int, n_layers: int, config: SARM2Config) -> nn.TransformerEncoder:
    return causal_encoder(d_model, n_layers, config.n_heads, config.ff_mult, config.dropout)


class StageEstimator(nn.Module):
    """Causal Transformer over the last W frames -> logits over the 22 primitives and the 8 groups."""

    def __init__(self, emb_dim: int, config: SARM2Config) -> None:
        super().__init__()
        d = config.stage_d_model
        self.tokenizer = FrameTokens(emb_dim, d, use_state=True)
        self.position = nn.Parameter(torch.zeros(config.window, d))
        self.encoder = _encoder(d, config.stage_layers, config)
        self.norm = nn.LayerNorm(d)
        self.primitive_head = nn.Linear(d, NUM_PRIMITIVES)
        self.group_head = nn.Linear(d, NUM_GROUPS)
        nn.init.normal_(self.position, std=0.02)

    @override
    def forward(self, emb: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # emb (B, W, C, D), state (B, W, S) -> primitive logits (B, P), group logits (B, G)
        x = self.tokenizer(emb, state) + self.position  # (B, W, d)
        h = self.encoder(x, mask=causal_mask(x.shape[1], x.device), is_causal=True)
        h = self.norm(h[:, -1])  # (B, d): read out at the current frame only
        return self.primitive_head(h), self.group_head(h)


class MultiGateMoE(nn.Module):
    """G gate networks over E shared expert MLPs; each sample uses the gate of its group, top-k experts."""

    def __init__(self, d_model: int, config: SARM2Config) -> None:
        super().__init__()
        self.n_experts, self.top_k = config.n_experts, config.top_k
        self.aux_through_trunk = config.aux_through_trunk
        e, h = config.n_experts, config.expert_hidden
        self.gates = nn.Linear(d_model, NUM_GROUPS * e)
        self.w1 = nn.Parameter(torch.randn(e, d_model, h) * d_model**-0.5)
        self.b1 = nn.Parameter(torch.zeros(e, h))
        self.w2 = nn.Parameter(torch.randn(e, h) * h**-0.5)
        self.b2 = nn.Parameter(torch.zeros(e))

    def forward(self, h: torch.Tensor, group: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``h (B, d)``, ``group (B,)`` -> progress ``(B,)``, expert weights ``(B, E)``, load-balancing loss."""
        batch = h.shape[0]
        logits = self.gates(h).view(batch, NUM_GROUPS, self.n_experts)
        logits = logits[torch.arange(batch, device=h.device), group]  # (B, E): the gate of each sample's group
        top_val, top_idx = logits.topk(self.top_k, dim=-1)  # (B, k)
        weights = torch.zeros_like(logits).scatter(-1, top_idx, torch.softmax(top_val, dim=-1))  # (B, E)
        hidden = F.gelu(torch.einsum("bd,edh->beh", h, self.w1) + self.b1)  # (B, E, H)
        expert_out = torch.einsum("beh,eh->be", hidden, self.w2) + self.b2  # (B, E)
        progress = torch.sigmoid((weights * expert_out).sum(-1))  # (B,)
        # the load-balancing loss shapes the gates; by default its gradient stops there, so balancing the
        # routing does not pull the shared representation away from the value regression
        aux_logits = (
            logits
            if self.aux_through_trunk
            else self.gates(h.detach()).view(batch, NUM_GROUPS, -1)[torch.arange(batch, device=h.device), group]
        )
        return progress, weights, self._balance_loss(aux_logits, top_idx, group)

    def _balance_loss(self, logits: torch.Tensor, top_idx: torch.Tensor, group: torch.Tensor) -> torch.Tensor:
        # Switch-Transformer style per gate: E * sum_e (fraction routed to e) * (mean gate probability of e),
        # averaged over the gates used in the batch; 1.0 when perfectly balanced.
        probs = torch.softmax(logits, dim=-1)  # (B, E)
        routed = torch.zeros_like(probs).scatter(-1, top_idx, 1.0) / self.top_k  # (B, E)
        onehot = F.one_hot(group, NUM_GROUPS).to(probs.dtype)  # (B, G)
        count = onehot.sum(0)  # (G,)
        used = count > 0
        frac = (onehot.T @ routed)[used] / count[used, None]  # (G', E)
        mean_prob = (onehot.T @ probs)[used] / count[used, None]
        return (self.n_experts * (frac * mean_prob).sum(-1)).mean()


class SingleHead(nn.Module):
    """The ``use_moe=False`` ablation: one MLP value head, same interface as :class:`MultiGateMoE`."""

    def __init__(self, d_model: int, config: SARM2Config) -> None:
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(d_model, config.expert_hidden), nn.GELU(), nn.Linear(config.expert_hidden, 1)
        )

    @override
    def forward(self, h: torch.Tensor, group: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        progress = torch.sigmoid(self.mlp(h).squeeze(-1))  # (B,)
        return progress, torch.ones(h.shape[0], 1, device=h.device), h.new_zeros(())


class ValueDecoder(nn.Module):
    """Causal Transformer over [task, primitive, episode-start frame, W window frames] -> MMoE -> progress.

    Without the stage estimator (``use_stage=False``) the primitive token is left out.
    """

    def __init__(self, emb_dim: int, text_dim: int, config: SARM2Config) -> None:
        super().__init__()
        d = config.value_d_model
        self.use_primitive = config.use_stage
        self.tokenizer = FrameTokens(emb_dim, d, use_state=True)
        self.task_proj = nn.Linear(text_dim, d)
        self.primitive_proj = nn.Linear(text_dim, d) if config.use_stage else None
        prefix = 2 if config.use_stage else 1
        self.position = nn.Parameter(torch.zeros(config.window + 1 + prefix, d))  # prefix, start, W frames
        self.encoder = _encoder(d, config.value_layers, config)
        self.norm = nn.LayerNorm(d)
        self.moe = MultiGateMoE(d, config) if config.use_moe else SingleHead(d, config)
        nn.init.normal_(self.position, std=0.02)

    @override
    def forward(
        self,
        emb: torch.Tensor,
        state: torch.Tensor,
        task_emb: torch.Tensor,
        primitive_emb: torch.Tensor | None,
        group: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        # emb (B, 1 + W, C, D) with the episode-start frame first, state (B, 1 + W, S), task/primitive (B, L)
        frames = self.tokenizer(emb, state)  # (B, 1 + W, d)
        prefix = [self.task_proj(task_emb)]
        if self.primitive_proj is not None:
            prefix.append(self.primitive_proj(primitive_emb))
        x = torch.cat([torch.stack(prefix, dim=1), frames], dim=1) + self.position  # (B, W + 3, d)
        h = self.encoder(x, mask=causal_mask(x.shape[1], x.device), is_causal=True)
        return self.moe(self.norm(h[:, -1]), group)


class SARM2Net(nn.Module):
    """Stage estimator + MMoE value decoder, with state normalisation and primitive-name embeddings as buffers."""

    def __init__(self, config: SARM2Config, emb_dim: int, text_dim: int) -> None:
        super().__init__()
        self.config = config
        self.stage = StageEstimator(emb_dim, config) if config.use_stage else None
        self.value = ValueDecoder(emb_dim, text_dim, config)
        self.register_buffer("state_mean", torch.zeros(STATE_DIM))
        self.register_buffer("state_std", torch.ones(STATE_DIM))
        self.register_buffer("primitive_text", torch.zeros(NUM_PRIMITIVES, text_dim))
        self.register_buffer("primitive_group", torch.tensor(PRIMITIVE_TO_GROUP, dtype=torch.long))

    def forward(
        self,
        emb: torch.Tensor,
        state: torch.Tensor,
        task_emb: torch.Tensor,
        primitive: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Predict progress at the last frame of each window.

        ``emb (B, 1 + W, C, D)`` and ``state (B, 1 + W, S)`` hold the episode-start frame then the W window
        frames (oldest first); ``task_emb (B, L)``. ``primitive (B,)`` overrides the stage estimator's
        prediction for the gate and the primitive token (teacher forcing, or the oracle-stage ablation).
        """
        state = (state - self.state_mean) / self.state_std
        if self.stage is None:  # ablation: one shared gate, no primitive token
            used = torch.full((emb.shape[0],), -1, dtype=torch.long, device=emb.device)
            group = torch.zeros_like(used)
            primitive_logits = group_logits = None
            progress, weights, aux = self.value(emb, state, task_emb, None, group)
        else:
            primitive_logits, group_logits = self.stage(emb[:, 1:], state[:, 1:])  # (B, P), (B, G)
            used = primitive_logits.argmax(-1) if primitive is None else primitive  # (B,)
            group = self.primitive_group[used]  # (B,): the gate of the (predicted) primitive's group
            progress, weights, aux = self.value(emb, state, task_emb, self.primitive_text[used], group)
        return {
            "progress": progress,
            "primitive_logits": primitive_logits,
            "group_logits": group_logits,
            "primitive": used,
            "group": group,
            "expert_weights": weights,
            "aux_loss": aux,
        }
