"""The SPIRAL benchmark (benchmarks/spiral_bench.py) end to end on a tiny config, and its config checks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from benchmarks.spiral_bench import (
    SpiralBenchConfig,
    best_rule,
    load_spiral_config,
    reward_agreement_lines,
    round_timing_lines,
    summary_markdown,
)
from sarm2_env.errors import ConfigError, UnknownNameError

TINY = {
    "name": "t",
    "kind": "spiral",
    "tasks": ["CleanWhiteboard"],
    "reward_sources": ["oracle", "sparse"],
    "update_rule": "rabc",
    "compare_rules": [],
    "demos": 2,
    "image_size": 32,
    "episode_steps": 15,
    "policy": {"encoder": "tiny", "text_encoder": "tiny-hash", "hidden": 32, "layers": 1, "batch_size": 16},
    "spiral": {
        "rounds": 1,
        "rollouts_per_round": 2,
        "eval_episodes": 2,
        "bc_steps": 5,
        "finetune_steps": 5,
        "num_envs": 1,
    },
}


def _write(tmp_path, **changes) -> str:
    data = {**TINY, "data_root": str(tmp_path / "data"), "out": str(tmp_path / "results"), **changes}
    path = tmp_path / "spiral_tiny.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


@pytest.mark.parametrize("rewards", ["online", "offline"])
def test_spiral_benchmark_runs_every_source_from_one_pi0_and_reports(tmp_path, rewards):
    from benchmarks.run import main

    # Adaptation is asked for, but the references (physics, nothing learned) have nothing to adapt: skipped.
    config = _write(tmp_path, spiral={**TINY["spiral"], "rewards": rewards, "adapt_reward_model": True})
    assert main(["--config", config, "--no-progress"]) == 0
    run = tmp_path / "results" / "t"
    results = json.loads((run / "spiral_results.json").read_text())
    runs = results["tasks"]["CleanWhiteboard"]
    assert set(runs) == {"oracle-rabc", "sparse-rabc"}
    r0 = [r["rounds"][0] for r in runs.values()]
    assert r0[0] == r0[1]  # the shared pi_0, evaluated once on the shared seeds
    assert all(len(r["rounds"]) == 2 and r["rounds"][1]["episodes"] == 2 for r in runs.values())
    summary = (run / "spiral_summary.md").read_text()
    assert "random-init encoder, test only" in summary and "| oracle | rabc |" in summary
    assert "One round on CleanWhiteboard (2 rollouts, relabel, update; mean of 2)" in summary
    update = runs["oracle-rabc"]["rounds"][1]["update"]
    assert update["round_seconds"] == pytest.approx(update["collect_seconds"] + update["update_seconds"])
    assert update["resumed_rollouts"] == 0
    assert (run / "plots" / "spiral_CleanWhiteboard.png").stat().st_size > 0
    # A rerun resumes from the workdirs: same numbers.
    assert main(["--config", config, "--no-progress"]) == 0
    assert json.loads((run / "spiral_results.json").read_text())["tasks"] == results["tasks"]


def test_reward_agreement_lines_compare_rm2_with_rm1():
    agreement = {"final_corr": 0.61, "frame_corr": 0.8, "mean_predicted_final": 0.5, "mean_true_final": 0.45}
    rm1 = {**agreement, "final_corr": -0.34}
    rounds = [{"round": 0, "update": {}}, {"round": 1, "update": {"reward_agreement": rm1}}]
    rounds.append({"round": 2, "update": {"reward_agreement": agreement, "reward_agreement_rm1": rm1}})
    results = {
        "tasks": {
            "CleanWhiteboard": {
                "sarm2-rabc": {"reward_source": "sarm2", "rounds": rounds},
                "oracle-rabc": {"reward_source": "oracle", "rounds": rounds},  # the physics: nothing to report
            }
        }
    }
    lines = reward_agreement_lines(results)
    assert [line.split(":")[0] for line in lines if line.startswith("- ")] == [
        "- CleanWhiteboard sarm2-rabc round 1",
        "- CleanWhiteboard sarm2-rabc round 2",
    ]
    assert "final-progress corr -0.34" in lines[2]
    assert "final-progress corr +0.61" in lines[3] and "RM1 on the same rollouts: final-progress corr -0.34" in lines[3]
    assert reward_agreement_lines({"tasks": {}}) == []


def test_best_rule_names_no_winner_in_a_tie():
    def run(*rates):
        return {"rounds": [{"success_rate": r} for r in rates]}

    config = SpiralBenchConfig.from_dict({**TINY, "reward_sources": ["sarm2"], "compare_rules": ["awr"]})
    tie = best_rule({"tasks": {"T": {"sarm2-rabc": run(0.0, 0.0), "sarm2-awr": run(0.0, 0.0)}}}, config)
    assert tie["rule"] is None and tie["tied"] == ["rabc", "awr"]
    win = best_rule({"tasks": {"T": {"sarm2-rabc": run(0.0, 0.2), "sarm2-awr": run(0.0, 0.1)}}}, config)
    assert win["rule"] == "rabc"
    results = {"tasks": {}, "wall_minutes": 1.0, "best_rule": tie}
    assert "No best update rule with SARM2 rewards: rabc, awr tie" in summary_markdown(results, config)


def test_round_times_leave_out_resumed_rounds():
    def run(*updates):
        return {"reward_source": "sarm2", "rounds": [{"update": {}}, *({"update": u} for u in updates)]}

    full = {"round_seconds": 300.0, "collect_seconds": 240.0, "update_seconds": 60.0, "resumed_rollouts": 0}
    resumed = {**full, "round_seconds": 61.0, "collect_seconds": 1.0, "resumed_rollouts": 30}
    results = {"tasks": {"CleanWhiteboard": {"a": run(full, resumed)}}}
    line = round_timing_lines(results, SpiralBenchConfig.from_dict(TINY))[0]
    assert "mean of 1): 5.0 min (collect 4.0, update 1.0)" in line


def test_spiral_config_is_strict(tmp_path):
    with pytest.raises(ConfigError, match="SPIRAL benchmark: unknown key"):
        SpiralBenchConfig.from_dict({**TINY, "round": 3})
    with pytest.raises(UnknownNameError, match="reward source"):
        SpiralBenchConfig.from_dict({**TINY, "reward_sources": ["sarm3"]})
    with pytest.raises(ConfigError, match="SPIRAL: unknown option"):
        SpiralBenchConfig.from_dict({**TINY, "spiral": {"roundz": 1}})
    with pytest.raises(UnknownNameError, match="update rule"):
        SpiralBenchConfig.from_dict({**TINY, "compare_rules": ["ppo"]})
    with pytest.raises(ConfigError, match="demo_skill"):
        SpiralBenchConfig.from_dict({**TINY, "demo_skill": [1.0, 1.2]})
    assert SpiralBenchConfig.from_dict({**TINY, "demo_skill": [1.0, 0.8]}).demo_skills == (1.0, 0.8)
    config = load_spiral_config(Path(_write(tmp_path)), {"spiral.rounds": 4, "demos": 3})
    assert config.spiral["rounds"] == 4 and config.demos == 3


def test_the_shipped_spiral_configs_load():
    from benchmarks.bench_config import CONFIG_DIR

    config = load_spiral_config(CONFIG_DIR / "spiral.yaml", {})
    assert config.tasks == ("FoldShorts", "CleanWhiteboard")
    assert set(config.reward_sources) == {"sarm2", "sparse", "robometer_lite", "oracle"}
    assert "residual_ac" in config.compare_rules
    assert config.spiral_config("rabc").eval_episodes >= 50
    cpu = load_spiral_config(CONFIG_DIR / "spiral_cpu.yaml", {})
    assert cpu.spiral_config("rabc").relabel.chunk == cpu.policy_config().chunk  # advantages over one chunk
