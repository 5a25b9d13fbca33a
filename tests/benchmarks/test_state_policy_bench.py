"""benchmarks/state_policy.py: the pi_0 calibration table, resumable, labelled (PullPlug, tiny sizes)."""

from __future__ import annotations

import json

from agents.state_policy import LABEL
from benchmarks import state_policy as bench

ARGS = ["--tasks", "PullPlug", "--budgets", "3,6", "--eval", "2", "--steps", "200", "--workers", "1"]


def test_calibration_table_is_labelled_resumable_and_has_intervals(tmp_path, monkeypatch):
    out = tmp_path / "sp"
    assert bench.main([*ARGS, "--out", str(out)]) == 0
    summary = (out / "summary.md").read_text()
    assert LABEL in summary and "95 % interval" in summary
    rows = [line for line in summary.splitlines() if line.startswith("| PullPlug |")]
    assert [(r.split("|")[2].strip(), r.split("|")[3].strip()) for r in rows] == [
        ("all state", "3"),
        ("all state", "6"),
    ]
    results = json.loads((out / "results.json").read_text())
    assert results["policy"] == LABEL and {c["demos"] for c in results["cells"]} == {3, 6}
    assert all(c["n"] == 2 and len(c["episodes"]) == 2 for c in results["cells"])
    # A rerun trains nothing: demos and cells are reused (a patched run_cell cannot even reach a worker).
    cells = {p.name: p.stat().st_mtime_ns for p in (out / "cells").glob("*.json")}
    monkeypatch.setattr(bench, "run_cell", lambda *a, **k: (_ for _ in ()).throw(AssertionError("retrained")))
    assert bench.main([*ARGS, "--out", str(out)]) == 0
    assert {p.name: p.stat().st_mtime_ns for p in (out / "cells").glob("*.json")} == cells
    assert (out / "summary.md").read_text().splitlines()[4:] == summary.splitlines()[4:]


def test_a_policy_that_ignores_a_state_field_gets_its_own_rows(tmp_path):
    out = tmp_path / "sp"
    assert bench.main([*ARGS, "--budgets", "3", "--out", str(out)]) == 0
    assert bench.main([*ARGS, "--budgets", "3", "--ignore-fields", "socket_free/quat", "--out", str(out)]) == 0
    rows = [line for line in (out / "summary.md").read_text().splitlines() if line.startswith("| PullPlug |")]
    assert [r.split("|")[2].strip() for r in rows] == ["all state", "without `socket_free/quat`"]
    cells = json.loads((out / "results.json").read_text())["cells"]
    assert sorted(tuple(c["ignore_fields"]) for c in cells) == [(), ("socket_free/quat",)]
