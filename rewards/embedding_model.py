"""Shared machinery of trainable reward models over frozen frame embeddings and instruction embeddings.

Subclasses (SARM2, its ablations, the trainable baselines) set ``name``, ``config_cls`` and implement
``_build_net(text_dim)`` plus the interface methods; this class handles the image-encoder spec, the text
encoder, the table of trained tasks and their instruction embeddings, checkpoints and input checks.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn
from typing_extensions import override

from rewards.base import TrainableRewardModel
from rewards.data import EpisodeFeatures, check_state, stack_cameras
from sarm2_env.constants import CAMERAS
from sarm2_env.errors import CheckpointError, DatasetError, InputShapeError

log = logging.getLogger(__name__)

#: Where ``checkpoint="default"`` points for backends that ship one.
CHECKPOINT_DIR = Path(__file__).resolve().parent / "checkpoints"


class EmbeddingRewardModel(TrainableRewardModel):
    """Base of reward models that read cached frame embeddings (see the module docstring).

    ``encoder`` is an image-encoder name (built now), an :class:`EncoderSpec` (built on first use) or a built
    encoder; ``text_encoder`` names the text encoder used for instructions (and primitive names).
    """

    def __init__(
        self,
        config: Any = None,
        *,
        encoder: Any = "efficientnet-lite0",
        encoder_path: str | os.PathLike | None = None,
        text_encoder: str = "minilm",
        text_encoder_path: str | os.PathLike | None = None,
        device: str | torch.device | None = None,
    ) -> None:
        super().__init__()
        from rewards.encoders import EncoderSpec, ImageEncoder, make_image_encoder
        from rewards.train_loop import default_device

        if config is None:
            config = self.config_cls()
        elif isinstance(config, Mapping):
            config = self.config_cls.from_dict(dict(config))
        self.config = config
        self.device = default_device(device)
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
        self.checkpoint_path: Path | None = None
        self.net: nn.Module | None = None

    # --- description -------------------------------------------------------------------------------
    @property
    @override
    def encoder_spec(self):
        return self._spec

    def _label_qualifiers(self) -> list[str]:
        qualifiers = [self._spec.name]
        if self._spec.name == "tiny":
            qualifiers.append("random-init encoder, test only")
        return qualifiers

    #: how tables name the backend, before its qualifiers (the registry name when empty)
    display_name: ClassVar[str] = ""

    @property
    @override
    def label(self) -> str:
        return f"{self.display_name or self.name} ({', '.join(self._label_qualifiers())})"

    @override
    def covers(self, task: str) -> bool:
        return task in self.tasks or task in self.instruction_embeddings

    def _encoder_kwargs(self) -> dict[str, Any]:
        return {"path": self.encoder_path, "device": self.device}

    @property
    def text_encoder(self):
        """The sentence encoder of the instructions (built on first use)."""
        if self._text_encoder is None:
            from rewards.encoders import make_text_encoder

            self._text_encoder = make_text_encoder(
                self.text_encoder_name, path=self.text_encoder_path, device=self.device
            )
        return self._text_encoder

    def _require_net(self) -> nn.Module:
        if self.net is None:
            raise CheckpointError(
                f"this {self.name} model has no weights yet: call fit(...) or load a checkpoint with "
                f"make_reward_model({self.name!r}, checkpoint=...)"
            )
        return self.net

    def _build_net(self, text_dim: int) -> nn.Module:
        """Create ``self.net`` (on ``self.device``, eval mode) for text embeddings of size ``text_dim``."""
        raise NotImplementedError

    def _instruction(self, task: str) -> str:
        return self.tasks.get(task, task)

    def task_embedding(self, task: str) -> np.ndarray:
        """Embedding of ``task`` (a task id seen in training, or any instruction), cached per instruction."""
        instruction = self._instruction(task)
        if instruction not in self.instruction_embeddings:
            self.instruction_embeddings[instruction] = self.text_encoder.encode([instruction])[0].astype(np.float32)
        return self.instruction_embeddings[instruction]

    def _check_dim(self, dim: int) -> None:
        if dim != self._spec.dim:
            raise InputShapeError(
                f"`frame_embeddings`: expected {self._spec.dim}-d embeddings from encoder {self._spec.key}; got {dim}-d"
            )

    def _push_frames(
        self,
        sessions,
        frame_embeddings: np.ndarray,
        states: np.ndarray,
        window_of: Callable[[np.ndarray], np.ndarray],
    ) -> tuple[np.ndarray, np.ndarray]:
        """Validate one new frame per session, append it to the session's in-memory cache, and gather each
        session's window ``window_of(np.array([t]))[0]`` (indices <= t) -> ``(B, W, C, D)``, ``(B, W, S)``."""
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
            idx = window_of(np.array([session.frame]))[0]  # only frames <= the newest one
            windows.append(np.stack([session.embeddings[j] for j in idx]))
            window_states.append(np.stack([session.states[j] for j in idx]))
        return np.stack(windows), np.stack(window_states)

    # --- training helpers --------------------------------------------------------------------------
    def _usable(self, episodes: Sequence[EpisodeFeatures], include_failures: bool, what: str) -> list:
        """Demonstrations only (time-linear labels are wrong for failures) unless ``include_failures``."""
        kept = [e for e in episodes if include_failures or e.success]
        if len(kept) < len(episodes):
            log.warning("%s %s: dropped %d unsuccessful episodes", self.name, what, len(episodes) - len(kept))
        if not kept and what == "training":
            raise DatasetError(f"{self.name} {what}: expected successful demonstrations; got none of {len(episodes)}")
        for feats in kept:
            self._check_dim(feats.embeddings.shape[-1])
        return kept

    def _register_tasks(self, episodes: Sequence[EpisodeFeatures], extra_texts: Sequence[str] = ()) -> np.ndarray:
        """Record the tasks and embed their instructions; returns the embeddings of ``extra_texts``."""
        self.tasks.update({f.task_id: f.instruction for f in episodes})
        instructions = sorted({f.instruction for f in episodes})
        text = self.text_encoder.encode([*instructions, *extra_texts])
        self.instruction_embeddings.update({s: text[i].astype(np.float32) for i, s in enumerate(instructions)})
        self._text_dim = int(text.shape[1])
        return text[len(instructions) :]

    # --- persistence -------------------------------------------------------------------------------
    def _extra_meta(self) -> dict[str, Any]:
        """Backend-specific JSON metadata to store in the checkpoint."""
        return {}

    def _load_extra_meta(self, meta: dict[str, Any]) -> None:
        """Restore what :meth:`_extra_meta` stored."""

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
            "text_dim": int(self._text_dim),
            "tasks": self.tasks,
            "instructions": instructions,
            "training": _jsonable(self.training_summary),
            "extra": _jsonable(self._extra_meta()),
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
        **kwargs: Any,
    ):
        """Load a checkpoint (``path="default"``: the shipped one, where the backend has one).

        ``encoder`` (a name, spec or built encoder) must match the one the checkpoint was trained with.
        """
        from rewards.checkpoint import load_checkpoint
        from rewards.encoders import EncoderSpec, ImageEncoder

        if str(path) == "default":
            if cls.default_checkpoint is None:
                raise CheckpointError(f"{cls.name} ships no default checkpoint; pass checkpoint=<directory>")
            path = CHECKPOINT_DIR / cls.default_checkpoint
        path = Path(path)
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
            cls.config_cls.from_dict(meta["config"]),
            encoder=encoder if isinstance(encoder, ImageEncoder) else spec,
            encoder_path=encoder_path,
            text_encoder=meta["text_encoder"],
            text_encoder_path=text_encoder_path,
            device=device,
            **kwargs,
        )
        model._text_dim = int(meta["text_dim"])
        net = model._build_net(model._text_dim)
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
        model._load_extra_meta(meta.get("extra", {}))
        model.checkpoint_path = path
        return model

    def _train_net(
        self,
        net: nn.Module,
        param_groups: list[dict[str, Any]],
        loss_fn: Callable,
        *,
        ctx,
        evaluate: Callable[[nn.Module], dict[str, float]] | None,
        counts: dict[str, int],
        options: dict[str, Any],
    ) -> dict[str, Any]:
        """The end of every ``fit``: :func:`rewards.train_loop.run_training` at the config's steps, warm-up and
        clipping, checkpointing to ``options["out_dir"]`` as it goes; ``training_summary`` gets ``counts``."""
        from rewards.train_loop import run_training

        c = self.config
        out_dir = options["out_dir"]

        def save(module, summary):
            self.training_summary = {**summary, **counts}
            if out_dir is not None:
                self.save(out_dir)

        summary = run_training(
            module=net,
            param_groups=param_groups,
            loss_fn=loss_fn,
            steps=c.steps,
            warmup=c.warmup_steps,
            grad_clip=c.grad_clip,
            seed=options["seed"],
            ctx=ctx,
            out_dir=out_dir,
            resume=options["resume"],
            evaluate=evaluate,
            save=save,
            eval_every=options["eval_every"],
            checkpoint_every=options["checkpoint_every"],
            progress=options["progress"],
        )
        net.eval()
        self.training_summary = {**summary, **counts}
        return self.training_summary


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


class AdaptableMixin(EmbeddingRewardModel):
    """``adapt()``: one-time fine-tuning of a trained embedding model on per-step progress targets (RM1 -> RM2).

    The scaffold (validation before anything trains, target curves, the training loop, the summary) is here; a
    backend supplies :meth:`_adaptation_objective` (its parameter groups and loss). Mixed into SARM2 and the prefix
    baselines, ahead of :class:`EmbeddingRewardModel`.
    """

    adaptable = True

    def adapt(
        self,
        episodes: Sequence[EpisodeFeatures],
        targets: Sequence[np.ndarray | None],
        *,
        steps: int = 500,
        lr_scale: float = 0.1,
        seed: int = 0,
        progress: bool = False,
    ) -> dict[str, Any]:
        """Fine-tune the trained model in place on episodes with given per-step progress targets.

        SPIRAL's one-time adaptation: ``episodes`` are policy rollouts with ``targets`` synthesised from their
        annotations (:func:`agents.annotation.synthesize_progress`), usually mixed with demonstrations whose target
        is ``None`` (time-linear). Failed rollouts are kept: their curve says how far they got. Rollouts recorded at
        the reward's query rate are accepted: their targets are held like their frames. Learning rates are the
        config's times ``lr_scale``, after a warm-up of a tenth of ``steps``.

        Raises (before anything trains): :class:`CheckpointError` for a model without weights,
        :class:`DatasetError` for no episodes, ``ConfigError`` for ``steps`` or ``lr_scale`` out of range,
        :class:`InputShapeError` / ``NonFiniteError`` for embeddings of another encoder or bad target curves.
        """
        from rewards.data import adaptation_targets
        from rewards.train_loop import init_distributed, run_training
        from sarm2_env.errors import ConfigError

        net = self._require_net()
        if not episodes:
            raise DatasetError(f"{self.name} adaptation: expected at least one episode; got none")
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise ConfigError(f"`steps` must be a positive integer; got {steps!r}")
        if not isinstance(lr_scale, (int, float)) or isinstance(lr_scale, bool) or not 0 < lr_scale <= 1:
            raise ConfigError(f"`lr_scale` must be in (0, 1]; got {lr_scale!r}")
        for feats in episodes:
            self._check_dim(feats.embeddings.shape[-1])
        curves = adaptation_targets(episodes, targets, f"{self.name} adaptation")
        self._register_tasks(list(episodes))
        ctx = init_distributed(self.device)
        groups, loss_fn = self._adaptation_objective(net, episodes, curves, ctx.device, lr_scale)
        net.train()
        summary = run_training(
            module=net,
            param_groups=groups,
            loss_fn=loss_fn,
            steps=steps,
            warmup=max(1, steps // 10),
            grad_clip=self.config.grad_clip,
            seed=seed,
            ctx=ctx,
            progress=progress,
        )
        net.eval()
        annotated = sum(t is not None for t in targets)
        adapted = {"episodes": len(episodes), "annotated": annotated, "steps": steps, "lr_scale": lr_scale}
        self.training_summary = {**self.training_summary, "adapted": adapted}
        return summary

    def _adaptation_objective(
        self, net: nn.Module, episodes: Sequence[EpisodeFeatures], curves: list[np.ndarray], device, lr_scale: float
    ) -> tuple[list[dict[str, Any]], Callable]:
        """``(optimiser parameter groups, loss_fn(model, rng) -> (loss, scalars))`` for adapting ``net`` towards
        ``curves`` (per-step targets, held like the frames)."""
        raise NotImplementedError
