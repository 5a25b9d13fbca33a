"""benchmarks/demo_variability.py: cells written and resumed, the table, bad input (tiny sizes)."""

from __future__ import annotations

import json

import pytest

from benchmarks import demo_variability


def test_demo_variability_writes_resumable_cells_and_a_table(tmp_path, capsys) -> None:
    args = ["--tasks", "PullPlug", "--episodes", "3", "--workers", "1", "--out", str(tmp_path)]
    assert demo_variability.main([*args, "--variability", "0,1"]) == 0
    table = capsys.readouterr().out
    assert "| PullPlug | 0 | 1 | 3 |" in table and "| PullPlug | 1 | 1 | 3 |" in table and "3/3" in table
    cells = sorted((tmp_path / "cells").glob("*.json"))
    assert [c.name for c in cells] == ["PullPlug_var0_n3_seed0.json", "PullPlug_var1_n3_seed0.json"]
    varied = json.loads(cells[1].read_text())
    fixed = json.loads(cells[0].read_text())
    assert len(set(varied["lengths"])) > 1 and all(varied["successes"])
    assert max(fixed["lengths"]) - min(fixed["lengths"]) <= 2
    results = json.loads((tmp_path / "results.json").read_text())
    assert {c["variability"] for c in results["cells"]} == {0.0, 1.0}
    assert all(lo <= c["cv"] <= hi for c in results["cells"] for lo, hi in [c["cv_interval"]])
    # A rerun finds both cells and runs nothing (the cell files keep their bytes).
    before = [c.read_bytes() for c in cells]
    assert demo_variability.main([*args, "--variability", "0,1"]) == 0
    assert [c.read_bytes() for c in cells] == before
    # Wider object poses: a cell of its own beside the registered range's, which is not rerun.
    assert demo_variability.main([*args, "--variability", "1", "--pose-range", "1,2"]) == 0
    assert "| PullPlug | 1 | 2 | 3 |" in capsys.readouterr().out
    wide = json.loads((tmp_path / "cells" / "PullPlug_var1_poses2_n3_seed0.json").read_text())
    assert wide["pose_range"] == 2.0 and wide["lengths"] != varied["lengths"]
    assert cells[1].read_bytes() == before[1]


@pytest.mark.parametrize(
    "bad", [["--variability", "1.5"], ["--pose-range", "3"], ["--episodes", "1"], ["--tasks", "PulPlug"]]
)
def test_demo_variability_refuses_bad_input(tmp_path, bad, capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        demo_variability.main(["--out", str(tmp_path), *bad])
    assert exc.value.code == 2
    assert not (tmp_path / "cells").exists()
