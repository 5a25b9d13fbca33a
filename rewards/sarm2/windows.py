"""Frame windows for SARM2: which frames each prediction sees, rewind augmentation, and targets.

Every function returns *frame indices*; images, states, primitive labels and progress targets are all
gathered with the same indices, so they can never refer to different frames (a defect of the public
SARM code's rewind augmentation). A window for frame ``t`` holds only indices ``<= t``: that is what
makes the model causal, whatever attention mask the network uses.
"""

from __future__ import annotations

import numpy as np


def causal_windows(t: np.ndarray, n_history: int, stride: int) -> np.ndarray:
    """Indices ``[t - n*stride, ..., t - stride, t]`` clamped at 0: shape ``(B, n_history + 1)``.

    Early frames repeat frame 0 (the episode start) rather than seeing anything after ``t``.
    """
    t = np.asarray(t, dtype=np.int64).reshape(-1)  # (B,)
    offsets = stride * np.arange(n_history, -1, -1, dtype=np.int64)  # (W,)
    return np.maximum(t[:, None] - offsets[None, :], 0)  # (B, W)


def rewind_windows(
    length: np.ndarray,
    n_history: int,
    stride: int,
    rng: np.random.Generator,
    rewind_prob: float,
    max_rewind: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Sample one training window per episode length, with rewind augmentation.

    Without rewind the window ends at a uniformly drawn frame ``t``. With probability ``rewind_prob`` the
    video is played forward to a peak frame ``p`` and then backwards for ``k`` in ``1..max_rewind``
    strides, so the window ends on ``p - k*stride`` and its last ``k`` frames go back in time; its target is
    then the progress of that earlier frame (lower than the peak's).

    Returns ``(indices (B, n_history + 1), rewound (B,) int)`` where ``rewound`` is ``k`` (0 = none).
    The window's current frame, whose target the model regresses, is always ``indices[:, -1]``.
    """
    length = np.asarray(length, dtype=np.int64).reshape(-1)  # (B,)
    batch = len(length)
    window = n_history + 1
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
        back = peak[b] - stride * np.arange(1, kb + 1)
        out[b] = np.concatenate([forward[b], back])[-window:]
    return out, k


def time_progress(length: int) -> np.ndarray:
    """Whole-task time-linear progress ``t / (T - 1)`` of a demonstration with ``T`` frames: ``(T,)``."""
    if length <= 1:
        return np.ones(max(length, 0), dtype=np.float32)
    return (np.arange(length, dtype=np.float32) / np.float32(length - 1)).astype(np.float32)
