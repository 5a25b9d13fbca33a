"""benchmarks/spiral_state.py: strict config, a tiny end-to-end run with its labelled table and plot."""

from __future__ import annotations

import dataclasses
import json

import pytest
import yaml

from agents.state_policy import LABEL
from benchmarks import spiral_state as bench
from sarm2_env.errors import ConfigError

TINY = {
    "name": "tiny",
    "task": "PullPlug",
    "demos": 5,
    "bc_steps": 200,
    "sources": ["oracle", "sparse"],
    "spiral": {"rounds": 1, "rollouts_per_round": 2, "eval_episodes": 2, "finetune_steps": 20, "workers": 1},
}


def _write(tmp_path, **changes):
    data = {**TINY, "demo_cache": str(tmp_path / "cache"), "out": str(tmp_path / "out"), **changes}
    path = tmp_path / "bench.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_shipped_configs_load():
    for name in ("spiral_state_cpu", "spiral_state_cpu_aggregate"):
        cfg = bench.SpiralStateBench.load(bench.CONFIG_DIR / f"{name}.yaml").spiral_config()
        assert cfg.task == "SARM2/CleanWhiteboard-v0" and cfg.rounds == 3 and cfg.eval_episodes >= 50
    for name, task in (("spiral_state_pullplug", "PullPlug"), ("spiral_state_whiteboard", "CleanWhiteboard")):
        lift = bench.SpiralStateBench.load(bench.CONFIG_DIR / f"{name}.yaml").spiral_config()
        assert lift.task == f"SARM2/{task}-v0" and lift.retrain and lift.advantage == "outcome" and lift.explore_noise
    figure4 = bench.SpiralStateBench.load(bench.CONFIG_DIR / "spiral_state_whiteboard_rm2.yaml")
    assert figure4.spiral_config().adapt_reward_model and set(figure4.sources) >= {"sarm2", "robometer_lite"}
    assert figure4.spiral_config().eval_episodes >= 50 and "robometer_lite" in figure4.checkpoints
    gated = bench.SpiralStateBench.load(bench.CONFIG_DIR / "spiral_state_whiteboard_gate.yaml")
    assert gated.spiral_config() == dataclasses.replace(figure4.spiral_config(), success_gate=True)
    assert gated.sources == figure4.sources and gated.checkpoints == figure4.checkpoints
    seeds = bench.SpiralStateBench.load(bench.CONFIG_DIR / "spiral_state_whiteboard_seeds.yaml")
    assert seeds.spiral_config() == dataclasses.replace(gated.spiral_config(), train_seeds=3)
    assert tuple(seeds.sources) == ("sarm2", "sparse")
    recap = bench.SpiralStateBench.load(bench.CONFIG_DIR / "spiral_state_whiteboard_recap.yaml")
    recap_update = dataclasses.replace(gated.spiral_config().update, rule="recap", positive_fraction=0.3)
    assert recap.spiral_config() == dataclasses.replace(gated.spiral_config(), update=recap_update, success_gate=False)
    residual = bench.SpiralStateBench.load(bench.CONFIG_DIR / "spiral_state_whiteboard_residual.yaml").spiral_config()
    paired = ("task", "rollouts_per_round", "eval_episodes", "explore_noise", "adapt_steps", "adapt_lr_scale", "seed")
    assert all(getattr(residual, f) == getattr(gated.spiral_config(), f) for f in paired)  # paired on the seeds
    assert residual.update.rule == "residual_ac" and residual.adapt_reward_model and not residual.success_gate
    assert tuple(recap.sources) == ("sarm2",)
    focused = bench.SpiralStateBench.load(bench.CONFIG_DIR / "spiral_state_whiteboard_noink.yaml")
    assert focused.spiral_config() == dataclasses.replace(gated.spiral_config(), eval_episodes=100)
    assert focused.policy_config().ignore_fields == ("ink_remaining",) and "robometer_lite" not in focused.sources
    folding = bench.SpiralStateBench.load(bench.CONFIG_DIR / "spiral_state_foldshorts.yaml")
    assert folding.spiral_config().task == "SARM2/FoldShorts-v0" and folding.spiral_config().success_gate
    fine_tuned = bench.SpiralStateBench.load(bench.CONFIG_DIR / "spiral_state_foldshorts_ft.yaml")
    assert fine_tuned.spiral_config() == folding.spiral_config()  # paired with the SARM2 run on the same seeds
    assert (fine_tuned.demos, fine_tuned.bc_steps, fine_tuned.action_noise) == (
        folding.demos,
        folding.bc_steps,
        folding.action_noise,
    )
    assert fine_tuned.sources == ("robometer_lite",) and "robometer_lite" in fine_tuned.checkpoints


def test_unknown_keys_are_errors(tmp_path):
    with pytest.raises(ConfigError, match="unknown key"):
        bench.SpiralStateBench.load(_write(tmp_path, colour="red"))
    with pytest.raises(ConfigError, match="spiral"):
        bench.SpiralStateBench.load(_write(tmp_path, spiral={"round": 2})).spiral_config()
    with pytest.raises(ConfigError, match="`policy`: .*unknown keys \\['hiden'\\]"):
        bench.SpiralStateBench.load(_write(tmp_path, policy={"hiden": 3})).policy_config()
    with pytest.raises(ConfigError, match="`kind` must be 'spiral_state'"):
        bench.SpiralStateBench.load(_write(tmp_path, kind="spiral"))


def test_tiny_run_writes_a_labelled_table_and_a_plot(tmp_path, capsys):
    from benchmarks.run import main as run_main

    path = _write(tmp_path, kind="spiral_state")
    assert run_main(["--config", str(path), "--set", "spiral.rounds=2"]) == 2  # only --name applies
    assert "takes only --name" in capsys.readouterr().err
    assert run_main(["--config", str(path), "--name", "tiny_run"]) == 0  # benchmarks/run.py hands it over
    out = tmp_path / "out" / "tiny_run"
    summary = (out / "summary.md").read_text()
    assert LABEL in summary and "| oracle |" in summary and "| sparse |" in summary
    assert (out / "success.png").stat().st_size > 0
    results = json.loads((out / "results.json").read_text())
    assert set(results["curves"]) == {"oracle", "sparse"}
    assert summary in capsys.readouterr().out
    changed = _write(tmp_path, kind="spiral_state", policy={"hidden": 64})  # resumed with another pi_0 recipe
    assert run_main(["--config", str(changed), "--name", "tiny_run"]) == 2
    assert "pi_0 was trained with" in capsys.readouterr().err


def test_the_summary_says_how_rollouts_were_explored_and_weighted(tmp_path):
    plain = bench.SpiralStateBench.load(_write(tmp_path)).spiral_config()
    assert bench._update_line(plain) == ""
    spiral = {
        **TINY["spiral"],
        "explore_noise": 0.015,
        "rollout_share": 0.5,
        "drop_stalled_tail": True,
        "advantage": "outcome",
    }
    cfg = bench.SpiralStateBench.load(_write(tmp_path, spiral=spiral)).spiral_config()
    line = bench._update_line(cfg)
    assert line.startswith("Rollouts explore with one N(0, 0.015 rad) offset") and "50 % of every" in line
    assert "after its relabelled progress last rose" in line and "outcome advantages" in line
    assert "only the planning frames" in line and "trained afresh" not in line
    cfg = bench.SpiralStateBench.load(_write(tmp_path, spiral={**spiral, "retrain": True})).spiral_config()
    line = bench._update_line(cfg)
    assert "every frame is cloned" in line and "trained afresh on the demos and the weighted rollouts" in line
    assert "RECAP" not in line
    recap = {**spiral, "retrain": True, "update": {"rule": "recap", "positive_fraction": 0.25}}
    line = bench._update_line(bench.SpiralStateBench.load(_write(tmp_path, spiral=recap)).spiral_config())
    assert "labels samples by outcome advantages" in line and 'top 25 % of the round\'s advantages "positive"' in line


def test_the_summary_describes_the_residual_actor_critic_and_its_rounds(tmp_path):
    spiral = {
        **TINY["spiral"],
        "explore_noise": 0.02,
        "retrain": True,  # read only by the weighting rules: not described
        "drop_stalled_tail": True,
        "update": {"rule": "residual_ac", "residual": {"best_of_k": 4}},
    }
    line = bench._update_line(bench.SpiralStateBench.load(_write(tmp_path, spiral=spiral)).spiral_config())
    assert line.startswith("Residual actor-critic") and "the best of 4 candidates" in line
    assert "the critics learn from it" in line and "cloned" not in line and "afresh" not in line
    spiral["update"] = {"rule": "residual_ac", "residual": {"best_of_k": 1}}
    line = bench._update_line(bench.SpiralStateBench.load(_write(tmp_path, spiral=spiral)).spiral_config())
    assert "the actor's plan executed as it is (no best-of-K)" in line and "candidates" not in line
    fitted = {"transitions": 120, "critic_loss": 0.000412, "actor_q": 0.5, "residual_rms": None}
    curves = {"sarm2": [{}, {"round": 1, "update": {"residual": fitted}}], "sparse": [{}, {"round": 1, "update": {}}]}
    lines = bench._residual_lines(curves)
    assert lines[-1] == "| sarm2 | 1 | 120 | 0.000412 | 0.5 | – |" and not any("| sparse |" in x for x in lines)
    assert bench._residual_lines({"sparse": curves["sparse"]}) == []


def test_the_summary_pairs_the_last_round_with_pi0_on_the_same_seeds():
    def record(successes):
        return {"per_episode": [{"seed": 100 + i, "success": ok} for i, ok in enumerate(successes)]}

    pi0 = record([True, True, False, False, False, False])
    curves = {"sparse": [pi0, record([False] * 6), record([True, False, True, True, True, False])]}
    row = bench._paired_lines(curves)[-1]
    # seeds 102-104 gained, 101 lost: 4 discordant pairs, p = 2 * (1 + 4) / 16
    assert row == "| sparse | 3 | 1 | +2 | 0.625 |"
    curves["sparse"][-1] = record([True, True, True, True, True, True])
    assert bench._paired_lines(curves)[-1] == "| sparse | 4 | 0 | +4 | 0.125 |"
    curves["sparse"] = [record([False] * 12), record([True] * 12)]
    assert bench._paired_lines(curves)[-1] == "| sparse | 12 | 0 | +12 | < 0.001 |"
    # With another source beside sparse success, each is also paired with sparse success's last policy.
    curves = {"sarm2": [pi0, record([True, False, True, True, False, False])], "sparse": [pi0, record([True] * 6)]}
    lines = bench._paired_lines(curves)
    assert lines[-1] == "| sarm2 | 0 | 3 | -3 | 0.250 |" and sum("| sarm2 |" in line for line in lines) == 2


def test_the_summary_compares_rm1_with_rm2_where_a_model_was_adapted(tmp_path):
    cfg = bench.SpiralStateBench.load(_write(tmp_path, spiral={**TINY["spiral"], "adapt_reward_model": True}))
    assert "adapted once (RM1 -> RM2" in bench._update_line(cfg.spiral_config())

    def agreement(corr, mae):
        return {"final_corr": corr, "final_mae": mae}

    rm1_round = {"round": 1, "update": {"reward_agreement": agreement(0.48, 0.23)}}
    adaptation = {"rollouts": 50, "successes": 9, "adapt_seconds": 138.2}
    rm2_round = {
        "round": 2,
        "update": {
            "reward_model": "RM2",
            "reward_agreement": agreement(0.80, 0.21),
            "reward_agreement_rm1": agreement(0.20, 0.30),
            "adaptation": adaptation,
        },
    }
    lines = bench._adaptation_lines({"sarm2": [{}, rm1_round, rm2_round], "sparse": [{}, rm1_round]})
    assert lines[-1] == "| sarm2 | 2 | 0.20 | 0.80 | 0.30 | 0.21 | 50 (9 successes), 138 s |"
    assert sum(line.startswith("| sarm2 | ") for line in lines) == 1  # round 1 used RM1: no row
    assert bench._adaptation_lines({"sparse": [{}, rm1_round]}) == []  # nothing adapted: no table


def test_a_missing_checkpoint_is_an_error_before_any_demo_is_collected(tmp_path, capsys):
    missing = tmp_path / "rm1"
    path = _write(tmp_path, sources=["robometer_lite"], checkpoints={"robometer_lite": str(missing)})
    assert bench.main(["--config", str(path)]) == 2
    assert f"no checkpoint at '{missing}'" in capsys.readouterr().err
    assert not (tmp_path / "cache").exists() and not (tmp_path / "out").exists()


def test_the_summary_reports_the_success_gate_per_round(tmp_path):
    cfg = bench.SpiralStateBench.load(_write(tmp_path, spiral={**TINY["spiral"], "success_gate": True}))
    assert "calibrated on round 1's annotated rollouts" in bench._update_line(cfg.spiral_config())
    fixed = {**TINY["spiral"], "success_gate": True, "success_threshold": 0.8}
    assert "progress at 0.8;" in bench._update_line(
        bench.SpiralStateBench.load(_write(tmp_path, spiral=fixed)).spiral_config()
    )
    gate = {
        "threshold": 0.647,
        "judged_successes": 15,
        "true_successes": 9,
        "precision": 0.6,
        "recall": 1.0,
        "calibration": {"calibrated": True},
    }
    gated = {"round": 1, "update": {"success_gate": gate}}
    lines = bench._gate_lines({"sarm2": [{}, gated], "sparse": [{}, {"round": 1, "update": {}}]})
    assert lines[-1] == "| sarm2 | 1 | 0.65 (calibrated) | 15 | 9 | 0.60 | 1.00 |" and len(lines) == 6
    none_judged = {**gate, "judged_successes": 0, "precision": None}
    for calibration, basis in (
        ({"calibrated": False, "rollouts": 0}, "set"),
        ({"calibrated": False, "rollouts": 50}, "fallback"),
    ):
        row = bench._gate_lines(
            {"sarm2": [{}, {"round": 2, "update": {"success_gate": {**none_judged, "calibration": calibration}}}]}
        )[-1]
        assert row == f"| sarm2 | 2 | 0.65 ({basis}) | 0 | 9 | – | 1.00 |"
    assert bench._gate_lines({"sparse": [{}, {"round": 1, "update": {}}]}) == []


def test_the_summary_counts_training_seeds_where_policies_were_retrained():
    def member(successes, k):
        return {"member": k, "per_episode": [{"seed": 100 + i, "success": ok} for i, ok in enumerate(successes)]}

    def policy(*rows):
        return {**member(rows[0], 0), "members": [member(row, k) for k, row in enumerate(rows)]}

    n = 40
    pi0 = policy([True] * 10 + [False] * 30, [True] * 14 + [False] * 26)  # 10 and 14 of 40
    sparse = policy([True] * 20 + [False] * 20, [True] * 20 + [False] * 20)
    sarm2 = policy([True] * 24 + [False] * 16, [True] * 30 + [False] * 10)
    lines = bench._seed_lines({"sarm2": [pi0, sarm2], "sparse": [pi0, sparse]})
    assert "trained 2 times on the same data" in lines[1]
    row = next(line for line in lines if line.startswith("| sarm2 | 12.0/40 (10-14)"))
    assert "| 27.0/40 (24-30) [" in row
    gaps = [line for line in lines if line.startswith("| sarm2 | +")]
    # sarm2 27/40 against pi_0 12/40: +37.5 pp; against sparse 20/40: +17.5 pp
    assert gaps and gaps[0].startswith("| sarm2 | +37.5 pp [") and "| +17.5 pp [" in gaps[0]
    assert next(line for line in lines if line.startswith("| sparse | +")).endswith("| – |")
    assert bench._seed_lines({"sparse": [member([True] * n, 0), member([True] * n, 0)]}) == []  # one seed: none


def test_the_summary_names_the_state_fields_the_policy_ignores(tmp_path):
    assert bench._inputs_note(bench.SpiralStateBench.load(_write(tmp_path))) == ""
    cfg = bench.SpiralStateBench.load(_write(tmp_path, policy={"ignore_fields": ["socket_free/quat"]}))
    assert cfg.policy_config().ignore_fields == ("socket_free/quat",) and cfg.policy_config().steps == TINY["bc_steps"]
    assert bench._inputs_note(cfg) == ", not reading the state's `socket_free/quat`"
