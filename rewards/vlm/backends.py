"""Vision-language model backends behind one small protocol, for the zero-shot judges of :mod:`rewards.vlm.judges`.

Every backend answers two questions about a list of RGB images and a prompt:

* ``generate(images, prompt, max_new_tokens) -> str``: the greedy (temperature-0) reply text;
* ``next_token_logprobs(images, prompt, candidates) -> {candidate: log-prob}``: the log-probability, under the
  model's full next-token distribution at the start of its reply, of each candidate's first token.

Images are ``(H, W, 3)`` uint8 arrays; the prompt places them with :data:`rewards.vlm.prompts.IMAGE` placeholders
(none: all images first). The prompt is sent as one user turn of the model's chat template, with the assistant
turn opened, so the "next token" is the first token of the answer.

Backends:

* :class:`LocalVLM` — a transformers image-text-to-text model from a local directory (``AutoProcessor`` +
  ``AutoModelForImageTextToText``, ``local_files_only``), e.g. a downloaded ``Qwen/Qwen2.5-VL-3B-Instruct`` or
  ``HuggingFaceTB/SmolVLM-256M-Instruct``. Nothing is downloaded.
* :class:`HTTPVLM` — any OpenAI-compatible ``/v1/chat/completions`` server (vLLM, SGLang, llama.cpp, a hosted
  API), images sent inline as base64 PNG data URLs, standard library only.

:func:`make_vlm` builds either from a config mapping: ``{"kind": "local", "path": "/dir"}`` or
``{"kind": "http", "base_url": "http://host:8000", "model": "Qwen/Qwen2.5-VL-3B-Instruct"}``.
"""

from __future__ import annotations

import abc
import base64
import http.client
import inspect
import json
import logging
import math
import os
import struct
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from typing_extensions import override

from sarm2_env.errors import ConfigError, InputShapeError, SARM2Error, WeightsNotFoundError

__all__ = [
    "HTTPVLM",
    "LocalVLM",
    "VLMBackend",
    "VLMConnectionError",
    "VLMReplyError",
    "encode_png",
    "make_vlm",
    "png_data_url",
]

log = logging.getLogger(__name__)


class VLMReplyError(SARM2Error):
    """A VLM's reply could not be used: unreadable text, a malformed server answer, or missing log-probs."""


class VLMConnectionError(SARM2Error):
    """A VLM server could not be reached (refused, timed out, or failing) after the configured retries."""


# --- shared helpers ----------------------------------------------------------------------------------------
def check_images(images: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Each image as a C-contiguous ``(H, W, 3)`` uint8 array; anything else is an :class:`InputShapeError`."""
    if isinstance(images, np.ndarray):
        images = list(images) if images.ndim == 4 else [images]
    out = []
    for i, image in enumerate(images):
        array = np.asarray(image)
        if array.ndim != 3 or array.shape[-1] != 3 or array.dtype != np.uint8 or min(array.shape[:2]) < 1:
            raise InputShapeError(
                f"`images[{i}]`: expected an (H, W, 3) uint8 RGB image; got shape {array.shape}, dtype {array.dtype}"
            )
        out.append(np.ascontiguousarray(array))
    return out


def _check_candidates(candidates: Sequence[str]) -> list[str]:
    if isinstance(candidates, str) or not candidates or not all(isinstance(c, str) and c for c in candidates):
        raise ConfigError(f"`candidates` must be a non-empty list of non-empty strings; got {candidates!r}")
    return list(candidates)


def encode_png(image: np.ndarray) -> bytes:
    """A minimal, lossless 8-bit RGB PNG of an ``(H, W, 3)`` uint8 image (zlib only; no image library)."""
    (image,) = check_images([image])
    height, width = image.shape[:2]
    rows = np.concatenate([np.zeros((height, 1), dtype=np.uint8), image.reshape(height, width * 3)], axis=1)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit truecolour, no interlace
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows.tobytes(), 6))
        + chunk(b"IEND", b"")
    )


def png_data_url(image: np.ndarray) -> str:
    """``data:image/png;base64,...`` URL of an ``(H, W, 3)`` uint8 image."""
    return "data:image/png;base64," + base64.b64encode(encode_png(image)).decode("ascii")


def _segments(prompt: str, num_images: int) -> list[str | int]:
    from rewards.vlm.prompts import split_prompt

    if not isinstance(prompt, str):
        raise ConfigError(f"`prompt` must be a str; got {type(prompt).__name__}")
    return split_prompt(prompt, num_images)


class VLMBackend(abc.ABC):
    """The protocol every VLM backend implements (the judges also accept any object with these two methods).

    ``label`` names the model and how it runs (``"Qwen2.5-VL-3B-Instruct, local"``); judges put it in theirs.
    """

    label: str = "VLM"

    @abc.abstractmethod
    def generate(self, images: Sequence[np.ndarray], prompt: str, max_new_tokens: int = 256) -> str:
        """Greedy reply text to ``prompt`` with ``images`` at its placeholders."""

    @abc.abstractmethod
    def next_token_logprobs(self, images: Sequence[np.ndarray], prompt: str, candidates: Sequence[str]) -> dict:
        """``{candidate: log P(first token of candidate)}`` for the first token of the reply."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.label!r})"


# --- local transformers model ------------------------------------------------------------------------------
_LOCAL_EXAMPLES = "Qwen/Qwen2.5-VL-3B-Instruct or HuggingFaceTB/SmolVLM-256M-Instruct"


class _NoVideoProcessor:
    """Stands in for a processor's video half where torchvision is missing (videos are never sent here)."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise ConfigError("video input needs torchvision, which this toolkit does not install; send frames as images")

    def to_dict(self) -> dict[str, Any]:
        return {}


def _accept_no_video(self, argument_name: str, argument: Any):
    if isinstance(argument, _NoVideoProcessor):
        return type(argument)
    return super(type(self), self).check_argument_for_proper_class(argument_name, argument)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _chat_template(directory: Path) -> str | None:
    jinja = directory / "chat_template.jinja"
    if jinja.is_file():
        return jinja.read_text(encoding="utf-8")
    for name in ("chat_template.json", "processor_config.json"):
        template = _read_json(directory / name).get("chat_template")
        if isinstance(template, str):
            return template
    return None


def _processor_without_video(directory: Path, error: ImportError):
    """The directory's processor built from its tokenizer and (PIL) image processor, with the video processor
    left out. transformers 5 makes Qwen2-VL / Qwen2.5-VL / SmolVLM2 processors load a video processor that needs
    torchvision (not installable beside the CPU torch build, docs/design.md §3) even for image-only use."""
    import transformers
    from transformers import AutoImageProcessor, AutoTokenizer

    config = {**_read_json(directory / "preprocessor_config.json"), **_read_json(directory / "processor_config.json")}
    name = config.get("processor_class")
    cls = getattr(transformers, name, None) if isinstance(name, str) else None
    if cls is None or "video_processor" not in cls.get_attributes():
        raise error
    tokenizer = AutoTokenizer.from_pretrained(directory, local_files_only=True)
    image_processor = AutoImageProcessor.from_pretrained(directory, local_files_only=True)
    accepted = set(inspect.signature(cls.__init__).parameters) - {"self", "image_processor", "tokenizer"}
    extra = {k: v for k, v in config.items() if k in accepted and k not in ("video_processor", "chat_template")}
    lenient = type(cls.__name__, (cls,), {"check_argument_for_proper_class": _accept_no_video})
    log.info("%s: built %s without its video processor (torchvision is not installed)", directory, cls.__name__)
    return lenient(
        image_processor=image_processor,
        tokenizer=tokenizer,
        video_processor=_NoVideoProcessor(),
        chat_template=_chat_template(directory) or getattr(tokenizer, "chat_template", None),
        **extra,
    )


def _resolve_dtype(dtype: Any, device) -> Any:
    import torch

    if dtype is None:
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    value = getattr(torch, str(dtype).removeprefix("torch."), None)
    if not isinstance(value, torch.dtype) or not value.is_floating_point:
        raise ConfigError(f"`dtype` must be a floating torch dtype such as 'bfloat16' or 'float32'; got {dtype!r}")
    return value


class LocalVLM(VLMBackend):
    """A transformers image-text-to-text model loaded from a local directory; greedy decoding.

    Args:
        path: directory with ``config.json``, the weights and the processor files (tokenizer, image processor,
            chat template), e.g. a local copy of ``Qwen/Qwen2.5-VL-3B-Instruct``. Nothing is downloaded.
        device: torch device; ``cuda`` when available, else ``cpu``.
        dtype: torch dtype (or its name); ``bfloat16`` on CUDA (``float16`` where bf16 is unsupported),
            ``float32`` on CPU.
        label: how tables name the model; by default the directory's name plus ``", local"``.

    Log-probs come from the model's logits for the first reply token (log-softmax over the whole vocabulary).
    A candidate that tokenises to several tokens is scored by its first token only (``"Completed"`` ->
    ``"Comple"``); two candidates sharing a first token get the same value (a warning is logged).

    Where torchvision is missing (always, in this toolkit: docs/design.md §3), processors that bundle a video processor
    (Qwen2-VL, Qwen2.5-VL, SmolVLM2 in transformers 5) are built without it from the directory's tokenizer, PIL
    image processor and chat template; Idefics3-architecture models (SmolVLM-256M/500M-Instruct) load as they are.

    Raises:
        WeightsNotFoundError: ``path`` is missing, or holds no ``config.json``.
        ConfigError: the directory holds no image-text-to-text model, or ``device`` / ``dtype`` are invalid.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None,
        device: Any = None,
        dtype: Any = None,
        label: str | None = None,
    ) -> None:
        hint = (
            "pass path=/dir/with/config.json: a local copy of an image-text-to-text model such as "
            f"{_LOCAL_EXAMPLES} (weights, tokenizer, processor and chat template files); nothing is downloaded"
        )
        if path is None:
            raise WeightsNotFoundError(f"LocalVLM needs local weights: {hint}")
        directory = Path(path).expanduser()
        if not (directory / "config.json").is_file():
            what = "does not exist" if not directory.exists() else "has no config.json"
            raise WeightsNotFoundError(f"`path` {str(directory)!r} {what}: {hint}")
        import torch  # noqa: F401  (fail here, not mid-load, if torch is broken)
        from transformers import AutoModelForImageTextToText, AutoProcessor

        from rewards.encoders.base import quiet_transformers, resolve_device

        self.path = directory
        self.device = resolve_device(device)
        self.dtype = _resolve_dtype(dtype, self.device)
        self.label = label or f"{directory.resolve().name}, local"
        with quiet_transformers():
            try:
                try:
                    self.processor = AutoProcessor.from_pretrained(directory, local_files_only=True)
                except ImportError as exc:
                    if "torchvision" not in str(exc).lower():
                        raise
                    self.processor = _processor_without_video(directory, exc)
                model, info = AutoModelForImageTextToText.from_pretrained(
                    directory, local_files_only=True, dtype=self.dtype, output_loading_info=True
                )
            except OSError as exc:
                raise WeightsNotFoundError(
                    f"`path` {str(directory)!r}: incomplete model directory ({exc}); {hint}"
                ) from exc
            except (ValueError, KeyError) as exc:
                raise ConfigError(
                    f"`path` {str(directory)!r} must hold a transformers image-text-to-text model; got error: {exc}"
                ) from exc
            except ImportError as exc:  # e.g. SmolVLM2's processor needs `num2words`
                raise ConfigError(
                    f"`path` {str(directory)!r}: loading this model's processor needs a missing package: {exc}"
                ) from exc
        if info.get("missing_keys"):
            missing = len(info["missing_keys"])
            log.warning("%s: %d weights missing from the checkpoint (left at random init)", directory, missing)
        self.model = model.to(self.device).eval()
        self.tokenizer = getattr(self.processor, "tokenizer", None)
        if self.tokenizer is None:
            raise ConfigError(f"`path` {str(directory)!r}: the processor has no tokenizer")
        if getattr(self.processor, "chat_template", None) is None:
            raise ConfigError(
                f"`path` {str(directory)!r}: no chat template found (chat_template.jinja / chat_template.json / "
                "processor_config.json); use an instruction-tuned checkpoint"
            )
        self._keeps_logits = "logits_to_keep" in inspect.signature(self.model.forward).parameters

    def _inputs(self, images: Sequence[np.ndarray], prompt: str):
        from PIL import Image

        images = check_images(images)
        content = []
        for part in _segments(prompt, len(images)):
            content.append({"type": "image"} if isinstance(part, int) else {"type": "text", "text": part})
        text = self.processor.apply_chat_template(
            [{"role": "user", "content": content}], add_generation_prompt=True, tokenize=False
        )
        pil = [Image.fromarray(image) for image in images]
        inputs = self.processor(text=[text], images=[pil] if pil else None, return_tensors="pt")
        return inputs.to(self.device, self.dtype)  # floating tensors (pixels) to the model dtype, ids stay ints

    @override
    def generate(self, images: Sequence[np.ndarray], prompt: str, max_new_tokens: int = 256) -> str:
        import copy

        import torch

        if int(max_new_tokens) < 1:
            raise ConfigError(f"`max_new_tokens` must be >= 1; got {max_new_tokens}")
        inputs = self._inputs(images, prompt)
        config = copy.deepcopy(self.model.generation_config)
        config.do_sample, config.num_beams, config.max_new_tokens = False, 1, int(max_new_tokens)
        config.temperature = config.top_p = config.top_k = None
        if config.pad_token_id is None:
            config.pad_token_id = self.tokenizer.pad_token_id or self.tokenizer.eos_token_id
        with torch.inference_mode():
            out = self.model.generate(**inputs, generation_config=config)
        new = out[0, inputs["input_ids"].shape[1] :]
        return self.tokenizer.decode(new, skip_special_tokens=True).strip()

    @override
    def next_token_logprobs(self, images: Sequence[np.ndarray], prompt: str, candidates: Sequence[str]) -> dict:
        import torch

        candidates = _check_candidates(candidates)
        first = {}
        for candidate in candidates:
            ids = self.tokenizer.encode(candidate, add_special_tokens=False)
            if not ids:
                raise ConfigError(f"`candidates`: {candidate!r} tokenises to nothing")
            first[candidate] = int(ids[0])
        if len(set(first.values())) < len(first):
            log.warning("LocalVLM: candidates %s share a first token; they get the same log-prob", candidates)
        inputs = self._inputs(images, prompt)
        kwargs = {"logits_to_keep": 1} if self._keeps_logits else {}
        with torch.inference_mode():
            logits = self.model(**inputs, **kwargs).logits[0, -1].float()
        logp = torch.log_softmax(logits, dim=-1)
        return {candidate: float(logp[token]) for candidate, token in first.items()}


# --- OpenAI-compatible HTTP server -------------------------------------------------------------------------
class HTTPVLM(VLMBackend):
    """A VLM behind an OpenAI-compatible ``/v1/chat/completions`` endpoint (standard library only).

    Args:
        base_url: the server root (``http://localhost:8000``), its ``/v1``, or the full ``.../chat/completions``.
        model: the model name the server serves (sent as ``"model"``).
        api_key: sent as ``Authorization: Bearer <key>`` when given.
        timeout: seconds per request.
        retries: extra attempts after a refused / timed-out connection, an HTTP 429 / 5xx, or a malformed answer
            (not the OpenAI shape); then :class:`VLMConnectionError` (naming the URL) or :class:`VLMReplyError`.
        backoff: seconds before the first retry, doubled each time.
        label: how tables name the model; by default ``"<model>, http"``.
        extra_body: more fields for every request (e.g. ``{"top_k": 1}`` for a server that needs it).

    ``generate`` sends ``temperature: 0``. ``next_token_logprobs`` asks for one token with ``logprobs: true,
    top_logprobs: 20`` and reads the candidates among the top 20 of the first token: a candidate matches a token
    equal to it up to surrounding whitespace (or a leading ``Ġ`` / ``▁`` marker), the best-scoring match wins;
    failing that, the longest token the candidate starts with (its first token). A candidate not in the top 20
    gets the lowest listed log-prob, an upper bound of its true value. A server that returns no log-probs is a
    :class:`VLMReplyError`: it must support ``logprobs`` / ``top_logprobs`` (vLLM and SGLang do).
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        timeout: float = 120.0,
        retries: int = 2,
        backoff: float = 1.0,
        label: str | None = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> None:
        if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
            raise ConfigError(f"`base_url` must be an http(s) URL such as 'http://localhost:8000'; got {base_url!r}")
        if not isinstance(model, str) or not model:
            raise ConfigError(f"`model` must be the served model's name; got {model!r}")
        if not (isinstance(timeout, (int, float)) and timeout > 0):
            raise ConfigError(f"`timeout` must be > 0 seconds; got {timeout!r}")
        if not (isinstance(retries, int) and retries >= 0):
            raise ConfigError(f"`retries` must be an int >= 0; got {retries!r}")
        if not (isinstance(backoff, (int, float)) and backoff >= 0):
            raise ConfigError(f"`backoff` must be >= 0 seconds; got {backoff!r}")
        url = base_url.rstrip("/")
        if not url.endswith("/chat/completions"):
            url = url + ("/chat/completions" if url.endswith("/v1") else "/v1/chat/completions")
        self.url, self.model, self.api_key = url, model, api_key
        self.timeout, self.retries, self.backoff = float(timeout), retries, float(backoff)
        self.extra_body = dict(extra_body or {})
        self.label = label or f"{model}, http"

    def __repr__(self) -> str:
        return f"HTTPVLM(url={self.url!r}, model={self.model!r})"

    def _messages(self, images: Sequence[np.ndarray], prompt: str) -> list[dict[str, Any]]:
        images = check_images(images)
        content: list[dict[str, Any]] = []
        for part in _segments(prompt, len(images)):
            if isinstance(part, int):
                content.append({"type": "image_url", "image_url": {"url": png_data_url(images[part])}})
            else:
                content.append({"type": "text", "text": part})
        return [{"role": "user", "content": content}]

    def _post(self, body: dict[str, Any], read) -> Any:
        """POST ``body``; ``read(reply_json)`` extracts the answer or raises VLMReplyError (retried: malformed)."""
        data = json.dumps({**body, **self.extra_body}).encode("utf-8")
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        last: Exception | None = None
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1))
            request = urllib.request.Request(self.url, data=data, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    raw = response.read()
            except urllib.error.HTTPError as exc:
                detail = exc.read()[:500].decode("utf-8", "replace")
                if exc.code == 429 or exc.code >= 500:
                    last = VLMConnectionError(f"VLM server {self.url} answered HTTP {exc.code}: {detail}")
                    continue
                raise VLMReplyError(f"VLM server {self.url} rejected the request: HTTP {exc.code}: {detail}") from exc
            except (urllib.error.URLError, TimeoutError, ConnectionError, http.client.HTTPException) as exc:
                reason = getattr(exc, "reason", exc)
                last = VLMConnectionError(f"cannot reach the VLM server at {self.url}: {reason}")
                continue
            try:
                reply = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError):
                last = VLMReplyError(f"VLM server {self.url}: expected a JSON answer; got {raw[:200]!r}")
                continue
            try:
                return read(reply)
            except _Malformed as exc:
                last = VLMReplyError(f"VLM server {self.url}: malformed chat-completion answer: {exc}")
                continue
        tries = self.retries + 1
        raise type(last)(f"{last} (after {tries} attempt{'s' if tries > 1 else ''})")

    @override
    def generate(self, images: Sequence[np.ndarray], prompt: str, max_new_tokens: int = 256) -> str:
        if int(max_new_tokens) < 1:
            raise ConfigError(f"`max_new_tokens` must be >= 1; got {max_new_tokens}")
        body = {
            "model": self.model,
            "messages": self._messages(images, prompt),
            "max_tokens": int(max_new_tokens),
            "temperature": 0,
        }
        return self._post(body, _reply_text)

    @override
    def next_token_logprobs(self, images: Sequence[np.ndarray], prompt: str, candidates: Sequence[str]) -> dict:
        candidates = _check_candidates(candidates)
        body = {
            "model": self.model,
            "messages": self._messages(images, prompt),
            "max_tokens": 1,
            "temperature": 0,
            "logprobs": True,
            "top_logprobs": 20,
        }
        top = self._post(body, lambda reply: _top_logprobs(reply, self.url))
        return _match_candidates(top, candidates)


class _Malformed(Exception):
    """The server's JSON is not a chat completion (retried, then a VLMReplyError)."""


def _first_choice(reply: Any) -> dict[str, Any]:
    if not isinstance(reply, dict):
        raise _Malformed(f"expected a JSON object; got {type(reply).__name__}")
    if "error" in reply and "choices" not in reply:
        raise _Malformed(f"the server reported an error: {str(reply['error'])[:300]}")
    choices = reply.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise _Malformed(f"expected a non-empty 'choices' list; got {str(reply)[:300]}")
    return choices[0]


def _reply_text(reply: Any) -> str:
    message = _first_choice(reply).get("message")
    content = message.get("content") if isinstance(message, dict) else None
    if isinstance(content, list):  # content parts
        content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
    if not isinstance(content, str):
        raise _Malformed(f"expected choices[0].message.content text; got {str(message)[:300]}")
    return content.strip()


def _top_logprobs(reply: Any, url: str) -> list[tuple[str, float]]:
    choice = _first_choice(reply)
    logprobs = choice.get("logprobs")
    content = logprobs.get("content") if isinstance(logprobs, dict) else None
    if not content:
        raise VLMReplyError(
            f"VLM server {url} returned no log-probs: TOPReward-style scoring needs a server that supports "
            "`logprobs: true` and `top_logprobs` on /v1/chat/completions (e.g. vLLM or SGLang)"
        )
    first = content[0] if isinstance(content[0], dict) else {}
    entries = first.get("top_logprobs") or []
    out = []
    for entry in entries:
        if isinstance(entry, dict) and isinstance(entry.get("token"), str):
            value = entry.get("logprob")
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                out.append((entry["token"], float(value)))
    if not out and isinstance(first.get("token"), str) and isinstance(first.get("logprob"), (int, float)):
        out.append((first["token"], float(first["logprob"])))
    if not out:
        raise _Malformed(f"expected logprobs.content[0].top_logprobs entries; got {str(first)[:300]}")
    return out


def _normalise_token(token: str) -> str:
    return token.strip().lstrip("Ġ▁").strip()


def _match_candidates(top: list[tuple[str, float]], candidates: list[str]) -> dict[str, float]:
    floor = min(value for _, value in top)
    out = {}
    for candidate in candidates:
        want = candidate.strip()
        exact = [value for token, value in top if _normalise_token(token) == want]
        if exact:
            out[candidate] = max(exact)
            continue
        tokens = [(_normalise_token(t), v) for t, v in top]
        prefixes = [(len(t), v) for t, v in tokens if t and want.startswith(t)]
        if prefixes:
            longest = max(n for n, _ in prefixes)
            out[candidate] = max(v for n, v in prefixes if n == longest)
        else:
            log.debug("HTTPVLM: %r not in the top log-probs; using the lowest listed value %.3f", candidate, floor)
            out[candidate] = floor
    for candidate, value in out.items():
        if not math.isfinite(value):
            out[candidate] = floor if math.isfinite(floor) else -1e9
    return out


# --- construction from config ------------------------------------------------------------------------------
def make_vlm(spec: VLMBackend | Mapping[str, Any] | Any) -> Any:
    """A VLM backend from ``spec``: a backend (returned as is), or a mapping with ``"kind"``:

    * ``{"kind": "local", "path": "/dir", "device": ..., "dtype": ...}`` -> :class:`LocalVLM`;
    * ``{"kind": "http", "base_url": ..., "model": ..., "api_key": ..., "timeout": ..., "retries": ...}`` ->
      :class:`HTTPVLM`.

    Any object with ``generate`` and ``next_token_logprobs`` methods is accepted as a backend.
    """
    if hasattr(spec, "generate") and hasattr(spec, "next_token_logprobs"):
        return spec
    if not isinstance(spec, Mapping):
        raise ConfigError(
            "`vlm` must be a VLM backend or a mapping such as {'kind': 'local', 'path': '/dir'} or "
            f"{{'kind': 'http', 'base_url': 'http://localhost:8000', 'model': '<name>'}}; got {spec!r}"
        )
    options = dict(spec)
    kind = options.pop("kind", None)
    classes = {"local": LocalVLM, "http": HTTPVLM}
    if kind not in classes:
        raise ConfigError(f"`vlm.kind` must be one of {sorted(classes)}; got {kind!r}")
    cls = classes[kind]
    accepted = set(inspect.signature(cls.__init__).parameters) - {"self"}
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise ConfigError(f"`vlm`: unknown keys {unknown} for kind {kind!r}; known: {sorted(accepted)}")
    return cls(**options)
