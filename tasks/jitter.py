"""Camera-pose and lighting jitter: what differs between two real stations, or one station on two days.

Off by default. ``gym.make(id, camera_jitter=1.0, lighting_jitter=1.0)`` perturbs, at every ``reset``, each
camera's mount (position up to :data:`CAMERA_SHIFT_M`, orientation up to :data:`CAMERA_TILT_RAD` about a
random axis; the wrist cameras' mounts move relative to their wrists) and the lighting (every light's
brightness and direction, the ambient level). A setting in (0, 1] scales those ranges. The draws come from a
generator of their own, seeded from the reset seed, so the task's initial state for a seed is the same with
and without jitter, and only the pixels differ. Physics never reads cameras or lights.
"""

from __future__ import annotations

import mujoco
import numpy as np

from sarm2_env.errors import check_fraction

#: At jitter 1: the largest camera position shift (m, per axis), and tilt (rad).
CAMERA_SHIFT_M = 0.02
CAMERA_TILT_RAD = np.deg2rad(4.0)
#: At jitter 1: light brightness scaled by up to +-40 %, light direction tilted up to 25 deg, ambient +-0.12.
LIGHT_GAIN = 0.4
LIGHT_TILT_RAD = np.deg2rad(25.0)
AMBIENT_SHIFT = 0.12
#: Salt mixed into the reset seed for the jitter generator (keeps the task's own random stream unchanged).
_SALT = 0x7A1


def _axis_angle_quat(axis: np.ndarray, angle: float) -> np.ndarray:
    axis = axis / max(float(np.linalg.norm(axis)), 1e-12)
    return np.concatenate([[np.cos(angle / 2.0)], np.sin(angle / 2.0) * axis])


def _quat_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    out = np.empty(4)
    mujoco.mju_mulQuat(out, a, b)
    return out


class SceneJitter:
    """Remembers a model's nominal cameras and lights, and applies a fresh seeded perturbation on demand."""

    def __init__(self, model: mujoco.MjModel, camera: float = 0.0, lighting: float = 0.0) -> None:
        self.camera = check_fraction("camera_jitter", camera, " (0 = off)")
        self.lighting = check_fraction("lighting_jitter", lighting, " (0 = off)")
        self.model = model
        self._cam_pos = model.cam_pos.copy()
        self._cam_quat = model.cam_quat.copy()
        self._light_dir = model.light_dir.copy()
        self._light_diffuse = model.light_diffuse.copy()
        self._ambient = model.vis.headlight.ambient.copy()
        self._headlight = model.vis.headlight.diffuse.copy()
        self.rng = np.random.default_rng(_SALT)

    @property
    def active(self) -> bool:
        """Whether any jitter is applied."""
        return self.camera > 0.0 or self.lighting > 0.0

    def reseed(self, seed: int | None) -> None:
        """A new generator for the episodes that follow a reset with ``seed`` (``None``: keep drawing)."""
        if seed is not None:
            self.rng = np.random.default_rng([int(seed), _SALT])

    def apply(self) -> dict[str, float]:
        """Perturb the model's cameras and lights from their nominal values; returns what was drawn (summary)."""
        m, rng = self.model, self.rng
        m.cam_pos[:] = self._cam_pos
        m.cam_quat[:] = self._cam_quat
        m.light_dir[:] = self._light_dir
        m.light_diffuse[:] = self._light_diffuse
        m.vis.headlight.ambient[:] = self._ambient
        m.vis.headlight.diffuse[:] = self._headlight
        drawn = {"camera_shift_m": 0.0, "camera_tilt_rad": 0.0, "light_gain": 1.0, "ambient_shift": 0.0}
        if self.camera > 0.0:
            shifts = rng.uniform(-1.0, 1.0, size=m.cam_pos.shape) * CAMERA_SHIFT_M * self.camera
            m.cam_pos[:] = self._cam_pos + shifts
            for i in range(m.ncam):
                angle = float(rng.uniform(-1.0, 1.0)) * CAMERA_TILT_RAD * self.camera
                tilt = _axis_angle_quat(rng.normal(size=3), angle)
                m.cam_quat[i] = _quat_mul(self._cam_quat[i], tilt)
                drawn["camera_tilt_rad"] = max(drawn["camera_tilt_rad"], abs(float(angle)))
            drawn["camera_shift_m"] = float(np.abs(shifts).max())
        if self.lighting > 0.0:
            gain = 1.0 + float(rng.uniform(-1.0, 1.0)) * LIGHT_GAIN * self.lighting
            m.light_diffuse[:] = np.clip(self._light_diffuse * gain, 0.0, 1.0)
            m.vis.headlight.diffuse[:] = np.clip(self._headlight * gain, 0.0, 1.0)
            ambient = float(rng.uniform(-1.0, 1.0)) * AMBIENT_SHIFT * self.lighting
            m.vis.headlight.ambient[:] = np.clip(self._ambient + ambient, 0.0, 1.0)
            for i in range(m.nlight):
                angle = float(rng.uniform(0.0, 1.0)) * LIGHT_TILT_RAD * self.lighting
                q = _axis_angle_quat(rng.normal(size=3), angle)
                direction = np.empty(3)
                mujoco.mju_rotVecQuat(direction, self._light_dir[i], q)
                m.light_dir[i] = direction
            drawn["light_gain"], drawn["ambient_shift"] = gain, ambient
        return drawn
