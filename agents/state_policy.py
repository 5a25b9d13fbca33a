"""A state-based behaviour-cloning policy: the *sim-only stand-in for a VLA* that SPIRAL starts from (``pi_0``).

A VLA reads camera views; in simulation, localising objects to the centimetre from frozen global image
embeddings is what kept the image policy (:class:`agents.policy.BCPolicy`) at 0 % success on the long tasks. This
policy reads the simulator's privileged state instead (``obs_mode="state"``: joints, object poses, cloth or cable
keypoints, ink left, grasp flags; each task card lists the layout), so ``pi_0`` can succeed and SPIRAL has
something to improve, while the reward model still scores rendered frames. It exists only in simulation and
is labelled :data:`LABEL` wherever its numbers appear; real stations use the image policy.

The head is an MLP over ``[state_t, agent_pos_{t-l} for l in history]`` (the joint history tells a stroke
going out from one coming back: without it the policy stalls at the end of a wipe) that predicts a chunk of
``H`` absolute joint targets; the first ``execute`` are run before planning again (receding horizon, as
:class:`agents.policy.BCPolicy`). With ``condition=True`` the head also reads RECAP's advantage indicator (one-hot:
negative, positive, unknown), trained on each sample's label and acting as "positive". Demonstrations come from
the scripted experts, optionally executed with DART-style action noise while the label stays the expert's target
(:func:`collect_state_demos`).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from agents.policy import NEGATIVE, POSITIVE, UNKNOWN, ChunkedActing
from sarm2_env.config import FrozenConfig
from sarm2_env.constants import ACTION_DIM, STATE_DIM
from sarm2_env.errors import CheckpointError, ConfigError, InputShapeError, NonFiniteError, UnknownNameError

log = logging.getLogger(__name__)

#: How every table and plot names this policy.
LABEL = "state BC (sim-only stand-in for a VLA)"
STATE_POLICY_MODEL = "state_bc_policy"
_GRIPPERS = [6, 13]
#: Joints whose cloned targets vary less than this (rad) in the policy's training data are never perturbed.
STILL_JOINT = 0.01
_CONDITIONS = 3  # the indicator's one-hot: NEGATIVE, POSITIVE, UNKNOWN


def _with_condition(x: torch.Tensor, condition: torch.Tensor | None) -> torch.Tensor:
    """The head's input: ``x (B, F)``, then the one-hot of ``condition (B,)`` when the head is conditioned."""
    if condition is None:
        return x
    return torch.cat([x, nn.functional.one_hot(condition, _CONDITIONS).to(x.dtype)], dim=1)


@dataclasses.dataclass(frozen=True)
class StatePolicyConfig(FrozenConfig):
    """Architecture and training of :class:`StatePolicy`.

    Args:
        chunk: ``H``, absolute joint targets predicted per plan.
        execute: targets executed before planning again (1 <= execute <= chunk).
        history: lags (control steps) of the joint states fed beside the current state.
        hidden, layers: the MLP head.
        lr, weight_decay, batch_size, steps, warmup, grad_clip: behaviour-cloning training (AdamW, cosine).
        std_floor: lower bound of the per-feature standard deviation used to standardise inputs (near-constant
            features, e.g. a flag never set in the demos, would otherwise blow up when they change).
        condition: add RECAP's advantage-indicator input (each episode's ``condition``; acting reads "positive").
        condition_dropout: probability of showing "unknown" instead of a sample's indicator in training.
        ignore_fields: state fields (names of the env's ``state_layout``, e.g. ``"ink_remaining"``) the head does
            not read: their standardised inputs are held at 0. A high-dimensional field that varies from episode to
            episode but does not change what the demonstrator does (CleanWhiteboard's 72-cell ink map: the expert
            wipes the same strokes whatever the ink) is a cue a small demo set lets the head latch onto.
    """

    label = "state policy"

    chunk: int = 20
    execute: int = 10
    history: tuple[int, ...] = (5, 10)
    hidden: int = 512
    layers: int = 3
    lr: float = 1e-3
    weight_decay: float = 1e-4
    batch_size: int = 256
    steps: int = 6000
    warmup: int = 200
    grad_clip: float = 1.0
    std_floor: float = 0.05
    condition: bool = False
    condition_dropout: float = 0.3
    ignore_fields: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "history", tuple(self.history))
        object.__setattr__(self, "ignore_fields", tuple(self.ignore_fields))
        self._check_positive_ints(*("chunk", "execute", "hidden", "layers", "batch_size", "steps"))
        if self.execute > self.chunk:
            raise ConfigError(f"`execute` must be <= `chunk` ({self.chunk}); got {self.execute}")
        if any(not isinstance(lag, int) or lag < 1 for lag in self.history):
            raise ConfigError(f"`history` must hold integer lags >= 1; got {self.history!r}")
        for name in ("lr", "std_floor"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"`{name}` must be > 0; got {getattr(self, name)!r}")
        if self.weight_decay < 0 or self.grad_clip < 0 or self.warmup < 0:
            raise ConfigError("`weight_decay`, `grad_clip` and `warmup` must be >= 0")
        if not 0 <= self.condition_dropout < 1:
            raise ConfigError(f"`condition_dropout` must be in [0, 1); got {self.condition_dropout!r}")


@dataclasses.dataclass(frozen=True)
class StateEpisode:
    """One demonstration: flat states ``(T, D)`` (``obs_mode="state"``, ``agent_pos`` first), the actions taken
    after each state ``(T, 14)``, an optional per-frame BC weight ``(T,)`` and an optional per-frame RECAP indicator
    ``condition (T,)`` (1 advantage positive, 0 negative; ``None``: positive, as for demonstrations)."""

    task_id: str
    state: np.ndarray
    action: np.ndarray
    weight: np.ndarray | None = None
    success: bool = True
    condition: np.ndarray | None = None

    def __post_init__(self) -> None:
        t = self.state.shape[0] if self.state.ndim == 2 else -1
        if t < 1 or self.state.shape[1] <= STATE_DIM:
            raise InputShapeError(f"`state`: expected (T, D > {STATE_DIM}), agent_pos first; got {self.state.shape}")
        if self.action.shape != (t, ACTION_DIM):
            raise InputShapeError(f"`action`: expected ({t}, {ACTION_DIM}); got {self.action.shape}")
        for name in ("weight", "condition"):
            value = getattr(self, name)
            if value is not None and np.shape(value) != (t,):
                raise InputShapeError(f"`{name}`: expected ({t},); got {np.shape(value)}")
        if self.condition is not None and not np.isin(self.condition, (NEGATIVE, POSITIVE)).all():
            raise ConfigError(f"`condition`: expected 0 (negative) or 1 (positive) per frame; got {self.condition}")

    @property
    def length(self) -> int:
        """Frames in the episode."""
        return int(self.state.shape[0])


def history_features(states: np.ndarray, lags: Sequence[int]) -> np.ndarray:
    """``[state_t, agent_pos_{t-l} ...]`` for every frame of one episode ``(T, D)`` (lags clamped at the start)."""
    t = np.arange(len(states))
    parts = [states] + [states[np.maximum(t - lag, 0), :STATE_DIM] for lag in lags]
    return np.concatenate(parts, axis=1).astype(np.float32)


def _head(in_dim: int, cfg: StatePolicyConfig) -> nn.Sequential:
    layers: list[nn.Module] = []
    width = in_dim + (_CONDITIONS if cfg.condition else 0)
    for _ in range(cfg.layers):
        layers += [nn.Linear(width, cfg.hidden), nn.GELU()]
        width = cfg.hidden
    layers.append(nn.Linear(width, cfg.chunk * ACTION_DIM))
    return nn.Sequential(*layers)


class StatePolicy(ChunkedActing):
    """Chunked behaviour cloning over the privileged simulator state; see the module docstring.

    Acts in ``N`` envs at once (the :class:`agents.policy.Policy` protocol) on ``obs_mode="state"``
    observations ``(N, D)`` (or ``(D,)``, or a ``pixels+state`` dict). Build one with :meth:`fit` or :meth:`load`.
    """

    label = LABEL

    def __init__(self, config: StatePolicyConfig | None = None, device: str | torch.device | None = None) -> None:
        from rewards.train_loop import default_device

        self.config = config or StatePolicyConfig()
        self.device = default_device(device)
        self.net: nn.Sequential | None = None
        self.norm: dict[str, np.ndarray] = {}
        self.state_dim: int | None = None
        self.training_summary: dict[str, Any] = {}
        self._instructions: list[str] = []
        self._queues: list[list[np.ndarray]] = []
        self._history: list[list[np.ndarray]] = []

    # --- acting ------------------------------------------------------------------------------------
    def reset(self, instructions: Sequence[str], indices: Sequence[int] | None = None) -> None:
        """Start new episodes (all envs, or those in ``indices``): plans and joint histories are dropped."""
        super().reset(instructions, indices)
        if indices is None:
            self._history = [[] for _ in self._instructions]
        else:
            for i in indices:
                self._history[i] = []

    def encode_observations(self, observations: Any) -> tuple[np.ndarray, np.ndarray]:
        """Observations -> the head's inputs ``(N, F)`` (state + joint history) and joint states ``(N, 14)``.

        Call once per env step: it records the joint history the next steps read.
        """
        state = _flat_states(observations)
        self._require_trained()
        if state.shape[1] != self.state_dim:
            raise InputShapeError(
                f"`observations`: the policy was trained on states of size {self.state_dim}; got {state.shape[1]} "
                "(another task, or an env made with another obs_mode?)"
            )
        if len(self._history) != len(state):
            raise InputShapeError(
                f"`observations`: the policy was reset for {len(self._history)} envs; got {len(state)}"
            )
        rows = []
        for i, s in enumerate(state):
            hist = self._history[i]
            hist.append(s[:STATE_DIM].copy())
            keep = max(self.config.history, default=0) + 1
            del hist[:-keep]
            rows.append(np.concatenate([s, *(hist[max(0, len(hist) - 1 - lag)] for lag in self.config.history)]))
        return np.stack(rows).astype(np.float32), state[:, :STATE_DIM]

    def act_from_embeddings(self, features: np.ndarray, state: np.ndarray) -> np.ndarray:
        """The next action of every env from :meth:`encode_observations`'s features (the protocol's name)."""
        execute = self.config.execute
        return self._next_actions(features, state, lambda f, s, texts: self.predict_chunks(f)[:, :execute])

    def predict_chunks(self, features: np.ndarray) -> np.ndarray:
        """``(N, H, 14)`` absolute joint targets (grippers clipped to [0, 1]) from features ``(N, F)``."""
        return self.targets_from_normalised(self.normalised_chunks(features))

    @torch.no_grad()
    def normalised_chunks(self, features: np.ndarray) -> np.ndarray:
        """The head's plans ``(N, H, 14)`` in its standardised target units, from features ``(N, F)`` (those of
        :meth:`encode_observations` or :func:`history_features`)."""
        self._require_trained()
        x = torch.as_tensor(self._standardise(features), dtype=torch.float32, device=self.device)
        cond = torch.full((len(x),), POSITIVE, device=self.device) if self.config.condition else None
        return self.net(_with_condition(x, cond)).cpu().numpy().reshape(len(features), self.config.chunk, ACTION_DIM)

    def targets_from_normalised(self, chunks: np.ndarray) -> np.ndarray:
        """Absolute joint targets ``(N, K, 14)`` from the first ``K`` steps of standardised plans (grippers clipped
        to [0, 1])."""
        k = chunks.shape[1]
        actions = chunks * self.norm["y_std"][:k] + self.norm["y_mean"][:k]
        actions[..., _GRIPPERS] = np.clip(actions[..., _GRIPPERS], 0.0, 1.0)
        if not np.all(np.isfinite(actions)):
            raise NonFiniteError("state BC policy produced NaN/inf actions (diverged training?)")
        return actions.astype(np.float32)

    def normalise_targets(self, actions: np.ndarray) -> np.ndarray:
        """Standardised plans ``(N, K, 14)`` from absolute joint targets (the inverse of
        :meth:`targets_from_normalised` away from the gripper clip)."""
        k = actions.shape[1]
        return ((actions - self.norm["y_mean"][:k]) / self.norm["y_std"][:k]).astype(np.float32)

    def exploring_joints(self) -> np.ndarray:
        """``(14,)`` 1 for the arm joints exploration may perturb: those the demonstrations move (a joint held
        still has a label spread near the normalisation floor, so its noise would outweigh every other target
        when cloned), 0 for the others and the grippers."""
        self._require_trained()
        mask = (self.norm["y_std"].min(axis=0) > STILL_JOINT).astype(np.float32)
        mask[_GRIPPERS] = 0.0
        return mask

    def standardised_features(self, states: np.ndarray) -> np.ndarray:
        """The head's standardised inputs ``(T, F)`` for one episode's states ``(T, D)`` (clipped to +-5: a
        state far outside the demos would otherwise dominate whatever is fitted on them)."""
        return self.clipped_standardised(history_features(np.asarray(states, np.float32), self.config.history))

    def _standardise(self, features: np.ndarray) -> np.ndarray:
        standardised = (features - self.norm["x_mean"]) / self.norm["x_std"]
        mask = self.norm.get("input_mask")  # absent in policies saved before `ignore_fields` existed
        return standardised if mask is None else standardised * mask

    def clipped_standardised(self, features: np.ndarray) -> np.ndarray:
        """Features ``(N, F)`` standardised with the demos' statistics and clipped to +-5 (what value and critic
        heads fitted beside the policy read: a state far outside the demos would otherwise dominate them)."""
        self._require_trained()
        return np.clip(self._standardise(features), -5.0, 5.0).astype(np.float32)

    def _require_trained(self) -> None:
        if self.net is None:
            raise CheckpointError("the state BC policy is untrained: call fit(episodes) or StatePolicy.load(path)")

    # --- training ----------------------------------------------------------------------------------
    def fit(
        self,
        episodes: Sequence[StateEpisode],
        *,
        seed: int = 0,
        steps: int | None = None,
        init_from: StatePolicy | None = None,
        progress: bool = False,
    ) -> dict[str, Any]:
        """Weighted behaviour cloning on ``episodes`` (one task's, or several of the same state size).

        ``init_from`` starts from another policy's weights and normalisation (SPIRAL's fine-tuning rounds).
        """
        from rewards.train_loop import init_distributed, run_training

        if not episodes:
            raise ConfigError("`episodes` must hold at least one episode to clone; got none")
        dims = {ep.state.shape[1] for ep in episodes}
        if len(dims) != 1:
            raise InputShapeError(f"`episodes`: every episode must have the same state size; got sizes {sorted(dims)}")
        cfg = self.config
        x, y, w, conditions = _training_arrays(episodes, cfg)
        if not w.sum() > 0:
            raise ConfigError("every BC sample has weight 0: nothing to learn from")
        self.state_dim = int(dims.pop())
        if init_from is not None:
            init_from._require_trained()
            if init_from.state_dim != self.state_dim or init_from.config.chunk != cfg.chunk:
                raise ConfigError("`init_from`: its state size or chunk differs from this policy's; cannot fine-tune")
            if init_from.config.condition != cfg.condition:
                raise ConfigError("`init_from`: its `condition` input differs from this policy's; cannot fine-tune")
            if init_from.config.ignore_fields != cfg.ignore_fields:
                raise ConfigError("`init_from`: its `ignore_fields` differ from this policy's; cannot fine-tune")
            self.norm = {k: v.copy() for k, v in init_from.norm.items()}
        else:
            self.norm = {
                "x_mean": x.mean(0),
                "x_std": np.maximum(x.std(0), cfg.std_floor).astype(np.float32),
                "y_mean": y.mean(0).reshape(cfg.chunk, ACTION_DIM),
                "y_std": np.maximum(y.std(0), 1e-3).astype(np.float32).reshape(cfg.chunk, ACTION_DIM),
                "input_mask": input_mask([ep.task_id for ep in episodes], self.state_dim, cfg),
            }
        xn = torch.as_tensor(self._standardise(x), dtype=torch.float32, device=self.device)
        yn = torch.as_tensor(
            (y - self.norm["y_mean"].reshape(-1)) / self.norm["y_std"].reshape(-1),
            dtype=torch.float32,
            device=self.device,
        )
        probs = w / w.sum()
        torch.manual_seed(seed)
        self.net = _head(x.shape[1], cfg).to(self.device)
        if init_from is not None:
            self.net.load_state_dict(init_from.net.state_dict())

        def loss_fn(model: nn.Module, rng: np.random.Generator):
            picked = rng.choice(len(w), size=cfg.batch_size, p=probs)
            idx = torch.as_tensor(picked, device=self.device)
            cond = _shown_conditions(conditions[picked], cfg, rng, self.device)
            loss = nn.functional.mse_loss(model(_with_condition(xn[idx], cond)), yn[idx])
            return loss, {"bc_mse": float(loss.detach())}

        total = steps if steps is not None else cfg.steps
        summary = run_training(
            module=self.net,
            param_groups=[{"params": self.net.parameters(), "lr": cfg.lr, "weight_decay": cfg.weight_decay}],
            loss_fn=loss_fn,
            steps=total,
            warmup=min(cfg.warmup, max(1, total // 10)),
            grad_clip=cfg.grad_clip,
            seed=seed,
            ctx=init_distributed(self.device),
            progress=progress,
        )
        self.net.eval()
        self.training_summary = {
            "label": LABEL,
            "episodes": len(episodes),
            "samples": int(len(w)),
            "state_dim": self.state_dim,
            **({"positive_fraction": float(np.mean(conditions == POSITIVE))} if cfg.condition else {}),
            **{k: v for k, v in summary.items() if isinstance(v, (int, float, str))},
        }
        log.info("state BC fit: %d episodes, %d samples", len(episodes), len(w))
        return self.training_summary

    # --- persistence -------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """Write ``config.json`` + ``model.safetensors`` atomically."""
        from rewards.checkpoint import save_checkpoint

        tensors = self.tensors()
        meta = {
            "model": STATE_POLICY_MODEL,
            "label": LABEL,
            "config": dataclasses.asdict(self.config),
            "state_dim": self.state_dim,
            "training": json.loads(json.dumps(self.training_summary, default=str)),
        }
        return save_checkpoint(path, meta, tensors)

    @classmethod
    def load(cls, path: str | os.PathLike, device: str | torch.device | None = None) -> StatePolicy:
        """Load a policy saved by :meth:`save` (a clear :class:`CheckpointError` if missing or damaged)."""
        from rewards.checkpoint import load_checkpoint

        meta, tensors = load_checkpoint(path, expect_model=STATE_POLICY_MODEL)
        policy = cls.from_tensors(meta, tensors, device=device)
        policy.training_summary = meta.get("training", {})
        return policy

    @classmethod
    def from_tensors(
        cls, meta: Mapping[str, Any], tensors: Mapping[str, torch.Tensor], prefix: str = "", device: Any = None
    ) -> StatePolicy:
        """A trained policy from a checkpoint's ``config`` / ``state_dim`` and its ``<prefix>net.*`` and
        ``<prefix>norm.*`` tensors (what :meth:`save` writes with no prefix)."""
        policy = cls(StatePolicyConfig(**meta["config"]), device=device)
        policy.state_dim = int(meta["state_dim"])
        in_dim = policy.state_dim + STATE_DIM * len(policy.config.history)
        policy.net = _head(in_dim, policy.config)
        net, norm = f"{prefix}net.", f"{prefix}norm."
        policy.net.load_state_dict({k[len(net) :]: v.float() for k, v in tensors.items() if k.startswith(net)})
        policy.net.to(policy.device).eval()
        policy.norm = {k[len(norm) :]: v.float().numpy() for k, v in tensors.items() if k.startswith(norm)}
        return policy

    def tensors(self, prefix: str = "") -> dict[str, torch.Tensor]:
        """The head's weights and the normalisation as ``<prefix>net.*`` / ``<prefix>norm.*`` tensors."""
        self._require_trained()
        out = {f"{prefix}net.{k}": v for k, v in self.net.state_dict().items()}
        out.update({f"{prefix}norm.{k}": torch.as_tensor(v) for k, v in self.norm.items()})
        return out


def input_mask(task_ids: Sequence[str], state_dim: int, cfg: StatePolicyConfig) -> np.ndarray:
    """``(F,)`` 1 for each head input the policy reads, 0 for the columns of ``cfg.ignore_fields`` (looked up in
    the tasks' state layout, which must be the same for all; an unknown field is an :class:`UnknownNameError`
    listing the layout's fields)."""
    mask = np.ones(state_dim + STATE_DIM * len(cfg.history), np.float32)
    if not cfg.ignore_fields:
        return mask
    layouts = {task_id: state_layout(task_id) for task_id in sorted(set(task_ids))}
    task_id, layout = next(iter(layouts.items()))
    if any(other != layout for other in layouts.values()):
        raise InputShapeError(
            f"`episodes`: ignore_fields needs one state layout, but {sorted(layouts)} lay their states out differently"
        )
    width = sum(size for _, size in layout)
    if width != state_dim:
        raise InputShapeError(f"`episodes`: {task_id}'s state layout has {width} values; the states have {state_dim}")
    offsets, start = {}, 0
    for name, size in layout:
        offsets[name] = (start, start + size)
        start += size
    for name in cfg.ignore_fields:
        if name not in offsets:
            raise UnknownNameError(f"state field of {task_id}", name, offsets)
        if name == "agent_pos":
            raise ConfigError("`ignore_fields`: the policy must read `agent_pos` (its joint state)")
        lo, hi = offsets[name]
        mask[lo:hi] = 0.0
    return mask


def state_layout(task_id: str) -> tuple[tuple[str, int], ...]:
    """The ``(name, size)`` fields of ``task_id``'s ``obs_mode="state"`` vector, in order (builds the env once)."""
    import gymnasium as gym

    import tasks  # noqa: F401  (registers the ids)

    env = gym.make(task_id, obs_mode="state")
    try:
        return tuple(env.unwrapped.state_layout)
    finally:
        env.close()


def _shown_conditions(
    conditions: np.ndarray, cfg: StatePolicyConfig, rng: np.random.Generator, device: torch.device
) -> torch.Tensor | None:
    """A batch's RECAP indicators as the head sees them in training: each hidden ("unknown") with probability
    ``condition_dropout``; ``None`` for an unconditioned head (which draws nothing from ``rng``)."""
    if not cfg.condition:
        return None
    shown = conditions.copy()
    shown[rng.random(len(shown)) < cfg.condition_dropout] = UNKNOWN
    return torch.as_tensor(shown, device=device)


def _training_arrays(
    episodes: Sequence[StateEpisode], cfg: StatePolicyConfig
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every frame of ``episodes`` as a BC sample: head inputs ``x (N, F)``, the chunk of actions from there
    ``y (N, H * 14)`` (the last action repeated past the end), weights ``(N,)`` and RECAP indicators ``(N,)``."""
    xs, ys, ws, cs = [], [], [], []
    for ep in episodes:
        ahead = np.minimum(np.arange(ep.length)[:, None] + np.arange(cfg.chunk)[None, :], ep.length - 1)
        xs.append(history_features(ep.state, cfg.history))
        ys.append(ep.action[ahead].reshape(ep.length, -1))
        ws.append(np.ones(ep.length, np.float32) if ep.weight is None else np.clip(ep.weight, 0.0, None))
        cs.append(np.full(ep.length, POSITIVE) if ep.condition is None else np.asarray(ep.condition))
    return (
        np.concatenate(xs),
        np.concatenate(ys).astype(np.float32),
        np.concatenate(ws),
        np.concatenate(cs).astype(np.int64),
    )


def _flat_states(observations: Any) -> np.ndarray:
    """``(N, D)`` flat states from ``obs_mode="state"`` observations (one or a batch) or a ``pixels+state`` dict."""
    if isinstance(observations, Mapping):
        if "state" not in observations:
            raise InputShapeError(
                "`observations`: the state policy reads the privileged state; make the env with obs_mode='state' "
                f"or 'pixels+state' (got a dict with keys {sorted(observations)})"
            )
        observations = observations["state"]
    state = np.asarray(observations, dtype=np.float32)
    if state.ndim == 1:
        state = state[None]
    if state.ndim != 2 or state.shape[1] <= STATE_DIM:
        raise InputShapeError(f"`observations`: expected flat states (N, D > {STATE_DIM}); got {state.shape}")
    return state


# ------------------------------------------------------------------------------------------- data and evaluation
def collect_state_demos(
    task_id: str, episodes: int, seed: int, *, skill: float = 1.0, action_noise: float = 0.0
) -> list[StateEpisode]:
    """Scripted-expert demonstrations on ``obs_mode="state"`` (nothing rendered): env and expert seed ``seed + i``.

    ``action_noise`` (rad, arm joints only) perturbs the *executed* action while the recorded label stays the
    expert's target (DART), so the demos also show how to come back from small deviations.
    """
    import gymnasium as gym

    import tasks
    from tasks.expert import run_expert_episode

    if action_noise < 0:
        raise ConfigError(f"`action_noise` must be >= 0; got {action_noise!r}")
    env = gym.make(task_id, obs_mode="state")
    expert = tasks.make_expert(env, skill=skill)
    if action_noise > 0:
        expert = _NoisyExecution(expert, action_noise, seed)
    out = []
    try:
        for i in range(episodes):
            states, actions, success = [], [], False
            for obs, action, _, info in run_expert_episode(env, expert, seed=seed + i):
                if action is not None:
                    actions.append(expert.label if action_noise > 0 else action)
                states.append(obs)
                success = bool(info.get("success", False))
            states = states[: len(actions)]  # the state each action was taken in
            out.append(
                StateEpisode(
                    task_id,
                    np.asarray(states, np.float32),
                    np.asarray(actions, np.float32),
                    success=success,
                )
            )
    finally:
        env.close()
    return out


class _NoisyExecution:
    """Wraps an expert: ``act`` returns the target plus joint noise (executed); ``label`` is the clean target."""

    def __init__(self, expert: Any, noise: float, seed: int) -> None:
        self.expert, self.noise = expert, float(noise)
        self.rng = np.random.default_rng([seed, 7])
        self.label = np.zeros(ACTION_DIM, np.float32)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.expert, name)

    def act(self, obs: Any = None) -> np.ndarray:
        self.label = self.expert.act(obs)
        noise = self.rng.normal(0.0, self.noise, ACTION_DIM).astype(np.float32)
        noise[_GRIPPERS] = 0.0
        return self.label + noise


def evaluate_state_policy(
    policy: StatePolicy, task_id: str, seeds: Sequence[int], max_steps: int | None = None
) -> list[dict[str, Any]]:
    """Roll the policy out once per seed (nothing rendered); per episode the simulator's ``success``, final
    ``progress`` and ``steps``."""
    import gymnasium as gym

    import tasks  # noqa: F401  (registers the ids)

    kwargs = {"max_episode_steps": max_steps} if max_steps else {}
    env = gym.make(task_id, obs_mode="state", **kwargs)
    results = []
    try:
        for seed in seeds:
            obs, info = env.reset(seed=int(seed))
            policy.reset([info["task"]])
            steps = 0
            while True:
                obs, _, terminated, truncated, info = env.step(policy.act(obs)[0])
                steps += 1
                if terminated or truncated:
                    break
            results.append(
                {
                    "seed": int(seed),
                    "success": bool(info["success"]),
                    "progress": float(info["progress"]),
                    "steps": steps,
                }
            )
    finally:
        env.close()
    return results
