"""The collect CLI: real expert episodes to disk and back, resume, and bad input."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

import tasks
from sarm2_env.constants import CAMERAS, PRIMITIVE_INDEX, STATE_DIM
from sarm2_env.dataset import EpisodeDataset
from sarm2_env.errors import ConfigError
from tasks.collect import SPLITS, SUITE_PRESETS, CollectConfig, SuiteConfig, collect, collect_suite, main


def test_collect_round_trip_and_resume(tmp_path):
    out = tmp_path / "ds"
    config = CollectConfig(tasks=("CleanWhiteboard",), episodes=1, skills=(1.0,), seed=3, image_size=32)
    assert collect(config, str(out), progress_bar=False) == {"written": 1, "skipped": 0}
    ds = EpisodeDataset(out, verify=True)
    assert len(ds) == 1
    ep = ds[0]
    assert ep.task_id == "SARM2/CleanWhiteboard-v0" and ep.seed == 3 and ep.skill == 1.0
    assert ep.success and ep.success_flags[-1] and not ep.success_flags[0]
    assert ep.progress[0] == 0.0 and ep.progress[-1] == pytest.approx(1.0)
    assert ep.state.shape == (ep.length, STATE_DIM) and ep.action.shape == (ep.length, STATE_DIM)
    assert all(ep.frames[cam].shape == (ep.length, 32, 32, 3) for cam in CAMERAS)
    assert {"pick_grab", "erase", "pass", "place"} <= set(ep.primitive_names)
    np.testing.assert_allclose(np.diff(ep.timestamp), 0.1)

    # The recorded first frame is the env's reset observation for the recorded seed.
    env = tasks.make_task_env("CleanWhiteboard", image_size=32)
    obs, _ = env.reset(seed=ep.seed)
    np.testing.assert_array_equal(obs["pixels"]["top"], ep.frames["top"][0])
    np.testing.assert_array_equal(obs["agent_pos"], ep.state[0])
    env.close()

    # Rerunning with more episodes resumes: the existing one is skipped, only the new one written.
    more = CollectConfig(tasks=("CleanWhiteboard",), episodes=2, skills=(0.5,), seed=3, image_size=32)
    assert collect(more, str(out), progress_bar=False) == {"written": 1, "skipped": 1}
    assert sorted(e.seed for e in EpisodeDataset(out)) == [3, 4]


def test_primitive_labels_are_valid_indices(tmp_path):
    config = CollectConfig(tasks=("FoldShorts",), episodes=1, skills=(1.0,), image_size=32)
    collect(config, str(tmp_path), progress_bar=False)
    ep = EpisodeDataset(tmp_path)[0]
    assert set(ep.primitive.tolist()) <= set(PRIMITIVE_INDEX.values())
    assert "fold_flatten" in ep.primitive_names


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"episodes": 0}, "episodes"),
        ({"skills": (1.2,)}, "skills"),
        ({"skills": ()}, "skills"),
        ({"tasks": ()}, "tasks"),
        ({"image_size": 0}, "image_size"),
        ({"image_size": 64.0}, "image_size"),
        ({"variability": -0.5}, "variability"),
        ({"variability": 2}, "variability"),
        ({"variability": "1"}, "variability"),
    ],
)
def test_config_validation(kwargs, field):
    base = {"tasks": ("FoldShorts",), "episodes": 1}
    with pytest.raises(ConfigError, match=field):
        CollectConfig(**{**base, **kwargs})


def test_cli_reports_unknown_task_and_bad_skill(tmp_path, capsys):
    assert main(["--task", "FoldShort", "--episodes", "1", "--out", str(tmp_path / "x"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "unknown task 'FoldShort'" in err and "FoldShorts" in err
    assert main(["--task", "FoldShorts", "--skill", "high", "--out", str(tmp_path / "y"), "--quiet"]) == 2
    assert "--skill" in capsys.readouterr().err


def test_cli_refuses_a_bad_image_size_before_creating_anything(tmp_path, capsys):
    out = tmp_path / "never"
    assert main(["--task", "PullPlug", "--image-size", "0", "--out", str(out), "--quiet"]) == 2
    assert "image_size" in capsys.readouterr().err and not out.exists()


def test_ctrl_c_is_one_line_and_exit_code_130(tmp_path, capsys, monkeypatch):
    import tasks.collect as collect_module

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(collect_module, "collect", interrupted)
    assert main(["--task", "PullPlug", "--episodes", "1", "--out", str(tmp_path / "d"), "--quiet"]) == 130
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "interrupted; rerun the same command to resume" in err


# ---------------------------------------------------------------------- benchmark suite
def test_suite_splits_have_disjoint_seeds_and_their_skills():
    suite = SuiteConfig(tasks=("CleanWhiteboard",), train_demos=3, heldout_demos=2, heldout_rollouts=4, seed=5)
    seeds = {split: set(suite.seeds(split)) for split in SPLITS}
    assert seeds["train_demos"] == {5, 6, 7}
    assert seeds["heldout_demos"] == {10_005, 10_006}
    assert seeds["heldout_rollouts"] == {20_005, 20_006, 20_007, 20_008}
    assert suite.skills("train_demos") == suite.skills("heldout_demos") == (1.0,)
    assert suite.skills("heldout_rollouts") == suite.rollout_skills
    rollouts = suite.split_config("heldout_rollouts")
    assert rollouts.episodes == 4 and rollouts.seed == 20_005 and rollouts.skills == suite.rollout_skills
    empty = SuiteConfig(tasks=("CleanWhiteboard",), train_demos=1, heldout_demos=0, heldout_rollouts=0)
    assert empty.split_config("heldout_demos") is None
    manifest = suite.manifest()
    assert manifest["splits"]["heldout_demos"] == {"seeds": [10_005, 10_007], "skills": [1.0], "episodes_per_task": 2}


def test_collect_suite_writes_every_split_and_a_manifest(tmp_path):
    suite = SuiteConfig(
        tasks=("CleanWhiteboard",),
        train_demos=1,
        heldout_demos=1,
        heldout_rollouts=1,
        rollout_skills=(0.3,),
        image_size=16,
    )
    counts = collect_suite(suite, tmp_path, progress_bar=False)
    assert counts == {split: {"written": 1, "skipped": 0} for split in SPLITS}
    for split in SPLITS:
        (ep,) = EpisodeDataset(tmp_path / split)
        assert ep.seed == suite.seeds(split).start and ep.skill == suite.skills(split)[0]
    assert json.loads((tmp_path / "suite.json").read_text()) == json.loads(json.dumps(suite.manifest()))
    # A rerun resumes (nothing to do); `fresh` re-collects the named split only.
    assert collect_suite(suite, tmp_path, progress_bar=False)["heldout_demos"] == {"written": 0, "skipped": 1}
    again = collect_suite(suite, tmp_path, progress_bar=False, fresh=("heldout_rollouts",))
    assert again["heldout_rollouts"] == {"written": 1, "skipped": 0} and again["train_demos"]["written"] == 0


def test_suite_presets_cover_the_benchmark_configs():
    from benchmarks.bench_config import load_config

    for name in SUITE_PRESETS:
        data = load_config(name).data
        preset = SUITE_PRESETS[name]
        keys = (
            "train_demos",
            "heldout_demos",
            "heldout_rollouts",
            "rollout_skills",
            "variability",
            "heldout_render_every",
        )
        for key in keys:
            assert getattr(data, key) == preset[key], f"{name}.yaml data.{key} differs from the `{name}` suite preset"


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"train_demos": -1}, "train_demos"),
        ({"heldout_rollouts": 10_000}, "heldout_rollouts"),
        ({"rollout_skills": (2.0,)}, "rollout_skills"),
        ({"variability": 1.5}, "variability"),
    ],
)
def test_suite_config_validation(kwargs, field):
    base = {"tasks": ("FoldShorts",), "train_demos": 1, "heldout_demos": 1, "heldout_rollouts": 1}
    with pytest.raises(ConfigError, match=field):
        SuiteConfig(**{**base, **kwargs})


def test_suite_cli(tmp_path, capsys):
    args = ["--task", "CleanWhiteboard", "--image-size", "16", "--quiet", "--out", str(tmp_path)]
    code = main(["--suite", "quick", "--train-demos", "1", "--heldout-demos", "0", "--heldout-rollouts", "0", *args])
    assert code == 0
    assert "suite.json" in capsys.readouterr().out
    assert len(EpisodeDataset(tmp_path / "train_demos")) == 1
    assert not (tmp_path / "heldout_demos").exists()
    # Single-dataset flags and suite flags do not mix.
    assert main(["--suite", "quick", "--episodes", "2", *args]) == 2
    assert "--suite" in capsys.readouterr().err
    assert main(["--train-demos", "2", *args]) == 2
    assert "--train-demos" in capsys.readouterr().err


def test_variability_is_recorded_and_old_episodes_read_as_zero(tmp_path, capsys):
    args = ["--task", "PullPlug", "--episodes", "1", "--image-size", "16", "--quiet"]
    assert main([*args, "--variability", "1", "--out", str(tmp_path / "varied")]) == 0
    assert main([*args, "--out", str(tmp_path / "default")]) == 0
    (varied,) = EpisodeDataset(tmp_path / "varied")
    (default,) = EpisodeDataset(tmp_path / "default")
    assert varied.variability == 1.0 and default.variability == 0.0
    old = dataclasses.replace(default, extra={k: v for k, v in default.extra.items() if k != "variability"})
    assert old.variability == 0.0  # recorded before the setting existed
    assert varied.success and default.success
    assert varied.length != default.length  # same seed, other pacing
    assert main([*args, "--variability", "-1", "--out", str(tmp_path / "bad")]) == 2
    assert "`variability` must be a number in [0, 1]; got -1.0" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()


def test_a_suite_keeps_its_variability(tmp_path):
    base = {"tasks": ("PullPlug",), "train_demos": 1, "heldout_demos": 0, "heldout_rollouts": 0, "image_size": 16}
    collect_suite(SuiteConfig(**base, variability=0.5), tmp_path, progress_bar=False)
    assert json.loads((tmp_path / "suite.json").read_text())["variability"] == 0.5
    with pytest.raises(ConfigError, match="`variability`: the suite at .* was collected at 0.5"):
        collect_suite(SuiteConfig(**base), tmp_path, progress_bar=False)
    # A suite written before the setting existed has no entry: it was collected at 0.
    manifest = json.loads((tmp_path / "suite.json").read_text())
    del manifest["variability"]
    (tmp_path / "suite.json").write_text(json.dumps(manifest))
    with pytest.raises(ConfigError, match="collected at 0, this config asks for 0.5"):
        collect_suite(SuiteConfig(**base, variability=0.5), tmp_path, progress_bar=False)


def test_parallel_collection_writes_the_same_dataset_in_the_same_order(tmp_path, capsys):
    config = CollectConfig(tasks=("PullPlug", "PlatesToBin"), episodes=2, skills=(1.0, 0.5), image_size=16)
    collect(config, str(tmp_path / "one"), progress_bar=False, workers=1)
    assert collect(config, str(tmp_path / "two"), progress_bar=False, workers=2) == {"written": 4, "skipped": 0}
    one, two = EpisodeDataset(tmp_path / "one"), EpisodeDataset(tmp_path / "two")
    assert [(e["task_id"], e["seed"]) for e in one.entries] == [(e["task_id"], e["seed"]) for e in two.entries]
    for a, b in zip(one, two):
        np.testing.assert_array_equal(a.action, b.action)
        np.testing.assert_array_equal(a.frames["top"], b.frames["top"])
    with pytest.raises(ConfigError, match="`workers` must be an integer >= 1; got 0"):
        collect(config, str(tmp_path / "none"), progress_bar=False, workers=0)
    assert not (tmp_path / "none").exists()
    assert main(["--task", "PullPlug", "--episodes", "1", "--workers", "0", "--out", str(tmp_path / "cli")]) == 2
    assert "`workers`" in capsys.readouterr().err and not (tmp_path / "cli").exists()


def test_repair_records_broken_episodes_again(tmp_path, capsys):
    out = tmp_path / "ds"
    args = ["--task", "PullPlug", "--episodes", "2", "--image-size", "16", "--quiet", "--out", str(out)]
    assert main(args) == 0
    first = EpisodeDataset(out)
    path = out / first.entries[1]["file"]
    path.write_bytes(path.read_bytes()[:-200])  # truncated, as by a full disk
    with pytest.raises(Exception, match="--repair"):
        EpisodeDataset(out)[1]
    capsys.readouterr()
    assert main(args) == 0  # a plain rerun keeps what the index lists
    assert "(2 already present)" in capsys.readouterr().out
    assert main([*args, "--repair"]) == 0
    assert "collected 1 episodes (1 already present, 1 repaired)" in capsys.readouterr().out
    again = EpisodeDataset(out, verify=True)
    assert sorted(e.seed for e in again) == [0, 1] and all(e.success for e in again)


def test_query_rate_recording_renders_only_the_kept_steps_and_matches_a_full_recording():
    from tasks.collect import record_episode

    full_env = tasks.make_task_env("PullPlug", image_size=16)
    state_env = tasks.make_task_env("PullPlug", image_size=16, obs_mode="state")
    try:
        full = record_episode(full_env, tasks.make_expert(full_env, skill=0.6, variability=1.0), seed=3, skill=0.6)
        expert = tasks.make_expert(state_env, skill=0.6, variability=1.0)
        sparse = record_episode(state_env, expert, seed=3, skill=0.6, render_every=10)
    finally:
        full_env.close()
        state_env.close()
    steps = sparse.frame_index.tolist()
    assert steps == sorted({*range(0, full.length, 10), full.length - 1})  # every 10th step and the outcome
    for name in ("state", "action", "progress", "primitive", "success_flags"):
        np.testing.assert_array_equal(getattr(sparse, name), getattr(full, name), err_msg=name)
    for cam in CAMERAS:  # the same pixels as the fully rendered recording at the kept steps
        np.testing.assert_array_equal(sparse.frames[cam], full.frames[cam][steps])
    assert full.frame_index is None
    # every step's calibrated progress is recorded beside the raw one, and is 1 exactly where the task succeeded
    assert full.calibrated_progress.shape == (full.length,)
    np.testing.assert_array_equal(full.calibrated_progress == 1.0, full.success_flags)


def test_a_jittered_collection_repeats_the_motion_under_other_pixels(tmp_path):
    from tasks.collect import CollectConfig, collect

    base = {"tasks": ("PullPlug",), "episodes": 1, "skills": (0.6,), "seed": 5, "image_size": 16, "render_every": 10}
    collect(CollectConfig(**base), str(tmp_path / "plain"), progress_bar=False)
    collect(CollectConfig(**base, jitter=1.0), str(tmp_path / "jittered"), progress_bar=False)
    (plain,), (jittered,) = EpisodeDataset(tmp_path / "plain"), EpisodeDataset(tmp_path / "jittered")
    for name in ("state", "action", "progress", "success_flags", "frame_index"):
        np.testing.assert_array_equal(getattr(jittered, name), getattr(plain, name), err_msg=name)
    for cam in CAMERAS:
        assert not np.array_equal(jittered.frames[cam], plain.frames[cam]), cam
    assert "scene_jitter" in jittered.extra and "scene_jitter" not in plain.extra
    args = ["--task", "PullPlug", "--episodes", "1", "--image-size", "16", "--quiet", "--seed", "5", "--skill", "0.6"]
    assert main([*args, "--render-every", "10", "--jitter", "1", "--out", str(tmp_path / "cli")]) == 0
    (from_cli,) = EpisodeDataset(tmp_path / "cli")
    np.testing.assert_array_equal(from_cli.frames["top"], jittered.frames["top"])
    assert main([*args, "--jitter", "1.5", "--out", str(tmp_path / "bad")]) == 2
    with pytest.raises(ConfigError, match="`jitter` must be a number in \\[0, 1\\]"):
        CollectConfig(**base, jitter=2.0)


def test_a_wider_pose_collection_keeps_seeds_and_skills_and_moves_the_objects(tmp_path):
    from tasks.collect import CollectConfig, collect

    base = {"tasks": ("PullPlug",), "episodes": 1, "skills": (1.0,), "seed": 5, "image_size": 16, "render_every": 10}
    collect(CollectConfig(**base), str(tmp_path / "plain"), progress_bar=False)
    args = ["--task", "PullPlug", "--episodes", "1", "--image-size", "16", "--quiet", "--seed", "5"]
    assert main([*args, "--render-every", "10", "--pose-range", "2", "--out", str(tmp_path / "wide")]) == 0
    (plain,), (wide,) = EpisodeDataset(tmp_path / "plain"), EpisodeDataset(tmp_path / "wide")
    assert (wide.seed, wide.skill, wide.success) == (plain.seed, plain.skill, True)
    assert wide.extra["pose_range"] == 2.0 and "pose_range" not in plain.extra
    assert not np.array_equal(wide.action[:10], plain.action[:10])  # the socket is elsewhere: so is the reach
    assert main([*args, "--pose-range", "2.5", "--out", str(tmp_path / "bad")]) == 2
    assert main([*args, "--suite", "quick", "--pose-range", "2", "--out", str(tmp_path / "suite")]) == 2
    with pytest.raises(ConfigError, match="`pose_range` must be a number in \\[0, 2\\]"):
        CollectConfig(**base, pose_range=-1.0)


def test_a_suite_renders_its_held_out_splits_at_the_query_rate(tmp_path, capsys):
    from rewards.cache import EmbeddingCache
    from rewards.data import EpisodeFeatures
    from rewards.encoders import make_image_encoder

    base = {"tasks": ("PullPlug",), "train_demos": 1, "heldout_demos": 1, "heldout_rollouts": 0, "image_size": 16}
    collect_suite(SuiteConfig(**base, heldout_render_every=10), tmp_path, progress_bar=False)
    assert json.loads((tmp_path / "suite.json").read_text())["heldout_render_every"] == 10
    (train,) = EpisodeDataset(tmp_path / "train_demos")
    assert train.frame_index is None
    held = EpisodeDataset(tmp_path / "heldout_demos")
    (episode,) = held
    assert episode.frame_count == len(episode.frame_index) < episode.length
    cache = EmbeddingCache(held, make_image_encoder("tiny", image_size=16, device="cpu"))
    embeddings = cache.get(0)
    assert embeddings["top"].shape[0] == episode.frame_count and cache.misses == 1
    cache.get(0)
    assert EmbeddingCache(held, cache.encoder).get(0)["top"].shape[0] == episode.frame_count  # read back, not redone
    feats = EpisodeFeatures.from_episode(held.load(0, frames=False), embeddings)
    assert feats.length == episode.length and feats.scored_steps.tolist() == episode.frame_index.tolist()
    seen = feats.embeddings_at(np.array([9, 10]))  # one row per rendered frame, read per step
    np.testing.assert_array_equal(seen[0, 0], embeddings["top"][0])  # held until the next rendered step
    np.testing.assert_array_equal(seen[1, 0], embeddings["top"][1])
    recorded = held.load(0, frames=False).state
    np.testing.assert_array_equal(feats.state[[9, 10]], recorded[[0, 10]])  # the state recorded with that frame
    with pytest.raises(ConfigError, match="`heldout_render_every`: the suite at .* was collected at 10"):
        collect_suite(SuiteConfig(**base), tmp_path, progress_bar=False)
    with pytest.raises(ConfigError, match="`heldout_render_every` must be an integer >= 1"):
        SuiteConfig(**base, heldout_render_every=0)
    args = ["--task", "PullPlug", "--episodes", "1", "--image-size", "16", "--quiet", "--out", str(tmp_path / "x")]
    assert main([*args, "--render-every", "0"]) == 2
    assert "`render_every` must be an integer >= 1" in capsys.readouterr().err
