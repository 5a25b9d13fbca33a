"""The image-encoder interface: :class:`EncoderSpec` (what a checkpoint records) and :class:`ImageEncoder`.

A backend implements :meth:`ImageEncoder._embed` on a batch of uint8 frames already on its device; the base class
does input validation, chunking, ``torch.inference_mode``, the float16 rounding that makes live and cached
embeddings bit-identical, and the NaN/inf check.
"""

from __future__ import annotations

import abc
import contextlib
import dataclasses
import hashlib
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sarm2_env.errors import ConfigError, InputShapeError, NonFiniteError, key_mismatch

__all__ = ["EncoderSpec", "ImageEncoder", "MIN_FRAME_SIDE", "file_digest", "quiet_transformers", "resolve_device"]

#: Smallest frame height / width :meth:`ImageEncoder.encode` accepts.
MIN_FRAME_SIDE = 16

_KEY_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_SPEC_FIELDS = ("name", "image_size", "dim", "weights")


@dataclasses.dataclass(frozen=True)
class EncoderSpec:
    """What a checkpoint records about the image encoder it was trained with.

    Attributes:
        name: backend name, one of ``rewards.encoders.IMAGE_ENCODERS`` (``"efficientnet-lite0"``, ``"siglip2"``,
            ``"tiny"``).
        image_size: square side the frames are resized to before encoding.
        dim: embedding size.
        weights: short identity of the weights, e.g. ``"imagenet:<sha256[:12] of the .pth>"``,
            ``"siglip2:<sha256[:12] of model.safetensors>"`` or ``"random-init:seed0"``.
    """

    name: str
    image_size: int
    dim: int
    weights: str

    def __post_init__(self) -> None:
        for field in ("name", "weights"):
            value = getattr(self, field)
            if not isinstance(value, str) or not value:
                raise ConfigError(f"`{field}` must be a non-empty str; got {value!r}")
        for field in ("image_size", "dim"):
            value = getattr(self, field)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"`{field}` must be a positive int; got {value!r}")

    @property
    def key(self) -> str:
        """Filesystem-safe cache key, ``<name>-<image_size>-<12 hex digits>``; differs whenever any field differs."""
        digest = hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode("utf-8")).hexdigest()[:12]
        name = _KEY_UNSAFE.sub("_", self.name).strip("._-") or "encoder"
        return f"{name}-{self.image_size}-{digest}"

    def to_dict(self) -> dict[str, Any]:
        """The four fields as a JSON-serialisable dict."""
        return {field: getattr(self, field) for field in _SPEC_FIELDS}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EncoderSpec:
        """Inverse of :meth:`to_dict`; missing or unknown keys raise :class:`~sarm2_env.errors.ConfigError`."""
        if not isinstance(d, dict):
            raise ConfigError(f"`spec` must be a dict with keys {list(_SPEC_FIELDS)}; got {type(d).__name__}")
        mismatch = key_mismatch(d, _SPEC_FIELDS)
        if mismatch is not None:
            raise ConfigError(f"`spec` must have exactly the keys {list(_SPEC_FIELDS)}; got {sorted(d)}{mismatch}")
        return cls(**{k: d[k] for k in _SPEC_FIELDS})


class ImageEncoder(abc.ABC):
    """Maps uint8 RGB frames to float32 embedding vectors (frozen; no gradients).

    Attributes:
        spec: what a checkpoint records about this encoder (name, image size, dim, weights identity).
        label: human label for tables, e.g. ``"EfficientNet-Lite0 (ImageNet, frozen)"``.
        pretrained: False for random-init encoders (test only).
        device: where the network runs.
        batch_size: frames per forward pass inside :meth:`encode`.
        calls: number of :meth:`encode` calls so far.
        frames_encoded: number of frames encoded so far.
    """

    spec: EncoderSpec
    label: str
    pretrained: bool
    device: torch.device
    batch_size: int

    def __init__(self, *, spec: EncoderSpec, label: str, pretrained: bool, device: torch.device, batch_size: int):
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise ConfigError(f"`batch_size` must be a positive int; got {batch_size!r}")
        self.spec = spec
        self.label = label
        self.pretrained = pretrained
        self.device = device
        self.batch_size = batch_size
        self.calls = 0
        self.frames_encoded = 0

    @property
    def name(self) -> str:
        """The backend name (``spec.name``)."""
        return self.spec.name

    @property
    def dim(self) -> int:
        """Embedding size (``spec.dim``)."""
        return self.spec.dim

    @property
    def image_size(self) -> int:
        """Square side frames are resized to (``spec.image_size``)."""
        return self.spec.image_size

    #: the underlying network; subclasses set it (in eval mode, no gradients) before calling ``__init__``
    _model: torch.nn.Module

    @property
    def module(self) -> torch.nn.Module:
        """The underlying network (kept in eval mode)."""
        return self._model

    @abc.abstractmethod
    def _embed(self, frames: torch.Tensor) -> torch.Tensor:
        """``(B, H, W, 3)`` uint8 tensor on :attr:`device` -> ``(B, dim)`` float tensor (any float dtype)."""

    def encode(self, frames: np.ndarray) -> np.ndarray:
        """Embed frames.

        Args:
            frames: ``(N, H, W, 3)`` uint8 RGB (any ``H, W >= 16``), or a single ``(H, W, 3)`` frame.

        Returns:
            ``(N, dim)`` float32, or ``(dim,)`` for a single frame. Values are rounded through float16, so embeddings
            read back from a float16 cache are bit-identical to live ones.

        Raises:
            InputShapeError: ``frames`` is not a uint8 array of one of those shapes.
            NonFiniteError: the network produced NaN/inf (or values beyond the float16 range).
        """
        batch, single = _check_frames(frames)
        n = batch.shape[0]
        out = np.empty((n, self.dim), dtype=np.float32)
        module = self.module
        if module.training:
            module.eval()
        with torch.inference_mode():
            for start in range(0, n, self.batch_size):
                chunk = torch.from_numpy(np.ascontiguousarray(batch[start : start + self.batch_size]))
                emb = self._embed(chunk.to(self.device))  # (B, dim)
                if emb.shape != (chunk.shape[0], self.dim):
                    raise RuntimeError(
                        f"{type(self).__name__}._embed returned shape {tuple(emb.shape)}; "
                        f"expected {(chunk.shape[0], self.dim)}"
                    )
                out[start : start + chunk.shape[0]] = emb.float().cpu().numpy()
        self.calls += 1
        self.frames_encoded += n
        out = out.astype(np.float16).astype(np.float32)
        if not np.isfinite(out).all():
            bad = np.argwhere(~np.isfinite(out))[0].tolist()
            raise NonFiniteError(
                f"{self.label}: produced {int((~np.isfinite(out)).sum())} NaN/inf embedding values "
                f"(first at frame {bad[0]}, component {bad[1]}), or values beyond the float16 range"
            )
        return out[0] if single else out

    def __repr__(self) -> str:
        return f"{type(self).__name__}(spec={self.spec}, device={str(self.device)!r})"


def _describe(x: Any) -> str:
    if isinstance(x, np.ndarray):
        return f"array of shape {x.shape} and dtype {x.dtype}"
    return type(x).__name__


def _check_frames(frames: Any) -> tuple[np.ndarray, bool]:
    expected = f"a uint8 numpy array of shape (N, H, W, 3) or (H, W, 3) with H, W >= {MIN_FRAME_SIDE}"
    if (
        not isinstance(frames, np.ndarray)
        or frames.dtype != np.uint8
        or frames.ndim not in (3, 4)
        or frames.shape[-1] != 3
    ):
        raise InputShapeError(f"`frames`: expected {expected}; got {_describe(frames)}")
    single = frames.ndim == 3
    batch = frames[None] if single else frames
    if batch.shape[1] < MIN_FRAME_SIDE or batch.shape[2] < MIN_FRAME_SIDE:
        raise InputShapeError(f"`frames`: expected {expected}; got {_describe(frames)}")
    return batch, single


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``None`` -> ``"cuda"`` when available, else ``"cpu"``; strings become :class:`torch.device`."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ConfigError(f"`device` must be a torch device such as 'cpu' or 'cuda:0'; got {device!r}") from exc


_DIGESTS: dict[tuple[str, int, int], str] = {}


def file_digest(path: str | os.PathLike[str], length: int = 12) -> str:
    """First ``length`` hex digits of a file's sha256 (read in 1 MB chunks; memoised per path, size and mtime)."""
    p = Path(path).resolve()
    st = p.stat()
    memo = (str(p), st.st_size, st.st_mtime_ns)
    if memo not in _DIGESTS:
        digest = hashlib.sha256()
        with open(p, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
        _DIGESTS[memo] = digest.hexdigest()
    return _DIGESTS[memo][:length]


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Silence transformers' load reports and progress bars while loading a local checkpoint.

    Callers check ``output_loading_info`` themselves, so nothing important is hidden.
    """
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()
