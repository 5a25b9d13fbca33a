"""The authors' SPIRAL update as released (docs/design.md §5): a residual actor-critic on a frozen base policy.

A frozen :class:`agents.policy.BCPolicy` proposes a chunk; a small *residual actor* adds a bounded
correction to the part of it that is executed (``execute`` steps); an ensemble of critics ``Q(s, a)``
scores executed chunks. Everything works in the base policy's standardised target space (its head's
joint targets, absolute or relative to the current joints, standardised with the demo statistics), so a
residual of 1 is one demo standard deviation.

Training (TD3-style, offline on every rollout collected so far):

* transitions are executed chunks: from decision frame ``t`` (a multiple of ``execute``) the chunk
  reward is the relabelled progress gain ``p(t + E) - p(t)``; the reward model's dense progress is the
  only reward (no terminal bonus; the authors' code gave every episode a terminal reward of 1, which
  rewards failures too);
* critic target ``y = w_mc * G + (1 - w_mc) * (r + gamma^E * min(Q'_i, Q'_j)(s', pi'(s') + eps))`` with ``G``
  the Monte-Carlo return of the rest of the episode, ``gamma`` per step (0.9995), two random target
  critics of the ensemble of five, clipped target-policy noise ``eps``;
* actor (every ``policy_delay`` critic steps): maximise the ensemble mean ``Q`` (scaled by its mean
  magnitude) minus ``bc_penalty * |residual|^2``, which keeps the policy near the base.

Acting: the actor's chunk plus ``best_of_k - 1`` candidates perturbed with ``candidate_noise``; the
candidate with the best pessimistic score ``mean - pessimism * std`` over the ensemble is executed. The
critic is queried only on actions like those it was trained on: collection rollouts are perturbed with
``explore_noise`` of the same size (``candidate_noise <= explore_noise`` is enforced), and its input is
the executed chunk itself with no latent noise (the released code trained its critic on zero latent
noise but queried it with sampled noise, and never called its best-of-K).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from agents.policy import BCPolicy, BCPolicyConfig, ChunkedActing
from sarm2_env.config import FrozenConfig
from sarm2_env.constants import ACTION_DIM, CAMERAS, STATE_DIM
from sarm2_env.errors import ConfigError, InputShapeError, NonFiniteError

log = logging.getLogger(__name__)

RESIDUAL_MODEL = "residual_ac_policy"


@dataclasses.dataclass(frozen=True)
class ResidualACConfig(FrozenConfig):
    """Hyper-parameters of the residual actor-critic (defaults: the authors' where they published one).

    Args:
        critics: size of the critic ensemble.
        gamma: per-step discount; a chunk of ``E`` steps is discounted by ``gamma ** E``.
        mc_weight: share of the Monte-Carlo return in the critic target (the rest is the TD target).
        bc_penalty: weight of ``|residual|^2`` in the actor loss (pulls the policy toward the frozen base).
        residual_limit: bound of the residual (``tanh``), in standardised target units.
        hidden: width of the actor and critic MLPs.
        lr, batch_size: Adam learning rate and batch size of both.
        policy_delay: critic steps per actor step (TD3).
        tau: Polyak factor of the target networks.
        target_noise, target_noise_clip: TD3's target-policy smoothing noise and its clip.
        best_of_k: candidates scored by the critics per plan at inference (1: the actor's chunk only).
        candidate_noise: standard deviation of the candidates' perturbation.
        pessimism: the candidates' score is ``mean - pessimism * std`` over the ensemble.
        explore_noise: perturbation of the executed chunk while collecting training rollouts.
    """

    label = "residual actor-critic"
    field_prefix = "residual."

    critics: int = 5
    gamma: float = 0.9995
    mc_weight: float = 0.5
    bc_penalty: float = 30.0
    residual_limit: float = 1.0
    hidden: int = 256
    lr: float = 3e-4
    batch_size: int = 256
    policy_delay: int = 2
    tau: float = 0.005
    target_noise: float = 0.1
    target_noise_clip: float = 0.3
    best_of_k: int = 8
    candidate_noise: float = 0.15
    pessimism: float = 1.0
    explore_noise: float = 0.15

    def __post_init__(self) -> None:
        self._check_positive_ints(*("critics", "hidden", "batch_size", "policy_delay", "best_of_k"))
        if self.critics < 2:
            raise ConfigError(f"`residual.critics` must be >= 2 (the TD target takes a min of two); got {self.critics}")
        if not 0 < self.gamma <= 1:
            raise ConfigError(f"`residual.gamma` must be in (0, 1]; got {self.gamma!r}")
        if not 0 <= self.mc_weight <= 1:
            raise ConfigError(f"`residual.mc_weight` must be in [0, 1]; got {self.mc_weight!r}")
        if not 0 < self.tau <= 1:
            raise ConfigError(f"`residual.tau` must be in (0, 1]; got {self.tau!r}")
        for name in ("bc_penalty", "target_noise", "target_noise_clip", "pessimism"):
            if not getattr(self, name) >= 0:
                raise ConfigError(f"`residual.{name}` must be >= 0; got {getattr(self, name)!r}")
        for name in ("residual_limit", "lr"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"`residual.{name}` must be > 0; got {getattr(self, name)!r}")
        if not 0 <= self.candidate_noise <= self.explore_noise:
            raise ConfigError(
                "`residual.candidate_noise` must be in [0, explore_noise]: best-of-K candidates must come from the "
                f"action distribution the critics were trained on; got {self.candidate_noise} > {self.explore_noise}"
            )


# --------------------------------------------------------------------------------------------- transitions
@dataclasses.dataclass(frozen=True)
class ChunkTransitions:
    """Executed chunks of a set of episodes, in decision order (all arrays have one row per chunk).

    ``episode`` and ``frame`` locate the decision frame; ``reward`` is the chunk's progress gain,
    ``mc_return`` the discounted sum of this and later chunk rewards of the episode, ``next`` the row of
    the next decision (itself where ``done``), ``discount`` is ``gamma ** (steps in the chunk)``.
    """

    episode: np.ndarray
    frame: np.ndarray
    reward: np.ndarray
    mc_return: np.ndarray
    next: np.ndarray
    done: np.ndarray
    discount: np.ndarray

    def __len__(self) -> int:
        return len(self.frame)


def chunk_transitions(progress: Sequence[np.ndarray], execute: int, gamma: float) -> ChunkTransitions:
    """Cut each episode's per-frame progress ``(T,)`` into chunks of ``execute`` steps from frame 0.

    An episode of ``T`` frames has ``T - 1`` actions, so decisions at ``0, E, 2E, ... < T - 1``; the last
    chunk may be shorter and ends the episode (``done``: no bootstrap past the episode's end).
    """
    if execute < 1:
        raise ConfigError(f"`execute` must be >= 1; got {execute}")
    cols: dict[str, list] = {k: [] for k in ("episode", "frame", "reward", "mc_return", "next", "done", "discount")}
    row = 0
    for e, p in enumerate(progress):
        p = np.asarray(p, dtype=np.float64)
        if p.ndim != 1 or len(p) < 2:
            raise InputShapeError(f"`progress[{e}]`: expected (T,) with T >= 2 frames; got shape {p.shape}")
        if not np.all(np.isfinite(p)):
            raise NonFiniteError(f"`progress[{e}]`: contains NaN or inf (the reward model's relabelled progress)")
        starts = np.arange(0, len(p) - 1, execute)
        ends = np.minimum(starts + execute, len(p) - 1)
        reward = p[ends] - p[starts]
        disc = gamma ** (ends - starts).astype(np.float64)
        mc = np.zeros(len(starts))
        running = 0.0
        for k in range(len(starts) - 1, -1, -1):
            running = reward[k] + disc[k] * running
            mc[k] = running
        n = len(starts)
        cols["episode"].append(np.full(n, e))
        cols["frame"].append(starts)
        cols["reward"].append(reward)
        cols["mc_return"].append(mc)
        cols["next"].append(row + np.minimum(np.arange(1, n + 1), n - 1))
        cols["done"].append(np.arange(n) == n - 1)
        cols["discount"].append(disc)
        row += n
    if row == 0:
        raise ConfigError("`progress`: no episodes to cut into chunk transitions")
    out = {k: np.concatenate(v) for k, v in cols.items()}
    return ChunkTransitions(
        episode=out["episode"].astype(np.int64),
        frame=out["frame"].astype(np.int64),
        reward=out["reward"].astype(np.float32),
        mc_return=out["mc_return"].astype(np.float32),
        next=out["next"].astype(np.int64),
        done=out["done"].astype(bool),
        discount=out["discount"].astype(np.float32),
    )


def episode_transitions(
    episodes: Sequence[Any], progress: Sequence[np.ndarray], execute: int, gamma: float
) -> ChunkTransitions:
    """:func:`chunk_transitions` of rollouts (anything with a ``state (T, ...)``) and their per-frame ``progress``,
    checking there is one ``(T,)`` series per rollout."""
    if len(episodes) != len(progress) or not episodes:
        raise InputShapeError(
            f"`progress`: expected one series per episode ({len(episodes)} episodes); got {len(progress)}"
        )
    for e, (ep, p) in enumerate(zip(episodes, progress)):
        if np.shape(p) != (ep.state.shape[0],):
            raise InputShapeError(f"`progress[{e}]`: expected ({ep.state.shape[0]},); got {np.shape(p)}")
    return chunk_transitions(progress, execute, gamma)


# --------------------------------------------------------------------------------------------- networks
def _mlp(width_in: int, hidden: int, width_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(width_in, hidden),
        nn.LayerNorm(hidden),
        nn.ReLU(),
        nn.Linear(hidden, hidden),
        nn.ReLU(),
        nn.Linear(hidden, width_out),
    )


class ResidualActor(nn.Module):
    """[observation features, base chunk] -> bounded residual on the executed chunk."""

    def __init__(self, obs_dim: int, act_dim: int, cfg: ResidualACConfig) -> None:
        super().__init__()
        self.net = _mlp(obs_dim + act_dim, cfg.hidden, act_dim)
        self.limit = cfg.residual_limit
        # A zero last layer: an untrained actor is exactly the base policy.
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    def forward(self, obs: torch.Tensor, base: torch.Tensor) -> torch.Tensor:
        """The residual ``(B, A)`` for observation features ``(B, O)`` and the base's chunks ``(B, A)``."""
        return self.limit * torch.tanh(self.net(torch.cat([obs, base], dim=-1)))


class CriticEnsemble(nn.Module):
    """An ensemble of ``Q(s, a)`` heads; returns ``(K, B)``."""

    def __init__(self, obs_dim: int, act_dim: int, cfg: ResidualACConfig) -> None:
        super().__init__()
        self.heads = nn.ModuleList(_mlp(obs_dim + act_dim, cfg.hidden, 1) for _ in range(cfg.critics))

    def forward(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """Every critic's ``Q`` ``(K, B)`` of chunks ``(B, A)`` from observation features ``(B, O)``."""
        x = torch.cat([obs, action], dim=-1)
        return torch.stack([h(x).squeeze(-1) for h in self.heads])


# --------------------------------------------------------------------------------------------- training
def train_actor_critic(
    actor: nn.Module,
    critics: nn.Module,
    cfg: ResidualACConfig,
    arrays: tuple[np.ndarray, np.ndarray, np.ndarray],
    tr: ChunkTransitions,
    *,
    steps: int,
    seed: int = 0,
) -> dict[str, Any]:
    """TD3-style training of ``actor`` and ``critics`` in place (see the module docstring); returns its summary.

    ``arrays`` are one row per transition of ``tr``: the observation features, the executed chunk and the frozen
    base's chunk, both standardised and flattened; the actor proposes a residual on the base's chunk.
    """
    dev = next(actor.parameters()).device
    obs, act, base, reward, mc, nxt, disc = (
        torch.as_tensor(a, device=dev) for a in (*arrays, tr.reward, tr.mc_return, tr.next, tr.discount)
    )
    not_done = torch.as_tensor(~tr.done, dtype=torch.float32, device=dev)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    actor_t, critics_t = copy.deepcopy(actor), copy.deepcopy(critics)
    for p in (*actor_t.parameters(), *critics_t.parameters()):
        p.requires_grad_(False)
    opt_a = torch.optim.Adam(actor.parameters(), lr=cfg.lr)
    opt_c = torch.optim.Adam(critics.parameters(), lr=cfg.lr)
    actor.train()
    critics.train()
    n = len(tr)
    critic_losses, actor_q, residual_sq = [], [], []
    for step in range(steps):
        idx = torch.as_tensor(rng.integers(0, n, size=min(cfg.batch_size, n)), device=dev)
        with torch.no_grad():
            j = nxt[idx]
            eps = (torch.randn_like(act[j]) * cfg.target_noise).clamp(-cfg.target_noise_clip, cfg.target_noise_clip)
            next_action = base[j] + actor_t(obs[j], base[j]) + eps
            pair = rng.choice(cfg.critics, size=2, replace=False)
            q_next = critics_t(obs[j], next_action)[torch.as_tensor(pair, device=dev)].min(0).values
            td = reward[idx] + disc[idx] * not_done[idx] * q_next
            target = cfg.mc_weight * mc[idx] + (1.0 - cfg.mc_weight) * td
        q = critics(obs[idx], act[idx])  # (K, B), on the actions actually executed
        loss_c = ((q - target[None]) ** 2).mean()
        opt_c.zero_grad(set_to_none=True)
        loss_c.backward()
        opt_c.step()
        critic_losses.append(float(loss_c.detach()))
        if step % cfg.policy_delay == 0:
            res = actor(obs[idx], base[idx])
            q_pi = critics(obs[idx], base[idx] + res).mean(0)
            scale = q_pi.abs().mean().detach() + 1e-6
            loss_a = -(q_pi / scale).mean() + cfg.bc_penalty * (res**2).mean()
            opt_a.zero_grad(set_to_none=True)
            loss_a.backward()
            opt_a.step()
            actor_q.append(float(q_pi.detach().mean()))
            residual_sq.append(float((res.detach() ** 2).mean()))
            _polyak((actor, actor_t), (critics, critics_t), tau=cfg.tau)
        if not np.isfinite(critic_losses[-1]):
            raise NonFiniteError(f"residual actor-critic: critic loss became {critic_losses[-1]} at step {step}")
    actor.eval()
    critics.eval()
    mean_square = _last_tenth(residual_sq)
    return {
        "transitions": n,
        "steps": steps,
        "critic_loss": _last_tenth(critic_losses),
        "actor_q": _last_tenth(actor_q),
        "residual_rms": None if mean_square is None else float(np.sqrt(mean_square)),
        "mean_chunk_reward": float(tr.reward.mean()),
    }


# --------------------------------------------------------------------------------------------- policy
class ResidualACPolicy(ChunkedActing):
    """A frozen :class:`BCPolicy` plus a residual actor and a critic ensemble (see the module docstring).

    It is a :class:`agents.policy.Policy`; build it with :meth:`from_base` (an untrained residual acts
    exactly like the base), train it with :meth:`fit`, persist it with :meth:`save` / :func:`load_policy`.
    """

    def __init__(self, base: BCPolicy, config: ResidualACConfig | None = None, seed: int = 0) -> None:
        base._require_trained()
        self.base = base
        self.ac = config or ResidualACConfig()
        self.device = base.device
        self.execute = base.config.execute
        self.act_dim = self.execute * ACTION_DIM
        # Actor and critics read the frozen base's own camera and instruction projections and the standardised
        # state (BCPolicy.features_and_chunks): 3 x camera_dim instead of 3 x the raw embedding size makes every
        # critic step several times cheaper on a CPU (benchmarks/residual_speed.py).
        self.obs_dim = len(CAMERAS) * base.config.camera_dim + STATE_DIM + int(base.net.text.out_features)
        with torch.random.fork_rng(devices=[]):  # the initial weights depend on `seed` only
            torch.manual_seed(seed)
            self.actor = ResidualActor(self.obs_dim, self.act_dim, self.ac).to(self.device)
            self.critics = CriticEnsemble(self.obs_dim, self.act_dim, self.ac).to(self.device)
        self.critics_trained = False
        self.explore_noise = 0.0
        self.training_summary: dict[str, Any] = {}
        self._rng = np.random.default_rng(seed)
        self._instructions: list[str] = []
        self._queues: list[list[np.ndarray]] = []

    @classmethod
    def from_base(cls, base: BCPolicy, config: ResidualACConfig | None = None, seed: int = 0) -> ResidualACPolicy:
        """A residual policy that starts as ``base`` (zero residual, untrained critics)."""
        return cls(base, config, seed)

    def copy(self) -> ResidualACPolicy:
        """An independent copy (the base network is shared; it is frozen)."""
        other = ResidualACPolicy(self.base, self.ac)
        other.actor.load_state_dict(self.actor.state_dict())
        other.critics.load_state_dict(self.critics.state_dict())
        other.critics_trained = self.critics_trained
        return other

    # --- what SPIRAL and the collectors use ---------------------------------------------------------
    @property
    def config(self) -> BCPolicyConfig:
        """The base policy's config (encoders, chunk, execute)."""
        return self.base.config

    @property
    def image_encoder(self):
        """The base policy's frozen image encoder (shared with the reward model)."""
        return self.base.image_encoder

    def set_image_encoder(self, encoder) -> None:
        """Share ``encoder`` with the base policy (so rollout frames are encoded once)."""
        self.base.set_image_encoder(encoder)

    def encode_observations(self, observations: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        """The base policy's encoding of batched observations: embeddings ``(N, C, D)``, joints ``(N, 14)``."""
        return self.base.encode_observations(observations)

    @contextlib.contextmanager
    def exploring(self, noise: float | None = None) -> Iterator[ResidualACPolicy]:
        """Perturb executed chunks with ``noise`` (default ``explore_noise``) inside the ``with`` block."""
        previous = self.explore_noise
        self.explore_noise = self.ac.explore_noise if noise is None else float(noise)
        try:
            yield self
        finally:
            self.explore_noise = previous

    def act_from_embeddings(self, embeddings: np.ndarray, state: np.ndarray) -> np.ndarray:
        """The next action of every env from encoded frames ``(N, C, D)`` and states ``(N, 14)``."""
        return self._next_actions(embeddings, state, self.plan)

    @torch.no_grad()
    def plan(self, embeddings: np.ndarray, state: np.ndarray, instructions: Sequence[str]) -> np.ndarray:
        """``(N, E, 14)`` absolute joint targets to execute: base + residual, best of K, plus exploration."""
        obs, chunks = self.base.features_and_chunks(embeddings, state, instructions)
        base = chunks[:, : self.execute]  # (N, E, 14)
        base_t = torch.as_tensor(base.reshape(len(base), -1), device=self.device)
        self.actor.eval()
        chosen = base_t + self.actor(obs, base_t)
        if self.critics_trained and self.ac.best_of_k > 1:
            chosen = self.best_of_k(obs, chosen)
        out = chosen.cpu().numpy()
        if self.explore_noise > 0:
            out = out + self._rng.normal(0.0, self.explore_noise, size=out.shape).astype(np.float32)
        return self.base.chunks_from_normalised(out.reshape(len(out), self.execute, ACTION_DIM), state)

    @torch.no_grad()
    def best_of_k(self, obs: torch.Tensor, proposal: torch.Tensor) -> torch.Tensor:
        """Score the proposal and ``K - 1`` perturbations of it with the critics; keep the best of each row."""
        k, (n, a) = self.ac.best_of_k, proposal.shape
        gen = torch.Generator(device="cpu").manual_seed(int(self._rng.integers(2**31)))
        noise = torch.randn((k - 1, n, a), generator=gen).to(self.device) * self.ac.candidate_noise
        candidates = torch.cat([proposal[None], proposal[None] + noise])  # (K, N, A); candidate 0 is the proposal
        self.critics.eval()
        q = self.critics(obs.repeat(k, 1), candidates.reshape(k * n, a)).view(-1, k, n)  # (critics, K, N)
        score = q.mean(0) - self.ac.pessimism * q.std(0)
        best = score.argmax(0)  # (N,)
        return candidates[best, torch.arange(n, device=self.device)]

    # --- training ----------------------------------------------------------------------------------
    def fit(
        self,
        episodes: Sequence[Any],
        progress: Sequence[np.ndarray],
        *,
        steps: int,
        seed: int = 0,
    ) -> dict[str, Any]:
        """TD3-style training on rollouts (``embeddings``, ``state``, ``action``, ``instruction`` per episode) and
        their relabelled per-frame ``progress``; returns the training summary."""
        tr = episode_transitions(episodes, progress, self.execute, self.ac.gamma)
        obs, act, base = self._transition_arrays(episodes, tr)
        summary = train_actor_critic(self.actor, self.critics, self.ac, (obs, act, base), tr, steps=steps, seed=seed)
        self.critics_trained = True
        self.training_summary = {"episodes": len(episodes), **summary}
        log.info("residual AC fit: %s", self.training_summary)
        return self.training_summary

    def _transition_arrays(self, episodes: Sequence[Any], tr: ChunkTransitions):
        """Observation features, executed standardised chunks and the base's chunks at every decision frame."""
        obs, act, base = [], [], []
        for e, ep in enumerate(episodes):
            frames = tr.frame[tr.episode == e]
            emb = np.asarray(ep.embeddings, dtype=np.float32)[frames]
            state = np.asarray(ep.state, dtype=np.float32)[frames]
            # A short last chunk repeats its final action (the rollout's last row already does).
            ahead = np.minimum(frames[:, None] + np.arange(self.execute)[None], len(ep.state) - 1)  # (n, E)
            executed = self.base.normalise_chunks(np.asarray(ep.action, dtype=np.float32)[ahead], state)
            features, chunks = self.base.features_and_chunks(emb, state, [ep.instruction] * len(frames))
            obs.append(features.cpu().numpy())
            act.append(executed.reshape(len(frames), -1))
            base.append(chunks[:, : self.execute].reshape(len(frames), self.act_dim))
        return np.concatenate(obs), np.concatenate(act).astype(np.float32), np.concatenate(base)

    # --- persistence -------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to rebuild the policy elsewhere (a Ray worker), as plain CPU objects."""
        return {
            "kind": RESIDUAL_MODEL,
            "base": self.base.state_dict(),
            "residual_config": dataclasses.asdict(self.ac),
            "actor": {k: v.detach().cpu() for k, v in self.actor.state_dict().items()},
            "critics": {k: v.detach().cpu() for k, v in self.critics.state_dict().items()},
            "critics_trained": self.critics_trained,
            "explore_noise": self.explore_noise,
        }

    @classmethod
    def from_state_dict(cls, state: Mapping[str, Any], device: str | torch.device | None = None) -> ResidualACPolicy:
        """A policy from :meth:`state_dict`'s output (base policy, actor, critics)."""
        base = BCPolicy.from_state_dict(state["base"], device=device)
        policy = cls(base, ResidualACConfig(**state["residual_config"]))
        policy.actor.load_state_dict(state["actor"])
        policy.critics.load_state_dict(state["critics"])
        policy.critics_trained = bool(state["critics_trained"])
        policy.explore_noise = float(state.get("explore_noise", 0.0))
        return policy

    def save(self, path: str | os.PathLike) -> Path:
        """One checkpoint directory: the frozen base, the actor and the critics."""
        from rewards.checkpoint import save_checkpoint

        tensors = {f"base.net.{k}": v for k, v in self.base.net.state_dict().items()}
        tensors.update({f"base.norm.{k}": torch.as_tensor(v) for k, v in self.base.norm.items()})
        tensors.update({f"actor.{k}": v for k, v in self.actor.state_dict().items()})
        tensors.update({f"critics.{k}": v for k, v in self.critics.state_dict().items()})
        meta = {
            "model": RESIDUAL_MODEL,
            "config": dataclasses.asdict(self.base.config),
            "residual_config": dataclasses.asdict(self.ac),
            "encoder_spec": self.base.image_encoder.spec.to_dict(),
            "emb_dim": int(self.base.net.cams[0][0].in_features),
            "text_dim": int(self.base.net.text.in_features),
            "critics_trained": self.critics_trained,
            "training": self.training_summary,
        }
        return save_checkpoint(path, meta, tensors)

    @classmethod
    def load(cls, path: str | os.PathLike, device: str | torch.device | None = None) -> ResidualACPolicy:
        """A policy saved by :meth:`save`; a missing or corrupt directory is a :class:`CheckpointError`."""
        from rewards.checkpoint import load_checkpoint

        meta, tensors = load_checkpoint(path, expect_model=RESIDUAL_MODEL)
        base_state = {
            "config": meta["config"],
            "emb_dim": meta["emb_dim"],
            "text_dim": meta["text_dim"],
            "net": {k[9:]: v.float() for k, v in tensors.items() if k.startswith("base.net.")},
            "norm": {k[10:]: v.float().numpy() for k, v in tensors.items() if k.startswith("base.norm.")},
        }
        policy = cls(BCPolicy.from_state_dict(base_state, device=device), ResidualACConfig(**meta["residual_config"]))
        policy.actor.load_state_dict({k[6:]: v.float() for k, v in tensors.items() if k.startswith("actor.")})
        policy.critics.load_state_dict({k[8:]: v.float() for k, v in tensors.items() if k.startswith("critics.")})
        policy.critics_trained = bool(meta["critics_trained"])
        policy.training_summary = meta.get("training", {})
        return policy


def load_policy(path: str | os.PathLike, device: str | torch.device | None = None) -> BCPolicy | ResidualACPolicy:
    """Load a :class:`BCPolicy` or :class:`ResidualACPolicy` checkpoint, whichever ``path`` holds."""
    from rewards.checkpoint import checkpoint_model

    if checkpoint_model(path, "policy checkpoint") == RESIDUAL_MODEL:
        return ResidualACPolicy.load(path, device=device)
    return BCPolicy.load(path, device=device)


def policy_from_state_dict(state: Mapping[str, Any], device: str | torch.device | None = None):
    """Rebuild a policy shipped with ``state_dict()`` (either kind)."""
    if state.get("kind") == RESIDUAL_MODEL:
        return ResidualACPolicy.from_state_dict(state, device=device)
    return BCPolicy.from_state_dict(state, device=device)


def _polyak(*pairs: tuple[nn.Module, nn.Module], tau: float) -> None:
    """Move each target network ``tau`` of the way towards its online network (TD3's soft update)."""
    with torch.no_grad():
        for net, target in pairs:
            for p, pt in zip(net.parameters(), target.parameters()):
                pt.mul_(1.0 - tau).add_(p, alpha=tau)


def _last_tenth(values: Sequence[float]) -> float | None:
    """Mean of the last tenth of a training curve (at least one value); ``None`` for an empty curve."""
    if not values:
        return None
    return float(np.mean(values[-max(1, len(values) // 10) :]))
