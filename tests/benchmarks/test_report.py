"""The benchmark's headline selection (benchmarks/report.py) on made-up tables."""

from __future__ import annotations

import dataclasses
import math

import pytest

from benchmarks.report import headline


def _table(**mse_by_backend: dict[str, float]) -> dict:
    return {
        backend: {split: {"overall": {"value_mse_macro": mse}} for split, mse in splits.items()}
        for backend, splits in mse_by_backend.items()
    }


def test_strongest_published_baseline_excludes_references_and_ablations() -> None:
    table = _table(
        sarm2={"heldout_demos": 0.01, "heldout_rollouts": 0.10},
        rewind={"heldout_demos": 0.05, "heldout_rollouts": 0.04},
        sarm={"heldout_demos": 0.02, "heldout_rollouts": 0.08},
        gvl={"heldout_demos": 0.30},  # a VLM judge that skipped the rollouts
        # lower than every baseline, and never "the strongest baseline":
        time_linear={"heldout_demos": 1e-6, "heldout_rollouts": 1e-3},
        oracle={"heldout_demos": 1e-4, "heldout_rollouts": 0.0},
        sarm2_oracle_stage={"heldout_demos": 1e-5, "heldout_rollouts": 1e-5},
        sarm2_no_stage={"heldout_demos": 1e-5, "heldout_rollouts": 1e-5},
    )
    out = headline(table)
    demos, rollouts = out["heldout_demos"], out["heldout_rollouts"]
    assert demos["baseline"] == "sarm" and demos["baseline_mse"] == 0.02
    assert demos["reduction"] == pytest.approx(0.5)  # SARM2 better: positive ("50 % lower")
    assert rollouts["baseline"] == "rewind" and rollouts["baseline_mse"] == 0.04
    assert rollouts["reduction"] == pytest.approx(1 - 0.10 / 0.04)  # SARM2 worse: negative (-150 %)
    assert rollouts["reduction"] < 0


def test_no_published_baseline_is_said_not_invented() -> None:
    out = headline(_table(sarm2={"heldout_demos": 0.01}, oracle={"heldout_demos": 0.0}))
    for split in ("heldout_demos", "heldout_rollouts"):
        assert out[split]["baseline"] is None and math.isnan(out[split]["reduction"])
        assert out[split]["note"] == "no published-method baseline ran"
    assert out["heldout_demos"]["sarm2"] == 0.01 and math.isnan(out["heldout_rollouts"]["sarm2"])


def _rows(backend: str, mse_by_task: dict[str, list[float]], split: str = "heldout_rollouts") -> list[dict]:
    return [
        {"backend": backend, "set": split, "task": task, "episode_id": f"{task}-{i}", "value_mse": v}
        for task, values in mse_by_task.items()
        for i, v in enumerate(values)
    ]


def test_headline_ratio_is_paired_over_the_same_episodes() -> None:
    ours = {"A": [0.01, 0.02, 0.03], "B": [0.10, 0.20]}
    theirs = {"A": [0.02, 0.04, 0.06], "B": [0.20, 0.40, 9.0]}  # B's third episode has no SARM2 score
    rows = _rows("sarm2", ours) + _rows("rewind", theirs)
    table = _table(sarm2={"heldout_rollouts": 0.05}, rewind={"heldout_rollouts": 0.1})
    h = headline(table, rows)["heldout_rollouts"]
    assert h["paired_episodes"] == 5  # the unmatched episode is left out of the comparison
    assert h["ratio"] == pytest.approx(0.5)
    assert h["ratio_ci"] == pytest.approx([0.5, 0.5])  # every episode pair is exactly half: no spread
    noisy = _rows("sarm2", {"A": [0.01, 0.05, 0.02, 0.08]}) + _rows("rewind", {"A": [0.04, 0.03, 0.09, 0.05]})
    h = headline(_table(sarm2={"heldout_rollouts": 0.04}, rewind={"heldout_rollouts": 0.05}), noisy)
    lo, hi = h["heldout_rollouts"]["ratio_ci"]
    assert lo < h["heldout_rollouts"]["ratio"] < hi
    assert "ratio" not in headline(table)["heldout_rollouts"]  # no rows, no interval


def test_rollout_ranking_metrics() -> None:
    from benchmarks.report import _rollout_ranking

    def row(final_pred: float, final_gt: float, success: bool, outcome: int) -> dict:
        return {"final_pred": final_pred, "final_gt": final_gt, "success": success, "outcome": outcome}

    right = [row(0.9, 1.0, True, 2), row(0.5, 0.6, False, 1), row(0.1, 0.0, False, 0)]
    r = _rollout_ranking(right)
    assert r["rollout_rho"] == pytest.approx(1.0) and r["success_auroc"] == 1.0
    assert r["success_gap"] == pytest.approx(0.9 - 0.3) and r["kendall_rank"] == pytest.approx(1.0)
    backwards = [row(0.1, 1.0, True, 2), row(0.5, 0.6, False, 1), row(0.9, 0.0, False, 0)]
    r = _rollout_ranking(backwards)
    assert r["rollout_rho"] == pytest.approx(-1.0) and r["success_auroc"] == 0.0 and r["success_gap"] < 0
    assert math.isnan(_rollout_ranking(right[:1])["success_auroc"])  # one class only
    assert r["concordance"] == 0.0 and _rollout_ranking(right)["concordance"] == 1.0
    # Three successes at 1.0 and one failure: rho is capped by the truth's ties, concordance is not.
    tied = [row(0.7, 1.0, True, 2), row(0.9, 1.0, True, 2), row(0.8, 1.0, True, 2), row(0.2, 0.3, False, 1)]
    r = _rollout_ranking(tied)
    assert r["concordance"] == 1.0 and r["rollout_rho"] == pytest.approx(r["rho_ceiling"]) and r["rho_ceiling"] < 0.8


def test_the_rollout_table_states_the_rho_ceiling() -> None:
    from benchmarks.report import _ranking_note

    table = {"overall": {"rho_ceiling": 0.74}, "tasks": {"SARM2/PullPlug-v0": {"rho_ceiling": 0.52}}}
    note = _ranking_note(table, ["SARM2/PullPlug-v0", "SARM2/FoldShorts-v0"])
    assert "is 0.74 on this set" in note and "PullPlug 0.52" in note and "FoldShorts –" in note


def test_the_ranking_section_gives_every_metric_an_interval() -> None:
    from benchmarks.report import RANKING_HEADERS, ranking_lines

    overall = {k: 0.5 for k in RANKING_HEADERS} | {"rho_ceiling": 0.74}
    overall["ranking_ci"] = {k: [0.25, 0.75] for k in RANKING_HEADERS}
    tasks = {"SARM2/PullPlug-v0": {"rollout_rho": 0.52, "concordance": 1.0, "rho_ceiling": 0.52}}
    table = {"sarm2": {"heldout_rollouts": {"overall": overall, "tasks": tasks}}}
    lines = ranking_lines(table, ["sarm2"], {"sarm2": "SARM2"}, ["SARM2/PullPlug-v0"])
    row = next(line for line in lines if line.startswith("| SARM2 | 0.500"))
    assert row.count("[0.250, 0.750]") == len(RANKING_HEADERS)
    assert "| SARM2 | 0.52 / 1.00 |" in lines


def test_query_rate_episodes_are_scored_at_their_query_steps_only() -> None:
    import numpy as np

    from benchmarks.report import ground_truth, scored
    from rewards.data import EpisodeFeatures

    length, steps = 31, np.array([0, 10, 20, 30])
    progress = np.linspace(0.0, 0.5, length, dtype=np.float32)
    feats = EpisodeFeatures(
        episode_id="e",
        task_id="SARM2/PullPlug-v0",
        instruction="x",
        success=False,
        skill=0.5,
        embeddings=np.zeros((length, 3, 4), np.float32),
        state=np.zeros((length, 14), np.float32),
        primitive=np.zeros(length, np.int64),
        progress=progress,
        query_indices=steps,
    )
    np.testing.assert_allclose(ground_truth("heldout_demos", feats), [0.0, 1 / 3, 2 / 3, 1.0])
    np.testing.assert_allclose(ground_truth("heldout_rollouts", feats), progress[steps])
    np.testing.assert_array_equal(scored(feats, np.arange(length)), steps)
    every = ground_truth("heldout_demos", dataclasses.replace(feats, query_indices=None))
    assert every.shape == (length,) and every[-1] == 1.0


def test_failed_held_out_demos_are_left_out_of_the_scored_episodes() -> None:
    from types import SimpleNamespace

    from benchmarks.report import failed_demos, scored_episodes, successful_demos

    def episode(episode_id: str, success: bool) -> SimpleNamespace:
        return SimpleNamespace(episode_id=episode_id, success=success)

    state = SimpleNamespace(
        features={
            "heldout_demos": [episode("d0", True), episode("d1", False)],
            "heldout_rollouts": [episode("r0", True), episode("r1", False)],
        }
    )
    # a failed rollout is evaluation data; a failed demo has no time-linear ground truth
    assert set(scored_episodes(state)) == {"heldout_demos|d0", "heldout_rollouts|r0", "heldout_rollouts|r1"}
    assert failed_demos(state) == ["d1"] and [f.episode_id for f in successful_demos(state)] == ["d0"]
