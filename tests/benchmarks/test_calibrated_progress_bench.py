"""benchmarks/calibrated_progress.py: the table, resumable per-task cells, bad input (tiny sizes)."""

from __future__ import annotations

import pytest

from benchmarks import calibrated_progress


def test_writes_the_table_and_reuses_its_cells(tmp_path, capsys) -> None:
    out, cells = tmp_path / "table.md", tmp_path / "cells"
    args = ["--tasks", "PullPlug", "--demos", "2", "--seeds", "1", "--skills", "0.3", "--out", str(out)]
    assert calibrated_progress.main([*args, "--cells", str(cells)]) == 0
    text = out.read_text()
    assert "| PullPlug | 2 | 2/2 |" in text and "| PullPlug | 0.3 |" in text
    row = next(line for line in text.splitlines() if line.startswith("| PullPlug | 2 |"))
    raw, calibrated = float(row.split("|")[4]), float(row.split("|")[6])
    assert calibrated < raw  # the calibrated oracle is closer to time-linear progress than the raw one
    (cell,) = cells.rglob("*.json")
    before = cell.read_bytes()
    capsys.readouterr()
    assert calibrated_progress.main([*args, "--cells", str(cells)]) == 0  # a rerun reads the cell, runs nothing
    assert cell.read_bytes() == before and capsys.readouterr().out.count("| PullPlug | 2 |") == 1


@pytest.mark.parametrize("bad", [["--demos", "1"], ["--skills", "1.5"], ["--tasks", "PulPlug"]])
def test_refuses_bad_input(tmp_path, bad) -> None:
    with pytest.raises(SystemExit) as exc:
        calibrated_progress.main(["--out", str(tmp_path / "t.md"), "--cells", str(tmp_path / "c"), *bad])
    assert exc.value.code == 2
    assert not (tmp_path / "t.md").exists()
