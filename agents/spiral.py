"""SPIRAL: a policy improves from its own rollouts, scored by a reward model, round after round.

The loop of the paper (docs/design.md §4-5), on any env whose observations are SARM2-style dicts and whose
reward comes from :class:`sarm2_env.SARM2RewardWrapper`:

1. behaviour cloning on demonstrations -> ``pi_0`` (or start from a given policy);
2. each round ``r``: roll out ``pi_{r-1}``, relabel every rollout from the reward model's progress
   (query rate, smoothing and clipping of :class:`agents.relabel.RelabelConfig`), turn chunk advantages
   into per-sample weights or conditions (:mod:`agents.updates`), and fine-tune ``pi_{r-1}`` on the
   demonstrations plus the weighted rollouts -> ``pi_r``; with the ``residual_ac`` rule, instead train a
   residual actor-critic on the frozen ``pi_0`` from the relabelled rollouts of every round so far
   (:mod:`agents.residual`; training rollouts explore with its ``explore_noise``);
3. every policy is evaluated on the same held-out seeds; success is the simulator's ground-truth
   ``info["success"]`` with a 95 % Wilson interval, never the learned reward.

Everything a round produces is on disk under ``workdir`` (rollouts as they finish, the policy, the
evaluation), so an interrupted run resumes where it stopped; resuming with a different config is an error.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import math
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from agents.policy import NEGATIVE, POSITIVE, BCPolicy, BCPolicyConfig, PolicyEpisode
from agents.relabel import RelabelConfig, relabel_progress
from agents.residual import ResidualACPolicy, load_policy
from agents.rollouts import EnvFactory, Rollout, RolloutStore, make_executor
from agents.seeds import ROUND_SEED_STRIDE, RoundSeeds
from agents.updates import UpdateConfig, sample_targets
from sarm2_env.atomic import write_json_atomic
from sarm2_env.config import FrozenConfig
from sarm2_env.errors import CheckpointError, ConfigError, NonFiniteError
from sarm2_env.stats import pearson, wilson_interval

log = logging.getLogger(__name__)

#: Seed ranges (added to ``SpiralConfig.seed``): rollouts of round r, and the evaluation episodes.


@dataclasses.dataclass(frozen=True)
class SpiralConfig(RoundSeeds, FrozenConfig):
    """One SPIRAL run.

    Args:
        rounds: improvement rounds after the initial policy.
        rollouts_per_round: policy episodes collected (and relabelled) per round.
        eval_episodes: evaluation episodes per policy (the same seeds for every round).
        bc_steps: training steps of the initial behaviour cloning.
        finetune_steps: training steps of each round's update.
        update: the update rule and its hyper-parameters.
        relabel: how reward-model progress becomes rewards and advantages (``relabel.chunk`` should be the
            policy's chunk).
        executor: ``"local"`` (vector env) or ``"ray"``; ``num_envs`` parallel envs / Ray workers.
        seed: base of every seed (rollouts, evaluation, training).
        adapt_reward_model: once, after round 1's rollouts, fine-tune a copy of the reward model on them with
            their annotations (RM1 -> RM2); round 1 still updates with RM1, later rounds relabel with RM2. Every
            round's ``update.json`` reports how the relabelling model agreed with the simulator's progress
            (``reward_agreement``), and after adaptation how RM1 would have (``reward_agreement_rm1``).
        adapt_steps: training steps of that adaptation.
        rewards: ``"online"`` reads the progress the env's reward wrapper computed while rolling out
            (``info["sarm2/progress"]``); ``"offline"`` predicts it after collection from the rollout's stored
            frame embeddings with ``SPIRAL(reward_model=...)``, so rollouts need no wrapper and every frame is
            encoded once (the policy's encoder must be the reward model's).
        annotations: a JSONL file of rollout annotations (:class:`agents.annotation.AnnotationStore`, e.g.
            written by ``python -m agents.annotate``); rollouts it lacks are annotated automatically from the
            simulator's ground-truth progress (:func:`agents.auto_annotation.auto_annotate`).
    """

    label = "SPIRAL"

    rounds: int = 3
    rollouts_per_round: int = 50
    eval_episodes: int = 50
    bc_steps: int = 3000
    finetune_steps: int = 1500
    update: UpdateConfig = dataclasses.field(default_factory=UpdateConfig)
    relabel: RelabelConfig = dataclasses.field(default_factory=RelabelConfig)
    executor: str = "local"
    num_envs: int = 4
    seed: int = 0
    adapt_reward_model: bool = False
    adapt_steps: int = 500
    rewards: str = "online"
    annotations: str | None = None

    def __post_init__(self) -> None:
        names = (
            "rounds",
            "rollouts_per_round",
            "eval_episodes",
            "bc_steps",
            "finetune_steps",
            "num_envs",
            "adapt_steps",
        )
        self._check_positive_ints(*names)
        if self.rollouts_per_round >= ROUND_SEED_STRIDE or self.eval_episodes >= ROUND_SEED_STRIDE:
            raise ConfigError(f"`rollouts_per_round` and `eval_episodes` must be < {ROUND_SEED_STRIDE}")
        if self.rewards not in ("online", "offline"):
            raise ConfigError(f"`rewards` must be 'online' or 'offline'; got {self.rewards!r}")
        if self.executor not in ("local", "ray"):
            raise ConfigError(f"`executor` must be 'local' or 'ray'; got {self.executor!r}")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SpiralConfig:
        """Strict (unknown keys are an error naming them); ``update`` and ``relabel`` may be dicts."""
        cls._reject_unknown(data, "option(s)")
        data = dict(data)
        if isinstance(data.get("update"), dict):
            data["update"] = UpdateConfig(**data["update"])
        if isinstance(data.get("relabel"), dict):
            data["relabel"] = RelabelConfig(**data["relabel"])
        return cls(**data)


@dataclasses.dataclass(frozen=True)
class RoundResult:
    """What one policy achieved: ground-truth success on the evaluation seeds, and its update's statistics."""

    round: int
    successes: int
    episodes: int
    mean_final_progress: float
    update: dict[str, Any]

    @property
    def success_rate(self) -> float:
        """Successes over episodes (NaN with no episodes)."""
        return self.successes / self.episodes if self.episodes else math.nan

    @property
    def interval(self) -> tuple[float, float]:
        """Wilson 95 % interval of the success rate."""
        return wilson_interval(self.successes, self.episodes)

    def to_dict(self) -> dict[str, Any]:
        """The result as plain values, with the success rate and its interval."""
        lo, hi = self.interval
        return {**dataclasses.asdict(self), "success_rate": self.success_rate, "ci95": [lo, hi]}


def rollout_training_episode(
    rollout: Rollout, weight: np.ndarray | None, condition: np.ndarray | None
) -> PolicyEpisode:
    """A rollout as a behaviour-cloning episode with per-frame BC ``weight`` and RECAP ``condition``."""
    return PolicyEpisode(
        instruction=rollout.instruction,
        embeddings=rollout.embeddings.astype(np.float32),
        state=rollout.state,
        action=rollout.action,
        weight=weight,
        condition=condition,
    )


def rollout_features(rollout: Rollout):
    """The reward-model view of a rollout (embeddings from the policy's encoder; primitives unknown)."""
    from rewards.data import EpisodeFeatures

    return EpisodeFeatures(
        episode_id=rollout.episode_id,
        task_id=rollout.task_id,
        instruction=rollout.instruction,
        success=rollout.success,
        skill=float("nan"),
        embeddings=rollout.embeddings.astype(np.float32),
        state=rollout.state,
        primitive=np.full(rollout.length, -1, dtype=np.int64),
        progress=rollout.progress,
        success_flags=rollout.success_flags,
    )


class SPIRAL:
    """The SPIRAL agent (see the module docstring).

    Args:
        make_env: builds one env (called once per parallel worker), e.g.
            ``lambda: SARM2RewardWrapper(gym.make("SARM2/FoldShorts-v0"))``. Its ``info`` must carry
            ``sarm2/progress`` (the reward model's online progress) and the simulator's ``success``.
        demos: demonstrations for the initial behaviour cloning (and kept in every update when
            ``config.update.include_demos``).
        workdir: where rounds, rollouts, policies and results go; rerunning resumes.
        config: the run's :class:`SpiralConfig`.
        policy_config: the BC policy (its ``chunk`` should equal ``config.relabel.chunk``).
        initial_policy: start from this policy instead of cloning ``demos`` (e.g. a pretrained VLA stand-in).
        reward_model: the reward model (the same weights the env's wrapper uses, if any): it relabels rollouts
            offline (``config.rewards="offline"``) and is what ``config.adapt_reward_model`` adapts; its image
            encoder must be the policy's, so rollout embeddings serve both.
        eval_env: builds the evaluation env (default ``make_env``); evaluation reads only the simulator's
            ``info["success"]`` and ``info["progress"]``, so it needs no reward wrapper.
        device: torch device for the policy (``None``: CUDA when available).
    """

    def __init__(
        self,
        make_env: EnvFactory,
        demos: Sequence[PolicyEpisode],
        workdir: str | os.PathLike,
        config: SpiralConfig | None = None,
        policy_config: BCPolicyConfig | None = None,
        initial_policy: BCPolicy | None = None,
        reward_model: Any = None,
        device: str | None = None,
        eval_env: EnvFactory | None = None,
    ) -> None:
        self.make_env = make_env
        self.eval_env = eval_env or make_env
        self.demos = list(demos)
        self.workdir = Path(workdir)
        self.config = config or SpiralConfig()
        self.policy_config = policy_config or (initial_policy.config if initial_policy else BCPolicyConfig())
        if self.config.update.rule == "recap" and not self.policy_config.condition:
            self.policy_config = self.policy_config.replace(condition=True)
        if initial_policy is None and not self.demos:
            raise ConfigError("`demos`: SPIRAL needs demonstrations for behaviour cloning, or an `initial_policy`")
        self.initial_policy = initial_policy
        self.reward_model = reward_model
        self.adapted_model: Any = None
        if self.config.adapt_reward_model:
            if reward_model is None or not reward_model.adaptable:
                raise ConfigError(
                    "`adapt_reward_model` needs `reward_model=`: a trained model with an adapt() method (e.g. sarm2)"
                )
            self._check_encoder("adapting it")
        if self.config.rewards == "offline":
            if reward_model is None or not hasattr(reward_model, "predict_episode"):
                raise ConfigError("`rewards='offline'` needs `reward_model=`: the model that relabels the rollouts")
            self._check_encoder("relabelling offline")
        self.device = device
        workers = {"local": "num_envs", "ray": "num_workers"}[self.config.executor]
        self.executor = make_executor(self.config.executor, **{workers: self.config.num_envs})
        self.results: list[RoundResult] = []
        self._check_workdir()

    def _check_encoder(self, purpose: str) -> None:
        """Rollout embeddings come from the policy's encoder; a reward model that reads embeddings must share it."""
        spec = self.reward_model.encoder_spec
        if spec is None:  # references (oracle, sparse) read the simulator's ground truth, not frames
            return
        image_size = self.policy_config.image_size
        if spec.name != self.policy_config.encoder or (image_size is not None and spec.image_size != image_size):
            raise ConfigError(
                f"`reward_model`: {purpose} reuses the policy's frame embeddings, so its image encoder must be "
                f"the policy's ({self.policy_config.encoder} at {image_size or 'its default'} px); got {spec.key}"
            )

    # --- run -----------------------------------------------------------------------------------------
    def run(self, on_round: Callable[[RoundResult], None] | None = None) -> list[RoundResult]:
        """Run (or resume) every round; returns one :class:`RoundResult` per policy ``pi_0 .. pi_rounds``."""
        policy = self._initial()
        self.results = [self._evaluate(0, policy, {"rule": "bc", "episodes": len(self.demos)})]
        if on_round:
            on_round(self.results[-1])
        for r in range(1, self.config.rounds + 1):
            policy, stats = self._improve(r, policy)
            self.results.append(self._evaluate(r, policy, stats))
            if on_round:
                on_round(self.results[-1])
        write_json_atomic(self.workdir / "results.json", [res.to_dict() for res in self.results])
        return self.results

    def _round_dir(self, r: int) -> Path:
        return self.workdir / f"round_{r:02d}"

    def _initial(self) -> BCPolicy:
        path = self._round_dir(0) / "policy"
        if (path / "config.json").exists():
            log.info("round 0: policy found at %s, not retrained", path)
            return BCPolicy.load(path, device=self.device)
        if self.initial_policy is not None:
            policy = self.initial_policy
        else:
            policy = BCPolicy(self.policy_config, device=self.device)
            demos = [
                dataclasses.replace(d, condition=np.full(d.length, POSITIVE)) if self.policy_config.condition else d
                for d in self.demos
            ]
            policy.fit(demos, seed=self.config.seed, steps=self.config.bc_steps)
        policy.save(path)
        return policy

    def _improve(self, r: int, previous: Any) -> tuple[Any, dict[str, Any]]:
        rdir = self._round_dir(r)
        policy_path = rdir / "policy"
        stats_path = rdir / "update.json"
        if (policy_path / "config.json").exists() and stats_path.exists():
            log.info("round %d: policy found, not retrained", r)
            return load_policy(policy_path, device=self.device), json.loads(stats_path.read_text())
        if self.config.update.rule == "residual_ac":
            return self._improve_residual(r, previous)
        started = time.perf_counter()
        rollouts, resumed = self._collect(rdir / "rollouts", previous, self.config.rollout_seeds(r))
        collected = time.perf_counter()
        episodes, stats = self._training_set(rollouts, self._relabel_model(r))
        stats.update(self._rm1_agreement(r, rollouts))
        if r == 1 and self.config.adapt_reward_model:
            stats["adaptation"] = self._adapt(rollouts)
        policy = BCPolicy(previous.config, device=self.device)
        policy.set_image_encoder(previous.image_encoder)
        policy.fit(episodes, seed=self.config.seed + r, steps=self.config.finetune_steps, init_from=previous)
        policy.save(policy_path)
        stats["rollout_success_rate"] = float(np.mean([ro.success for ro in rollouts]))
        stats.update(_timing(started, collected, resumed))
        write_json_atomic(stats_path, stats)
        log.info("round %d: updated on %d rollouts (%s)", r, len(rollouts), stats)
        return policy, stats

    def _improve_residual(self, r: int, previous: Any) -> tuple[ResidualACPolicy, dict[str, Any]]:
        """Round ``r`` of the residual actor-critic: explore with ``pi_{r-1}``, train on all rounds' rollouts."""
        rdir = self._round_dir(r)
        if isinstance(previous, ResidualACPolicy):
            policy = previous.copy()
        else:  # round 1: pi_0 with a zero residual, so its rollouts already explore
            policy = ResidualACPolicy.from_base(previous, self.config.update.residual, seed=self.config.seed + r)
        started = time.perf_counter()
        with policy.exploring():
            rollouts, resumed = self._collect(rdir / "rollouts", policy, self.config.rollout_seeds(r))
        collected = time.perf_counter()
        replay = [ro for k in range(1, r) for ro in RolloutStore(self._round_dir(k) / "rollouts")] + rollouts
        model = self._relabel_model(r)
        relabel = self.config.relabel
        # Relabelled before adapting: round 1 updates with RM1, as in the weighting rules.
        predicted = [self._predicted_progress(ro, model) for ro in replay]
        progress = [relabel_progress(p, relabel).progress for p in predicted]
        agreement = {
            "reward_agreement": reward_agreement(predicted[-len(rollouts) :], rollouts),
            **self._rm1_agreement(r, rollouts),
        }
        adaptation = self._adapt(rollouts) if r == 1 and self.config.adapt_reward_model else None
        summary = policy.fit(replay, progress, steps=self.config.finetune_steps, seed=self.config.seed + r)
        policy.save(rdir / "policy")
        stats: dict[str, Any] = {
            "rule": "residual_ac",
            "rollouts": len(rollouts),
            "replay_rollouts": len(replay),
            **summary,
            "rollout_success_rate": float(np.mean([ro.success for ro in rollouts])),
            **agreement,
            **_timing(started, collected, resumed),
        }
        if adaptation is not None:
            stats["adaptation"] = adaptation
        write_json_atomic(rdir / "update.json", stats)
        log.info("round %d: residual actor-critic on %d rollouts (%s)", r, len(replay), stats)
        return policy, stats

    def _collect(
        self, root: Path, policy: Any, seeds: list[int], make_env: EnvFactory | None = None
    ) -> tuple[list[Rollout], int]:
        """The rollouts of ``seeds`` under ``root``, collecting those not stored yet, and how many were stored."""
        store = RolloutStore(root)
        have = {seed for _, seed in store.seeds()}
        todo = [s for s in seeds if s not in have]
        if todo:
            log.info("collecting %d rollouts into %s (%d already there)", len(todo), root, len(have))
            self.executor.collect(make_env or self.make_env, policy, todo, store.add)
        wanted = set(seeds)
        return [ro for ro in store if ro.seed in wanted], len(seeds) - len(todo)

    # --- reward-model adaptation (RM1 -> RM2) ----------------------------------------------------------
    def _rm1_agreement(self, r: int, rollouts: list[Rollout]) -> dict[str, Any]:
        """After adaptation, how the unadapted RM1 would have scored this round's rollouts (RM2 relabels them)."""
        if r < 2 or not self.config.adapt_reward_model:
            return {}
        predicted = [self._predicted_progress(ro, self.reward_model) for ro in rollouts]
        return {"reward_agreement_rm1": reward_agreement(predicted, rollouts)}

    def _adapted_path(self) -> Path:
        return self.workdir / "reward_model_adapted"

    def _relabel_model(self, r: int) -> Any:
        """The model that relabels round ``r``'s rollouts: the adapted one after round 1 (when adapting), else
        ``reward_model`` when relabelling offline, else ``None`` (the env's online ``sarm2/progress``)."""
        if r < 2 or not self.config.adapt_reward_model:
            return self.reward_model if self.config.rewards == "offline" else None
        if self.adapted_model is None:
            path = self._adapted_path()
            if not (path / "config.json").exists():
                raise CheckpointError(f"{path}: the adapted reward model of round 1 is missing; rerun round 1")
            self.adapted_model = type(self.reward_model).load(path, device=self.device)
        return self.adapted_model

    def _adapt(self, rollouts: list[Rollout]) -> dict[str, Any]:
        from agents.annotation import AnnotationStore, synthesize_progress
        from agents.auto_annotation import auto_annotate

        path = self._adapted_path()
        if (path / "config.json").exists():
            self.adapted_model = type(self.reward_model).load(path, device=self.device)
            return {"resumed": True}
        given = AnnotationStore(self.config.annotations).load() if self.config.annotations else {}
        targets, features, auto = [], [], 0
        for ro in rollouts:
            ann = given.get(ro.episode_id)
            if ann is None:
                ann, auto = auto_annotate(ro), auto + 1
            elif ann.length != ro.length:
                raise ConfigError(
                    f"annotation of {ro.episode_id} covers {ann.length} frames; the rollout has {ro.length}"
                )
            targets.append(synthesize_progress(ann))
            features.append(rollout_features(ro))
        model = copy.deepcopy(self.reward_model)  # RM1 stays as it was: later rounds compare RM2 with it
        model.adapt(features, targets, steps=self.config.adapt_steps, seed=self.config.seed)
        model.save(path)
        self.adapted_model = model
        log.info("reward model adapted on %d rollouts (%d auto-annotated) -> %s", len(rollouts), auto, path)
        return {"rollouts": len(rollouts), "auto_annotated": auto, "human_annotated": len(rollouts) - auto}

    @staticmethod
    def _predicted_progress(rollout: Rollout, relabel_model: Any = None) -> np.ndarray:
        """The reward model's per-frame progress of a rollout: online from the env, or from ``relabel_model``."""
        if relabel_model is not None:
            predicted = relabel_model.predict_episode(rollout_features(rollout)).progress
        else:
            predicted = rollout.rm_progress
        if np.isnan(predicted).any():
            raise NonFiniteError(
                f"rollout {rollout.episode_id}: no reward-model progress in info['sarm2/progress'] "
                "(wrap the env with SARM2RewardWrapper) or the model returned NaN"
            )
        return predicted

    def _training_set(
        self, rollouts: list[Rollout], relabel_model: Any = None
    ) -> tuple[list[PolicyEpisode], dict[str, Any]]:
        cfg = self.config
        advantages, groups = [], []
        task_index = {t: k for k, t in enumerate(sorted({ro.task_id for ro in rollouts}))}
        predicted = [self._predicted_progress(ro, relabel_model) for ro in rollouts]
        for ro, p in zip(rollouts, predicted):
            advantages.append(relabel_progress(p, cfg.relabel).advantage)
            groups.append(np.full(ro.length, task_index[ro.task_id]))
        flat = np.concatenate(advantages)
        agreement = reward_agreement(predicted, rollouts)
        targets = sample_targets(flat, cfg.update, np.concatenate(groups))
        episodes: list[PolicyEpisode] = []
        start = 0
        for ro, adv in zip(rollouts, advantages):
            end = start + len(adv)
            cond = None
            if targets.condition is not None:
                cond = np.where(targets.condition[start:end] > 0, POSITIVE, NEGATIVE)
            episodes.append(rollout_training_episode(ro, targets.weight[start:end], cond))
            start = end
        if cfg.update.include_demos:
            for d in self.demos:
                cond = np.full(d.length, POSITIVE) if self.policy_config.condition else None
                episodes.append(dataclasses.replace(d, weight=None, condition=cond))
        stats = {
            "rule": cfg.update.rule,
            "rollouts": len(rollouts),
            "mean_advantage": float(flat.mean()),
            "mean_weight": float(targets.weight.mean()),
            "positive_fraction": float(targets.condition.mean()) if targets.condition is not None else None,
            "reward_agreement": agreement,
        }
        return episodes, stats

    def _evaluate(self, r: int, policy: Any, stats: dict[str, Any]) -> RoundResult:
        path = self._round_dir(r) / "eval.json"
        if path.exists():
            data = json.loads(path.read_text())
            return RoundResult(
                r, data["successes"], data["episodes"], data["mean_final_progress"], data.get("update", stats)
            )
        store = RolloutStore(self._round_dir(r) / "eval_rollouts")
        rollouts, _ = self._collect(store.root, policy, self.config.eval_seeds(), self.eval_env)
        result = RoundResult(
            round=r,
            successes=int(sum(ro.success for ro in rollouts)),
            episodes=len(rollouts),
            mean_final_progress=float(np.mean([ro.progress[-1] for ro in rollouts])),
            update=stats,
        )
        write_json_atomic(path, result.to_dict())
        lo, hi = result.interval
        log.info("round %d: success %d/%d [%.2f, %.2f]", r, result.successes, result.episodes, lo, hi)
        return result

    # --- resume safety -------------------------------------------------------------------------------
    def _check_workdir(self) -> None:
        # Through JSON, so tuples compare as the lists a saved config holds.
        config = {"spiral": self.config.to_dict(), "policy": dataclasses.asdict(self.policy_config)}
        record = json.loads(json.dumps(config))
        path = self.workdir / "config.json"
        saved = None
        if path.exists():
            try:
                saved = json.loads(path.read_text())
            except ValueError as exc:
                msg = f"{path}: unreadable run config ({exc}); remove the workdir to start over"
                raise CheckpointError(msg) from exc
            # Options added since the run started count as their defaults, and the number of rounds may change
            # (more rounds extend a run).
            defaults = {"spiral": SpiralConfig().to_dict(), "policy": dataclasses.asdict(BCPolicyConfig())}
            before = _with_defaults(saved, json.loads(json.dumps(defaults)))
            before["spiral"]["rounds"] = record["spiral"]["rounds"]
            changed = _diff(before, record)
            if changed:
                raise ConfigError(
                    f"{self.workdir} holds a SPIRAL run with a different config ({', '.join(changed)}); "
                    "use a new workdir, or the original config to resume"
                )
        if saved != record:
            write_json_atomic(path, record)


def reward_agreement(predicted: Sequence[np.ndarray], rollouts: Sequence[Rollout]) -> dict[str, float | None]:
    """How a reward model's per-frame progress of ``rollouts`` agrees with the simulator's ground truth.

    ``frame_corr``: Pearson correlation over every frame pooled; ``final_corr``: across rollouts, of the final
    progress (does the model rank the rollouts as the physics does?); ``final_mae`` and the two means of the
    final progress. A correlation is ``None`` where either side is constant.
    """
    pred_final = np.array([float(p[-1]) for p in predicted])
    true_final = np.array([float(ro.progress[-1]) for ro in rollouts])
    return {
        "rollouts": len(rollouts),
        "frame_corr": _pearson(np.concatenate(predicted), np.concatenate([ro.progress for ro in rollouts])),
        "final_corr": _pearson(pred_final, true_final),
        "final_mae": float(np.abs(pred_final - true_final).mean()),
        "mean_predicted_final": float(pred_final.mean()),
        "mean_true_final": float(true_final.mean()),
    }


def _pearson(a: np.ndarray, b: np.ndarray) -> float | None:
    """:func:`sarm2_env.stats.pearson`, with ``None`` (JSON-safe) where it is undefined."""
    corr = pearson(a, b)
    return None if math.isnan(corr) else corr


def _timing(started: float, collected: float, resumed: int) -> dict[str, float]:
    """Seconds spent collecting a round's rollouts, and relabelling + updating; ``resumed_rollouts`` were on disk
    already (an interrupted round), so its collection time covers only the others."""
    now = time.perf_counter()
    return {
        "collect_seconds": collected - started,
        "update_seconds": now - collected,
        "round_seconds": now - started,
        "resumed_rollouts": resumed,
    }


def _with_defaults(saved: Any, defaults: Any) -> Any:
    """``saved`` with the keys it lacks taken from ``defaults`` (recursively)."""
    if not isinstance(saved, dict) or not isinstance(defaults, dict):
        return saved
    return {**defaults, **{k: _with_defaults(v, defaults.get(k)) for k, v in saved.items()}}


def _diff(a: Any, b: Any, prefix: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for key in sorted(set(a) | set(b)):
            out += _diff(a.get(key), b.get(key), f"{prefix}{key}.")
        return out
    return [] if a == b else [f"`{prefix.rstrip('.')}`: {a!r} -> {b!r}"]
