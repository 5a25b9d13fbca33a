"""Crash-safe file writes: a temporary file beside the target, fsync'ed, then renamed over it.

A reader never sees a half-written file: either the old content or the new one. Datasets, embedding
caches, benchmark results and suite manifests all write through here. Also the POSIX advisory locks that keep
two writers of one dataset or annotation file apart (:func:`lock_file`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

logger = logging.getLogger(__name__)

try:  # POSIX advisory locks
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


def lock_file(path: str | os.PathLike, *, busy: Callable[[], Exception] | None = None) -> int | None:
    """Take an exclusive advisory lock on ``path`` (the file created, mode 0o644, where missing): returns the
    open descriptor that holds it until :func:`unlock_file`, or None where there are no POSIX locks (Windows:
    nothing is locked). Waits for the lock; with ``busy``, raises ``busy()`` at once (from the ``OSError``)
    instead of waiting where the lock is held. Errors opening the file are raised as they are."""
    if fcntl is None:  # pragma: no cover - Windows
        return None
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if busy is None else fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BaseException as exc:  # an interrupted wait too: the descriptor is never left open
        os.close(fd)
        if busy is not None and isinstance(exc, OSError):
            raise busy() from exc
        raise
    return fd


def unlock_file(fd: int) -> None:
    """Release the lock :func:`lock_file` took and close its descriptor (which releases it in any case, so a
    failing unlock is ignored)."""
    with contextlib.suppress(OSError):
        fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)


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


def fsync_file(path: Path) -> None:
    """Flush ``path``'s content to disk (a writer that takes a path closes the file before we can)."""
    with open(path, "rb") as f:
        os.fsync(f.fileno())


@contextlib.contextmanager
def atomic_path(final: Path, *, suffix: str = "") -> Iterator[Path]:
    """A temporary path ``.<name>.tmp-<pid><suffix>`` beside ``final`` for a writer that takes a path
    (``torch.save``, ``np.savez``, a video or Parquet writer, ...).

    When the block exits normally the file is fsync'ed and renamed over ``final``; on any exception, Ctrl-C
    included, it is removed and ``final`` keeps its old content. ``suffix`` keeps an extension a writer
    insists on (``np.savez`` appends ``.npz`` to a name without it) or makes the name unique per thread.
    """
    final = Path(final)
    tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}{suffix}")
    try:
        yield tmp
        fsync_file(tmp)
        os.replace(tmp, final)
    except BaseException:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            logger.warning("could not remove temporary file %s", tmp)
        raise
    fsync_dir(final.parent)


def atomic_write(final: Path, write: Callable[[BinaryIO], object]) -> None:
    """Write through ``write(fileobj)`` to a temporary file beside ``final``, fsync, then rename over it."""
    with atomic_path(final) as tmp, open(tmp, "wb") as f:
        write(f)


def atomic_write_bytes(final: Path, data: bytes, *, suffix: str = "") -> None:
    """``data`` to ``final`` atomically (see :func:`atomic_path`)."""
    with atomic_path(final, suffix=suffix) as tmp:
        tmp.write_bytes(data)


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
