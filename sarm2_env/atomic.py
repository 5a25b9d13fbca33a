"""Crash-safe file writes: a temporary file beside the target, fsync'ed, then renamed over it.

A reader never sees a half-written file: either the old content or the new one. Datasets, embedding
caches, benchmark results and suite manifests all write through here.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

logger = logging.getLogger(__name__)


def fsync_dir(path: Path) -> None:
    """Persist a rename in ``path`` (no-op where directories cannot be opened, e.g. Windows)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(final: Path, write: Callable[[BinaryIO], object]) -> None:
    """Write through ``write(fileobj)`` to ``.<name>.tmp-<pid>`` beside ``final``, fsync, then rename over it."""
    final = Path(final)
    tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, final)
    except BaseException:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            logger.warning("could not remove temporary file %s", tmp)
        raise
    fsync_dir(final.parent)


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.floating, np.integer, np.bool_)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value)}")


def write_json_atomic(path: Path, data: Any) -> None:
    """``data`` as indented, key-sorted JSON (numpy scalars and arrays, paths allowed), atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(data, indent=2, sort_keys=True, default=_json_default)
    atomic_write(path, lambda f: f.write(text.encode()))
