"""Policies for SPIRAL: a behaviour-cloning policy that stands in for a VLA (it follows the toolkit's one policy
interface, :class:`sarm2_env.policy.Policy`, re-exported here).

:class:`BCPolicy` reads what a VLA would (the three camera views, the 14-d joint state and the task
instruction) through frozen encoders: the image encoder of the reward models (so rollout frames are
encoded once and shared) and a sentence encoder for the instruction. A small MLP head predicts a
*chunk* of ``H`` future joint targets (absolute, or relative to the current joints); the policy executes the first
``execute`` of them before planning again (receding horizon). Training is weighted behaviour cloning,
which is what every SPIRAL update rule except the residual actor-critic needs; with
``condition=True`` the head also takes RECAP's "advantage positive" indicator.

Shapes: ``C = 3`` cameras, ``D`` the encoder's embedding size, ``A = 14`` action dims, ``H`` the chunk.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from sarm2_env.config import FrozenConfig
from sarm2_env.constants import ACTION_DIM, CAMERAS, STATE_DIM
from sarm2_env.errors import CheckpointError, ConfigError, InputShapeError, NonFiniteError
from sarm2_env.policy import ActionQueues
from sarm2_env.policy import Policy as Policy  # re-exported: SPIRAL's policies follow the one interface

log = logging.getLogger(__name__)

#: Condition values fed to a RECAP-conditioned head.
NEGATIVE, POSITIVE, UNKNOWN = 0, 1, 2
POLICY_MODEL = "bc_policy"
#: What a BC head may predict (:attr:`BCPolicyConfig.targets`).
TARGETS = ("delta", "absolute")


@dataclasses.dataclass(frozen=True)
class BCPolicyConfig(FrozenConfig):
    """Architecture, encoders and training of :class:`BCPolicy`.

    Args:
        encoder: frozen image encoder (``rewards.encoders.IMAGE_ENCODERS``); ``"tiny"`` is random-init, tests only.
        encoder_path: local weights for ``siglip2``.
        image_size: encoder input side (``None``: the encoder's default).
        text_encoder: instruction encoder (``"minilm"``, ``"siglip2"``, ``"tiny-hash"`` for tests).
        chunk: ``H``, joint targets predicted per plan.
        targets: what the head predicts: ``"absolute"`` joint targets, or ``"delta"``s from the current joints.
            Absolute targets correct drift (an arm the demos keep still is sent back to its pose, where a delta
            of zero holds it wherever it drifted to), but on CleanWhiteboard they lost the centimetre precision
            the grasp needs (docs/spiral.md, SPIRAL results), hence the ``delta`` default.
        execute: targets executed before planning again (1 <= execute <= chunk).
        camera_dim, hidden, layers, dropout: the head (per-camera projection, MLP width and depth).
        condition: add RECAP's advantage-indicator input.
        condition_dropout: probability of showing "unknown" instead of the indicator in training.
        lr, weight_decay, batch_size, steps, warmup, grad_clip: weighted-BC training.
    """

    label = "BC policy"

    encoder: str = "efficientnet-lite0"
    encoder_path: str | None = None
    image_size: int | None = None
    text_encoder: str = "minilm"
    chunk: int = 10
    execute: int = 5
    targets: str = "delta"
    camera_dim: int = 128
    hidden: int = 512
    layers: int = 3
    dropout: float = 0.1
    condition: bool = False
    condition_dropout: float = 0.3
    lr: float = 3e-4
    weight_decay: float = 1e-4
    batch_size: int = 256
    steps: int = 3000
    warmup: int = 100
    grad_clip: float = 1.0

    def __post_init__(self) -> None:
        self._check_positive_ints(*("chunk", "execute", "camera_dim", "hidden", "layers", "batch_size", "steps"))
        if self.targets not in TARGETS:
            raise ConfigError(f"`targets` must be one of {list(TARGETS)}; got {self.targets!r}")
        if self.execute > self.chunk:
            raise ConfigError(f"`execute` must be <= `chunk` ({self.chunk}); got {self.execute}")
        if not 0 <= self.dropout < 1 or not 0 <= self.condition_dropout < 1:
            raise ConfigError(
                f"`dropout` and `condition_dropout` must be in [0, 1); got {self.dropout}, {self.condition_dropout}"
            )
        if not self.lr > 0:
            raise ConfigError(f"`lr` must be > 0; got {self.lr!r}")


@dataclasses.dataclass(frozen=True, eq=False)
class PolicyEpisode:
    """One episode for behaviour cloning: encoded frames, states, the actions taken, and per-frame targets.

    ``embeddings (T, C, D)``, ``state (T, 14)``, ``action (T, 14)`` (the action taken after frame ``t``),
    ``weight (T,)`` (BC loss weight, default 1) and ``condition (T,)`` (RECAP indicator, default positive).
    """

    instruction: str
    embeddings: np.ndarray
    state: np.ndarray
    action: np.ndarray
    weight: np.ndarray | None = None
    condition: np.ndarray | None = None

    def __post_init__(self) -> None:
        t = self.embeddings.shape[0] if self.embeddings.ndim == 3 else -1
        if t < 1 or self.embeddings.shape[1] != len(CAMERAS):
            raise InputShapeError(f"`embeddings`: expected (T, {len(CAMERAS)}, D); got {self.embeddings.shape}")
        for name, shape in (("state", (t, STATE_DIM)), ("action", (t, ACTION_DIM))):
            if getattr(self, name).shape != shape:
                raise InputShapeError(f"`{name}`: expected {shape}; got {getattr(self, name).shape}")
        for name in ("weight", "condition"):
            value = getattr(self, name)
            if value is not None and np.shape(value) != (t,):
                raise InputShapeError(f"`{name}`: expected ({t},); got {np.shape(value)}")
        for name in ("embeddings", "state", "action", "weight"):
            value = getattr(self, name)
            if value is not None and not np.all(np.isfinite(value)):
                raise NonFiniteError(f"`{name}` of an episode of {self.instruction!r} contains NaN or inf")

    @property
    def length(self) -> int:
        """Frames in the episode."""
        return int(self.embeddings.shape[0])


def demos_from_dataset(
    dataset: str | os.PathLike | Any, encoder, *, successful_only: bool = True, progress: bool = False
) -> list[PolicyEpisode]:
    """Behaviour-cloning episodes from a :mod:`sarm2_env.dataset` dataset, frames encoded once through the on-disk
    embedding cache (the same one the reward models use). Failed episodes are skipped unless asked for."""
    from rewards.cache import EmbeddingCache
    from rewards.data import stack_cameras
    from sarm2_env.dataset import EpisodeDataset

    data = dataset if isinstance(dataset, EpisodeDataset) else EpisodeDataset(dataset)
    keep = [i for i, e in enumerate(data.entries) if e.get("success", True) or not successful_only]
    cache = EmbeddingCache(data, encoder)
    cache.ensure(keep, progress=progress)
    out = []
    for i in keep:
        ep = data.load(i, frames=False)
        out.append(PolicyEpisode(ep.instruction, stack_cameras(cache.get(i)), ep.state, ep.action))
    return out


class _Head(nn.Module):
    """[per-camera projections, normalised state, instruction, condition] -> H x 14 standardised joint targets."""

    def __init__(self, cfg: BCPolicyConfig, emb_dim: int, text_dim: int) -> None:
        super().__init__()
        self.cams = nn.ModuleList(
            nn.Sequential(nn.Linear(emb_dim, cfg.camera_dim), nn.LayerNorm(cfg.camera_dim)) for _ in CAMERAS
        )
        self.text = nn.Linear(text_dim, 64)
        self.cond = nn.Embedding(3, 16) if cfg.condition else None
        width = len(CAMERAS) * cfg.camera_dim + STATE_DIM + 64 + (16 if cfg.condition else 0)
        layers: list[nn.Module] = []
        for _ in range(cfg.layers):
            layers += [nn.Linear(width, cfg.hidden), nn.GELU(), nn.Dropout(cfg.dropout)]
            width = cfg.hidden
        layers.append(nn.Linear(width, cfg.chunk * ACTION_DIM))
        self.mlp = nn.Sequential(*layers)
        self.chunk = cfg.chunk

    def forward(self, emb: torch.Tensor, state: torch.Tensor, text: torch.Tensor, cond: torch.Tensor | None):
        # emb (B, C, D), state (B, 14) normalised, text (B, Dt), cond (B,) long
        return self.chunks(self.features(emb, state, text), cond)

    def features(self, emb: torch.Tensor, state: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        """The MLP's input before the condition: per-camera projections, normalised state, instruction projection."""
        return torch.cat([proj(emb[:, c]) for c, proj in enumerate(self.cams)] + [state, self.text(text)], dim=-1)

    def chunks(self, features: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        if self.cond is not None:
            features = torch.cat([features, self.cond(cond)], dim=-1)
        return self.mlp(features).view(-1, self.chunk, ACTION_DIM)  # (B, H, 14)


def _stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return x.mean(axis=0).astype(np.float32), np.maximum(x.std(axis=0), 1e-3).astype(np.float32)


class ChunkedActing(ActionQueues):
    """Receding-horizon acting for ``N`` envs at once, shared by the policies: every env keeps a queue of planned
    actions (:class:`sarm2_env.policy.ActionQueues`), and the envs whose queue ran out get a new plan. Subclasses
    provide ``encode_observations``."""

    def act(self, observations: Mapping[str, Any]) -> np.ndarray:
        """One action per env ``(N, 14)`` from batched observations (encoded, then planned in chunks)."""
        emb, state = self.encode_observations(observations)
        return self.act_from_embeddings(emb, state)

    def _next_actions(
        self, embeddings: np.ndarray, state: np.ndarray, plan: Callable[[np.ndarray, np.ndarray, list[str]], np.ndarray]
    ) -> np.ndarray:
        """Pop one action per env, first refilling empty queues with ``plan(embeddings, state, instructions)``,
        which returns the ``(n, K, 14)`` actions to execute for the ``n`` envs that need a plan."""
        return self._pop_actions(
            state.shape[0], lambda need: plan(embeddings[need], state[need], [self._instructions[i] for i in need])
        )


class BCPolicy(ChunkedActing):
    """Behaviour-cloning policy over frozen frame embeddings; see the module docstring.

    Build one with :meth:`fit` (or :meth:`load`); it acts in ``N`` envs at once (:class:`Policy`).
    """

    def __init__(self, config: BCPolicyConfig | None = None, device: str | torch.device | None = None) -> None:
        from rewards.train_loop import default_device

        self.config = config or BCPolicyConfig()
        self.device = default_device(device)
        self._image_encoder = None
        self._text_encoder = None
        self.net: _Head | None = None
        self.norm: dict[str, np.ndarray] = {}
        self._instructions: list[str] = []
        self._text_cache: dict[str, np.ndarray] = {}
        self._queues: list[list[np.ndarray]] = []
        self.training_summary: dict[str, Any] = {}

    # --- encoders ----------------------------------------------------------------------------------
    @property
    def image_encoder(self):
        """The frozen image encoder (shared with reward models that use the same spec)."""
        if self._image_encoder is None:
            from rewards.encoders import make_image_encoder

            c = self.config
            self._image_encoder = make_image_encoder(
                c.encoder, image_size=c.image_size, path=c.encoder_path, device=self.device
            )
        return self._image_encoder

    def set_image_encoder(self, encoder) -> None:
        """Use an already-built encoder; it must be the configured one."""
        if encoder.spec.name != self.config.encoder:
            raise ConfigError(f"`encoder`: the policy is configured for {self.config.encoder}; got {encoder.spec.name}")
        self._image_encoder = encoder

    def instruction_embedding(self, instruction: str) -> np.ndarray:
        """The instruction's sentence embedding (encoded once, then cached)."""
        if instruction not in self._text_cache:
            if self._text_encoder is None:
                from rewards.encoders import make_text_encoder

                self._text_encoder = make_text_encoder(self.config.text_encoder, device=self.device)
            self._text_cache[instruction] = np.asarray(self._text_encoder.encode([instruction])[0], dtype=np.float32)
        return self._text_cache[instruction]

    def encode_observations(self, observations: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        """Batched observations -> ``embeddings (N, C, D)``, ``state (N, 14)`` (one encoder call for all frames)."""
        pixels, state = _batched(observations)
        n = state.shape[0]
        frames = np.stack([pixels[cam] for cam in CAMERAS], axis=1)  # (N, C, H, W, 3)
        emb = self.image_encoder.encode(frames.reshape(n * len(CAMERAS), *frames.shape[2:]))
        return emb.reshape(n, len(CAMERAS), -1).astype(np.float32), state

    # --- acting ------------------------------------------------------------------------------------
    def act_from_embeddings(self, embeddings: np.ndarray, state: np.ndarray, condition: int = POSITIVE) -> np.ndarray:
        """The next action of every env from already-encoded frames ``(N, C, D)`` and states ``(N, 14)``."""
        self._require_trained()
        execute = self.config.execute
        return self._next_actions(
            embeddings, state, lambda e, s, texts: self.predict_chunks(e, s, texts, condition=condition)[:, :execute]
        )

    def predict_chunks(
        self, embeddings: np.ndarray, state: np.ndarray, instructions: Sequence[str], condition: int = POSITIVE
    ) -> np.ndarray:
        """``(N, H, 14)`` joint targets for the next ``H`` steps (absolute, clipped to [0, 1] for the grippers)."""
        return self.chunks_from_normalised(self.normalised_chunks(embeddings, state, instructions, condition), state)

    @torch.no_grad()
    def normalised_chunks(
        self, embeddings: np.ndarray, state: np.ndarray, instructions: Sequence[str], condition: int = POSITIVE
    ) -> np.ndarray:
        """The head's raw output ``(N, H, 14)``: joint targets (or deltas from ``state``), standardised per joint.

        This is the action space a residual actor and its critics work in (:mod:`agents.residual`).
        """
        return self.features_and_chunks(embeddings, state, instructions, condition)[1]

    @torch.no_grad()
    def features_and_chunks(
        self, embeddings: np.ndarray, state: np.ndarray, instructions: Sequence[str], condition: int = POSITIVE
    ) -> tuple[torch.Tensor, np.ndarray]:
        """The head's input features ``(N, F)`` (per-camera and instruction projections, standardised state; on
        the policy's device) and its :meth:`normalised_chunks`, from one pass of the projections."""
        self._require_trained()
        self.net.eval()
        emb_t = torch.as_tensor(embeddings, dtype=torch.float32, device=self.device)
        text = torch.as_tensor(np.stack([self.instruction_embedding(s) for s in instructions]), device=self.device)
        state_n = torch.as_tensor(self.normalise_state(state), dtype=torch.float32, device=self.device)
        features = self.net.features(emb_t, state_n, text)
        cond = torch.full((len(state),), condition, dtype=torch.long, device=self.device)
        chunks = self.net.chunks(features, cond if self.config.condition else None)
        return features, chunks.cpu().numpy()

    def normalise_state(self, state: np.ndarray) -> np.ndarray:
        """Joint states ``(N, 14)`` standardised with the training statistics."""
        self._require_trained()
        return ((state - self.norm["state_mean"]) / self.norm["state_std"]).astype(np.float32)

    def chunks_from_normalised(self, normalised: np.ndarray, state: np.ndarray) -> np.ndarray:
        """The head's standardised targets ``(N, K, 14)`` -> absolute joint targets (grippers clipped to [0, 1])."""
        actions = normalised * self.norm["delta_std"] + self.norm["delta_mean"]
        if self.config.targets == "delta":
            actions = actions + state[:, None, :]
        grip = [6, 13]
        actions[..., grip] = np.clip(actions[..., grip], 0.0, 1.0)
        if not np.all(np.isfinite(actions)):
            raise NonFiniteError("BC policy produced NaN/inf actions (diverged training?)")
        return actions.astype(np.float32)

    def normalise_chunks(self, actions: np.ndarray, state: np.ndarray) -> np.ndarray:
        """Absolute joint targets ``(N, K, 14)`` taken from states ``(N, 14)`` -> the head's standardised targets
        (the inverse of :meth:`chunks_from_normalised`, grippers aside)."""
        self._require_trained()
        raw = actions - state[:, None, :] if self.config.targets == "delta" else actions
        return ((raw - self.norm["delta_mean"]) / self.norm["delta_std"]).astype(np.float32)

    def _require_trained(self) -> None:
        if self.net is None:
            raise CheckpointError("the BC policy is untrained: call fit(episodes) or BCPolicy.load(path) first")

    # --- training ----------------------------------------------------------------------------------
    def fit(
        self,
        episodes: Sequence[PolicyEpisode],
        *,
        seed: int = 0,
        steps: int | None = None,
        init_from: BCPolicy | None = None,
        progress: bool = False,
    ) -> dict[str, Any]:
        """Weighted behaviour cloning on ``episodes``; returns the training summary.

        ``init_from`` starts from another policy's weights and normalisation (SPIRAL's fine-tuning rounds);
        otherwise the normalisation statistics are fitted to ``episodes``.
        """
        from rewards.train_loop import init_distributed, run_training

        if not episodes:
            raise ConfigError("`episodes` must hold at least one episode to clone; got none")
        cfg = self.config
        emb_dim = episodes[0].embeddings.shape[2]
        if any(ep.embeddings.shape[2] != emb_dim for ep in episodes):
            raise InputShapeError("`episodes`: every episode must use the same embedding size")
        batch = _SampleTable(episodes, cfg.chunk, relative=cfg.targets == "delta")
        if init_from is not None:
            init_from._require_trained()
            self.norm = {k: v.copy() for k, v in init_from.norm.items()}
        else:
            s_mean, s_std = _stats(batch.state)
            d_mean, d_std = _stats(batch.targets.reshape(-1, ACTION_DIM))
            self.norm = {"state_mean": s_mean, "state_std": s_std, "delta_mean": d_mean, "delta_std": d_std}
        text_dim = len(self.instruction_embedding(episodes[0].instruction))
        self.net = _Head(cfg, emb_dim, text_dim)
        if init_from is not None:
            if init_from.config.condition != cfg.condition:
                raise ConfigError("`init_from`: its `condition` input differs from this policy's; cannot fine-tune")
            self.net.load_state_dict(init_from.net.state_dict())
        texts = {s: self.instruction_embedding(s) for s in batch.instructions}
        text_table = np.stack([texts[s] for s in batch.instructions])  # (E, Dt)
        device = self.device
        norm = {k: torch.as_tensor(v, device=device) for k, v in self.norm.items()}
        probs = batch.weight / batch.weight.sum() if batch.weight.sum() > 0 else None
        if probs is None:
            raise ConfigError("every BC sample has weight 0: nothing to learn from (all advantages negative?)")

        def loss_fn(model: nn.Module, rng: np.random.Generator):
            # Importance sampling by weight keeps the loss scale of plain BC and wastes no batch on w = 0.
            idx = rng.choice(len(batch.weight), size=cfg.batch_size, p=probs)
            emb = torch.as_tensor(batch.embeddings[idx], device=device)
            st = torch.as_tensor(batch.state[idx], device=device)
            tgt = torch.as_tensor(batch.targets[idx], device=device)
            txt = torch.as_tensor(text_table[batch.episode[idx]], device=device)
            cond = None
            if cfg.condition:
                c = batch.condition[idx].copy()
                c[rng.random(len(c)) < cfg.condition_dropout] = UNKNOWN
                cond = torch.as_tensor(c, dtype=torch.long, device=device)
            pred = model((emb), (st - norm["state_mean"]) / norm["state_std"], txt, cond)
            target = (tgt - norm["delta_mean"]) / norm["delta_std"]
            loss = nn.functional.mse_loss(pred, target)
            return loss, {"bc_mse": float(loss.detach())}

        summary = run_training(
            module=self.net,
            param_groups=[{"params": self.net.parameters(), "lr": cfg.lr, "weight_decay": cfg.weight_decay}],
            loss_fn=loss_fn,
            steps=steps if steps is not None else cfg.steps,
            warmup=min(cfg.warmup, max(1, (steps or cfg.steps) // 10)),
            grad_clip=cfg.grad_clip,
            seed=seed,
            ctx=init_distributed(device),
            progress=progress,
        )
        self.net.eval()
        self.training_summary = {
            "episodes": len(episodes),
            "samples": int(len(batch.weight)),
            "mean_weight": float(batch.weight.mean()),
            **{k: v for k, v in summary.items() if isinstance(v, (int, float, str))},
        }
        log.info(
            "BC fit: %d episodes, %d samples, mean weight %.3f", len(episodes), len(batch.weight), batch.weight.mean()
        )
        return self.training_summary

    # --- persistence -------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to rebuild the policy elsewhere (a Ray worker), as plain CPU objects."""
        self._require_trained()
        return {
            "config": dataclasses.asdict(self.config),
            "net": {k: v.detach().cpu() for k, v in self.net.state_dict().items()},
            "norm": {k: v.copy() for k, v in self.norm.items()},
            "emb_dim": int(self.net.cams[0][0].in_features),
            "text_dim": int(self.net.text.in_features),
        }

    @classmethod
    def from_state_dict(cls, state: Mapping[str, Any], device: str | torch.device | None = None) -> BCPolicy:
        """A policy from :meth:`state_dict`'s output (config, weights, normalisation)."""
        policy = cls(BCPolicyConfig(**state["config"]), device=device)
        policy.net = _Head(policy.config, int(state["emb_dim"]), int(state["text_dim"]))
        policy.net.load_state_dict(state["net"])
        policy.net.to(policy.device).eval()
        policy.norm = {k: np.asarray(v, dtype=np.float32) for k, v in state["norm"].items()}
        return policy

    def save(self, path: str | os.PathLike) -> Path:
        """Write ``config.json`` + ``model.safetensors`` (normalisation kept in fp32) atomically."""
        from rewards.checkpoint import save_checkpoint

        self._require_trained()
        tensors = {f"net.{k}": v for k, v in self.net.state_dict().items()}
        tensors.update({f"norm.{k}": torch.as_tensor(v) for k, v in self.norm.items()})
        meta = {
            "model": POLICY_MODEL,
            "config": dataclasses.asdict(self.config),
            "encoder_spec": self.image_encoder.spec.to_dict(),
            "emb_dim": int(self.net.cams[0][0].in_features),
            "text_dim": int(self.net.text.in_features),
            "training": json.loads(json.dumps(self.training_summary, default=str)),
        }
        return save_checkpoint(path, meta, tensors)

    @classmethod
    def load(cls, path: str | os.PathLike, device: str | torch.device | None = None) -> BCPolicy:
        """Load a policy saved by :meth:`save` (a clear :class:`CheckpointError` if missing or damaged)."""
        from rewards.checkpoint import load_checkpoint

        meta, tensors = load_checkpoint(path, expect_model=POLICY_MODEL)
        policy = cls(BCPolicyConfig(**meta["config"]), device=device)
        policy.net = _Head(policy.config, int(meta["emb_dim"]), int(meta["text_dim"]))
        policy.net.load_state_dict({k[4:]: v.float() for k, v in tensors.items() if k.startswith("net.")})
        policy.net.to(policy.device).eval()
        policy.norm = {k[5:]: v.float().numpy() for k, v in tensors.items() if k.startswith("norm.")}
        policy.training_summary = meta.get("training", {})
        return policy


class _SampleTable:
    """All (episode, frame) samples flattened, with chunk targets padded by the episode's last action;
    ``relative`` targets are taken from the frame's joint state."""

    def __init__(self, episodes: Sequence[PolicyEpisode], chunk: int, relative: bool = True) -> None:
        embs, states, targets, weights, conds, owner = [], [], [], [], [], []
        self.instructions: list[str] = []
        for e, ep in enumerate(episodes):
            t = ep.length
            ahead = np.minimum(np.arange(t)[:, None] + np.arange(chunk)[None, :], t - 1)  # (T, H)
            embs.append(ep.embeddings.astype(np.float32))
            states.append(ep.state.astype(np.float32))
            origin = ep.state[:, None, :] if relative else 0.0
            targets.append((ep.action[ahead] - origin).astype(np.float32))  # (T, H, 14)
            weights.append(np.ones(t, np.float32) if ep.weight is None else np.asarray(ep.weight, np.float32))
            conds.append(np.full(t, POSITIVE, np.int64) if ep.condition is None else np.asarray(ep.condition, np.int64))
            owner.append(np.full(t, e, np.int64))
            self.instructions.append(ep.instruction)
        self.embeddings = np.concatenate(embs)
        self.state = np.concatenate(states)
        self.targets = np.concatenate(targets)
        self.weight = np.clip(np.concatenate(weights), 0.0, None)
        self.condition = np.concatenate(conds)
        self.episode = np.concatenate(owner)


def _batched(observations: Mapping[str, Any]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Accept one observation or a batch; return per-camera ``(N, H, W, 3)`` frames and ``(N, 14)`` states."""
    if not isinstance(observations, Mapping) or "pixels" not in observations or "agent_pos" not in observations:
        got = sorted(observations) if isinstance(observations, Mapping) else type(observations).__name__
        raise InputShapeError(f"`observations`: expected keys 'pixels' (per camera) and 'agent_pos'; got {got}")
    state = np.asarray(observations["agent_pos"], dtype=np.float32)
    pixels = observations["pixels"]
    missing = [c for c in CAMERAS if c not in pixels]
    if missing:
        raise InputShapeError(f"`observations['pixels']`: expected cameras {list(CAMERAS)}; missing {missing}")
    if state.ndim == 1:
        state = state[None]
        pixels = {c: np.asarray(pixels[c])[None] for c in CAMERAS}
    if state.ndim != 2 or state.shape[1] != STATE_DIM:
        raise InputShapeError(f"`observations['agent_pos']`: expected (N, {STATE_DIM}); got {state.shape}")
    frames = {c: np.asarray(pixels[c]) for c in CAMERAS}
    for c, f in frames.items():
        if f.ndim != 4 or f.shape[0] != state.shape[0] or f.shape[-1] != 3:
            want = f"({state.shape[0]}, H, W, 3)"
            raise InputShapeError(f"`observations['pixels'][{c!r}]`: expected {want}; got {f.shape}")
    return frames, state
