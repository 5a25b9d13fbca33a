"""The benchmark's stages: collect -> encode -> train -> predict -> metrics -> report.

Every stage is cached and resumable. Datasets resume per episode (``tasks.collect``), embeddings per
episode (``rewards.cache``), and each backend's checkpoint and predictions carry a stamp (a hash of the
config sections they depend on and of the training data) so a rerun skips what is done and still valid;
``force`` redoes a stage. One backend failing (an exception in its training or prediction) is recorded
and the others go on.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import time
import traceback
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.bench_config import BenchConfig
from rewards.data import FEATURES_VERSION
from sarm2_env.atomic import atomic_path, write_json_atomic
from tasks.collect import EVAL_SPLITS, SPLITS, CollectConfig, SuiteConfig, collect, collect_suite
from tasks.motion_controls import (
    CONTROL_SEED,
    CONTROL_STEPS,
    CONTROLS,
    NEGATIVE_CONTROLS,
    NEGATIVE_SEED,
    NEGATIVE_STEPS,
    collect_controls,
    control_dir,
    negative_dir,
)

log = logging.getLogger("benchmarks")

STAGES = ("collect", "encode", "train", "predict", "report")
#: evaluation / training sets (the benchmark dataset's splits, ``tasks.collect.SPLITS``)
SETS = tuple(SPLITS)
EVAL_SETS = EVAL_SPLITS
#: prefix of the motion-control sets in ``RunState.features`` and of their prediction keys (``motion:play|<id>``)
MOTION = "motion:"
#: prefix of the training negatives' sets in ``RunState.features`` (``negatives:random``)
NEGATIVES = "negatives:"
#: prefix of the robustness sets (held-out episodes again under camera and lighting jitter,
#: ``jitter:heldout_demos``) in ``RunState.features`` and in their prediction keys
JITTER = "jitter:"
#: prefix of the wider-pose robustness sets (held-out episodes' seeds again with the tasks' object position and yaw
#: ranges widened, ``poses:heldout_demos``)
POSES = "poses:"
#: both robustness prefixes, in report order
ROBUSTNESS = (JITTER, POSES)


def held_out_split(name: str) -> str:
    """The held-out split a set repeats (``jitter:heldout_demos`` -> ``heldout_demos``); other names unchanged."""
    for prefix in ROBUSTNESS:
        if name.startswith(prefix):
            return name.removeprefix(prefix)
    return name


@dataclasses.dataclass
class RunState:
    """What the stages share within one run."""

    config: BenchConfig
    run_dir: Path
    task_ids: list[str]
    force: set[str]
    progress: bool = True
    encoder: Any = None
    features: dict[str, list] = dataclasses.field(default_factory=dict)  # set -> [EpisodeFeatures]
    models: dict[str, Any] = dataclasses.field(default_factory=dict)
    failures: dict[str, dict[str, str]] = dataclasses.field(default_factory=dict)
    skipped: dict[str, str] = dataclasses.field(default_factory=dict)
    timings: dict[str, float] = dataclasses.field(default_factory=dict)

    def data_root(self) -> Path:
        """Where this run's datasets live (a suite per operator variability and held-out frame rate)."""
        d = self.config.data
        # Suites at another operator variability or held-out frame rate live beside the default one (the old
        # defaults keep the old folder name).
        suffix = f"-var{d.variability:g}" if d.variability else ""
        suffix += f"-every{d.heldout_render_every}" if d.heldout_render_every != 1 else ""
        return Path(d.root) / f"{d.image_size}px-seed{d.seed}{suffix}"

    def data_dir(self, split: str) -> Path:
        """The dataset directory of ``split`` (a held-out split, its jittered copy ``jitter:<split>`` or its
        wider-pose copy ``poses:<split>``)."""
        d = self.config.data
        if split.startswith(JITTER):
            return self.data_root() / f"jitter{d.robustness_jitter:g}" / held_out_split(split)
        if split.startswith(POSES):
            return self.data_root() / f"poses{d.robustness_pose_range:g}" / held_out_split(split)
        return self.data_root() / split


# --- small helpers ---------------------------------------------------------------------------------


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _suite(state: RunState) -> SuiteConfig:
    d = state.config.data
    return SuiteConfig(
        tasks=tuple(state.task_ids),
        train_demos=d.train_demos,
        heldout_demos=d.heldout_demos,
        heldout_rollouts=d.heldout_rollouts,
        rollout_skills=d.rollout_skills,
        image_size=d.image_size,
        seed=d.seed,
        variability=d.variability,
        heldout_render_every=d.heldout_render_every,
    )


def _seeds(state: RunState, split: str) -> range:
    return _suite(state).seeds(split)


def select_episodes(dataset, task_ids: Sequence[str], seeds: Iterable[int]) -> list[int]:
    """Indices of ``dataset``'s episodes of ``task_ids`` x ``seeds`` (a folder shared by several runs may hold more)."""
    wanted = {(t, s) for t in task_ids for s in seeds}
    return [i for i, e in enumerate(dataset.entries) if (e["task_id"], int(e["seed"])) in wanted]


def encoded_episodes(state: RunState, root: Path, seeds: Iterable[int]) -> list:
    """The run's tasks' episodes of ``seeds`` in the dataset at ``root`` as ``EpisodeFeatures``, encoded once
    through the on-disk embedding cache with the run's encoder."""
    from rewards.cache import EmbeddingCache
    from rewards.data import EpisodeFeatures
    from sarm2_env.dataset import EpisodeDataset

    dataset = EpisodeDataset(root)
    indices = select_episodes(dataset, state.task_ids, seeds)
    cache = EmbeddingCache(dataset, state.encoder)
    cache.ensure(indices, progress=state.progress)
    return [EpisodeFeatures.from_episode(dataset.load(i, frames=False), cache.get(i)) for i in indices]


def _record_failure(state: RunState, backend: str, stage: str, exc: BaseException) -> None:
    state.failures[backend] = {
        "stage": stage,
        "error": f"{type(exc).__name__}: {exc}",
        "traceback": "".join(traceback.format_exception(exc))[-4000:],
    }
    log.error("backend %s failed in %s: %s: %s (the other backends go on)", backend, stage, type(exc).__name__, exc)


# --- stage 1: collect ------------------------------------------------------------------------------


def stage_collect(state: RunState) -> None:
    """Scripted-expert episodes for every split (resumes episode by episode)."""
    fresh = SETS if "collect" in state.force else ()
    log.info("collect %s -> %s/", ", ".join(SETS), state.data_root())
    # One recording process per core (up to 4): the simulator and its renderer use one core each.
    workers = max(1, min(4, os.cpu_count() or 1))
    counts = collect_suite(_suite(state), state.data_root(), progress_bar=state.progress, fresh=fresh, workers=workers)
    for split, c in counts.items():
        log.info("collect %s: %d written, %d already there", split, c["written"], c["skipped"])
    for control, path in _motion_dirs(state).items():
        c = collect_controls(
            path,
            state.task_ids,
            control,
            _motion_seeds(state),
            steps=CONTROL_STEPS,
            image_size=state.config.data.image_size,
            render_every=state.config.data.heldout_render_every,
        )
        log.info("collect motion control %s: %d written, %d already there", control, c["written"], c["skipped"])
    for split in robustness_sets(state):
        if "collect" in state.force and state.data_dir(split).exists():
            shutil.rmtree(state.data_dir(split))
        c = collect(_robustness_collect_config(state, split), str(state.data_dir(split)), state.progress, workers)
        log.info("collect %s: %d written, %d already there", split, c["written"], c["skipped"])
    for control, path in _negative_dirs(state).items():
        seeds = _negative_seeds(state)
        size = state.config.data.image_size
        c = collect_controls(path, state.task_ids, control, seeds, steps=NEGATIVE_STEPS, image_size=size)
        log.info("collect motion negatives %s: %d written, %d already there", control, c["written"], c["skipped"])


def robustness_sets(state: RunState) -> list[str]:
    """The robustness sets' names (``jitter:<held-out split>``, then ``poses:<held-out split>`` when the run widens
    the poses), when the run has them."""
    d = state.config.data
    if not d.robustness_episodes:
        return []
    prefixes = ROBUSTNESS if d.robustness_pose_range > 1.0 else (JITTER,)
    return [f"{prefix}{split}" for prefix in prefixes for split in EVAL_SETS]


def _robustness_seeds(state: RunState, split: str) -> range:
    """A robustness set's seeds: the first ``robustness_episodes`` of its held-out split's."""
    seeds = _seeds(state, held_out_split(split))
    return range(seeds.start, seeds.start + state.config.data.robustness_episodes)


def _robustness_collect_config(state: RunState, split: str) -> CollectConfig:
    """What a robustness set records: its held-out split's episodes (seeds, skills, frame rate), under jitter or
    with wider poses."""
    d = state.config.data
    held_out = _suite(state).split_config(held_out_split(split))
    assert held_out is not None  # robustness_episodes <= the split's size, checked by DataConfig
    if split.startswith(POSES):
        return dataclasses.replace(held_out, episodes=d.robustness_episodes, pose_range=d.robustness_pose_range)
    return dataclasses.replace(held_out, episodes=d.robustness_episodes, jitter=d.robustness_jitter)


def _motion_dirs(state: RunState) -> dict[str, Path]:
    """Folders of the motion-control evaluation episodes, when the run has them."""
    d = state.config.data
    if not state.config.controls or not d.motion_controls:
        return {}
    return {c: control_dir(state.data_root(), c, CONTROL_STEPS, d.heldout_render_every) for c in CONTROLS}


def _motion_seeds(state: RunState) -> range:
    return range(CONTROL_SEED, CONTROL_SEED + state.config.data.motion_controls)


def _negative_dirs(state: RunState) -> dict[str, Path]:
    """Folders of the motion negatives used for training, when the run has them."""
    if not state.config.data.motion_negatives:
        return {}
    return {c: negative_dir(state.data_root(), c, NEGATIVE_STEPS) for c in NEGATIVE_CONTROLS}


def _negative_seeds(state: RunState) -> range:
    return range(NEGATIVE_SEED, NEGATIVE_SEED + state.config.data.motion_negatives)


# --- stage 2: encode -------------------------------------------------------------------------------


def stage_encode(state: RunState) -> None:
    """Encode every selected episode once into the on-disk embedding cache, then load features."""
    from rewards.cache import EmbeddingCache
    from rewards.data import EpisodeFeatures
    from rewards.encoders import make_image_encoder
    from sarm2_env.dataset import EpisodeDataset

    c = state.config
    state.encoder = make_image_encoder(
        c.encoder,
        image_size=c.data.image_size if c.encoder != "siglip2" else None,
        path=c.encoder_path,
        device=c.device,
    )
    sources = [(split, state.data_dir(split), _seeds(state, split)) for split in SETS]
    sources += [(f"{MOTION}{c}", path, _motion_seeds(state)) for c, path in _motion_dirs(state).items()]
    sources += [(f"{NEGATIVES}{c}", path, _negative_seeds(state)) for c, path in _negative_dirs(state).items()]
    sources += [(split, state.data_dir(split), _robustness_seeds(state, split)) for split in robustness_sets(state)]
    for split, path, seeds in sources:
        if not path.exists():
            state.features[split] = []
            continue
        dataset = EpisodeDataset(path)
        indices = select_episodes(dataset, state.task_ids, seeds)
        cache = EmbeddingCache(dataset, state.encoder)
        if "encode" in state.force and cache.directory.exists():
            shutil.rmtree(cache.directory)
        cache.ensure(indices, progress=state.progress)
        state.features[split] = [
            EpisodeFeatures.from_episode(dataset.load(i, frames=False), cache.get(i)) for i in indices
        ]
        log.info("encode %s: %d episodes (%d frames encoded now)", split, len(indices), cache.frames_encoded)


# --- stage 3: train --------------------------------------------------------------------------------


def _backend_config(state: RunState, cls: type) -> dict[str, Any]:
    config_cls = cls.config_cls
    overrides = dict(state.config.train.overrides.get(cls.name, {}))
    fields = {f.name for f in dataclasses.fields(config_cls)}
    if "steps" in fields:
        overrides.setdefault("steps", state.config.train.steps)
    return config_cls.preset(state.config.train.preset, **overrides).to_dict()


def _train_fingerprint(state: RunState, with_negatives: bool = False) -> str:
    import hashlib

    ids = sorted(f.episode_id for f in state.features.get("train_demos", []))
    if with_negatives and _negatives(state):
        ids += sorted(f"negative:{f.episode_id}" for f in _negatives(state))
    return hashlib.sha256(json.dumps(ids).encode()).hexdigest()[:12]


def _negatives(state: RunState) -> list:
    """The run's training negatives (every moving control's episodes), empty when it has none."""
    return [f for s, fs in sorted(state.features.items()) if s.startswith(NEGATIVES) for f in fs]


def load_checkpoint(state: RunState, name: str, checkpoint: Path):
    """Backend ``name`` from ``checkpoint``, sharing the run's already-loaded image encoder (one copy in memory)."""
    from rewards.registry import make_reward_model

    model = make_reward_model(name, checkpoint=checkpoint, device=state.config.device)
    if model.encoder_spec is not None:
        model.set_image_encoder(state.encoder)
    return model


def _build_backend(state: RunState, name: str):
    """A trained (or loaded from a valid stamp) or zero-shot backend; raises on failure."""
    from rewards.registry import make_reward_model, reward_model_class

    cls = reward_model_class(name)
    c = state.config
    if not cls.trainable:
        if not cls.requires_vlm:
            return make_reward_model(name)
        if c.vlm is None:
            raise _Skip("no VLM configured: set `vlm: {kind: local, path: ...}` or `{kind: http, base_url: ...}`")
        return make_reward_model(name, vlm=dict(c.vlm))
    kwargs: dict[str, Any] = {"encoder": state.encoder, "text_encoder": c.text_encoder, "device": c.device}
    if c.text_encoder_path:
        kwargs["text_encoder_path"] = c.text_encoder_path
    model = cls(_backend_config(state, cls), **kwargs)  # cheap: no weights until fit or load
    config = model.config.to_dict()  # what the backend really uses (ablations adjust the preset)
    ckpt = state.run_dir / "checkpoints" / name
    stamp_file = state.run_dir / "checkpoints" / f"{name}.stamp.json"
    stamp = {
        "config": config,
        "train_data": _train_fingerprint(state, with_negatives=cls.trains_on_negatives),
        "encoder": state.encoder.spec.key,
        "text_encoder": c.text_encoder,
        "seed": c.seed,
    }
    if "train" not in state.force and _read_json(stamp_file) == json.loads(json.dumps(stamp, default=str)):
        try:
            model = load_checkpoint(state, name, ckpt)
            log.info("train %s: valid checkpoint found, skipped", name)
            return model
        except Exception as exc:  # a damaged checkpoint is retrained, not fatal
            log.warning("train %s: cached checkpoint unusable (%s); retraining", name, exc)
    from rewards.data import split_episodes

    train, val = split_episodes(state.features["train_demos"], 0.1, seed=c.seed)
    extra = {"negatives": _negatives(state)} if cls.trains_on_negatives and _negatives(state) else {}
    log.info(
        "train %s: %d demos (+%d for validation), %d motion negatives, config %s",
        name,
        len(train),
        len(val),
        len(extra.get("negatives", [])),
        config,
    )
    started = time.perf_counter()
    model.fit(train, val, out_dir=ckpt, seed=c.seed, progress=state.progress, eval_every=c.train.eval_every, **extra)
    state.timings[f"train/{name}"] = time.perf_counter() - started
    write_json_atomic(stamp_file, stamp)
    return model


class _Skip(Exception):
    """A backend that cannot run in this configuration (reported as skipped, with the reason)."""


def stage_train(state: RunState) -> None:
    """Train (or resume, or reuse) every trainable backend of the run on the encoded training demos."""
    for name in state.config.backends:
        try:
            state.models[name] = _build_backend(state, name)
        except _Skip as why:
            state.skipped[name] = str(why)
            log.warning("backend %s skipped: %s", name, why)
        except Exception as exc:
            _record_failure(state, name, "train", exc)


# --- stage 4: predict ------------------------------------------------------------------------------


def _controls(feats, other_task: tuple[str, str] | None) -> dict[str, Any]:
    """The control inputs of docs/design.md §6 for one held-out demo, as EpisodeFeatures."""
    n = feats.length
    out = {
        "static": dataclasses.replace(
            feats,
            frame_of_step=np.repeat(feats.step_rows(np.arange(1)), n),
            state=np.repeat(feats.state[:1], n, axis=0),
        ),
        "reversed": dataclasses.replace(
            feats,
            frame_of_step=feats.step_rows()[::-1].copy(),
            state=feats.state[::-1].copy(),
            primitive=feats.primitive[::-1].copy(),
            progress=feats.progress[::-1].copy(),
        ),
    }
    if other_task is not None:
        out["wrong_instruction"] = dataclasses.replace(feats, task_id=other_task[0], instruction=other_task[1])
    return out


def _episode_input(state: RunState, model, split: str, feats):
    """Features for embedding / reference backends; the episode with frames for pixel judges."""
    if not model.needs_frames:
        return feats
    from sarm2_env.dataset import EpisodeDataset

    dataset = EpisodeDataset(state.data_dir(split))
    episode = dataset.load(dataset.index_of(feats.episode_id), frames=True)
    return episode.with_frames_at_every_step()  # a query-rate episode: the newest rendered frame at every step


def _flatten_output(out) -> dict[str, np.ndarray]:
    arrays = {"progress": np.asarray(out.progress, dtype=np.float32)}
    if out.primitive_probs is not None:
        arrays["primitive"] = np.asarray(out.primitive_probs).argmax(-1).astype(np.int16)
    for key in ("expert_weights", "group", "raw_logprob"):
        if key in out.extras and out.extras[key] is not None:
            arrays[key] = np.asarray(out.extras[key])
    if out.query_indices is not None:
        arrays["query_indices"] = np.asarray(out.query_indices)
    if not np.isfinite(arrays["progress"]).all():
        from sarm2_env.errors import NonFiniteError

        raise NonFiniteError("`progress`: expected finite predictions; the backend returned NaN or inf")
    return arrays


def predict_backend(state: RunState, name: str, model) -> dict[str, dict[str, np.ndarray]]:
    """``{"<set>|<episode_id>[|control]": {array name: array}}`` for every evaluation episode (and controls)."""
    from tqdm import tqdm

    instructions = {}
    for f in state.features.get("train_demos", []) + state.features.get("heldout_demos", []):
        instructions.setdefault(f.task_id, f.instruction)
    jobs = []
    for split in (*EVAL_SETS, *robustness_sets(state)):
        for feats in state.features.get(split, []):
            jobs.append((split, feats, None, feats))
    if state.config.controls and name != "sparse" and not model.needs_frames:  # the oracle: their physics progress
        for split in sorted(s for s in state.features if s.startswith(MOTION)):
            jobs.extend((split, feats, None, feats) for feats in state.features[split])
    if state.config.controls and name not in ("oracle", "sparse"):
        first = {}
        for feats in state.features.get("heldout_demos", []):
            first.setdefault(feats.task_id, feats)
        for task, feats in first.items():
            others = [(t, s) for t, s in instructions.items() if t != task]
            for control, variant in _controls(feats, others[0] if others else None).items():
                jobs.append(("heldout_demos", feats, control, variant))
    results: dict[str, dict[str, np.ndarray]] = {}
    for split, feats, control, variant in tqdm(jobs, desc=f"predict {name}", disable=not state.progress):
        episode = variant if control is not None else _episode_input(state, model, split, feats)
        if control is not None and model.needs_frames:
            continue  # controls of pixel judges would need re-rendered frames; not run (VLM cost)
        key = f"{split}|{feats.episode_id}" + (f"|{control}" if control else "")
        results[key] = _flatten_output(model.predict_episode(episode))
    return results


def _save_predictions(path: Path, results: dict[str, dict[str, np.ndarray]]) -> None:
    flat = {f"{key}|{name}": array for key, arrays in results.items() for name, array in arrays.items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path, suffix=".npz") as tmp:  # np.savez appends .npz to a name without it
        np.savez_compressed(tmp, **flat)


def _load_predictions(path: Path) -> dict[str, dict[str, np.ndarray]] | None:
    try:
        with np.load(path, allow_pickle=False) as data:
            results: dict[str, dict[str, np.ndarray]] = {}
            for flat in data.files:
                key, _, name = flat.rpartition("|")
                results.setdefault(key, {})[name] = data[flat]
            return results
    except (OSError, ValueError, EOFError):
        return None


def stage_predict(state: RunState) -> dict[str, dict[str, dict[str, np.ndarray]]]:
    """Every backend's predictions on the held-out sets (cached per backend); split -> episode -> outputs."""
    predictions = {}
    eval_ids = sorted(f.episode_id for s in EVAL_SETS for f in state.features.get(s, []))
    motion_ids = sorted(f"{s}|{f.episode_id}" for s, fs in state.features.items() if s.startswith(MOTION) for f in fs)
    robustness_ids = sorted(f"{s}|{f.episode_id}" for s in robustness_sets(state) for f in state.features.get(s, []))
    for name, model in state.models.items():
        path = state.run_dir / "predictions" / f"{name}.npz"
        stamp_file = path.with_suffix(".stamp.json")
        checkpoint_stamp = _read_json(state.run_dir / "checkpoints" / f"{name}.stamp.json")
        stamp = json.loads(
            json.dumps(
                {
                    "checkpoint": checkpoint_stamp,
                    # the weights themselves: a retrain (`--force train`) with an unchanged stamp still re-predicts
                    "weights": _read_json(state.run_dir / "checkpoints" / name / "config.json"),
                    "episodes": eval_ids,
                    "features": FEATURES_VERSION,
                    "motion_controls": motion_ids,
                    "controls": state.config.controls,
                    "vlm": state.config.vlm if model.needs_frames else None,
                    # only with a robustness set, so that the predictions of runs without one stay valid
                    **({"robustness": robustness_ids} if robustness_ids else {}),
                },
                default=str,
            )
        )
        if "predict" not in state.force and _read_json(stamp_file) == stamp:
            cached = _load_predictions(path)
            if cached is not None:
                predictions[name] = cached
                log.info("predict %s: cached predictions valid, skipped", name)
                continue
        try:
            started = time.perf_counter()
            predictions[name] = predict_backend(state, name, model)
            state.timings[f"predict/{name}"] = time.perf_counter() - started
            _save_predictions(path, predictions[name])
            write_json_atomic(stamp_file, stamp)
        except Exception as exc:
            _record_failure(state, name, "predict", exc)
    return predictions
