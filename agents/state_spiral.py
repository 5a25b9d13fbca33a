"""SPIRAL in simulation on the state-policy stand-in, sized for a 2-core CPU (the paper's Figure 4).

The loop is :mod:`agents.spiral`'s: roll ``pi_{r-1}`` out, relabel every rollout with a reward source, weight
the chunks by their relabelled advantage (:mod:`agents.updates`), fine-tune on the demos plus the weighted
rollouts (or, with ``retrain``, train afresh on them), evaluate on fixed held-out seeds with the simulator's
success. What differs is what makes a round cost minutes on two cores:

* the policy is :class:`agents.state_policy.StatePolicy` (:data:`agents.state_policy.LABEL`), acting on
  ``obs_mode="state"``: nothing is rendered for the policy;
* the reward model still scores rendered camera views, but only the frames it queries: every
  ``relabel.query_every``-th frame and the last (1 Hz at the station's 10 Hz, the paper's rate), rendered and
  encoded inside the rollout workers. A learned model is then run on the episode with each frame's embedding
  held from the latest rendered frame: at the query frames on the 1 Hz grid its window (start frame + history
  at the 1 Hz stride) is exactly what it was trained on; the last frame's history is read on that grid, up to
  ``query_every - 1`` frames earlier than its own window;
* evaluation episodes render nothing;
* rollouts and evaluations run in ``workers`` processes;
* round 1's rollouts of the shared ``pi_0`` are collected once and relabelled by every reward source.

Reward sources: ``"oracle"`` (the simulator's calibrated progress, ``info["calibrated_progress"]``: the
ceiling), ``"sparse"`` (1 from the first success
on, else 0), or a reward model (any :class:`rewards.RewardModel`, e.g. SARM2) given by name in
:class:`StateSpiral`'s ``reward_models``. Every round records how the source's progress agreed with the
simulator's on its rollouts (:func:`agents.spiral.reward_agreement`) and its timings. With
``adapt_reward_model`` a learned source is adapted once after round 1 (RM1 -> RM2, :mod:`agents.rm_adaptation`);
a trained baseline adapted this way is the paper's "RM (FT)". With ``success_gate`` only the rollouts a source
judges successful are cloned (:mod:`agents.success_gate`).

Everything is on disk under ``workdir`` (per source ``<source>/round_XX/``: rollouts as they finish, the
policy, ``update.json``, ``eval.json``), so an interrupted run resumes.
"""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import io
import json
import logging
import multiprocessing as mp
import time
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from typing_extensions import override

from agents.outcome_advantage import outcome_advantages
from agents.relabel import RelabelConfig, relabel_progress
from agents.rollouts import RecordedEpisode
from agents.seeds import ROUND_SEED_STRIDE, RoundSeeds
from agents.state_policy import StateEpisode, StatePolicy
from agents.state_residual import StateResidualPolicy, load_state_policy
from agents.success_gate import GateThreshold, calibrate_threshold, gate_report
from agents.updates import SampleTargets, UpdateConfig, sample_targets
from rewards.references import physics_progress
from sarm2_env.atomic import atomic_write, write_json_atomic
from sarm2_env.config import FrozenConfig
from sarm2_env.constants import ACTION_DIM, CAMERAS, STATE_DIM
from sarm2_env.errors import ConfigError, DatasetError, InputShapeError

log = logging.getLogger(__name__)

REFERENCE_SOURCES = ("oracle", "sparse")
#: Training seed offset between the policies of one update (``train_seeds``): member ``k`` trains with
#: ``seed + MEMBER_SEED_STRIDE * k + round``, so member 0 is the run's single policy when ``train_seeds == 1``.
MEMBER_SEED_STRIDE = 1000
#: What the update rule weights by (see :class:`StateSpiralConfig`).
ADVANTAGES = ("chunk", "outcome")


@dataclasses.dataclass(frozen=True)
class StateSpiralConfig(RoundSeeds, FrozenConfig):
    """One run: ``rounds`` after ``pi_0`` on ``task``, per reward source.

    Args:
        task: the task id (``obs_mode="state"`` must be available: every SARM2 task).
        rounds, rollouts_per_round, eval_episodes: as :class:`agents.spiral.SpiralConfig`.
        finetune_steps: BC steps of each round's update (from the previous policy's weights, or from a fresh
            initialisation with ``retrain``).
        finetune_lr: learning rate of those updates (``None``: the policy's own, that of the initial BC).
        aggregate: update on every round's rollouts so far (each relabelled by the source), not only this round's.
        explore_noise: standard deviation (rad) of the exploration added to the arm joints of the rollouts'
            executed actions (grippers untouched; evaluations never explore). One offset per executed plan, held
            for its ``execute`` steps, so a rollout tries a slightly different motion rather than jitter the
            joint controllers filter out. The rollouts record the executed actions, which is what the update
            clones: with a deterministic policy and ``0`` every rollout repeats the policy's own actions, and a
            weighting can only re-weight states, not choose better actions. When exploring, only the frames
            where the policy planned (every ``execute``-th) are cloned: the policy is only queried there, and
            inside a plan the joint history already shows the held offset, which a policy cloned on those frames
            could learn to continue as if it were part of the task.
        drop_stalled_tail: clone nothing a rollout did after its relabelled progress last came within 0.02 of its
            maximum. A failed rollout runs to the step limit, so its stalled tail outnumbers everything else in
            the replay, and every weighting rule gives those frames (advantage ~0) a middling weight: the update
            then teaches the policy to stall. With sparse success this keeps exactly the successful rollouts.
        rollout_share: the share of every fine-tuning batch drawn from the weighted rollouts, the rest from the
            demos (``None``: in proportion to their frames and weights; with 120 demos of ~400 frames beside 50
            rollouts, the demos then carry most of every batch).
        advantage: what the weighting rule reads. ``"chunk"``: the progress gain over the chunk,
            ``p(t+H) - p(t)`` (:mod:`agents.relabel`). ``"outcome"``: the episode's final progress minus a
            cross-fitted value of the state (:mod:`agents.outcome_advantage`), so a motion that gains progress
            but leads nowhere (an approach that stops short) counts against the state's promise.
        retrain: train each round's policy afresh (``finetune_steps`` from a new initialisation) on the demos
            and the weighted rollouts, its input normalisation refit on both, instead of fine-tuning the previous
            policy. Fine-tuning keeps the weights and the normalisation fitted on the demos alone; with few demos
            the rollouts' states lie up to 20 of those standard deviations away (PullPlug, 2 demos), and cloning
            them wrecked the policy: fine-tuned on its own successful exploring rollouts, PullPlug's ``pi_0`` went
            from 29/50 to 13/50; retrained afresh on the same successes it reached 45/50. When retraining, every
            frame of an exploring rollout is cloned (planning frames only: 34/50).
        adapt_reward_model: the paper's one-time RM1 -> RM2: after round 1, a copy of each learned source's model
            is adapted on round 1's rollouts of the shared ``pi_0``, annotated from the simulator's progress
            (:mod:`agents.rm_adaptation`), and relabels every later round (round 1 updates with RM1). Each later
            round also records how RM1 would have agreed with the simulator on its rollouts. Measured on
            CleanWhiteboard's exploring rollouts: RM1's ranking of rounds 2-3 fell to 0.05-0.20, RM2's was 0.68-0.86.
        adapt_steps, adapt_lr_scale: that adaptation's optimiser steps and learning rate (times the model's).
        success_gate: clone only the rollouts the source judges successful: final relabelled progress at or above
            a threshold (:mod:`agents.success_gate`). Judged failures get weight 0 and, with outcome advantages,
            a final of 0 in the value regression, as sparse success gives them. Every source is gated alike
            (sparse success is unchanged by it).
        success_threshold: that threshold (``None``: calibrated once per reward model on round 1's rollouts,
            annotated from the simulator, scored by the model that relabels: RM1 for round 1, RM2 after it).
        train_seeds: policies trained for ``pi_0`` and for every update, each from another initialisation (and
            cross-fitting split of the outcome advantages) on the same data, each evaluated on the same seeds.
            The first (seed offset 0) is the lineage: it rolls out the next round; the others measure how much
            the result depends on the training's randomness, which the summary's intervals then count besides the
            evaluation's. On CleanWhiteboard four seeds of one update spanned 95-119 of 200 evaluations, as much
            as the reward sources differed. Raising it on a finished run trains and evaluates only the new ones.
        update: the update rule: ``rabc`` or ``awr`` (per-sample weights), or ``recap``: every sample the rule keeps
            is cloned at weight 1 with its advantage indicator (the top ``update.positive_fraction`` of this
            round's advantages are "positive") fed to the head, which then acts as "positive". RECAP's head has an
            input ``pi_0``'s lacks, so it needs ``retrain``. Or ``residual_ac``, SPIRAL's released update
            (:mod:`agents.state_residual`): a residual actor and critics on the frozen ``pi_0``, trained on the
            relabelled progress of the rollouts (every round's so far with ``aggregate``) and carried from round to
            round; it needs ``explore_noise`` (its critics learn from the exploration) and reads none of the
            weighting options (``advantage``, ``success_gate``, ``drop_stalled_tail``, ``rollout_share``,
            ``retrain``, the demos); ``finetune_steps`` are its TD3 steps, ``update.residual`` its settings.
        relabel: query rate, smoothing, clipping and the chunk of the advantages (set it to the policy's chunk).
        image_size: the rendered views the reward model scores (its checkpoint's resolution).
        max_episode_steps: episode cap (``None``: the task's).
        workers: processes for rollouts and evaluation.
        seed: base of the rollout and evaluation seeds.
    """

    label = "state SPIRAL"

    task: str
    rounds: int = 3
    rollouts_per_round: int = 50
    eval_episodes: int = 50
    finetune_steps: int = 1500
    finetune_lr: float | None = None
    aggregate: bool = False
    explore_noise: float = 0.0
    drop_stalled_tail: bool = False
    rollout_share: float | None = None
    advantage: str = "chunk"
    retrain: bool = False
    adapt_reward_model: bool = False
    adapt_steps: int = 1000
    adapt_lr_scale: float = 0.3
    success_gate: bool = False
    success_threshold: float | None = None
    train_seeds: int = 1
    update: UpdateConfig = dataclasses.field(default_factory=UpdateConfig)
    relabel: RelabelConfig = dataclasses.field(default_factory=lambda: RelabelConfig(chunk=20))
    image_size: int = 128
    max_episode_steps: int | None = None
    workers: int = 2
    seed: int = 0

    def __post_init__(self) -> None:
        self._check_positive_ints(
            *("rounds", "rollouts_per_round", "eval_episodes", "finetune_steps", "workers", "image_size"),
            *("adapt_steps", "train_seeds"),
        )
        scale = self.adapt_lr_scale
        if not (isinstance(scale, (int, float)) and not isinstance(scale, bool) and 0 < scale <= 1):
            raise ConfigError(f"`adapt_lr_scale` must be in (0, 1]; got {self.adapt_lr_scale!r}")
        if self.update.rule == "residual_ac":
            if not self.explore_noise > 0:
                raise ConfigError(
                    "`update.rule='residual_ac'` learns its critics from the rollouts' exploration: set "
                    f"`explore_noise` > 0 (rad); got {self.explore_noise!r}"
                )
            if self.success_gate:
                raise ConfigError(
                    "`success_gate` chooses what behaviour cloning clones; the residual actor-critic reads the "
                    "relabelled progress itself: set `success_gate: false` with `update.rule='residual_ac'`"
                )
        if self.update.rule == "recap" and not self.retrain:
            raise ConfigError("`update.rule='recap'` adds an input to the policy's head: set `retrain: true`")
        if self.rollouts_per_round >= ROUND_SEED_STRIDE or self.eval_episodes >= ROUND_SEED_STRIDE:
            raise ConfigError(f"`rollouts_per_round` and `eval_episodes` must be < {ROUND_SEED_STRIDE}")
        if self.finetune_lr is not None and not self.finetune_lr > 0:
            raise ConfigError(f"`finetune_lr` must be > 0 or None; got {self.finetune_lr!r}")
        if self.advantage not in ADVANTAGES:
            from sarm2_env.errors import UnknownNameError

            raise UnknownNameError("advantage", self.advantage, ADVANTAGES)
        if self.advantage == "outcome" and self.rollouts_per_round < 2:
            raise ConfigError("`advantage='outcome'` cross-fits over rollouts: `rollouts_per_round` must be >= 2")
        if self.success_threshold is not None and not 0 < self.success_threshold <= 1:
            raise ConfigError(f"`success_threshold` must be in (0, 1] or None; got {self.success_threshold!r}")
        if self.rollout_share is not None and not 0 < self.rollout_share < 1:
            raise ConfigError(f"`rollout_share` must be in (0, 1) or None; got {self.rollout_share!r}")
        if not (np.isfinite(self.explore_noise) and self.explore_noise >= 0):
            raise ConfigError(f"`explore_noise` must be a finite number >= 0 (rad); got {self.explore_noise!r}")

    @override
    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(dataclasses.asdict(self), default=str))


# ------------------------------------------------------------------------------------------- rollouts
@dataclasses.dataclass(frozen=True)
class StateRollout(RecordedEpisode):
    """One episode of the state policy: ``state (T, D)``, ``action (T - 1, 14)``, the simulator's ``progress (T,)``
    and ``success_flags (T,)``, and the reward model's view: ``frames`` (the rendered frame indices) with their
    ``embeddings (Q, C, E)`` (empty without an encoder)."""

    task_id: str
    seed: int
    state: np.ndarray
    action: np.ndarray
    progress: np.ndarray
    success_flags: np.ndarray
    frames: np.ndarray
    embeddings: np.ndarray

    def __post_init__(self) -> None:
        t = self.state.shape[0] if self.state.ndim == 2 else -1
        checks = {
            "state": (self.state.ndim == 2 and t >= 1, "(T, D)"),
            "action": (self.action.shape == (t - 1, ACTION_DIM), f"({t - 1}, {ACTION_DIM})"),
            "progress": (self.progress.shape == (t,), f"({t},)"),
            "success_flags": (self.success_flags.shape == (t,), f"({t},)"),
            "embeddings": (self.embeddings.ndim == 3 and len(self.embeddings) == len(self.frames), "(Q, C, E)"),
        }
        for name, (ok, want) in checks.items():
            if not ok:
                raise InputShapeError(f"`{name}`: expected {want}; got {getattr(self, name).shape}")

    def to_bytes(self) -> bytes:
        """The rollout as NPZ bytes."""
        buffer = io.BytesIO()
        fields = {f.name: np.asarray(getattr(self, f.name)) for f in dataclasses.fields(self)}
        np.savez_compressed(buffer, **fields)
        return buffer.getvalue()

    @classmethod
    def from_file(cls, path: Path) -> StateRollout:
        """Read a rollout written by :func:`rollout_episode` (a :class:`DatasetError` naming it if damaged)."""
        try:
            with np.load(path) as z:
                return cls(
                    task_id=str(z["task_id"]),
                    seed=int(z["seed"]),
                    **{k: z[k] for k in ("state", "action", "progress", "success_flags", "frames", "embeddings")},
                )
        except (OSError, ValueError, KeyError, zipfile.BadZipFile, InputShapeError) as exc:
            msg = f"{path}: not a readable state rollout ({exc}); delete it and rerun to collect it again"
            raise DatasetError(msg) from exc

    def features(self, instruction: str | None = None, at_query_rate: bool = False):
        """The reward model's view as :class:`rewards.data.EpisodeFeatures`: each step holds the newest rendered
        frame's embedding (exact on the query grid); ``at_query_rate`` also marks the rendered steps as the ones to
        predict and score (``query_indices``), as evaluation sets recorded at a query rate are. ``instruction``:
        the task's own unless given (a model adapted on these features learns it for the task)."""
        from rewards.data import EpisodeFeatures
        from tasks import task_entry

        if instruction is None:
            instruction = task_entry(self.task_id).instruction

        if self.embeddings.shape[-1] == 0:
            raise ConfigError(f"rollout seed {self.seed} has no frame embeddings: collect it with the model's encoder")
        holder = np.searchsorted(self.frames, np.arange(self.length), side="right") - 1
        return EpisodeFeatures(
            episode_id=f"{self.task_id}-{self.seed}",
            task_id=self.task_id,
            instruction=instruction,
            success=self.success,
            skill=float("nan"),
            embeddings=self.embeddings[holder].astype(np.float32),
            state=self.state[:, :STATE_DIM],
            primitive=np.full(self.length, -1, dtype=np.int64),
            progress=self.progress,
            success_flags=self.success_flags,
            query_indices=np.asarray(self.frames, dtype=np.int64) if at_query_rate else None,
        )

    def training_episode(self, weight: np.ndarray | None = None, condition: np.ndarray | None = None) -> StateEpisode:
        """The BC view: states and the actions taken (the final state, with no action, is dropped), with
        per-frame BC ``weight`` and RECAP ``condition`` when given (one per state, or one per action)."""
        w = None if weight is None else np.asarray(weight[: self.length - 1], np.float32)
        c = None if condition is None else np.asarray(condition[: self.length - 1], np.int64)
        return StateEpisode(self.task_id, self.state[:-1], self.action, w, self.success, c)


class _Worker:
    """Per-process cache of the env, the policy and the image encoder (built once, reused across episodes)."""

    env: Any = None
    key: tuple = ()
    policy: StatePolicy | StateResidualPolicy | None = None
    policy_path: str = ""
    encoder: Any = None


def _worker_env(task: str, image_size: int, max_steps: int | None) -> Any:
    import gymnasium as gym
    import torch

    import tasks  # noqa: F401  (registers the ids, picks the headless GL backend)

    torch.set_num_threads(1)
    key = (task, image_size, max_steps)
    if _Worker.key != key:
        if _Worker.env is not None:
            _Worker.env.close()
        kwargs = {"max_episode_steps": max_steps} if max_steps else {}
        _Worker.env, _Worker.key = gym.make(task, obs_mode="state", image_size=image_size, **kwargs), key
    return _Worker.env


def _worker_policy(path: str) -> StatePolicy | StateResidualPolicy:
    if _Worker.policy_path != path:
        _Worker.policy, _Worker.policy_path = load_state_policy(path, device="cpu"), path
    return _Worker.policy


def _worker_encoder(spec: Mapping[str, Any] | None) -> Any:
    if spec is None:
        return None
    if _Worker.encoder is None or _Worker.encoder.spec.key != spec["key"]:
        from rewards.encoders import make_image_encoder

        _Worker.encoder = make_image_encoder(
            spec["name"], image_size=spec.get("image_size"), path=spec.get("path"), device="cpu"
        )
    return _Worker.encoder


def rollout_episode(
    task: str,
    policy_path: str,
    seed: int,
    out: str,
    *,
    image_size: int,
    encoder: Mapping[str, Any] | None,
    query_every: int,
    max_steps: int | None = None,
    explore_noise: float = 0.0,
) -> bool:
    """Roll the saved policy out once (seed ``seed``), rendering and encoding only the reward model's query
    frames; write the :class:`StateRollout` to ``out`` atomically. Returns its success. Runs in a worker.

    ``explore_noise`` (rad): see :class:`StateSpiralConfig`; the rollout records the executed actions.
    """
    env = _worker_env(task, image_size, max_steps)
    policy = _worker_policy(policy_path)
    enc = _worker_encoder(encoder)
    obs, info = env.reset(seed=seed)
    policy.reset([info["task"]])
    explore = _Exploration(explore_noise, policy, seed)
    # ground truth in the units the oracle source reads: the calibrated progress where the env reports it
    states, actions, progress, flags, frames, views = [obs], [], [physics_progress(info)], [info["success"]], [], []

    def look(t: int) -> None:
        if enc is not None:
            pixels = env.unwrapped.render_views()
            views.append(np.stack([pixels[c] for c in CAMERAS]))
        frames.append(t)

    look(0)
    while True:
        action = explore(policy.act(obs)[0])
        obs, _, terminated, truncated, info = env.step(action)
        actions.append(action)
        states.append(obs)
        progress.append(physics_progress(info))
        flags.append(info["success"])
        t = len(states) - 1
        done = terminated or truncated
        if t % query_every == 0 or done:
            look(t)
        if done:
            break
    embeddings = np.zeros((len(frames), len(CAMERAS), 0), np.float16)
    if enc is not None:
        batch = np.stack(views)  # (Q, C, H, W, 3)
        emb = enc.encode(batch.reshape(-1, *batch.shape[2:]))
        embeddings = emb.reshape(len(frames), len(CAMERAS), -1).astype(np.float16)
    rollout = StateRollout(
        task_id=task,
        seed=int(seed),
        state=np.asarray(states, np.float32),
        action=np.asarray(actions, np.float32),
        progress=np.asarray(progress, np.float32),
        success_flags=np.asarray(flags, bool),
        frames=np.asarray(frames, np.int64),
        embeddings=embeddings,
    )
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda f: f.write(rollout.to_bytes()))
    return rollout.success


class _Exploration:
    """Adds one Gaussian offset per executed plan of ``hold`` steps; seeded per rollout.

    Only arm joints the policy's demonstrations move are perturbed (:meth:`StatePolicy.exploring_joints`): a joint
    the demos hold still has a label spread near the normalisation floor (0.001 rad), so its noise would weigh
    hundreds of times more than every other target in the fine-tuning loss (measured: 22/50 -> 0/50 successes after
    one round when every joint explored).
    """

    def __init__(self, std: float, policy: StatePolicy | StateResidualPolicy, seed: int) -> None:
        self.std, self.hold = float(std), int(policy.config.execute)
        self.rng = np.random.default_rng([int(seed), 11])
        self.step = 0
        self.offset = np.zeros(ACTION_DIM, np.float32)
        self.mask = policy.exploring_joints()

    def __call__(self, action: np.ndarray) -> np.ndarray:
        if self.std == 0:
            return action
        if self.step % self.hold == 0:
            self.offset = self.rng.normal(0.0, self.std, ACTION_DIM).astype(np.float32) * self.mask
        self.step += 1
        return (action + self.offset).astype(np.float32)


def evaluate_episodes(task: str, policy_path: str, seeds: Sequence[int], max_steps: int | None) -> list[dict]:
    """Evaluation in a worker: nothing rendered; the simulator's success and final progress per seed."""
    import torch

    import tasks  # noqa: F401  (registers the ids in this worker)
    from agents.state_policy import evaluate_state_policy

    torch.set_num_threads(1)
    return evaluate_state_policy(_worker_policy(policy_path), task, seeds, max_steps=max_steps)


def _eval_record(episodes: list[dict[str, Any]], seconds: float) -> dict[str, Any]:
    """An evaluation's record: success with its 95 % Wilson interval, mean final progress, every episode."""
    from agents.state_policy import LABEL
    from sarm2_env.stats import wilson_interval

    k, n = sum(e["success"] for e in episodes), len(episodes)
    lo, hi = wilson_interval(k, n)
    return {
        "policy": LABEL,
        "successes": k,
        "episodes": n,
        "success_rate": k / n,
        "ci95": [lo, hi],
        "mean_final_progress": float(np.mean([e["progress"] for e in episodes])),
        "eval_seconds": seconds,
        "per_episode": episodes,
    }


# ------------------------------------------------------------------------------------------- relabelling
def predicted_progress(rollout: StateRollout, source: str, model: Any = None) -> np.ndarray:
    """The reward source's per-frame progress of ``rollout`` (read by the relabelling at its query frames)."""
    if source == "oracle":
        return rollout.progress.astype(np.float64)
    if source == "sparse":
        return np.maximum.accumulate(rollout.success_flags.astype(np.float64))
    if model is None:
        raise ConfigError(f"reward source {source!r} needs a reward model")
    # Each frame holds the latest rendered frame's embedding (exact on the query grid; see the module docstring).
    return model.predict_episode(rollout.features()).progress.astype(np.float64)


def _peak_frame(progress: np.ndarray, tolerance: float = 0.02) -> int:
    """The first frame at which ``progress`` comes within ``tolerance`` of its episode maximum; the rollout
    made no more progress after it."""
    p = np.asarray(progress, dtype=np.float64)
    return int(np.argmax(p >= p.max() - tolerance))


def _member_name(stem: str, member: int, suffix: str = "") -> str:
    """The file name of ``train_seeds`` member ``member``'s ``stem`` (member 0's is the plain name)."""
    return f"{stem}{suffix}" if member == 0 else f"{stem}_seed{member}{suffix}"


def _member_path(path: Path, member: int) -> Path:
    """Where member ``member`` keeps what member 0 keeps at ``path`` (a sibling, ``<name>_seed<k>``)."""
    return path.with_name(_member_name(path.name, member))


def _scale_to_share(episodes: list[StateEpisode], demo_frames: int, share: float) -> None:
    """Scale the rollout episodes' weights in place so they make up ``share`` of the sampled BC batch beside
    ``demo_frames`` demonstration frames of weight 1."""
    total = sum(float(e.weight.sum()) for e in episodes if e.weight is not None)
    if total <= 0 or demo_frames <= 0:
        return
    factor = share / (1.0 - share) * demo_frames / total
    for i, e in enumerate(episodes):
        if e.weight is not None:
            episodes[i] = dataclasses.replace(e, weight=(e.weight * factor).astype(np.float32))


# ------------------------------------------------------------------------------------------- the run
class StateSpiral:
    """Runs SPIRAL for several reward sources from one ``pi_0`` (see the module docstring).

    Args:
        config: the run.
        pi0: the initial policy (trained; e.g. calibrated with ``benchmarks/state_policy.py``).
        demos: the demonstrations kept in every update (weight 1).
        workdir: everything goes here; rerunning resumes.
        reward_models: ``{source name: reward model}`` for the learned sources; their encoders must agree
            (one set of frames is rendered and encoded per rollout).
    """

    def __init__(
        self,
        config: StateSpiralConfig,
        pi0: StatePolicy,
        demos: Sequence[StateEpisode],
        workdir: str | Path,
        reward_models: Mapping[str, Any] | None = None,
    ) -> None:
        self.config = config
        self.demos = list(demos)
        self.workdir = Path(workdir)
        self.models = dict(reward_models or {})
        self.adapted: dict[str, tuple[Any, dict[str, Any]]] = {}  # source -> (RM2, its adaptation record)
        self.gates: dict[tuple[str, int], GateThreshold] = {}  # (source, id(relabelling model)) -> threshold
        specs = {m.encoder_spec.key: m.encoder_spec for m in self.models.values() if m.encoder_spec is not None}
        if len(specs) > 1:
            raise ConfigError(
                f"`reward_models`: their image encoders differ ({sorted(specs)}); one set of frames is shared"
            )
        spec = next(iter(specs.values()), None)
        self.encoder = None if spec is None else {"name": spec.name, "image_size": spec.image_size, "key": spec.key}
        if spec is not None and spec.image_size not in (None, config.image_size):
            raise ConfigError(
                f"`image_size`: the reward model was trained on {spec.image_size} px frames; got {config.image_size}"
            )
        self._check_workdir()
        pi0_path = self.workdir / "pi0"
        if not (pi0_path / "config.json").exists():
            pi0.save(pi0_path)
        self.pi0_path = pi0_path
        ctx = mp.get_context("spawn")  # forked workers deadlock after torch/GL initialisation
        self.pool = cf.ProcessPoolExecutor(max_workers=config.workers, mp_context=ctx)

    def close(self) -> None:
        """Shut the worker pool down."""
        self.pool.shutdown()

    def __enter__(self) -> StateSpiral:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check_workdir(self) -> None:
        path = self.workdir / "config.json"
        record = {"spiral": self.config.to_dict(), "encoder": self.encoder}
        if path.exists():
            saved = json.loads(path.read_text())
            defaults = StateSpiralConfig(task=self.config.task).to_dict()
            saved["spiral"] = {**defaults, **saved["spiral"]}  # options added since the run started: defaults
            for key in ("rounds", "eval_episodes", "train_seeds"):  # more of these extend a run
                saved["spiral"][key] = record["spiral"][key]
            if saved != record:
                raise ConfigError(
                    f"{self.workdir} holds a run with another config; use a new workdir or the original config"
                )
        write_json_atomic(path, record)

    # --- pieces ------------------------------------------------------------------------------------
    def collect(self, root: Path, policy_path: Path, seeds: Sequence[int]) -> tuple[list[StateRollout], int]:
        """The rollouts of ``seeds`` under ``root`` (collecting the missing ones in the workers)."""
        cfg = self.config
        todo = [s for s in seeds if not (root / f"seed_{s}.npz").exists()]
        futures = [
            self.pool.submit(
                rollout_episode,
                cfg.task,
                str(policy_path),
                s,
                str(root / f"seed_{s}.npz"),
                image_size=cfg.image_size,
                encoder=self.encoder,
                query_every=cfg.relabel.query_every,
                max_steps=cfg.max_episode_steps,
                explore_noise=cfg.explore_noise,
            )
            for s in todo
        ]
        for f in cf.as_completed(futures):
            f.result()
        return [StateRollout.from_file(root / f"seed_{s}.npz") for s in seeds], len(seeds) - len(todo)

    def evaluate(self, rdir: Path, policy_path: Path, member: int = 0) -> dict[str, Any]:
        """Evaluate the policy saved at ``policy_path`` on the evaluation seeds; results also go to ``rdir``
        (``eval.json``, or ``eval_seed<k>.json`` for member ``k`` of ``train_seeds``).

        Episodes already in that file are kept: raising ``eval_episodes`` on a finished run evaluates only
        the new seeds (the seeds are a prefix-stable range), so every policy gains the same episodes.
        """
        path = rdir / _member_name("eval", member, ".json")
        seeds = self.config.eval_seeds()
        done: dict[int, dict[str, Any]] = {}
        spent = 0.0
        if path.exists():
            saved = json.loads(path.read_text())
            done, spent = {e["seed"]: e for e in saved["per_episode"]}, float(saved["eval_seconds"])
        todo = [s for s in seeds if s not in done]
        if not todo:
            return _eval_record([done[s] for s in seeds], spent)  # fewer seeds than saved: nothing is overwritten
        shards = [todo[k :: self.config.workers] for k in range(self.config.workers)]
        started = time.perf_counter()
        futures = [
            self.pool.submit(evaluate_episodes, self.config.task, str(policy_path), s, self.config.max_episode_steps)
            for s in shards
            if s
        ]
        new = {e["seed"]: e for f in futures for e in f.result()}
        record = _eval_record([{**done, **new}[s] for s in seeds], spent + time.perf_counter() - started)
        write_json_atomic(path, record)
        return record

    def update(
        self,
        source: str,
        r: int,
        rollouts: list[StateRollout],
        previous_path: Path,
        out: Path,
        earlier: Sequence[StateRollout] = (),
        member: int = 0,
    ) -> dict[str, Any]:
        """Relabel with ``source``, weight, train the round's policy on ``earlier`` rounds' rollouts (when
        aggregating) and this round's, save it to ``out``; returns the round's statistics (agreement on this
        round's rollouts). ``member`` picks the training seed (see ``train_seeds``)."""
        return self.update_members(source, r, rollouts, previous_path, {member: out}, earlier)[0]

    def update_members(
        self,
        source: str,
        r: int,
        rollouts: list[StateRollout],
        previous_path: Path,
        outs: Mapping[int, Path],
        earlier: Sequence[StateRollout] = (),
    ) -> list[dict[str, Any]]:
        """:meth:`update` for several members of ``train_seeds`` at once (``{member: where its policy goes}``):
        the rollouts are relabelled and judged once, then each member is weighted (its own cross-fitting split)
        and trained with its own seed. One statistics record per member, in ``outs``' order."""
        cfg = self.config
        started = time.perf_counter()
        replay = [*earlier, *rollouts]
        relabelled, judged, finals, extra = self._relabel(source, r, replay, rollouts)
        previous = load_state_policy(previous_path, device="cpu")
        residual = cfg.update.rule == "residual_ac"
        outcome = cfg.advantage == "outcome" and not residual
        features = [previous.standardised_features(ro.state) for ro in replay] if outcome else []
        relabel_seconds = time.perf_counter() - started
        common = {
            **extra,
            "source": source,
            "rule": cfg.update.rule,
            "rollouts": len(rollouts),
            "replay_rollouts": len(replay),
            "rollout_success_rate": float(np.mean([ro.success for ro in rollouts])),
        }
        records = []
        for member, out in outs.items():
            began = time.perf_counter()
            seed = cfg.seed + MEMBER_SEED_STRIDE * member + r
            if residual:
                progress = [rl.progress for rl in relabelled]
                stats = {"residual": self._fit_residual(previous, replay, progress, seed, out)}
            else:
                weighted = (relabelled, judged, finals, features)
                stats = self._fit_weighted(previous, replay, weighted, seed, out, f"round {r} ({source})")
            records.append(
                {
                    **common,
                    "member": member,
                    **stats,
                    "relabel_seconds": relabel_seconds,
                    "update_seconds": time.perf_counter() - began,
                }
            )
        return records

    def _fit_weighted(
        self,
        previous: StatePolicy | StateResidualPolicy,
        replay: list[StateRollout],
        weighted: tuple[list[Any], np.ndarray, np.ndarray, list[np.ndarray]],
        seed: int,
        out: Path,
        what: str,
    ) -> dict[str, Any]:
        """A weighting rule's update: advantages (the relabelling's, or outcome advantages cross-fitted on the
        states' ``features`` with ``seed``), the rule's per-frame weights, then the policy trained and saved to
        ``out``. ``weighted`` is the relabelling, the gate's judgement, the finals and the features."""
        if not isinstance(previous, StatePolicy):
            raise ConfigError(f"{what}: a weighting rule cannot update a residual actor-critic policy")
        cfg = self.config
        relabelled, judged, finals, features = weighted
        advantages = [rl.advantage for rl in relabelled]
        if cfg.advantage == "outcome":
            advantages = outcome_advantages(features, list(finals), seed=seed)
        flat = np.concatenate([a[:-1] for a in advantages])  # the final frame takes no action
        targets = sample_targets(flat, cfg.update, np.zeros(len(flat), np.int64))
        episodes = self._weighted_episodes(replay, relabelled, judged, targets, previous)
        self._train(episodes, previous, seed, out, what)
        return {
            "mean_advantage": float(flat.mean()),
            "mean_weight": float(targets.weight.mean()),
            **({} if targets.condition is None else {"positive_fraction": float(targets.condition.mean())}),
        }

    def _fit_residual(
        self,
        previous: StatePolicy | StateResidualPolicy,
        replay: list[StateRollout],
        progress: list[np.ndarray],
        seed: int,
        out: Path,
    ) -> dict[str, Any]:
        """The residual rule's update: the previous round's residual policy trained further (from ``pi_0`` with a
        zero residual in round 1) on ``replay`` and its relabelled ``progress``, saved to ``out``."""
        cfg = self.config
        if isinstance(previous, StateResidualPolicy):
            policy = previous.copy(seed=seed)
        else:
            policy = StateResidualPolicy.from_base(
                previous, cfg.update.residual, explore_noise=cfg.explore_noise, seed=seed
            )
        summary = policy.fit(replay, progress, steps=cfg.finetune_steps, seed=seed)
        policy.save(out)
        return summary

    def _relabel(
        self, source: str, r: int, replay: list[StateRollout], rollouts: list[StateRollout]
    ) -> tuple[list[Any], np.ndarray, np.ndarray, dict[str, Any]]:
        """``replay`` relabelled by ``source`` (RM1 or RM2, see :meth:`_relabel_model`), which of it the update
        may clone (the success gate), each rollout's final relabelled progress with the gate's judged failures at
        0, and the record of how the source agreed with the simulator on this round's ``rollouts`` (the last of
        ``replay``), on the frames it was read at (the query grid)."""
        from agents.spiral import reward_agreement

        cfg = self.config
        model, adaptation = self._relabel_model(source, r)
        relabelled = [relabel_progress(predicted_progress(ro, source, model), cfg.relabel) for ro in replay]
        finals = np.asarray([float(rl.progress[-1]) for rl in relabelled])
        judged, extra = self._gate(source, r, model, replay, finals, len(rollouts))
        current = [rl.progress for rl in relabelled[len(replay) - len(rollouts) :]]
        extra["reward_agreement"] = reward_agreement(current, rollouts)  # it reads only each rollout's `progress`
        if adaptation is not None:  # how RM1 would have scored the same rollouts, on the same query grid
            rm1 = [predicted_progress(ro, source, self.models[source]) for ro in rollouts]
            rm1_progress = [relabel_progress(p, cfg.relabel).progress for p in rm1]
            extra.update({"reward_model": "RM2", "adaptation": adaptation})
            extra["reward_agreement_rm1"] = reward_agreement(rm1_progress, rollouts)
        return relabelled, judged, np.where(judged, finals, 0.0), extra

    def _weighted_episodes(
        self,
        replay: list[StateRollout],
        relabelled: list[Any],
        judged: np.ndarray,
        targets: SampleTargets,
        previous: StatePolicy,
    ) -> list[StateEpisode]:
        """The update's training set: ``replay`` with the rule's per-frame weights and RECAP indicators (flat, the
        final frames left out), judged failures and the options' dropped frames at weight 0, then the demos (when
        the rule keeps them)."""
        cfg = self.config
        episodes, start = [], 0
        for ro, rl, kept in zip(replay, relabelled, judged):
            end = start + ro.length - 1
            weight = np.append(targets.weight[start:end], 0.0) * float(kept)
            condition = None if targets.condition is None else targets.condition[start:end]
            if cfg.drop_stalled_tail:
                weight[_peak_frame(rl.progress) :] = 0.0
            if cfg.explore_noise > 0 and not cfg.retrain:
                weight[np.arange(ro.length) % previous.config.execute != 0] = 0.0  # see StateSpiralConfig
            episodes.append(ro.training_episode(weight, condition))
            start = end
        if cfg.rollout_share is not None:
            _scale_to_share(episodes, sum(d.length for d in self.demos), cfg.rollout_share)
        if cfg.update.include_demos:
            episodes += [dataclasses.replace(d, weight=None) for d in self.demos]
        return episodes

    def _train(self, episodes: list[StateEpisode], previous: StatePolicy, seed: int, out: Path, what: str) -> None:
        """Fit the round's policy on ``episodes`` (afresh with ``retrain``, else from ``previous``) and save it."""
        cfg = self.config
        kept = [e for e in episodes if e.weight is None or e.weight.sum() > 0]
        if not kept:
            raise ConfigError(f"{what}: every sample has weight 0 and no demos are kept")
        lr = cfg.finetune_lr if cfg.finetune_lr is not None else previous.config.lr
        recap = cfg.update.rule == "recap"
        policy = StatePolicy(previous.config.replace(lr=lr, condition=recap), device="cpu")
        policy.fit(kept, seed=seed, steps=cfg.finetune_steps, init_from=None if cfg.retrain else previous)
        policy.save(out)

    def _relabel_model(self, source: str, r: int) -> tuple[Any, dict[str, Any] | None]:
        """The model that relabels round ``r`` for ``source`` (``None`` for the reference sources) and, when it is
        RM2, the record of its adaptation: RM1 in round 1 and without ``adapt_reward_model``, else RM2, adapted on
        round 1's shared rollouts the first time it is needed and read back from ``<source>/reward_model_adapted``
        after that."""
        from agents.rm_adaptation import adapt_on_rollouts

        model = self.models.get(source)
        if model is None or r < 2 or not self.config.adapt_reward_model:
            return model, None
        if source not in self.adapted:
            cfg = self.config
            root = self._rollout_root(source, 1)
            rollouts = [StateRollout.from_file(root / f"seed_{s}.npz") for s in cfg.rollout_seeds(1)]
            self.adapted[source] = adapt_on_rollouts(
                model,
                rollouts,
                self.workdir / source / "reward_model_adapted",
                steps=cfg.adapt_steps,
                lr_scale=cfg.adapt_lr_scale,
                seed=cfg.seed,
            )
            log.info("%s: RM1 -> RM2 on %d round-1 rollouts: %s", source, len(rollouts), self.adapted[source][1])
        return self.adapted[source]

    def _gate(
        self, source: str, r: int, model: Any, replay: list[StateRollout], finals: np.ndarray, current: int
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Which replayed rollouts the update may clone (all without ``success_gate``) and, with it, the gate's
        record: its threshold and its judgement of this round's rollouts (the last ``current`` of ``replay``).
        ``finals`` are ``replay``'s final relabelled progress by ``model``."""
        if not self.config.success_gate:
            return np.ones(len(finals), bool), {}
        gate = self._gate_threshold(source, r, model, replay, finals)
        report = gate_report(finals[-current:], [ro.success for ro in replay[-current:]], gate.threshold)
        return finals >= gate.threshold, {"success_gate": {**report, "calibration": gate.to_dict()}}

    def _gate_threshold(
        self, source: str, r: int, model: Any, replay: list[StateRollout], finals: np.ndarray
    ) -> GateThreshold:
        """The success gate's threshold for ``source`` in round ``r``: the configured one, or calibrated on round
        1's shared rollouts (annotated: auto-annotated from the simulator) as scored by ``model``, the model that
        relabels round ``r`` (computed once per model). Round 1's finals are read from ``replay``'s when it holds
        those rollouts (round 1, or aggregating), else relabelled here."""
        cfg = self.config
        if cfg.success_threshold is not None:
            return GateThreshold(cfg.success_threshold, 0, 0, None, None, calibrated=False)
        key = (source, id(model))
        if key not in self.gates:
            from agents.rm_adaptation import annotated_successes

            seeds = cfg.rollout_seeds(1)  # disjoint from every later round's seeds
            scored = {ro.seed: (ro, float(f)) for ro, f in zip(replay, finals)}
            if all(s in scored for s in seeds):
                rollouts, round1 = [scored[s][0] for s in seeds], [scored[s][1] for s in seeds]
            else:
                root = self._rollout_root(source, 1)
                rollouts = [StateRollout.from_file(root / f"seed_{s}.npz") for s in seeds]
                round1 = [
                    float(relabel_progress(predicted_progress(ro, source, model), cfg.relabel).progress[-1])
                    for ro in rollouts
                ]
            self.gates[key] = calibrate_threshold(round1, annotated_successes(rollouts))
            log.info("%s round %d: success gate %s", source, r, self.gates[key])
        return self.gates[key]

    def _rollout_root(self, source: str, r: int) -> Path:
        return (
            self.workdir / "shared" / "round_01_rollouts"
            if r == 1
            else self.workdir / source / f"round_{r:02d}" / "rollouts"
        )

    def _earlier_rollouts(self, source: str, r: int) -> list[StateRollout]:
        """The stored rollouts of rounds ``1 .. r-1`` of ``source`` (for ``aggregate``)."""
        out = []
        for k in range(1, r):
            root = self._rollout_root(source, k)
            out += [StateRollout.from_file(root / f"seed_{s}.npz") for s in self.config.rollout_seeds(k)]
        return out

    # --- rounds ------------------------------------------------------------------------------------
    def run(self, sources: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
        """Every source's curve ``[pi_0, pi_1, ...]`` (one evaluation record each, with its update's statistics
        and, with ``train_seeds`` > 1, every member's evaluation under ``members``)."""
        for source in sources:
            if source not in REFERENCE_SOURCES and source not in self.models:
                raise ConfigError(f"reward source {source!r}: give its model in `reward_models` (or use oracle/sparse)")
            if self.config.adapt_reward_model and source in self.models and not self.models[source].adaptable:
                raise ConfigError(
                    f"`adapt_reward_model`: reward source {source!r} cannot be adapted (its model's `adaptable` is "
                    "False); adapt only trainable backends (e.g. sarm2) or turn adaptation off"
                )
        cfg = self.config
        shared = self.workdir / "shared" / "round_00"
        self._train_pi0_members()
        pi0_eval = self._with_members(shared, self.pi0_path, self.evaluate(shared, self.pi0_path))
        log.info("pi_0: %d/%d success", pi0_eval["successes"], pi0_eval["episodes"])
        curves: dict[str, list[dict[str, Any]]] = {}
        for source in sources:
            curve = [{**pi0_eval, "round": 0}]
            previous = self.pi0_path
            for r in range(1, cfg.rounds + 1):
                rdir = self.workdir / source / f"round_{r:02d}"
                stats = self._round(source, r, previous)
                record = self.evaluate(rdir, rdir / "policy")
                stats["round_seconds_with_eval"] = stats["round_seconds"] + record["eval_seconds"]
                curve.append({**self._with_members(rdir, rdir / "policy", record), "round": r, "update": stats})
                log.info("%s round %d: %d/%d success", source, r, record["successes"], record["episodes"])
                previous = rdir / "policy"  # member 0 is the lineage
            curves[source] = curve
        write_json_atomic(self.workdir / "results.json", {"config": cfg.to_dict(), "curves": curves})
        return curves

    def _round(self, source: str, r: int, previous: Path) -> dict[str, Any]:
        """Round ``r`` of ``source`` from ``previous`` (member 0's policy of the round before): its rollouts
        (collected unless on disk; round 1's are the shared ``pi_0``'s, relabelled by every source) and every
        ``train_seeds`` member's update not yet on disk, trained from one relabelling. Returns member 0's
        statistics (``rdir/update.json``; member ``k``'s go to ``update_seed<k>.json``)."""
        cfg = self.config
        rdir = self.workdir / source / f"round_{r:02d}"
        stats_path = rdir / "update.json"
        missing = {
            k: _member_path(rdir / "policy", k)
            for k in range(cfg.train_seeds)
            if not (_member_path(rdir / "policy", k) / "config.json").exists() or (k == 0 and not stats_path.exists())
        }
        if missing:
            started = time.perf_counter()
            rollouts, resumed = self.collect(self._rollout_root(source, r), previous, cfg.rollout_seeds(r))
            collected = time.perf_counter()
            earlier = self._earlier_rollouts(source, r) if cfg.aggregate else []
            for k, stats in zip(missing, self.update_members(source, r, rollouts, previous, missing, earlier)):
                if k == 0:
                    stats.update(
                        {"collect_seconds": collected - started, "resumed_rollouts": resumed, "shared_rollouts": r == 1}
                    )
                    stats["round_seconds"] = (
                        stats["collect_seconds"] + stats["relabel_seconds"] + stats["update_seconds"]
                    )
                write_json_atomic(rdir / _member_name("update", k, ".json"), stats)
        return json.loads(stats_path.read_text())

    def _train_pi0_members(self) -> None:
        """``pi_0``'s other ``train_seeds`` members: ``pi_0``'s config trained on the demos with seed
        ``MEMBER_SEED_STRIDE * k`` (those not on disk yet)."""
        for k in range(1, self.config.train_seeds):
            path = _member_path(self.pi0_path, k)
            if not (path / "config.json").exists():
                policy = StatePolicy(StatePolicy.load(self.pi0_path, device="cpu").config, device="cpu")
                policy.fit(self.demos, seed=MEMBER_SEED_STRIDE * k)
                policy.save(path)

    def _with_members(self, rdir: Path, policy_path: Path, record: dict[str, Any]) -> dict[str, Any]:
        """``record`` (member 0's evaluation) with, when ``train_seeds`` > 1, every member's evaluation on the
        same seeds under ``members`` (member 0's included), evaluating those not on disk yet."""
        if self.config.train_seeds == 1:
            return record
        members = [{**record, "member": 0}]
        for k in range(1, self.config.train_seeds):
            member = self.evaluate(rdir, _member_path(policy_path, k), member=k)
            members.append({**member, "member": k})
        return {**record, "members": members}
