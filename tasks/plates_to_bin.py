"""Plates to Bin: pick up two plates from the table and put them into a bin."""

from __future__ import annotations

from collections.abc import Iterator

import mujoco
import numpy as np
from typing_extensions import override

from tasks.base import Evaluation
from tasks.calibration import approach, stage_weights
from tasks.expert import ArmGoal, Segment
from tasks.plates import PARK, PLATE_RADIUS, REST_SPEED, REST_Z, PlateExpert, PlateTaskEnv
from tasks.station import STATION_CENTER_Y

BIN_CENTER = np.array([0.33, STATION_CENTER_Y])
BIN_INNER_HALF = np.array([0.065, 0.11])  # interior footprint, half extents (x, y)
BIN_WALL_HALF = 0.005  # half thickness of the walls
BIN_FLOOR_TOP = 0.006
BIN_HEIGHT = 0.05  # wall top above the table
#: Where each plate goes in the bin, relative to its centre: plate 0 to the left (+y) half.
DROP_OFFSETS = (np.array([0.0, 0.05]), np.array([0.0, -0.05]))
PLATE_HOMES = (np.array([0.29, -0.07]), np.array([0.29, -0.54]))
#: Calibrated progress: where a plate is carried to (its centre over the bin's interior shrunk by its radius, so
#: it goes in whole), how high it is carried, and where it lies once in.
DROP_HALF = BIN_INNER_HALF - PLATE_RADIUS
CARRY_RISE = 0.08
BIN_REST_Z = BIN_FLOOR_TOP + REST_Z
#: Calibrated stage weights: each stage's mean share of full-skill demo time, measured on 20 demos at operator
#: variability 1 (seeds 0-19) with ``python benchmarks/calibrated_progress.py --tasks PlatesToBin --fit`` and
#: averaged over the two plates (either may go first), so every plate's stages weigh the same.
STAGE_SHARES = {
    "reach": 0.186,
    "grasp": 0.032,
    "lift": 0.052,
    "carry": 0.104,
    "lower": 0.043,
    "release": 0.043,
    "clear": 0.041,
}
CALIBRATION_WEIGHTS = stage_weights(**{f"plate{k}/{stage}": w for k in range(2) for stage, w in STAGE_SHARES.items()})


class PlatesToBinEnv(PlateTaskEnv):
    """## Plates to Bin (``SARM2/PlatesToBin-v0``)

    **Description.** Two small plates (rigid discs of 7.6 cm diameter on a ball foot ring) lie on the
    table, one in front of each arm, and an open bin (a box of five primitive walls) stands between
    the arms. Each arm picks up the plate in front of it by clamping the rim across a diameter and puts
    it into its half of the bin. Proxy of the paper's "Put Plates in Bin" task.

    **Observation / action.** As every SARM2 task (docs/design.md §3): three RGB views (``top``,
    ``left_wrist``, ``right_wrist``) + 14-d joint state; 14-d absolute joint targets.

    **State** (``obs_mode="state"``: one flat float32 vector of 35 values; ``"pixels+state"`` adds it as
    ``obs["state"]``): ``agent_pos`` (14), ``plate0_free/pos`` (3), ``plate0_free/quat`` (4, w x y z),
    ``plate1_free/pos`` (3), ``plate1_free/quat`` (4, w x y z), then the evaluation terms ``eval/plate0_held``,
    ``eval/plate0_inside``, ``eval/plate0_score``, ``eval/plate1_held``, ``eval/plate1_inside``,
    ``eval/plate1_score``, ``eval/plates_in_bin`` (1 each), in that order (``env.unwrapped.state_layout``).
    Simulation only.

    **Progress** (``info["progress"]``, from physics state, valid for any trajectory): the mean over
    plates of::

        0.2 * raised + 0.4 * transport + 0.4 * [inside and released]

    ``inside`` = the plate's centre is within the bin's interior footprint and below its wall tops;
    ``raised`` = 1 when inside, else the plate's lift off the table (0 at rest, 1 at >= 4 cm);
    ``transport`` = 1 when inside, else ``raised * clip(1 - d / d0, 0, 1)`` with ``d`` the horizontal
    distance from the plate's centre to the bin's interior and ``d0`` that distance at reset. Taking a
    plate back out, or dropping it on the way, lowers the progress again.

    **Calibrated progress** (``info["calibrated_progress"]``; :mod:`tasks.calibration`): the same physics in
    demo-time units, for comparison with time-linear progress. Per plate, stages in demo order, each weighted by
    its mean share of full-skill demo time (``STAGE_SHARES``), each a fraction from the current physics state:
    ``reach`` (the nearest tool centre's approach to the plate, from its home pose), ``grasp`` (that gripper
    closing on it), ``lift`` (held, up to 8 cm), ``carry`` (horizontal approach to where the plate fits whole in
    the bin), ``lower`` (held over the bin, down to its floor), ``release`` (the holding gripper opening, inside),
    ``clear`` (the hand backing 8 cm away from the plate in the bin). Sum of weight x fraction; 1 on success, at
    most 0.99 without it. A dropped plate loses its lift, carry and lower terms.

    **Success.** Every plate inside the bin, released, and at rest (speed < 5 cm/s).

    **Randomisation.** Plate positions (+-3 cm in x and y) and yaws; bin position (+-2 cm in x and y).

    **Episode end.** Success (``terminated``) or 450 control steps (45 s at 10 Hz, ``truncated``).

    **Grasping.** Rigid plates are held by a weld assist that engages only when both finger pads touch
    the rim while the gripper closes, and releases when it opens: a misplaced grasp misses.

    **Expert primitives.** ``pick_grab``, ``place``, ``dummy``.

    **Version history.** v0: initial release.
    """

    task_name = "PlatesToBin"
    instruction = "Put the plates into the bin."
    N_PLATES = 2

    def _build_task(self, spec: mujoco.MjSpec) -> None:
        self._build_plates(spec)
        # A mocap body, so a reset can move the bin; its walls collide like static geoms.
        bin_body = spec.worldbody.add_body(name="bin", mocap=True, pos=[*BIN_CENTER, 0.0])
        colour = [0.25, 0.42, 0.55, 1.0]
        hx, hy = BIN_INNER_HALF + 2 * BIN_WALL_HALF
        bin_body.add_geom(
            name="bin_floor",
            type=mujoco.mjtGeom.mjGEOM_BOX,
            size=[hx, hy, BIN_FLOOR_TOP / 2],
            pos=[0, 0, BIN_FLOOR_TOP / 2],
            rgba=[0.2, 0.34, 0.45, 1.0],
        )
        wall_h = (BIN_HEIGHT - BIN_FLOOR_TOP) / 2
        wall_z = BIN_FLOOR_TOP + wall_h
        for name, pos, size in (
            ("far", [BIN_INNER_HALF[0] + BIN_WALL_HALF, 0, wall_z], [BIN_WALL_HALF, hy, wall_h]),
            ("near", [-BIN_INNER_HALF[0] - BIN_WALL_HALF, 0, wall_z], [BIN_WALL_HALF, hy, wall_h]),
            ("left", [0, BIN_INNER_HALF[1] + BIN_WALL_HALF, wall_z], [BIN_INNER_HALF[0], BIN_WALL_HALF, wall_h]),
            ("right", [0, -BIN_INNER_HALF[1] - BIN_WALL_HALF, wall_z], [BIN_INNER_HALF[0], BIN_WALL_HALF, wall_h]),
        ):
            bin_body.add_geom(name=f"bin_{name}", type=mujoco.mjtGeom.mjGEOM_BOX, pos=pos, size=size, rgba=colour)

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._bin_mocap = self.model.body("bin").mocapid[0]
        self._carry0 = np.ones(self.N_PLATES)

    # ------------------------------------------------------------------ randomisation
    def _reset_task(self) -> None:
        self.data.mocap_pos[self._bin_mocap] = [*(BIN_CENTER + self.pose_offset(0.02, 2)), 0.0]
        self._scatter_plates(PLATE_HOMES)
        self._d0 = np.array([max(self._bin_distance(self.plate_pos(k)), 0.05) for k in range(self.N_PLATES)])
        self._carry0 = np.array([max(self._drop_distance(self.plate_pos(k)), 0.05) for k in range(self.N_PLATES)])

    # ------------------------------------------------------------------ ground truth
    def bin_center(self) -> np.ndarray:
        """World (x, y) of the bin's centre."""
        return self.data.mocap_pos[self._bin_mocap][:2].copy()

    def _bin_distance(self, pos: np.ndarray) -> float:
        """Horizontal distance from ``pos`` to the bin's interior footprint (0 above it)."""
        out = np.maximum(np.abs(pos[:2] - self.bin_center()) - BIN_INNER_HALF, 0.0)
        return float(np.linalg.norm(out))

    def _drop_distance(self, pos: np.ndarray) -> float:
        """Horizontal distance from ``pos`` to where a plate's centre must be for all of it to fit in the bin."""
        out = np.maximum(np.abs(pos[:2] - self.bin_center()) - DROP_HALF, 0.0)
        return float(np.linalg.norm(out))

    def plate_inside(self, k: int) -> bool:
        """Plate ``k``'s centre is within the bin's interior and below its wall tops."""
        pos = self.plate_pos(k)
        return self._bin_distance(pos) == 0.0 and pos[2] < BIN_HEIGHT

    @override
    def evaluate(self) -> Evaluation:
        terms: dict[str, float] = {}
        scores, done = [], []
        for k in range(self.N_PLATES):
            inside = self.plate_inside(k)
            held = self.plate_held(k)
            raised, transport = self.lift_and_transport(k, inside, self._bin_distance)
            placed = inside and not held
            scores.append(0.2 * raised + 0.4 * transport + 0.4 * float(placed))
            done.append(placed and self.plate_speed(k) < REST_SPEED)
            terms[f"plate{k}_inside"] = float(inside)
            terms[f"plate{k}_held"] = float(held)
            terms[f"plate{k}_score"] = scores[-1]
        terms["plates_in_bin"] = float(sum(terms[f"plate{k}_inside"] for k in range(self.N_PLATES)))
        success = bool(all(done))
        return self.plate_evaluation(scores, success, terms)

    calibration_weights = CALIBRATION_WEIGHTS

    @override
    def calibration_stages(self) -> dict[str, float]:
        stages: dict[str, float] = {}
        for k in range(self.N_PLATES):
            pos = self.plate_pos(k)
            inside, held = self.plate_inside(k), self.plate_held(k)
            over = self._drop_distance(pos) < 1e-9
            if inside:
                lift = carry = 1.0
            elif held:
                lift = float(np.clip((pos[2] - REST_Z) / CARRY_RISE, 0.0, 1.0))
                carry = lift * approach(self._drop_distance(pos), self._carry0[k])
            else:  # lying on the table (or dropped on the way)
                lift = carry = 0.0
            if inside and not held:  # placed
                lower = 1.0
            elif held and over:  # from carrying height down to the bin floor
                lower = float(np.clip(1.0 - (pos[2] - BIN_REST_Z) / (REST_Z + CARRY_RISE - BIN_REST_Z), 0.0, 1.0))
            else:
                lower = 0.0
            stages.update(self.plate_stages(k, inside, held, {"lift": lift, "carry": carry, "lower": lower}))
        return stages


class PlatesToBinExpert(PlateExpert):
    """The left arm puts plate 0 into the bin's left half, then the right arm plate 1 into its right
    half; a plate that misses the bin is picked up again (fewer retries at low skill)."""

    TEMPO = 1.45
    PRIMITIVES = frozenset({"pick_grab", "place"})
    YAW = 0.0  # fingers close along world y

    @override
    def plan(self) -> Iterator[Segment]:
        env: PlatesToBinEnv = self.env
        yield from self.maybe_hesitate()
        last_arm = None
        for k in self.vary_order(range(env.N_PLATES)):
            for _round in self.tries(2):
                if env.plate_inside(k):
                    break
                pos = env.plate_pos(k)
                arm = "left" if pos[1] > env.bin_center()[1] else "right"
                others = {a: PARK[a] for a in ("left", "right") if a != arm and a == last_arm}
                held = yield from self.pick_plate(arm, k, self.YAW, **others)
                last_arm = arm
                if not held:
                    break
                yield from self._place(arm, k, env)
        yield from self.park()

    def _place(self, arm: str, k: int, env: PlatesToBinEnv) -> Iterator[Segment]:
        side = 1.0 if arm == "left" else -1.0
        target = env.bin_center() + np.array([0.0, side * 0.05]) + self.jitter(0.03, 2)
        offset = self.carry_offset(arm, k)  # plate centre relative to the tool centre
        over = ArmGoal(
            (float(target[0] - offset[0]), float(target[1] - offset[1]), 0.13), yaw=self.goal(arm).yaw, grip=0.0
        )
        if self.chance(0.2):  # drops the plate in transit, half way
            start = np.array(self.goal(arm).pos)
            halfway = ArmGoal(tuple(float(v) for v in 0.5 * (start + np.array(over.pos))), yaw=over.yaw, grip=0.0)
            yield Segment("place", self.pace(0.9), **{arm: halfway})
            yield Segment("place", 0.5, **{arm: self.goal(arm).moved(grip=1.0)})
            yield Segment("place", self.pace(0.6), **{arm: self.goal(arm).moved(dz=0.04)})
            return
        yield Segment("place", self.pace(1.5), **{arm: over})
        yield from self.maybe_hesitate()
        # Lower until the plate's feet are about a centimetre above the bin floor, then let go.
        release_z = BIN_FLOOR_TOP + REST_Z + 0.01 - offset[2]
        release_z += max(0.0, float(self.rng.normal(0.0, 0.02))) * self.clumsiness  # let go too high
        yield Segment("place", self.pace(0.9), **{arm: over.moved(dz=release_z - 0.13)})
        yield Segment("place", 0.5, **{arm: self.goal(arm).moved(grip=1.0)})
        yield Segment("place", self.pace(0.8), **{arm: self.goal(arm).moved(dz=0.09)})
