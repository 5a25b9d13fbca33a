"""SPIRAL benchmark: ground-truth success rate per round for each reward source (the paper's Figure 4, in sim).

Run by ``python benchmarks/run.py --config spiral`` (any config with ``kind: spiral``). Per task:

1. demos (``demos`` of them at ``demo_skill``, one skill or a list cycled over episodes; seeds from
   ``demo_seed``; the failed ones are dropped) -> the BC policy
   ``pi_0``, trained once and shared by every reward source, so all curves start from the same policy;
2. for each reward source, a SPIRAL run from ``pi_0`` with ``update_rule``; the sources are reward-model
   backends: ``sarm2`` (the shipped checkpoint, or ``sarm2_checkpoint``), trainable baselines such as
   ``robometer_lite`` (fine-tuned here on the same demos), and the references ``sparse`` (success only)
   and ``oracle`` (physics progress, an upper bound);
3. with SARM2 rewards, one more run per rule in ``compare_rules``, to say which update rule works best.

Success is the simulator's ``info["success"]`` on ``spiral.eval_episodes`` fixed seeds per round, with 95 %
Wilson intervals. Outputs: ``results/<name>/spiral_results.json``, ``spiral_summary.md`` and
``plots/spiral_<task>.png``. Every run resumes from its workdir.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any

import yaml

from sarm2_env.atomic import write_json_atomic
from sarm2_env.config import FrozenConfig
from sarm2_env.errors import ConfigError

log = logging.getLogger("benchmarks")

REFERENCE_SOURCES = ("sparse", "oracle")


@dataclasses.dataclass(frozen=True)
class SpiralBenchConfig(FrozenConfig):
    """One SPIRAL benchmark (``benchmarks/configs/spiral.yaml``); unknown keys are errors."""

    label = "SPIRAL benchmark"

    name: str = "spiral"
    kind: str = "spiral"
    tasks: tuple[str, ...] = ("FoldShorts", "CleanWhiteboard")
    reward_sources: tuple[str, ...] = ("sarm2", "sparse", "robometer_lite", "oracle")
    update_rule: str = "rabc"
    compare_rules: tuple[str, ...] = ("awr", "recap")
    demos: int = 20
    demo_skill: float | tuple[float, ...] = 1.0
    demo_seed: int = 300_000
    image_size: int = 128
    episode_steps: int | None = None
    sarm2_checkpoint: str = "default"
    reward_training_steps: int = 2000
    policy: dict[str, Any] = dataclasses.field(default_factory=dict)
    spiral: dict[str, Any] = dataclasses.field(default_factory=dict)
    data_root: str = "data/spiral"
    out: str = "results"
    device: str | None = None

    def __post_init__(self) -> None:
        if self.kind != "spiral":
            raise ConfigError(f"`kind` must be 'spiral' for a SPIRAL benchmark; got {self.kind!r}")
        if not self.tasks or not self.reward_sources:
            raise ConfigError("`tasks` and `reward_sources` must each name at least one entry")
        if not isinstance(self.demos, int) or self.demos < 2:
            raise ConfigError(f"`demos` must be an integer >= 2; got {self.demos!r}")
        if not self.demo_skills or not all(isinstance(k, (int, float)) and 0 <= k <= 1 for k in self.demo_skills):
            raise ConfigError(f"`demo_skill` must be a number in [0, 1] or a list of them; got {self.demo_skill!r}")
        from agents.policy import BCPolicyConfig
        from agents.spiral import SpiralConfig
        from agents.updates import UpdateConfig
        from rewards.registry import REGISTRY
        from sarm2_env.errors import UnknownNameError

        for source in self.reward_sources:
            if source not in REGISTRY:
                raise UnknownNameError("reward source (in `reward_sources`)", source, REGISTRY)
        for rule in (self.update_rule, *self.compare_rules):
            UpdateConfig(rule=rule)
        BCPolicyConfig(**self.policy)
        SpiralConfig.from_dict(self.spiral)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SpiralBenchConfig:
        """Strict (unknown keys are an error naming them); lists become tuples."""
        cls._reject_unknown(data, "key(s)")
        data = dict(data)
        if isinstance(data.get("demo_skill"), list):
            data["demo_skill"] = tuple(data["demo_skill"])
        for key in ("tasks", "reward_sources", "compare_rules"):
            if key in data and data[key] is not None:
                data[key] = tuple(data[key])
        return cls(**data)

    @property
    def demo_skills(self) -> tuple[float, ...]:
        """``demo_skill`` as a tuple."""
        return self.demo_skill if isinstance(self.demo_skill, tuple) else (self.demo_skill,)

    def policy_config(self):
        """The BC policy config: ``policy`` overrides at the benchmark's image size."""
        from agents.policy import BCPolicyConfig

        return BCPolicyConfig(**{"image_size": self.image_size, **self.policy})

    def spiral_config(self, rule: str):
        """The SPIRAL config of one run with update ``rule``."""
        from agents.spiral import SpiralConfig

        return SpiralConfig.from_dict({**self.spiral, "update": {**self.spiral.get("update", {}), "rule": rule}})


def is_spiral_config(path: Path, kind: str = "spiral") -> bool:
    """Whether the YAML file at ``path`` declares ``kind`` (default: a SPIRAL benchmark, ``kind: spiral``)."""
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError):
        return False
    return isinstance(data, dict) and data.get("kind") == kind


def load_spiral_config(path: Path, overrides: dict[str, Any]) -> SpiralBenchConfig:
    """A SPIRAL benchmark config from YAML with ``overrides``; unknown keys are errors."""
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from exc
    for key, value in overrides.items():
        node = data
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ConfigError(f"`--set {key}`: {p!r} is not a section")
        node[leaf] = value
    return SpiralBenchConfig.from_dict(data)


def _runs(config: SpiralBenchConfig) -> list[tuple[str, str]]:
    """(reward source, update rule) pairs: every source with the main rule, then SARM2 with the others."""
    runs = [(source, config.update_rule) for source in config.reward_sources]
    if "sarm2" in config.reward_sources:
        runs += [("sarm2", rule) for rule in config.compare_rules if rule != config.update_rule]
    return runs


def _reward_arg(config: SpiralBenchConfig, source: str, task_dir: Path, data_dir: Path, encoder) -> str:
    """What the env's reward wrapper loads for ``source``: a name, the shipped checkpoint or one trained here."""
    if source in REFERENCE_SOURCES:
        return source
    if source == "sarm2" and config.sarm2_checkpoint != "default":
        return config.sarm2_checkpoint
    if source == "sarm2":
        return "sarm2"
    path = task_dir / f"reward_{source}"
    if (path / "config.json").exists():
        return str(path)
    from rewards.data import load_features, split_episodes
    from rewards.registry import make_reward_model, reward_model_class

    cls = reward_model_class(source)
    if not cls.trainable:
        raise ConfigError(f"reward source {source!r} is neither a reference nor trainable; use a checkpoint")
    features = load_features(data_dir, encoder)
    train, val = split_episodes(features, 0.1, seed=0)
    steps = {"steps": config.reward_training_steps}
    model = make_reward_model(
        source, checkpoint=None, device=config.device, encoder=encoder, config=cls.config_cls.from_dict(steps)
    )
    model.fit(train, val, progress=False)
    model.save(path)
    log.info("spiral: trained %s on %d demos -> %s", source, len(train), path)
    return str(path)


def run_spiral_benchmark(config: SpiralBenchConfig) -> dict[str, Any]:
    """Run (or resume) every task x (source, rule) SPIRAL run and write the report."""
    import tasks
    from agents.policy import BCPolicy
    from agents.spiral import SPIRAL
    from sarm2_env.make import make_env
    from sarm2_env.wrapper import resolve_reward_model

    started = time.perf_counter()
    run_dir = Path(config.out) / config.name
    run_dir.mkdir(parents=True, exist_ok=True)
    policy_cfg = config.policy_config()
    results: dict[str, Any] = {"config": dataclasses.asdict(config), "tasks": {}}
    for task in config.tasks:
        task_id = tasks.resolve_task_id(task)
        short = task_id.split("/")[1].removesuffix("-v0")
        task_dir = run_dir / short
        data_dir = Path(config.data_root) / f"{config.image_size}px" / short
        encoder = BCPolicy(policy_cfg, device=config.device).image_encoder
        demos = _demos(config, task_id, data_dir, encoder)
        env_kwargs: dict[str, Any] = {"image_size": config.image_size}
        if config.episode_steps is not None:
            env_kwargs["max_episode_steps"] = config.episode_steps
        first_round0: Path | None = None
        task_results = {}
        for source, rule in _runs(config):
            reward = _reward_arg(config, source, task_dir, data_dir, encoder)
            spiral_cfg = config.spiral_config(rule)
            # Evaluation reads only the simulator's ground truth: no reward wrapper (and no encoder) in its envs.
            plain_env = functools.partial(make_env, task_id, **env_kwargs)
            reward_model = None
            if spiral_cfg.rewards == "offline" or spiral_cfg.adapt_reward_model:
                reward_model = resolve_reward_model(reward, device=config.device)
            if spiral_cfg.adapt_reward_model and not (reward_model is not None and reward_model.adaptable):
                # References (oracle, sparse) read the physics: there is nothing to adapt.
                spiral_cfg = dataclasses.replace(spiral_cfg, adapt_reward_model=False)
            if spiral_cfg.rewards == "offline":
                env_fn = plain_env
            else:
                env_fn = functools.partial(make_env, task_id, reward_model=reward, **env_kwargs)
            workdir = task_dir / f"{source}-{rule}"
            spiral = SPIRAL(
                env_fn,
                demos,
                workdir,
                spiral_cfg,
                policy_cfg,
                reward_model=reward_model,
                device=config.device,
                eval_env=plain_env,
            )
            # pi_0 (cloned in the first run) and its evaluation on the shared seeds serve every run.
            if first_round0 is not None and not (workdir / "round_00").exists():
                shutil.copytree(first_round0, workdir / "round_00")
            log.info("spiral %s: %s rewards, %s updates -> %s", short, source, rule, workdir)
            rounds = spiral.run()
            if first_round0 is None:
                first_round0 = workdir / "round_00"
            task_results[f"{source}-{rule}"] = {
                "reward_source": source,
                "update_rule": rule,
                "rounds": [r.to_dict() for r in rounds],
            }
        results["tasks"][short] = task_results
    results["wall_minutes"] = (time.perf_counter() - started) / 60
    results["best_rule"] = best_rule(results, config)
    write_json_atomic(run_dir / "spiral_results.json", results)
    (run_dir / "spiral_summary.md").write_text(summary_markdown(results, config))
    plot_curves(results, run_dir / "plots")
    return results


def _demos(config: SpiralBenchConfig, task_id: str, data_dir: Path, encoder: Any) -> list:
    """The task's demonstrations for behaviour cloning: collected once into ``data_dir`` (resumable), encoded."""
    from agents.policy import demos_from_dataset
    from tasks.collect import CollectConfig, collect

    collect(
        CollectConfig(
            tasks=(task_id,),
            episodes=config.demos,
            skills=config.demo_skills,
            seed=config.demo_seed,
            image_size=config.image_size,
        ),
        str(data_dir),
        progress_bar=False,
    )
    return demos_from_dataset(data_dir, encoder)


def best_rule(results: dict[str, Any], config: SpiralBenchConfig) -> dict[str, Any] | None:
    """The update rule with the highest mean final success rate over tasks, with SARM2 rewards (``rule`` is
    ``None`` when several share it: ``tied`` lists them)."""
    rules = [config.update_rule, *[r for r in config.compare_rules if r != config.update_rule]]
    finals: dict[str, list[float]] = {}
    for task_runs in results["tasks"].values():
        for rule in rules:
            run = task_runs.get(f"sarm2-{rule}")
            if run:
                finals.setdefault(rule, []).append(run["rounds"][-1]["success_rate"])
    if not finals:
        return None
    means = {rule: sum(v) / len(v) for rule, v in finals.items()}
    top = max(means.values())
    leaders = [rule for rule, m in means.items() if m == top]
    # A tie (e.g. every rule at 0 %) names no winner.
    return {"rule": leaders[0] if len(leaders) == 1 else None, "tied": leaders, "mean_final_success": means}


def summary_markdown(results: dict[str, Any], config: SpiralBenchConfig) -> str:
    """Success rate per round (95 % interval) per task and run, plus the best update rule."""
    policy = config.policy_config()
    encoder_note = " (random-init encoder, test only)" if policy.encoder == "tiny" else ""
    lines = [
        f"# SPIRAL benchmark `{config.name}`",
        "",
        f"Ground-truth success (`info['success']`) on {config.spiral.get('eval_episodes', 50)} fixed evaluation "
        f"episodes per round, 95 % Wilson intervals. BC policy: {policy.encoder}{encoder_note} embeddings, "
        f"{config.demos} demos at skill {', '.join(map(str, config.demo_skills))}. Each cell: success rate "
        "[95 % interval] / mean ground-truth final progress (`info['progress']`, in [0, 1]). "
        f"Wall time {results['wall_minutes']:.1f} min.",
        "",
    ]
    for task, runs in results["tasks"].items():
        n_rounds = max(len(r["rounds"]) for r in runs.values())
        lines += [
            f"## {task}",
            "",
            "| reward source | update | " + " | ".join(f"round {k}" for k in range(n_rounds)) + " |",
        ]
        lines.append("|---|---|" + "---|" * n_rounds)
        for run in runs.values():
            cells = [
                f"{r['success_rate']:.0%} [{r['ci95'][0]:.2f}, {r['ci95'][1]:.2f}] / {r['mean_final_progress']:.2f}"
                for r in run["rounds"]
            ]
            lines.append(f"| {run['reward_source']} | {run['update_rule']} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += round_timing_lines(results, config)
    lines += reward_agreement_lines(results)
    best = results.get("best_rule")
    if best:
        means = ", ".join(f"{k} {v:.0%}" for k, v in best["mean_final_success"].items())
        if best["rule"] is not None:
            lines.append(
                f"Best update rule with SARM2 rewards (mean final success over tasks): **{best['rule']}** ({means})."
            )
        else:
            lines.append(
                f"No best update rule with SARM2 rewards: {', '.join(best['tied'])} tie on mean final success "
                f"over tasks ({means})."
            )
    return "\n".join(lines) + "\n"


def reward_agreement_lines(results: dict[str, Any]) -> list[str]:
    """Per learned-reward run and round: how the relabelling model's progress agreed with the physics on that
    round's rollouts (and, after adaptation, how the unadapted RM1 would have)."""

    def fmt(a: dict[str, Any]) -> str:
        corr = "n/a" if a.get("final_corr") is None else f"{a['final_corr']:+.2f}"
        frame = "n/a" if a.get("frame_corr") is None else f"{a['frame_corr']:+.2f}"
        return (
            f"final-progress corr {corr}, per-frame corr {frame}, predicted final "
            f"{a['mean_predicted_final']:.2f} vs true {a['mean_true_final']:.2f}"
        )

    lines = []
    for task, runs in results["tasks"].items():
        for key, run in runs.items():
            if run["reward_source"] in REFERENCE_SOURCES:
                continue
            for r in run["rounds"][1:]:
                agreement = r["update"].get("reward_agreement")
                if not agreement:
                    continue
                line = f"- {task} {key} round {r['round']}: {fmt(agreement)}"
                rm1 = r["update"].get("reward_agreement_rm1")
                if rm1:
                    line += f" (adapted RM2; RM1 on the same rollouts: {fmt(rm1)})"
                lines.append(line)
    if not lines:
        return []
    return ["Reward model against ground truth on each round's rollouts (over rollouts / over frames):", "", *lines, ""]


def round_timing_lines(results: dict[str, Any], config: SpiralBenchConfig) -> list[str]:
    """Mean wall time of one round (collect the rollouts, relabel, update) per task, from the rounds that
    collected all their rollouts when they ran (a resumed round only timed what it still had to do)."""
    import platform

    lines = []
    for task, runs in results["tasks"].items():
        rounds = [
            r["update"]
            for run in runs.values()
            for r in run["rounds"][1:]
            if "round_seconds" in r["update"] and not r["update"].get("resumed_rollouts")
        ]
        if not rounds:
            continue
        keys = ("round_seconds", "collect_seconds", "update_seconds")
        mean = {k: sum(r[k] for r in rounds) / len(rounds) for k in keys}
        lines.append(
            f"One round on {task} ({config.spiral.get('rollouts_per_round', 50)} rollouts, relabel, update; mean of "
            f"{len(rounds)}): {mean['round_seconds'] / 60:.1f} min (collect {mean['collect_seconds'] / 60:.1f}, "
            f"update {mean['update_seconds'] / 60:.1f}) on {os.cpu_count()} CPU cores ({platform.machine()}), "
            f"{config.spiral.get('num_envs', 4)} envs."
        )
    return [*lines, ""] if lines else []


def plot_curves(results: dict[str, Any], out_dir: Path) -> None:
    """One figure per task: success rate per round with 95 % interval bars (left) and mean ground-truth final
    progress (right), one line per run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    for task, runs in results["tasks"].items():
        fig, (ax, ax_p) = plt.subplots(1, 2, figsize=(10, 3.6))
        for key, run in runs.items():
            xs = [r["round"] for r in run["rounds"]]
            ys = [r["success_rate"] for r in run["rounds"]]
            lo = [y - r["ci95"][0] for y, r in zip(ys, run["rounds"])]
            hi = [r["ci95"][1] - y for y, r in zip(ys, run["rounds"])]
            ax.errorbar(xs, ys, yerr=[lo, hi], marker="o", capsize=3, label=key)
            ax_p.plot(xs, [r["mean_final_progress"] for r in run["rounds"]], marker="o", label=key)
        for a, label in ((ax, "success rate (ground truth)"), (ax_p, "mean final progress (ground truth)")):
            a.set_xlabel("SPIRAL round")
            a.set_ylabel(label)
            a.set_ylim(-0.02, 1.02)
            a.set_xticks(sorted({r["round"] for run in runs.values() for r in run["rounds"]}))
        ax.set_title(task)
        ax_p.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(out_dir / f"spiral_{task}.png", dpi=120)
        plt.close(fig)
