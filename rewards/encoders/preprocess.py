"""Image preprocessing in plain torch (no torchvision): layout change, square resize, normalisation."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

__all__ = ["normalize", "resize", "to_unit_nchw"]


def to_unit_nchw(frames: torch.Tensor) -> torch.Tensor:
    """``(B, H, W, 3)`` uint8 -> ``(B, 3, H, W)`` float32 in ``[0, 1]`` (on the same device)."""
    return frames.permute(0, 3, 1, 2).to(torch.float32).div_(255.0)


def resize(x: torch.Tensor, size: int, mode: str = "bilinear") -> torch.Tensor:
    """Resize ``(B, C, H, W)`` float images to ``(B, C, size, size)`` with antialiasing (no-op if already there).

    ``mode`` is ``"bilinear"`` or ``"bicubic"``; bicubic output is clamped to ``[0, 1]`` (it overshoots at edges,
    which an 8-bit resampler would clip too).
    """
    if x.shape[-2:] == (size, size):
        return x
    y = F.interpolate(x, size=(size, size), mode=mode, align_corners=False, antialias=True)
    return y.clamp_(0.0, 1.0) if mode == "bicubic" else y


def normalize(x: torch.Tensor, mean: float | Sequence[float], std: float | Sequence[float]) -> torch.Tensor:
    """``(x - mean) / std`` per channel of ``(B, C, H, W)`` images; scalars apply to every channel."""
    mean_t = torch.as_tensor(mean, dtype=x.dtype, device=x.device).reshape(1, -1, 1, 1)
    std_t = torch.as_tensor(std, dtype=x.dtype, device=x.device).reshape(1, -1, 1, 1)
    return (x - mean_t) / std_t
