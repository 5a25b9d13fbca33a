"""SARM2 (arXiv 2606.10305): action-primitive stage estimator + multi-gate MoE value decoder.

``SARM2RewardModel`` (the backend), ``SARM2Config`` (its hyper-parameters and presets).
"""

from rewards.sarm2.config import SARM2Config

__all__ = ["SARM2Config", "SARM2RewardModel"]


def __getattr__(name: str):  # the model pulls in torch; the config does not
    if name == "SARM2RewardModel":
        from rewards.sarm2.model import SARM2RewardModel

        return SARM2RewardModel
    raise AttributeError(f"module 'rewards.sarm2' has no attribute {name!r}")
