"""Simple reference backends: bounds and sanity checks every learned reward is read against.

* ``oracle`` — ground-truth progress from the simulator's physics (upper bound; test double): the calibrated
  progress (demo-time units) where the episode or env has it, else the raw progress. Offline it reads
  ``EpisodeFeatures.physics_progress``; online ``info["calibrated_progress"]`` (else ``info["progress"]``).
* ``time_linear`` — ``t / mean demo length`` of the task, clipped to 1: what a model that only counts time
  would say. Fitted on the training demos (their mean length per task).
* ``sparse`` — 0 until the episode's ground-truth success, then 1 (the env's own sparse reward).

None of them reads images; they take episodes with or without frames or embeddings.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from typing_extensions import override

from rewards.base import RewardModel, RewardOutput, Session, TrainableRewardModel
from rewards.data import EpisodeFeatures, episode_labels
from sarm2_env.atomic import atomic_write_bytes
from sarm2_env.errors import CheckpointError, DatasetError, SARM2Error


def physics_progress(info: dict) -> float:
    """The simulator's ground-truth progress in one step's ``info``: ``info["calibrated_progress"]`` (physics in
    the demo-time units reward models learn) where the env reports it, else ``info["progress"]``."""
    return float(info["calibrated_progress"] if "calibrated_progress" in info else info["progress"])


def _features(episode) -> EpisodeFeatures:
    if isinstance(episode, EpisodeFeatures):
        return episode
    return EpisodeFeatures(
        **episode_labels(episode),
        embeddings=np.zeros((episode.length, 0, 0), dtype=np.float32),
        state=np.asarray(episode.state, dtype=np.float32),
    )


class _Reference(RewardModel):
    """Shared plumbing: no encoder, per-frame values from ground truth held in the session's info."""

    role = "reference"

    key: str = ""
    needs_frames = False

    def features(self, episode, embeddings=None) -> EpisodeFeatures:
        return _features(episode)

    def start(self, task: str) -> Session:
        return Session(task=task, instruction=task)

    def _from_info(self, session: Session) -> float:
        if self.key not in session.info:
            raise SARM2Error(
                f"{self.name} online needs the env's ground truth info[{self.key!r}] at every step; got keys "
                f"{sorted(session.info)}"
            )
        return float(session.info[self.key])

    def step_batch(self, sessions: Sequence[Session], frame_embeddings: np.ndarray, states: np.ndarray) -> np.ndarray:
        values = np.zeros(len(sessions), dtype=np.float32)
        for i, session in enumerate(sessions):
            session.embeddings.append(np.empty(0))  # frame count only; references keep no frames
            values[i] = self._value(session)
            session.last = {"progress": float(values[i])}
        return values

    def _value(self, session: Session) -> float:
        return self._from_info(session)


class OracleRewardModel(_Reference):
    """Ground-truth progress from physics (upper bound; never available on hardware)."""

    name = "oracle"
    key = "progress"

    @property
    @override
    def label(self) -> str:
        return "oracle (physics ground truth)"

    def _value(self, session: Session) -> float:
        if "calibrated_progress" not in session.info:  # raw physics where the env has no demo-time units
            return self._from_info(session)
        return float(session.info["calibrated_progress"])

    @override
    def predict_episode(self, episode, embeddings=None) -> RewardOutput:
        feats = self.features(episode)
        progress = feats.physics_progress.astype(np.float32)
        return RewardOutput(progress=progress, query_indices=np.arange(feats.length))


class SparseRewardModel(_Reference):
    """0 until ground-truth success, then 1 (the env's sparse task reward)."""

    name = "sparse"
    key = "success"

    @property
    @override
    def label(self) -> str:
        return "sparse success (ground truth)"

    def _value(self, session: Session) -> float:
        done = session.context.get("succeeded", False) or bool(self._from_info(session))
        session.context["succeeded"] = done
        return float(done)

    @override
    def predict_episode(self, episode, embeddings=None) -> RewardOutput:
        feats = self.features(episode)
        if feats.success_flags is None:
            raise DatasetError("sparse reference: expected per-frame success flags; got none")
        reached = np.maximum.accumulate(feats.success_flags.astype(np.float32))
        return RewardOutput(progress=reached, query_indices=np.arange(feats.length))


@dataclasses.dataclass(frozen=True)
class TimeLinearConfig:
    """``time_linear`` has nothing to tune; the dataclass keeps the trainable-backend contract."""

    def to_dict(self) -> dict[str, Any]:
        """No fields."""
        return {}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TimeLinearConfig:
        """The (empty) config; any key is a :class:`ConfigError`."""
        if data:
            from sarm2_env.errors import ConfigError

            raise ConfigError(f"TimeLinearConfig: unknown keys {sorted(data)}; it has none")
        return cls()

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> TimeLinearConfig:
        """The (empty) config; overrides are a :class:`ConfigError`."""
        return cls.from_dict(overrides)


class TimeLinearRewardModel(TrainableRewardModel):
    """``t / mean demo length`` per task, clipped to 1 (fitted on training demos)."""

    name = "time_linear"
    role = "reference"
    config_cls = TimeLinearConfig

    needs_frames = False

    def __init__(self, config: Any = None, **_: Any) -> None:
        super().__init__()
        self.config = TimeLinearConfig()
        self.mean_length: dict[str, float] = {}

    @property
    @override
    def label(self) -> str:
        return "time-linear prior (t / mean demo length)"

    @override
    def covers(self, task: str) -> bool:
        return task in self.mean_length

    @override
    def fit(self, train: Sequence[EpisodeFeatures], val: Sequence[EpisodeFeatures] = (), *, out_dir=None, **_: Any):
        demos = [f for f in train if f.success]
        if not demos:
            raise DatasetError("time_linear: expected successful demonstrations; got none")
        for task in sorted({f.task_id for f in demos}):
            self.mean_length[task] = float(np.mean([f.length for f in demos if f.task_id == task]))
        if out_dir is not None:
            self.save(out_dir)
        return {"mean_length": dict(self.mean_length)}

    def _length(self, task: str) -> float:
        if task not in self.mean_length:
            raise CheckpointError(
                f"time_linear has no demo length for task {task!r}; fitted: {sorted(self.mean_length)}"
            )
        return self.mean_length[task]

    @override
    def predict_episode(self, episode, embeddings=None) -> RewardOutput:
        feats = _features(episode)
        denom = max(self._length(feats.task_id) - 1.0, 1.0)
        progress = np.minimum(np.arange(feats.length, dtype=np.float32) / denom, 1.0).astype(np.float32)
        return RewardOutput(progress=progress, query_indices=np.arange(feats.length))

    @override
    def start(self, task: str) -> Session:
        return Session(task=task, instruction=task, context={"denominator": max(self._length(task) - 1.0, 1.0)})

    @override
    def step_batch(self, sessions: Sequence[Session], frame_embeddings: np.ndarray, states: np.ndarray) -> np.ndarray:
        values = np.zeros(len(sessions), dtype=np.float32)
        for i, session in enumerate(sessions):
            session.embeddings.append(np.empty(0))
            values[i] = min(session.frame / session.context["denominator"], 1.0)
            session.last = {"progress": float(values[i])}
        return values

    @override
    def save(self, path: str | os.PathLike, *, half: bool = False) -> Path:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        body = {"format": "sarm2-reference", "model": self.name, "mean_length": self.mean_length}
        atomic_write_bytes(path / "config.json", json.dumps(body).encode())
        return path

    @classmethod
    @override
    def load(cls, path: str | os.PathLike, **_: Any) -> TimeLinearRewardModel:
        file = Path(path) / "config.json"
        try:
            meta = json.loads(file.read_text())
        except FileNotFoundError as exc:
            raise CheckpointError(f"`checkpoint`: no time_linear checkpoint at {str(path)!r}") from exc
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise CheckpointError(f"{file}: expected JSON; got unreadable content ({exc})") from exc
        if meta.get("model") != cls.name:
            raise CheckpointError(f"{file}: expected a 'time_linear' checkpoint; got one for {meta.get('model')!r}")
        model = cls()
        model.mean_length = {str(k): float(v) for k, v in meta["mean_length"].items()}
        return model
