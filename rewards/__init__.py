"""Reward-model backends behind one interface (docs/design.md §3), their encoders, and training.

``make_reward_model(name, checkpoint=...)`` builds any registered backend; every backend implements
:class:`rewards.base.RewardModel` (offline ``predict_episode``, online ``reset``/``step``). Heavy modules
load on first attribute access so ``import rewards`` stays cheap.
"""

from __future__ import annotations

from rewards.registry import REGISTRY, list_reward_models, make_reward_model

__all__ = [
    "REGISTRY",
    "EpisodeFeatures",
    "RewardModel",
    "RewardOutput",
    "list_reward_models",
    "make_reward_model",
]


def __getattr__(name: str):  # lazy: these import numpy-heavy / torch-heavy modules
    if name in ("RewardModel", "RewardOutput", "Session"):
        from rewards import base

        return getattr(base, name)
    if name == "EpisodeFeatures":
        from rewards.data import EpisodeFeatures

        return EpisodeFeatures
    raise AttributeError(f"module 'rewards' has no attribute {name!r}")
