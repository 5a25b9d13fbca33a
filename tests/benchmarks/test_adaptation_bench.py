"""benchmarks/adaptation.py: RM1 -> RM2 rows end to end on a tiny config, caching, and bad input refused up front."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from benchmarks.adaptation import main, nested_subsets, parse_sizes
from sarm2_env.errors import ConfigError, DatasetError


def _args(tmp: Path, *extra: str) -> list[str]:
    return [
        "--config", "quick", "--tasks", "CleanWhiteboard,PullPlug",
        "--set", "encoder=tiny", "--set", "text_encoder=tiny-hash", "--set", "train.preset=tiny",
        "--set", "train.steps=4", "--set", "data.train_demos=2", "--set", "data.heldout_demos=1",
        "--set", "data.heldout_rollouts=3", "--set", "data.image_size=32", "--set", "data.motion_controls=0",
        "--set", "data.motion_negatives=0", "--set", "controls=false", "--set", "plots=false",
        "--set", f"data.root={tmp / 'data'}", "--run", str(tmp / "run"),
        "--backends", "sarm2,rewind", "--steps", "3",
        "--out", str(tmp / "out"), "--docs", "", "--no-progress", *extra,
    ]  # fmt: skip


def _policy_rollouts(folder: Path, n: int = 3, length: int = 25) -> Path:
    """Fake SPIRAL pi_0 rollouts of CleanWhiteboard with the tiny encoder's embedding size, frames every 10 steps."""
    from agents.state_spiral import StateRollout
    from rewards.encoders import make_image_encoder
    from sarm2_env.constants import ACTION_DIM

    dim = make_image_encoder("tiny", device="cpu").spec.dim
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True)
    for seed in range(n):
        frames = np.array([0, 10, 20, length - 1])
        progress = np.linspace(0, 0.3 * (seed + 1), length).astype(np.float32)
        rollout = StateRollout(
            task_id="SARM2/CleanWhiteboard-v0",
            seed=seed,
            state=rng.normal(size=(length, 20)).astype(np.float32),
            action=np.zeros((length - 1, ACTION_DIM), np.float32),
            progress=progress,
            success_flags=np.arange(length) == length - 1 if seed == 2 else np.zeros(length, bool),
            frames=frames,
            embeddings=rng.normal(size=(len(frames), 3, dim)).astype(np.float16),
        )
        (folder / f"seed_{seed:07d}.npz").write_bytes(rollout.to_bytes())
    return folder


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("adaptation")
    policy = _policy_rollouts(tmp / "pi0")
    assert main(_args(tmp, "--sizes", "0,2", "--policy-rollouts", str(policy))) == 0
    return tmp


def test_rows_for_every_size_and_backend_and_a_cached_rerun(finished: Path) -> None:
    results = json.loads((finished / "out" / "results.json").read_text())
    assert list(results["sizes"]) == ["0", "2"] and set(results["sizes"]["2"]) == {"sarm2", "rewind"}
    for rows in results["sizes"].values():
        for row in rows.values():
            assert np.isfinite(row["rollout_mse"]["mean"]) and len(row["episode_mse"]) == 6
            assert set(row["rollout_rho"]["per_task"]) == {"SARM2/CleanWhiteboard-v0", "SARM2/PullPlug-v0"}
        assert "sarm2_ratio" in rows["rewind"] and "sarm2_ratio" not in rows["sarm2"]
        for row in rows.values():  # the pi_0 rollouts: scored at their 4 rendered steps, success known
            policy = row["policy"]
            assert len(policy["episode_mse"]) == 3 and policy["success_rate"] == pytest.approx(1 / 3)
            assert np.isfinite(policy["success_auroc"]) and np.isfinite(policy["rollout_mse"]["mean"])
    adapted = json.loads((finished / "out" / "checkpoints" / "sarm2-N2" / "config.json").read_text())
    assert adapted["training"]["adapted"] == {"episodes": 8, "annotated": 4, "steps": 3, "lr_scale": 0.3}
    lines = (finished / "out" / "annotations.jsonl").read_text().splitlines()
    assert len(lines) == 4 and all(json.loads(line)["annotator"] for line in lines)
    summary = (finished / "out" / "summary.md").read_text()
    assert "| 2 | ReWiND" in summary and "Mean ceiling" in summary
    times = dict(re.findall(r"(sarm2|rewind) N=2 (\d+) s", summary))  # seconds vary with the machine's load
    assert sorted(times) == ["rewind", "sarm2"]
    assert "## SPIRAL's own rollouts" in summary
    assert main(_args(finished, "--sizes", "0,2", "--policy-rollouts", str(finished / "pi0"))) == 0  # all cached
    rerun = (finished / "out" / "summary.md").read_text()
    assert dict(re.findall(r"(sarm2|rewind) N=2 (\d+) s", rerun)) == times  # cached checkpoints keep their times


def test_bad_input_is_refused_before_anything_trains(finished: Path, tmp_path: Path) -> None:
    # the adaptation seeds overlap the held-out rollouts (seed + 20000)
    with pytest.raises(ConfigError, match="overlap the heldout_rollouts seeds"):
        main(_args(finished, "--sizes", "0,2", "--seed", "20001", "--out", str(tmp_path / "o1")))
    # more rollouts per task than the dataset holds
    rollouts = str(finished / "data" / "32px-seed0-var1-every10" / "adaptation_rollouts")
    with pytest.raises(DatasetError, match="N = 5 annotated rollouts per task requested"):
        main(_args(finished, "--sizes", "0,5", "--rollouts", rollouts, "--out", str(tmp_path / "o2")))
    # annotations of another dataset
    other = tmp_path / "other.jsonl"
    line = json.loads((finished / "out" / "annotations.jsonl").read_text().splitlines()[0])
    other.write_text(json.dumps({**line, "episode_id": "someone_else_0001"}) + "\n")
    with pytest.raises(DatasetError, match="another dataset"):
        main(
            _args(
                finished,
                "--sizes",
                "0,1",
                "--rollouts",
                rollouts,
                "--annotations",
                str(other),
                "--out",
                str(tmp_path / "o3"),
            )
        )
    assert not any((tmp_path / d / "checkpoints").exists() for d in ("o1", "o2", "o3"))
    with pytest.raises(DatasetError, match="no rollout files"):
        main(_args(finished, "--sizes", "0", "--policy-rollouts", str(tmp_path), "--out", str(tmp_path / "o4")))
    with pytest.raises(ConfigError, match="--annotator physics"):
        main(_args(finished, "--sizes", "0,1", "--annotator", "physics", "--annotations", str(other)))
    with pytest.raises(ConfigError, match="--sizes"):
        parse_sizes("0,ten")


def test_nested_subsets_take_the_first_rollouts_of_every_task() -> None:
    from types import SimpleNamespace

    eps = [SimpleNamespace(task_id=t, episode_id=f"{t}{i}") for t in "ab" for i in range(3)]
    subsets = nested_subsets(eps, [0, 1, 3])
    assert [e.episode_id for e in subsets[1]] == ["a0", "b0"] and len(subsets[3]) == 6 and subsets[0] == []
    with pytest.raises(DatasetError, match="available {'a': 3, 'b': 3}"):
        nested_subsets(eps, [4])


def test_annotations_and_their_distance_from_physics(tmp_path: Path) -> None:
    """auto_annotate's curves are written as JSONL and differ from physics by a measurable floor; the physics
    annotator returns the physics progress itself (floor 0)."""
    from types import SimpleNamespace

    from benchmarks.adaptation import annotation_error, annotation_targets

    steps = np.arange(60)
    physics = np.where(steps < 40, 0.1, 1.0) * np.minimum(1.0, steps / 50)  # flat, then a jump at a sub-goal
    eps = [SimpleNamespace(task_id="t", episode_id=f"e{i}", length=60, physics_progress=physics) for i in range(2)]
    auto = annotation_targets(eps, None, tmp_path / "a.jsonl")
    assert len((tmp_path / "a.jsonl").read_text().splitlines()) == 2
    assert annotation_error(eps, auto)["mean"] > 1e-3  # segment labels cannot draw the jump exactly
    perfect = annotation_targets(eps, None, tmp_path / "b.jsonl", annotator="physics")
    assert annotation_error(eps, perfect)["mean"] < 1e-12 and not (tmp_path / "b.jsonl").exists()


def test_rho_ceiling_is_one_without_ties_and_capped_by_them() -> None:
    """Untied truths allow rho 1; 19 rollouts at 1.0 and one failure cap any untied prediction at about 0.38."""
    from types import SimpleNamespace

    from benchmarks.evaluation import rho_ceiling

    def rollout(task: str, final: float):
        return SimpleNamespace(task_id=task, physics_progress=np.array([0.0, final]), scored_steps=np.array([0, 1]))

    eps = [rollout("a", v) for v in (0.1, 0.5, 0.9)] + [rollout("b", 0.5)] + [rollout("b", 1.0)] * 19
    ceiling = rho_ceiling(eps)
    assert ceiling["a"] == pytest.approx(1.0) and ceiling["b"] == pytest.approx(np.sqrt(4.75 / 33.25), abs=1e-9)
