"""Derive the decimated visual meshes of the YAM station shipped in ``tasks/assets/yam/``.

The CAD meshes in the ``dreamscale-i2rt`` wheel (MIT, see ``LICENSE-i2rt``) carry ~320k faces for the
whole station, which makes software rendering ~7x slower than it needs to be at 128 px. This script
clusters vertices first (the CAD exports are not watertight, so quadric decimation alone keeps every
seam) and then runs quadric decimation to a per-mesh face budget.

Run once, by hand, when the upstream meshes change (needs ``pip install fast-simplification``)::

    python tasks/assets/make_meshes.py
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

#: Face budget per mesh; tuned so the rendered station is ~13k faces (both arms + top camera).
FACE_BUDGET: dict[str, int] = {
    "base": 700,
    "link1": 500,
    "link2": 1200,
    "link3": 1200,
    "link4": 400,
    "link5": 250,
    "gripper": 700,
    "tip_left": 350,
    "tip_right": 350,
    "d405_wrist_linear_4310": 350,
    "d405_top": 300,
}
#: Vertices closer than this (metres) are merged before decimation.
CLUSTER_TOL = 5e-4

OUT_DIR = Path(__file__).resolve().parent / "yam"


def read_binary_stl(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Return (vertices (V, 3) float64, faces (F, 3) int64) with coincident corners merged."""
    raw = path.read_bytes()
    (n_faces,) = struct.unpack_from("<I", raw, 80)
    rec = np.dtype([("n", "<f4", 3), ("v", "<f4", (3, 3)), ("attr", "<u2")])
    tris = np.frombuffer(raw, dtype=rec, count=n_faces, offset=84)["v"].astype(np.float64)  # (F, 3, 3)
    corners = tris.reshape(-1, 3)
    keys = np.round(corners / CLUSTER_TOL).astype(np.int64)
    _, first, inverse = np.unique(keys, axis=0, return_index=True, return_inverse=True)
    verts = corners[first]
    faces = inverse.reshape(-1, 3)
    keep = (faces[:, 0] != faces[:, 1]) & (faces[:, 1] != faces[:, 2]) & (faces[:, 0] != faces[:, 2])
    return verts, faces[keep]


def write_binary_stl(path: Path, verts: np.ndarray, faces: np.ndarray) -> None:
    """Write a triangle mesh as binary STL."""
    tris = verts[faces].astype(np.float32)  # (F, 3, 3)
    normals = np.cross(tris[:, 1] - tris[:, 0], tris[:, 2] - tris[:, 0])
    normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)
    rec = np.zeros(len(faces), dtype=[("n", "<f4", 3), ("v", "<f4", (3, 3)), ("attr", "<u2")])
    rec["n"], rec["v"] = normals, tris
    header = b"decimated from dreamscale-i2rt (MIT) by tasks/assets/make_meshes.py".ljust(80, b" ")
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(header + struct.pack("<I", len(faces)) + rec.tobytes())
    tmp.replace(path)


def main() -> None:
    """Regenerate the tasks' simplified meshes."""
    from importlib.resources import files

    import fast_simplification

    root = Path(str(files("i2rt"))) / "robot_models"
    sources = {name: root / "arm/yam/v1/assets" / f"{name}.stl" for name in FACE_BUDGET}
    for name in ("d405_wrist_linear_4310", "d405_top"):
        sources[name] = root / "station/assets" / f"{name}.stl"
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    for name, src in sources.items():
        verts, faces = read_binary_stl(src)
        reduction = max(0.0, 1.0 - FACE_BUDGET[name] / len(faces))
        v2, f2 = fast_simplification.simplify(verts, faces, target_reduction=reduction)
        write_binary_stl(OUT_DIR / f"{name}.stl", v2, f2)
        print(f"{name:26s} {len(faces):6d} -> {len(f2):5d} faces")


if __name__ == "__main__":
    main()
