"""Scene-or-clock measurements: re-timed episodes, the privileged probe, and the evaluation of one backend."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from sarm2_env.errors import ConfigError
from tests.rewards.fixtures import SIM_TASKS, at_query_rate, synthetic_features


def query_rate_demo(length: int = 61):
    return at_query_rate(synthetic_features(SIM_TASKS[0], 1, length=length)[0], 10)


def test_held_still_freezes_the_scene_and_queries_through_the_hold() -> None:
    from benchmarks.clock_tests import held_still

    feats = query_rate_demo()
    held, inside, scene = held_still(feats, seconds=3.0)
    assert held.length == feats.length + 30
    at = inside[0]
    assert inside.tolist() == [at, at + 10, at + 20, at + 30]
    assert np.all(
        held.embeddings_at(np.arange(at, at + 31)) == held.embeddings_at(np.array([at]))
    )  # the scene does not change
    assert np.all(scene[at : at + 31] == scene[at])  # nor does its progress
    assert set(inside) <= set(held.scored_steps)
    assert held.scored_steps[-1] == held.length - 1
    with pytest.raises(ConfigError, match="seconds"):
        held_still(feats, seconds=0)


@pytest.mark.parametrize("speed", [0.5, 2.0])
def test_replayed_keeps_the_scene_progress_of_each_frame(speed: float) -> None:
    from benchmarks.clock_tests import replayed, scene_progress

    feats = query_rate_demo()
    played, scene = replayed(feats, speed)
    assert played.length == (2 * feats.length if speed == 0.5 else (feats.length + 1) // 2)
    assert scene[0] == 0 and scene[-1] == pytest.approx(scene_progress(feats)[-1] if speed == 0.5 else 1.0)
    # every query step of the replay shows a frame the original showed at a query step
    original = {e.tobytes() for e in feats.embeddings_at(feats.scored_steps)}
    assert all(e.tobytes() in original for e in played.embeddings_at(played.scored_steps))
    with pytest.raises(ConfigError, match="speed"):
        replayed(feats, 3.0)


def test_probe_fits_a_linear_signal_and_cross_fits_per_episode() -> None:
    from benchmarks.probe import RidgeProbe, cross_fitted

    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 5))
    y = np.clip(0.5 + 0.1 * x[:, 0], 0, 1)
    assert np.abs(RidgeProbe(alpha=1e-3).fit(x, y).predict(x) - y).max() < 1e-3
    episodes = synthetic_features(SIM_TASKS[0], 6, seed=1)  # embeddings carry the time signal, progress = t
    preds = cross_fitted(episodes, "all", folds=2)
    assert [len(p) for p in preds] == [f.length for f in episodes]
    assert np.mean([np.mean((p - f.progress) ** 2) for p, f in zip(preds, episodes)]) < 0.01
    with pytest.raises(ConfigError, match="view"):
        cross_fitted(episodes, "side")


class _Clock:
    """A fake backend that reads the clock: progress = step / 60, whatever the frames show."""

    label = "clock"

    def predict_episode(self, feats):
        from rewards.base import RewardOutput

        return RewardOutput(progress=np.clip(np.arange(feats.length) / 60.0, 0, 1).astype(np.float32))


def test_evaluate_exposes_a_clock() -> None:
    from benchmarks.scene_reading import evaluate

    demos = [query_rate_demo()] + [
        at_query_rate(dataclasses.replace(f, episode_id=f"b{i}"), 10)
        for i, f in enumerate(synthetic_features(SIM_TASKS[1], 2, length=61, seed=3))
    ]
    rollouts = [dataclasses.replace(f, episode_id=f"r{f.episode_id}", calibrated_progress=f.progress) for f in demos]
    idle = [
        dataclasses.replace(f, episode_id=f"i{f.episode_id}", calibrated_progress=np.zeros(f.length)) for f in demos
    ]
    state = type("S", (), {})()
    state.features = {"train_demos": demos, "heldout_demos": demos, "heldout_rollouts": rollouts}
    result = evaluate(_Clock(), state, {"idle": idle}, "clock")
    assert result["demo_mse"]["mean"] < 1e-6  # a clock is perfect on demos of the right length...
    assert result["hold_shift"]["mean"] == pytest.approx(0.5)  # ...moves 0.5 while the scene holds for 3 s...
    assert result["speed_0.5x_mse"]["mean"] > 0.05 and result["speed_2x_mse"]["mean"] > 0.05  # ...misreads speed
    assert result["wrong_task_drop"]["mean"] == pytest.approx(0.0)  # ...ignores the instruction
    assert result["motion"]["idle"]["final"]["mean"] == pytest.approx(1.0)  # ...and pays for idling


def test_probe_regularisation_is_chosen_on_held_out_rows() -> None:
    from benchmarks.probe import ALPHAS, choose_alpha

    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 40))
    signal = np.clip(0.5 + 0.1 * x[:, 0], 0, 1)
    assert choose_alpha(x[:150], signal[:150], x[150:], signal[150:]) <= 10.0  # a clean signal: little shrinkage
    noise = rng.uniform(0, 1, size=300)
    assert choose_alpha(x[:150], noise[:150], x[150:], noise[150:]) == ALPHAS[-1]  # nothing to read: shrink it all


def test_script_end_to_end_on_a_tiny_config(tmp_path) -> None:
    """Collects, trains two variants, evaluates, and on a rerun reuses every checkpoint and evaluation."""
    import json

    from benchmarks.scene_reading import main

    args = [
        "--config", "quick", "--tasks", "CleanWhiteboard",
        "--set", "encoder=tiny", "--set", "text_encoder=tiny-hash", "--set", "train.preset=tiny",
        "--set", "data.train_demos=2", "--set", "data.heldout_demos=1", "--set", "data.heldout_rollouts=2",
        "--set", "data.image_size=32", "--set", f"data.root={tmp_path / 'data'}",
        "--steps", "4", "--variants", "sarm2,sarm2+motion", "--baselines", str(tmp_path / "none"),
        "--control-episodes", "1", "--control-steps", "20", "--negative-episodes", "1", "--negative-steps", "12",
        "--out", str(tmp_path / "out"), "--docs", "", "--no-progress",
    ]  # fmt: skip
    assert main(args) == 0
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert set(results["backends"]) == {"sarm2", "sarm2+motion"}
    for row in results["backends"].values():
        assert set(row["motion"]) == {"idle", "random", "play"} and np.isfinite(row["rollout_mse"]["mean"])
    trained = json.loads((tmp_path / "out" / "checkpoints" / "sarm2+motion" / "config.json").read_text())
    assert trained["training"]["negative_episodes"] == 2  # one random + one play episode of the task
    assert set(results["probe"]) == {"top", "left_wrist", "right_wrist", "all"}
    assert "training times this run: sarm2" in (tmp_path / "out" / "summary.md").read_text()
    assert main(args) == 0  # the rerun trains and evaluates nothing again
    assert "none (checkpoints cached)" in (tmp_path / "out" / "summary.md").read_text()


def test_an_unfinished_baseline_checkpoint_is_skipped(tmp_path) -> None:
    from benchmarks.scene_reading import load_baselines

    (tmp_path / "sarm" / "sarm-tasks").mkdir(parents=True)  # what an interrupted SARM v1 training leaves
    assert load_baselines(tmp_path, "cpu") == {}
