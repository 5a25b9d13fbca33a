"""Prompt builders and reply parsers of the zero-shot VLM judges: pure functions, no model, no I/O.

A prompt is one string. Where an image goes, it holds :data:`IMAGE` (``"<image>"``); the backends cut the string
there and interleave the images in order (one placeholder per image; a prompt without placeholders gets all
images first). The wording below is ours; the structure follows each method's description:

* **GVL** (Generative Value Learning, arXiv 2411.04549): the episode's first frame is shown as the initial
  scene and anchored at 0 %; the other sampled frames follow in shuffled order, numbered ``Frame 1..K-1``; the
  model answers one task-completion percentage per frame. Shuffling breaks the temporal prior a VLM would
  otherwise copy (answering 0, 10, 20, ... whatever it sees).
* **TOPReward** (arXiv 2602.19313): the frames of an episode prefix, then a completion statement the model is
  asked to call ``True`` or ``False``; the score is log P(``True``) of the first answer token, never a
  generated number.
* **RoboReward-style** (arXiv 2601.00675): the frames of a prefix and a rubric of five end-state progress levels;
  the model answers ``ANSWER: <1-5>``. This prompts a general VLM: it is not the fine-tuned RoboReward model
  (to score a released RoboReward checkpoint, pass its model card's prompt as ``template``).

Parsers raise :class:`~rewards.vlm.backends.VLMReplyError` (with the reply quoted) when a reply cannot be read;
they never fill a gap with a default value.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

import numpy as np

from rewards.vlm.backends import VLMReplyError
from sarm2_env.errors import ConfigError

__all__ = [
    "IMAGE",
    "GVL_TEMPLATE",
    "ROBOREWARD_TEMPLATE",
    "TOPREWARD_TEMPLATE",
    "count_images",
    "evenly_spaced",
    "gvl_prompt",
    "parse_gvl_reply",
    "parse_score_reply",
    "roboreward_prompt",
    "score_to_progress",
    "split_prompt",
    "topreward_prompt",
]

#: Image placeholder inside prompts (the backends put one image at each occurrence, in order).
IMAGE = "<image>"

#: GVL prompt. Fields: ``{instruction}``, ``{initial}`` (the anchored first frame), ``{frames}`` (the shuffled
#: frames, one ``Frame i: <image>`` line each), ``{num_frames}`` (how many answers are expected), ``{answer_format}``.
GVL_TEMPLATE = (
    "You are an expert in robot manipulation. You judge how far a robot has got with the task: {instruction}.\n"
    "Task completion is a percentage from 0 to 100: 0 means nothing of the task is done yet, 100 means the task "
    "is fully done.\n"
    "This is the initial scene, before the robot has started; its task completion is 0%:\n"
    "{initial}\n"
    "Below are {num_frames} more frames of the same episode. They are in random order, not in time order, so judge "
    "each frame on its own by what it shows.\n"
    "{frames}\n"
    "For the task '{instruction}', give the task completion percentage of each of the {num_frames} frames above, "
    "one line per frame, in this format:\n"
    "{answer_format}"
)

#: TOPReward prompt. Fields: ``{instruction}``, ``{frames}`` (the prefix frames, in time order).
TOPREWARD_TEMPLATE = (
    "The images below are frames, in time order, from a video of a robot.\n"
    "{frames}\n"
    "Statement: the robot has completed the task '{instruction}'.\n"
    "Is the statement True or False? Answer with one word, True or False."
)

#: RoboReward-style prompt. Fields: ``{instruction}``, ``{frames}`` (the prefix frames, in time order).
ROBOREWARD_TEMPLATE = (
    "The images below are frames, in time order, from a video of a robot doing a task.\n"
    "{frames}\n"
    "Task: {instruction}\n"
    "Rate how far the robot got with the task, judging only the state at the end of the video (ignore how long "
    "it took), on this scale:\n"
    "1 - no success: the final state shows no change that matters for the task;\n"
    "2 - minimal progress: the final state shows a small change toward the goal, far from enough;\n"
    "3 - partial completion: good progress, but a major requirement (or several) is not met;\n"
    "4 - near completion: the final state is right except for one minor requirement;\n"
    "5 - perfect completion: the final state meets every requirement.\n"
    "Answer in the format ANSWER: <score>, with the score one of 1, 2, 3, 4, 5."
)


# --- shared helpers ----------------------------------------------------------------------------------------
def count_images(prompt: str) -> int:
    """Number of :data:`IMAGE` placeholders in ``prompt``."""
    return prompt.count(IMAGE)


def split_prompt(prompt: str, num_images: int) -> list[str | int]:
    """Cut ``prompt`` at its image placeholders: text pieces (non-empty str) and image indices (int), in order.

    A prompt without placeholders gets all ``num_images`` images first, then its text.

    Raises:
        ConfigError: the prompt has placeholders but not exactly ``num_images`` of them.
    """
    n = count_images(prompt)
    if n == 0:
        return [*range(num_images), *([prompt] if prompt else [])]
    if n != num_images:
        raise ConfigError(f"`prompt` has {n} image placeholders {IMAGE!r}; got {num_images} images")
    parts: list[str | int] = []
    for i, text in enumerate(prompt.split(IMAGE)):
        if i:
            parts.append(i - 1)
        if text:
            parts.append(text)
    return parts


def evenly_spaced(length: int, count: int) -> np.ndarray:
    """Up to ``count`` distinct frame indices spread evenly over ``range(length)``, first and last included."""
    if length < 1:
        raise ConfigError(f"`length` must be >= 1; got {length}")
    if count < 1:
        raise ConfigError(f"`count` must be >= 1; got {count}")
    if count == 1:
        return np.array([length - 1], dtype=np.int64)
    return np.unique(np.round(np.linspace(0, length - 1, min(count, length))).astype(np.int64))


def _fill(template: str, **fields: object) -> str:
    try:
        return template.format(**fields)
    except (KeyError, IndexError, ValueError) as exc:
        raise ConfigError(
            f"`template` must be a str.format template using only the fields {sorted(fields)}; got error {exc!r}"
        ) from exc


def _quote(reply: str, limit: int = 300) -> str:
    text = reply if len(reply) <= limit else reply[:limit] + "..."
    return repr(text)


_NUMBER = r"[-+]?\d+(?:\.\d+)?"
_BARE = re.compile(rf"(?<![\w.])({_NUMBER})(?!\w)")  # a number standing alone (not inside "v2" or "3D")


# --- GVL ---------------------------------------------------------------------------------------------------
def gvl_prompt(instruction: str, num_frames: int, template: str | None = None) -> str:
    """GVL prompt for the anchored first frame plus ``num_frames`` shuffled frames (``1 + num_frames`` images:
    the initial scene first, then ``Frame 1`` ... ``Frame num_frames`` in the order they are shown)."""
    if num_frames < 1:
        raise ConfigError(f"`num_frames` must be >= 1; got {num_frames}")
    frames = "\n".join(f"Frame {i}: {IMAGE}" for i in range(1, num_frames + 1))
    answer_format = "\n".join(f"Frame {i}: <percentage>%" for i in range(1, min(num_frames, 2) + 1))
    if num_frames > 2:
        answer_format += f"\n...\nFrame {num_frames}: <percentage>%"
    prompt = _fill(
        template or GVL_TEMPLATE,
        instruction=instruction,
        initial=IMAGE,
        frames=frames,
        num_frames=num_frames,
        answer_format=answer_format,
    )
    if count_images(prompt) != num_frames + 1:
        raise ConfigError(
            f"`template` must place {{initial}} and {{frames}} once each ({num_frames + 1} images); "
            f"got {count_images(prompt)} image placeholders"
        )
    return prompt


def _json_candidates(reply: str) -> list[object]:
    """JSON values embedded in ``reply`` (a fenced block, or the outermost ``{...}`` / ``[...]`` spans)."""
    out = []
    spans = re.findall(r"```(?:json)?\s*(.*?)```", reply, flags=re.S)
    for open_, close in (("{", "}"), ("[", "]")):
        start, end = reply.find(open_), reply.rfind(close)
        if 0 <= start < end:
            spans.append(reply[start : end + 1])
    for span in spans:
        try:
            out.append(json.loads(span))
        except (json.JSONDecodeError, ValueError):
            continue
    return out


def _as_number(value: object) -> tuple[float, bool] | None:
    """``(number, had_percent_sign)`` from a JSON scalar such as ``45``, ``"45%"`` or ``0.45``."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value), False
    if isinstance(value, str):
        match = re.search(rf"({_NUMBER})\s*(%?)", value)
        if match:
            return float(match.group(1)), bool(match.group(2))
    if isinstance(value, dict):
        for key, item in value.items():
            if re.search(r"complet|progress|percent|value|score", str(key), flags=re.I):
                return _as_number(item)
    return None


def _frame_key(key: object) -> int | None:
    match = re.fullmatch(r"\s*(?:frame)?[\s_#-]*(\d+)\s*", str(key), flags=re.I)
    return int(match.group(1)) if match else None


def _from_json(value: object, num_frames: int) -> dict[int, tuple[float, bool]]:
    """Frame number -> (number, had %) from a JSON reply: ``{"Frame 1": 45, ...}``, ``[45, 60, ...]``,
    ``[{"frame": 1, "completion": 45}, ...]`` or any of these under one wrapping key."""
    found: dict[int, tuple[float, bool]] = {}
    if isinstance(value, dict):
        for key, item in value.items():
            frame = _frame_key(key)
            number = _as_number(item) if frame is not None else None
            if number is not None:
                found[frame] = number
        if not found and len(value) == 1:  # {"frames": [...]} / {"completion": {...}}
            return _from_json(next(iter(value.values())), num_frames)
    elif isinstance(value, list):
        if all(isinstance(v, dict) for v in value) and value:
            for item in value:
                frame = next((_frame_key(v) for k, v in item.items() if re.fullmatch(r"(?i)frame.*|id|index", k)), None)
                number = _as_number({k: v for k, v in item.items() if not re.fullmatch(r"(?i)frame.*|id|index", k)})
                if frame is not None and number is not None:
                    found[frame] = number
        elif len(value) == num_frames:
            for i, item in enumerate(value, start=1):
                number = _as_number(item)
                if number is not None:
                    found[i] = number
    return found


_FRAME_HEAD = re.compile(r"(?im)^[\s>*_#\-|]*(?:frame|image)\s*#?\s*(\d+)\b[\s*_]*[:.)\-–|]")
_FRAME_ANY = re.compile(r"(?i)\b(?:frame|image)\s*#?\s*(\d+)\b")


def _from_text(reply: str, heading: re.Pattern) -> dict[int, tuple[float, bool]]:
    """Frame number -> (number, had %) from ``Frame i: ... 45%`` text, cut at each ``heading`` match. Within a
    frame's text a percentage wins over a bare number, and the last percentage is taken (descriptions come before
    the value); a frame named twice keeps its last value (a final answer after a draft)."""
    heads = list(heading.finditer(reply))
    found: dict[int, tuple[float, bool]] = {}
    for k, head in enumerate(heads):
        end = heads[k + 1].start() if k + 1 < len(heads) else len(reply)
        chunk = reply[head.end() : end]
        percents = re.findall(rf"({_NUMBER})\s*%", chunk)
        if percents:
            found[int(head.group(1))] = (float(percents[-1]), True)
            continue
        numbers = _BARE.findall(chunk)
        if numbers:
            found[int(head.group(1))] = (float(numbers[0]), False)
    return found


def _coverage(found: dict[int, tuple[float, bool]], num_frames: int) -> int:
    return sum(1 for f in found if 1 <= f <= num_frames)


def parse_gvl_reply(reply: str, num_frames: int) -> np.ndarray:
    """Task-completion percentages ``(num_frames,)`` in [0, 100] of ``Frame 1..num_frames`` from a GVL reply.

    Reads ``Frame 3: 45%`` lines (with or without a description before the value, markdown bullets or bold),
    JSON (``{"Frame 1": 45, ...}``, ``[45, 60, ...]``, ``[{"frame": 1, "completion": "45%"}, ...]``), and stray
    text around either. Values are percentages; when no value carries a ``%`` and all lie in [0, 1] with at least
    one fraction, they are read as fractions (0.45 -> 45 %). Values outside [0, 100] are clipped to it. Frame
    numbers outside ``1..num_frames`` are ignored.

    Raises:
        VLMReplyError: a frame has no value (the message lists which), or nothing could be read.
    """
    if not isinstance(reply, str):
        raise VLMReplyError(f"GVL reply: expected text; got {type(reply).__name__}")
    found: dict[int, tuple[float, bool]] = {}
    for value in _json_candidates(reply):
        found = _from_json(value, num_frames)
        if found:
            break
    # line-start headings first (robust to "more than frame 2" inside a description), then mentions anywhere
    # (several frames on one line); the reading that covers more frames wins, JSON on ties
    for heading in (_FRAME_HEAD, _FRAME_ANY):
        text_found = _from_text(reply, heading)
        if _coverage(text_found, num_frames) > _coverage(found, num_frames):
            found = text_found
    found = {f: v for f, v in found.items() if 1 <= f <= num_frames}
    if not found:
        raise VLMReplyError(f"GVL reply: no per-frame completion percentages found in {_quote(reply)}")
    missing = [f for f in range(1, num_frames + 1) if f not in found]
    if missing:
        raise VLMReplyError(
            f"GVL reply: expected a completion percentage for frames 1..{num_frames}; missing frames {missing} "
            f"in {_quote(reply)}"
        )
    values = np.array([found[f][0] for f in range(1, num_frames + 1)], dtype=np.float64)
    any_percent = any(found[f][1] for f in found)
    if not any_percent and np.all((values >= 0) & (values <= 1)) and np.any(values != np.round(values)):
        values = values * 100.0
    if not np.isfinite(values).all():
        raise VLMReplyError(f"GVL reply: non-finite values in {_quote(reply)}")
    return np.clip(values, 0.0, 100.0)


def _prefix_frames_prompt(template: str, instruction: str, num_images: int) -> str:
    """``template`` filled with the instruction and ``num_images`` image placeholders at ``{frames}``."""
    if num_images < 1:
        raise ConfigError(f"`num_images` must be >= 1; got {num_images}")
    prompt = _fill(template, instruction=instruction, frames="\n".join([IMAGE] * num_images))
    if count_images(prompt) != num_images:
        raise ConfigError(f"`template` must place {{frames}} once; got {count_images(prompt)} image placeholders")
    return prompt


# --- TOPReward ---------------------------------------------------------------------------------------------
def topreward_prompt(instruction: str, num_images: int, template: str | None = None) -> str:
    """TOPReward prompt: ``num_images`` prefix frames (time order) and the completion statement to call True/False."""
    return _prefix_frames_prompt(template or TOPREWARD_TEMPLATE, instruction, num_images)


# --- RoboReward-style --------------------------------------------------------------------------------------
def roboreward_prompt(instruction: str, num_images: int, template: str | None = None) -> str:
    """RoboReward-style prompt: ``num_images`` prefix frames (time order), the rubric, and the answer format."""
    return _prefix_frames_prompt(template or ROBOREWARD_TEMPLATE, instruction, num_images)


_SCORE_PATTERNS = (
    re.compile(rf"(?i)\banswer\b[\s*_]*[:=]?[\s*_]*({_NUMBER})"),
    re.compile(rf"(?i)\b(?:score|rating|reward)\b(?:\s+(?:is|of))?[\s*_]*[:=]?[\s*_]*({_NUMBER})"),
    re.compile(rf"({_NUMBER})\s*(?:/|out\s+of)\s*5\b", flags=re.I),
)


def parse_score_reply(reply: str, low: int = 1, high: int = 5) -> int:
    """The integer score in ``[low, high]`` of a reply such as ``"ANSWER: 4"``, ``"Score: 4/5"`` or ``"4"``.

    Looked for in order: ``ANSWER: n`` (the last one), ``score/rating: n``, ``n/5`` or ``n out of 5``, then a
    reply whose only number is ``n``. A value outside the scale or a fraction (``ANSWER: 7``, ``3.5``) is an error,
    not clipped: the scale is discrete.

    Raises:
        VLMReplyError: no score, several different bare numbers, or a value off the scale.
    """
    if not isinstance(reply, str):
        raise VLMReplyError(f"score reply: expected text; got {type(reply).__name__}")
    value: str | None = None
    for pattern in _SCORE_PATTERNS:
        matches = pattern.findall(reply)
        if matches:
            value = matches[-1]
            break
    if value is None:
        numbers = set(_BARE.findall(reply))
        if len(numbers) > 1:
            raise VLMReplyError(
                f"score reply: expected one score {low}-{high}; got several numbers {sorted(numbers)} "
                f"in {_quote(reply)}"
            )
        value = numbers.pop() if numbers else None
    if value is None:
        raise VLMReplyError(f"score reply: expected a score {low}-{high} (ANSWER: <score>); got {_quote(reply)}")
    number = float(value)
    if number != round(number) or not low <= number <= high:
        raise VLMReplyError(
            f"score reply: the score must be an integer in {low}..{high}; got {value} in {_quote(reply)}"
        )
    return int(number)


def score_to_progress(score: int | float | Sequence[float] | np.ndarray, low: int = 1, high: int = 5) -> np.ndarray:
    """Map scores on ``low..high`` to progress in [0, 1]: ``(s - low) / (high - low)`` (1..5 -> 0, .25, ..., 1)."""
    return (np.asarray(score, dtype=np.float64) - low) / float(high - low)
