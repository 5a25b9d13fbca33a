"""One backend in two benchmark runs, paired on the same held-out episodes: an ablation row across runs.

Some options change what every backend is built on (the image encoder, the resolution), so their ablation is a
second run of the same config on the same episodes (``--name``, ``--set``), not a row within one run. This script
reads both runs' ``results.json`` and compares a backend between them on every evaluation set: task-macro value MSE
in each run and their ratio with a 95 % bootstrap interval that resamples the same episodes for both (within
tasks), and the mean per-task rollout rho (Spearman of predicted and true final progress across rollouts)::

    python benchmarks/run.py --config quick                                   # results/quick
    python benchmarks/run.py --config quick --name quick_grid2 --backends sarm2 \\
        --set encoder=efficientnet-lite0-grid2                                # the same episodes, another encoder
    python benchmarks/compare_runs.py results/quick results/quick_grid2 --backend sarm2

Runs whose episodes differ (another seed, another data budget) cannot be paired: that is an error naming the set.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sarm2_env import stats as S
from sarm2_env.errors import ConfigError, DatasetError

#: Evaluation sets compared, in report order.
SETS = ("heldout_demos", "heldout_rollouts")


def load_rows(run: Path, backend: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A run's ``results.json`` and its per-episode rows of ``backend`` (errors name the file and the backend)."""
    path = Path(run) / "results.json"
    try:
        results = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{path}: not a readable benchmark results file ({exc}); run benchmarks/run.py") from exc
    rows = [r for r in results.get("rows", []) if r.get("backend") == backend]
    if not rows:
        known = sorted({r.get("backend") for r in results.get("rows", [])})
        raise ConfigError(f"`backend` {backend!r} has no rows in {path}; it holds {known}")
    return results, rows


def paired_sets(rows_a: list[dict[str, Any]], rows_b: list[dict[str, Any]]) -> dict[str, list[tuple[dict, dict]]]:
    """Per evaluation set, the (run A row, run B row) pairs of the same episodes; the sets must match exactly."""
    out = {}
    for name in SETS:
        a = {r["episode_id"]: r for r in rows_a if r["set"] == name}
        b = {r["episode_id"]: r for r in rows_b if r["set"] == name}
        if set(a) != set(b):
            only_a, only_b = sorted(set(a) - set(b))[:3], sorted(set(b) - set(a))[:3]
            raise DatasetError(
                f"`{name}`: the runs scored different episodes (only in the first: {only_a}; only in the second: "
                f"{only_b}); compare runs of the same data config and seed"
            )
        if a:
            out[name] = [(a[k], b[k]) for k in sorted(a)]
    return out


def compare(pairs: Sequence[tuple[dict, dict]]) -> dict[str, Any]:
    """Macro MSE of both runs, their ratio (second / first) with a paired stratified bootstrap interval, and each
    run's mean per-task rollout rho."""
    by_task: dict[str, list[list[float]]] = {}
    for a, b in pairs:
        by_task.setdefault(a["task"], []).append([a["value_mse"], b["value_mse"]])
    groups = [np.asarray(v) for _, v in sorted(by_task.items())]
    ratio, (low, high) = S.paired_macro_ratio([g[:, ::-1] for g in groups])  # the second run over the first
    return {
        "episodes": len(pairs),
        "mse": [S.macro_mean([g[:, 0] for g in groups]), S.macro_mean([g[:, 1] for g in groups])],
        "ratio": ratio,
        "ci": [low, high],
        "rho": [_mean_rho(pairs, 0), _mean_rho(pairs, 1)],
    }


def _mean_rho(pairs: Sequence[tuple[dict, dict]], side: int) -> float:
    finals: dict[str, list[tuple[float, float]]] = {}
    for pair in pairs:
        row = pair[side]
        finals.setdefault(row["task"], []).append((row["final_pred"], row["final_gt"]))
    rhos = [S.spearman(*map(np.asarray, zip(*v))) for v in finals.values() if len(v) >= 3]
    return S.nanmean(rhos) if rhos else float("nan")


def report(first: Path, second: Path, backend: str) -> str:
    """The comparison as Markdown: which runs (encoder, commit), then one row per evaluation set."""
    res_a, rows_a = load_rows(first, backend)
    res_b, rows_b = load_rows(second, backend)
    lines = [f"`{backend}`: {_describe(first, res_a)} (A) against {_describe(second, res_b)} (B), paired episodes.", ""]
    lines += [
        "| set | episodes | MSE A | MSE B | B / A [95 %] | rollout rho A | rollout rho B |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, pairs in paired_sets(rows_a, rows_b).items():
        c = compare(pairs)
        rho = [f"{v:.2f}" if np.isfinite(v) else "–" for v in c["rho"]] if name == "heldout_rollouts" else ["–", "–"]
        lines.append(
            f"| {name} | {c['episodes']} | {c['mse'][0]:.4f} | {c['mse'][1]:.4f} | "
            f"{c['ratio']:.2f} [{c['ci'][0]:.2f}, {c['ci'][1]:.2f}] | {rho[0]} | {rho[1]} |"
        )
    return "\n".join(lines)


def _describe(run: Path, results: dict[str, Any]) -> str:
    encoder = (results.get("encoder") or {}).get("label", "?")
    revision = str(results.get("git_revision", "?"))[:7]
    return f"{Path(run).name} ({encoder}, commit {revision})"


def main(argv: list[str] | None = None) -> int:
    """Print the comparison of ``--backend`` between two run directories."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("first", type=Path, help="run directory A (holds results.json)")
    p.add_argument("second", type=Path, help="run directory B, the same episodes")
    p.add_argument("--backend", default="sarm2")
    args = p.parse_args(argv)
    print(report(args.first, args.second, args.backend))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
