"""Damped-least-squares inverse kinematics for the YAM tool-centre point.

Experts plan in Cartesian space (tool-centre position + yaw about the world vertical, gripper
pointing down or tilted) and turn each waypoint into joint targets here. A private kinematics-only
copy of the station is used, so solving never touches the simulation's state.
"""

from __future__ import annotations

import mujoco
import numpy as np

from tasks.station import arm_joint_names, build_station_spec

#: Tool frame pointing straight down with the fingers closing along world y (yaw = 0).
_DOWN = np.array([[-1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, -1.0]])


def tool_rotation(yaw: float = 0.0, tilt: float = 0.0) -> np.ndarray:
    """Rotation of the tool frame: pointing down, turned by ``yaw`` about world z and tilted by
    ``tilt`` (rad) about the finger axis (positive tips the approach axis towards -x at yaw 0)."""
    cy, sy = np.cos(yaw), np.sin(yaw)
    rz = np.array([[cy, -sy, 0.0], [sy, cy, 0.0], [0.0, 0.0, 1.0]])
    ct, st = np.cos(tilt), np.sin(tilt)
    ry = np.array([[ct, 0.0, st], [0.0, 1.0, 0.0], [-st, 0.0, ct]])
    return rz @ ry @ _DOWN


class ArmIK:
    """Solves joint angles that put ``tcp_<arm>`` at a pose, warm-started from a given guess."""

    def __init__(self, damping: float = 1e-3, max_iters: int = 40, tol: float = 5e-4) -> None:
        self.model = build_station_spec().compile()
        self.data = mujoco.MjData(self.model)
        self.damping, self.max_iters, self.tol = damping, max_iters, tol
        self._dofs: dict[str, np.ndarray] = {}
        self._qadr: dict[str, np.ndarray] = {}
        self._lo: dict[str, np.ndarray] = {}
        self._hi: dict[str, np.ndarray] = {}
        for arm in ("left", "right"):
            joints = [self.model.joint(n) for n in arm_joint_names(arm)]
            self._dofs[arm] = np.array([j.dofadr[0] for j in joints])
            self._qadr[arm] = np.array([j.qposadr[0] for j in joints])
            self._lo[arm] = np.array([j.range[0] for j in joints])
            self._hi[arm] = np.array([j.range[1] for j in joints])
        self._jacp = np.zeros((3, self.model.nv))
        self._jacr = np.zeros((3, self.model.nv))

    def forward(self, arm: str, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Tool-centre position (3,) and rotation (3, 3) of ``arm`` at joint angles ``q`` (6,)."""
        self.data.qpos[self._qadr[arm]] = q
        mujoco.mj_kinematics(self.model, self.data)
        site = self.data.site(f"tcp_{arm}")
        return site.xpos.copy(), site.xmat.reshape(3, 3).copy()

    def solve(
        self, arm: str, pos: np.ndarray, rot: np.ndarray, q_init: np.ndarray, rot_weight: float = 0.3
    ) -> tuple[np.ndarray, float]:
        """Joint angles (6,) reaching ``pos``/``rot`` and the remaining position error (m)."""
        q = np.clip(np.array(q_init, dtype=float), self._lo[arm], self._hi[arm])
        site_id = self.model.site(f"tcp_{arm}").id
        dofs = self._dofs[arm]
        err_pos = np.inf
        for _ in range(self.max_iters):
            cur_p, cur_r = self.forward(arm, q)
            mujoco.mj_comPos(self.model, self.data)
            e_p = pos - cur_p
            r_err = rot @ cur_r.T  # world-frame rotation still to apply
            quat = np.zeros(4)
            mujoco.mju_mat2Quat(quat, r_err.ravel())
            e_r = np.zeros(3)
            mujoco.mju_quat2Vel(e_r, quat, 1.0)
            err_pos = float(np.linalg.norm(e_p))
            if err_pos < self.tol and np.linalg.norm(e_r) < 10 * self.tol:
                break
            mujoco.mj_jacSite(self.model, self.data, self._jacp, self._jacr, site_id)
            jac = np.vstack([self._jacp[:, dofs], rot_weight * self._jacr[:, dofs]])  # (6, 6)
            err = np.concatenate([e_p, rot_weight * e_r])
            dq = jac.T @ np.linalg.solve(jac @ jac.T + self.damping * np.eye(6), err)
            step = np.linalg.norm(dq)
            if step > 0.3:  # keep each Newton step in the linear regime
                dq *= 0.3 / step
            q = np.clip(q + dq, self._lo[arm], self._hi[arm])
        return q, err_pos
