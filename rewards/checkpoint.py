"""Reward-model checkpoints: a directory with ``config.json`` (model name, config, encoder spec, metadata)
and ``model.safetensors`` (weights, optionally fp16). Each file is written to a temporary name and renamed
into place, weights first; ``config.json`` records the weights' sha256, so a save interrupted between the
two renames is detected on load instead of pairing new weights with an old config. Other files in the
directory (e.g. the trainer's resume state) are left alone.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from rewards.encoders.base import file_digest
from sarm2_env.atomic import atomic_path, atomic_write_bytes
from sarm2_env.errors import CheckpointError

FORMAT = "sarm2-reward-checkpoint"
VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"


def save_checkpoint(
    path: str | os.PathLike,
    meta: dict[str, Any],
    tensors: dict[str, torch.Tensor],
    *,
    half: bool = False,
    keep_fp32: tuple[str, ...] = (),
) -> Path:
    """Write ``meta`` (JSON-able; must include ``model``) and ``tensors`` to the directory ``path``.

    ``half`` stores floating tensors as fp16, except names in ``keep_fp32`` (e.g. normalisation statistics).
    """
    from safetensors.torch import save_file

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    store = {}
    for name, tensor in tensors.items():
        tensor = tensor.detach().to("cpu").contiguous()
        if half and tensor.is_floating_point() and name not in keep_fp32:
            tensor = tensor.half()
        store[name] = tensor
    with atomic_path(path / WEIGHTS_FILE) as tmp_weights:
        save_file(store, str(tmp_weights))
        digest = file_digest(tmp_weights, length=64)
        os.chmod(tmp_weights, 0o644)  # safetensors creates the file owner-only; checkpoints are meant to be shared
    body = {
        "format": FORMAT,
        "version": VERSION,
        "dtype": "float16" if half else "float32",
        "weights_sha256": digest,
        **meta,
    }
    atomic_write_bytes(path / CONFIG_FILE, json.dumps(body, indent=2, sort_keys=True).encode())
    return path


def checkpoint_model(path: str | os.PathLike, what: str = "checkpoint") -> str | None:
    """The ``model`` a checkpoint directory's ``config.json`` names (to dispatch to the class that loads it); an
    unreadable or missing file is a :class:`CheckpointError` saying no ``what`` is there."""
    config_file = Path(path) / CONFIG_FILE
    try:
        return json.loads(config_file.read_text()).get("model")
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{config_file}: no readable {what} ({exc})") from exc


def load_checkpoint(path: str | os.PathLike, expect_model: str | None = None) -> tuple[dict[str, Any], dict]:
    """Read a checkpoint directory -> ``(meta, tensors as fp32)``; every problem is a :class:`CheckpointError`."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    config_file, weights_file = path / CONFIG_FILE, path / WEIGHTS_FILE
    if not path.exists():
        raise CheckpointError(
            f"`checkpoint`: no checkpoint at {str(path)!r}. Train one with `python -m rewards.train --model "
            f"{expect_model or '<name>'} --data <dataset dir> --out {path}` or pass the directory of an existing one"
        )
    if not config_file.is_file() or not weights_file.is_file():
        raise CheckpointError(
            f"`checkpoint`: expected {CONFIG_FILE} and {WEIGHTS_FILE} in {str(path)!r}; got "
            f"{sorted(p.name for p in path.iterdir()) if path.is_dir() else 'a file'}"
        )
    try:
        meta = json.loads(config_file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{config_file}: expected JSON; got unreadable content ({exc})") from exc
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{config_file}: expected format {FORMAT!r}; got {meta.get('format')!r}")
    if meta.get("version") != VERSION:
        raise CheckpointError(f"{config_file}: expected version {VERSION}; got {meta.get('version')!r}")
    if expect_model is not None and meta.get("model") != expect_model:
        raise CheckpointError(
            f"{config_file}: expected a {expect_model!r} checkpoint; got one for model {meta.get('model')!r}"
        )
    recorded = meta.get("weights_sha256")
    if recorded is not None and recorded != file_digest(weights_file, length=64):
        raise CheckpointError(
            f"{weights_file}: expected sha256 {recorded} as recorded in {CONFIG_FILE}; got a different file "
            "(an interrupted save or a copied-over weights file): save or copy the checkpoint again"
        )
    try:
        tensors = load_file(str(weights_file))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{weights_file}: expected a safetensors file; got an unreadable one ({exc})") from exc
    tensors = {k: v.float() if v.is_floating_point() else v for k, v in tensors.items()}
    return meta, tensors
