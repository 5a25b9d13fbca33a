"""Relabel rollouts with a reward model: progress queries -> smoothed per-frame progress -> rewards, advantages.

The authors' SPIRAL relabelling (docs/design.md §4) queries the reward model at 1 Hz, smooths, interpolates to
every frame and rewards each frame with its progress difference. Their smoother is monotone and negative
rewards are clipped, so a regress is never penalised; here both are options (default: off) and the raw
predictions are what the benchmark evaluates.

The chunk advantage of frame ``t`` for a policy that plans ``H`` actions at a time is
``A_t = p(t + H) - p(t)`` (docs/design.md §5); within ``H`` frames of the end the last slope is extrapolated.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import numpy as np

from sarm2_env.config import FrozenConfig
from sarm2_env.errors import ConfigError, InputShapeError, NonFiniteError

Smoothing = Literal["none", "moving_average", "monotone"]
SMOOTHINGS: tuple[str, ...] = ("none", "moving_average", "monotone")


@dataclasses.dataclass(frozen=True)
class RelabelConfig(FrozenConfig):
    """How reward-model predictions become per-frame progress and rewards.

    Args:
        query_every: frames between reward-model queries (10 = 1 Hz at the station's 10 Hz control rate);
            the first and the last frame are always queried, the rest interpolated linearly.
        smoothing: ``"none"``; ``"moving_average"`` over ``smooth_window`` queries (centred, shrunk at the
            ends); or ``"monotone"`` (running maximum: the authors' smoother, blind to regress).
        smooth_window: queries averaged by ``"moving_average"`` (odd).
        clip_negative: reward ``max(0, p_t - p_{t-1})`` (the authors' default) instead of the signed difference.
        chunk: ``H``, the policy's action-chunk length, for :func:`chunk_advantages`.
    """

    label = "relabelling"

    query_every: int = 10
    smoothing: Smoothing = "none"
    smooth_window: int = 3
    clip_negative: bool = False
    chunk: int = 10

    def __post_init__(self) -> None:
        self._check_positive_ints(*("query_every", "smooth_window", "chunk"))
        if self.smoothing not in SMOOTHINGS:
            raise ConfigError(f"`smoothing` must be one of {list(SMOOTHINGS)}; got {self.smoothing!r}")
        if self.smooth_window % 2 == 0:
            raise ConfigError(f"`smooth_window` must be odd (a centred window); got {self.smooth_window}")


@dataclasses.dataclass(frozen=True)
class Relabelled:
    """One rollout relabelled: per-frame ``progress (T,)``, ``reward (T,)`` (0 at frame 0) and ``advantage (T,)``."""

    progress: np.ndarray
    reward: np.ndarray
    advantage: np.ndarray
    query_frames: np.ndarray


def _check_series(values: np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1 or arr.size < 1:
        raise InputShapeError(f"`{name}`: expected a (T,) array with T >= 1; got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        bad = int(np.flatnonzero(~np.isfinite(arr))[0])
        raise NonFiniteError(f"`{name}`: non-finite value at frame {bad} (the reward model returned NaN/inf)")
    return arr


def query_frames(length: int, every: int) -> np.ndarray:
    """Frames at which the reward model is queried: ``0, every, 2 every, ...`` and always the last."""
    frames = np.arange(0, length, every)
    if frames[-1] != length - 1:
        frames = np.append(frames, length - 1)
    return frames


def smooth(values: np.ndarray, smoothing: Smoothing, window: int = 3) -> np.ndarray:
    """Smooth a sequence of progress queries (see :class:`RelabelConfig`)."""
    v = _check_series(values, "values")
    if smoothing == "none":
        return v.copy()
    if smoothing == "monotone":
        return np.maximum.accumulate(v)
    if smoothing == "moving_average":
        h = window // 2
        csum = np.concatenate([[0.0], np.cumsum(v)])
        idx = np.arange(len(v))
        lo, hi = np.clip(idx - h, 0, len(v)), np.clip(idx + h + 1, 0, len(v))
        return (csum[hi] - csum[lo]) / (hi - lo)
    raise ConfigError(f"`smoothing` must be one of {list(SMOOTHINGS)}; got {smoothing!r}")


def chunk_advantages(progress: np.ndarray, chunk: int) -> np.ndarray:
    """``A_t = p(t + H) - p(t)``; where ``t + H`` passes the end, the slope of the last ``H`` frames goes on."""
    p = _check_series(progress, "progress")
    n = len(p)
    if n == 1:
        return np.zeros(1)
    span = min(chunk, n - 1)
    end_slope = (p[-1] - p[-1 - span]) / span
    t = np.arange(n)
    ahead = t + chunk
    inside = ahead <= n - 1
    adv = np.empty(n)
    adv[inside] = p[ahead[inside]] - p[t[inside]]
    over = ~inside
    adv[over] = (p[-1] - p[t[over]]) + end_slope * (ahead[over] - (n - 1))
    return adv


def relabel_progress(per_frame_prediction: np.ndarray, config: RelabelConfig) -> Relabelled:
    """Relabel one rollout from the reward model's per-frame predictions ``(T,)``.

    Only the frames in :func:`query_frames` are read (as a 1 Hz online query would), smoothed, and
    interpolated back to every frame.
    """
    pred = _check_series(per_frame_prediction, "per_frame_prediction")
    frames = query_frames(len(pred), config.query_every)
    queried = smooth(np.clip(pred[frames], 0.0, 1.0), config.smoothing, config.smooth_window)
    progress = np.interp(np.arange(len(pred)), frames, queried)
    reward = np.diff(progress, prepend=progress[0])
    if config.clip_negative:
        reward = np.maximum(reward, 0.0)
    return Relabelled(
        progress=progress.astype(np.float32),
        reward=reward.astype(np.float32),
        advantage=chunk_advantages(progress, config.chunk).astype(np.float32),
        query_frames=frames,
    )
