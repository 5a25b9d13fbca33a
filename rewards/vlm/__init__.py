"""Zero-shot VLM judges (GVL, TOPReward, RoboReward-style prompt) and the VLM backends they call.

``make_reward_model("gvl", vlm={"kind": "local", "path": "/dir"})`` or
``make_reward_model("topreward", vlm={"kind": "http", "base_url": "http://localhost:8000", "model": "<name>"})``
builds a judge; see :mod:`rewards.vlm.judges` for what each one asks and how its answers become progress,
:mod:`rewards.vlm.backends` for the backends and :mod:`rewards.vlm.prompts` for the prompts and reply parsers.
Importing this package does not import torch or transformers (``LocalVLM`` does, when built).
"""

from __future__ import annotations

from rewards.vlm.backends import HTTPVLM, LocalVLM, VLMBackend, VLMConnectionError, VLMReplyError, make_vlm
from rewards.vlm.judges import (
    GVLConfig,
    GVLRewardModel,
    RoboRewardPromptConfig,
    RoboRewardPromptModel,
    TOPRewardConfig,
    TOPRewardModel,
    VLMJudge,
    task_instruction,
)

__all__ = [
    "GVLConfig",
    "GVLRewardModel",
    "HTTPVLM",
    "LocalVLM",
    "RoboRewardPromptConfig",
    "RoboRewardPromptModel",
    "TOPRewardConfig",
    "TOPRewardModel",
    "VLMBackend",
    "VLMConnectionError",
    "VLMJudge",
    "VLMReplyError",
    "make_vlm",
    "task_instruction",
]
