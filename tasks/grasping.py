"""Grasp assists that keep grasps honest.

MuJoCo's soft contacts let a rigid object slip out of a position-controlled parallel gripper over a
long episode, and flexcomp cloth cannot be held by friction reliably. Both assists here engage only
from a real grasp and release when the gripper opens, so missed grasps, drops and slips stay
possible:

* :class:`WeldGrasp` (rigid objects): a weld between the gripper and the object, activated when both
  finger pads touch the object while the gripper is closing, with the relative pose written at
  activation so nothing teleports.
* :class:`PinchGrasp` (flex vertices): ``connect`` equalities between the closing fingertips and
  the flex vertex bodies within a pinch radius of the tool centre.
"""

from __future__ import annotations

import mujoco
import numpy as np

from sarm2_env.constants import ARMS

#: Gripper commands below this (normalised opening) mean "closing"; above ``RELEASE`` mean "open".
CLOSE_BELOW = 0.5
RELEASE_ABOVE = 0.6


def _pose_in(data: mujoco.MjData, parent: int, child: int) -> tuple[np.ndarray, np.ndarray]:
    """Position and quaternion of body ``child`` in the frame of body ``parent``."""
    rp = data.xmat[parent].reshape(3, 3)
    pos = rp.T @ (data.xpos[child] - data.xpos[parent])
    q_parent_inv = np.zeros(4)
    mujoco.mju_negQuat(q_parent_inv, data.xquat[parent])
    quat = np.zeros(4)
    mujoco.mju_mulQuat(quat, q_parent_inv, data.xquat[child])
    return pos, quat


def _add_gripper_equality(spec: mujoco.MjSpec, name: str, kind: mujoco.mjtEq, arm: str, body: str) -> str:
    """An inactive equality constraint (weld or connect) from ``arm``'s gripper to ``body``; returns ``name``."""
    spec.add_equality(
        name=name,
        type=kind,
        objtype=mujoco.mjtObj.mjOBJ_BODY,
        name1=f"{arm}_gripper",
        name2=body,
        active=False,
        solref=[0.01, 1.0],
    )
    return name


class WeldGrasp:
    """Weld assist between one arm's gripper and one rigid body."""

    @staticmethod
    def add_to_spec(spec: mujoco.MjSpec, arm: str, body: str) -> str:
        """Add the (inactive) weld of ``arm``'s tool to ``body``; returns the equality's name."""
        return _add_gripper_equality(spec, f"grasp_{arm}_{body}", mujoco.mjtEq.mjEQ_WELD, arm, body)

    @classmethod
    def add_for_arms(cls, spec: mujoco.MjSpec, body: str) -> None:
        """Add the (inactive) welds of both arms' tools to ``body``, left then right."""
        for arm in ARMS:
            cls.add_to_spec(spec, arm, body)

    @classmethod
    def for_arms(cls, model: mujoco.MjModel, body: str) -> dict[str, WeldGrasp]:
        """``{arm: WeldGrasp}`` of both arms on ``body`` (added by :meth:`add_for_arms`)."""
        return {arm: cls(model, arm, body) for arm in ARMS}

    def __init__(self, model: mujoco.MjModel, arm: str, body: str) -> None:
        self.arm, self.body = arm, body
        self.eq_id = model.equality(f"grasp_{arm}_{body}").id
        self.gripper_id = model.body(f"{arm}_gripper").id
        self.body_id = model.body(body).id
        self.pad_ids = {model.geom(f"{arm}_tip_left_pad").id, model.geom(f"{arm}_tip_right_pad").id}
        self.object_geoms = {g for g in range(model.ngeom) if model.geom_bodyid[g] == self.body_id}

    def active(self, data: mujoco.MjData) -> bool:
        """Whether the object is held."""
        return bool(data.eq_active[self.eq_id])

    def pads_touching(self, data: mujoco.MjData) -> bool:
        """Whether both finger pads touch the object."""
        touching = set()
        for g1, g2 in data.contact.geom[: data.ncon]:
            if g1 in self.pad_ids and g2 in self.object_geoms:
                touching.add(g1)
            elif g2 in self.pad_ids and g1 in self.object_geoms:
                touching.add(g2)
        return touching == self.pad_ids

    def update(self, model: mujoco.MjModel, data: mujoco.MjData, gripper_cmd: float) -> None:
        """Engage on a two-finger contact while closing; release once the gripper opens."""
        if self.active(data):
            if gripper_cmd > RELEASE_ABOVE:
                data.eq_active[self.eq_id] = 0
        elif gripper_cmd < CLOSE_BELOW and self.pads_touching(data):
            pos, quat = _pose_in(data, self.gripper_id, self.body_id)
            # eq_data for a weld: anchor (3), relative pose pos (3) + quat (4), torque scale (1).
            model.eq_data[self.eq_id, 0:3] = 0.0
            model.eq_data[self.eq_id, 3:6] = pos
            model.eq_data[self.eq_id, 6:10] = quat
            data.eq_active[self.eq_id] = 1

    def release(self, data: mujoco.MjData) -> None:
        """Let go of the object."""
        data.eq_active[self.eq_id] = 0

    def reset(self, data: mujoco.MjData) -> None:
        """Let go of the object (a new episode)."""
        self.release(data)


class PinchGrasp:
    """Connect equalities from one gripper to up to ``max_vertices`` flex vertex bodies."""

    @staticmethod
    def add_to_spec(spec: mujoco.MjSpec, arm: str, vertex_body: str, max_vertices: int = 8) -> list[str]:
        """Add ``max_vertices`` (inactive) welds from ``arm``'s tool to cloth vertices; returns their names."""
        return [
            _add_gripper_equality(spec, f"pinch_{arm}_{k}", mujoco.mjtEq.mjEQ_CONNECT, arm, vertex_body)
            for k in range(max_vertices)
        ]

    @classmethod
    def add_for_arms(cls, spec: mujoco.MjSpec, vertex_body: str, max_vertices: int = 8) -> None:
        """:meth:`add_to_spec` for both arms, left then right."""
        for arm in ARMS:
            cls.add_to_spec(spec, arm, vertex_body, max_vertices=max_vertices)

    @classmethod
    def for_arms(
        cls, model: mujoco.MjModel, vertex_bodies: np.ndarray, radius: float = 0.03, max_vertices: int = 8
    ) -> dict[str, PinchGrasp]:
        """``{arm: PinchGrasp}`` of both arms (equalities added by :meth:`add_for_arms`)."""
        return {arm: cls(model, arm, vertex_bodies, radius=radius, max_vertices=max_vertices) for arm in ARMS}

    def __init__(
        self, model: mujoco.MjModel, arm: str, vertex_bodies: np.ndarray, radius: float = 0.03, max_vertices: int = 8
    ) -> None:
        self.arm, self.radius = arm, radius
        self.eq_ids = np.array([model.equality(f"pinch_{arm}_{k}").id for k in range(max_vertices)])
        self.vertex_bodies = np.asarray(vertex_bodies)
        self.gripper_id = model.body(f"{arm}_gripper").id
        self.tcp_id = model.site(f"tcp_{arm}").id
        self.held: list[int] = []
        self._armed = False  # a pinch needs an open -> closing transition, so pressing never grabs

    def active(self, data: mujoco.MjData) -> bool:
        """Whether any vertex is pinched."""
        return bool(self.held)

    def update(self, model: mujoco.MjModel, data: mujoco.MjData, gripper_cmd: float) -> None:
        """Pinch the vertices between the fingers when the gripper closes on them; release when it opens."""
        if gripper_cmd > RELEASE_ABOVE:
            self.release(data)
            self._armed = True
            return
        if self.held or not self._armed or gripper_cmd >= CLOSE_BELOW:
            return
        self._armed = False
        # Only pinch when the fingers are actually around cloth: the tool centre must be within the
        # pinch radius of vertices, and the fingers must have closed below a cloth-thickness gap.
        tcp = data.site_xpos[self.tcp_id]
        dist = np.linalg.norm(data.xpos[self.vertex_bodies] - tcp, axis=1)
        near = np.argsort(dist)[: len(self.eq_ids)]
        near = [int(i) for i in near if dist[i] < self.radius]
        if not near:
            return
        r_grip = data.xmat[self.gripper_id].reshape(3, 3)
        for eq_id, idx in zip(self.eq_ids, near):
            body = int(self.vertex_bodies[idx])
            model.eq_obj2id[eq_id] = body
            # connect: anchor in body1 (gripper) frame, then the same point in body2 (vertex) frame.
            model.eq_data[eq_id, 0:3] = r_grip.T @ (data.xpos[body] - data.xpos[self.gripper_id])
            model.eq_data[eq_id, 3:6] = 0.0
            data.eq_active[eq_id] = 1
        self.held = near

    def release(self, data: mujoco.MjData) -> None:
        """Let go of every pinched vertex."""
        data.eq_active[self.eq_ids] = 0
        self.held = []

    def reset(self, data: mujoco.MjData) -> None:
        """Release and disarm (a new episode)."""
        self.release(data)
        self._armed = False
