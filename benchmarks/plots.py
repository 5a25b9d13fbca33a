"""Benchmark plots (matplotlib, headless Agg): progress curves per task (as the paper's Figure 7), rollout
curves with failures marked, the primitive confusion matrix, and MoE expert use by primitive group."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from benchmarks.pipeline import RunState
from benchmarks.report import ground_truth
from sarm2_env.constants import PRIMITIVE_GROUPS, PRIMITIVES

MAX_ROLLOUTS = 6


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _short(task: str) -> str:
    return task.split("/")[-1].removesuffix("-v0")


def write_plots(state: RunState, predictions: dict, agg: dict, labels: dict[str, str]) -> list[Path]:
    """The run's figures (progress and rollout curves per task, primitive confusion, MoE expert use); returns
    their paths."""
    plt = _plt()
    out_dir = state.run_dir / "plots"
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for task in state.task_ids:
        demos = [f for f in state.features.get("heldout_demos", []) if f.task_id == task]
        if demos:
            written.append(_curves(plt, out_dir, "heldout_demos", demos[0], predictions, labels))
        rollouts = [f for f in state.features.get("heldout_rollouts", []) if f.task_id == task][:MAX_ROLLOUTS]
        if rollouts:
            written.append(_rollouts(plt, out_dir, task, rollouts, predictions, labels))
    for backend, matrix in agg["confusion"].items():
        written.append(_confusion(plt, out_dir, backend, np.asarray(matrix), labels))
    for backend, load in agg["expert_load"].items():
        written.append(_experts(plt, out_dir, backend, np.asarray(load["by_group"], dtype=float), labels))
    plt.close("all")
    return written


def _save(plt, fig, path: Path, dpi: int = 110) -> Path:
    """Lay ``fig`` out tightly, write it to ``path`` and close it; returns ``path``."""
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path


def _curves(plt, out_dir: Path, split: str, feats, predictions: dict, labels: dict) -> Path:
    fig, ax = plt.subplots(figsize=(7, 4))
    t = np.arange(feats.length)
    ax.plot(feats.scored_steps, ground_truth(split, feats), "k--", lw=2, label="ground truth (time-linear)")
    for backend, results in predictions.items():
        arrays = results.get(f"{split}|{feats.episode_id}")
        if arrays is not None:
            ax.plot(t, arrays["progress"], lw=1.3, label=labels.get(backend, backend))
    ax.set(
        xlabel="frame (10 Hz)",
        ylabel="progress",
        ylim=(-0.05, 1.05),
        title=f"{_short(feats.task_id)}: held-out demo {feats.episode_id}",
    )
    ax.legend(fontsize=7, loc="upper left")
    return _save(plt, fig, out_dir / f"curves_{_short(feats.task_id)}.png")


def _rollouts(plt, out_dir: Path, task: str, rollouts: list, predictions: dict, labels: dict) -> Path:
    cols = min(3, len(rollouts))
    rows = int(np.ceil(len(rollouts) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.0 * rows), squeeze=False)
    for ax, feats in zip(axes.flat, rollouts):
        t = np.arange(feats.length)
        ax.plot(t, feats.physics_progress, "k--", lw=2, label="physics ground truth (calibrated)")
        for backend, results in predictions.items():
            arrays = results.get(f"heldout_rollouts|{feats.episode_id}")
            if arrays is not None:
                ax.plot(t, arrays["progress"], lw=1.1, label=labels.get(backend, backend))
        status = "success" if feats.success else "FAILURE"
        ax.set_title(f"skill {feats.skill:.1f}: {status}", color="black" if feats.success else "red", fontsize=9)
        if not feats.success:
            ax.axvspan(feats.length * 0.98, feats.length, color="red", alpha=0.3)
            for spine in ax.spines.values():
                spine.set_edgecolor("red")
        ax.set_ylim(-0.05, 1.05)
    for ax in list(axes.flat)[len(rollouts) :]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=6, loc="upper left")
    fig.suptitle(f"{_short(task)}: held-out imperfect rollouts (failures in red)")
    return _save(plt, fig, out_dir / f"rollouts_{_short(task)}.png", dpi=100)


def _confusion(plt, out_dir: Path, backend: str, matrix: np.ndarray, labels: dict) -> Path:
    used = np.flatnonzero(matrix.sum(0) + matrix.sum(1))
    sub = matrix[np.ix_(used, used)].astype(float)
    norm = sub / np.maximum(sub.sum(1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(1.0 + 0.55 * len(used), 0.8 + 0.5 * len(used)))
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    names = [PRIMITIVES[i] for i in used]
    ax.set_xticks(range(len(used)), names, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(used)), names, fontsize=8)
    for i in range(len(used)):
        for j in range(len(used)):
            if sub[i, j]:
                ax.text(
                    j,
                    i,
                    f"{norm[i, j]:.2f}",
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if norm[i, j] > 0.5 else "black",
                )
    ax.set(xlabel="predicted", ylabel="expert label", title=f"primitives: {labels.get(backend, backend)}")
    return _save(plt, fig, out_dir / f"confusion_{backend}.png")


def _experts(plt, out_dir: Path, backend: str, load: np.ndarray, labels: dict) -> Path:
    fig, ax = plt.subplots(figsize=(7, 3.6))
    shown = np.nan_to_num(load, nan=0.0)
    im = ax.imshow(shown, cmap="viridis", vmin=0, vmax=max(0.5, float(shown.max())))
    ax.set_yticks(range(len(PRIMITIVE_GROUPS)), [g for g, _ in PRIMITIVE_GROUPS], fontsize=8)
    ax.set_xticks(range(load.shape[1]), [f"e{i}" for i in range(load.shape[1])], fontsize=8)
    for g in np.flatnonzero(np.isnan(load).all(1)):
        ax.text(load.shape[1] / 2 - 0.5, g, "gate unused", ha="center", va="center", color="white", fontsize=7)
    fig.colorbar(im, ax=ax, label="mean routing weight")
    ax.set(xlabel="expert", title=f"MoE expert use by primitive group: {labels.get(backend, backend)}")
    return _save(plt, fig, out_dir / f"experts_{backend}.png")
