"""A tiny random-init conv net (64-d), for tests only: fast, needs no weights, identical on every machine."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from rewards.encoders.base import EncoderSpec, ImageEncoder, resolve_device
from rewards.encoders.preprocess import normalize, resize, to_unit_nchw
from sarm2_env.errors import ConfigError

__all__ = ["DEFAULT_IMAGE_SIZE", "TinyConvEncoder"]

DEFAULT_IMAGE_SIZE = 32
EMBED_DIM = 64
SEED = 0


class _TinyConvNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.convs = nn.Sequential(
            nn.Conv2d(3, 16, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(16, 32, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(32, 64, 3, stride=2, padding=1),
            nn.ReLU(),
        )
        self.proj = nn.Linear(64, EMBED_DIM)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.convs(x)  # (B, 64, S/8, S/8)
        return self.proj(h.mean(dim=(2, 3)))  # (B, EMBED_DIM)


def _init_deterministic(module: nn.Module, seed: int) -> None:
    """He-normal weights and zero biases drawn from numpy's PCG64, stable across machines and torch versions."""
    rng = np.random.default_rng(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name.endswith("bias"):
                p.zero_()
            else:
                fan_in = int(np.prod(p.shape[1:]))
                w = rng.standard_normal(size=tuple(p.shape)) * np.sqrt(2.0 / fan_in)
                p.copy_(torch.from_numpy(w.astype(np.float32)))


class TinyConvEncoder(ImageEncoder):
    """Three stride-2 3x3 convs (16/32/64 channels, ReLU), global average pool, linear to 64-d.

    Random-init with a fixed seed (0): meaningless features, for tests only; ``pretrained`` is False and the label
    says so.

    Args:
        image_size: square input side (>= 8).
        device: torch device; ``None`` picks CUDA when available.
        batch_size: frames per forward pass.
    """

    def __init__(
        self,
        image_size: int = DEFAULT_IMAGE_SIZE,
        *,
        device: str | torch.device | None = None,
        batch_size: int = 16,
    ) -> None:
        if not isinstance(image_size, int) or isinstance(image_size, bool) or image_size < 8:
            raise ConfigError(f"`image_size` must be an int >= 8 for the tiny encoder; got {image_size!r}")
        net = _TinyConvNet()
        _init_deterministic(net, SEED)
        dev = resolve_device(device)
        self._model = net.to(dev).eval().requires_grad_(False)
        super().__init__(
            spec=EncoderSpec(name="tiny", image_size=image_size, dim=EMBED_DIM, weights=f"random-init:seed{SEED}"),
            label="tiny conv (random-init, test only)",
            pretrained=False,
            device=dev,
            batch_size=batch_size,
        )

    def _embed(self, frames: torch.Tensor) -> torch.Tensor:
        x = normalize(resize(to_unit_nchw(frames), self.image_size), 0.5, 0.5)  # (B, 3, S, S) in [-1, 1]
        return self._model(x)
