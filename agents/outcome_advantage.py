"""Outcome advantages: how much better a rollout ended than its state at each frame promised.

A chunk's progress gain ``p(t+H) - p(t)`` (:func:`agents.relabel.chunk_advantages`) rates every motion that
raises progress alike: an approach that stops short of the sub-goal gains as much progress as one that reaches
it, so a weighting clones both. The outcome advantage compares what happened with what was expected from the
state instead::

    A_t = p_final - V(x_t)

with ``p_final`` the episode's final relabelled progress and ``V`` a small regression of it on the policy's
input features ``x_t``. ``V`` is cross-fitted: the rollouts are split into folds, and each fold's values come
from a regression trained on the other folds only. A value fitted on an episode's own states would learn its
outcome by heart (every state of a deterministic rollout is unique) and leave every advantage at 0.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from sarm2_env.errors import ConfigError, InputShapeError


def outcome_advantages(
    features: Sequence[np.ndarray],
    finals: Sequence[float],
    *,
    folds: int = 2,
    hidden: int = 128,
    steps: int = 800,
    seed: int = 0,
) -> list[np.ndarray]:
    """Per episode ``(T_i,)`` advantages ``final_i - V(features_i[t])`` with ``V`` cross-fitted over ``folds``.

    Args:
        features: one ``(T_i, F)`` array per episode (standardised inputs work best).
        finals: each episode's final progress.
        folds: how many groups of episodes the value is cross-fitted over (>= 2, <= episodes).
        hidden, steps, seed: the value regression (an MLP with two hidden layers; AdamW with weight decay 0.1, so
            the value stays smooth over the few dozen episodes of a round; MSE).
    """
    if len(features) != len(finals):
        raise InputShapeError(f"`finals`: expected one per episode ({len(features)}); got {len(finals)}")
    if not 2 <= folds <= len(features):
        raise ConfigError(f"`folds` must be in [2, episodes = {len(features)}]; got {folds}")
    dims = {np.shape(f)[1] if np.ndim(f) == 2 else -1 for f in features}
    if len(dims) != 1 or -1 in dims:
        raise InputShapeError(
            f"`features`: expected (T_i, F) arrays of one width; got shapes {[np.shape(f) for f in features]}"
        )
    group = np.random.default_rng(seed).permutation(len(features)) % folds
    values: list[np.ndarray | None] = [None] * len(features)
    for k in range(folds):
        train = [i for i in range(len(features)) if group[i] != k]
        x = np.concatenate([features[i] for i in train]).astype(np.float32)
        y = np.concatenate([np.full(len(features[i]), finals[i], np.float32) for i in train])
        value = _fit_value(x, y, hidden, steps, seed + k)
        for i in range(len(features)):
            if group[i] == k:
                with torch.no_grad():
                    v = value(torch.as_tensor(features[i], dtype=torch.float32)).squeeze(-1).numpy()
                # An expected final progress lies within the finals seen: a regression that strays below the
                # worst outcome gives a failure a positive advantage (a sparse PullPlug run without this clip
                # fell from 29/50 to 13/50, then 2/50).
                values[i] = np.clip(v, y.min(), y.max())
    return [float(finals[i]) - np.asarray(values[i], np.float64) for i in range(len(features))]


def _fit_value(x: np.ndarray, y: np.ndarray, hidden: int, steps: int, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    net = nn.Sequential(
        nn.Linear(x.shape[1], hidden), nn.GELU(), nn.Linear(hidden, hidden), nn.GELU(), nn.Linear(hidden, 1)
    )
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=0.1)  # a smooth value: few episodes
    xt, yt = torch.as_tensor(x), torch.as_tensor(y)[:, None]
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        idx = torch.as_tensor(rng.integers(0, len(x), size=min(512, len(x))))
        loss = nn.functional.mse_loss(net(xt[idx]), yt[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return net.eval()
