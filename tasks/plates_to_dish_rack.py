"""Plates to Dish Rack: pick up plates lying flat, turn them upright and slot them into a dish rack."""

from __future__ import annotations

from collections.abc import Iterator

import mujoco
import numpy as np
from typing_extensions import override

from tasks.base import Evaluation
from tasks.calibration import approach, stage_weights
from tasks.expert import ArmGoal, Segment
from tasks.plates import PARK, REST_SPEED, REST_Z, PlateExpert, PlateTaskEnv
from tasks.station import STATION_CENTER_Y

RACK_CENTER = np.array([0.33, STATION_CENTER_Y])
RACK_BASE_HALF = np.array([0.05, 0.045])
RACK_FLOOR = 0.01  # top of the rack's base plate
RIB_HEIGHT = 0.022  # ribs stand this high above the base
RIB_HALF = np.array([0.04, 0.004])  # half length (x) and half thickness (y) of a rib
RAIL_HEIGHT = 0.01
SLOT_GAP = 0.024  # free space between neighbouring ribs (a plate's rim is 1 cm thick)
SLOT_PITCH = SLOT_GAP + 2 * RIB_HALF[1]
#: Slot centres relative to the rack centre (y): slot 0 on the left (+y), slot 1 on the right.
SLOT_OFFSETS = (SLOT_PITCH / 2, -SLOT_PITCH / 2)
PLATE_HOMES = (np.array([0.28, -0.07]), np.array([0.28, -0.54]))
#: A plate tipped at least this far from flat counts as upright (rack slots let it lean ~30 deg).
UPRIGHT_DEG = 50.0
#: Calibrated progress: how high a plate is lifted before it is turned (m), how far it is turned (deg), how close
#: (m, horizontally) its lowest rim point must come to a slot's centre line to be over it, and the height (m) of
#: that point above the rack's floor that inserting starts from.
LIFT_RISE = 0.08
TURN_DEG = 85.0
OVER_SLOT = 0.03
INSERT_DROP = 0.11
#: Calibrated stage weights: each stage's mean share of full-skill demo time, measured on 20 demos at operator
#: variability 1 (seeds 0-19) with ``python benchmarks/calibrated_progress.py --tasks PlatesToDishRack --fit``
#: and averaged over the two plates (either may go first), so every plate's stages weigh the same.
STAGE_SHARES = {
    "reach": 0.128,
    "grasp": 0.023,
    "lift": 0.036,
    "turn_carry": 0.119,
    "insert": 0.108,
    "release": 0.036,
    "clear": 0.049,
}
CALIBRATION_WEIGHTS = stage_weights(**{f"plate{k}/{stage}": w for k in range(2) for stage, w in STAGE_SHARES.items()})


class PlatesToDishRackEnv(PlateTaskEnv):
    """## Plates to Dish Rack (``SARM2/PlatesToDishRack-v0``)

    **Description.** Two small plates (rigid discs of 7.6 cm diameter on a ball foot ring) lie flat on
    the table, one in front of each arm; a dish rack (a base plate with three low ribs forming two
    slots) stands between the arms. Each arm picks up its plate by the rim, turns it upright by tilting
    the tool 90 degrees about the finger axis, and inserts it edge-down into its slot: the left arm into
    the left slot, the right arm into the right one. Proxy of the paper's "Load Dish Rack" task.

    **Observation / action.** As every SARM2 task (docs/design.md §3): three RGB views (``top``,
    ``left_wrist``, ``right_wrist``) + 14-d joint state; 14-d absolute joint targets.

    **State** (``obs_mode="state"``: one flat float32 vector of 37 values; ``"pixels+state"`` adds it as
    ``obs["state"]``): ``agent_pos`` (14), ``plate0_free/pos`` (3), ``plate0_free/quat`` (4, w x y z),
    ``plate1_free/pos`` (3), ``plate1_free/quat`` (4, w x y z), then the evaluation terms ``eval/plate0_held``,
    ``eval/plate0_in_slot``, ``eval/plate0_score``, ``eval/plate0_tilt_deg``, ``eval/plate1_held``,
    ``eval/plate1_in_slot``, ``eval/plate1_score``, ``eval/plate1_tilt_deg``, ``eval/plates_in_rack`` (1 each), in
    that order (``env.unwrapped.state_layout``). Simulation only.

    **Progress** (``info["progress"]``, from physics state, valid for any trajectory): the mean over
    plates of::

        0.15 * picked + 0.2 * upright + 0.2 * transport + 0.25 * in_slot + 0.2 * [in_slot and released]

    ``upright`` = the plate's tilt away from lying flat (angle between its axis and the vertical)
    over 50 deg, clipped to 1; ``in_slot`` = upright and the lowest point of its rim inside a slot
    (between two ribs, below their tops); ``picked`` = 1 in a slot, else the plate's lift off the table
    (1 at >= 4 cm); ``transport`` = 1 in a slot, else ``picked * clip(1 - d / d0, 0, 1)`` with ``d`` the
    horizontal distance to the nearest slot and ``d0`` that distance at reset. A plate that falls
    flat or leaves its slot loses its upright and slot terms.

    **Calibrated progress** (``info["calibrated_progress"]``; :mod:`tasks.calibration`): the same physics in
    demo-time units, for comparison with time-linear progress. Per plate, stages in demo order, each weighted by
    its mean share of full-skill demo time (``STAGE_SHARES``), each a fraction from the current physics state:
    ``reach`` (the nearest tool centre's approach to the plate, from its home pose), ``grasp`` (that gripper
    closing on it), ``lift`` (held, up to 8 cm), ``turn_carry`` (mean of the tilt towards 85 deg and the rim's
    lowest point's horizontal approach to the nearest slot), ``insert`` (held over a slot, that point lowered
    into it), ``release`` (the holding gripper opening, in a slot), ``clear`` (the nearest free hand backing
    8 cm away). Sum of weight x fraction; 1 on success, at most 0.99 without it. A plate that falls flat or
    leaves its slot loses its terms.

    **Success.** Every plate upright in its own slot, released, and at rest (speed < 5 cm/s).

    **Randomisation.** Plate positions (+-3 cm in x and y) and yaws; rack position (+-2 cm in x,
    +-1.5 cm in y).

    **Episode end.** Success (``terminated``) or 700 control steps (70 s at 10 Hz, ``truncated``).

    **Grasping.** Rigid plates are held by a weld assist that engages only when both finger pads touch
    the rim while the gripper closes, and releases when it opens: a misplaced grasp misses.

    **Expert primitives.** ``pick_grab``, ``rotate_turn``, ``insert``, ``dummy``.

    **Version history.** v0: initial release.
    """

    task_name = "PlatesToDishRack"
    instruction = "Put the plates upright into the dish rack."
    N_PLATES = 2

    def _build_task(self, spec: mujoco.MjSpec) -> None:
        self._build_plates(spec)
        rack = spec.worldbody.add_body(name="rack", mocap=True, pos=[*RACK_CENTER, 0.0])
        rack.add_geom(
            name="rack_base",
            type=mujoco.mjtGeom.mjGEOM_BOX,
            size=[*RACK_BASE_HALF, RACK_FLOOR / 2],
            pos=[0, 0, RACK_FLOOR / 2],
            rgba=[0.55, 0.58, 0.62, 1.0],
            friction=[0.9, 0.01, 0.001],
        )
        rib_y = (SLOT_PITCH, 0.0, -SLOT_PITCH)
        for i, y in enumerate(rib_y):
            rack.add_geom(
                name=f"rack_rib{i}",
                type=mujoco.mjtGeom.mjGEOM_BOX,
                size=[*RIB_HALF, RIB_HEIGHT / 2],
                pos=[0, y, RACK_FLOOR + RIB_HEIGHT / 2],
                rgba=[0.82, 0.84, 0.88, 1.0],
            )

        # Low rails across both ends of the slots: an upright plate would otherwise roll out along them.
        for i, x in enumerate((RIB_HALF[0] + 0.003, -RIB_HALF[0] - 0.003)):
            rack.add_geom(
                name=f"rack_rail{i}",
                type=mujoco.mjtGeom.mjGEOM_BOX,
                size=[0.003, SLOT_PITCH + RIB_HALF[1], RAIL_HEIGHT / 2],
                pos=[x, 0, RACK_FLOOR + RAIL_HEIGHT / 2],
                rgba=[0.82, 0.84, 0.88, 1.0],
            )

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._rack_mocap = self.model.body("rack").mocapid[0]

    # ------------------------------------------------------------------ randomisation
    def _reset_task(self) -> None:
        shift = np.array([self.pose_offset(0.02), self.pose_offset(0.015)])
        self.data.mocap_pos[self._rack_mocap] = [*(RACK_CENTER + shift), 0.0]
        self._scatter_plates(PLATE_HOMES)
        self._d0 = np.array([max(self._slot_distance(self.plate_pos(k)), 0.05) for k in range(self.N_PLATES)])

    # ------------------------------------------------------------------ ground truth
    def slot_centers(self) -> np.ndarray:
        """World (x, y) of the slots' centre lines, (2, 2), left slot first."""
        centre = self.data.mocap_pos[self._rack_mocap][:2]
        return np.array([centre + np.array([0.0, dy]) for dy in SLOT_OFFSETS])

    def _slot_distance(self, pos: np.ndarray) -> float:
        return float(np.min(np.linalg.norm(self.slot_centers() - pos[:2], axis=1)))

    def tilt_from_flat(self, k: int) -> float:
        """Angle (deg) between plate ``k``'s axis and the vertical: 0 flat, 90 upright."""
        return float(np.degrees(np.arccos(np.clip(abs(self.plate_normal(k)[2]), 0.0, 1.0))))

    def slot_of(self, k: int) -> int | None:
        """The slot plate ``k`` stands in upright (its rim's lowest point between the ribs), or ``None``."""
        if self.tilt_from_flat(k) < UPRIGHT_DEG:
            return None
        low = self.plate_lowest_point(k)
        if low[2] > RACK_FLOOR + RIB_HEIGHT:
            return None
        for s, (x, y) in enumerate(self.slot_centers()):
            if abs(low[0] - x) <= RIB_HALF[0] and abs(low[1] - y) <= SLOT_GAP / 2 + 0.002:
                return s
        return None

    @override
    def evaluate(self) -> Evaluation:
        terms: dict[str, float] = {}
        scores, slots, settled = [], [], []
        for k in range(self.N_PLATES):
            slot = self.slot_of(k)
            held = self.plate_held(k)
            tilt = self.tilt_from_flat(k)
            upright = float(np.clip(tilt / UPRIGHT_DEG, 0.0, 1.0))
            picked, transport = self.lift_and_transport(k, slot is not None, self._slot_distance)
            in_slot = slot is not None
            released = in_slot and not held
            scores.append(0.15 * picked + 0.2 * upright + 0.2 * transport + 0.25 * in_slot + 0.2 * released)
            slots.append(slot)
            settled.append(released and self.plate_speed(k) < REST_SPEED)
            terms[f"plate{k}_tilt_deg"] = tilt
            terms[f"plate{k}_in_slot"] = float(in_slot)
            terms[f"plate{k}_held"] = float(held)
            terms[f"plate{k}_score"] = scores[-1]
        terms["plates_in_rack"] = float(sum(s is not None for s in slots))
        distinct = len({s for s in slots if s is not None}) == self.N_PLATES
        success = bool(all(settled) and distinct)
        return self.plate_evaluation(scores, success, terms)

    calibration_weights = CALIBRATION_WEIGHTS

    @override
    def calibration_stages(self) -> dict[str, float]:
        stages: dict[str, float] = {}
        for k in range(self.N_PLATES):
            in_slot, held = self.slot_of(k) is not None, self.plate_held(k)
            low = self.plate_lowest_point(k)
            to_slot = self._slot_distance(low)
            if in_slot:
                lift = turn_carry = insert = 1.0
            elif held:
                turned = float(np.clip(self.tilt_from_flat(k) / TURN_DEG, 0.0, 1.0))
                over = to_slot <= OVER_SLOT
                # Once turned or over its slot, a plate lowered to insert it is not "less lifted".
                lift = float(np.clip((self.plate_pos(k)[2] - REST_Z) / LIFT_RISE, 0.0, 1.0))
                lift = 1.0 if over or turned >= 0.5 else lift
                turn_carry = lift * 0.5 * (turned + approach(to_slot, self._d0[k], arrived=OVER_SLOT))
                insert = float(np.clip(1.0 - (low[2] - RACK_FLOOR) / INSERT_DROP, 0.0, 1.0)) if over else 0.0
            else:  # lying on the table (or dropped on the way)
                lift = turn_carry = insert = 0.0
            carry = {"lift": lift, "turn_carry": turn_carry, "insert": insert}
            stages.update(self.plate_stages(k, in_slot, held, carry))
        return stages


class PlatesToDishRackExpert(PlateExpert):
    """Per arm (left, then right): pick the plate in front, turn it upright on the way to the rack,
    insert it edge-down into the arm's slot; a plate that ends up on the table is picked again."""

    TEMPO = 1.55
    LOW_SKILL_ATTEMPTS = 2  # turning and inserting already fail often at low skill
    PRIMITIVES = frozenset({"pick_grab", "rotate_turn", "insert"})
    #: Tool tilt that turns a held plate upright. With these signs (yaw -pi/2 on the left arm, +pi/2 on
    #: the right) the wrist's last joint stays mid-range; the mirrored pair drives it into its limit.
    TILT = -np.pi / 2

    @override
    def plan(self) -> Iterator[Segment]:
        env: PlatesToDishRackEnv = self.env
        yield from self.maybe_hesitate()
        for i, (k, arm) in enumerate(self.vary_order(enumerate(("left", "right")))):
            for _round in self.tries(2, clumsy=1):  # the plate rounds, not the grasp attempts
                if env.slot_of(k) is not None or env.tilt_from_flat(k) > 30.0:
                    break  # done, or standing / lying on the rack where it cannot be picked flat
                side = 1.0 if arm == "left" else -1.0
                others = {a: PARK[a] for a in ("left", "right") if a != arm and i > 0 and _round == 0}
                held = yield from self.pick_plate(arm, k, -side * np.pi / 2, **others)
                if not held:
                    break
                yield from self._turn_and_insert(arm, k, env)
        yield from self.park()

    def _turn_and_insert(self, arm: str, k: int, env: PlatesToDishRackEnv) -> Iterator[Segment]:
        side = 1.0 if arm == "left" else -1.0
        yaw = -side * np.pi / 2  # tilting then turns the approach axis towards the rack (-y for the left arm)
        slot_xy = env.slot_centers()[0 if arm == "left" else 1]
        tilt = self.TILT * (1.0 - self.clumsiness * float(self.rng.uniform(0.0, 0.2)))  # not turned far enough
        # ---- rotate_turn: turn the plate upright while carrying it over beside the rack
        beside = ArmGoal((float(slot_xy[0]), float(slot_xy[1] + side * 0.03), 0.17), yaw=yaw, tilt=tilt, grip=0.0)
        yield Segment("rotate_turn", self.pace(2.2), **{arm: beside})
        if self.chance(0.15):  # loses the plate while turning it
            yield Segment("rotate_turn", 0.5, **{arm: self.goal(arm).moved(grip=1.0)})
            yield Segment("rotate_turn", self.pace(0.6), **{arm: self.goal(arm).moved(dz=0.04)})
            return
        yield from self.maybe_hesitate()
        # ---- insert: line the plate up over the slot (closed loop), lower it, let go, back off. What is
        # lined up is the rim's lowest point (the edge that goes in first): a plate that is not quite
        # upright has its edge off to one side of its centre.
        offset = env.plate_lowest_point(k) - env.tcp_pos(arm)
        target = np.array([slot_xy[0], slot_xy[1], RACK_FLOOR + 0.035])
        target[:2] += self.jitter(0.006, 2)
        over = ArmGoal(tuple(float(v) for v in target - offset), yaw=yaw, tilt=tilt, grip=0.0)
        yield Segment("insert", self.pace(1.1), **{arm: over})
        yield Segment("insert", self.pace(1.2), **{arm: over.moved(dz=-0.033)})
        yield Segment("insert", 0.5, **{arm: self.goal(arm).moved(grip=1.0)})
        yield Segment("insert", self.pace(0.8), **{arm: self.goal(arm).moved(dy=side * 0.05)})
        yield Segment("insert", self.pace(0.6), **{arm: self.goal(arm).moved(dz=0.06)})
