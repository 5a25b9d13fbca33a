"""The residual actor-critic on the state BC policy (sim-only stand-in for a VLA): SPIRAL's released update on
the state path.

The method of :mod:`agents.residual` with :class:`agents.state_policy.StatePolicy` as the frozen base: a bounded
residual on the executed part of the base's chunk, an ensemble of critics ``Q(s, a)`` trained TD3-style on the
relabelled progress gains of executed chunks (:func:`agents.residual.train_actor_critic`), and best-of-K at
inference. Actor and critics read the base's standardised inputs (state and joint history, clipped to +-5) and
work in its standardised target units, so a residual of 1 is one demonstration standard deviation.

Exploration is the state rollouts' own: :mod:`agents.state_spiral` adds one Gaussian offset of ``explore_noise``
rad per executed plan to the arm joints the demonstrations move. The critics learn on those executed chunks, so
the best-of-K candidates are perturbed the same way (one held offset per plan, the same joints, the same size)
and the critics are only queried on actions like the ones they were trained on. ``ResidualACConfig``'s
``candidate_noise`` and ``explore_noise`` (standardised units, the image policy's exploration) are not read here.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from agents.policy import ChunkedActing
from agents.residual import CriticEnsemble, ResidualACConfig, ResidualActor, episode_transitions, train_actor_critic
from agents.state_policy import LABEL, STATE_POLICY_MODEL, StatePolicy, history_features
from sarm2_env.constants import ACTION_DIM, STATE_DIM
from sarm2_env.errors import CheckpointError, ConfigError

STATE_RESIDUAL_MODEL = "state_residual_ac_policy"
#: How every table and plot names this policy.
RESIDUAL_LABEL = f"residual actor-critic on the {LABEL}"


class StateResidualPolicy(ChunkedActing):
    """A frozen :class:`StatePolicy` plus a residual actor and a critic ensemble (see the module docstring).

    Build one with :meth:`from_base` (an untrained residual acts exactly like the base), train it with :meth:`fit`
    on rollouts (``state (T, D)``, ``action (T - 1, 14)``) and their relabelled per-frame progress, persist it with
    :meth:`save` / :func:`load_state_policy`. ``explore_noise`` (rad) is the rollouts' exploration, which sets the
    best-of-K candidates.
    """

    label = RESIDUAL_LABEL

    def __init__(
        self, base: StatePolicy, config: ResidualACConfig | None = None, *, explore_noise: float = 0.0, seed: int = 0
    ) -> None:
        base._require_trained()
        if not (np.isfinite(explore_noise) and explore_noise >= 0):
            raise ConfigError(f"`explore_noise` must be a finite number >= 0 (rad); got {explore_noise!r}")
        self.base = base
        self.ac = config or ResidualACConfig()
        self.explore_noise = float(explore_noise)
        self.device = base.device
        self.execute = base.config.execute
        self.act_dim = self.execute * ACTION_DIM
        self.obs_dim = int(base.state_dim or 0) + STATE_DIM * len(base.config.history)
        with torch.random.fork_rng(devices=[]):  # the initial weights depend on `seed` only
            torch.manual_seed(seed)
            self.actor = ResidualActor(self.obs_dim, self.act_dim, self.ac).to(self.device)
            self.critics = CriticEnsemble(self.obs_dim, self.act_dim, self.ac).to(self.device)
        self.critics_trained = False
        self.training_summary: dict[str, Any] = {}
        self._rng = np.random.default_rng(seed)
        self._instructions: list[str] = []
        self._queues: list[list[np.ndarray]] = []

    @classmethod
    def from_base(
        cls, base: StatePolicy, config: ResidualACConfig | None = None, *, explore_noise: float = 0.0, seed: int = 0
    ) -> StateResidualPolicy:
        """A residual policy that starts as ``base`` (zero residual, untrained critics)."""
        return cls(base, config, explore_noise=explore_noise, seed=seed)

    def copy(self, seed: int = 0) -> StateResidualPolicy:
        """An independent copy (the frozen base is shared) whose candidate draws follow ``seed``."""
        other = StateResidualPolicy(self.base, self.ac, explore_noise=self.explore_noise, seed=seed)
        other.actor.load_state_dict(self.actor.state_dict())
        other.critics.load_state_dict(self.critics.state_dict())
        other.critics_trained = self.critics_trained
        return other

    # --- what the state SPIRAL workers read ----------------------------------------------------------
    @property
    def config(self):
        """The base policy's config (chunk, execute, history)."""
        return self.base.config

    @property
    def state_dim(self) -> int | None:
        """The flat state size the base was trained on."""
        return self.base.state_dim

    def exploring_joints(self) -> np.ndarray:
        """The base's :meth:`StatePolicy.exploring_joints`."""
        return self.base.exploring_joints()

    def standardised_features(self, states: np.ndarray) -> np.ndarray:
        """The base's :meth:`StatePolicy.standardised_features` (what the critics read)."""
        return self.base.standardised_features(states)

    # --- acting ------------------------------------------------------------------------------------
    def reset(self, instructions: Sequence[str], indices: Sequence[int] | None = None) -> None:
        """Start new episodes: plans and the base's joint histories are dropped."""
        super().reset(instructions, indices)
        self.base.reset(instructions, indices)

    def encode_observations(self, observations: Any) -> tuple[np.ndarray, np.ndarray]:
        """The base's inputs ``(N, F)`` and joint states ``(N, 14)`` (records the joint history: once per step)."""
        return self.base.encode_observations(observations)

    def act_from_embeddings(self, features: np.ndarray, state: np.ndarray) -> np.ndarray:
        """The next action of every env from :meth:`encode_observations`'s features (the protocol's name)."""
        return self._next_actions(features, state, lambda f, s, texts: self.plan(f))

    @torch.no_grad()
    def plan(self, features: np.ndarray) -> np.ndarray:
        """``(N, E, 14)`` absolute joint targets to execute: the base's plan plus the residual, best of K."""
        n = len(features)
        base = self.base.normalised_chunks(features)[:, : self.execute].reshape(n, -1)
        obs = torch.as_tensor(self.base.clipped_standardised(features), device=self.device)
        base_t = torch.as_tensor(base, device=self.device)
        self.actor.eval()
        chosen = base_t + self.actor(obs, base_t)
        if self.critics_trained and self.ac.best_of_k > 1 and self.explore_noise > 0:
            chosen = self.best_of_k(obs, chosen)
        return self.base.targets_from_normalised(chosen.cpu().numpy().reshape(n, self.execute, ACTION_DIM))

    @torch.no_grad()
    def best_of_k(self, obs: torch.Tensor, proposal: torch.Tensor) -> torch.Tensor:
        """Score the proposal and ``K - 1`` candidates offset like the exploration; keep the best of each row."""
        k, (n, a) = self.ac.best_of_k, proposal.shape
        rad = self._rng.normal(0.0, self.explore_noise, size=(k - 1, n, 1, ACTION_DIM)) * self.exploring_joints()
        steps = np.broadcast_to(rad, (k - 1, n, self.execute, ACTION_DIM)).astype(np.float32)
        offsets = steps / self.base.norm["y_std"][: self.execute]  # held for the plan, in standardised units
        noise = torch.as_tensor(offsets.reshape(k - 1, n, a), dtype=torch.float32, device=self.device)
        candidates = torch.cat([proposal[None], proposal[None] + noise])  # candidate 0 is the proposal
        self.critics.eval()
        q = self.critics(obs.repeat(k, 1), candidates.reshape(k * n, a)).view(-1, k, n)  # (critics, K, N)
        score = q.mean(0) - self.ac.pessimism * q.std(0)
        return candidates[score.argmax(0), torch.arange(n, device=self.device)]

    # --- training ----------------------------------------------------------------------------------
    def fit(self, rollouts: Sequence[Any], progress: Sequence[np.ndarray], *, steps: int, seed: int = 0) -> dict:
        """TD3-style training on ``rollouts`` (``state (T, D)``, executed ``action (T - 1, 14)``) and their
        relabelled per-frame ``progress (T,)``; returns the training summary."""
        tr = episode_transitions(rollouts, progress, self.execute, self.ac.gamma)
        obs, act, base = [], [], []
        for e, ro in enumerate(rollouts):
            frames = tr.frame[tr.episode == e]
            features = history_features(np.asarray(ro.state, np.float32), self.base.config.history)[frames]
            actions = np.asarray(ro.action, np.float32)
            # A short last chunk repeats the rollout's final action.
            ahead = np.minimum(frames[:, None] + np.arange(self.execute)[None], len(actions) - 1)
            obs.append(self.base.clipped_standardised(features))
            act.append(self.base.normalise_targets(actions[ahead]).reshape(len(frames), -1))
            base.append(self.base.normalised_chunks(features)[:, : self.execute].reshape(len(frames), -1))
        arrays = (np.concatenate(obs), np.concatenate(act), np.concatenate(base).astype(np.float32))
        summary = train_actor_critic(self.actor, self.critics, self.ac, arrays, tr, steps=steps, seed=seed)
        self.critics_trained = True
        self.training_summary = {"label": RESIDUAL_LABEL, "episodes": len(rollouts), **summary}
        return self.training_summary

    # --- persistence -------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """One checkpoint directory: the frozen base, the actor and the critics (written atomically)."""
        from rewards.checkpoint import save_checkpoint

        tensors = self.base.tensors(prefix="base.")
        tensors.update({f"actor.{k}": v for k, v in self.actor.state_dict().items()})
        tensors.update({f"critics.{k}": v for k, v in self.critics.state_dict().items()})
        meta = {
            "model": STATE_RESIDUAL_MODEL,
            "label": RESIDUAL_LABEL,
            "config": dataclasses.asdict(self.base.config),
            "state_dim": self.base.state_dim,
            "residual_config": dataclasses.asdict(self.ac),
            "explore_noise": self.explore_noise,
            "critics_trained": self.critics_trained,
            "training": json.loads(json.dumps(self.training_summary, default=str)),
        }
        return save_checkpoint(path, meta, tensors)

    @classmethod
    def load(cls, path: str | os.PathLike, device: str | torch.device | None = None) -> StateResidualPolicy:
        """A policy saved by :meth:`save`; a missing or damaged directory is a :class:`CheckpointError`."""
        from rewards.checkpoint import load_checkpoint

        meta, tensors = load_checkpoint(path, expect_model=STATE_RESIDUAL_MODEL)
        base = StatePolicy.from_tensors(meta, tensors, prefix="base.", device=device)
        policy = cls(base, ResidualACConfig(**meta["residual_config"]), explore_noise=float(meta["explore_noise"]))
        policy.actor.load_state_dict({k[6:]: v.float() for k, v in tensors.items() if k.startswith("actor.")})
        policy.critics.load_state_dict({k[8:]: v.float() for k, v in tensors.items() if k.startswith("critics.")})
        policy.critics_trained = bool(meta["critics_trained"])
        policy.training_summary = meta.get("training", {})
        return policy


def load_state_policy(
    path: str | os.PathLike, device: str | torch.device | None = None
) -> StatePolicy | StateResidualPolicy:
    """Load a :class:`StatePolicy` or :class:`StateResidualPolicy` checkpoint, whichever ``path`` holds."""
    from rewards.checkpoint import checkpoint_model

    kind = checkpoint_model(path, "state policy checkpoint")
    if kind == STATE_RESIDUAL_MODEL:
        return StateResidualPolicy.load(path, device=device)
    if kind != STATE_POLICY_MODEL:
        raise CheckpointError(
            f"{path}: expected a state policy ({STATE_POLICY_MODEL} or {STATE_RESIDUAL_MODEL}); got {kind!r}"
        )
    return StatePolicy.load(path, device=device)
