"""Trainable baseline reward models over the same frozen frame embeddings as SARM2.

* ``sarm`` - :class:`~rewards.baselines.sarm_v1.SARMRewardModel`: SARM v1 (arXiv 2509.25358), one stage-aware
  model per task;
* ``rewind`` - :class:`~rewards.baselines.rewind.ReWiNDRewardModel`: ReWiND (arXiv 2505.10911), multi-task,
  video rewind and mismatched-instruction negatives;
* ``robometer_lite`` - :class:`~rewards.baselines.robometer_lite.RobometerLiteRewardModel`: a small
  Robometer-style model (progress head + Bradley-Terry preference head); not Robometer-4B.

Each class docstring says what it is faithful to and what differs from the published model. Import the
modules (or use ``rewards.make_reward_model(name)``); this package imports nothing heavy by itself.
"""

__all__ = ["ReWiNDConfig", "RobometerLiteConfig", "SARMConfig"]

_CONFIGS = {
    "SARMConfig": "rewards.baselines.sarm_v1",
    "ReWiNDConfig": "rewards.baselines.rewind",
    "RobometerLiteConfig": "rewards.baselines.robometer_lite",
}


def __getattr__(name: str):
    if name in _CONFIGS:
        from importlib import import_module

        return getattr(import_module(_CONFIGS[name]), name)
    raise AttributeError(f"module 'rewards.baselines' has no attribute {name!r}")
