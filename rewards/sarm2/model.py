"""``SARM2RewardModel``: the SARM2 backend behind the common reward-model interface."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import torch
from typing_extensions import (
    Unpack,  # typing.Unpack needs Python 3.11
    override,
)

from rewards.base import RewardOutput, Session, spread_to_steps
from rewards.data import EpisodeFeatures, check_state
from rewards.embedding_model import CHECKPOINT_DIR, AdaptableMixin, EmbeddingRewardModel
from rewards.sarm2.config import SARM2Config
from rewards.sarm2.network import SARM2Net
from rewards.sarm2.windows import causal_windows
from rewards.train_loop import FitOptions
from sarm2_env.constants import PRIMITIVES
from sarm2_env.errors import ConfigError, DatasetError, NonFiniteError

log = logging.getLogger(__name__)

#: Where ``checkpoint="default"`` points: the SARM2 checkpoint for the simulated station shipped in the repo.
DEFAULT_CHECKPOINT = CHECKPOINT_DIR / "sarm2-sim"
GATE_SOURCES = ("predicted", "label")
_CHUNK = 256


def primitive_text(name: str) -> str:
    """The text the primitive token embeds: ``pick_grab`` -> ``"pick grab"``."""
    return name.replace("_", " ")


class SARM2RewardModel(AdaptableMixin, EmbeddingRewardModel):
    """SARM2: action-primitive stage estimator + multi-gate MoE value decoder over frozen frame embeddings.

    Build untrained with ``SARM2RewardModel(config, encoder=..., text_encoder=...)`` and :meth:`fit`, or load
    with ``SARM2RewardModel.load(path)`` / ``make_reward_model("sarm2", checkpoint=path)``.

    ``gate_source="label"`` routes the MoE by the expert's primitive label instead of the prediction (the
    oracle-stage ablation; only :meth:`predict_episode` on labelled episodes can use it).
    """

    name = "sarm2"
    config_cls = SARM2Config
    trains_on_negatives = True
    default_checkpoint = "sarm2-sim"

    def __init__(
        self,
        config: SARM2Config | Mapping[str, Any] | None = None,
        *,
        gate_source: str = "predicted",
        **kwargs: Any,
    ) -> None:
        if gate_source not in GATE_SOURCES:
            raise ConfigError(f"`gate_source` must be one of {GATE_SOURCES}; got {gate_source!r}")
        super().__init__(config, **kwargs)
        self.gate_source = gate_source

    def _label_qualifiers(self) -> list[str]:
        qualifiers = super()._label_qualifiers()
        if self.gate_source == "label":
            qualifiers.append("oracle stage")
        return qualifiers

    @property
    @override
    def label(self) -> str:
        return f"SARM2 ({', '.join(self._label_qualifiers())})" if self.name == "sarm2" else super().label

    def _build_net(self, text_dim: int) -> SARM2Net:
        self.net = SARM2Net(self.config, self._spec.dim, text_dim).to(self.device).eval()
        return self.net

    # --- inference core (shared by the offline and online paths) -----------------------------------
    @torch.no_grad()
    def _forward_windows(
        self,
        emb: np.ndarray,
        state: np.ndarray,
        task_emb: np.ndarray,
        primitive: np.ndarray | None = None,
    ) -> dict[str, np.ndarray]:
        """``emb (B, 1 + W, C, D)``, ``state (B, 1 + W, S)``, ``task_emb (B, L)`` -> numpy outputs per window."""
        net = self._require_net()
        out = net(
            torch.from_numpy(emb).to(self.device, torch.float32),
            torch.from_numpy(state).to(self.device),
            torch.from_numpy(task_emb).to(self.device),
            None if primitive is None else torch.from_numpy(primitive).long().to(self.device),
        )
        result = {
            "progress": out["progress"].float().cpu().numpy(),
            "primitive_probs": None
            if out["primitive_logits"] is None
            else torch.softmax(out["primitive_logits"].float(), -1).cpu().numpy(),
            "group": out["group"].cpu().numpy(),
            "expert_weights": out["expert_weights"].float().cpu().numpy(),
        }
        if not np.isfinite(result["progress"]).all():
            raise NonFiniteError("SARM2 progress: expected finite values; the model produced NaN or inf")
        return result

    def _windows(self, t: np.ndarray) -> np.ndarray:
        w = causal_windows(t, self.config.n_history, self.config.frame_stride)  # (B, W)
        return np.concatenate([np.zeros((len(w), 1), dtype=np.int64), w], axis=1)  # (B, 1 + W): start frame first

    # --- offline -----------------------------------------------------------------------------------
    @override
    def predict_episode(self, episode, embeddings=None) -> RewardOutput:
        feats = self.features(episode, embeddings)
        self._check_dim(feats.embeddings.shape[-1])
        check_state(feats.state, (feats.length,), name="episode.state")
        task_emb = self.task_embedding(feats.task_id if feats.task_id in self.tasks else feats.instruction)
        primitive = None
        if self.gate_source == "label":
            if (feats.primitive < 0).any():
                raise DatasetError("oracle-stage SARM2 needs primitive labels on every frame; got -1 labels")
            primitive = feats.primitive
        steps = feats.scored_steps  # every step, or the query steps of an episode recorded at a query rate
        parts: list[dict[str, np.ndarray]] = []
        for lo in range(0, len(steps), _CHUNK):
            t = steps[lo : lo + _CHUNK]
            idx = self._windows(t)
            parts.append(
                self._forward_windows(
                    feats.embeddings_at(idx),
                    feats.state[idx],
                    np.repeat(task_emb[None], len(t), axis=0),
                    None if primitive is None else primitive[t],
                )
            )
        merged = {k: None if parts[0][k] is None else np.concatenate([p[k] for p in parts]) for k in parts[0]}
        progress, per_step = spread_to_steps(merged.pop("progress"), merged, steps, feats.length)
        return RewardOutput(
            progress=progress,
            primitive_probs=per_step["primitive_probs"],
            normalization="none",
            query_indices=steps,
            extras={"group": per_step["group"], "expert_weights": per_step["expert_weights"]},
        )

    # --- online ------------------------------------------------------------------------------------
    @override
    def start(self, task: str) -> Session:
        self._require_net()
        return Session(task=task, instruction=self._instruction(task), context={"task_emb": self.task_embedding(task)})

    @override
    def step_batch(self, sessions: Sequence[Session], frame_embeddings: np.ndarray, states: np.ndarray) -> np.ndarray:
        windows, window_states = self._push_frames(sessions, frame_embeddings, states, self._windows)
        primitive = self._session_labels(sessions) if self.gate_source == "label" else None
        out = self._forward_windows(
            windows, window_states, np.stack([s.context["task_emb"] for s in sessions]), primitive
        )
        probs = out["primitive_probs"]
        for i, session in enumerate(sessions):
            session.last = {
                "progress": float(out["progress"][i]),
                "primitive": None if probs is None else PRIMITIVES[int(probs[i].argmax())],
                "primitive_probs": None if probs is None else probs[i],
                "group": int(out["group"][i]),
                "expert_weights": out["expert_weights"][i],
            }
        return out["progress"].astype(np.float32)

    @staticmethod
    def _session_labels(sessions: Sequence[Session]) -> np.ndarray:
        labels = []
        for session in sessions:
            name = session.info.get("primitive")
            if name not in PRIMITIVES:
                raise DatasetError(
                    "oracle-stage SARM2 online needs the expert's primitive in info['primitive'] at every step; "
                    f"got {name!r}"
                )
            labels.append(PRIMITIVES.index(name))
        return np.asarray(labels, dtype=np.int64)

    # --- training ----------------------------------------------------------------------------------
    def fit(
        self,
        train: Sequence[EpisodeFeatures],
        val: Sequence[EpisodeFeatures] = (),
        *,
        include_failures: bool = False,
        negatives: Sequence[EpisodeFeatures] = (),
        **options: Unpack[FitOptions],
    ) -> dict[str, Any]:
        """Train on demonstrations (time-linear targets); validate on ``val``; save to ``out_dir`` if given.

        Unsuccessful episodes are dropped unless ``include_failures`` (their time-linear labels would be wrong).
        ``negatives`` are episodes in which the task does not advance (the motion controls of
        :mod:`tasks.motion_controls`: idle, random actions, arm play), trained towards their recorded physics
        progress (``physics_progress``, about 0) so that motion alone earns no progress. ``options``: the run
        options of :class:`rewards.train_loop.FitOptions` (``out_dir``, ``resume``, ``seed``, ...).
        """
        from rewards.sarm2.objective import WindowBatcher, sarm2_loss, validate
        from rewards.train_loop import fit_options, init_distributed, seeded_init

        opts = fit_options(options, self.name)
        ctx = opts["ctx"] or init_distributed(self.device)
        self.device = ctx.device
        train = self._usable(train, include_failures, "training")
        val = self._usable(val, include_failures, "validation") if val else []
        primitive_emb = self._register_tasks([*train, *val, *negatives], [primitive_text(p) for p in PRIMITIVES])
        with seeded_init(opts["seed"]):
            net = self._build_net(primitive_emb.shape[1])
        net.primitive_text.copy_(torch.from_numpy(primitive_emb))
        states = np.concatenate([f.state for f in train])
        net.state_mean.copy_(torch.from_numpy(states.mean(0)))
        net.state_std.copy_(torch.from_numpy(np.maximum(states.std(0), 1e-3)))
        c = self.config
        targets = [None] * len(train) + [np.asarray(n.physics_progress, dtype=np.float32) for n in negatives]
        batcher = WindowBatcher([*train, *negatives], self.instruction_embeddings, c, ctx.device, targets=targets)
        val_batcher = WindowBatcher(val, self.instruction_embeddings, c, ctx.device) if val else None
        groups = self._param_groups(net)
        batch_size = max(1, c.batch_size // ctx.world_size)

        def loss_fn(model, rng):
            return sarm2_loss(model, batcher.sample(rng, batch_size), c)

        counts = {"train_episodes": len(train), "val_episodes": len(val), "negative_episodes": len(negatives)}
        evaluate = (lambda m: validate(m, val_batcher)) if val_batcher is not None else None
        return self._train_net(net, groups, loss_fn, ctx=ctx, evaluate=evaluate, counts=counts, options=opts)

    def _param_groups(self, net: SARM2Net, lr_scale: float = 1.0) -> list[dict[str, Any]]:
        """The value decoder and the stage estimator, each at its own learning rate and weight decay."""
        c = self.config
        stage = [p for n, p in net.named_parameters() if n.startswith("stage.")]
        value = [p for n, p in net.named_parameters() if not n.startswith("stage.")]
        return [
            {"params": value, "lr": c.lr_value * lr_scale, "weight_decay": c.weight_decay_value},
            {"params": stage, "lr": c.lr_stage * lr_scale, "weight_decay": c.weight_decay_stage},
        ]

    def _adaptation_objective(self, net, episodes, curves, device, lr_scale):
        """SARM2's training loss on windows whose target is the curve at their current frame; primitive labels of
        -1 (rollouts) are ignored."""
        from rewards.sarm2.objective import WindowBatcher, sarm2_loss

        c = self.config
        batcher = WindowBatcher(episodes, self.instruction_embeddings, c, device, targets=curves, held_frames=True)
        return self._param_groups(net, lr_scale), lambda model, rng: sarm2_loss(
            model, batcher.sample(rng, c.batch_size), c
        )


class _ConfigAblation(SARM2RewardModel):
    """An ablation of SARM2 by its config: any config given, with :attr:`config_changes` applied."""

    role = "ablation"
    default_checkpoint = None
    #: the config fields the ablation sets, whatever the config given
    config_changes: ClassVar[dict[str, Any]] = {}

    def __init__(self, config: SARM2Config | Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(_with(config, **self.config_changes), **kwargs)


class SARM2NoMoERewardModel(_ConfigAblation):
    """Ablation: SARM2 with a single value head (an MLP) in place of the multi-gate mixture of experts."""

    name = "sarm2_no_moe"
    config_changes = {"use_moe": False}


class SARM2NoStageRewardModel(_ConfigAblation):
    """Ablation: SARM2 without the primitive estimator: one shared gate, no primitive token or stage loss."""

    name = "sarm2_no_stage"
    config_changes = {"use_stage": False}


class SARM2OracleStageRewardModel(SARM2RewardModel):
    """Ablation (upper bound): SARM2 whose gate and primitive token come from the expert's true primitive.

    Offline it reads the episode's labels; online it reads ``info["primitive"]``, which the scripted
    experts provide (so it cannot run on hardware without a labeller).
    """

    name = "sarm2_oracle_stage"
    role = "upper_bound"
    default_checkpoint = None

    def __init__(self, config: SARM2Config | Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        kwargs["gate_source"] = "label"
        super().__init__(config, **kwargs)


def _with(config: SARM2Config | Mapping[str, Any] | None, **changes: Any) -> SARM2Config:
    if config is None:
        config = SARM2Config()
    elif isinstance(config, Mapping):
        config = SARM2Config.from_dict(dict(config))
    return config.replace(**changes)
