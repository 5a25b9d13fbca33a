"""Plates shared by the plate tasks: geometry, a base env that owns the plates and their grasps, and
the expert's pick-up sub-plan.

A plate is a rigid disc (a cylinder "rim" of radius ``PLATE_RADIUS``) standing on three small ball
feet, like the foot ring of a real plate. The feet keep a flat plate stable on a box surface (a
lone cylinder on a box gets a single convex contact and wobbles) and lift the rim a few millimetres,
so finger pads can close on the rim without scraping the table. A parallel gripper pointing down
picks a plate by clamping its rim across a diameter (the plate is smaller than the gripper's
~9.5 cm opening). Tilting the tool about the finger axis then turns a held plate upright.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator, Sequence
from typing import ClassVar

import mujoco
import numpy as np

from sarm2_env.constants import ARMS
from tasks.base import Evaluation, YamTaskEnv, yaw_quat
from tasks.calibration import approach, calibrated_progress, gripper_closure
from tasks.expert import ArmGoal, ScriptedExpert, Segment
from tasks.grasping import WeldGrasp

PLATE_RADIUS = 0.038
RIM_HALF = 0.005  # half thickness of the rim disc
FOOT_DROP = 0.006  # the rim's underside sits this far above whatever the plate stands on
FOOT_RING = 0.024  # radius of the circle the three foot balls sit on
FOOT_BALL = 0.0035
#: Height of a flat plate's centre (the rim's centre) above the surface it stands on.
REST_Z = FOOT_DROP + RIM_HALF
PLATE_MASS = 0.09
PLATE_COLOURS = np.array([[0.92, 0.9, 0.84, 1.0], [0.72, 0.84, 0.92, 1.0], [0.93, 0.8, 0.62, 1.0]])
#: Parking poses of the tool centres, out of the way of the objects.
PARK = {"left": ArmGoal((0.25, 0.0, 0.15)), "right": ArmGoal((0.25, -0.61, 0.15))}
#: A plate counts as at rest below this linear speed (m/s).
REST_SPEED = 0.05
#: Calibrated progress: a tool centre within this distance (m) of a plate's centre has arrived to grasp it, and
#: within ``CLOSING_REACH`` its gripper's closing counts as grasping that plate.
ARRIVED = 0.01
CLOSING_REACH = 0.025
#: A hand this far (m) from the plate it let go of has cleared it (the expert rises 8-9 cm after releasing).
CLEAR_DISTANCE = 0.08


def add_plate(spec: mujoco.MjSpec, name: str, rgba: np.ndarray) -> None:
    """Add a free plate body ``name`` (joint ``<name>_free``) to the world of ``spec``."""
    body = spec.worldbody.add_body(name=name, pos=[0.0, 0.0, REST_Z])
    body.add_freejoint(name=f"{name}_free")
    body.add_geom(
        name=f"{name}_rim",
        type=mujoco.mjtGeom.mjGEOM_CYLINDER,
        size=[PLATE_RADIUS, RIM_HALF, 0.0],
        mass=PLATE_MASS,
        rgba=rgba,
        friction=[0.9, 0.01, 0.001],
    )
    foot_z = -RIM_HALF - FOOT_DROP + FOOT_BALL
    for k in range(3):
        a = 2.0 * np.pi * k / 3.0
        body.add_geom(
            name=f"{name}_foot{k}",
            type=mujoco.mjtGeom.mjGEOM_SPHERE,
            size=[FOOT_BALL, 0.0, 0.0],
            pos=[FOOT_RING * np.cos(a), FOOT_RING * np.sin(a), foot_z],
            mass=0.002,
            rgba=rgba,
            friction=[0.9, 0.01, 0.001],
        )
    # Visual only: the foot ring and the plate's well (a darker centre disc), so plates read as plates.
    shade = np.array([0.85, 0.85, 0.85, 1.0]) * rgba
    body.add_geom(
        name=f"{name}_ring",
        type=mujoco.mjtGeom.mjGEOM_CYLINDER,
        size=[FOOT_RING + FOOT_BALL, (FOOT_DROP - FOOT_BALL) / 2, 0.0],
        pos=[0.0, 0.0, -RIM_HALF - (FOOT_DROP - FOOT_BALL) / 2],
        rgba=shade,
        contype=0,
        conaffinity=0,
        mass=0.0,
    )
    body.add_geom(
        name=f"{name}_well",
        type=mujoco.mjtGeom.mjGEOM_CYLINDER,
        size=[0.65 * PLATE_RADIUS, 0.0004, 0.0],
        pos=[0.0, 0.0, RIM_HALF],
        rgba=shade,
        contype=0,
        conaffinity=0,
        mass=0.0,
    )


class PlateTaskEnv(YamTaskEnv):
    """A task with ``N_PLATES`` free plates, each graspable by either arm (weld assist).

    Subclasses call :meth:`_build_plates` from ``_build_task`` and place the plates in
    ``_reset_task`` with :meth:`set_plate`.
    """

    N_PLATES: ClassVar[int] = 2
    #: Calibrated stage weights of the task (keys as :meth:`calibration_stages` returns them).
    calibration_weights: ClassVar[dict[str, float]] = {}

    def _build_plates(self, spec: mujoco.MjSpec) -> None:
        for k in range(self.N_PLATES):
            add_plate(spec, f"plate{k}", PLATE_COLOURS[k])
            for arm in ARMS:
                WeldGrasp.add_to_spec(spec, arm, f"plate{k}")

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        n = self.N_PLATES
        self._plate_ids = np.array([self.model.body(f"plate{k}").id for k in range(n)])
        self._plate_qadr = np.array([self.model.joint(f"plate{k}_free").qposadr[0] for k in range(n)])
        self._plate_dadr = np.array([self.model.joint(f"plate{k}_free").dofadr[0] for k in range(n)])
        self.grasps = {arm: [WeldGrasp(self.model, arm, f"plate{k}") for k in range(n)] for arm in ARMS}
        self._tcp_ids = {arm: self.model.site(f"tcp_{arm}").id for arm in ARMS}
        #: Each plate's distance to its goal at reset (set by subclasses' ``_reset_task``), for the transport terms.
        self._d0 = np.ones(n)

    def _scatter_plates(self, homes: Sequence[np.ndarray]) -> None:
        """Put plate ``k`` within +-3 cm (x and y) of ``homes[k]`` at a random yaw, at rest, released; then update
        the kinematics, so that plate positions are current."""
        rng = self.np_random
        for k, home in enumerate(homes):
            xy = home + self.pose_offset(0.03, 2)
            self.set_plate(k, np.array([*xy, REST_Z]), yaw_quat(rng.uniform(-np.pi, np.pi)))
        self._release_plates()
        mujoco.mj_kinematics(self.model, self.data)

    # ------------------------------------------------------------------ state access
    def set_plate(self, k: int, pos: np.ndarray, quat: np.ndarray | None = None) -> None:
        """Put plate ``k`` at ``pos`` (its centre) with orientation ``quat``, at rest."""
        adr, dadr = self._plate_qadr[k], self._plate_dadr[k]
        self.data.qpos[adr : adr + 3] = pos
        self.data.qpos[adr + 3 : adr + 7] = yaw_quat(0.0) if quat is None else quat
        self.data.qvel[dadr : dadr + 6] = 0.0

    def plate_pos(self, k: int) -> np.ndarray:
        """World position (3,) of plate ``k``'s centre."""
        return self.data.xpos[self._plate_ids[k]].copy()

    def plate_normal(self, k: int) -> np.ndarray:
        """Unit axis (3,) of plate ``k`` (its face normal; +z when lying right side up)."""
        return self.data.xmat[self._plate_ids[k]].reshape(3, 3)[:, 2].copy()

    def plate_speed(self, k: int) -> float:
        """Linear speed (m/s) of plate ``k``."""
        dadr = self._plate_dadr[k]
        return float(np.linalg.norm(self.data.qvel[dadr : dadr + 3]))

    def plate_lowest_point(self, k: int) -> np.ndarray:
        """The lowest point (3,) of plate ``k``'s rim circle (its edge when upright)."""
        n = self.plate_normal(k)
        down = np.array([0.0, 0.0, -1.0]) + n[2] * n  # world down, projected onto the plate's plane
        norm = float(np.linalg.norm(down))
        if norm < 1e-6:  # flat: every rim point is equally low
            return self.plate_pos(k) - np.array([0.0, 0.0, RIM_HALF])
        return self.plate_pos(k) + PLATE_RADIUS * down / norm

    def plate_held(self, k: int) -> bool:
        """Whether any gripper holds plate ``k``."""
        return any(self.grasps[arm][k].active(self.data) for arm in ARMS)

    def held_by(self, arm: str) -> int | None:
        """Index of the plate ``arm`` holds, or ``None``."""
        for k, grasp in enumerate(self.grasps[arm]):
            if grasp.active(self.data):
                return k
        return None

    def tcp_pos(self, arm: str) -> np.ndarray:
        """Position of ``arm``'s tool centre."""
        return self.data.site_xpos[self._tcp_ids[arm]].copy()

    def lift_of(self, k: int) -> float:
        """How far plate ``k`` is lifted off the table, in [0, 1]: 0 lying or standing on it, 1 with its
        lowest rim point >= 4.5 cm up (measured at the rim, so a plate on its edge is not "lifted")."""
        low = self.plate_lowest_point(k)[2]
        return float(np.clip((low - FOOT_DROP - 0.005) / 0.04, 0.0, 1.0))

    def lift_and_transport(self, k: int, arrived: bool, distance: Callable[[np.ndarray], float]) -> tuple[float, float]:
        """Plate ``k``'s progress terms ``(raised, transport)``: both 1 once ``arrived``; else its :meth:`lift_of`,
        and that times its approach to the goal (``distance`` from its centre, against the distance at reset)."""
        if arrived:
            return 1.0, 1.0
        raised = self.lift_of(k)
        near = float(np.clip(1.0 - distance(self.plate_pos(k)) / self._d0[k], 0.0, 1.0))
        return raised, raised * near

    def plate_evaluation(self, scores: list[float], success: bool, terms: dict[str, float]) -> Evaluation:
        """The evaluation of per-plate progress ``scores`` (progress: their mean), with the calibrated progress of
        :meth:`calibration_stages` under ``calibration_weights``."""
        calibrated = calibrated_progress(self.calibration_stages(), self.calibration_weights, success)
        return Evaluation(float(np.mean(scores)), success, terms, calibrated)

    # ------------------------------------------------------------------ calibrated progress stages
    def calibration_stages(self) -> dict[str, float]:
        """Fraction done (from physics) of each plate's calibrated stages (see the task card)."""
        raise NotImplementedError

    def plate_stages(self, k: int, arrived: bool, held: bool, carry: dict[str, float]) -> dict[str, float]:
        """Plate ``k``'s calibrated stage fractions, keyed ``plate{k}/<stage>``, in demo order: ``reach`` and
        ``grasp`` (:meth:`reach_and_grasp`), the task's ``carry`` stages, ``release`` (once ``arrived`` at its
        goal) and ``clear`` (arrived and no longer ``held``)."""
        reach, grasp = self.reach_and_grasp(k, secured=held or arrived)
        values = {
            "reach": reach,
            "grasp": grasp,
            **carry,
            "release": self.release_fraction(k) if arrived else 0.0,
            "clear": self.clear_fraction(k) if arrived and not held else 0.0,
        }
        return {f"plate{k}/{name}": value for name, value in values.items()}

    def reach_and_grasp(self, k: int, secured: bool) -> tuple[float, float]:
        """The calibrated ``reach`` and ``grasp`` stage fractions of plate ``k`` (both 1 once ``secured``).

        ``reach``: the nearest tool centre's approach to the plate's centre, against its distance from the home
        pose; ``grasp``: that gripper's closing once it is there.
        """
        if secured:
            return 1.0, 1.0
        pos = self.plate_pos(k)
        dist = {arm: float(np.linalg.norm(self.tcp_pos(arm) - pos)) for arm in ARMS}
        arm = min(dist, key=dist.get)
        reach = approach(dist[arm], float(np.linalg.norm(self._home_tcp[arm] - pos)), arrived=ARRIVED)
        opening = float(self.agent_pos()[7 * ARMS.index(arm) + 6])
        return reach, gripper_closure(opening) if dist[arm] <= CLOSING_REACH else 0.0

    def release_fraction(self, k: int) -> float:
        """How far the gripper holding plate ``k`` has opened (1 when no gripper holds it)."""
        for i, arm in enumerate(ARMS):
            if self.grasps[arm][k].active(self.data):
                return float(np.clip(self.agent_pos()[7 * i + 6], 0.0, 1.0))
        return 1.0

    def clear_fraction(self, k: int) -> float:
        """How far the nearest free hand has backed away from plate ``k``, in [0, 1] (1 at ``CLEAR_DISTANCE``).

        A hand holding another plate does not count: it is busy elsewhere, not the one that let go of this one.
        """
        pos = self.plate_pos(k)
        free = [arm for arm in ARMS if self.held_by(arm) is None] or list(ARMS)
        nearest = min(float(np.linalg.norm(self.tcp_pos(arm) - pos)) for arm in free)
        return float(np.clip((nearest - ARRIVED) / (CLEAR_DISTANCE - ARRIVED), 0.0, 1.0))

    # ------------------------------------------------------------------ per-step physics
    def _release_plates(self) -> None:
        for grasps in self.grasps.values():
            for grasp in grasps:
                grasp.release(self.data)

    def _before_physics(self, action: np.ndarray) -> None:
        cmd = self.gripper_command()
        for i, arm in enumerate(ARMS):
            holding = self.held_by(arm)
            for k, grasp in enumerate(self.grasps[arm]):
                if holding is None or holding == k:  # one plate per hand
                    grasp.update(self.model, self.data, float(cmd[i]))
                    if grasp.active(self.data):
                        holding = k


class PlateExpert(ScriptedExpert):
    """Shared sub-plans of the plate experts (subclasses implement ``plan``)."""

    #: Tool-centre height above a flat plate's centre when closing on its rim: the pads then cover
    #: the rim and stay clear of the surface below.
    GRASP_DZ = 0.001
    PICK_JITTER = 0.022  # grasp position error (m, std) at skill 0

    def pick_plate(
        self, arm: str, k: int, yaw: float, lift: float = 0.1, **others: ArmGoal
    ) -> Generator[Segment, None, bool]:
        """Pick plate ``k`` with ``arm`` (``others``: goals of the other arm during the approach).

        Yields ``pick_grab`` segments, and returns whether the plate ended up held (retries missed
        grasps up to :meth:`attempts` times).
        """
        env: PlateTaskEnv = self.env
        for attempt in self.tries():
            c = env.plate_pos(k)
            xy = c[:2] + self.jitter(self.PICK_JITTER, 2)
            tool_yaw = yaw + float(self.jitter(0.3, 1)[0])
            above = ArmGoal((float(xy[0]), float(xy[1]), c[2] + 0.09), yaw=tool_yaw, grip=1.0)
            yield Segment("pick_grab", self.pace(1.4), **{arm: above}, **(others if attempt == 0 else {}))
            yield from self.maybe_hesitate()
            yield Segment("pick_grab", self.pace(0.9), **{arm: above.moved(dz=-0.09 + self.GRASP_DZ)})
            yield Segment("pick_grab", 0.6, **{arm: self.goal(arm).moved(grip=0.0)})
            yield Segment("pick_grab", self.pace(0.8), **{arm: self.goal(arm).moved(dz=lift)})
            if env.held_by(arm) == k:
                return True
            # Missed: open and rise a little to look again.
            yield from self.let_go(0.5, arm, rise=0.02)
        return False

    def park(self, *arms: str) -> Iterator[Segment]:
        """Both (or the given) arms back to their parking poses, gripper open."""
        yield Segment("dummy", self.pace(1.2), **{a: PARK[a] for a in arms or ARMS})

    def carry_offset(self, arm: str, k: int) -> np.ndarray:
        """Plate ``k``'s centre minus ``arm``'s tool centre (world frame), for closed-loop placing."""
        env: PlateTaskEnv = self.env
        return env.plate_pos(k) - env.tcp_pos(arm)
