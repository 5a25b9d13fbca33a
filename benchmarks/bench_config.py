"""Benchmark configuration: YAML files in ``benchmarks/configs/`` loaded strictly into frozen dataclasses.

Unknown keys are errors that name the key and list the known ones; ``--set section.key=value`` on the
command line overrides any key with the same checks.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

import yaml

from rewards.encoders import DEFAULT_REWARD_ENCODER
from sarm2_env.errors import ConfigError, check_fraction, check_positive_int, check_range

CONFIG_DIR = Path(__file__).resolve().parent / "configs"


#: Data settings added after runs had been made, with the value those runs had: a setting at that value is left out
#: of a config's digest, so the cached stages of earlier runs stay valid.
_DEFAULTS_BEFORE = (
    ("variability", 0.0),
    ("heldout_render_every", 1),
    ("motion_controls", 0),
    ("motion_negatives", 0),
    ("robustness_episodes", 0),
    ("robustness_jitter", 1.0),
    ("robustness_pose_range", 1.0),
)


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Per task: full-skill demos for training, held-out demos, held-out imperfect rollouts (mixed skills).

    Seeds: training demos from ``seed``, held-out demos from ``seed + 10000``, rollouts from ``seed + 20000``
    (disjoint, and disjoint from the shipped checkpoint's demos at 100000+). ``variability`` is the scripted
    experts' operator variability in [0, 1] (0: identical pacing on every seed; 1: teleoperation-like).
    ``heldout_render_every``: held-out episodes get camera frames every that many steps plus the last step, and
    every backend is queried and scored at those steps (10 = 1 Hz at our 10 Hz control rate, the paper's
    evaluation rate; 1 = every step, as runs before the setting).
    ``motion_controls``: evaluation episodes per task of each motion control (idle, random actions, arm play;
    :mod:`tasks.motion_controls`), 30 s each at the held-out frame rate, predicted by every backend when
    ``controls`` is on: the learned progress they earn should stay near their physics progress (about 0).
    ``motion_negatives``: training episodes per task of each moving control (random actions, arm play; 15 s, every
    frame), given to the backends that train on negatives (SARM2 and its ablations) with their physics progress
    as the target, so that motion alone earns no progress. 0: none (demos only).
    ``robustness_episodes``: per task, the first that many held-out demos and held-out rollouts are collected
    again with camera-pose and lighting jitter at ``robustness_jitter`` (:mod:`tasks.jitter`): the same seeds, so
    the same motion and ground truth under other pixels. Every backend is scored on them and the summary reports
    them apart, paired with the same episodes without jitter. 0: no robustness set.
    ``robustness_pose_range``: above 1 (at most 2), those episodes are also collected with every task's object
    position and yaw ranges widened by this factor (the tasks' ``pose_range`` option, no jitter): the same seeds
    and skills in scenes further from the training distribution, reported apart and paired by seed with the
    registered scenes. 1: no wider-pose set.
    """

    train_demos: int = 10
    heldout_demos: int = 3
    heldout_rollouts: int = 6
    rollout_skills: tuple[float, ...] = (0.3, 0.6, 0.3, 0.8)
    image_size: int = 128
    seed: int = 0
    variability: float = 0.0
    heldout_render_every: int = 1
    motion_controls: int = 0
    motion_negatives: int = 0
    robustness_episodes: int = 0
    robustness_jitter: float = 1.0
    robustness_pose_range: float = 1.0
    root: str = "data/benchmark"

    def __post_init__(self) -> None:
        counts = ("train_demos", "heldout_demos", "heldout_rollouts", "motion_controls", "motion_negatives")
        for name in (*counts, "robustness_episodes"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 0:
                raise ConfigError(f"`data.{name}` must be an integer >= 0; got {value!r}")
        if self.train_demos < 2:
            raise ConfigError(
                f"`data.train_demos` must be >= 2 (one is held out for validation); got {self.train_demos}"
            )
        if not self.rollout_skills or any(not 0.0 <= s <= 1.0 for s in self.rollout_skills):
            raise ConfigError(f"`data.rollout_skills` must be numbers in [0, 1]; got {self.rollout_skills!r}")
        check_fraction("data.variability", self.variability)
        if self.robustness_episodes > min(self.heldout_demos, self.heldout_rollouts):
            raise ConfigError(
                "`data.robustness_episodes` repeats the first held-out demos and rollouts of every task with jitter: "
                f"it must be <= data.heldout_demos ({self.heldout_demos}) and data.heldout_rollouts "
                f"({self.heldout_rollouts}); got {self.robustness_episodes}"
            )
        if check_fraction("data.robustness_jitter", self.robustness_jitter, " (> 0)") == 0:
            raise ConfigError("`data.robustness_jitter` must be in (0, 1] (0 would repeat the episodes unchanged)")
        from tasks.base import MAX_POSE_RANGE

        check_range("data.robustness_pose_range", self.robustness_pose_range, 1.0, MAX_POSE_RANGE, " (1 = no set)")
        if self.robustness_pose_range > 1.0 and not self.robustness_episodes:
            raise ConfigError(
                "`data.robustness_pose_range` widens the poses of the robustness episodes: set "
                f"data.robustness_episodes > 0 too; got {self.robustness_pose_range:g} with 0 episodes"
            )
        check_positive_int("data.heldout_render_every", self.heldout_render_every, " (1 = a frame at every step)")
        if not isinstance(self.image_size, int) or not 16 <= self.image_size <= 1024:
            raise ConfigError(f"`data.image_size` must be an integer in [16, 1024]; got {self.image_size!r}")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Training of every trainable backend: a preset, a step count, and per-backend config overrides."""

    preset: str = "small"
    steps: int = 1000
    eval_every: int = 500
    overrides: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.steps, int) or self.steps < 1:
            raise ConfigError(f"`train.steps` must be a positive integer; got {self.steps!r}")
        if not isinstance(self.overrides, dict) or any(not isinstance(v, dict) for v in self.overrides.values()):
            raise ConfigError(
                f"`train.overrides` must map backend names to dicts of config fields; got {self.overrides!r}"
            )


@dataclasses.dataclass(frozen=True)
class BenchConfig:
    """One benchmark run. ``tasks: all`` means every registered task."""

    name: str = "quick"
    tasks: tuple[str, ...] | str = "all"
    backends: tuple[str, ...] = ("sarm2",)
    encoder: str = DEFAULT_REWARD_ENCODER
    encoder_path: str | None = None
    text_encoder: str = "minilm"
    text_encoder_path: str | None = None
    vlm: dict[str, Any] | None = None
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)
    controls: bool = True
    plots: bool = True
    out: str = "results"
    device: str | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.backends:
            raise ConfigError("`backends` must name at least one reward backend; got none")
        from rewards.registry import REGISTRY
        from sarm2_env.errors import UnknownNameError

        for name in self.backends:
            if name not in REGISTRY:
                raise UnknownNameError("backend (in `backends`)", name, REGISTRY)
        for name in self.train.overrides:
            # Registered but unselected is fine (`--backends` may pick a subset); a typo is not.
            if name not in REGISTRY:
                raise UnknownNameError("backend (in `train.overrides`)", name, REGISTRY)
        if self.vlm is not None and not isinstance(self.vlm, dict):
            raise ConfigError(f"`vlm` must be null or a mapping (kind: local|http, ...); got {self.vlm!r}")

    def task_ids(self) -> list[str]:
        """The registered ids this run covers (short names resolved; unknown names are errors)."""
        import tasks

        if self.tasks == "all":
            return list(tasks.TASKS)
        return [tasks.resolve_task_id(t) for t in self.tasks]

    def to_dict(self) -> dict[str, Any]:
        """The config as plain values (stored beside the run's results)."""
        return dataclasses.asdict(self)

    def digest(self, *sections: str) -> str:
        """Short hash of the named sections (all when none), to tell whether a cached stage is still valid."""
        body = self.to_dict()
        picked = {k: body[k] for k in sections} if sections else body
        for key, before in _DEFAULTS_BEFORE:
            if "data" in picked and picked["data"].get(key) == before:
                picked["data"] = {k: v for k, v in picked["data"].items() if k != key}
        return hashlib.sha256(json.dumps(picked, sort_keys=True, default=str).encode()).hexdigest()[:12]


def _build(cls: type, data: Any, where: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"`{where or 'config'}` must be a mapping; got {data!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        import difflib

        hints = [
            f"{u!r} (did you mean {c[0]!r}?)" if (c := difflib.get_close_matches(u, fields, 1)) else repr(u)
            for u in unknown
        ]
        raise ConfigError(f"unknown key(s) in `{where or 'config'}`: {', '.join(hints)}; known: {sorted(fields)}")
    kwargs = {}
    for key, value in data.items():
        if key == "data":
            value = _build(DataConfig, value, "data")
        elif key == "train":
            value = _build(TrainConfig, value, "train")
        elif key in ("backends", "rollout_skills") or (key == "tasks" and isinstance(value, list)):
            if not isinstance(value, list):
                raise ConfigError(f"`{where + '.' if where else ''}{key}` must be a list; got {value!r}")
            value = tuple(value)
        kwargs[key] = value
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise ConfigError(f"`{where or 'config'}`: {exc}") from exc


def set_key(data: dict[str, Any], dotted: str, value: Any) -> None:
    """Apply ``--set a.b=value`` to a config mapping; every path segment must exist in the schema."""
    parts = dotted.split(".")
    schema: type | None = BenchConfig
    node = data
    for i, part in enumerate(parts):
        names = {f.name: f for f in dataclasses.fields(schema)} if schema is not None else None
        if names is not None and part not in names:
            raise ConfigError(f"`--set {dotted}`: unknown key {'.'.join(parts[: i + 1])!r}; known: {sorted(names)}")
        if i == len(parts) - 1:
            node[part] = value
            return
        if node.get(part) is None:  # e.g. `vlm: null` in the file, then --set vlm.kind=local
            node[part] = {}
        node = node[part]
        if not isinstance(node, dict):
            raise ConfigError(f"`--set {dotted}`: {'.'.join(parts[: i + 1])!r} is not a section")
        schema = {"data": DataConfig, "train": TrainConfig}.get(part) if schema is BenchConfig else None


def load_config(name_or_path: str, overrides: dict[str, Any] | None = None) -> BenchConfig:
    """Load ``benchmarks/configs/<name>.yaml`` (or a path) and apply ``{dotted.key: value}`` overrides."""
    path = Path(name_or_path)
    if not path.suffix:
        path = CONFIG_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))
        raise ConfigError(f"`--config`: no config {str(path)!r}; known: {known} or a path to a YAML file")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from exc
    for key, value in (overrides or {}).items():
        set_key(data, key, value)
    return _build(BenchConfig, data, "")
