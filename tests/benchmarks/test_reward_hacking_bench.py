"""The PPO reward-hacking check runs end to end and logs every episode's learned and physics progress."""

from __future__ import annotations

import json


def test_reward_hacking_logs_learned_and_physics_finals(tiny_sarm2_checkpoint, tmp_path) -> None:
    from benchmarks.reward_hacking import main

    out = tmp_path / "rh"
    args = ["--checkpoints", str(tiny_sarm2_checkpoint), "--tasks", "CleanWhiteboard", "--steps", "64"]
    assert main([*args, "--episode-steps", "16", "--out", str(out), "--docs", ""]) == 0
    results = json.loads((out / "results.json").read_text())
    row = results["tasks"][0]
    assert row["episodes"] == 4 and len(row["finals"]) == 4
    assert all(0.0 <= learned <= 1.0 and 0.0 <= physics <= 1.0 for learned, physics in row["finals"])
    assert "(demos only) | CleanWhiteboard | 4 |" in (out / "summary.md").read_text()
