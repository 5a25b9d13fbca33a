"""Crash-safe writes: a reader sees the old file or the new one, never a half-written one, and no leftovers."""

from __future__ import annotations

import numpy as np
import pytest

from sarm2_env.atomic import atomic_path, atomic_write, atomic_write_bytes, write_json_atomic


def test_atomic_path_renames_on_success_and_keeps_the_old_file_on_failure(tmp_path):
    final = tmp_path / "preds.npz"
    with atomic_path(final, suffix=".npz") as tmp:
        assert tmp.parent == final.parent and tmp.name.endswith(".npz") and tmp.name.startswith(".")
        np.savez(tmp, x=np.arange(3))
    assert np.load(final)["x"].tolist() == [0, 1, 2]
    with pytest.raises(KeyboardInterrupt), atomic_path(final, suffix=".npz") as tmp:
        np.savez(tmp, x=np.arange(5))
        raise KeyboardInterrupt  # Ctrl-C halfway: the old content stays, the temporary file goes
    assert np.load(final)["x"].tolist() == [0, 1, 2]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["preds.npz"]


def test_atomic_write_and_bytes(tmp_path):
    atomic_write_bytes(tmp_path / "a.txt", b"one")
    atomic_write(tmp_path / "a.txt", lambda f: f.write(b"two"))
    assert (tmp_path / "a.txt").read_bytes() == b"two"

    def broken(f):
        f.write(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(tmp_path / "a.txt", broken)
    assert (tmp_path / "a.txt").read_bytes() == b"two"
    write_json_atomic(tmp_path / "sub" / "b.json", {"x": np.float32(1.5)})
    assert (tmp_path / "sub" / "b.json").read_text().strip().startswith("{")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "sub"]
