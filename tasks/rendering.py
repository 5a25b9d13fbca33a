"""Headless multi-camera rendering.

MuJoCo picks its OpenGL backend from ``MUJOCO_GL`` when it is first imported, so :func:`configure_gl`
must run before ``import mujoco``; ``tasks/__init__`` calls it. EGL (Mesa llvmpipe on a CPU machine,
the NVIDIA driver on a GPU one) is preferred; OSMesa is the fallback. A user's own ``MUJOCO_GL``
always wins.
"""

from __future__ import annotations

import ctypes.util
import os
from collections.abc import Sequence

import numpy as np

_INSTALL_HINT = (
    "headless rendering needs EGL or OSMesa: on Debian/Ubuntu `apt-get install libegl1 libgl1-mesa-dri` "
    "(or `libosmesa6`), and set MUJOCO_GL=egl (or osmesa) before anything imports mujoco: `import tasks` "
    "does that for you only if it comes first"
)


def configure_gl() -> str:
    """Choose the OpenGL backend (``egl`` or ``osmesa``) unless ``MUJOCO_GL`` is already set."""
    if "MUJOCO_GL" not in os.environ:
        if ctypes.util.find_library("EGL"):
            os.environ["MUJOCO_GL"] = "egl"
        elif ctypes.util.find_library("OSMesa"):
            os.environ["MUJOCO_GL"] = "osmesa"
            os.environ.setdefault("PYOPENGL_PLATFORM", "osmesa")
    if os.environ.get("MUJOCO_GL") == "egl":
        os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
    return os.environ.get("MUJOCO_GL", "")


class MultiCameraRenderer:
    """Renders a fixed set of named cameras at one resolution into reused buffers."""

    def __init__(self, model, cameras: Sequence[str], height: int, width: int) -> None:
        import mujoco

        try:
            self._renderer = mujoco.Renderer(model, height=height, width=width)
        except Exception as exc:  # noqa: BLE001 - GL errors come in many types
            raise RuntimeError(f"could not create an OpenGL context ({exc}); {_INSTALL_HINT}") from exc
        # Shadows and reflections cost more than the rest of the scene on a software rasteriser.
        self._renderer.scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = False
        self._renderer.scene.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = False
        self.cameras = tuple(cameras)
        self._camera_ids = [model.camera(name).id for name in self.cameras]

    def render(self, data) -> dict[str, np.ndarray]:
        """One fresh (H, W, 3) uint8 image per camera."""
        out = {}
        for name, cam_id in zip(self.cameras, self._camera_ids):
            self._renderer.update_scene(data, camera=cam_id)
            out[name] = self._renderer.render()
        return out

    def close(self) -> None:
        """Free the renderer's GL context."""
        self._renderer.close()
