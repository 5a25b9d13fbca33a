"""The benchmark harness: strict configs, an end-to-end tiny run, caching/resume, failure isolation."""

from __future__ import annotations

import json

import numpy as np
import pytest

from benchmarks.bench_config import load_config
from rewards.encoders import DEFAULT_REWARD_ENCODER
from sarm2_env.errors import ConfigError, UnknownNameError

TINY = [
    "--tasks", "CleanWhiteboard",
    "--set", "encoder=tiny", "--set", "text_encoder=tiny-hash",
    "--set", "data.train_demos=2", "--set", "data.heldout_demos=1", "--set", "data.heldout_rollouts=2",
    "--set", "data.image_size=32", "--set", "train.preset=tiny", "--set", "train.steps=4",
    "--set", "train.eval_every=4", "--set", "data.motion_controls=1", "--set", "data.motion_negatives=1",
    "--set", "data.robustness_episodes=1", "--set", "data.robustness_pose_range=2", "--no-progress",
]  # fmt: skip


def test_shipped_configs_load_and_are_strict(tmp_path) -> None:
    for name in ("quick", "full"):
        config = load_config(name)
        assert config.name == name and "sarm2" in config.backends and config.tasks == "all"
        assert config.encoder == DEFAULT_REWARD_ENCODER  # the shipped checkpoint's encoder: the measured winner
    with pytest.raises(ConfigError, match="'trian' \\(did you mean 'train'\\?\\)"):
        bad = tmp_path / "bad.yaml"
        bad.write_text("trian: {steps: 3}\nbackends: [sarm2]\n")
        load_config(str(bad))
    assert load_config("quick", {"vlm.kind": "local", "vlm.path": "/m"}).vlm == {"kind": "local", "path": "/m"}
    with pytest.raises(ConfigError, match="unknown key 'data.size'"):
        load_config("quick", {"data.size": 3})
    with pytest.raises(UnknownNameError, match="sarm2"):
        load_config("quick", {"backends": ["sarm3"]})
    with pytest.raises(ConfigError, match="no config"):
        load_config("nope")
    with pytest.raises(UnknownNameError):
        load_config("quick", {"tasks": ["FoldPants"]}).task_ids()


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    from benchmarks.run import main

    root = tmp_path_factory.mktemp("bench")
    args = [
        *TINY,
        "--set",
        f"data.root={root / 'data'}",
        "--set",
        f"out={root / 'results'}",
        "--name",
        "t",
        "--backends",
        "sarm2,sarm2_no_stage,time_linear,oracle,sparse,gvl",
    ]
    assert main(args) == 0
    return root, args


def test_end_to_end_outputs(first_run) -> None:
    root, _ = first_run
    run = root / "results" / "t"
    results = json.loads((run / "results.json").read_text())
    assert results["encoder"]["name"] == "tiny" and "test only" in results["encoder"]["label"]
    assert "test only" in results["backends"]["sarm2"]  # the tiny encoder is labelled wherever it appears
    table = results["table"]
    for backend in ("sarm2", "sarm2_no_stage", "time_linear", "oracle", "sparse"):
        for split in ("heldout_demos", "heldout_rollouts"):
            assert np.isfinite(table[backend][split]["overall"]["value_mse_macro"])
    assert table["oracle"]["heldout_rollouts"]["overall"]["value_mse_macro"] == 0.0
    assert "no VLM configured" in results["skipped"]["gvl"]
    assert results["headline"]["heldout_demos"]["baseline"] is None  # no published baseline in this run
    rows = [r for r in results["rows"] if r["backend"] == "sarm2"]
    assert len(rows) == 3 and {r["set"] for r in rows} == {"heldout_demos", "heldout_rollouts"}
    summary = (run / "summary.md").read_text()
    assert "Headline" in summary and "gvl` skipped: no VLM configured" in summary
    csv_text = (run / "summary.csv").read_text()
    assert csv_text.startswith("backend,label,set,task,episodes,value_mse_macro")
    plots = {p.name for p in (run / "plots").iterdir()}
    assert {
        "curves_CleanWhiteboard.png",
        "rollouts_CleanWhiteboard.png",
        "confusion_sarm2.png",
        "experts_sarm2.png",
    } <= plots
    assert "sarm2" in results["controls"] and "static_flatness" in results["controls"]["sarm2"]
    for control in ("idle", "random", "play"):  # every backend scores the motion controls; the oracle gives physics
        assert 0.0 <= results["controls"]["sarm2"][f"motion_{control}_final"] <= 1.0
    assert results["controls"]["oracle"]["motion_idle_final"] == 0.0
    assert "play: final progress" in summary and "Motion controls" in summary
    assert "also train on 1 random-action and 1 arm-play episodes per task" in summary
    # SARM2 trains on the motion negatives (1 random + 1 play episode of the task); the others on demos only
    trained = json.loads((run / "checkpoints" / "sarm2" / "config.json").read_text())["training"]
    assert trained["negative_episodes"] == 2
    time_linear = json.loads((run / "checkpoints" / "time_linear" / "config.json").read_text())
    assert "negative_episodes" not in time_linear.get("training", {})
    assert len(results["confusion"]["sarm2"]) == 22
    # The robustness set: the first held-out demo and rollout again under jitter, reported apart from the tables.
    robust = results["robustness"]
    for split in ("heldout_demos", "heldout_rollouts"):
        assert robust["sarm2"][split]["episodes"] == 1 and np.isfinite(robust["sarm2"][split]["jittered_mse"])
        for reference in ("oracle", "time_linear"):  # they read no pixels: the same motion scores the same
            assert robust[reference][split]["jittered_mse"] == robust[reference][split]["nominal_mse"]
    nominal = table["sarm2"]["heldout_demos"]["tasks"]["SARM2/CleanWhiteboard-v0"]["value_mse_macro"]
    assert robust["sarm2"]["heldout_demos"]["nominal_mse"] == pytest.approx(nominal)  # its one held-out demo
    assert robust["sarm2"]["heldout_demos"]["jittered_mse"] != robust["sarm2"]["heldout_demos"]["nominal_mse"]
    assert "## Robustness: camera-pose and lighting jitter at 1" in summary
    # The wider-pose set: the same seeds with the objects' ranges doubled, paired by seed, reported apart.
    wide = results["robustness_poses"]
    for split in ("heldout_demos", "heldout_rollouts"):
        assert wide["sarm2"][split]["episodes"] == 1 and np.isfinite(wide["sarm2"][split]["jittered_mse"])
    # Each wider-pose episode is scored against its own ground truth: the oracle reads it exactly on rollouts.
    assert wide["oracle"]["heldout_rollouts"]["jittered_mse"] == 0.0
    assert wide["sarm2"]["heldout_demos"]["nominal_mse"] == pytest.approx(nominal)
    assert "## Robustness: object poses 2x the training range" in summary
    from sarm2_env.dataset import EpisodeDataset

    data_root = next((root / "data").iterdir())
    widened = EpisodeDataset(data_root / "poses2" / "heldout_demos")
    registered = EpisodeDataset(data_root / "heldout_demos")
    assert widened[0].seed == registered[0].seed and widened[0].extra["pose_range"] == 2.0
    first, twin = widened[0].action, registered[0].action  # the objects start elsewhere: the expert moves elsewhere
    assert first.shape[1:] == twin.shape[1:] and not np.array_equal(first[:20], twin[:20])


def test_rerun_skips_valid_stages_and_redoes_damaged_ones(first_run, caplog) -> None:
    from benchmarks.run import main

    root, args = first_run
    run = root / "results" / "t"
    before = (run / "predictions" / "sarm2.npz").read_bytes()
    (run / "predictions" / "sarm2_no_stage.npz").write_bytes(b"truncated")  # a corrupted cache file
    with caplog.at_level("INFO", logger="benchmarks"):
        assert main(args) == 0
    text = caplog.text
    assert "train sarm2: valid checkpoint found, skipped" in text
    assert "predict sarm2: cached predictions valid, skipped" in text
    assert "predict sarm2_no_stage: cached" not in text  # recomputed
    assert (run / "predictions" / "sarm2.npz").read_bytes() == before
    assert "0 written" in text  # no episode collected again
    caplog.clear()
    with caplog.at_level("INFO", logger="benchmarks"):
        assert main([*args, "--force", "train", "--backends", "time_linear"]) == 0
    assert "train time_linear: 2 demos" in caplog.text or "train time_linear: 1 demos" in caplog.text


def test_a_failing_backend_does_not_lose_the_others(first_run, monkeypatch) -> None:
    from benchmarks.run import main
    from rewards import registry

    monkeypatch.setitem(registry.REGISTRY, "exploding", "tests.benchmarks.fake_backends:ExplodingRewardModel")
    root, args = first_run
    assert main([*args, "--backends", "oracle,exploding", "--name", "boom"]) == 0
    results = json.loads((root / "results" / "boom" / "results.json").read_text())
    assert "simulated crash" in results["failures"]["exploding"]["error"]
    assert results["failures"]["exploding"]["stage"] == "predict"
    assert "oracle" in results["table"]
    assert "`exploding` FAILED in predict" in (root / "results" / "boom" / "summary.md").read_text()


def test_a_robustness_set_must_fit_inside_the_held_out_sets() -> None:
    with pytest.raises(ConfigError, match="robustness_episodes.*<= data.heldout_demos"):
        load_config("quick", {"data.robustness_episodes": 6})  # quick holds 5 held-out demos per task
    with pytest.raises(ConfigError, match="robustness_jitter"):
        load_config("quick", {"data.robustness_episodes": 2, "data.robustness_jitter": 0.0})
    with pytest.raises(ConfigError, match="robustness_jitter"):
        load_config("quick", {"data.robustness_episodes": 2, "data.robustness_jitter": 1.5})
    on = load_config("quick", {"data.robustness_episodes": 2})
    assert on.digest("data") != load_config("quick").digest("data")
    assert load_config("quick", {"data.robustness_jitter": 1.0}).digest("data") == load_config("quick").digest("data")
    plain = load_config("quick", {"data.robustness_episodes": 2})
    assert load_config("quick", {"data.robustness_episodes": 2, "data.robustness_pose_range": 1.0}) == plain
    with pytest.raises(ConfigError, match="robustness_pose_range.*must be a number in \\[1, 2\\]"):
        load_config("quick", {"data.robustness_episodes": 2, "data.robustness_pose_range": 2.5})
    with pytest.raises(ConfigError, match="set data.robustness_episodes > 0 too"):
        load_config("quick", {"data.robustness_pose_range": 2.0})


def test_train_overrides_name_registered_backends() -> None:
    from benchmarks.bench_config import load_config
    from sarm2_env.errors import UnknownNameError

    config = load_config("quick", {"backends": ["sarm2"]})  # quick.yaml overrides `sarm`, unselected here: fine
    assert config.train.overrides["sarm"]["steps"] == 300
    with pytest.raises(UnknownNameError, match="sarn"):
        load_config("quick", {"train.overrides": {"sarn": {"steps": 1}}})
