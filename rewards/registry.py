"""Reward backends by name: ``make_reward_model("sarm2", checkpoint=...)``."""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING, Any, cast

from sarm2_env.errors import CheckpointError, ConfigError, UnknownNameError

if TYPE_CHECKING:
    from rewards.base import RewardModel, TrainableRewardModel

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


def reward_model_class(name: str) -> type[RewardModel]:
    """The class registered as ``name``; an unknown name lists the known ones and suggests the closest."""
    if name not in REGISTRY:
        raise UnknownNameError("reward model", name, REGISTRY)
    module, cls = REGISTRY[name].split(":")
    return getattr(importlib.import_module(module), cls)


def reward_models_with_role(*roles: str) -> list[str]:
    """Names of the registered backends whose class declares one of ``roles`` (:data:`rewards.base.ROLES`)."""
    from rewards.base import ROLES

    unknown = [r for r in roles if r not in ROLES]
    if unknown:
        raise UnknownNameError("reward-model role", unknown[0], ROLES)
    return [name for name in REGISTRY if reward_model_class(name).role in roles]


def make_reward_model(
    name: str, checkpoint: str | os.PathLike | None = "default", *, device: Any = None, **kwargs: Any
):
    """Build the reward backend registered as ``name``: the one rule every caller uses.

    ``checkpoint``:

    * ``"default"`` (the default): a trainable backend's shipped checkpoint, or a :class:`CheckpointError` that
      says what to pass when it ships none; backends without checkpoints (the ground-truth references, the VLM
      judges, which take ``vlm=...``) are built from ``kwargs``;
    * a directory: the checkpoint there (a reference refuses it: it reads ground truth and loads nothing);
    * ``None``: untrained, from keyword config (``config=``, ``encoder=``, ...), ready for ``fit``.

    ``device`` (``None``: cuda when available) goes to the trainable backends; the references run no network
    and the VLM judges take theirs in ``vlm=``, so it is not passed to them.
    """
    cls = reward_model_class(name)
    if cls.trainable and device is not None:
        kwargs["device"] = device
    if checkpoint is None or (str(checkpoint) == "default" and not cls.trainable):
        return cls(**kwargs)
    if cls.requires_vlm:
        raise ConfigError(
            f"`checkpoint`: {name} is a zero-shot judge with no checkpoint; build it with vlm=... instead"
        )
    if not cls.trainable:
        raise CheckpointError(f"`checkpoint`: the {name} backend reads ground truth and has no checkpoint")
    if str(checkpoint) == "default" and not cls.default_checkpoint:
        raise CheckpointError(
            f"`checkpoint`: {name!r} is trainable and ships no checkpoint; pass checkpoint=<directory> (train one "
            f"with `python -m rewards.train --model {name}`), or checkpoint=None for an untrained model"
        )
    return cast("type[TrainableRewardModel]", cls).load(checkpoint, **kwargs)


def reward_model_from_command_line(name: str, checkpoint: str | None, device: Any = None, flag: str = "--checkpoint "):
    """:func:`make_reward_model` for a command line: a missing shipped checkpoint is a :class:`ConfigError` that
    names the command's ``flag``; a VLM judge, which needs ``vlm=...``, is refused."""
    if reward_model_class(name).requires_vlm:
        raise ConfigError(f"backend {name!r} needs a vision-language model; it cannot be built from the command line")
    if checkpoint is not None:
        return make_reward_model(name, checkpoint=checkpoint, device=device)
    try:
        return make_reward_model(name, device=device)  # the backend's shipped checkpoint, where it needs one
    except CheckpointError as exc:
        raise ConfigError(f"{exc} (on the command line: {flag}PATH)") from exc
