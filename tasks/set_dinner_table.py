"""Setting the Dinner Table: carry a plate, a cup, a fork and a knife from a tray to their places on a placemat."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import mujoco
import numpy as np
from typing_extensions import override

from tasks.base import Evaluation, YamTaskEnv
from tasks.calibration import approach, calibrated_progress, gripper_closure, stage_weights
from tasks.expert import ArmGoal, ScriptedExpert, Segment
from tasks.grasping import WeldGrasp
from tasks.station import STATION_CENTER_Y, add_object_floor, add_table_patch

#: Collision bit of the tableware: it touches an invisible plane at the table top (cheap, stable
#: plane contacts instead of box-cylinder ones), the finger pads and palms, and itself.
OBJECT_BIT = 4
POS_TOL = 0.03  # m: an object within this distance (xy) of its marker is in place
YAW_TOL = np.deg2rad(15.0)  # rad: cutlery yaw tolerance (boxes are symmetric end to end: error mod pi)
MAT_CENTER = np.array([0.36, STATION_CENTER_Y])
MAT_HALF = np.array([0.085, 0.175])
TRAY_CENTER = np.array([0.215, STATION_CENTER_Y])
TRAY_HALF = np.array([0.085, 0.24])


@dataclass(frozen=True)
class Tableware:
    """One object: its shape, where it starts (nominal), where it goes, and which arm handles it."""

    name: str
    kind: str  # "box" (cutlery) or "cylinder"
    size: tuple[float, ...]  # MuJoCo half sizes: box (x, y, z), cylinder (radius, half height)
    mass: float
    rgba: tuple[float, float, float, float]
    start: tuple[float, float]
    start_yaw: float  # nominal yaw at the start (cutlery lies across the tray)
    marker: tuple[float, float]  # offset from the placemat centre
    arm: str

    @property
    def half_height(self) -> float:
        """Half the item's height above the table."""
        return self.size[2] if self.kind == "box" else self.size[1]

    @property
    def is_cutlery(self) -> bool:
        """Whether the item is cutlery (a box) rather than a dish."""
        return self.kind == "box"


TABLEWARE: tuple[Tableware, ...] = (
    Tableware("plate", "cylinder", (0.04, 0.008), 0.15, (0.93, 0.93, 0.9, 1), (0.20, -0.27), 0.0, (0.0, 0.0), "left"),
    Tableware(
        "knife",
        "box",
        (0.08, 0.009, 0.006),
        0.04,
        (0.72, 0.74, 0.78, 1),
        (0.19, -0.50),
        np.pi / 2,
        (0.0, -0.105),
        "right",
    ),
    Tableware(
        "fork",
        "box",
        (0.075, 0.011, 0.006),
        0.04,
        (0.62, 0.64, 0.7, 1),
        (0.19, -0.12),
        np.pi / 2,
        (0.0, 0.105),
        "left",
    ),
    Tableware(
        "cup", "cylinder", (0.028, 0.04), 0.1, (0.85, 0.3, 0.25, 1), (0.25, -0.38), 0.0, (0.075, -0.175), "right"
    ),
)
TABLEWARE_BY_NAME = {t.name: t for t in TABLEWARE}
START_JITTER = 0.015  # m, per axis
MAT_JITTER = 0.01  # m, per axis
CUTLERY_YAW_JITTER = 0.6  # rad


def _nominal_distance(t: Tableware) -> float:
    return float(np.linalg.norm(MAT_CENTER + np.array(t.marker) - np.array(t.start)))


#: Distance (m) at which an object's position score starts to rise above 0: just inside the closest
#: a randomised start can be, so the progress of a fresh episode is 0.
SCORE_RANGE = {t.name: _nominal_distance(t) - 2 * np.sqrt(2) * (START_JITTER + MAT_JITTER) for t in TABLEWARE}


#: Calibrated progress: a tool centre this close (m) to an object's centre has arrived to grasp it (a cup is held
#: above its centre), and from there its gripper's closing counts as grasping; how high (m) an object is lifted to
#: be carried; how far (m) a hand that let go must back away from it.
ARRIVED = {"plate": 0.012, "knife": 0.012, "fork": 0.012, "cup": 0.025}
CLOSING_REACH = 0.03
LIFT_RISE = 0.07
CLEAR_DISTANCE = 0.06
#: Calibrated stages of each object, in demo order (cutlery is turned to its marker's yaw on the way).
OBJECT_STAGES = {
    t.name: ("reach", "grasp", "lift", *(("turn",) if t.kind == "box" else ()), "carry", "lower", "release", "clear")
    for t in TABLEWARE
}
#: Calibrated stage weights (``<object>/<stage>``): each stage's mean share of full-skill demo time, measured on 20
#: demos at operator variability 1 (seeds 0-19) with
#: ``python benchmarks/calibrated_progress.py --tasks SetDinnerTable --fit`` and averaged over the objects (they
#: come in any order), so a stage weighs the same for every object.
STAGE_SHARES = {
    "reach": 0.074,
    "grasp": 0.019,
    "lift": 0.021,
    "turn": 0.046,
    "carry": 0.045,
    "lower": 0.035,
    "release": 0.015,
    "clear": 0.018,
}
CALIBRATION_WEIGHTS = stage_weights(
    **{f"{name}/{stage}": STAGE_SHARES[stage] for name, st in OBJECT_STAGES.items() for stage in st}
)


def wrap_half_turn(angle: float) -> float:
    """``angle`` mapped into (-pi/2, pi/2]: yaw differences of an object symmetric under a half turn."""
    return float(np.pi / 2 - np.mod(np.pi / 2 - angle, np.pi))


def _yaw_of(rot: np.ndarray) -> float:
    return float(np.arctan2(rot[1, 0], rot[0, 0]))


class SetDinnerTableEnv(YamTaskEnv):
    """## Setting the Dinner Table (``SARM2/SetDinnerTable-v0``)

    **Description.** A plate, a cup, a fork and a knife lie in a tray in front of the robot. A
    placemat further out carries a marked place for each (visual-only markers: a ring for the plate
    and the cup, a bar for each piece of cutlery). The left arm sets the plate and the fork (the
    places on its side), the right arm the knife and the cup; cutlery is picked where it lies across
    the tray, turned in the air to its marker's yaw and laid down on it. Proxy of the paper's
    "Setting the Dinner Table" task (its longest).

    **Observation / action.** As every SARM2 task (docs/design.md §3): three RGB views + 14-d joint state;
    14-d absolute joint targets.

    **State** (``obs_mode="state"``: one flat float32 vector of 52 values; ``"pixels+state"`` adds it as
    ``obs["state"]``): ``agent_pos`` (14), ``plate_free/pos`` (3), ``plate_free/quat`` (4, w x y z),
    ``knife_free/pos`` (3), ``knife_free/quat`` (4, w x y z), ``fork_free/pos`` (3), ``fork_free/quat`` (4, w x y
    z), ``cup_free/pos`` (3), ``cup_free/quat`` (4, w x y z), then the evaluation terms ``eval/cup_align``,
    ``eval/cup_placed``, ``eval/fork_align``, ``eval/fork_placed``, ``eval/held``, ``eval/knife_align``,
    ``eval/knife_placed``, ``eval/n_placed``, ``eval/plate_align``, ``eval/plate_placed`` (1 each), in that order
    (``env.unwrapped.state_layout``). Simulation only.

    **Progress** (from the objects' poses; valid for any trajectory)::

        mean over the 4 objects of  0.85 * align_i + 0.15 * placed_i

    ``align_i = pos_i`` for the plate and the cup and ``pos_i * (0.6 + 0.4 * yaw_i)`` for cutlery,
    with ``pos_i = clip(1 - (d_i - 3 cm) / (R_i - 3 cm), 0, 1)`` (``d_i`` the xy distance to the
    marker, ``R_i`` just under the smallest start distance, so a fresh episode scores 0) and
    ``yaw_i = clip(1 - (e_i - 15 deg) / (90 deg - 15 deg), 0, 1)`` (``e_i`` the yaw error modulo a half
    turn: the proxy's cutlery is a box, so either end may point away from the robot; the dark
    handle is only a visual cue). ``placed_i`` is 1 when the object is within 3 cm (and 15 deg),
    upright, resting on the table and not held. Taking an object off its place takes its terms back
    down.

    **Calibrated progress** (``info["calibrated_progress"]``; :mod:`tasks.calibration`): the same physics in
    demo-time units, for comparison with time-linear progress. Per object, stages in demo order, each weighted
    by its mean share of full-skill demo time (``STAGE_SHARES``), each a fraction from the current physics
    state: ``reach`` (the nearest tool centre's approach to the object, from its home pose), ``grasp`` (that
    gripper closing on it), ``lift`` (held, up to 7 cm), ``turn`` (cutlery only: the yaw score above),
    ``carry`` (the xy approach to its marker), ``lower`` (held on its marker, set down), ``release`` (the holding
    gripper opening there), ``clear`` (the nearest free hand backing 6 cm away from the placed object). Sum of
    weight x fraction; 1 on success, at most 0.99 without it. Taking an object off its place lowers it.

    **Success.** Every object placed (``placed_i`` for all four): on its marker within 3 cm, cutlery
    within 15 deg of its marker's yaw, upright, on the table, released.

    **Randomisation.** Start positions (+-1.5 cm per axis) and yaws (plate and cup any yaw, cutlery
    across the tray +-0.6 rad); the placemat with its markers (+-1 cm per axis).

    **Episode end.** Success (``terminated``) or 900 control steps (90 s at 10 Hz, ``truncated``).

    **Grasping.** Rigid objects: a weld assist engages when both finger pads touch an object while
    the gripper closes and releases when it opens (tasks/grasping.py), so missed grasps and drops
    stay possible.

    **Expert primitives.** ``pick_grab``, ``rotate_turn``, ``place``, ``dummy``.

    **Version history.** v0: initial release.
    """

    task_name = "SetDinnerTable"
    instruction = "Set the table: put the plate, the cup, the fork and the knife on their places on the placemat."

    def _build_task(self, spec: mujoco.MjSpec) -> None:
        wb = spec.worldbody
        # An invisible plane at the table top that only the tableware touches: plane-cylinder and
        # plane-box contacts are the cheapest and most stable; the table box ignores the tableware.
        add_object_floor(wb, "tableware_floor", OBJECT_BIT, [0.8, 0.01, 0.001])
        for arm in ("left", "right"):
            for part in ("tip_left_pad", "tip_right_pad", "palm"):
                geom = spec.geom(f"{arm}_{part}")
                geom.conaffinity = geom.conaffinity | OBJECT_BIT
        add_table_patch(wb, "tray", TRAY_CENTER, TRAY_HALF, [0.45, 0.36, 0.28, 1])
        add_table_patch(wb, "placemat", MAT_CENTER, MAT_HALF, [0.2, 0.45, 0.35, 1])
        for t in TABLEWARE:
            mx, my = MAT_CENTER + np.array(t.marker)
            if t.is_cutlery:
                marker = dict(type=mujoco.mjtGeom.mjGEOM_BOX, size=[t.size[0] + 0.005, t.size[1] + 0.004, 0.0006])
            else:
                marker = dict(type=mujoco.mjtGeom.mjGEOM_CYLINDER, size=[t.size[0] + 0.006, 0.0006, 0])
            wb.add_geom(
                name=f"marker_{t.name}",
                pos=[mx, my, 0.0012],
                rgba=[0.95, 0.9, 0.55, 1],
                contype=0,
                conaffinity=0,
                **marker,
            )
            body = wb.add_body(name=t.name, pos=[*t.start, t.half_height])
            body.add_freejoint(name=f"{t.name}_free")
            shape = mujoco.mjtGeom.mjGEOM_BOX if t.is_cutlery else mujoco.mjtGeom.mjGEOM_CYLINDER
            body.add_geom(
                name=f"{t.name}_geom",
                type=shape,
                size=list(t.size) + [0.0] * (3 - len(t.size)),
                mass=t.mass,
                rgba=list(t.rgba),
                friction=[1.0, 0.01, 0.001],
                condim=4,
                contype=OBJECT_BIT,
                conaffinity=OBJECT_BIT,
            )
            # Visual details so the views tell the objects (and the cutlery's ends) apart.
            if t.is_cutlery:
                body.add_geom(
                    name=f"{t.name}_handle",
                    type=mujoco.mjtGeom.mjGEOM_BOX,
                    pos=[-0.45 * t.size[0], 0, 0.0005],
                    size=[0.5 * t.size[0], t.size[1] * 1.05, t.size[2]],
                    rgba=[0.25, 0.18, 0.12, 1],
                    contype=0,
                    conaffinity=0,
                    mass=0.0,
                )
            else:
                r, h = t.size
                body.add_geom(
                    name=f"{t.name}_top",
                    type=mujoco.mjtGeom.mjGEOM_CYLINDER,
                    pos=[0, 0, h],
                    size=[0.75 * r, 0.0006, 0],
                    rgba=[0.75, 0.75, 0.72, 1] if t.name == "plate" else [0.3, 0.08, 0.06, 1],
                    contype=0,
                    conaffinity=0,
                    mass=0.0,
                )
            for arm in ("left", "right"):
                WeldGrasp.add_to_spec(spec, arm, t.name)

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.grasps = {
            (arm, t.name): WeldGrasp(self.model, arm, t.name) for t in TABLEWARE for arm in ("left", "right")
        }
        self._body = {t.name: self.model.body(t.name).id for t in TABLEWARE}
        self._qadr = {t.name: int(self.model.joint(f"{t.name}_free").qposadr[0]) for t in TABLEWARE}
        self._marker_geom = {t.name: self.model.geom(f"marker_{t.name}").id for t in TABLEWARE}
        self._mat_geom = self.model.geom("placemat").id
        self._marker_home = {
            t.name: self.model.geom_pos[g].copy() for t, g in zip(TABLEWARE, self._marker_geom.values())
        }
        self._mat_home = self.model.geom_pos[self._mat_geom].copy()

    # ------------------------------------------------------------------ randomisation
    def _reset_task(self) -> None:
        rng = self.np_random
        shift = self.pose_offset(MAT_JITTER, size=2)
        self.model.geom_pos[self._mat_geom, :2] = self._mat_home[:2] + shift
        for t in TABLEWARE:
            self.model.geom_pos[self._marker_geom[t.name], :2] = self._marker_home[t.name][:2] + shift
        for t in TABLEWARE:
            xy = np.array(t.start) + self.pose_offset(START_JITTER, size=2)
            if t.is_cutlery:
                yaw = t.start_yaw + self.pose_offset(CUTLERY_YAW_JITTER)
            else:
                yaw = rng.uniform(-np.pi, np.pi)
            adr = self._qadr[t.name]
            self.set_free_pose(adr, (*xy, t.half_height), yaw)
        self.reset_grasp_assists(self.grasps)

    # ------------------------------------------------------------------ per-step physics
    def _before_physics(self, action: np.ndarray) -> None:
        cmd = self.gripper_command()
        for (arm, _), grasp in self.grasps.items():
            holding_other = any(g.active(self.data) for (a, n), g in self.grasps.items() if a == arm and g is not grasp)
            if holding_other and not grasp.active(self.data):
                continue  # one object per hand
            grasp.update(self.model, self.data, float(cmd[0 if arm == "left" else 1]))

    # ------------------------------------------------------------------ state queries
    def object_pose(self, name: str) -> tuple[np.ndarray, float]:
        """World position (3,) and yaw (rad) of an object."""
        body = self._body[name]
        return self.data.xpos[body].copy(), _yaw_of(self.data.xmat[body].reshape(3, 3))

    def marker(self, name: str) -> tuple[np.ndarray, float]:
        """World xy (2,) and yaw (rad) of an object's place marker."""
        return self.model.geom_pos[self._marker_geom[name], :2].copy(), 0.0

    def held(self, name: str) -> bool:
        """Whether either arm holds ``name``."""
        return any(self.grasps[(arm, name)].active(self.data) for arm in ("left", "right"))

    def holding(self, arm: str) -> str | None:
        """Name of the object ``arm`` holds, if any."""
        for t in TABLEWARE:
            if self.grasps[(arm, t.name)].active(self.data):
                return t.name
        return None

    def object_terms(self, name: str) -> tuple[float, float, bool]:
        """``(align, position error, placed)`` of one object (see the task card)."""
        t = TABLEWARE_BY_NAME[name]
        body = self._body[name]
        pos = self.data.xpos[body]
        rot = self.data.xmat[body].reshape(3, 3)
        target, target_yaw = self.marker(name)
        dist = float(np.linalg.norm(pos[:2] - target))
        pos_score = float(np.clip(1.0 - max(dist - POS_TOL, 0.0) / (SCORE_RANGE[name] - POS_TOL), 0.0, 1.0))
        upright = rot[2, 2] > 0.9
        resting = pos[2] < t.half_height + 0.01
        ok = dist <= POS_TOL and upright and resting and not self.held(name)
        if t.is_cutlery:
            err = abs(wrap_half_turn(_yaw_of(rot) - target_yaw)) if upright else np.pi / 2
            yaw_score = float(np.clip(1.0 - max(err - YAW_TOL, 0.0) / (np.pi / 2 - YAW_TOL), 0.0, 1.0))
            align = pos_score * (0.6 + 0.4 * yaw_score)
            ok = ok and err <= YAW_TOL
        else:
            align = pos_score
        return align, dist, bool(ok)

    def placed(self, name: str) -> bool:
        """Whether ``name`` is on its target."""
        return self.object_terms(name)[2]

    @override
    def evaluate(self) -> Evaluation:
        terms: dict[str, float] = {}
        scores = []
        all_placed = True
        for t in TABLEWARE:
            align, dist, ok = self.object_terms(t.name)
            scores.append(0.85 * align + 0.15 * float(ok))
            all_placed = all_placed and ok
            terms[f"{t.name}_align"] = align
            terms[f"{t.name}_placed"] = float(ok)
        terms["n_placed"] = float(sum(terms[f"{t.name}_placed"] for t in TABLEWARE))
        terms["held"] = float(any(g.active(self.data) for g in self.grasps.values()))
        calibrated = calibrated_progress(self.calibration_stages(), CALIBRATION_WEIGHTS, all_placed)
        return Evaluation(float(np.mean(scores)), bool(all_placed), terms, calibrated)

    calibration_weights = CALIBRATION_WEIGHTS

    def calibration_stages(self) -> dict[str, float]:
        """Fraction done (from physics) of each object's calibrated stages (see the task card)."""
        tcp = {arm: self.data.site_xpos[self._tcp[arm]] for arm in ("left", "right")}
        opening = dict(zip(("left", "right"), self.agent_pos()[[6, 13]]))
        holders = {arm: self.holding(arm) for arm in ("left", "right")}
        stages: dict[str, float] = {}
        for t in TABLEWARE:
            name = t.name
            body = self._body[name]
            pos = self.data.xpos[body]
            rot = self.data.xmat[body].reshape(3, 3)
            target, target_yaw = self.marker(name)
            _, dist, placed = self.object_terms(name)
            holder = next((arm for arm, held in holders.items() if held == name), None)
            on_marker = dist <= POS_TOL
            values: dict[str, float] = {}
            if holder is not None or placed:
                values["reach"] = values["grasp"] = 1.0
            else:
                d = {arm: float(np.linalg.norm(tcp[arm] - pos)) for arm in tcp}
                arm = min(d, key=d.get)
                start = float(np.linalg.norm(self._home_tcp[arm] - pos))
                values["reach"] = approach(d[arm], start, ARRIVED[name])
                values["grasp"] = gripper_closure(opening[arm]) if d[arm] <= CLOSING_REACH else 0.0
            raised = float(np.clip((pos[2] - t.half_height) / LIFT_RISE, 0.0, 1.0))
            if placed:
                values.update(lift=1.0, carry=1.0, lower=1.0, release=1.0)
            elif holder is not None:
                values["lift"] = 1.0 if on_marker else raised
                start = float(np.linalg.norm(np.array(t.start) - target))
                values["carry"] = values["lift"] * approach(dist, start, arrived=POS_TOL)
                values["lower"] = 1.0 - raised if on_marker else 0.0
                values["release"] = float(np.clip(opening[holder], 0.0, 1.0)) if on_marker and raised < 0.1 else 0.0
            else:
                values.update(lift=0.0, carry=0.0, lower=0.0, release=0.0)
            if t.is_cutlery:
                err = abs(wrap_half_turn(_yaw_of(rot) - target_yaw))
                turned = float(np.clip(1.0 - max(err - YAW_TOL, 0.0) / (np.pi / 2 - YAW_TOL), 0.0, 1.0))
                values["turn"] = 1.0 if placed else (turned if holder is not None else 0.0)
            if placed:
                free = [arm for arm, held in holders.items() if held is None] or list(tcp)
                nearest = min(float(np.linalg.norm(tcp[arm] - pos)) for arm in free)
                values["clear"] = float(np.clip(nearest / CLEAR_DISTANCE, 0.0, 1.0))
            else:
                values["clear"] = 0.0
            stages.update({f"{name}/{stage}": values[stage] for stage in OBJECT_STAGES[name]})
        return stages


class SetDinnerTableExpert(ScriptedExpert):
    """Arm by arm, pick each object from the tray, turn cutlery to its marker's yaw in the air, set it down."""

    TEMPO = 1.4
    PRIMITIVES = frozenset({"pick_grab", "rotate_turn", "place"})
    CARRY_Z = 0.09  # tool-centre height of flat objects in transit
    #: Tool-centre height above an object's bottom when grasping it.
    GRASP_ABOVE_BOTTOM = {"plate": 0.009, "knife": 0.008, "fork": 0.008, "cup": 0.05}
    #: Joint 6 has +-120 deg of travel: each arm turns its tool about this yaw (rad).
    ARM_YAW_CENTRE = {"left": -0.6, "right": 0.6}
    ORDER = ("plate", "cup", "fork", "knife")
    REST = {"left": ArmGoal((0.22, 0.0, 0.15)), "right": ArmGoal((0.22, -0.61, 0.15))}

    @override
    def plan(self) -> Iterator[Segment]:
        env: SetDinnerTableEnv = self.env
        yield from self.maybe_hesitate()
        for name in self.vary_order(self.ORDER):
            # A second full attempt (re-pick and set again) when a placement came out wrong.
            for _attempt in self.tries(2):
                if env.placed(name):
                    break
                yield from self._set_object(env, name)
        yield Segment("dummy", self.pace(1.0), left=self.REST["left"], right=self.REST["right"])

    # ------------------------------------------------------------------ helpers
    def _tool_yaw(self, arm: str, yaw: float) -> float:
        """``yaw`` plus the multiple of a half turn nearest the arm's comfortable wrist angle."""
        centre = self.ARM_YAW_CENTRE[arm]
        return float(centre + wrap_half_turn(yaw - centre))

    def _other(self, arm: str) -> str:
        return "right" if arm == "left" else "left"

    # ------------------------------------------------------------------ sub-plans
    def _set_object(self, env: SetDinnerTableEnv, name: str) -> Iterator[Segment]:
        t = TABLEWARE_BY_NAME[name]
        arm = t.arm
        if not (
            yield from self.retry(lambda: self._pick(env, name, arm), lambda: env.grasps[(arm, name)].active(env.data))
        ):
            return
        if t.is_cutlery:
            yield from self._rotate(env, name, arm)
        yield from self._place(env, name, arm)

    def _pick(self, env: SetDinnerTableEnv, name: str, arm: str) -> Iterator[Segment]:
        t = TABLEWARE_BY_NAME[name]
        pos, yaw = env.object_pose(name)
        # Cutlery is gripped across its width (tool yaw = its yaw); round things from the side that
        # keeps the fingers clear of their neighbours in the tray (fingers opening along x).
        grasp_yaw = self._tool_yaw(arm, yaw if t.is_cutlery else np.pi / 2)
        grasp_yaw += float(self.jitter(0.25, 1)[0])
        xy = pos[:2] + self.jitter(0.025, 2)
        grasp_z = pos[2] - t.half_height + self.GRASP_ABOVE_BOTTOM[name]
        above_z = grasp_z + 0.07
        above = ArmGoal((float(xy[0]), float(xy[1]), above_z), yaw=grasp_yaw, grip=1.0)
        other = self._other(arm)
        yield Segment("pick_grab", self.pace(1.5), **{arm: above, other: self.REST[other]})
        yield from self.maybe_hesitate()
        yield Segment("pick_grab", self.pace(0.9), **{arm: above.moved(dz=grasp_z - above_z)})
        yield Segment("pick_grab", 0.6, **{arm: self.goal(arm).moved(grip=0.0)})
        lift_z = self.CARRY_Z + (self.GRASP_ABOVE_BOTTOM[name] if name == "cup" else 0.0)
        yield Segment("pick_grab", self.pace(0.8), **{arm: self.goal(arm).moved(dz=lift_z - grasp_z)})
        if not env.grasps[(arm, name)].active(env.data):  # missed: open and look again
            yield from self.let_go(0.5, arm, rise=0.02)

    def _rotate(self, env: SetDinnerTableEnv, name: str, arm: str) -> Iterator[Segment]:
        pos, obj_yaw = env.object_pose(name)
        target, target_yaw = env.marker(name)
        now = self.goal(arm)
        # The object turns with the tool; of the two equivalent turns (the cutlery is symmetric end
        # to end) take the one that keeps the wrist in its range.
        final = self._tool_yaw(arm, now.yaw + wrap_half_turn(target_yaw - obj_yaw))
        final += float(self.jitter(0.25, 1)[0])  # an imprecise turn may miss the 15 deg tolerance
        # Turn while drifting halfway towards the mat, as a person does on the way.
        dx = 0.5 * float(target[0] - pos[0])
        yield Segment("rotate_turn", self.pace(1.4), **{arm: now.moved(dx=dx, yaw=final)})

    def _place(self, env: SetDinnerTableEnv, name: str, arm: str) -> Iterator[Segment]:
        t = TABLEWARE_BY_NAME[name]
        yield from self.maybe_hesitate()
        pos, _ = env.object_pose(name)
        tool = np.asarray(self.goal(arm).pos)
        offset = pos[:2] - tool[:2]  # where the object hangs relative to the commanded tool centre
        target, _ = env.marker(name)
        goal_xy = target - offset + self.jitter(0.02, 2)
        above = self.goal(arm).moved(dx=float(goal_xy[0] - tool[0]), dy=float(goal_xy[1] - tool[1]))
        yield Segment("place", self.pace(1.6), **{arm: above})
        if self.chance(0.12):  # lets go in transit: the object drops where it is
            yield Segment("place", 0.5, **{arm: self.goal(arm).moved(grip=1.0)})
            yield Segment("dummy", 0.6, **{arm: self.goal(arm).moved(dz=0.03)})
            return
        bottom_above_table = (pos[2] - t.half_height) - 0.003
        yield Segment("place", self.pace(1.0), **{arm: above.moved(dz=-bottom_above_table)})
        yield Segment("place", 0.5, **{arm: self.goal(arm).moved(grip=1.0)})
        yield Segment("place", self.pace(0.7), **{arm: self.goal(arm).moved(dz=0.07)})
