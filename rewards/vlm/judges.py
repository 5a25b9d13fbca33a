"""Zero-shot VLM judges as reward models: GVL, TOPReward and a RoboReward-style prompt.

Each judge wraps any VLM backend (:mod:`rewards.vlm.backends`) and reads one camera's raw frames (``top`` by
default): ``encoder_spec`` is ``None``, so :meth:`~rewards.base.RewardModel.encode_frames` hands them the pixels.

* ``gvl`` — :class:`GVLRewardModel`. Samples ``num_frames`` frames evenly (first and last included), shows the
  first as the initial scene anchored at 0 %, the others shuffled, and asks for each one's task-completion
  percentage in one generation; answers are un-shuffled, mapped to [0, 1] and linearly interpolated to every
  frame. ``normalization="none"``.
* ``topreward`` — :class:`TOPRewardModel`. For ``num_prefixes`` episode prefixes (ending at evenly spaced frames,
  the last frame included), shows up to ``max_images`` frames of the prefix and scores log P("True") of the
  completion statement from the model's next-token log-probs; progress is the per-episode min-max normalisation
  of those log-probs (``normalization="per-episode-minmax"``, a flat 0 when they are all equal), interpolated to
  every frame. ``extras["raw_logprob"]`` (and ``"raw_logprob_false"``) hold the raw log-probs, interpolated the
  same way, so ``raw_logprob[query_indices]`` are the exact queried values.
* ``roboreward_prompt`` — :class:`RoboRewardPromptModel`. Per prefix, asks for a 1-5 end-state progress score
  (rubric prompt), maps it to ``(s - 1) / 4``, interpolates. ``extras["score"]`` holds the scores.

Replies that cannot be read are retried (``max_retries``; GVL reshuffles, both add a format reminder) and then
raise :class:`~rewards.vlm.backends.VLMReplyError`: a judge never turns an unreadable reply into a 0.

Online (``start`` / ``step_batch``): a session keeps the judged camera's frames (only that camera, to bound
memory) and queries the VLM at frames ``0, query_every, 2 * query_every, ...`` (default every 10 frames = 1 Hz at
the stations' 10 Hz), returning the last queried value in between. At a query frame ``t`` the online value equals
``predict_episode`` on the prefix ``0..t`` (its last frame); between query frames it is the value of the last
query, not of the prefix. TOPReward's online value at ``t`` is min-max normalised over the prefixes of ``0..t``,
so it costs ``num_prefixes`` VLM calls per query (the log-prob of each prefix end is cached for the session);
GVL and RoboReward-style cost one generation per query.

Labels name the VLM (``"GVL (Qwen2.5-VL-3B-Instruct, local)"``): a prompted general VLM is never a published
reward model, and tables must not suggest otherwise.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
from typing_extensions import override

from rewards.base import RewardModel, RewardOutput, Session
from rewards.data import check_state
from rewards.vlm.backends import VLMReplyError, make_vlm
from rewards.vlm.prompts import (
    evenly_spaced,
    gvl_prompt,
    parse_gvl_reply,
    parse_score_reply,
    roboreward_prompt,
    score_to_progress,
    topreward_prompt,
)
from sarm2_env.constants import CAMERAS
from sarm2_env.errors import ConfigError, InputShapeError, NonFiniteError, SARM2Error

__all__ = [
    "GVLConfig",
    "GVLRewardModel",
    "JudgeConfig",
    "RoboRewardPromptConfig",
    "RoboRewardPromptModel",
    "TOPRewardConfig",
    "TOPRewardModel",
    "VLMJudge",
    "task_instruction",
]

log = logging.getLogger(__name__)

_REMINDER = "\nAnswer strictly in the format asked for above."
_ENV_ID = re.compile(r"^(?:[\w.-]+/)?[\w.:-]+-v\d+$")


def _positive_int(name: str, value: Any, minimum: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"`{name}` must be an int >= {minimum}; got {value!r}")


# --- configs -----------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class JudgeConfig:
    """Options shared by the VLM judges.

    ``camera``: which camera's frames the VLM sees. ``query_every``: online query period in frames.
    ``max_retries``: extra generations after an unreadable reply. ``template``: a ``str.format`` prompt template
    replacing the default (see :mod:`rewards.vlm.prompts` for its fields).
    """

    camera: str = "top"
    query_every: int = 10
    max_retries: int = 2
    template: str | None = None

    def __post_init__(self) -> None:
        if self.camera not in CAMERAS:
            raise ConfigError(f"`camera` must be one of {list(CAMERAS)}; got {self.camera!r}")
        _positive_int("query_every", self.query_every)
        _positive_int("max_retries", self.max_retries, minimum=0)
        if self.template is not None and not isinstance(self.template, str):
            raise ConfigError(f"`template` must be None or a str.format template; got {type(self.template).__name__}")


@dataclasses.dataclass(frozen=True)
class GVLConfig(JudgeConfig):
    """GVL options: ``num_frames`` sampled frames (the first anchored at 0 %), ``max_new_tokens`` for the reply,
    ``seed`` of the shuffle (with the episode length and the attempt number, so a prefix always gets the same
    order)."""

    num_frames: int = 16
    max_new_tokens: int = 1024
    seed: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        _positive_int("num_frames", self.num_frames, minimum=2)
        _positive_int("max_new_tokens", self.max_new_tokens)
        _positive_int("seed", self.seed, minimum=0)


@dataclasses.dataclass(frozen=True)
class TOPRewardConfig(JudgeConfig):
    """TOPReward options: ``num_prefixes`` scored prefixes, at most ``max_images`` frames shown per prefix, the
    answer tokens whose log-probs are read (``true_token`` is the score; ``false_token`` is kept for analysis)."""

    num_prefixes: int = 8
    max_images: int = 8
    true_token: str = "True"
    false_token: str = "False"

    def __post_init__(self) -> None:
        super().__post_init__()
        _positive_int("num_prefixes", self.num_prefixes)
        _positive_int("max_images", self.max_images)
        for name in ("true_token", "false_token"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise ConfigError(f"`{name}` must be a non-empty string; got {value!r}")


@dataclasses.dataclass(frozen=True)
class RoboRewardPromptConfig(JudgeConfig):
    """RoboReward-style options: ``num_prefixes`` scored prefixes, at most ``max_images`` frames per prefix,
    ``max_new_tokens`` for the reply."""

    num_prefixes: int = 8
    max_images: int = 8
    max_new_tokens: int = 64

    def __post_init__(self) -> None:
        super().__post_init__()
        _positive_int("num_prefixes", self.num_prefixes)
        _positive_int("max_images", self.max_images)
        _positive_int("max_new_tokens", self.max_new_tokens)


# --- instruction lookup ------------------------------------------------------------------------------------
def task_instruction(task: str, instructions: Mapping[str, str] | None = None) -> str:
    """The instruction a VLM should read for ``task``: ``instructions[task]`` when given; the ``instruction`` of
    the registered Gymnasium env class when ``task`` is an env id such as ``"SARM2/FoldShorts-v0"``; else ``task``
    itself (already an instruction)."""
    if instructions and task in instructions:
        return instructions[task]
    if not isinstance(task, str) or not _ENV_ID.match(task):
        return task
    try:
        import importlib

        import gymnasium as gym

        entry = gym.spec(task).entry_point
        if isinstance(entry, str):
            module, _, name = entry.partition(":")
            entry = getattr(importlib.import_module(module), name)
        text = getattr(entry, "instruction", None)
    except Exception:  # not a registered id (or its module fails to import): the string is the instruction
        return task
    return text if isinstance(text, str) and text else task


# --- the judges --------------------------------------------------------------------------------------------
class VLMJudge(RewardModel):
    """Shared plumbing of the zero-shot VLM judges: config, frame access, instruction lookup and online querying.

    Args:
        vlm: a VLM backend, or its config mapping (``{"kind": "local", "path": ...}`` or
            ``{"kind": "http", "base_url": ..., "model": ...}``; see :func:`rewards.vlm.backends.make_vlm`).
        config: the judge's config dataclass (or a mapping of its fields); ``**overrides`` replace fields.
        instructions: task id -> instruction, for online tasks given by id (registered env ids are looked up).
    """

    role = "published_baseline"

    trainable: ClassVar[bool] = False
    requires_vlm: ClassVar[bool] = True
    title: ClassVar[str] = ""
    config_class: ClassVar[type[JudgeConfig]] = JudgeConfig

    def __init__(
        self,
        vlm: Any = None,
        config: JudgeConfig | Mapping[str, Any] | None = None,
        *,
        instructions: Mapping[str, str] | None = None,
        **overrides: Any,
    ) -> None:
        super().__init__()
        if vlm is None:
            raise ConfigError(
                f"{self.name} needs a VLM: pass vlm={{'kind': 'local', 'path': '/dir'}} or "
                "vlm={'kind': 'http', 'base_url': 'http://localhost:8000', 'model': '<name>'} (or a backend object)"
            )
        self.config = self._make_config(config, overrides)
        self.vlm = make_vlm(vlm)
        self.instructions = dict(instructions or {})
        self.num_vlm_calls = 0
        self.last_reply: str | None = None

    @classmethod
    def _make_config(cls, config: Any, overrides: dict[str, Any]) -> JudgeConfig:
        fields = {f.name for f in dataclasses.fields(cls.config_class)}
        if isinstance(config, cls.config_class):
            values = dataclasses.asdict(config)
        elif config is None or isinstance(config, Mapping):
            values = dict(config or {})
        else:
            expected = cls.config_class.__name__
            raise ConfigError(f"`config` must be a {expected} or a mapping; got {type(config).__name__}")
        values.update(overrides)
        unknown = sorted(set(values) - fields)
        if unknown:
            raise ConfigError(f"{cls.name}: unknown options {unknown}; known: {sorted(fields)} (and vlm, instructions)")
        return cls.config_class(**values)

    # --- description -------------------------------------------------------------------------------
    @property
    def vlm_label(self) -> str:
        """How the VLM behind the judge is named in tables."""
        return str(getattr(self.vlm, "label", None) or type(self.vlm).__name__)

    @property
    @override
    def label(self) -> str:
        return f"{self.title} ({self.vlm_label})"

    @override
    def covers(self, task: str) -> bool:
        return True  # zero-shot: any task with an instruction

    # --- inputs ------------------------------------------------------------------------------------
    def _instruction(self, task: str) -> str:
        return task_instruction(task, self.instructions)

    def _episode_frames(self, episode: Any, frames: Any) -> np.ndarray:
        camera = self.config.camera
        source = frames if frames is not None else getattr(episode, "frames", None)
        if isinstance(source, Mapping):
            if camera not in source:
                raise InputShapeError(
                    f"`episode.frames`: {self.name} judges camera {camera!r}; got cameras {sorted(source)} "
                    "(load the episode with frames=True, or pass camera=...)"
                )
            source = source[camera]
        if source is None:
            raise InputShapeError(
                f"{self.name} judges raw frames: pass an Episode loaded with frames=True (or frames as `embeddings`); "
                f"got {type(episode).__name__} without frames"
            )
        array = np.asarray(source)
        if array.ndim == 5 and array.shape[1] == len(CAMERAS):  # (T, C, H, W, 3)
            array = array[:, CAMERAS.index(camera)]
        if array.ndim != 4 or array.shape[-1] != 3 or array.dtype != np.uint8 or array.shape[0] < 1:
            raise InputShapeError(
                f"`frames` of camera {camera!r}: expected (T, H, W, 3) uint8 with T >= 1; "
                f"got shape {array.shape}, dtype {array.dtype}"
            )
        return array

    # --- offline -----------------------------------------------------------------------------------
    def predict_episode(self, episode, embeddings=None) -> RewardOutput:
        """Per-frame progress of a recorded episode (an Episode with frames; ``embeddings`` may instead hold the
        raw frames: a camera mapping, ``(T, H, W, 3)`` of the judged camera, or ``(T, C, H, W, 3)``)."""
        frames = self._episode_frames(episode, embeddings)
        instruction = getattr(episode, "instruction", "") or self._instruction(getattr(episode, "task_id", ""))
        if not instruction:
            raise InputShapeError(f"`episode`: {self.name} needs the task instruction; got none")
        return self._judge(frames, instruction)

    def _judge(self, frames: Sequence[np.ndarray], instruction: str, cache: dict | None = None) -> RewardOutput:
        """Progress of every frame of ``frames`` (the judged camera, time order)."""
        raise NotImplementedError

    def _last_value(self, frames: Sequence[np.ndarray], instruction: str, cache: dict) -> float:
        """``_judge(frames).progress[-1]``, computed as cheaply as the judge allows."""
        return float(self._judge(frames, instruction, cache).progress[-1])

    # --- VLM calls ---------------------------------------------------------------------------------
    def _generate(self, images: list[np.ndarray], prompt: str, max_new_tokens: int) -> str:
        self.num_vlm_calls += 1
        reply = self.vlm.generate(images, prompt, max_new_tokens)
        if not isinstance(reply, str):
            raise VLMReplyError(f"{self.name}: the VLM backend returned {type(reply).__name__}, expected text")
        self.last_reply = reply
        return reply

    def _retry_failed(self, errors: list[VLMReplyError]) -> VLMReplyError:
        tries = len(errors)
        return VLMReplyError(
            f"{self.label}: no usable reply after {tries} attempt{'s' if tries > 1 else ''}; last problem: {errors[-1]}"
        )

    # --- online ------------------------------------------------------------------------------------
    @override
    def start(self, task: str) -> Session:
        return Session(
            task=task,
            instruction=self._instruction(task),
            context={"cache": {}, "value": 0.0, "query_frame": -1},
        )

    def _session_instruction(self, session: Session) -> str:
        # a task given by an id we could not resolve: the env's info["task"] carries the instruction
        if session.instruction == session.task and _ENV_ID.match(session.task or ""):
            task = session.info.get("task") if isinstance(session.info, dict) else None
            if isinstance(task, str) and task:
                session.instruction = task
        return session.instruction

    def step_batch(self, sessions: Sequence[Session], frame_embeddings: np.ndarray, states: np.ndarray) -> np.ndarray:
        """Append each session's frame (``frame_embeddings`` = raw frames ``(N, C, H, W, 3)`` uint8, as
        :meth:`encode_frames` returns them) and return progress ``(N,)``: a fresh VLM query at frames that are a
        multiple of ``query_every``, the last queried value otherwise."""
        frames = np.asarray(frame_embeddings)
        n = len(sessions)
        if frames.ndim != 5 or frames.shape[:2] != (n, len(CAMERAS)) or frames.shape[-1] != 3:
            raise InputShapeError(
                f"`frame_embeddings`: {self.name} expects raw frames of shape ({n}, {len(CAMERAS)}, H, W, 3); "
                f"got {frames.shape}"
            )
        if frames.dtype != np.uint8:
            raise InputShapeError(f"`frame_embeddings`: expected uint8 frames; got {frames.dtype}")
        states = check_state(states, (n,), name="states")
        camera = CAMERAS.index(self.config.camera)
        out = np.empty(n, dtype=np.float32)
        for i, session in enumerate(sessions):
            session.embeddings.append(np.array(frames[i, camera]))  # a copy: the batch array is not kept alive
            session.states.append(states[i].copy())
            t = session.frame
            queried = t % self.config.query_every == 0
            if queried:
                instruction = self._session_instruction(session)
                value = self._last_value(session.embeddings, instruction, session.context["cache"])
                if not math.isfinite(value):
                    raise NonFiniteError(f"{self.label}: non-finite progress {value} at frame {t}")
                session.context["value"], session.context["query_frame"] = float(value), t
            out[i] = session.context["value"]
            session.last = {
                "progress": float(out[i]),
                "primitive": None,
                "queried": queried,
                "query_frame": session.context["query_frame"],
            }
        return out

    def step(self, frame_embeddings: Mapping[str, np.ndarray] | np.ndarray, state: np.ndarray) -> float:
        """Progress at the newest frame from this frame's raw images (``{camera: (H, W, 3)}`` or ``(C, H, W, 3)``
        uint8) and the 14-d state; see :meth:`step_batch`."""
        if self._session is None:
            raise SARM2Error(f"{type(self).__name__}.step called before reset(task)")
        if isinstance(frame_embeddings, Mapping):
            missing = [c for c in CAMERAS if c not in frame_embeddings]
            if missing:
                raise InputShapeError(f"`frame_embeddings`: expected cameras {list(CAMERAS)}; missing {missing}")
            frame_embeddings = np.stack([np.asarray(frame_embeddings[c]) for c in CAMERAS])
        frames = np.asarray(frame_embeddings)
        state = check_state(state)
        return float(self.step_batch([self._session], frames[None], state[None])[0])


def _interp(length: int, indices: np.ndarray, values: np.ndarray) -> np.ndarray:
    return np.interp(np.arange(length), indices, values).astype(np.float32)


class GVLRewardModel(VLMJudge):
    """Generative Value Learning (arXiv 2411.04549) prompted zero-shot on one camera (see the module docstring)."""

    name: ClassVar[str] = "gvl"
    title: ClassVar[str] = "GVL"
    config_class: ClassVar[type[JudgeConfig]] = GVLConfig

    def _judge(self, frames: Sequence[np.ndarray], instruction: str, cache: dict | None = None) -> RewardOutput:
        c = self.config
        length = len(frames)
        idx = evenly_spaced(length, c.num_frames)  # (K,) with idx[0] == 0, idx[-1] == T - 1
        values = np.zeros(len(idx), dtype=np.float64)  # the first frame is anchored at 0
        rest = idx[1:]
        if len(rest):
            errors: list[VLMReplyError] = []
            for attempt in range(c.max_retries + 1):
                order = np.random.default_rng([c.seed, length, attempt]).permutation(len(rest))
                shown = rest[order]  # "Frame j+1" in the prompt is frame rest[order[j]]
                prompt = gvl_prompt(instruction, len(rest), c.template) + (_REMINDER if attempt else "")
                images = [frames[int(idx[0])]] + [frames[int(i)] for i in shown]
                reply = self._generate(images, prompt, c.max_new_tokens)
                try:
                    percent = parse_gvl_reply(reply, len(rest))
                except VLMReplyError as exc:
                    errors.append(exc)
                    log.info("%s: unreadable reply (attempt %d): %s", self.label, attempt + 1, exc)
                    continue
                unshuffled = np.empty(len(rest))
                unshuffled[order] = percent
                values[1:] = unshuffled / 100.0
                break
            else:
                raise self._retry_failed(errors)
        return RewardOutput(progress=_interp(length, idx, values), normalization="none", query_indices=idx)


class TOPRewardModel(VLMJudge):
    """TOPReward (arXiv 2602.19313): log P("True") of a completion statement per prefix, min-max per episode."""

    name: ClassVar[str] = "topreward"
    title: ClassVar[str] = "TOPReward"
    config_class: ClassVar[type[JudgeConfig]] = TOPRewardConfig

    def _logprobs(self, frames: Sequence[np.ndarray], end: int, instruction: str) -> tuple[float, float]:
        c = self.config
        shown = evenly_spaced(end + 1, c.max_images)
        prompt = topreward_prompt(instruction, len(shown), c.template)
        self.num_vlm_calls += 1
        scores = self.vlm.next_token_logprobs([frames[int(i)] for i in shown], prompt, [c.true_token, c.false_token])
        try:
            true, false = float(scores[c.true_token]), float(scores[c.false_token])
        except (KeyError, TypeError, ValueError) as exc:
            raise VLMReplyError(f"{self.label}: the VLM backend gave no log-prob for {exc}; got {scores!r}") from exc
        if not (math.isfinite(true) and math.isfinite(false)):
            raise NonFiniteError(f"{self.label}: non-finite log-probs True={true}, False={false} at prefix end {end}")
        return true, false

    def _judge(self, frames: Sequence[np.ndarray], instruction: str, cache: dict | None = None) -> RewardOutput:
        length = len(frames)
        ends = evenly_spaced(length, self.config.num_prefixes)  # prefix k is frames[0 .. ends[k]]
        cache = {} if cache is None else cache
        raw = np.empty((len(ends), 2), dtype=np.float64)
        for k, end in enumerate(ends):
            key = int(end)
            if key not in cache:
                cache[key] = self._logprobs(frames, key, instruction)
            raw[k] = cache[key]
        true = raw[:, 0]
        span = true.max() - true.min()
        norm = (true - true.min()) / span if span > 1e-12 else np.zeros_like(true)
        return RewardOutput(
            progress=_interp(length, ends, norm),
            normalization="per-episode-minmax",
            query_indices=ends,
            extras={"raw_logprob": _interp(length, ends, true), "raw_logprob_false": _interp(length, ends, raw[:, 1])},
        )


class RoboRewardPromptModel(VLMJudge):
    """A general VLM prompted with a RoboReward-style 1-5 end-state rubric (not the fine-tuned RoboReward model)."""

    name: ClassVar[str] = "roboreward_prompt"
    title: ClassVar[str] = "RoboReward-style prompt"
    config_class: ClassVar[type[JudgeConfig]] = RoboRewardPromptConfig

    def _score(self, frames: Sequence[np.ndarray], end: int, instruction: str, cache: dict) -> int:
        if end in cache:
            return cache[end]
        c = self.config
        shown = evenly_spaced(end + 1, c.max_images)
        images = [frames[int(i)] for i in shown]
        errors: list[VLMReplyError] = []
        for attempt in range(c.max_retries + 1):
            prompt = roboreward_prompt(instruction, len(images), c.template) + (_REMINDER if attempt else "")
            try:
                cache[end] = parse_score_reply(self._generate(images, prompt, c.max_new_tokens))
                return cache[end]
            except VLMReplyError as exc:
                errors.append(exc)
                log.info("%s: unreadable reply (attempt %d): %s", self.label, attempt + 1, exc)
        raise self._retry_failed(errors)

    def _judge(self, frames: Sequence[np.ndarray], instruction: str, cache: dict | None = None) -> RewardOutput:
        length = len(frames)
        ends = evenly_spaced(length, self.config.num_prefixes)
        cache = {} if cache is None else cache
        scores = np.array([self._score(frames, int(end), instruction, cache) for end in ends], dtype=np.float64)
        return RewardOutput(
            progress=_interp(length, ends, score_to_progress(scores)),
            normalization="none",
            query_indices=ends,
            extras={"score": _interp(length, ends, scores)},
        )

    def _last_value(self, frames: Sequence[np.ndarray], instruction: str, cache: dict) -> float:
        # progress[-1] of _judge is the score of the whole prefix (its last query ends at the last frame)
        return float(score_to_progress(self._score(frames, len(frames) - 1, instruction, cache)))
