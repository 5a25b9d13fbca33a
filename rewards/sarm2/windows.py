"""Frame windows for SARM2: which frames each prediction sees, rewind augmentation, and targets.

Every function returns *frame indices*; images, states, primitive labels and progress targets are all
gathered with the same indices, so they can never refer to different frames (a defect of the public
SARM code's rewind augmentation). A window for frame ``t`` holds only indices ``<= t``: that is what
makes the model causal, whatever attention mask the network uses.
"""

from __future__ import annotations

import numpy as np


def causal_windows(t: np.ndarray, n_history: int, stride: int | np.ndarray) -> np.ndarray:
    """Indices ``[t - n*stride, ..., t - stride, t]`` clamped at 0: shape ``(B, n_history + 1)``.

    Early frames repeat frame 0 (the episode start) rather than seeing anything after ``t``. ``stride`` is one
    int or one per window ``(B,)`` (speed augmentation).
    """
    t = np.asarray(t, dtype=np.int64).reshape(-1)  # (B,)
    steps = np.arange(n_history, -1, -1, dtype=np.int64)  # (W,)
    offsets = np.asarray(stride, dtype=np.int64).reshape(-1, 1) * steps[None, :]  # (1 or B, W)
    return np.maximum(t[:, None] - offsets, 0)  # (B, W)


def rewind_windows(
    length: np.ndarray,
    n_history: int,
    stride: int | np.ndarray,
    rng: np.random.Generator,
    rewind_prob: float,
    max_rewind: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Sample one training window per episode length, with rewind augmentation.

    Without rewind the window ends at a uniformly drawn frame ``t``. With probability ``rewind_prob`` the
    video is played forward to a peak frame ``p`` and then backwards for ``k`` in ``1..max_rewind``
    strides, so the window ends on ``p - k*stride`` and its last ``k`` frames go back in time; its target is
    then the progress of that earlier frame (lower than the peak's). ``stride`` is one int or one per window.

    Returns ``(indices (B, n_history + 1), rewound (B,) int)`` where ``rewound`` is ``k`` (0 = none).
    The window's current frame, whose target the model regresses, is always ``indices[:, -1]``.
    """
    length = np.asarray(length, dtype=np.int64).reshape(-1)  # (B,)
    batch = len(length)
    window = n_history + 1
    stride = np.broadcast_to(np.asarray(stride, dtype=np.int64), (batch,))
    peak = (rng.random(batch) * length).astype(np.int64)  # (B,) uniform in [0, T)
    k = rng.integers(1, max_rewind + 1, size=batch)
    k = np.minimum(k, peak // stride)  # cannot rewind before the first frame
    k = np.where(rng.random(batch) < rewind_prob, k, 0)
    # played sequence, newest last: forward frames peak - j*stride (j = window-1 .. 0), then the rewound
    # frames peak - stride, ..., peak - k*stride; the window is its last `window` entries.
    forward = causal_windows(peak, window - 1, stride)  # (B, W) ascending, ends at peak
    out = np.empty((batch, window), dtype=np.int64)
    for b in range(batch):
        kb = int(k[b])
        back = peak[b] - stride[b] * np.arange(1, kb + 1)
        out[b] = np.concatenate([forward[b], back])[-window:]
    return out, k


def speed_strides(stride: int, batch: int, rng: np.random.Generator, speed_prob: float) -> np.ndarray:
    """Per-window strides ``(B,)`` for speed augmentation: with probability ``speed_prob`` the window is read at
    twice (``2 * stride``) or half (``stride // 2``, at least 1) the demo's pace, else at ``stride``.

    The target stays the progress of the window's current frame, so a model cannot learn progress from how far
    apart in time its frames were recorded (a clock), only from what they show.
    """
    fast = rng.random(batch) < 0.5
    changed = np.where(fast, 2 * stride, max(1, stride // 2))
    return np.where(rng.random(batch) < speed_prob, changed, stride).astype(np.int64)


def hold_windows(window: np.ndarray, rng: np.random.Generator, hold_prob: float) -> np.ndarray:
    """Pause augmentation: with probability ``hold_prob`` the scene freezes inside the window.

    The last ``j`` frames (``j`` in ``1..W-1``) repeat the frame before them, as if the robot had stopped; the
    current frame is then that frame, so the target does not advance while nothing happens. ``(B, W)`` in,
    a new ``(B, W)`` out.
    """
    out = window.copy()
    batch, width = out.shape
    if width < 2:
        return out
    held = np.flatnonzero(rng.random(batch) < hold_prob)
    j = rng.integers(1, width, size=len(held))
    for b, jb in zip(held, j):
        out[b, width - jb :] = out[b, width - jb - 1]
    return out


def time_progress(length: int) -> np.ndarray:
    """Whole-task time-linear progress ``t / (T - 1)`` of a demonstration with ``T`` frames: ``(T,)``."""
    if length <= 1:
        return np.ones(max(length, 0), dtype=np.float32)
    return (np.arange(length, dtype=np.float32) / np.float32(length - 1)).astype(np.float32)
