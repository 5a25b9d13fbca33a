"""``SARM2RewardModel``: the SARM2 backend behind the common reward-model interface."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rewards.base import RewardModel, RewardOutput, Session
from rewards.data import EpisodeFeatures, check_state, stack_cameras
from rewards.sarm2.config import SARM2Config
from rewards.sarm2.network import SARM2Net
from rewards.sarm2.windows import causal_windows
from sarm2_env.constants import CAMERAS, PRIMITIVES
from sarm2_env.errors import CheckpointError, ConfigError, DatasetError, InputShapeError, NonFiniteError

log = logging.getLogger(__name__)

#: Where ``checkpoint="default"`` points: the SARM2 checkpoint for the simulated station shipped in the repo.
DEFAULT_CHECKPOINT = Path(__file__).resolve().parent.parent / "checkpoints" / "sarm2-sim"
GATE_SOURCES = ("predicted", "label")
_CHUNK = 256


def primitive_text(name: str) -> str:
    """The text the primitive token embeds: ``pick_grab`` -> ``"pick grab"``."""
    return name.replace("_", " ")


class SARM2RewardModel(RewardModel):
    """SARM2: action-primitive stage estimator + multi-gate MoE value decoder over frozen frame embeddings.

    Build untrained with ``SARM2RewardModel(config, encoder=..., text_encoder=...)`` and :meth:`fit`, or load
    with ``SARM2RewardModel.load(path)`` / ``make_reward_model("sarm2", checkpoint=path)``.

    ``gate_source="label"`` routes the MoE by the expert's primitive label instead of the prediction (the
    oracle-stage ablation; only :meth:`predict_episode` on labelled episodes can use it).
    """

    name = "sarm2"
    trainable = True

    def __init__(
        self,
        config: SARM2Config | Mapping[str, Any] | None = None,
        *,
        encoder: Any = "efficientnet-lite0",
        encoder_path: str | os.PathLike | None = None,
        text_encoder: str = "minilm",
        text_encoder_path: str | os.PathLike | None = None,
        device: str | torch.device | None = None,
        gate_source: str = "predicted",
    ) -> None:
        super().__init__()
        from rewards.encoders import EncoderSpec, ImageEncoder, make_image_encoder
        from rewards.training import default_device

        if config is None:
            config = SARM2Config()
        elif isinstance(config, Mapping):
            config = SARM2Config.from_dict(dict(config))
        if gate_source not in GATE_SOURCES:
            raise ConfigError(f"`gate_source` must be one of {GATE_SOURCES}; got {gate_source!r}")
        self.config: SARM2Config = config
        self.device = default_device(device)
        self.gate_source = gate_source
        self.encoder_path = encoder_path
        if isinstance(encoder, ImageEncoder):
            self._spec = encoder.spec
            self._image_encoder = encoder
        elif isinstance(encoder, EncoderSpec):
            self._spec = encoder
        else:
            built = make_image_encoder(str(encoder), path=encoder_path, device=self.device)
            self._spec, self._image_encoder = built.spec, built
        self.text_encoder_name = text_encoder
        self.text_encoder_path = text_encoder_path
        self._text_encoder = None
        self.tasks: dict[str, str] = {}  # task id -> instruction seen in training
        self.instruction_embeddings: dict[str, np.ndarray] = {}
        self.training_summary: dict[str, Any] = {}
        self.net: SARM2Net | None = None

    # --- description -------------------------------------------------------------------------------
    @property
    def encoder_spec(self):
        return self._spec

    @property
    def label(self) -> str:
        qualifiers = [self._spec.name]
        if self._spec.name == "tiny":
            qualifiers.append("random-init encoder, test only")
        if self.gate_source == "label":
            qualifiers.append("oracle stage")
        return f"SARM2 ({', '.join(qualifiers)})"

    def covers(self, task: str) -> bool:
        return task in self.tasks or task in self.instruction_embeddings

    def _encoder_kwargs(self) -> dict[str, Any]:
        return {"path": self.encoder_path, "device": self.device}

    @property
    def text_encoder(self):
        if self._text_encoder is None:
            from rewards.encoders import make_text_encoder

            self._text_encoder = make_text_encoder(
                self.text_encoder_name, path=self.text_encoder_path, device=self.device
            )
        return self._text_encoder

    def _require_net(self) -> SARM2Net:
        if self.net is None:
            raise CheckpointError(
                "this SARM2 model has no weights yet: call fit(...) or load a checkpoint with "
                "make_reward_model('sarm2', checkpoint=...)"
            )
        return self.net

    def _build_net(self, text_dim: int) -> SARM2Net:
        self.net = SARM2Net(self.config, self._spec.dim, text_dim).to(self.device).eval()
        return self.net

    def _instruction(self, task: str) -> str:
        return self.tasks.get(task, task)

    def task_embedding(self, task: str) -> np.ndarray:
        """Embedding of ``task`` (a task id seen in training, or any instruction), cached per instruction."""
        instruction = self._instruction(task)
        if instruction not in self.instruction_embeddings:
            self.instruction_embeddings[instruction] = self.text_encoder.encode([instruction])[0].astype(np.float32)
        return self.instruction_embeddings[instruction]

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
            torch.from_numpy(emb).to(self.device),
            torch.from_numpy(state).to(self.device),
            torch.from_numpy(task_emb).to(self.device),
            None if primitive is None else torch.from_numpy(primitive).long().to(self.device),
        )
        result = {
            "progress": out["progress"].float().cpu().numpy(),
            "primitive_probs": torch.softmax(out["primitive_logits"].float(), -1).cpu().numpy(),
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
        parts: list[dict[str, np.ndarray]] = []
        for lo in range(0, feats.length, _CHUNK):
            t = np.arange(lo, min(lo + _CHUNK, feats.length))
            idx = self._windows(t)
            parts.append(
                self._forward_windows(
                    feats.embeddings[idx],
                    feats.state[idx],
                    np.repeat(task_emb[None], len(t), axis=0),
                    None if primitive is None else primitive[t],
                )
            )
        merged = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        return RewardOutput(
            progress=merged["progress"],
            primitive_probs=merged["primitive_probs"],
            normalization="none",
            query_indices=np.arange(feats.length),
            extras={"group": merged["group"], "expert_weights": merged["expert_weights"]},
        )

    def _check_dim(self, dim: int) -> None:
        if dim != self._spec.dim:
            raise InputShapeError(
                f"`frame_embeddings`: expected {self._spec.dim}-d embeddings from encoder {self._spec.key}; got {dim}-d"
            )

    # --- online ------------------------------------------------------------------------------------
    def start(self, task: str) -> Session:
        self._require_net()
        return Session(task=task, instruction=self._instruction(task), context={"task_emb": self.task_embedding(task)})

    def step_batch(self, sessions: Sequence[Session], frame_embeddings: np.ndarray, states: np.ndarray) -> np.ndarray:
        emb = stack_cameras(frame_embeddings)
        if emb.ndim != 3 or emb.shape[0] != len(sessions):
            raise InputShapeError(
                f"`frame_embeddings`: expected shape ({len(sessions)}, {len(CAMERAS)}, D); got {emb.shape}"
            )
        self._check_dim(emb.shape[-1])
        states = check_state(states, (len(sessions),), name="states")
        windows, window_states = [], []
        for i, session in enumerate(sessions):
            session.embeddings.append(emb[i])
            session.states.append(states[i])
            idx = self._windows(np.array([session.frame]))[0]  # only frames <= the newest one
            windows.append(np.stack([session.embeddings[j] for j in idx]))
            window_states.append(np.stack([session.states[j] for j in idx]))
        out = self._forward_windows(
            np.stack(windows), np.stack(window_states), np.stack([s.context["task_emb"] for s in sessions])
        )
        for i, session in enumerate(sessions):
            session.last = {
                "progress": float(out["progress"][i]),
                "primitive": PRIMITIVES[int(out["primitive_probs"][i].argmax())],
                "primitive_probs": out["primitive_probs"][i],
                "group": int(out["group"][i]),
                "expert_weights": out["expert_weights"][i],
            }
        return out["progress"].astype(np.float32)

    # --- training ----------------------------------------------------------------------------------
    def fit(
        self,
        train: Sequence[EpisodeFeatures],
        val: Sequence[EpisodeFeatures] = (),
        *,
        out_dir: str | os.PathLike | None = None,
        resume: bool = False,
        seed: int = 0,
        progress: bool = True,
        eval_every: int = 500,
        checkpoint_every: int = 1000,
        ctx=None,
        include_failures: bool = False,
    ) -> dict[str, Any]:
        """Train on demonstrations (time-linear targets); validate on ``val``; save to ``out_dir`` if given.

        Unsuccessful episodes are dropped unless ``include_failures`` (their time-linear labels would be wrong).
        """
        from rewards.sarm2.trainer import WindowBatcher, sarm2_loss, validate
        from rewards.training import init_distributed, run_training

        ctx = ctx or init_distributed(self.device)
        self.device = ctx.device
        train = self._usable(train, include_failures, "training")
        val = self._usable(val, include_failures, "validation") if val else []
        for feats in [*train, *val]:
            self._check_dim(feats.embeddings.shape[-1])
        self.tasks.update({f.task_id: f.instruction for f in [*train, *val]})
        instructions = sorted({f.instruction for f in [*train, *val]})
        text = self.text_encoder.encode([*instructions, *[primitive_text(p) for p in PRIMITIVES]])
        self.instruction_embeddings.update({s: text[i].astype(np.float32) for i, s in enumerate(instructions)})
        net = self._build_net(text.shape[1])
        net.primitive_text.copy_(torch.from_numpy(text[len(instructions) :]))
        states = np.concatenate([f.state for f in train])
        net.state_mean.copy_(torch.from_numpy(states.mean(0)))
        net.state_std.copy_(torch.from_numpy(np.maximum(states.std(0), 1e-3)))
        c = self.config
        batcher = WindowBatcher(train, self.instruction_embeddings, c, ctx.device)
        val_batcher = WindowBatcher(val, self.instruction_embeddings, c, ctx.device) if val else None
        stage = [p for n, p in net.named_parameters() if n.startswith("stage.")]
        value = [p for n, p in net.named_parameters() if not n.startswith("stage.")]
        groups = [
            {"params": value, "lr": c.lr_value, "weight_decay": c.weight_decay_value},
            {"params": stage, "lr": c.lr_stage, "weight_decay": c.weight_decay_stage},
        ]
        batch_size = max(1, c.batch_size // ctx.world_size)

        def loss_fn(model, rng):
            return sarm2_loss(model, batcher.sample(rng, batch_size), c)

        def save(module, summary):
            self.training_summary = {**summary, "train_episodes": len(train), "val_episodes": len(val)}
            if out_dir is not None:
                self.save(out_dir)

        summary = run_training(
            module=net,
            param_groups=groups,
            loss_fn=loss_fn,
            steps=c.steps,
            warmup=c.warmup_steps,
            grad_clip=c.grad_clip,
            seed=seed,
            ctx=ctx,
            out_dir=out_dir,
            resume=resume,
            evaluate=(lambda m: validate(m, val_batcher)) if val_batcher is not None else None,
            save=save,
            eval_every=eval_every,
            checkpoint_every=checkpoint_every,
            progress=progress,
        )
        net.eval()
        self.training_summary = {**summary, "train_episodes": len(train), "val_episodes": len(val)}
        return self.training_summary

    @staticmethod
    def _usable(episodes: Sequence[EpisodeFeatures], include_failures: bool, what: str) -> list[EpisodeFeatures]:
        kept = [e for e in episodes if include_failures or e.success]
        if len(kept) < len(episodes):
            log.warning("SARM2 %s: dropped %d unsuccessful episodes", what, len(episodes) - len(kept))
        if not kept and what == "training":
            raise DatasetError(f"SARM2 {what}: expected successful demonstrations; got none of {len(episodes)}")
        return kept

    # --- persistence -------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike, *, half: bool = False) -> Path:
        """Write config, encoder spec, task table and weights (``half`` stores fp16 weights)."""
        from rewards.checkpoint import save_checkpoint

        net = self._require_net()
        instructions = sorted(self.instruction_embeddings)
        tensors = {f"net.{k}": v for k, v in net.state_dict().items()}
        if instructions:
            tensors["instruction_embeddings"] = torch.from_numpy(
                np.stack([self.instruction_embeddings[s] for s in instructions])
            )
        meta = {
            "model": self.name,
            "config": self.config.to_dict(),
            "encoder": self._spec.to_dict(),
            "text_encoder": self.text_encoder_name,
            "text_dim": int(net.primitive_text.shape[1]),
            "tasks": self.tasks,
            "instructions": instructions,
            "training": _jsonable(self.training_summary),
            "versions": {"torch": torch.__version__},
        }
        keep = tuple(f"net.{n}" for n, _ in net.named_buffers()) + ("instruction_embeddings",)
        return save_checkpoint(path, meta, tensors, half=half, keep_fp32=keep)

    @classmethod
    def load(
        cls,
        path: str | os.PathLike,
        *,
        encoder: Any = None,
        encoder_path: str | os.PathLike | None = None,
        text_encoder_path: str | os.PathLike | None = None,
        device: str | torch.device | None = None,
        gate_source: str = "predicted",
    ) -> SARM2RewardModel:
        """Load a checkpoint; ``path="default"`` is the shipped simulated-station checkpoint.

        ``encoder`` (a name, spec or built encoder) must match the one the checkpoint was trained with.
        """
        from rewards.checkpoint import load_checkpoint
        from rewards.encoders import EncoderSpec, ImageEncoder

        path = DEFAULT_CHECKPOINT if str(path) == "default" else Path(path)
        meta, tensors = load_checkpoint(path, expect_model=cls.name)
        spec = EncoderSpec.from_dict(meta["encoder"])
        if encoder is not None:
            given = encoder.spec if isinstance(encoder, ImageEncoder) else encoder
            given_name = given.name if isinstance(given, EncoderSpec) else str(given)
            if given_name != spec.name or (isinstance(given, EncoderSpec) and given != spec):
                raise CheckpointError(
                    f"`encoder`: checkpoint {str(path)!r} was trained with image encoder {spec.key}; got "
                    f"{given.key if isinstance(given, EncoderSpec) else given_name!r}. Use the same encoder or "
                    f"retrain with `python -m rewards.train --encoder {given_name}`"
                )
        model = cls(
            SARM2Config.from_dict(meta["config"]),
            encoder=encoder if isinstance(encoder, ImageEncoder) else spec,
            encoder_path=encoder_path,
            text_encoder=meta["text_encoder"],
            text_encoder_path=text_encoder_path,
            device=device,
            gate_source=gate_source,
        )
        net = model._build_net(int(meta["text_dim"]))
        state = {k[4:]: v for k, v in tensors.items() if k.startswith("net.")}
        try:
            net.load_state_dict(state)
        except RuntimeError as exc:
            raise CheckpointError(f"{path}: weights do not fit the recorded config ({exc})") from exc
        net.eval()
        if "instruction_embeddings" in tensors:
            table = tensors["instruction_embeddings"].numpy()
            model.instruction_embeddings = {s: table[i] for i, s in enumerate(meta["instructions"])}
        model.tasks = dict(meta.get("tasks", {}))
        model.training_summary = meta.get("training", {})
        model.checkpoint_path = path
        return model


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    return value
