"""Put Away Umbrella: pick up a folded umbrella, hand it to the other arm, and hang it on a hook."""

from __future__ import annotations

from collections.abc import Generator, Iterator

import mujoco
import numpy as np
from typing_extensions import override

from tasks.base import Evaluation, YamTaskEnv
from tasks.calibration import approach, calibrated_progress, gripper_closure, stage_weights
from tasks.expert import ArmGoal, ScriptedExpert, Segment
from tasks.station import STATION_CENTER_Y

# Umbrella geometry, in the umbrella's body frame: the shaft runs along -x from the origin (where
# the crook starts) to the tip; the crook is an inverted U in the x-z plane above the origin.
SHAFT_LEN = 0.26
SHAFT_R = 0.011
CANOPY_CENTER_X = -0.14
CANOPY_HALF = np.array([0.06, 0.018, 0.018])  # the folded canopy, a box so it lies crook-up
CROOK_R = 0.008
CROOK_H = 0.055  # height of the crook's top bar above the shaft axis
CROOK_W = 0.065  # width of the crook's opening (centre to centre of its two legs)
CROOK_LEG = 0.03  # length of the crook's free leg
#: Where the hook peg sits inside the crook when the umbrella hangs (body frame).
CROOK_CENTER = np.array([0.036, 0.0, 0.036])
#: Grasp points along the shaft (body frame): tip side (first arm) and handle side (second arm).
TIP_GRIP_X = -0.23
HANDLE_GRIP_X = -0.045
REST_Z = CANOPY_HALF[2]  # height of the body origin when the umbrella lies on the table
UMBRELLA_XY = np.array([0.42, -0.46])  # nominal resting position of the body origin

# The hook: a post on the table's left edge with a peg sticking out along +y, past the edge, so the
# hung umbrella dangles beside the table.
PEG_X = 0.32
PEG_Z = 0.10
PEG_R = 0.007
PEG_Y = (0.29, 0.43)  # the peg's extent along y (the post stands at the first end)
HANG_Y = 0.37  # where along the peg the expert hangs the umbrella
HOOK_POINT = np.array([PEG_X, HANG_Y, PEG_Z])

DANGLE_DEG = 25.0  # the hung shaft must point down within this angle of the vertical
HUNG_TOL = 0.035  # m: crook centre this close to the peg axis counts as on the hook
REST_SPEED = 0.05  # m/s
REST_SPIN = 0.6  # rad/s
#: Calibrated progress: a tool centre this close (m) to a grasp point has arrived, and within ``CLOSING_REACH``
#: its gripper's closing counts as grasping; how far the hand-over grasp point starts from the left arm's home tool
#: centre (umbrella at its nominal rest), and the crook from the hanging point at the hand-over (m).
ARRIVED = 0.012
CLOSING_REACH = 0.025
HANDOVER_START = 0.49
HOOK_START = 0.6
#: The crook is carried to this height (m) above the peg, then lowered onto it once within ``OVER_HOOK`` (m,
#: horizontally) of the hanging point.
HOOK_DROP = 0.07
OVER_HOOK = 0.03
#: Calibrated stage weights: each stage's mean share of full-skill demo time, measured on 20 demos at operator
#: variability 1 (seeds 0-19) with ``python benchmarks/calibrated_progress.py --tasks PutAwayUmbrella --fit``.
CALIBRATION_WEIGHTS = stage_weights(
    reach=0.152,
    grasp=0.043,
    lift=0.034,
    handover_reach=0.244,
    take=0.039,
    let_go=0.015,
    carry=0.301,
    lower=0.079,
    release=0.06,
    settle=0.032,
)


class PutAwayUmbrellaEnv(YamTaskEnv):
    """## Putting Away an Umbrella (``SARM2/PutAwayUmbrella-v0``)

    **Description.** A folded umbrella (rigid: a 0.26 m shaft, the folded canopy, and a crook handle)
    lies on the right of the table. The right arm picks it up by the shaft's tip end and holds it out;
    the left arm takes it by the shaft's handle end (a real hand-over: the left gripper grasps, then
    the right one lets go) and hangs it by its crook on a peg that sticks out past the table's left
    edge, where it swings down and dangles. Proxy of the paper's "Putting Away an Umbrella" task.

    **Observation / action.** As every SARM2 task (docs/design.md §3): three RGB views + 14-d joint state;
    14-d absolute joint targets.

    **State** (``obs_mode="state"``: one flat float32 vector of 27 values; ``"pixels+state"`` adds it as
    ``obs["state"]``): ``agent_pos`` (14), ``umbrella_free/pos`` (3), ``umbrella_free/quat`` (4, w x y z), then the
    evaluation terms ``eval/dangling``, ``eval/held_left``, ``eval/held_right``, ``eval/hung``, ``eval/lifted``,
    ``eval/near_hook`` (1 each), in that order (``env.unwrapped.state_layout``). Simulation only.

    **Progress** (from the umbrella's pose, the grasps and the hook; valid for any trajectory)::

        0.15 * lifted + 0.15 * handed_over + 0.3 * near_hook + 0.3 * hung + 0.1 * success

    ``lifted`` = ``clip(rise / 6 cm, 0, 1)`` of the umbrella while a gripper holds it (1 once handed
    over, or hung);
    ``handed_over`` = 1 while only the left gripper holds it, or when hung; ``near_hook`` =
    ``clip(1 - d / 0.6 m, 0, 1)`` with ``d`` the distance from the crook to the hanging point while
    only the left gripper holds it (1 when hung); ``hung`` = released with the peg inside the crook
    (crook centre within 3 cm of the peg's axis, along the peg's length). An umbrella that falls off
    the hook, or is dropped, scores 0.

    **Calibrated progress** (``info["calibrated_progress"]``; :mod:`tasks.calibration`): the same physics in
    demo-time units, for comparison with time-linear progress. Stages in demo order, each weighted by its mean
    share of full-skill demo time (``CALIBRATION_WEIGHTS``), each a fraction from the current physics state:
    ``reach`` (the right tool centre's approach to the shaft's tip end, from its home pose), ``grasp`` (the right
    gripper closing on it), ``lift`` (``lifted``), ``handover_reach`` (while the right hand holds it, the left
    tool centre's approach to the handle end, 0.49 m nominal), ``take`` (the left gripper closing on it),
    ``let_go`` (the right gripper opening once both hold it), ``carry`` (the crook's approach to 7 cm above the
    hanging point, 0.6 m), ``lower`` (the crook lowered onto the peg), ``release`` (the left gripper opening on
    the peg), ``settle`` (the hung shaft swinging down to 25 deg from vertical). Sum of weight x fraction; 1 on
    success, at most 0.99 without it. A dropped umbrella loses every term past the pick.

    **Success.** Hung, released by both grippers, swung down (shaft within 25 deg of hanging straight down) and
    at rest (speed < 5 cm/s, spin < 0.6 rad/s).

    **Randomisation.** Umbrella position (+-3 cm in x and y) and yaw (+-0.2 rad).

    **Episode end.** Success (``terminated``) or 500 control steps (50 s at 10 Hz, ``truncated``).

    **Grasping.** Rigid weld assist per arm (:class:`~tasks.grasping.WeldGrasp`): engages only from
    two-pad finger contact while closing, releases when the gripper opens; grasps can miss and the
    umbrella can be dropped. The freejoint carries a little damping (the folded canopy's air drag),
    so the hung umbrella stops swinging within a couple of seconds.

    **Expert primitives.** ``pick_grab``, ``pass``, ``hang``, ``dummy``.

    **Version history.** v0: initial release.
    """

    task_name = "PutAwayUmbrella"
    instruction = "Pick up the umbrella, hand it to the other arm, and hang it on the hook."
    grasped_body = "umbrella"

    def _build_task(self, spec: mujoco.MjSpec) -> None:
        wb = spec.worldbody
        # A collidable floor under the table: a dropped umbrella comes to rest instead of falling forever.
        wb.add_geom(
            name="catch_floor",
            type=mujoco.mjtGeom.mjGEOM_PLANE,
            size=[3, 3, 0.1],
            pos=[0, 0, -0.749],
            rgba=[0, 0, 0, 0],
        )
        post_h = PEG_Z + PEG_R
        wb.add_geom(
            name="hook_base",
            type=mujoco.mjtGeom.mjGEOM_BOX,
            pos=[PEG_X, PEG_Y[0], 0.004],
            size=[0.03, 0.02, 0.004],
            rgba=[0.35, 0.35, 0.38, 1],
        )
        wb.add_geom(
            name="hook_post",
            type=mujoco.mjtGeom.mjGEOM_CYLINDER,
            pos=[PEG_X, PEG_Y[0], post_h / 2],
            size=[0.01, post_h / 2, 0],
            rgba=[0.55, 0.55, 0.58, 1],
        )
        wb.add_geom(
            name="hook_peg",
            type=mujoco.mjtGeom.mjGEOM_CAPSULE,
            fromto=[PEG_X, PEG_Y[0], PEG_Z, PEG_X, PEG_Y[1], PEG_Z],
            size=[PEG_R, 0, 0],
            rgba=[0.75, 0.62, 0.2, 1],
            friction=[0.6, 0.01, 0.001],
        )
        wb.add_geom(  # an upturned end so the umbrella cannot slide off the peg's end
            name="hook_stop",
            type=mujoco.mjtGeom.mjGEOM_CAPSULE,
            fromto=[PEG_X, PEG_Y[1], PEG_Z, PEG_X, PEG_Y[1], PEG_Z + 0.02],
            size=[PEG_R, 0, 0],
            rgba=[0.75, 0.62, 0.2, 1],
        )
        body = wb.add_body(name="umbrella", pos=[*UMBRELLA_XY, REST_Z])
        joint = body.add_freejoint(name="umbrella_free")
        joint.damping = [0.02, 0.0, 0.0]
        body.add_geom(
            name="umbrella_shaft",
            type=mujoco.mjtGeom.mjGEOM_CAPSULE,
            fromto=[-SHAFT_LEN, 0, 0, 0, 0, 0],
            size=[SHAFT_R, 0, 0],
            mass=0.05,
            rgba=[0.12, 0.12, 0.14, 1],
            friction=[1.0, 0.01, 0.001],
            condim=4,
        )
        body.add_geom(
            name="umbrella_canopy",
            type=mujoco.mjtGeom.mjGEOM_BOX,
            pos=[CANOPY_CENTER_X, 0, 0],
            size=CANOPY_HALF,
            mass=0.15,
            rgba=[0.62, 0.1, 0.16, 1],
            friction=[0.8, 0.01, 0.001],
        )
        crook = [
            [0, 0, 0, 0, 0, CROOK_H],
            [0, 0, CROOK_H, CROOK_W, 0, CROOK_H],
            [CROOK_W, 0, CROOK_H, CROOK_W, 0, CROOK_H - CROOK_LEG],
        ]
        for k, fromto in enumerate(crook):
            body.add_geom(
                name=f"umbrella_crook_{k}",
                type=mujoco.mjtGeom.mjGEOM_CAPSULE,
                fromto=fromto,
                size=[CROOK_R, 0, 0],
                mass=0.01,
                rgba=[0.4, 0.24, 0.12, 1],
                friction=[0.6, 0.01, 0.001],
            )

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._body = self.model.body("umbrella").id
        self._qadr = self.model.joint("umbrella_free").qposadr[0]
        self._dadr = self.model.joint("umbrella_free").dofadr[0]
        self._rest_com_z = 0.0

    # ------------------------------------------------------------------ randomisation
    def _reset_task(self) -> None:
        x, y = UMBRELLA_XY + self.pose_offset(0.03, size=2)
        yaw = self.pose_offset(0.2)
        self.set_free_pose(self._qadr, (x, y, REST_Z), yaw)
        mujoco.mj_kinematics(self.model, self.data)
        self._rest_com_z = float(self.data.xipos[self._body][2])

    # ------------------------------------------------------------------ geometry helpers
    def body_point(self, local: np.ndarray) -> np.ndarray:
        """World position of a point given in the umbrella's body frame."""
        rot = self.data.xmat[self._body].reshape(3, 3)
        return self.data.xpos[self._body] + rot @ np.asarray(local, dtype=float)

    def umbrella_yaw(self) -> float:
        """Heading of the shaft's handle direction (body +x) in the table plane."""
        rot = self.data.xmat[self._body].reshape(3, 3)
        return float(np.arctan2(rot[1, 0], rot[0, 0]))

    def crook_center(self) -> np.ndarray:
        """Position of the centre of the umbrella's crook."""
        return self.body_point(CROOK_CENTER)

    def on_peg(self) -> bool:
        """The peg passes through the crook (geometric test, whoever holds the umbrella)."""
        c = self.crook_center()
        axis_dist = float(np.hypot(c[0] - PEG_X, c[2] - PEG_Z))
        return axis_dist < HUNG_TOL and PEG_Y[0] + 0.01 <= c[1] <= PEG_Y[1]

    def on_table(self) -> bool:
        """Lying on the table top, free (a dropped umbrella the expert can pick up again)."""
        pos = self.data.xpos[self._body]
        held = any(g.active(self.data) for g in self.grasps.values())
        return (not held) and 0.0 < pos[2] < 0.05 and 0.12 < pos[0] < 0.55 and -0.75 < pos[1] < 0.25

    # ------------------------------------------------------------------ ground truth
    @override
    def evaluate(self) -> Evaluation:
        held_l = self.grasps["left"].active(self.data)
        held_r = self.grasps["right"].active(self.data)
        held = held_l or held_r
        hung = (not held) and self.on_peg()
        vel = self.data.qvel[self._dadr : self._dadr + 6]
        resting = float(np.linalg.norm(vel[:3])) < REST_SPEED and float(np.linalg.norm(vel[3:])) < REST_SPIN
        # The hung umbrella must have swung down (tip well below the crook) and come to rest: the
        # instant of release, still level, does not count.
        shaft_down = float(self.data.xmat[self._body].reshape(3, 3)[2, 0])  # cos(tip angle from straight down)
        dangling = shaft_down > np.cos(np.radians(DANGLE_DEG))
        success = hung and dangling and resting
        if hung:
            lifted = handed = near = 1.0
        else:
            handed = float(held_l and not held_r)
            rise = float(self.data.xipos[self._body][2]) - self._rest_com_z
            lifted = max(float(np.clip(rise / 0.06, 0.0, 1.0)) if held else 0.0, handed)
            dist = float(np.linalg.norm(self.crook_center() - HOOK_POINT))
            near = float(np.clip(1.0 - dist / 0.6, 0.0, 1.0)) * handed
        progress = 0.15 * lifted + 0.15 * handed + 0.3 * near + 0.3 * float(hung) + 0.1 * float(success)
        calibrated = calibrated_progress(self.calibration_stages(), CALIBRATION_WEIGHTS, success)
        terms = {
            "held_left": float(held_l),
            "held_right": float(held_r),
            "lifted": lifted,
            "near_hook": near,
            "hung": float(hung),
            "dangling": float(dangling),
        }
        return Evaluation(progress, success, terms, calibrated)

    calibration_weights = CALIBRATION_WEIGHTS

    def calibration_stages(self) -> dict[str, float]:
        """Fraction done (from physics) of each calibrated stage, in demo order (see the task card)."""
        held_l = self.grasps["left"].active(self.data)
        held_r = self.grasps["right"].active(self.data)
        on_peg = self.on_peg()
        hung = on_peg and not (held_l or held_r)
        handed = hung or (held_l and not held_r)
        opening = self.agent_pos()[[6, 13]]
        tcp = {arm: self.data.site_xpos[self._tcp[arm]] for arm in ("left", "right")}
        # The right arm picks the umbrella by its tip end ...
        tip = self.body_point([TIP_GRIP_X, 0.0, 0.0])
        d_tip = float(np.linalg.norm(tcp["right"] - tip))
        picked = held_r or handed
        reach = 1.0 if picked else approach(d_tip, float(np.linalg.norm(self._home_tcp["right"] - tip)), ARRIVED)
        grasp = 1.0 if picked else (gripper_closure(opening[1]) if d_tip <= CLOSING_REACH else 0.0)
        rise = float(self.data.xipos[self._body][2]) - self._rest_com_z
        lift = 1.0 if handed else (float(np.clip(rise / 0.06, 0.0, 1.0)) if held_r else 0.0)
        # ... holds it out and the left arm takes it by the handle end ...
        handle = self.body_point([HANDLE_GRIP_X, 0.0, 0.0])
        d_handle = float(np.linalg.norm(tcp["left"] - handle))
        if held_l or handed:
            handover_reach = take = 1.0
        elif held_r:
            handover_reach = approach(d_handle, HANDOVER_START, ARRIVED)
            take = gripper_closure(opening[0]) if d_handle <= CLOSING_REACH else 0.0
        else:
            handover_reach = take = 0.0
        let_go = 1.0 if handed else (float(np.clip(opening[1], 0.0, 1.0)) if held_l else 0.0)
        # ... carries the crook onto the peg, lets go, and the umbrella swings down and comes to rest.
        if hung:
            carry = lower = release = 1.0
        elif handed:
            crook = self.crook_center()
            carry = approach(float(np.linalg.norm(crook - HOOK_POINT - [0.0, 0.0, HOOK_DROP])), HOOK_START, 0.015)
            over = float(np.linalg.norm(crook[:2] - HOOK_POINT[:2])) <= OVER_HOOK
            lower = float(np.clip(1.0 - (crook[2] - PEG_Z) / HOOK_DROP, 0.0, 1.0)) if over or on_peg else 0.0
            release = float(np.clip(opening[0], 0.0, 1.0)) if on_peg else 0.0
        else:
            carry = lower = release = 0.0
        settle = 0.0
        if hung:
            shaft_down = float(self.data.xmat[self._body].reshape(3, 3)[2, 0])
            angle = float(np.degrees(np.arccos(np.clip(shaft_down, -1.0, 1.0))))
            settle = float(np.clip((90.0 - angle) / (90.0 - DANGLE_DEG), 0.0, 1.0))
        return {
            "reach": reach,
            "grasp": grasp,
            "lift": lift,
            "handover_reach": handover_reach,
            "take": take,
            "let_go": let_go,
            "carry": carry,
            "lower": lower,
            "release": release,
            "settle": settle,
        }


class PutAwayUmbrellaExpert(ScriptedExpert):
    """Right arm: pick the umbrella by the tip end and hold it out. Left arm: take it by the handle
    end, carry it over the hook, lower the crook onto the peg and let go."""

    TEMPO = 1.5
    PRIMITIVES = frozenset({"pick_grab", "pass", "hang"})
    GRASP_DZ = -0.008  # tool centre below the shaft's axis: the pads' centres sit 12 mm above it
    MEET = np.array([0.36, -0.24, 0.13])  # where the handle grasp point is held out for the hand-over
    LEFT_HOME = ArmGoal((0.25, 0.0, 0.15))
    RIGHT_HOME = ArmGoal((0.25, -0.61, 0.15))

    @override
    def plan(self) -> Iterator[Segment]:
        env: PutAwayUmbrellaEnv = self.env
        yield from self.maybe_hesitate()
        # A second go when the umbrella was dropped (or fell off the hook) onto the table.
        for attempt in self.tries(2):
            if attempt and not env.on_table():
                break
            hung = yield from self._put_away(env)
            if hung:
                return
        yield from self._give_up()

    def _put_away(self, env: PutAwayUmbrellaEnv) -> Generator[Segment, None, bool]:
        """One attempt; returns whether the umbrella was let go on the hook."""
        retries = self.attempts()
        # On the right half of the table: the right arm picks it and hands it over. On the left half
        # (after a drop): the left arm picks it up by the handle end itself.
        first = "right" if env.body_point([0.0, 0.0, 0.0])[1] < STATION_CENTER_Y + 0.05 else "left"
        grip_x = TIP_GRIP_X if first == "right" else HANDLE_GRIP_X
        for _attempt in range(retries):
            yield from self._pick(env, first, grip_x)
            if env.grasps[first].active(env.data):
                break
        else:
            return False
        if first == "right":
            yield from self._hold_out(env)
            for _attempt in range(retries):
                yield from self._take(env)
                if env.grasps["left"].active(env.data):
                    break
            else:
                return False
            yield from self._let_go_right(env)
        if not env.grasps["left"].active(env.data):
            return False
        return (yield from self._hang(env))

    # ------------------------------------------------------------------ sub-plans
    def _pick(self, env: PutAwayUmbrellaEnv, arm: str, grip_x: float) -> Iterator[Segment]:
        yaw = env.umbrella_yaw()
        point = env.body_point([grip_x, 0.0, 0.0])
        xy = point[:2] + self.jitter(0.02, 2)
        above = ArmGoal((*xy, 0.10), yaw=yaw + float(self.jitter(0.2, 1)[0]), grip=1.0)
        yield Segment("pick_grab", self.pace(1.6), **{arm: above})
        yield from self.maybe_hesitate()
        yield Segment("pick_grab", self.pace(0.9), **{arm: above.moved(dz=point[2] + self.GRASP_DZ - 0.10)})
        yield Segment("pick_grab", 0.6, **{arm: self.goal(arm).moved(grip=0.0)})
        yield Segment("pick_grab", self.pace(0.8), **{arm: self.goal(arm).moved(dz=0.09)})
        if not env.grasps[arm].active(env.data):  # missed: open and look again
            yield from self.let_go(0.6, arm, rise=0.02)

    def _hold_out(self, env: PutAwayUmbrellaEnv) -> Iterator[Segment]:
        """The right arm turns the umbrella to point at the left arm's side and holds it out."""
        tcp = env.data.site_xpos[env.model.site("tcp_right").id].copy()
        handle = env.body_point([HANDLE_GRIP_X, 0.0, 0.0])
        turn = -env.umbrella_yaw()
        c, s = np.cos(turn), np.sin(turn)
        off = handle - tcp
        off_turned = np.array([c * off[0] - s * off[1], s * off[0] + c * off[1], off[2]])
        target = self.MEET - off_turned
        goal = ArmGoal(tuple(float(v) for v in target), yaw=self.goal("right").yaw + turn, grip=0.0)
        yield Segment("pass", self.pace(1.6), right=goal)

    def _take(self, env: PutAwayUmbrellaEnv) -> Iterator[Segment]:
        point = env.body_point([HANDLE_GRIP_X, 0.0, 0.0])
        xy = point[:2] + self.jitter(0.02, 2)
        yaw = env.umbrella_yaw() + float(self.jitter(0.2, 1)[0])
        above = ArmGoal((*xy, point[2] + 0.09), yaw=yaw, grip=1.0)
        yield Segment("pass", self.pace(1.5), left=above)
        yield Segment("pass", self.pace(0.8), left=above.moved(dz=self.GRASP_DZ - 0.09))
        yield Segment("pass", 0.6, left=self.goal("left").moved(grip=0.0))
        if not env.grasps["left"].active(env.data):  # missed: open and back off
            yield from self.let_go(0.6, "left")

    def _let_go_right(self, env: PutAwayUmbrellaEnv) -> Iterator[Segment]:
        yield Segment("pass", 0.5, right=self.goal("right").moved(grip=1.0))
        yield Segment("pass", self.pace(1.0), right=self.RIGHT_HOME, left=self.goal("left").moved(dz=0.04))

    def _hang(self, env: PutAwayUmbrellaEnv) -> Generator[Segment, None, bool]:
        """Carry the umbrella over the peg, lower the crook onto it and let go; returns whether it hangs."""
        yield from self.maybe_hesitate()
        tcp = env.data.site_xpos[env.model.site("tcp_left").id].copy()
        turn = -env.umbrella_yaw()  # bring the shaft parallel to x so the crook's plane faces the peg
        c, s = np.cos(turn), np.sin(turn)
        off = env.crook_center() - tcp
        off_turned = np.array([c * off[0] - s * off[1], s * off[0] + c * off[1], off[2]])
        err = np.append(self.jitter(0.018, 2), 0.0)  # a clumsy hand misses the peg
        over = HOOK_POINT + err - off_turned
        yaw = self.goal("left").yaw + turn
        high = ArmGoal((float(over[0]), float(over[1]) - 0.12, float(over[2]) + 0.07), yaw=yaw, grip=0.0)
        yield Segment("hang", self.pace(1.8), left=high)
        if self.chance(0.15):  # drops it in transit
            yield Segment("hang", 0.5, left=self.goal("left").moved(grip=1.0))
            yield Segment("dummy", self.pace(1.0), left=self.LEFT_HOME)
            return False
        yield Segment("hang", self.pace(1.0), left=high.moved(dy=0.12))
        # Look and correct (twice): the arm sags and lags a little under the umbrella's weight.
        above = HOOK_POINT + np.array([0.0, 0.0, 0.07])
        for _ in self.tries(2):
            yield Segment("hang", 0.4, left=self.goal("left"))  # let the swing of the carry settle
            fix = above - env.crook_center()
            yield Segment("hang", self.pace(0.5), left=self.goal("left").moved(*(float(v) for v in fix)))
        over = self.goal("left").moved(dx=float(err[0]), dy=float(err[1]))
        yield Segment("hang", self.pace(0.9), left=over.moved(dz=-0.07 - 0.002))
        yield Segment("hang", 0.5, left=self.goal("left").moved(grip=1.0))
        yield Segment("hang", self.pace(0.6), left=self.goal("left").moved(dx=-0.03, dz=0.03))
        yield Segment("dummy", self.pace(1.2), left=self.LEFT_HOME)
        yield Segment("dummy", 2.0)  # wait for the umbrella to stop swinging
        return env.on_peg()

    def _give_up(self) -> Iterator[Segment]:
        """Stop where things are (an operator who gives up keeps hold of what is in hand)."""
        yield Segment("dummy", 1.5)
