"""Reward backends by name: ``make_reward_model("sarm2", checkpoint=...)``."""

from __future__ import annotations

import importlib
import os
from typing import Any

from sarm2_env.errors import CheckpointError, UnknownNameError

#: name -> "module:Class". One table; every backend the wrapper, benchmark and SPIRAL can use is here.
REGISTRY: dict[str, str] = {
    "sarm2": "rewards.sarm2.model:SARM2RewardModel",
    "sarm2_no_moe": "rewards.sarm2.model:SARM2NoMoERewardModel",
    "sarm2_no_stage": "rewards.sarm2.model:SARM2NoStageRewardModel",
    "sarm2_oracle_stage": "rewards.sarm2.model:SARM2OracleStageRewardModel",
    "sarm": "rewards.baselines.sarm_v1:SARMRewardModel",
    "rewind": "rewards.baselines.rewind:ReWiNDRewardModel",
    "robometer_lite": "rewards.baselines.robometer_lite:RobometerLiteRewardModel",
    "oracle": "rewards.references:OracleRewardModel",
    "time_linear": "rewards.references:TimeLinearRewardModel",
    "sparse": "rewards.references:SparseRewardModel",
    "gvl": "rewards.vlm.judges:GVLRewardModel",
    "topreward": "rewards.vlm.judges:TOPRewardModel",
    "roboreward_prompt": "rewards.vlm.judges:RoboRewardPromptModel",
}


def list_reward_models() -> list[str]:
    """Names of the registered reward backends."""
    return sorted(REGISTRY)


def reward_model_class(name: str) -> type:
    """The class registered as ``name``; an unknown name lists the known ones and suggests the closest."""
    if name not in REGISTRY:
        raise UnknownNameError("reward model", name, REGISTRY)
    module, cls = REGISTRY[name].split(":")
    return getattr(importlib.import_module(module), cls)


def make_reward_model(name: str, checkpoint: str | os.PathLike | None = None, **kwargs: Any):
    """Build a reward backend: from a checkpoint directory (``checkpoint="default"`` picks the shipped one
    where the backend has one), or untrained / zero-shot from keyword config."""
    cls = reward_model_class(name)
    if checkpoint is not None and not hasattr(cls, "load"):
        if str(checkpoint) != "default":
            raise CheckpointError(f"`checkpoint`: the {name} backend reads ground truth and has no checkpoint")
        return cls()  # ground-truth references (oracle, sparse) have nothing to load and no options
    if checkpoint is not None:
        return cls.load(checkpoint, **kwargs)
    return cls(**kwargs)
