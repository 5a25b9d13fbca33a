"""RM1 -> RM2 on simulated rollouts: SPIRAL's one-time reward-model adaptation, annotated from physics.

The paper adapts its reward model once, on rollouts of the policy it improves that a person annotated (final
progress, speed segments, catastrophes). In simulation the annotation comes from the simulator's calibrated
progress (:func:`agents.auto_annotation.auto_annotate`), and the target curve is what an annotator's marks would
give (:func:`agents.annotation.synthesize_progress`), not the physics curve itself: RM2 learns what a person could
have told it, nothing more.
"""

from __future__ import annotations

import copy
import json
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from sarm2_env.atomic import write_json_atomic
from sarm2_env.errors import ConfigError, DatasetError


class AnnotatableRollout(Protocol):
    """A rollout RM1 can be adapted on: its simulator progress, its id and the reward model's view of it."""

    progress: np.ndarray

    @property
    def success(self) -> bool:
        """Whether the rollout succeeded."""
        ...

    def features(self, instruction: str | None = None, at_query_rate: bool = False) -> Any:
        """The reward model's view (:class:`rewards.data.EpisodeFeatures`)."""
        ...


def annotated_targets(rollouts: Sequence[AnnotatableRollout]) -> list[np.ndarray]:
    """Per-step progress targets of ``rollouts`` as an annotator's marks would give them: auto-annotated from each
    rollout's simulator progress, then synthesised into a curve."""
    from agents.annotation import synthesize_progress
    from agents.auto_annotation import auto_annotate

    targets = []
    for k, ro in enumerate(rollouts):
        progress = np.clip(np.asarray(ro.progress, dtype=np.float64), 0.0, 1.0)
        annotation = auto_annotate(_Progress(progress, f"rollout_{k}"))
        targets.append(synthesize_progress(annotation))
    return targets


def annotated_successes(rollouts: Sequence[AnnotatableRollout]) -> list[bool]:
    """Which of ``rollouts`` an annotator marked complete (final progress 1): the annotation's success label."""
    return [bool(t[-1] >= 1.0 - 1e-6) for t in annotated_targets(rollouts)]


class _Progress:
    """What :func:`auto_annotate` reads."""

    def __init__(self, progress: np.ndarray, episode_id: str) -> None:
        self.progress, self.episode_id = progress, episode_id


def final_corr(model: Any, episodes: Sequence[Any], truth: Sequence[np.ndarray]) -> float | None:
    """Correlation across episodes of the model's final predicted progress with ``truth``'s last values."""
    from sarm2_env.stats import pearson

    predicted = [float(model.predict_episode(f).progress[-1]) for f in episodes]
    corr = pearson(np.asarray(predicted), np.asarray([float(t[-1]) for t in truth]))
    return None if np.isnan(corr) else float(corr)


def adapt_on_rollouts(
    model: Any,
    rollouts: Sequence[AnnotatableRollout],
    out: Path,
    *,
    steps: int,
    lr_scale: float,
    seed: int,
) -> tuple[Any, dict[str, Any]]:
    """RM2: a copy of ``model`` (RM1, left untouched) adapted on ``rollouts`` with :func:`annotated_targets`,
    saved to ``out`` (a checkpoint directory, written whole or not at all) with ``out/../<name>.json`` beside it.
    When ``out`` holds a finished RM2 already, it is loaded instead. Returns ``(RM2, statistics)``: rollouts and
    successes, steps, seconds, how far the annotated curves are from the simulator's progress (``target_mse``),
    and how RM1 and RM2 rank the adaptation rollouts by final progress (``final_corr_rm1`` / ``_rm2``).

    Raises:
        ConfigError: ``model`` cannot be adapted (its ``adaptable`` is False).
        DatasetError: no rollouts.
    """
    record_path = out.with_name(out.name + ".json")
    if (out / "config.json").exists() and record_path.exists():
        return type(model).load(out, device="cpu"), json.loads(record_path.read_text())
    if not getattr(model, "adaptable", False):
        name = getattr(model, "name", model)
        raise ConfigError(f"reward model {name!r} cannot be adapted (its `adaptable` is False)")
    if not rollouts:
        raise DatasetError("RM1 -> RM2 adaptation: expected at least one rollout; got none")
    started = time.perf_counter()
    targets = annotated_targets(rollouts)
    episodes = [ro.features(at_query_rate=True) for ro in rollouts]
    adapted = copy.deepcopy(model)
    adapted.adapt(episodes, targets, steps=steps, lr_scale=lr_scale, seed=seed)
    seconds = time.perf_counter() - started
    truth = [np.asarray(ro.progress) for ro in rollouts]
    record = {
        "rollouts": len(rollouts),
        "successes": int(sum(ro.success for ro in rollouts)),
        "annotator": "auto_annotate (simulator progress)",
        "steps": steps,
        "lr_scale": lr_scale,
        "seed": seed,
        "adapt_seconds": seconds,
        "target_mse": float(np.mean(np.concatenate([(t - p) ** 2 for t, p in zip(targets, truth)]))),
        "final_corr_rm1": final_corr(model, episodes, truth),
        "final_corr_rm2": final_corr(adapted, episodes, truth),
    }
    partial = out.with_name(out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)  # an interrupted save
    adapted.save(partial)
    shutil.rmtree(out, ignore_errors=True)
    partial.rename(out)
    write_json_atomic(record_path, record)  # written last: its presence marks RM2 as finished
    return adapted, record
