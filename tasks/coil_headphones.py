"""Coil Headphones: wind a headphone cable around a mandrel and tuck its free end in."""

from __future__ import annotations

from collections.abc import Generator, Iterator

import mujoco
import numpy as np
from typing_extensions import override

from tasks.base import Evaluation, YamTaskEnv
from tasks.calibration import approach, calibrated_progress, gripper_closure, stage_weights
from tasks.expert import ArmGoal, ScriptedExpert, Segment
from tasks.grasping import PinchGrasp
from tasks.station import attach_flexcomp

N_VERTS = 30
SPACING = 0.022  # m: a 0.64 m cable
CABLE_R = 0.004
MANDREL_R = 0.02
MANDREL_TOP = 0.06
MANDREL_XY = np.array([0.38, -0.40])  # nominal mandrel position
#: The headphones (where the cable starts) sit this far from the mandrel, towards +y (left).
HEADPHONE_OFFSET = np.array([0.0, 0.14])
TARGET_TURNS = 2.0
#: Winding counts fully for cable edges within COIL_IN of the mandrel's axis, fading to 0 at COIL_OUT:
#: a loose cable lying near the mandrel is not coiled around it.
COIL_IN, COIL_OUT = 0.05, 0.085
TUCK_R = 0.07  # the free end laid on the table within this distance of the axis counts as tucked in
TUCK_Z = 0.015
REST_SPEED = 0.05  # m/s: every vertex slower than this counts as resting
#: Calibrated progress: a tool centre this close (m) to the cable's end has arrived to pinch it, and from there its
#: gripper's closing counts as pinching; the turns demos wind (more than the 2 success needs: the coil relaxes when
#: let go) and the turns that show winding has begun; the height (m) of a wound end that tucking lowers to the
#: table; how far (m) the hand backs away from the released end.
ARRIVED = 0.012
CLOSING_REACH = 0.025
WIND_TARGET = 2.5
STARTED = 0.05
#: Where the free end lies at reset (m from the mandrel's axis, about) and how close the winding hand orbits.
END_START = 0.2
ORBIT_RADIUS = 0.075
WIND_HEIGHT = 0.03
CLEAR_DISTANCE = 0.05
#: Calibrated stage weights: each stage's mean share of full-skill demo time, measured on 20 demos at operator
#: variability 1 (seeds 0-19) with ``python benchmarks/calibrated_progress.py --tasks CoilHeadphones --fit``.
CALIBRATION_WEIGHTS = stage_weights(
    reach=0.138, grasp=0.025, to_mandrel=0.105, wind=0.587, tuck=0.046, release=0.046, clear=0.053
)

_CABLE = (
    f'name="cable" type="grid" count="{N_VERTS} 1 1" spacing="{SPACING} {SPACING} {SPACING}" '
    f'pos="0.3 -0.3 {CABLE_R}" radius="{CABLE_R}" dim="1" mass="0.03" rgba="0.08 0.08 0.09 1"'
)


def winding_turns(
    points: np.ndarray,
    centre: np.ndarray,
    top: float = MANDREL_TOP,
    coil_in: float = COIL_IN,
    coil_out: float = COIL_OUT,
) -> float:
    """Unsigned number of turns the polyline ``points`` (N, 3) makes around the vertical axis through
    ``centre`` (2,), counting only edges close to the axis (weights fade from ``coil_in`` to ``coil_out``)
    and below the mandrel's top."""
    rel = points[:, :2] - centre
    radius = np.linalg.norm(rel, axis=1)
    angle = np.arctan2(rel[:, 1], rel[:, 0])
    step = np.angle(np.exp(1j * np.diff(angle)))  # signed increments wrapped to (-pi, pi]
    edge_r = np.maximum(radius[:-1], radius[1:])
    weight = np.clip((coil_out - edge_r) / (coil_out - coil_in), 0.0, 1.0)
    weight *= (np.minimum(points[:-1, 2], points[1:, 2]) < top).astype(float)
    return float(abs(np.sum(weight * step)) / (2.0 * np.pi))


class CoilHeadphonesEnv(YamTaskEnv):
    """## Coiling Headphones (``SARM2/CoilHeadphones-v0``)

    **Description.** A pair of headphones lies on the table with its cable (a 0.64 m inextensible
    1-D ``flexcomp``, 30 vertices, its first vertex tied to the headphones) lying in a loose arc next
    to a vertical mandrel (a fixed 4 cm cylinder). The right arm pinches the cable's free end, winds
    the cable around the mandrel in circles, then tucks the end in against the coil and lets go.
    Proxy of the paper's "Coiling Headphones" task.

    **Observation / action.** As every SARM2 task (docs/design.md §3): three RGB views + 14-d joint state;
    14-d absolute joint targets.

    **State** (``obs_mode="state"``: one flat float32 vector of 108 values; ``"pixels+state"`` adds it as
    ``obs["state"]``): ``agent_pos`` (14), ``phones/cable/vertices`` (90: 30 vertices x (x, y, z)), then the
    evaluation terms ``eval/end_radius``, ``eval/held``, ``eval/tucked``, ``eval/turns`` (1 each), in that order
    (``env.unwrapped.state_layout``). Simulation only.

    **Progress** (from the cable's vertex positions; valid for any trajectory)::

        0.8 * clip(turns / 2, 0, 1) + 0.1 * tucked + 0.1 * success

    ``turns`` is the winding number of the cable around the mandrel's axis: the sum of the signed
    angle increments of its edges seen from the axis, divided by 2 pi, in absolute value, where an
    edge counts fully within 5 cm of the axis, fades out by 8.5 cm and counts not at all above the
    mandrel's top (a cable lying loosely nearby, or slipped over the top, is not coiled). ``tucked``
    = the free end laid down (below 1.5 cm) within 7 cm of the axis. Unwinding the cable brings
    ``turns``, and the progress, back down.

    **Calibrated progress** (``info["calibrated_progress"]``; :mod:`tasks.calibration`): the same physics in
    demo-time units, for comparison with time-linear progress. Stages in demo order, each weighted by its mean
    share of full-skill demo time (``CALIBRATION_WEIGHTS``), each a fraction from the current physics state:
    ``reach`` (the nearest tool centre's approach to the cable's free end, from its home pose), ``grasp`` (that
    gripper closing on it), ``to_mandrel`` (the held end brought in to the winding orbit, until winding
    begins), ``wind`` (``turns`` / 2.5, the turns demos wind), ``tuck`` (the wound end lowered to the table, or
    laid within 7 cm of the axis), ``release`` (the pinching gripper opening), ``clear`` (the hand backing 5 cm
    away from the end). Sum of weight x fraction; 1 on success, at most 0.99 without it. Unwinding lowers it.

    **Success.** ``turns >= 2``, the cable released by both grippers, and at rest (every vertex
    slower than 5 cm/s).

    **Randomisation.** Mandrel (and headphones) position (+-2 cm in x and y); the cable's arc radius
    (0.22-0.28 m) and direction (+-0.15 rad).

    **Episode end.** Success (``terminated``) or 600 control steps (60 s at 10 Hz, ``truncated``).

    **Grasping.** The cable is pinched: closing fingers connect to the nearest vertices (up to 2
    within 2.5 cm of the tool centre); opening releases. The fingers do not collide with the cable
    (a soft cable squeezed by position-controlled pads only jitters); the mandrel collides with both.

    **Expert primitives.** ``pick_grab``, ``roll``, ``wrap``, ``dummy``.

    **Version history.** v0: initial release.
    """

    task_name = "CoilHeadphones"
    instruction = "Coil the headphone cable around the holder and tuck its end in."
    deformable = True

    def _build_task(self, spec: mujoco.MjSpec) -> None:
        # The cable touches the table and the mandrel (bit 2), not the fingers: grasping is the pinch's job.
        spec.geom("table").conaffinity = 3
        wb = spec.worldbody
        mandrel = wb.add_body(name="mandrel", pos=[*MANDREL_XY, 0.0], mocap=True)
        mandrel.add_geom(
            name="mandrel_post",
            type=mujoco.mjtGeom.mjGEOM_CYLINDER,
            pos=[0, 0, MANDREL_TOP / 2],
            size=[MANDREL_R, MANDREL_TOP / 2, 0],
            rgba=[0.8, 0.8, 0.82, 1],
            friction=[0.2, 0.005, 0.0001],
            contype=3,
            conaffinity=3,
            # Stiff and given priority: a cable pulled taut round it must not cut through it.
            solref=[0.002, 1.0],
            solimp=[0.95, 0.99, 0.001, 0.5, 2.0],
            priority=2,
            margin=0.002,
        )
        mandrel.add_geom(
            name="mandrel_cap",
            type=mujoco.mjtGeom.mjGEOM_CYLINDER,
            pos=[0, 0, MANDREL_TOP + 0.003],
            size=[MANDREL_R + 0.008, 0.003, 0],
            rgba=[0.3, 0.3, 0.33, 1],
            contype=3,
            conaffinity=3,
        )
        phones = wb.add_body(name="headphones", pos=[*(MANDREL_XY + HEADPHONE_OFFSET), 0.0], mocap=True)
        visual = {"contype": 0, "conaffinity": 0}
        for side in (-1, 1):
            phones.add_geom(
                name=f"earcup_{'lr'[side > 0]}",
                type=mujoco.mjtGeom.mjGEOM_CYLINDER,
                pos=[0.0, side * 0.05 + 0.06, 0.012],
                size=[0.035, 0.012, 0],
                rgba=[0.12, 0.12, 0.14, 1],
                **visual,
            )
        phones.add_geom(
            name="headband",
            type=mujoco.mjtGeom.mjGEOM_CAPSULE,
            fromto=[0.04, 0.01, 0.01, 0.04, 0.11, 0.01],
            size=[0.008, 0, 0],
            rgba=[0.25, 0.25, 0.28, 1],
            **visual,
        )
        attach_flexcomp(spec, "phones/", _CABLE, damping=0.001, solref=0.005, friction=0.5)
        # The cable's first vertex is tied to the headphones (their jack).
        spec.add_equality(
            name="cable_jack",
            type=mujoco.mjtEq.mjEQ_CONNECT,
            objtype=mujoco.mjtObj.mjOBJ_BODY,
            name1="headphones",
            name2="phones/cable_0",
            solref=[0.005, 1.0],
        )
        PinchGrasp.add_for_arms(spec, "phones/cable_0", max_vertices=2)

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._vbody, self._vqadr, self._rest = self.flex_vertices("phones/cable_", N_VERTS)  # rest: straight
        self._vdadr = np.array([self.model.jnt_dofadr[self.model.body_jntadr[b]] for b in self._vbody])
        self._mandrel_mocap = self.model.body_mocapid[self.model.body("mandrel").id]
        self._phones_mocap = self.model.body_mocapid[self.model.body("headphones").id]
        # The jack's anchor: on the headphones' origin at cable height, which is where the reset lays
        # the first vertex.
        jack = self.model.equality("cable_jack").id
        self.model.eq_data[jack, 0:3] = [0.0, 0.0, CABLE_R]
        self.model.eq_data[jack, 3:6] = 0.0
        self.pinches = PinchGrasp.for_arms(self.model, self._vbody, radius=0.025, max_vertices=2)

    # ------------------------------------------------------------------ randomisation
    def _reset_task(self) -> None:
        rng = self.np_random
        centre = MANDREL_XY + self.pose_offset(0.02, size=2)
        phones = centre + HEADPHONE_OFFSET
        self.data.mocap_pos[self._mandrel_mocap] = [*centre, 0.0]
        self.data.mocap_pos[self._phones_mocap] = [*phones, 0.0]
        # The cable leaves the headphones towards the robot and curls round to the right in an arc
        # that passes well clear of the mandrel; its free end lies in front of and right of it.
        radius = rng.uniform(0.22, 0.28)
        heading = np.pi + self.pose_offset(0.15) + (np.arange(N_VERTS - 1) + 0.5) * SPACING / radius
        steps = SPACING * np.stack([np.cos(heading), np.sin(heading)], axis=1)
        layout = np.zeros((N_VERTS, 3))
        layout[:, :2] = phones + np.concatenate([np.zeros((1, 2)), np.cumsum(steps, axis=0)])
        layout[:, 2] = CABLE_R
        for adr, target, rest in zip(self._vqadr, layout, self._rest):
            self.data.qpos[adr : adr + 3] = target - rest
        self.reset_grasp_assists(self.pinches)

    def _before_physics(self, action: np.ndarray) -> None:
        self.update_grasp_assists(self.pinches)

    # ------------------------------------------------------------------ state helpers
    def vertices(self) -> np.ndarray:
        """World positions (N, 3) of the cable's vertices, from the headphones to the free end."""
        return self.data.xpos[self._vbody].copy()

    def mandrel_centre(self) -> np.ndarray:
        """(x, y) of the mandrel's axis."""
        return self.data.mocap_pos[self._mandrel_mocap, :2].copy()

    def turns(self) -> float:
        """Turns of cable wound around the mandrel."""
        return winding_turns(self.data.xpos[self._vbody], self.data.mocap_pos[self._mandrel_mocap, :2])

    # ------------------------------------------------------------------ ground truth
    @override
    def evaluate(self) -> Evaluation:
        pts = self.data.xpos[self._vbody]
        centre = self.data.mocap_pos[self._mandrel_mocap, :2]
        turns = winding_turns(pts, centre)
        end_r = float(np.linalg.norm(pts[-1, :2] - centre))
        tucked = end_r < TUCK_R and pts[-1, 2] < TUCK_Z
        held = any(p.active(self.data) for p in self.pinches.values())
        vel = self.data.qvel[self._vdadr[:, None] + np.arange(3)]  # (N, 3) vertex velocities
        resting = float(np.max(np.linalg.norm(vel, axis=1))) < REST_SPEED
        success = turns >= TARGET_TURNS and not held and resting
        progress = 0.8 * min(turns / TARGET_TURNS, 1.0) + 0.1 * float(tucked) + 0.1 * float(success)
        terms = {"turns": turns, "end_radius": end_r, "tucked": float(tucked), "held": float(held)}
        stages = self.calibration_stages(turns=turns, held=held)
        return Evaluation(progress, success, terms, calibrated_progress(stages, CALIBRATION_WEIGHTS, success))

    calibration_weights = CALIBRATION_WEIGHTS

    def calibration_stages(self, turns: float | None = None, held: bool | None = None) -> dict[str, float]:
        """Fraction done (from physics) of each calibrated stage, in demo order (see the task card).

        The keyword arguments reuse values :meth:`evaluate` has already computed.
        """
        pts = self.data.xpos[self._vbody]
        centre = self.data.mocap_pos[self._mandrel_mocap, :2]
        turns = winding_turns(pts, centre) if turns is None else turns
        held = any(p.active(self.data) for p in self.pinches.values()) if held is None else held
        # Winding counts as done, and tucking starts, once the hand has wound as far as demos do, or the end is laid
        # down after the 2 turns success needs.
        wound = turns >= WIND_TARGET or (turns >= TARGET_TURNS and not held)
        tcp = {arm: self.data.site_xpos[self._tcp[arm]] for arm in ("left", "right")}
        opening = dict(zip(("left", "right"), self.agent_pos()[[6, 13]]))
        end = 0.7 * pts[-1] + 0.3 * pts[-2]  # just inside the free end, where a pinch takes both end vertices
        d_end = {arm: float(np.linalg.norm(tcp[arm] - end)) for arm in tcp}
        arm = min(d_end, key=d_end.get)
        # Pinch the free end (any hand) ...
        if held or wound:
            reach = grasp = 1.0
        else:
            reach = approach(d_end[arm], float(np.linalg.norm(self._home_tcp[arm] - end)), ARRIVED)
            grasp = gripper_closure(opening[arm]) if d_end[arm] <= CLOSING_REACH else 0.0
        # ... bring it to the mandrel, wind it round, lay the end down against the coil, let go and back away.
        end_r = float(np.linalg.norm(pts[-1, :2] - centre))
        if turns >= STARTED or wound:
            to_mandrel = 1.0
        elif held:
            to_mandrel = approach(end_r, END_START, arrived=ORBIT_RADIUS)
        else:
            to_mandrel = 0.0
        wind = 1.0 if wound else float(np.clip(turns / WIND_TARGET, 0.0, 1.0))
        tuck = release = clear = 0.0
        if wound:
            tuck = float(np.clip((WIND_HEIGHT - pts[-1, 2]) / (WIND_HEIGHT - TUCK_Z), 0.0, 1.0))
            holder = next((a for a, p in self.pinches.items() if p.active(self.data)), None)
            release = 1.0 if holder is None else float(np.clip(opening[holder], 0.0, 1.0))
            if holder is None:
                tuck = 1.0 if float(np.linalg.norm(pts[-1, :2] - centre)) < TUCK_R else tuck
                clear = float(np.clip(d_end[arm] / CLEAR_DISTANCE, 0.0, 1.0))
        return {
            "reach": reach,
            "grasp": grasp,
            "to_mandrel": to_mandrel,
            "wind": wind,
            "tuck": tuck,
            "release": release,
            "clear": clear,
        }


class CoilHeadphonesExpert(ScriptedExpert):
    """Right arm: pinch the cable's free end, circle the mandrel with it (spiralling in), then lay the
    end down against the coil and let go."""

    TEMPO = 1.8  # cable is handled slowly
    PRIMITIVES = frozenset({"pick_grab", "roll", "wrap"})
    GRASP_Z = 0.006
    WIND_Z = 0.03  # height of the tool centre while winding (the mandrel is 6 cm tall)
    ORBIT_R = (0.075, 0.05)  # winding radius, spiralling in from the first to the second
    TURNS = 2.4  # circles of the hand: the first part of the cable goes to reaching the mandrel
    STEP = np.pi / 4  # waypoint spacing along the circle

    @override
    def plan(self) -> Iterator[Segment]:
        env: CoilHeadphonesEnv = self.env
        yield from self.maybe_hesitate()
        if not (yield from self._grab_end(env)):
            yield from self._give_up()
            return
        # Counter-clockwise, the way the cable already curls; a clumsy operator stops short.
        total = self.TURNS - self.clumsiness * self.rng.uniform(0.0, 0.6)
        remaining = total
        recoveries = 2 if self.skill > 0.3 else 0
        while True:
            remaining = yield from self._wind(env, remaining, total)
            if remaining <= 0.0:
                break
            # Lost the cable mid-way: pick its end up again and carry on winding.
            if recoveries == 0 or not (yield from self._grab_end(env)):
                yield from self._give_up()
                return
            recoveries -= 1
        yield from self._tuck(env)
        yield Segment("dummy", self.pace(1.0), right=ArmGoal((0.25, -0.61, 0.15)))
        yield Segment("dummy", 1.0)  # let the cable settle

    def _grab_end(self, env: CoilHeadphonesEnv) -> Generator[Segment, None, bool]:
        """Pinch the cable's free end (with retries); returns whether it is held."""
        return (
            yield from self.retry(
                lambda: self._pick_end(env),
                lambda: env.pinches["right"].active(env.data),
                lambda: self.let_go(0.5, "right", rise=0.04),
            )
        )

    # ------------------------------------------------------------------ sub-plans
    def _pick_end(self, env: CoilHeadphonesEnv) -> Iterator[Segment]:
        pts = env.vertices()
        end = 0.7 * pts[-1] + 0.3 * pts[-2]  # just inside the end: both end vertices get pinched
        direction = pts[-1, :2] - pts[-2, :2]
        yaw = float(np.arctan2(direction[1], direction[0]))
        yaw = (yaw + np.pi / 2) % np.pi - np.pi / 2  # the same pinch either way round; keep the wrist near 0
        xy = end[:2] + self.jitter(0.016, 2)
        above = ArmGoal((float(xy[0]), float(xy[1]), 0.07), yaw=yaw, grip=1.0)
        yield Segment("pick_grab", self.pace(1.5), right=above)
        yield from self.maybe_hesitate()
        yield Segment("pick_grab", self.pace(0.8), right=above.moved(dz=self.GRASP_Z - 0.07))
        yield Segment("pick_grab", 0.5, right=self.goal("right").moved(grip=0.0))
        yield Segment("pick_grab", self.pace(0.6), right=self.goal("right").moved(dz=self.WIND_Z - self.GRASP_Z))

    def _orbit_point(self, centre: np.ndarray, angle: float, radius: float, z: float) -> ArmGoal:
        x, y = centre + radius * np.array([np.cos(angle), np.sin(angle)])
        return ArmGoal((float(x), float(y), z), yaw=0.0, grip=0.0)

    def _wind(self, env: CoilHeadphonesEnv, turns: float, total: float) -> Generator[Segment, None, float]:
        """Circle the mandrel ``turns`` times (of ``total``), spiralling in; returns the turns left
        undone when the cable slips out of the hand (0 when done)."""
        centre = env.mandrel_centre()
        hand = np.asarray(self.goal("right").pos[:2]) - centre
        start = float(np.arctan2(hand[1], hand[0]))
        n = max(1, int(np.ceil(turns * 2 * np.pi / self.STEP)))
        r0, r1 = self.ORBIT_R

        def radius(left: float) -> float:
            return r0 + (1.0 - left / total) * (r1 - r0)

        yield Segment("roll", self.pace(1.0), right=self._orbit_point(centre, start, radius(turns), self.WIND_Z))
        for k in range(1, n + 1):
            left = turns * (1.0 - k / n)
            if self.chance(0.02):  # the cable slips out of the fingers
                yield Segment("roll", 0.4, right=self.goal("right").moved(dz=0.02, grip=1.0))
                return left + turns / n
            yield from () if k % 8 else self.maybe_hesitate()
            goal = self._orbit_point(centre, start + (turns - left) * 2 * np.pi, radius(left), self.WIND_Z)
            yield Segment("roll", self.pace(0.5), right=goal)
        return 0.0

    def _tuck(self, env: CoilHeadphonesEnv) -> Iterator[Segment]:
        if not env.pinches["right"].active(env.data):
            return
        centre = env.mandrel_centre()
        hand = np.asarray(self.goal("right").pos[:2]) - centre
        angle = float(np.arctan2(hand[1], hand[0]))
        radius = float(np.linalg.norm(hand))
        # Carry on round a quarter turn while pressing the end in against the coil and down.
        for k, (da, r, z) in enumerate(((np.pi / 6, radius, 0.02), (np.pi / 3, 0.05, 0.006))):
            if k and self.chance(0.5):  # skips the tuck: the end is left sticking out
                break
            yield Segment("wrap", self.pace(0.6), right=self._orbit_point(centre, angle + da, r, z))
        yield Segment("wrap", 0.5, right=self.goal("right").moved(grip=1.0))
        yield Segment("wrap", self.pace(0.6), right=self.goal("right").moved(dz=0.06))

    def _give_up(self) -> Iterator[Segment]:
        yield Segment("dummy", 1.5, right=ArmGoal((0.25, -0.61, 0.15), grip=1.0))
