"""SARM2 configuration: architecture, windows, augmentation and optimisation in one frozen dataclass."""

from __future__ import annotations

import dataclasses
from typing import Any

from sarm2_env.config import FrozenConfig
from sarm2_env.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class SARM2Config(FrozenConfig):
    """Hyper-parameters of SARM2 (docs/design.md §4).

    The defaults are the ``small`` preset: sized so the default checkpoint ships as a few-MB fp16 file and
    trains on 2 CPU cores. ``SARM2Config.preset("paper")`` gives the authors' sizes (d_model 512, 4 stage
    layers, 6 value layers, batch 64, their learning rates and warm-up).

    Windows: the stage estimator sees the current frame and ``n_history`` earlier frames ``frame_stride``
    apart; the value decoder additionally sees the episode's first frame. The paper used stride 30 at
    30 fps (1 s); our simulator records at 10 Hz, so the default stride of 10 frames is also 1 s.
    """

    # windows
    n_history: int = 5
    frame_stride: int = 10
    # stage estimator (action-primitive model)
    stage_d_model: int = 128
    stage_layers: int = 2
    # value decoder
    value_d_model: int = 128
    value_layers: int = 3
    n_heads: int = 4
    ff_mult: int = 4
    dropout: float = 0.1
    # multi-gate mixture of experts
    n_experts: int = 10
    top_k: int = 2
    expert_hidden: int = 128
    aux_loss_weight: float = 0.2
    #: let the load-balancing loss's gradient reach the Transformer trunk (True) or only the gates (False).
    #: Measured on the quick benchmark's data (800 steps): held-out demo value MSE 6.8e-4 through the trunk,
    #: 1.6e-4 gates only, 9.8e-5 with the loss off; so the default balances routing at the gates only.
    aux_through_trunk: bool = False
    # ablations: ``use_moe=False`` replaces the MMoE head with one MLP head; ``use_stage=False`` drops the
    # primitive estimator (one shared gate, no primitive token, no stage loss)
    use_moe: bool = True
    use_stage: bool = True
    # losses
    stage_loss_weight: float = 1.0
    group_loss_weight: float = 0.25
    #: During training, the gate and primitive token come from the expert's label ("label") or from the
    #: stage estimator's own prediction ("predicted"). Inference always uses the prediction.
    train_gate_source: str = "label"
    # rewind augmentation: with this probability a window ends with up to ``rewind_max_frames`` strides
    # played backwards, and its target is the progress of the frame it ends on (so progress can go down)
    rewind_prob: float = 0.8
    rewind_max_frames: int = 3
    # against the clock shortcut (demo-only training lets a model count frames instead of reading the scene):
    #: probability that a window is read at 2x or 0.5x the demo's pace (target: its current frame's progress)
    speed_prob: float = 0.0
    #: probability that the scene freezes for the window's last frames (the target does not advance)
    hold_prob: float = 0.0
    #: probability that a window gets another task's instruction and target 0 (progress must depend on the task)
    negative_prob: float = 0.0
    # optimisation (AdamW, linear warm-up then cosine decay, gradient clipping)
    batch_size: int = 64
    lr_value: float = 3e-4
    lr_stage: float = 3e-4
    weight_decay_value: float = 5e-3
    weight_decay_stage: float = 1e-2
    warmup_steps: int = 200
    grad_clip: float = 1.0
    steps: int = 3000
    val_fraction: float = 0.1

    def __post_init__(self) -> None:
        self._check_positive_ints(
            "n_history",
            "frame_stride",
            "stage_d_model",
            "stage_layers",
            "value_d_model",
            "value_layers",
            "n_heads",
            "ff_mult",
            "n_experts",
            "top_k",
            "expert_hidden",
            "batch_size",
            "steps",
            "rewind_max_frames",
        )
        for name in ("stage_d_model", "value_d_model"):
            if getattr(self, name) % self.n_heads:
                raise ConfigError(
                    f"`{name}` must be divisible by `n_heads` ({self.n_heads}); got {getattr(self, name)}"
                )
        if self.top_k > self.n_experts:
            raise ConfigError(f"`top_k` must be <= `n_experts` ({self.n_experts}); got {self.top_k}")
        for name in ("dropout", "val_fraction"):
            self._check_range(name, 0.0, 1.0, hi_open=True)
        for name in ("rewind_prob", "speed_prob", "hold_prob", "negative_prob"):
            self._check_range(name, 0.0, 1.0)
        self._check_non_negative(
            "aux_loss_weight",
            "stage_loss_weight",
            "group_loss_weight",
            "weight_decay_value",
            "weight_decay_stage",
            "grad_clip",
            "warmup_steps",
        )
        self._check_positive("lr_value", "lr_stage")
        self._check_choice("train_gate_source", ("label", "predicted"))

    @property
    def window(self) -> int:
        """Frames in the stage estimator's window (history + current)."""
        return self.n_history + 1


PRESETS: dict[str, dict[str, Any]] = {
    "small": {},
    # the authors' sizes and optimiser settings (docs/design.md §4); needs a GPU to train in reasonable time
    "paper": {
        "stage_d_model": 512,
        "stage_layers": 4,
        "value_d_model": 512,
        "value_layers": 6,
        "n_heads": 8,
        "expert_hidden": 512,
        "lr_value": 5e-5,
        "lr_stage": 2.5e-5,
        "warmup_steps": 1000,
        "steps": 20000,
    },
    # for tests only: trains in seconds, predicts nothing useful
    "tiny": {
        "n_history": 3,
        "frame_stride": 2,
        "stage_d_model": 32,
        "stage_layers": 1,
        "value_d_model": 32,
        "value_layers": 1,
        "n_heads": 2,
        "n_experts": 4,
        "expert_hidden": 16,
        "batch_size": 16,
        "warmup_steps": 5,
        "steps": 20,
        "dropout": 0.0,
    },
}

#: SARM2Config's presets: ``small`` (the defaults), ``paper``, ``tiny``
SARM2Config.presets = PRESETS
