"""SPIRAL's Figure 4 in simulation on 2 CPU cores, with the state-policy stand-in for ``pi_0``.

    python benchmarks/spiral_state.py [--config benchmarks/configs/spiral_state_cpu.yaml]

One ``pi_0`` (:class:`agents.state_policy.StatePolicy`, labelled "state BC (sim-only stand-in for a VLA)"),
trained on the config's demo budget (calibrated with ``benchmarks/state_policy.py``), improved for ``rounds``
rounds by each reward source (a learned reward model scoring rendered frames at 1 Hz, the physics oracle, sparse
success) with the same update rule; every policy evaluated on the same held-out seeds with the simulator's
success (95 % Wilson interval). Round 1's rollouts are shared by every source. Resumable: rerun the same command.

Writes ``<out>/<name>/results.json``, ``summary.md`` (date and commit stamped) and ``success.png``.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import logging
import sys
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from sarm2_env.errors import ConfigError

log = logging.getLogger("benchmarks.spiral_state")
CONFIG_DIR = Path(__file__).resolve().parent / "configs"
#: The ``kind`` that makes ``benchmarks/run.py`` hand a config to this benchmark.
KIND = "spiral_state"


@dataclasses.dataclass(frozen=True)
class SpiralStateBench:
    """The benchmark's YAML (unknown keys are errors)."""

    name: str
    task: str
    demos: int
    sources: tuple[str, ...]
    kind: str = KIND
    action_noise: float = 0.02
    bc_steps: int = 6000
    checkpoints: dict[str, str] = dataclasses.field(default_factory=dict)
    #: ``StatePolicyConfig`` overrides of ``pi_0`` (every round's policy is trained with ``pi_0``'s settings)
    policy: dict[str, Any] = dataclasses.field(default_factory=dict)
    spiral: dict[str, Any] = dataclasses.field(default_factory=dict)
    demo_cache: str = "results/state_policy"
    out: str = "results"

    @classmethod
    def load(cls, path: str | Path) -> SpiralStateBench:
        """The benchmark from YAML; unknown keys are a :class:`ConfigError` naming them."""
        data = yaml.safe_load(Path(path).read_text()) or {}
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"{path}: unknown key(s) {unknown}; known: {sorted(known)}")
        data["sources"] = tuple(data.get("sources", ()))
        if not data["sources"]:
            raise ConfigError(f"{path}: `sources` must name at least one reward source")
        if data.get("kind", KIND) != KIND:
            raise ConfigError(f"{path}: `kind` must be {KIND!r} for this benchmark; got {data['kind']!r}")
        return cls(**data)

    def policy_config(self):
        """``pi_0``'s :class:`agents.state_policy.StatePolicyConfig`: ``bc_steps`` and the ``policy`` overrides."""
        from agents.state_policy import StatePolicyConfig

        try:
            return StatePolicyConfig.from_dict({"steps": self.bc_steps, **self.policy})
        except ConfigError as exc:
            raise ConfigError(f"`policy`: {exc}") from exc

    def spiral_config(self):
        """The :class:`agents.state_spiral.StateSpiralConfig` of one task's run."""
        from agents.relabel import RelabelConfig
        from agents.state_spiral import StateSpiralConfig
        from agents.updates import UpdateConfig
        from tasks import resolve_task_id

        spiral = dict(self.spiral)
        if isinstance(spiral.get("relabel"), dict):
            spiral["relabel"] = RelabelConfig(**spiral["relabel"])
        if isinstance(spiral.get("update"), dict):
            spiral["update"] = UpdateConfig(**spiral["update"])
        try:
            return StateSpiralConfig(task=resolve_task_id(self.task), **spiral)
        except TypeError as exc:
            raise ConfigError(f"`spiral`: {exc}") from exc


def _plot(curves: dict[str, list[dict[str, Any]]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for source, curve in curves.items():
        rounds = [c["round"] for c in curve]
        rate = [100 * c["success_rate"] for c in curve]
        lo = [100 * c["ci95"][0] for c in curve]
        hi = [100 * c["ci95"][1] for c in curve]
        ax.plot(rounds, rate, marker="o", label=source)
        ax.fill_between(rounds, lo, hi, alpha=0.15)
    ax.set_xlabel("SPIRAL round")
    ax.set_ylabel("success (%)")
    ax.set_ylim(0, 100)
    ax.set_xticks(sorted({c["round"] for curve in curves.values() for c in curve}))
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _update_line(config: Any) -> str:
    """How the rollouts were explored and weighted, when the config departs from the plain rollouts."""
    parts = []
    residual = config.update.rule == "residual_ac"
    if residual:
        ac = config.update.residual
        acting = (
            f"the best of {ac.best_of_k} candidates offset like the exploration chosen by the critics when acting"
            if ac.best_of_k > 1
            else "the actor's plan executed as it is (no best-of-K)"
        )
        parts.append(
            f"residual actor-critic (SPIRAL's released update) on the frozen `pi_0`: a residual of at most "
            f"{ac.residual_limit:g} demo standard deviations on each executed plan, {ac.critics} critics trained "
            f"TD3-style on the relabelled progress gains of executed chunks ({config.finetune_steps} steps per "
            f"round, carried from round to round), {acting}"
        )
    if config.explore_noise > 0:
        cloned = (
            "the critics learn from it"
            if residual
            else "every frame is cloned"
            if config.retrain
            else "only the planning frames are cloned"
        )
        parts.append(
            f"rollouts explore with one N(0, {config.explore_noise:g} rad) offset per executed plan on the arm joints "
            f"the demos move, and {cloned}"
        )
    if config.drop_stalled_tail and not residual:
        parts.append("nothing a rollout did after its relabelled progress last rose is cloned")
    if config.advantage == "outcome" and not residual:
        how = "labels samples" if config.update.rule == "recap" else "weights"
        parts.append(f"the update {how} by outcome advantages (final progress minus a cross-fitted state value)")
    if config.update.rule == "recap":
        parts.append(
            "RECAP: every kept sample is cloned at weight 1 with its advantage indicator (the top "
            f'{100 * config.update.positive_fraction:.0f} % of the round\'s advantages "positive") as an input '
            'of the policy, which acts as "positive"'
        )
    if config.success_gate:
        how = (
            f"at {config.success_threshold:g}"
            if config.success_threshold is not None
            else "at a threshold calibrated on round 1's annotated rollouts for the model that relabels"
        )
        parts.append(
            f"only the rollouts a source judges successful are cloned (final relabelled progress {how}; judged "
            "failures count as final progress 0)"
        )
    if config.rollout_share is not None and not residual:
        parts.append(f"the rollouts make up {100 * config.rollout_share:.0f} % of every fine-tuning batch")
    if config.aggregate:
        parts.append("each update uses every round's rollouts so far")
    if config.adapt_reward_model:
        parts.append(
            "each learned reward model is adapted once (RM1 -> RM2, the paper's RM (FT) for a baseline) on round 1's "
            f"rollouts, annotated from the simulator's progress ({config.adapt_steps} steps at "
            f"{config.adapt_lr_scale:g}x its learning rate), and RM2 relabels rounds 2 on (round 1 uses RM1)"
        )
    if config.retrain and not residual:
        parts.append(
            "each round's policy is trained afresh on the demos and the weighted rollouts (inputs standardised "
            "over both), not fine-tuned"
        )
    text = "; ".join(parts)
    return f"{text[:1].upper()}{text[1:]}. " if parts else ""


def _paired_lines(curves: dict[str, list[dict[str, Any]]]) -> list[str]:
    """Each source's last policy against ``pi_0`` on the same evaluation seeds (and, when sparse success ran,
    against sparse success's last policy): the episodes only one of them solves, and the exact McNemar p-value of
    that difference."""
    lines = [
        "The last round against `pi_0`, paired on the same evaluation seeds (episodes only the last policy solves, "
        "episodes only `pi_0` solves; exact McNemar p-value):",
        "",
        "| reward source | gained | lost | net | p |",
        "|---|---|---|---|---|",
    ]
    lines += [_paired_row(source, curve[-1], curve[0]) for source, curve in curves.items()]
    if "sparse" not in curves or len(curves) < 2:
        return lines
    lines += [
        "",
        "The last round against sparse success's last round, on the same seeds (episodes only the source's policy "
        "solves, episodes only sparse success's solves):",
        "",
        "| reward source | gained | lost | net | p |",
        "|---|---|---|---|---|",
    ]
    baseline = curves["sparse"][-1]
    return lines + [_paired_row(s, curve[-1], baseline) for s, curve in curves.items() if s != "sparse"]


def _paired_row(source: str, policy: dict[str, Any], baseline: dict[str, Any]) -> str:
    """One row of a paired table: the seeds ``policy`` solves and ``baseline`` does not, the reverse, and the
    exact McNemar p-value (over the seeds both were evaluated on)."""
    from sarm2_env.stats import mcnemar_exact

    first = {e["seed"]: e["success"] for e in baseline["per_episode"]}
    last = {e["seed"]: e["success"] for e in policy["per_episode"]}
    gained = sum(last[k] and not first[k] for k in first if k in last)
    lost = sum(first[k] and not last[k] for k in first if k in last)
    pvalue = mcnemar_exact(gained, lost)
    shown = f"{pvalue:.3f}" if pvalue >= 0.001 else "< 0.001"
    return f"| {source} | {gained} | {lost} | {gained - lost:+d} | {shown} |"


def _inputs_note(bench: SpiralStateBench) -> str:
    """What of the state the policy does not read, when the config says (``policy.ignore_fields``)."""
    ignored = bench.policy_config().ignore_fields
    return ", not reading the state's " + ", ".join(f"`{name}`" for name in ignored) if ignored else ""


def summary_markdown(
    bench: SpiralStateBench, config: Any, curves: dict[str, list[dict[str, Any]]], started_at: str
) -> str:
    """The state-policy SPIRAL results as Markdown: success per round with Wilson intervals."""
    from agents.state_policy import LABEL
    from benchmarks.report import _git_revision, short_revision

    now = _git_revision()
    stamp = f"{dt.date.today().isoformat()}, commit {short_revision(now)}"
    if now != started_at:  # a resumed run: say which code collected what
        stamp += f" (this invocation started at {short_revision(started_at)}; earlier rounds may come from older runs)"
    short = config.task.split("/")[-1]
    lines = [
        f"# SPIRAL on {short}: `{bench.name}`",
        "",
        f"{stamp}. Policy: {LABEL}, `pi_0` from {bench.demos} expert demos (DART noise {bench.action_noise:g} rad)"
        f"{_inputs_note(bench)}. "
        f"Update: {config.update.rule}; {config.rollouts_per_round} rollouts and {config.eval_episodes} evaluation "
        f"episodes per round (the same evaluation seeds for every policy); rewards queried at every "
        f"{config.relabel.query_every}th frame. Round 1's rollouts (of the shared `pi_0`) are relabelled by every "
        "source. " + _update_line(config) + "Cells: successes / episodes (95 % Wilson interval), mean final "
        "ground-truth progress.",
        "",
        "| reward source | " + " | ".join(f"pi_{r}" for r in range(config.rounds + 1)) + " |",
        "|---|" + "---|" * (config.rounds + 1),
    ]
    for source, curve in curves.items():
        cells = [
            f"{c['successes']}/{c['episodes']} ({100 * c['ci95'][0]:.0f}-{100 * c['ci95'][1]:.0f} %) · "
            f"{c['mean_final_progress']:.2f}"
            for c in curve
        ]
        lines.append(f"| {source} | " + " | ".join(cells) + " |")
    lines += ["", *_paired_lines(curves)]
    lines += [
        "",
        "Per round, how the source's relabelled progress agreed with the simulator's on that round's rollouts "
        "(correlation over frames, correlation of final progress across rollouts), and the round's time on 2 cores "
        "(collect / relabel + update / evaluate, seconds; round 1's collection is paid once, by the first source):",
        "",
        "| reward source | round | frame corr | final corr | final MAE | rollout success | collect | update | eval |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for source, curve in curves.items():
        for c in curve[1:]:
            u, a = c["update"], c["update"]["reward_agreement"]
            model = " (RM2)" if u.get("reward_model") == "RM2" else ""
            lines.append(
                f"| {source}{model} | {c['round']} | {_cell(a['frame_corr'])} | {_cell(a['final_corr'])} "
                f"| {a['final_mae']:.2f} | {100 * u['rollout_success_rate']:.0f} % | {u['collect_seconds']:.0f} "
                f"| {u['relabel_seconds'] + u['update_seconds']:.0f} | {c['eval_seconds']:.0f} |"
            )
    extra = _seed_lines(curves) + _gate_lines(curves) + _adaptation_lines(curves) + _residual_lines(curves)
    return "\n".join(lines + extra) + "\n"


def _seed_lines(curves: dict[str, list[dict[str, Any]]]) -> list[str]:
    """With ``train_seeds`` > 1: every policy's mean success over its retrained members with an interval that
    counts the training's noise besides the evaluation's, and each source's last round against ``pi_0`` and
    against sparse success the same way (paired on the evaluation seeds)."""
    if not any("members" in c for curve in curves.values() for c in curve):
        return []
    k = len(next(c["members"] for curve in curves.values() for c in curve if "members" in c))
    rounds = max(len(curve) for curve in curves.values())
    lines = [
        "",
        f"Over training seeds: every policy above was trained {k} times on the same data from other "
        "initialisations (the first, whose cells are above, rolls out the next round). A cell is the mean "
        "successes of those policies / episodes (lowest-highest), and the 95 % interval of the mean success rate "
        "from a bootstrap over the policies and the evaluation seeds, so it counts the training's noise besides "
        "the evaluation's:",
        "",
        "| reward source | " + " | ".join(f"pi_{r}" for r in range(rounds)) + " |",
        "|---|" + "---|" * rounds,
    ]
    for source, curve in curves.items():
        lines.append(f"| {source} | " + " | ".join(_seed_cell(c) for c in curve) + " |")
    lines += [
        "",
        "The last round's mean success rate minus `pi_0`'s and minus sparse success's last round's, percentage "
        "points (95 % interval, the same bootstrap, paired on the evaluation seeds):",
        "",
        "| reward source | vs `pi_0` | vs sparse success |",
        "|---|---|---|",
    ]
    for source, curve in curves.items():
        vs_sparse = "–" if source == "sparse" or "sparse" not in curves else _seed_gap(curve[-1], curves["sparse"][-1])
        lines.append(f"| {source} | {_seed_gap(curve[-1], curve[0])} | {vs_sparse} |")
    return lines


def _member_successes(record: dict[str, Any], seeds: list[int] | None = None) -> np.ndarray:
    """``(members, episodes)`` successes of a policy's retrained members (one row without members), on ``seeds``
    (default: member 0's evaluation seeds)."""
    members = record.get("members", [record])
    seeds = seeds or [e["seed"] for e in members[0]["per_episode"]]
    table = [{e["seed"]: e["success"] for e in m["per_episode"]} for m in members]
    return np.array([[row[s] for s in seeds] for row in table], dtype=float)


def _seed_cell(record: dict[str, Any]) -> str:
    """``mean/episodes (lowest-highest) [95 % interval]`` over a policy's retrained members."""
    from sarm2_env.stats import seed_bootstrap_interval

    wins = _member_successes(record)
    per_member = wins.sum(axis=1)
    lo, hi = seed_bootstrap_interval(wins)
    return (
        f"{per_member.mean():.1f}/{wins.shape[1]} ({per_member.min():.0f}-{per_member.max():.0f}) "
        f"[{100 * lo:.0f}-{100 * hi:.0f} %]"
    )


def _seed_gap(record: dict[str, Any], baseline: dict[str, Any]) -> str:
    """``+x.x pp [lo, hi]``: ``record``'s mean success rate over its members minus ``baseline``'s, on the seeds
    both were evaluated on."""
    from sarm2_env.stats import seed_bootstrap_interval

    first = {e["seed"] for e in baseline.get("members", [baseline])[0]["per_episode"]}
    seeds = [e["seed"] for e in record.get("members", [record])[0]["per_episode"] if e["seed"] in first]
    a, b = _member_successes(record, seeds), _member_successes(baseline, seeds)
    lo, hi = seed_bootstrap_interval(a, b)
    return f"{100 * (a.mean() - b.mean()):+.1f} pp [{100 * lo:+.0f}, {100 * hi:+.0f}]"


def _gate_lines(curves: dict[str, list[dict[str, Any]]]) -> list[str]:
    """Where the success gate was on: per round, its threshold and how its judgement of that round's rollouts
    compared with the simulator's success."""
    rows = []
    for source, curve in curves.items():
        for c in curve[1:]:
            g = c["update"].get("success_gate")
            if g is None:
                continue
            cal = g["calibration"]
            basis = "calibrated" if cal["calibrated"] else "set" if not cal.get("rollouts") else "fallback"
            rows.append(
                f"| {source} | {c['round']} | {g['threshold']:.2f} ({basis}) | {g['judged_successes']} "
                f"| {g['true_successes']} | {_cell(g['precision'])} | {_cell(g['recall'])} |"
            )
    if not rows:
        return []
    return [
        "",
        "The success gate per round: the source's threshold, and its judgement of that round's rollouts against the "
        "simulator (judged successes are cloned; precision: the share of them that succeeded; recall: the share of "
        "successes judged so; fallback: round 1 held one class only, so nothing could be calibrated):",
        "",
        "| reward source | round | threshold | judged successes | true successes | precision | recall |",
        "|---|---|---|---|---|---|---|",
        *rows,
    ]


def _residual_lines(curves: dict[str, list[dict[str, Any]]]) -> list[str]:
    """Per round of the residual actor-critic: what it trained on and how far it moved from ``pi_0``."""
    rows = [
        f"| {source} | {c['round']} | {u['transitions']} | "
        + " | ".join("–" if u[k] is None else f"{u[k]:.3g}" for k in ("critic_loss", "actor_q", "residual_rms"))
        + " |"
        for source, curve in curves.items()
        for c in curve[1:]
        if (u := c["update"].get("residual"))
    ]
    if not rows:
        return []
    return [
        "",
        "Residual actor-critic per round: chunk transitions trained on, critic loss and actor Q (last tenth of the "
        "steps), and the residual's RMS in demo standard deviations (0: `pi_0` itself):",
        "",
        "| reward source | round | transitions | critic loss | actor Q | residual RMS |",
        "|---|---|---|---|---|---|",
        *rows,
    ]


def _cell(value: float | None) -> str:
    """A table cell: two decimals, or a dash where the value is undefined (a correlation with a constant side, a
    precision with nothing judged)."""
    return "–" if value is None else f"{value:.2f}"


def _adaptation_lines(curves: dict[str, list[dict[str, Any]]]) -> list[str]:
    """Where RM1 was adapted: the adaptation, and how RM1 and RM2 agreed with the simulator on each later
    round's rollouts (the same rollouts, the same query frames)."""
    rows = []
    for source, curve in curves.items():
        for c in curve[1:]:
            u = c["update"]
            if u.get("reward_model") != "RM2":
                continue
            rm1, rm2, ad = u["reward_agreement_rm1"], u["reward_agreement"], u["adaptation"]
            rows.append(
                f"| {source} | {c['round']} | {_cell(rm1['final_corr'])} | {_cell(rm2['final_corr'])} "
                f"| {rm1['final_mae']:.2f} | {rm2['final_mae']:.2f} | {ad['rollouts']} ({ad['successes']} successes), "
                f"{ad['adapt_seconds']:.0f} s |"
            )
    if not rows:
        return []
    return [
        "",
        "RM1 against RM2 on the same rollouts (final-progress correlation across rollouts and final MAE against the "
        "simulator; RM2 adapted on round 1's rollouts, annotated from the simulator's progress):",
        "",
        "| reward source | round | RM1 final corr | RM2 final corr | RM1 final MAE | RM2 final MAE | adapted on |",
        "|---|---|---|---|---|---|---|",
        *rows,
    ]


def main(argv: list[str] | None = None) -> int:
    """Run SPIRAL on the state-policy stand-in; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default=str(CONFIG_DIR / "spiral_state_cpu.yaml"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    try:
        bench = SpiralStateBench.load(args.config)
        bench.spiral_config()
    except (ConfigError, OSError) as exc:
        parser.error(str(exc))
    from sarm2_env.errors import SARM2Error

    try:
        text, _ = run_bench(bench)
    except SARM2Error as exc:  # a missing checkpoint, a changed config in the run's folder, ...
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(text)
    return 0


def run_bench(bench: SpiralStateBench) -> tuple[str, dict[str, list[dict[str, Any]]]]:
    """Run (or resume) the benchmark; returns its summary Markdown and every source's curve. Also what
    ``python benchmarks/run.py --config <name>`` runs for a ``kind: spiral_state`` config."""
    from agents.state_policy import StatePolicy
    from agents.state_spiral import REFERENCE_SOURCES, StateSpiral
    from benchmarks.report import _git_revision
    from benchmarks.state_policy import _demo_file, _load_demos, collect_demos
    from rewards import make_reward_model

    config = bench.spiral_config()
    policy_config = bench.policy_config()
    # The reward models first: a missing checkpoint is an error before any demo is collected or policy trained.
    models = {
        source: make_reward_model(source, checkpoint=bench.checkpoints.get(source, "default"), device="cpu")
        for source in bench.sources
        if source not in REFERENCE_SOURCES
    }
    started_at = _git_revision()
    out = Path(bench.out) / bench.name
    cache = Path(bench.demo_cache)
    log.info("%s", collect_demos(cache, config.task, bench.demos, bench.action_noise))
    demos = _load_demos(_demo_file(cache, config.task, bench.action_noise), config.task)[: bench.demos]
    pi0_path = out / "pi0"
    if (pi0_path / "config.json").exists():
        pi0 = StatePolicy.load(pi0_path, device="cpu")
        if pi0.config != policy_config:
            raise ConfigError(
                f"{pi0_path}: pi_0 was trained with {pi0.config.to_dict()}; the config now asks for "
                f"{policy_config.to_dict()} (use another `name`, or restore `bc_steps` / `policy`)"
            )
    else:
        pi0 = StatePolicy(policy_config, device="cpu")
        pi0.fit(demos, seed=0)
    with StateSpiral(config, pi0, demos, out, reward_models=models) as spiral:
        curves = spiral.run(bench.sources)
    text = summary_markdown(bench, config, curves, started_at)
    (out / "summary.md").write_text(text)
    _plot(curves, out / "success.png", f"SPIRAL, {config.task.split('/')[-1]}: {StatePolicy.label}")
    return text, curves


if __name__ == "__main__":
    raise SystemExit(main())
