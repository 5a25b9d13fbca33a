"""Network blocks every learned reward model shares (SARM2 and the trainable baselines).

* :class:`FrameTokens`: one fused token per frame from the camera embeddings (and the normalised state);
* :func:`causal_encoder`, :func:`causal_mask`, :class:`CausalTransformer`: a pre-norm Transformer encoder under
  a causal mask (token i attends to tokens <= i);
* :func:`init_positions`: a learned position embedding.

Parameter names are part of the checkpoint format: a change here must keep them.

Shapes: B batch, N tokens, C = 3 cameras, D image-embedding size, S = 14 state, d width.
"""

from __future__ import annotations

import torch
from torch import nn
from typing_extensions import override

from sarm2_env.constants import CAMERAS, STATE_DIM


class FrameTokens(nn.Module):
    """One fused token per frame from the 3 camera embeddings (and the normalised state, when used)."""

    def __init__(self, emb_dim: int, d_model: int, use_state: bool, n_cameras: int = len(CAMERAS)) -> None:
        super().__init__()
        self.camera_norm = nn.LayerNorm(emb_dim)
        self.camera_proj = nn.Linear(n_cameras * emb_dim, d_model)
        self.state_proj = nn.Linear(STATE_DIM, d_model) if use_state else None
        self.mix = nn.Sequential(nn.GELU(), nn.Linear(d_model, d_model))

    @override
    def forward(self, emb: torch.Tensor, state: torch.Tensor | None = None) -> torch.Tensor:
        # emb (..., C, D), state (..., S) normalised -> (..., d)
        x = self.camera_proj(self.camera_norm(emb).flatten(-2))
        if self.state_proj is not None:
            x = x + self.state_proj(state)
        return x + self.mix(x)


def causal_encoder(d_model: int, n_layers: int, n_heads: int, ff_mult: int, dropout: float) -> nn.TransformerEncoder:
    """``n_layers`` pre-norm GELU encoder layers (batch first); pass :func:`causal_mask` when calling it."""
    layer = nn.TransformerEncoderLayer(
        d_model,
        n_heads,
        dim_feedforward=ff_mult * d_model,
        dropout=dropout,
        activation="gelu",
        batch_first=True,
        norm_first=True,
    )
    return nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)


def causal_mask(length: int, device: torch.device) -> torch.Tensor:
    """``(length, length)`` additive mask: ``-inf`` above the diagonal, so token i sees tokens <= i."""
    return torch.triu(torch.full((length, length), float("-inf"), device=device), diagonal=1)


class CausalTransformer(nn.Module):
    """Pre-norm Transformer encoder under a causal mask (token i attends to tokens <= i), final LayerNorm."""

    def __init__(self, d_model: int, n_layers: int, n_heads: int, ff_mult: int, dropout: float) -> None:
        super().__init__()
        self.encoder = causal_encoder(d_model, n_layers, n_heads, ff_mult, dropout)
        self.norm = nn.LayerNorm(d_model)

    @override
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x (B, N, d) -> (B, N, d)
        return self.norm(self.encoder(x, mask=causal_mask(x.shape[1], x.device), is_causal=True))


def init_positions(n: int, d_model: int) -> nn.Parameter:
    """A learned position embedding ``(n, d)``."""
    return nn.Parameter(torch.randn(n, d_model) * 0.02)
