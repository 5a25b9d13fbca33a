"""Cleaning Whiteboard: pick up an eraser, wipe a small whiteboard clean, put the eraser away."""

from __future__ import annotations

from collections.abc import Iterator

import mujoco
import numpy as np
from typing_extensions import override

from tasks.base import Evaluation, YamTaskEnv
from tasks.calibration import approach, calibrated_progress, gripper_closure, stage_weights
from tasks.expert import ArmGoal, ScriptedExpert, Segment
from tasks.station import STATION_CENTER_Y, add_table_patch

BOARD_CENTER = np.array([0.30, STATION_CENTER_Y])
BOARD_HALF = np.array([0.065, 0.14, 0.005])
BOARD_TOP = 2 * BOARD_HALF[2]
INK_GRID = (6, 12)  # cells along x (depth) and y (width)
ERASER_HALF = np.array([0.02, 0.055, 0.015])
TRAY_CENTER = np.array([0.29, -0.51])
TRAY_HALF = np.array([0.05, 0.08])
#: Calibrated progress: a tool centre this close (m) to the eraser's centre has arrived to grasp it (hands hold it
#: 4 cm off-centre), and from there its gripper's closing counts as grasping; how far (m) the eraser is carried
#: from the board to the tray.
ARRIVED = 0.045
TRAY_START = 0.2
#: How far (m) the picked eraser is from where wiping starts (the middle of the left half).
BOARD_START = 0.15
#: Calibrated stage weights: each stage's mean share of full-skill demo time, measured on 20 demos at operator
#: variability 1 (seeds 0-19) with ``python benchmarks/calibrated_progress.py --tasks CleanWhiteboard --fit``.
CALIBRATION_WEIGHTS = stage_weights(
    reach=0.071,
    grasp=0.025,
    to_board=0.102,
    wipe_left=0.135,
    pass_reach=0.199,
    pass_take=0.025,
    pass_let_go=0.016,
    wipe_right=0.231,
    carry=0.148,
    release=0.048,
)
INK_COLOURS = np.array([[0.1, 0.15, 0.55, 1.0], [0.08, 0.08, 0.08, 1.0], [0.6, 0.1, 0.1, 1.0]])


def passed_or_tray(held_left: bool, held_right: bool, in_tray: bool) -> bool:
    """Whether the eraser has been handed over to the right hand (or already put on the tray)."""
    return (held_right and not held_left) or in_tray


class CleanWhiteboardEnv(YamTaskEnv):
    """## Cleaning Whiteboard (``SARM2/CleanWhiteboard-v0``)

    **Description.** A small whiteboard lies on the table between the arms with randomised ink
    strokes. The left arm picks up an eraser from the left of the board and wipes the left half, hands
    the eraser over to the right arm, which wipes the right half and puts the eraser on the tray to the
    right of the board. Proxy of the paper's "Cleaning Whiteboard" task.

    **Observation / action.** As every SARM2 task (docs/design.md §3): three 128x128 RGB views
    (``top``, ``left_wrist``, ``right_wrist``) + 14-d joint state; 14-d absolute joint targets.

    **State** (``obs_mode="state"``: one flat float32 vector of 96 values; ``"pixels+state"`` adds it as
    ``obs["state"]``): ``agent_pos`` (14), ``eraser_free/pos`` (3), ``eraser_free/quat`` (4, w x y z),
    ``ink_remaining`` (72: 6x12 cells, row-major, 1 = ink left), then the evaluation terms ``eval/eraser_held``,
    ``eval/eraser_in_tray``, ``eval/ink_cleared`` (1 each), in that order (``env.unwrapped.state_layout``).
    Simulation only.

    **Progress** (``info["progress"]``, from physics state, valid for any trajectory)::

        0.1 * [eraser held or on the tray] + 0.8 * ink_cleared + 0.1 * placement

    ``ink_cleared`` is the fraction of initially inked cells wiped: a cell is wiped when the flat
    eraser's footprint covers it while the eraser's bottom is within 4 mm of the board. ``placement``
    is 1 on the tray, and while the eraser is held after cleaning, how close it is to the tray.
    Dropping the eraser costs the hold term; ink that is not wiped never counts.

    **Calibrated progress** (``info["calibrated_progress"]``; :mod:`tasks.calibration`): the same physics in
    demo-time units, for comparison with time-linear progress. Stages in demo order, each weighted by its mean
    share of full-skill demo time (``CALIBRATION_WEIGHTS``), each a fraction from the current physics state:
    ``reach`` (the left tool centre's approach to the eraser, from its home pose), ``grasp`` (the left gripper
    closing on it), ``to_board`` (the held eraser's approach to the left half, until wiping starts),
    ``wipe_left`` / ``wipe_right`` (the fraction of each half's initial ink wiped), ``pass_reach`` (while the
    left hand holds it, the right tool centre's approach to the eraser), ``pass_take`` (the right gripper
    closing), ``pass_let_go`` (the left gripper opening), ``carry`` (the eraser, lifted after wiping, carried
    towards the tray), ``release`` (the right gripper opening over the tray). Sum of weight x fraction; 1 on
    success, at most 0.99 without it. A dropped eraser loses its hand-over and placing terms.

    **Success.** ``ink_cleared >= 0.95`` and the eraser resting, released, on the tray.

    **Randomisation.** 2-4 ink strokes (random walks over a 6x12 cell grid, 25-60 % of cells, one of
    three colours); eraser position (+-4 cm) and yaw (+-0.25 rad).

    **Episode end.** Success (``terminated``) or 900 control steps (90 s at 10 Hz, ``truncated``).

    **Expert primitives.** ``pick_grab``, ``erase``, ``pass``, ``place``, ``dummy``.

    **Version history.** v0: initial release.
    """

    task_name = "CleanWhiteboard"
    instruction = "Pick up the eraser, wipe the whiteboard clean, and put the eraser on the tray."
    grasped_body = "eraser"

    def _build_task(self, spec: mujoco.MjSpec) -> None:
        wb = spec.worldbody
        cx, cy = BOARD_CENTER
        wb.add_geom(
            name="board_frame",
            type=mujoco.mjtGeom.mjGEOM_BOX,
            pos=[cx, cy, BOARD_HALF[2] - 0.001],
            size=[BOARD_HALF[0] + 0.008, BOARD_HALF[1] + 0.008, BOARD_HALF[2] - 0.001],
            rgba=[0.55, 0.57, 0.6, 1],
            contype=0,
            conaffinity=0,
        )
        wb.add_geom(
            name="board",
            type=mujoco.mjtGeom.mjGEOM_BOX,
            pos=[cx, cy, BOARD_HALF[2]],
            size=BOARD_HALF,
            rgba=[0.96, 0.96, 0.96, 1],
            friction=[0.25, 0.005, 0.0001],
        )
        nx, ny = INK_GRID
        cell = 2 * BOARD_HALF[:2] / np.array([nx, ny])
        self._cell_centers = np.array(
            [
                [cx - BOARD_HALF[0] + (i + 0.5) * cell[0], cy - BOARD_HALF[1] + (j + 0.5) * cell[1]]
                for i in range(nx)
                for j in range(ny)
            ]
        )
        for k, (x, y) in enumerate(self._cell_centers):
            wb.add_geom(
                name=f"ink_{k}",
                type=mujoco.mjtGeom.mjGEOM_BOX,
                pos=[x, y, BOARD_TOP + 0.0004],
                size=[cell[0] / 2, cell[1] / 2, 0.0004],
                rgba=[0, 0, 0, 0],
                contype=0,
                conaffinity=0,
            )
        add_table_patch(wb, "tray", TRAY_CENTER, TRAY_HALF, [0.3, 0.6, 0.35, 1])
        eraser = wb.add_body(name="eraser", pos=[0.3, -0.08, ERASER_HALF[2]])
        eraser.add_freejoint(name="eraser_free")
        eraser.add_geom(
            name="eraser_felt",
            type=mujoco.mjtGeom.mjGEOM_BOX,
            size=ERASER_HALF,
            mass=0.08,
            rgba=[0.25, 0.25, 0.28, 1],
            friction=[1.0, 0.01, 0.001],
            condim=4,
        )
        eraser.add_geom(
            name="eraser_grip",
            type=mujoco.mjtGeom.mjGEOM_BOX,
            pos=[0, 0, ERASER_HALF[2] * 0.6],
            size=[ERASER_HALF[0] * 0.9, ERASER_HALF[1] * 0.9, ERASER_HALF[2] * 0.45],
            rgba=[0.15, 0.35, 0.75, 1],
            contype=0,
            conaffinity=0,
            mass=0.0,
        )

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._ink_geoms = np.array([self.model.geom(f"ink_{k}").id for k in range(len(self._cell_centers))])
        self._eraser = self.model.body("eraser").id
        self._eraser_qadr = self.model.joint("eraser_free").qposadr[0]
        self._inked = np.zeros(len(self._cell_centers), dtype=bool)
        self._wiped = np.zeros(len(self._cell_centers), dtype=bool)
        self._left_cells = self._cell_centers[:, 1] >= BOARD_CENTER[1]  # the left arm's half (+y)

    # ------------------------------------------------------------------ randomisation
    def _reset_task(self) -> None:
        rng = self.np_random
        nx, ny = INK_GRID
        while True:
            ink = np.zeros((nx, ny), dtype=bool)
            for _ in range(int(rng.integers(2, 5))):
                i, j = int(rng.integers(nx)), int(rng.integers(ny))
                for _ in range(int(rng.integers(6, 16))):
                    ink[i, j] = True
                    i = int(np.clip(i + rng.integers(-1, 2), 0, nx - 1))
                    j = int(np.clip(j + rng.integers(-1, 2), 0, ny - 1))
            if 0.25 <= ink.mean() <= 0.6:
                break
        self._inked = ink.reshape(-1)
        self._wiped = np.zeros_like(self._inked)
        colour = INK_COLOURS[int(rng.integers(len(INK_COLOURS)))]
        self.model.geom_rgba[self._ink_geoms] = np.where(self._inked[:, None], colour, 0.0)
        x = 0.29 + self.pose_offset(0.04)
        y = -0.085 + self.pose_offset(0.015)
        yaw = self.pose_offset(0.25)
        self.set_free_pose(self._eraser_qadr, (x, y, ERASER_HALF[2]), yaw)

    # ------------------------------------------------------------------ per-step physics
    def _after_physics(self) -> None:
        rot = self.data.xmat[self._eraser].reshape(3, 3)
        if rot[2, 2] < 0.95:  # not flat on the board: nothing is wiped
            return
        pos = self.data.xpos[self._eraser]
        bottom = pos[2] - ERASER_HALF[2] * rot[2, 2]
        if bottom > BOARD_TOP + 0.004:
            return
        local = (self._cell_centers - pos[:2]) @ rot[:2, :2]  # cell centres in the eraser's frame
        under = np.all(np.abs(local) <= ERASER_HALF[:2], axis=1)
        newly = under & self._inked & ~self._wiped
        if newly.any():
            self._wiped |= newly
            self.model.geom_rgba[self._ink_geoms[newly], 3] = 0.0

    # ------------------------------------------------------------------ ground truth
    def ink_cleared(self) -> float:
        """Fraction of the ink that has been wiped."""
        return float(self._wiped.sum() / max(1, self._inked.sum()))

    def _task_state_extra(self) -> list[tuple[str, np.ndarray]]:
        # Which cells still carry ink (6 x 12 grid, row-major): what the wiping policy must cover next.
        return [("ink_remaining", (self._inked & ~self._wiped).astype(np.float32))]

    def remaining_ink(self) -> np.ndarray:
        """Centres (N, 2) of inked cells not yet wiped (for the expert's recovery passes)."""
        return self._cell_centers[self._inked & ~self._wiped]

    def eraser_pose(self) -> tuple[np.ndarray, float]:
        """The eraser's position and yaw."""
        pos = self.data.xpos[self._eraser].copy()
        rot = self.data.xmat[self._eraser].reshape(3, 3)
        return pos, float(np.arctan2(rot[1, 0], rot[0, 0]))

    @override
    def evaluate(self) -> Evaluation:
        ink = self.ink_cleared()
        held = any(g.active(self.data) for g in self.grasps.values())
        pos = self.data.xpos[self._eraser]
        in_tray = (not held) and bool(np.all(np.abs(pos[:2] - TRAY_CENTER) <= TRAY_HALF)) and pos[2] < 0.03
        if in_tray:
            placement = 1.0
        elif held and ink >= 0.95:
            placement = float(np.clip(1.0 - np.linalg.norm(pos[:2] - TRAY_CENTER) / 0.35, 0.0, 1.0))
        else:
            placement = 0.0
        progress = 0.1 * float(held or in_tray) + 0.8 * ink + 0.1 * placement
        success = bool(ink >= 0.95 and in_tray)
        calibrated = calibrated_progress(self.calibration_stages(), CALIBRATION_WEIGHTS, success)
        return Evaluation(
            progress,
            success,
            {"ink_cleared": ink, "eraser_held": float(held), "eraser_in_tray": float(in_tray)},
            calibrated,
        )

    calibration_weights = CALIBRATION_WEIGHTS

    def _half_cleared(self, left: bool) -> float:
        cells = self._inked & (self._left_cells if left else ~self._left_cells)
        return float((self._wiped & cells).sum() / cells.sum()) if cells.any() else 1.0

    def calibration_stages(self) -> dict[str, float]:
        """Fraction done (from physics) of each calibrated stage, in demo order (see the task card)."""
        held_l = self.grasps["left"].active(self.data)
        held_r = self.grasps["right"].active(self.data)
        pos = self.data.xpos[self._eraser].copy()
        in_tray = not (held_l or held_r) and bool(np.all(np.abs(pos[:2] - TRAY_CENTER) <= TRAY_HALF)) and pos[2] < 0.03
        opening = self.agent_pos()[[6, 13]]
        tcp = {arm: self.data.site_xpos[self._tcp[arm]] for arm in ("left", "right")}
        wipe_left, wipe_right = self._half_cleared(True), self._half_cleared(False)
        # The left arm picks the eraser up ...
        picked = held_l or held_r or in_tray
        d_left = float(np.linalg.norm(tcp["left"] - pos))
        reach = 1.0 if picked else approach(d_left, float(np.linalg.norm(self._home_tcp["left"] - pos)), ARRIVED)
        grasp = 1.0 if picked else (gripper_closure(opening[0]) if d_left <= ARRIVED else 0.0)
        # ... brings it onto the board, wipes its half, hands the eraser over to the right arm ...
        if wipe_left > 0.0 or passed_or_tray(held_l, held_r, in_tray):
            to_board = 1.0
        elif held_l:
            start = np.array([BOARD_CENTER[0], BOARD_CENTER[1] + BOARD_HALF[1] / 2, BOARD_TOP + ERASER_HALF[2]])
            to_board = approach(float(np.linalg.norm(pos - start)), BOARD_START, arrived=0.06)
        else:
            to_board = 0.0
        passed = passed_or_tray(held_l, held_r, in_tray)
        d_right = float(np.linalg.norm(tcp["right"] - pos))
        if passed:
            pass_reach = pass_take = pass_let_go = 1.0
        elif held_l:
            pass_reach = approach(d_right, float(np.linalg.norm(self._home_tcp["right"] - pos)), ARRIVED)
            pass_take = 1.0 if held_r else (gripper_closure(opening[1]) if d_right <= ARRIVED else 0.0)
            pass_let_go = float(np.clip(opening[0], 0.0, 1.0)) if held_r else 0.0
        else:
            pass_reach = pass_take = pass_let_go = 0.0
        # ... which wipes the other half and puts the eraser on the tray.
        if in_tray:
            carry = release = 1.0
        elif passed and wipe_right >= 0.95:
            # Carried once lifted off the board (wiping strokes slide it about on the board, nearer or further).
            over = bool(np.all(np.abs(pos[:2] - TRAY_CENTER) <= TRAY_HALF))
            lifted = pos[2] - ERASER_HALF[2] > BOARD_TOP + 0.03
            carry = approach(float(np.linalg.norm(pos[:2] - TRAY_CENTER)), TRAY_START, 0.02) if lifted or over else 0.0
            release = float(np.clip(opening[1], 0.0, 1.0)) if over and pos[2] < 0.03 else 0.0
        else:
            carry = release = 0.0
        return {
            "reach": reach,
            "grasp": grasp,
            "to_board": to_board,
            "wipe_left": wipe_left,
            "pass_reach": pass_reach,
            "pass_take": pass_take,
            "pass_let_go": pass_let_go,
            "wipe_right": wipe_right,
            "carry": carry,
            "release": release,
        }


class CleanWhiteboardExpert(ScriptedExpert):
    """Left arm: pick, wipe the left half, hand over; right arm: wipe the right half, place on the tray."""

    GRIP_OFFSET = 0.04  # each hand holds the eraser this far from its centre, along its long axis
    TCP_ABOVE_BOTTOM = 0.012  # tool centre height above the eraser's bottom when grasped
    PRIMITIVES = frozenset({"pick_grab", "erase", "pass", "place"})

    @override
    def plan(self) -> Iterator[Segment]:
        env: CleanWhiteboardEnv = self.env
        yield from self.maybe_hesitate()
        # ---- pick the eraser with the left hand (retry missed grasps)
        if not (yield from self.retry(lambda: self._pick(env), lambda: env.grasps["left"].active(env.data))):
            yield from self._give_up()
            return
        yield from self._wipe_half("left", env)
        if not env.grasps["left"].active(env.data):
            yield from self._give_up()
            return
        # ---- hand over to the right hand
        yield from self._handover(env)
        if not env.grasps["right"].active(env.data):
            yield from self._give_up()
            return
        yield from self._wipe_half("right", env)
        yield from self._place(env)

    # ------------------------------------------------------------------ sub-plans
    def _pick(self, env: CleanWhiteboardEnv) -> Iterator[Segment]:
        pos, yaw = env.eraser_pose()
        axis = np.array([-np.sin(yaw), np.cos(yaw)])  # eraser's long axis in the table plane
        grasp_xy = pos[:2] + self.GRIP_OFFSET * axis + self.jitter(0.03, 2)
        tool_yaw = yaw + np.pi / 2 + float(self.jitter(0.3, 1)[0])
        above = ArmGoal((*grasp_xy, 0.10), yaw=tool_yaw, grip=1.0)
        yield Segment("pick_grab", self.pace(1.6), left=above)
        yield from self.maybe_hesitate()
        yield Segment("pick_grab", self.pace(0.9), left=above.moved(dz=-0.10 + self.TCP_ABOVE_BOTTOM))
        yield Segment("pick_grab", 0.7, left=self.goal("left").moved(grip=0.0))
        yield Segment("pick_grab", self.pace(0.8), left=self.goal("left").moved(dz=0.08))
        if not env.grasps["left"].active(env.data):  # missed: open and go up to look again
            yield from self.let_go(0.6, "left", rise=0.03)

    def _wipe_half(self, arm: str, env: CleanWhiteboardEnv) -> Iterator[Segment]:
        sign = 1.0 if arm == "left" else -1.0
        half_center_y = BOARD_CENTER[1] + sign * BOARD_HALF[1] / 2
        wipe_z = BOARD_TOP + self.TCP_ABOVE_BOTTOM - 0.003
        x_lo = BOARD_CENTER[0] - BOARD_HALF[0] + 0.005
        x_hi = BOARD_CENTER[0] + BOARD_HALF[0] - 0.005
        grip_dy = sign * self.GRIP_OFFSET
        lines = self.vary_order([half_center_y + sign * 0.03, half_center_y - sign * 0.03])  # outer stroke first?
        start = ArmGoal((x_lo, lines[0] + grip_dy, wipe_z + 0.05), yaw=np.pi / 2, grip=0.0)
        yield Segment("erase", self.pace(1.5), **{arm: start})
        for k, y in enumerate(lines):
            if k > 0 and self.chance(0.5):  # skipped stroke: leaves ink behind
                continue
            lift = max(0.0, float(self.rng.normal(0.004, 0.006))) * self.clumsiness  # too light a touch
            down = ArmGoal((x_lo, y + grip_dy, wipe_z + lift), yaw=np.pi / 2, grip=0.0)
            yield Segment("erase", self.pace(0.8), **{arm: down})
            yield Segment("erase", self.pace(1.6), **{arm: down.moved(dx=x_hi - x_lo)})
            yield Segment("erase", self.pace(1.6), **{arm: down})
        # Recovery passes over ink that is left in this half (fewer at low skill).
        for _ in range(2 if self.skill > 0.5 else (1 if self.skill > 0.2 else 0)):
            left_over = env.remaining_ink()
            left_over = left_over[sign * (left_over[:, 1] - BOARD_CENTER[1]) >= 0]
            if len(left_over) == 0:
                break
            for x, y in left_over[:4]:
                spot = ArmGoal((float(x), float(y) + grip_dy, wipe_z), yaw=np.pi / 2, grip=0.0)
                yield Segment("erase", 0.6, **{arm: spot.moved(dz=0.02)})
                yield Segment("erase", 0.5, **{arm: spot.moved(dx=-0.02)})
                yield Segment("erase", 0.6, **{arm: spot.moved(dx=0.02)})
        yield Segment("erase", 0.8, **{arm: self.goal(arm).moved(dz=0.06)})

    def _handover(self, env: CleanWhiteboardEnv) -> Iterator[Segment]:
        meet = np.array([BOARD_CENTER[0], BOARD_CENTER[1]])
        z = 0.12
        left = ArmGoal((meet[0], meet[1] + self.GRIP_OFFSET, z), yaw=np.pi / 2, grip=0.0)
        yield Segment("pass", self.pace(1.5), left=left)
        pos, _ = env.eraser_pose()
        right_xy = pos[:2] + np.array([0.0, -self.GRIP_OFFSET]) + self.jitter(0.02, 2)
        grasp_z = pos[2] - ERASER_HALF[2] + self.TCP_ABOVE_BOTTOM
        right = ArmGoal((*right_xy, grasp_z + 0.08), yaw=np.pi / 2, grip=1.0)
        yield Segment("pass", self.pace(1.4), right=right)
        yield Segment("pass", self.pace(0.8), right=right.moved(dz=-0.08))
        yield Segment("pass", 0.7, right=self.goal("right").moved(grip=0.0))
        if env.grasps["right"].active(env.data) or self.chance(0.3):  # a clumsy operator may let go anyway
            yield Segment("pass", 0.6, left=self.goal("left").moved(grip=1.0))
            yield Segment(
                "pass", self.pace(1.2), left=ArmGoal((0.25, 0.0, 0.15)), right=self.goal("right").moved(dz=0.04)
            )

    def _place(self, env: CleanWhiteboardEnv) -> Iterator[Segment]:
        yield from self.maybe_hesitate()
        drop_here = self.chance(0.15)
        target = TRAY_CENTER + np.array([0.0, -self.GRIP_OFFSET]) + self.jitter(0.03, 2)
        above = ArmGoal((*target, 0.10), yaw=np.pi / 2, grip=0.0)
        if drop_here:  # drops the eraser in transit
            yield Segment("place", self.pace(0.8), right=self.goal("right").moved(dz=0.03, grip=1.0))
        else:
            yield Segment("place", self.pace(1.5), right=above)
            yield Segment("place", self.pace(0.9), right=above.moved(dz=-0.10 + self.TCP_ABOVE_BOTTOM + 0.004))
            yield Segment("place", 0.6, right=self.goal("right").moved(grip=1.0))
            yield Segment("place", 0.8, right=self.goal("right").moved(dz=0.08))
        yield Segment("dummy", self.pace(1.2), left=ArmGoal((0.25, 0.0, 0.15)), right=ArmGoal((0.25, -0.61, 0.15)))

    def _give_up(self) -> Iterator[Segment]:
        yield Segment("dummy", 1.5, left=ArmGoal((0.25, 0.0, 0.15), grip=1.0), right=ArmGoal((0.25, -0.61, 0.15)))
