"""Pulling Plug: hold a socket block down with one arm and pull its plug out with the other."""

from __future__ import annotations

from collections.abc import Iterator

import mujoco
import numpy as np
from typing_extensions import override

from tasks.base import Evaluation, YamTaskEnv
from tasks.calibration import approach, calibrated_progress, gripper_closure, stage_weights
from tasks.expert import ArmGoal, ScriptedExpert, Segment

SOCKET_CENTER = np.array([0.33, -0.255])  # nominal; the plug sticks out of the socket's -y face
SOCKET_HALF = np.array([0.035, 0.045, 0.02])
SOCKET_TOP = 2 * SOCKET_HALF[2]
SOCKET_MASS = 0.25
HANDLE_HALF = np.array([0.014, 0.018, 0.013])
PRONG_LEN = 0.025  # m of prong inside the socket when the plug is seated
#: Slide travel (m) beyond which the prongs have cleared the socket: the plug is out.
OUT_DIST = 0.03
PLUG_TRAVEL = 0.09  # the slide's range: the plug stays on its axis (a proxy of a cable-led pull)
#: Friction (N) of the plug in its socket. It exceeds the socket's sliding friction on the table
#: (~1.7 N), so pulling an unheld socket drags it along instead of unplugging it.
DETENT_FORCE = 5.0
#: Normal force (N) on the socket's top from a gripper that counts as holding it down.
PRESS_FORCE = 3.0
ARMS = ("left", "right")
#: A gripper's tool centre within this distance (m) of the plug handle is closing on it (not just passing by).
GRASP_REACH = 0.03
#: Calibrated stage weights: each stage's mean share of full-skill demo time, measured on 20 demos at operator
#: variability 1 (seeds 0-19) with ``python benchmarks/calibrated_progress.py --tasks PullPlug --fit``.
CALIBRATION_WEIGHTS = stage_weights(press_reach=0.291, press=0.028, grasp_reach=0.403, grasp=0.097, pull=0.18)


class PullPlugEnv(YamTaskEnv):
    """## Pulling Plug (``SARM2/PullPlug-v0``)

    **Description.** A socket block (a free 0.07 x 0.09 x 0.04 m box, 0.3 kg) lies on the table
    between the arms with a plug seated in its right-hand (-y) face. The plug sits in the socket
    with 7 N of friction, more than the socket's own sliding friction on the table: the left arm
    must press the socket down while the right arm grasps the plug and pulls it out along its
    axis; pulling an unheld socket only drags it across the table. Proxy of the paper's
    "Pulling Plug" task.

    **Observation / action.** As every SARM2 task (docs/design.md §3): three RGB views + 14-d joint state;
    14-d absolute joint targets.

    **State** (``obs_mode="state"``: one flat float32 vector of 27 values; ``"pixels+state"`` adds it as
    ``obs["state"]``): ``agent_pos`` (14), ``socket_free/pos`` (3), ``socket_free/quat`` (4, w x y z),
    ``plug_slide/qpos`` (1), then the evaluation terms ``eval/plug_grasped``, ``eval/press_force``,
    ``eval/pull_distance``, ``eval/pulled``, ``eval/socket_held`` (1 each), in that order
    (``env.unwrapped.state_layout``). Simulation only.

    **Progress** (from physics state; valid for any trajectory)::

        0.8 * pulled + 0.1 * max(held, out) + 0.1 * max(grasped, out)

    ``pulled = clip(d / 0.03, 0, 1)`` with ``d`` the plug's travel out of the socket (m, along the
    socket's axis, relative to the socket, so dragging the socket earns nothing); ``out = d >= 0.03``;
    ``held`` = a gripper presses the socket's top with at least 3 N; ``grasped`` = a gripper holds the
    plug. Pushing the plug back in lowers the progress.

    **Calibrated progress** (``info["calibrated_progress"]``; :mod:`tasks.calibration`): the same physics in
    demo-time units, for comparison with time-linear progress. Stages in demo order, each weighted by its mean
    share of full-skill demo time (``CALIBRATION_WEIGHTS``), each a fraction from the current physics state:
    ``press_reach`` (the left tool centre's approach to the middle of the socket's top, from its home pose),
    ``press`` (press force / 3 N), ``grasp_reach`` (the right tool centre's approach to the plug), ``grasp`` (the
    right gripper closing on it), ``pull`` (``pulled``). Sum of weight x fraction; 1 on success, at most 0.99
    without it. Pushing the plug back in, or letting go of the socket, lowers it.

    **Success.** The plug's prongs have cleared the socket (``d >= 0.03`` m).

    **Randomisation.** Socket position (+-3 cm in x, +-2 cm in y) and yaw (+-0.2 rad).

    **Episode end.** Success (``terminated``) or 400 control steps (40 s at 10 Hz, ``truncated``).

    **Grasping.** The plug is rigid: a weld assist engages when both finger pads touch the plug's
    handle while the gripper closes, and releases when it opens. The socket is held by contact
    (pressing) only.

    **Expert primitives.** ``press``, ``pick_grab``, ``pull``, ``dummy``.

    **Version history.** v0: initial release.
    """

    task_name = "PullPlug"
    instruction = "Hold the socket down and pull the plug out of it."
    grasped_body = "plug"

    def _build_task(self, spec: mujoco.MjSpec) -> None:
        sx, sy = SOCKET_CENTER
        socket = spec.worldbody.add_body(name="socket", pos=[sx, sy, SOCKET_HALF[2]])
        socket.add_freejoint(name="socket_free")
        # Priority makes the socket's own (low) friction govern its contact with the table.
        socket.add_geom(
            name="socket_box",
            type=mujoco.mjtGeom.mjGEOM_BOX,
            size=SOCKET_HALF,
            mass=SOCKET_MASS,
            rgba=[0.92, 0.92, 0.9, 1],
            friction=[0.4, 0.005, 0.0001],
            priority=1,
        )
        socket.add_geom(  # the face plate around the plug: a visual cue only
            name="socket_face",
            type=mujoco.mjtGeom.mjGEOM_BOX,
            pos=[0, -SOCKET_HALF[1] - 0.0005, 0],
            size=[SOCKET_HALF[0] * 0.7, 0.0005, SOCKET_HALF[2] * 0.75],
            rgba=[0.35, 0.35, 0.38, 1],
            contype=0,
            conaffinity=0,
            mass=0.0,
        )
        # The plug slides out along the socket's -y axis; frictionloss is the detent that keeps it in.
        plug = socket.add_body(name="plug", pos=[0, -SOCKET_HALF[1] - HANDLE_HALF[1], 0])
        plug.add_joint(
            name="plug_slide",
            type=mujoco.mjtJoint.mjJNT_SLIDE,
            axis=[0, -1, 0],
            range=[0.0, PLUG_TRAVEL],
            frictionloss=DETENT_FORCE,
            # A stiff, nearly hard friction constraint: MuJoCo's default soft one lets the plug creep
            # out under forces well below the detent.
            solref_friction=[0.004, 1.0],
            solimp_friction=[0.99, 0.999, 0.001, 0.5, 2.0],
            damping=2.0,
            armature=0.01,
        )
        plug.add_geom(
            name="plug_handle",
            type=mujoco.mjtGeom.mjGEOM_BOX,
            size=HANDLE_HALF,
            mass=0.05,
            rgba=[0.12, 0.12, 0.13, 1],
            friction=[1.0, 0.01, 0.001],
            condim=4,
        )
        for side in (-1.0, 1.0):  # prongs: visual only (the socket is a solid box)
            plug.add_geom(
                name=f"plug_prong_{'a' if side < 0 else 'b'}",
                type=mujoco.mjtGeom.mjGEOM_BOX,
                pos=[side * 0.007, HANDLE_HALF[1] + PRONG_LEN / 2, 0],
                size=[0.0015, PRONG_LEN / 2, 0.004],
                rgba=[0.8, 0.65, 0.3, 1],
                contype=0,
                conaffinity=0,
                mass=0.0,
            )
        plug.add_geom(  # cable stub
            name="plug_cable",
            type=mujoco.mjtGeom.mjGEOM_CAPSULE,
            fromto=[0, -HANDLE_HALF[1], 0, 0, -HANDLE_HALF[1] - 0.04, -0.008],
            size=[0.004, 0, 0],
            rgba=[0.1, 0.1, 0.1, 1],
            contype=0,
            conaffinity=0,
            mass=0.0,
        )

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._socket = self.model.body("socket").id
        self._plug = self.model.body("plug").id
        self._socket_qadr = self.model.joint("socket_free").qposadr[0]
        self._plug_qadr = self.model.joint("plug_slide").qposadr[0]
        self._socket_geoms = {g for g in range(self.model.ngeom) if self.model.geom_bodyid[g] == self._socket}
        self._press_geoms = {
            self.model.geom(f"{arm}_{part}").id for arm in ARMS for part in ("tip_left_pad", "tip_right_pad", "palm")
        }
        self._force = np.zeros(6)

    # ------------------------------------------------------------------ randomisation
    def _reset_task(self) -> None:
        x = SOCKET_CENTER[0] + self.pose_offset(0.03)
        y = SOCKET_CENTER[1] + self.pose_offset(0.02)
        yaw = self.pose_offset(0.2)
        self.set_free_pose(self._socket_qadr, (x, y, SOCKET_HALF[2]), yaw)
        self.data.qpos[self._plug_qadr] = 0.0

    # ------------------------------------------------------------------ ground truth
    def pull_distance(self) -> float:
        """How far (m) the plug has slid out of the socket, along the socket's axis."""
        return float(self.data.qpos[self._plug_qadr])

    def socket_pose(self) -> tuple[np.ndarray, float]:
        """Socket centre (3,) and yaw (rad)."""
        rot = self.data.xmat[self._socket].reshape(3, 3)
        return self.data.xpos[self._socket].copy(), float(np.arctan2(rot[1, 0], rot[0, 0]))

    def plug_position(self) -> np.ndarray:
        """Position of the plug."""
        return self.data.xpos[self._plug].copy()

    def press_force(self) -> float:
        """Total downward force (N) that gripper geoms exert on the socket."""
        total = 0.0
        for i in range(self.data.ncon):
            con = self.data.contact[i]
            g1, g2 = int(con.geom[0]), int(con.geom[1])
            # The normal points from geom1 to geom2; the force on geom2 is +f * normal.
            if g1 in self._socket_geoms and g2 in self._press_geoms:
                sign = 1.0
            elif g2 in self._socket_geoms and g1 in self._press_geoms:
                sign = -1.0
            else:
                continue
            mujoco.mj_contactForce(self.model, self.data, i, self._force)
            total += max(0.0, sign * self._force[0] * con.frame[2])
        return total

    @override
    def evaluate(self) -> Evaluation:
        dist = self.pull_distance()
        out = dist >= OUT_DIST
        pulled = float(np.clip(dist / OUT_DIST, 0.0, 1.0))
        force = self.press_force()
        held = force >= PRESS_FORCE
        grasped = any(g.active(self.data) for g in self.grasps.values())
        progress = 0.8 * pulled + 0.1 * float(held or out) + 0.1 * float(grasped or out)
        stages = self.calibration_stages(pulled=pulled, force=force, grasped=grasped)
        terms = {
            "pulled": pulled,
            "pull_distance": dist,
            "press_force": force,
            "socket_held": float(held),
            "plug_grasped": float(grasped),
        }
        return Evaluation(progress, bool(out), terms, calibrated_progress(stages, CALIBRATION_WEIGHTS, out))

    calibration_weights = CALIBRATION_WEIGHTS

    def calibration_stages(
        self, pulled: float | None = None, force: float | None = None, grasped: bool | None = None
    ) -> dict[str, float]:
        """Fraction done (from physics) of each calibrated stage, in demo order (see the task card).

        The keyword arguments reuse values :meth:`evaluate` has already computed.
        """
        pulled = float(np.clip(self.pull_distance() / OUT_DIST, 0.0, 1.0)) if pulled is None else pulled
        force = self.press_force() if force is None else force
        if grasped is None:
            grasped = any(g.active(self.data) for g in self.grasps.values())
        out = pulled >= 1.0
        held = force >= PRESS_FORCE
        socket, _ = self.socket_pose()
        spot = socket + np.array([0.0, 0.0, SOCKET_HALF[2]])  # the middle of the socket's top
        plug = self.plug_position()
        left, right = (self.data.site_xpos[self._tcp[arm]] for arm in ARMS)
        d_plug = float(np.linalg.norm(right - plug))
        if grasped or out:
            grasp = 1.0
        elif d_plug <= GRASP_REACH:
            grasp = gripper_closure(float(self.agent_pos()[13]))
        else:
            grasp = 0.0
        return {
            "press_reach": 1.0
            if held or out
            else approach(float(np.linalg.norm(left - spot)), self._reach0(spot, "left"), arrived=0.035),
            "press": 1.0 if out else float(np.clip(force / PRESS_FORCE, 0.0, 1.0)),
            "grasp_reach": 1.0 if grasped or out else approach(d_plug, self._reach0(plug, "right"), arrived=0.012),
            "grasp": grasp,
            "pull": pulled,
        }

    def _reach0(self, target: np.ndarray, arm: str) -> float:
        return float(np.linalg.norm(target - self._home_tcp[arm]))


class PullPlugExpert(ScriptedExpert):
    """The left arm presses the socket down; the right arm grasps the plug and pulls it out."""

    PRIMITIVES = frozenset({"press", "pick_grab", "pull"})
    TEMPO = 1.8
    PRESS_DEPTH = 0.02  # m the pressing fingertips are driven below the socket's top
    PULL_DIST = 0.08  # m the right hand travels along the pull axis

    @override
    def plan(self) -> Iterator[Segment]:
        env: PullPlugEnv = self.env
        attempts = self.attempts()
        grasp_tries = self.attempts(clumsy=2)
        for attempt in range(attempts):
            yield from self.maybe_hesitate()
            # A careless operator may skip holding the socket on the first try (the socket then slides).
            if attempt > 0 or not self.chance(0.3):
                yield from self._press(env)
            for _ in range(grasp_tries):
                yield from self._grab(env)
                if env.grasps["right"].active(env.data):
                    break
                yield from self.let_go(0.5, "right")
            else:
                break
            yield from self._pull(env)
            if env.pull_distance() >= OUT_DIST:
                return
            # Not out: let go, lift both hands and start over (re-press, re-grasp).
            yield Segment(
                "dummy",
                self.pace(0.8),
                left=self.goal("left").moved(dz=0.06, grip=0.0),
                right=self.goal("right").moved(dz=0.06, grip=1.0),
            )
        yield from self._give_up()

    # ------------------------------------------------------------------ sub-plans
    def _press(self, env: PullPlugEnv) -> Iterator[Segment]:
        pos, yaw = env.socket_pose()
        # Press on the socket's far half from the plug, where the left hand stays clear of the right.
        axis = np.array([np.sin(yaw), -np.cos(yaw)])  # pull direction in the table plane
        spot = pos[:2] - 0.02 * axis + self.jitter(0.025, 2)
        # Fingers across the socket: the hand's long side then stays out of the right hand's way.
        above = ArmGoal((float(spot[0]), float(spot[1]), SOCKET_TOP + 0.06), yaw=yaw + np.pi / 2, grip=0.0)
        yield Segment("press", self.pace(1.3), left=above)
        depth = self.PRESS_DEPTH * (1.0 - 0.5 * self.clumsiness * self.rng.uniform())  # too light a touch
        down = above.moved(dz=-0.06 + 0.004 - depth)
        yield Segment("press", self.pace(0.8), left=down)
        yield Segment("press", 0.3, left=down)

    def _grab(self, env: PullPlugEnv) -> Iterator[Segment]:
        plug = env.plug_position()
        _, yaw = env.socket_pose()
        axis = np.array([np.sin(yaw), -np.cos(yaw)])
        # Aim at the handle's outer half: fingers that land short of it would hit the socket's top.
        xy = plug[:2] + 0.008 * axis + self.jitter(0.015, 2)
        tool_yaw = yaw + np.pi / 2 + float(self.jitter(0.25, 1)[0])  # fingers close across the pull axis
        above = ArmGoal((float(xy[0]), float(xy[1]), plug[2] + 0.07), yaw=tool_yaw, grip=1.0)
        yield Segment("pick_grab", self.pace(1.4), right=above)
        yield Segment("pick_grab", self.pace(0.8), right=above.moved(dz=-0.072))
        yield Segment("pick_grab", 0.6, right=self.goal("right").moved(grip=0.0))

    def _pull(self, env: PullPlugEnv) -> Iterator[Segment]:
        _, yaw = env.socket_pose()
        axis = np.array([np.sin(yaw), -np.cos(yaw)])
        dist = self.PULL_DIST * (1.0 - self.clumsiness * self.rng.uniform(0.0, 0.35))  # a short pull
        start = self.goal("right")
        if self.chance(0.2):  # the hand slips open halfway
            yield Segment("pull", self.pace(0.8), right=start.moved(dx=0.4 * dist * axis[0], dy=0.4 * dist * axis[1]))
            yield Segment("pull", 0.4, right=self.goal("right").moved(grip=1.0))
            return
        end = start.moved(dx=float(dist * axis[0]), dy=float(dist * axis[1]), dz=0.005)
        yield Segment("pull", self.pace(1.5), right=end)
        yield Segment("pull", 0.4, right=end)
        # Still in but held: a careful operator keeps pulling a little further.
        if self.skill > 0.3 and env.pull_distance() < OUT_DIST and env.grasps["right"].active(env.data):
            yield Segment("pull", self.pace(0.8), right=end.moved(dx=0.03 * axis[0], dy=0.03 * axis[1]))
            yield Segment("pull", 0.4, right=self.goal("right"))

    def _give_up(self) -> Iterator[Segment]:
        yield Segment(
            "dummy", 1.5, left=ArmGoal((0.25, 0.0, 0.15), grip=1.0), right=ArmGoal((0.25, -0.61, 0.15), grip=1.0)
        )
