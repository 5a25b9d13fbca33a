"""The benchmark's headline selection (benchmarks/report.py) on made-up tables."""

from __future__ import annotations

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
