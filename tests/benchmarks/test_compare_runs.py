"""benchmarks/compare_runs.py: one backend across two runs, paired on the same episodes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from benchmarks.compare_runs import compare, main, paired_sets, report
from sarm2_env.errors import ConfigError, DatasetError


def _rows(scale: float, rollout_ids: range = range(6)) -> list[dict]:
    rng = np.random.default_rng(0)
    rows = []
    for task in ("A", "B"):
        for split, ids in (("heldout_demos", range(2)), ("heldout_rollouts", rollout_ids)):
            for i in ids:
                gt = float(rng.uniform())
                rows.append(
                    {
                        "backend": "sarm2",
                        "set": split,
                        "task": task,
                        "episode_id": f"{task}-{split}-{i}",
                        "value_mse": scale * (0.01 + 0.001 * i),
                        "final_pred": gt + 0.01 * i,  # the same order as the truth: rho 1
                        "final_gt": gt,
                    }
                )
    return rows


def _run(tmp_path: Path, name: str, rows: list[dict], label: str) -> Path:
    run = tmp_path / name
    run.mkdir()
    results = {"rows": rows, "encoder": {"label": label}, "git_revision": "abcdef1234"}
    (run / "results.json").write_text(json.dumps(results))
    return run


def test_the_ratio_is_paired_and_exact_on_a_uniform_change(tmp_path: Path, capsys) -> None:
    a = _run(tmp_path, "quick", _rows(1.0), "global pool")
    b = _run(tmp_path, "quick_grid2", _rows(0.5), "2x2 grid")
    pairs = paired_sets(_rows(1.0), _rows(0.5))
    result = compare(pairs["heldout_rollouts"])
    assert result["episodes"] == 12 and result["ratio"] == pytest.approx(0.5)
    assert result["ci"] == pytest.approx([0.5, 0.5])  # every resample halves: paired, no spread
    assert result["rho"] == pytest.approx([1.0, 1.0])
    text = report(a, b, "sarm2")
    assert "quick (global pool, commit abcdef1) (A) against quick_grid2 (2x2 grid, commit abcdef1) (B)" in text
    assert "| heldout_demos | 4 |" in text and "| heldout_rollouts | 12 |" in text and "0.50 [0.50, 0.50]" in text
    assert main([str(a), str(b)]) == 0 and "| heldout_rollouts | 12 |" in capsys.readouterr().out


def test_runs_of_other_episodes_or_backends_are_refused(tmp_path: Path) -> None:
    a = _run(tmp_path, "a", _rows(1.0), "x")
    b = _run(tmp_path, "b", _rows(1.0, rollout_ids=range(1, 7)), "x")
    with pytest.raises(DatasetError, match="heldout_rollouts.*different episodes"):
        report(a, b, "sarm2")
    with pytest.raises(ConfigError, match="'rewind' has no rows"):
        report(a, a, "rewind")
    with pytest.raises(DatasetError, match="not a readable benchmark results file"):
        report(a, tmp_path / "missing", "sarm2")
