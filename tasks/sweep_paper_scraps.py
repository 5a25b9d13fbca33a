"""Sweeping Paper Scraps: pick up a hand broom, sweep paper scraps into a dustpan zone, put the broom back."""

from __future__ import annotations

from collections.abc import Iterator

import mujoco
import numpy as np
from typing_extensions import override

from tasks.base import Evaluation, YamTaskEnv
from tasks.calibration import approach, calibrated_progress, gripper_closure, stage_weights
from tasks.expert import ArmGoal, ScriptedExpert, Segment
from tasks.station import add_object_floor, add_table_patch

#: Collision bit of the scraps: they touch an invisible plane at the table top, the broom head and
#: the dustpan lip, and nothing else (no scrap-scrap or scrap-finger contacts: cheap, DESIGN §7).
SCRAP_BIT = 4
N_SCRAPS = 30
SCRAP_HALF = np.array([0.007, 0.006, 0.0015])
SCRAP_REGION_LO = np.array([0.27, -0.33])  # scraps are scattered over this xy rectangle
SCRAP_REGION_HI = np.array([0.40, -0.14])
ZONE_LO = np.array([0.13, -0.36])  # the dustpan zone, in front of the robot
ZONE_HI = np.array([0.215, -0.115])
SUCCESS_FRACTION = 0.9
HEAD_HALF = np.array([0.016, 0.07, 0.012])  # broom head: wide along its local y
POST_HALF = np.array([0.008, 0.008, 0.045])  # the handle post rising from the head's centre
BROOM_REST = np.array([0.31, -0.035])  # the broom's marked rest spot
REST_HALF = np.array([0.04, 0.09])
#: Calibrated progress: where the hand holds the broom's post (m above the head's centre), how close (m) a tool
#: centre must come to that point to have arrived, and how far (m) the broom is carried back to its rest spot.
POST_GRIP_Z = 0.05
ARRIVED = 0.015
REST_START = 0.2
#: How far (m) the picked broom is from behind the scraps, where the first stroke starts, and the swept fraction
#: that shows a stroke has begun.
SCRAPS_START = 0.17
STARTED = 0.1
#: Calibrated stage weights: each stage's mean share of full-skill demo time, measured on 20 demos at operator
#: variability 1 (seeds 0-19) with ``python benchmarks/calibrated_progress.py --tasks SweepPaperScraps --fit``.
CALIBRATION_WEIGHTS = stage_weights(
    reach=0.116, grasp=0.036, to_scraps=0.085, sweep=0.507, put_back=0.194, release=0.062
)


def zone_distance(xy: np.ndarray) -> np.ndarray:
    """Distance (m) from each point of ``xy`` (N, 2) to the dustpan zone's rectangle (0 inside)."""
    return np.linalg.norm(np.maximum(np.maximum(ZONE_LO - xy, xy - ZONE_HI), 0.0), axis=1)


class SweepPaperScrapsEnv(YamTaskEnv):
    """## Sweeping Paper Scraps (``SARM2/SweepPaperScraps-v0``)

    **Description.** 30 small, light paper scraps (flat boxes with free joints) lie scattered on the
    table. A hand broom (a wide head with an upright handle post) rests on a marked spot to the left.
    The left arm picks the broom up by its post, sweeps the scraps towards the robot into a dustpan
    zone (a marked tray with a low lip at its back) in several strokes, then puts the broom back on
    its rest spot. Proxy of the paper's "Sweeping Paper Scraps" task.

    **Observation / action.** As every SARM2 task (docs/design.md §3): three RGB views + 14-d joint state;
    14-d absolute joint targets.

    **State** (``obs_mode="state"``: one flat float32 vector of 234 values; ``"pixels+state"`` adds it as
    ``obs["state"]``): ``agent_pos`` (14), ``broom_free/pos`` (3), ``broom_free/quat`` (4, w x y z),
    ``scrap_<k>_free/pos`` (3) and ``scrap_<k>_free/quat`` (4) per scrap for k = 0..29, then the
    evaluation terms ``eval/broom_at_rest``, ``eval/broom_held``, ``eval/in_zone`` (1 each), in that order
    (``env.unwrapped.state_layout``). Simulation only.

    **Progress** (from the scraps' and the broom's poses; valid for any trajectory)::

        0.9 * in_zone + 0.1 * in_zone * broom_at_rest

    ``in_zone`` is the fraction of scraps whose centre lies inside the zone's rectangle on the table;
    scraps pushed or knocked out of it take it back down. ``broom_at_rest`` is 1 when the broom stands
    upright on its rest spot, released.

    **Calibrated progress** (``info["calibrated_progress"]``; :mod:`tasks.calibration`): the same physics in
    demo-time units, for comparison with time-linear progress. Stages in demo order, each weighted by its mean
    share of full-skill demo time (``CALIBRATION_WEIGHTS``), each a fraction from the current physics state:
    ``reach`` (the left tool centre's approach to the broom's post, from its home pose), ``grasp`` (the left
    gripper closing on it), ``to_scraps`` (the held broom's approach to behind the scraps, until a stroke moves
    them), ``sweep`` (the mean over scraps of their way to the zone, as a fraction of their distance at reset;
    1 in the zone), ``put_back`` (once 90 % are in, the lifted broom's approach to its rest spot), ``release``
    (the gripper opening on the spot). Sum of weight x fraction; 1 on success, at most 0.99 without it. Scraps
    knocked back out lower it. Strokes that move no scrap (the demos' later strokes often do not) change no
    physics, so calibrated progress is flat through them.

    **Success.** At least 90 % of the scraps in the zone and the broom released on its rest spot.

    **Randomisation.** Scrap positions (uniform over a 13 x 19 cm area) and yaws; broom position
    (+-1.5 cm per axis) and yaw (+-0.15 rad).

    **Episode end.** Success (``terminated``) or 600 control steps (60 s at 10 Hz, ``truncated``).

    **Grasping.** The broom is rigid: a weld assist engages when both finger pads touch the post
    while the gripper closes and releases when it opens (tasks/grasping.py).

    **Expert primitives.** ``pick_grab``, ``sweep``, ``place``, ``dummy``.

    **Version history.** v0: initial release.
    """

    task_name = "SweepPaperScraps"
    instruction = "Sweep the paper scraps into the dustpan with the broom, then put the broom back."
    grasped_body = "broom"

    def _build_task(self, spec: mujoco.MjSpec) -> None:
        wb = spec.worldbody
        # Resting scraps fall asleep and cost nothing until the broom wakes them (DESIGN §7 speed).
        spec.option.enableflags |= mujoco.mjtEnableBit.mjENBL_SLEEP
        spec.option.sleep_tolerance = 0.01  # light scraps creep at ~mm/s on soft contacts
        # Scraps rest on an invisible plane at the table top (plane-box contacts are the cheapest).
        add_object_floor(wb, "scrap_floor", SCRAP_BIT, [0.6, 0.005, 0.0001])
        zone_c, zone_h = (ZONE_LO + ZONE_HI) / 2, (ZONE_HI - ZONE_LO) / 2
        add_table_patch(wb, "dustpan", zone_c, zone_h, [0.25, 0.3, 0.45, 1])
        wb.add_geom(
            name="dustpan_lip",
            type=mujoco.mjtGeom.mjGEOM_BOX,
            pos=[ZONE_LO[0] - 0.004, zone_c[1], 0.006],
            size=[0.004, zone_h[1], 0.006],
            rgba=[0.2, 0.24, 0.38, 1],
            contype=0,
            conaffinity=SCRAP_BIT,
        )
        add_table_patch(wb, "broom_rest", BROOM_REST, REST_HALF, [0.5, 0.42, 0.3, 1])
        broom = wb.add_body(name="broom", pos=[*BROOM_REST, HEAD_HALF[2]])
        broom.add_freejoint(name="broom_free")
        broom.add_geom(
            name="broom_head",
            type=mujoco.mjtGeom.mjGEOM_BOX,
            size=HEAD_HALF,
            mass=0.08,
            rgba=[0.55, 0.25, 0.15, 1],
            friction=[0.15, 0.005, 0.0001],
            priority=2,  # its low friction wins against the table's: the head slides when swept
            conaffinity=1 | SCRAP_BIT,
        )
        broom.add_geom(
            name="broom_bristles",
            type=mujoco.mjtGeom.mjGEOM_BOX,
            pos=[0, 0, -0.6 * HEAD_HALF[2]],
            size=[HEAD_HALF[0] * 1.05, HEAD_HALF[1] * 0.98, HEAD_HALF[2] * 0.45],
            rgba=[0.9, 0.8, 0.35, 1],
            contype=0,
            conaffinity=0,
            mass=0.0,
        )
        broom.add_geom(
            name="broom_post",
            type=mujoco.mjtGeom.mjGEOM_BOX,
            pos=[0, 0, HEAD_HALF[2] + POST_HALF[2]],
            size=POST_HALF,
            mass=0.02,
            rgba=[0.3, 0.3, 0.32, 1],
            friction=[1.0, 0.01, 0.001],
            condim=4,
        )
        for k in range(N_SCRAPS):
            scrap = wb.add_body(name=f"scrap_{k}", pos=[0.3, -0.2, SCRAP_HALF[2]])
            # Damping settles a rocking one-point contact quickly (paper does not roll), so swept
            # scraps fall asleep again soon.
            scrap.add_freejoint(name=f"scrap_{k}_free").damping = [0.002, 0, 0]
            shade = 0.85 + 0.1 * ((k * 7) % 5) / 4
            # A flat ellipsoid touches the table at one point (a box makes four contacts): a quarter
            # of the contact rows. A box of the same footprint is what the cameras see.
            scrap.add_geom(
                name=f"scrap_{k}",
                type=mujoco.mjtGeom.mjGEOM_ELLIPSOID,
                size=SCRAP_HALF * np.array([1.15, 1.15, 2.0]),
                mass=0.002,
                rgba=[0, 0, 0, 0],
                group=3,
                friction=[0.6, 0.005, 0.0001],
                contype=SCRAP_BIT,
                conaffinity=0,
                condim=3,
            )
            scrap.add_geom(
                name=f"scrap_{k}_paper",
                type=mujoco.mjtGeom.mjGEOM_BOX,
                size=SCRAP_HALF * np.array([1.0, 1.0, 0.9]),
                rgba=[shade, shade, shade * 0.97, 1],
                contype=0,
                conaffinity=0,
                mass=0.0,
            )

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._broom = self.model.body("broom").id
        self._broom_qadr = int(self.model.joint("broom_free").qposadr[0])
        self._scrap_bodies = np.array([self.model.body(f"scrap_{k}").id for k in range(N_SCRAPS)])
        self._scrap_qadr = np.array([self.model.joint(f"scrap_{k}_free").qposadr[0] for k in range(N_SCRAPS)])
        self._scrap_d0 = np.ones(N_SCRAPS)  # each scrap's distance to the zone at reset

    # ------------------------------------------------------------------ randomisation
    def _reset_task(self) -> None:
        rng = self.np_random
        xy = rng.uniform(SCRAP_REGION_LO, SCRAP_REGION_HI, size=(N_SCRAPS, 2))
        yaw = rng.uniform(-np.pi, np.pi, size=N_SCRAPS)
        for k, adr in enumerate(self._scrap_qadr):
            self.set_free_pose(adr, (*xy[k], SCRAP_HALF[2]), yaw[k])
        self._scrap_d0 = np.maximum(zone_distance(xy), 0.02)
        bxy = BROOM_REST + self.pose_offset(0.015, size=2)
        byaw = self.pose_offset(0.15)
        self.set_free_pose(self._broom_qadr, (*bxy, HEAD_HALF[2]), byaw)

    # ------------------------------------------------------------------ state queries
    def scrap_positions(self) -> np.ndarray:
        """World positions (N, 3) of the scraps."""
        return self.data.xpos[self._scrap_bodies].copy()

    def scraps_in_zone(self) -> np.ndarray:
        """Mask (N,) of scraps lying inside the dustpan zone."""
        pos = self.data.xpos[self._scrap_bodies]
        inside = np.all((pos[:, :2] >= ZONE_LO) & (pos[:, :2] <= ZONE_HI), axis=1)
        return inside & (pos[:, 2] < 0.02)

    def broom_pose(self) -> tuple[np.ndarray, float]:
        """Position (3,) of the broom head's centre and its yaw (rad)."""
        rot = self.data.xmat[self._broom].reshape(3, 3)
        return self.data.xpos[self._broom].copy(), float(np.arctan2(rot[1, 0], rot[0, 0]))

    def broom_held(self) -> bool:
        """Whether the broom is held."""
        return any(g.active(self.data) for g in self.grasps.values())

    def broom_at_rest(self) -> bool:
        """The broom stands upright on its rest spot, released."""
        pos = self.data.xpos[self._broom]
        upright = self.data.xmat[self._broom][8] > 0.9
        on_spot = bool(np.all(np.abs(pos[:2] - BROOM_REST) <= REST_HALF))
        return on_spot and upright and pos[2] < HEAD_HALF[2] + 0.01 and not self.broom_held()

    @override
    def evaluate(self) -> Evaluation:
        frac = float(self.scraps_in_zone().mean())
        at_rest = self.broom_at_rest()
        progress = 0.9 * frac + 0.1 * frac * float(at_rest)
        success = frac >= SUCCESS_FRACTION and at_rest
        return Evaluation(
            progress,
            bool(success),
            {"in_zone": frac, "broom_held": float(self.broom_held()), "broom_at_rest": float(at_rest)},
            calibrated_progress(self.calibration_stages(), CALIBRATION_WEIGHTS, bool(success)),
        )

    calibration_weights = CALIBRATION_WEIGHTS

    def calibration_stages(self) -> dict[str, float]:
        """Fraction done (from physics) of each calibrated stage, in demo order (see the task card)."""
        held = self.broom_held()
        swept = self.scraps_in_zone().mean() >= SUCCESS_FRACTION
        # The broom starts on its rest spot: being there counts only as putting it back after the sweeping.
        at_rest = self.broom_at_rest() and swept
        head = self.data.xpos[self._broom]
        tcp = self.data.site_xpos[self._tcp["left"]]
        opening = float(self.agent_pos()[6])
        # Pick the broom up by its post ...
        post = head + np.array([0.0, 0.0, POST_GRIP_Z])
        d_post = float(np.linalg.norm(tcp - post))
        picked = held or at_rest
        reach = 1.0 if picked else approach(d_post, float(np.linalg.norm(self._home_tcp["left"] - post)), ARRIVED)
        grasp = 1.0 if picked else (gripper_closure(opening) if d_post <= 2 * ARRIVED else 0.0)
        # ... sweep: each scrap's way to the zone, as a fraction of its distance at reset (in the zone counts 1;
        # knocked back out, it counts less again). Success needs 90 % in the zone: so does a full stage.
        pos = self.data.xpos[self._scrap_bodies]
        moved = np.clip(1.0 - zone_distance(pos[:, :2]) / self._scrap_d0, 0.0, 1.0)
        moved[self.scraps_in_zone()] = 1.0
        sweep = float(np.clip(moved.mean(), 0.0, 1.0))
        # Before the first stroke moves anything, the broom is brought behind the scraps.
        if sweep >= STARTED or swept:
            to_scraps = 1.0
        elif held:
            behind = np.array([SCRAP_REGION_HI[0] + 0.035, np.clip(head[1], SCRAP_REGION_LO[1], SCRAP_REGION_HI[1])])
            to_scraps = approach(float(np.linalg.norm(head[:2] - behind)), SCRAPS_START, arrived=0.01)
        else:
            to_scraps = 0.0
        # ... and put it back on its rest spot (once lifted off the table: strokes slide it about).
        on_spot = bool(np.all(np.abs(head[:2] - BROOM_REST) <= REST_HALF))
        lifted = head[2] - HEAD_HALF[2] > 0.02
        if at_rest:
            put_back = release = 1.0
        elif held and swept and (lifted or on_spot):
            put_back = approach(float(np.linalg.norm(head[:2] - BROOM_REST)), REST_START, arrived=0.01)
            release = float(np.clip(opening, 0.0, 1.0)) if on_spot and not lifted else 0.0
        else:
            put_back = release = 0.0
        return {
            "reach": reach,
            "grasp": grasp,
            "to_scraps": to_scraps,
            "sweep": sweep,
            "put_back": put_back,
            "release": release,
        }


class SweepPaperScrapsExpert(ScriptedExpert):
    """Pick the broom by its post, sweep band by band towards the robot, clean up strays, put it back."""

    TEMPO = 1.45
    PRIMITIVES = frozenset({"pick_grab", "sweep", "place"})
    GRIP_ABOVE_HEAD = 0.05  # tool centre height above the head's centre when holding the post
    SWEEP_CLEARANCE = 0.001  # head bottom above the table while sweeping
    #: Head centre x where a stroke ends: the scraps in front of it are then inside the zone.
    STROKE_END_X = ZONE_HI[0] - 0.03 + HEAD_HALF[0]
    BANDS = (-0.175, -0.24, -0.305)  # y of the three planned strokes
    REST = {"left": ArmGoal((0.25, 0.0, 0.15)), "right": ArmGoal((0.25, -0.61, 0.15))}

    @override
    def plan(self) -> Iterator[Segment]:
        env: SweepPaperScrapsEnv = self.env
        yield from self.maybe_hesitate()
        if not (yield from self.retry(lambda: self._pick(env), lambda: env.grasps["left"].active(env.data))):
            yield from self._give_up()
            return
        for band in self.vary_order(self.BANDS):
            yield from self._stroke(env, band, float(SCRAP_REGION_HI[0]) + 0.035)
        # Clean-up strokes for the strays (fewer for less skilled operators).
        for _ in range(2 if self.skill > 0.5 else (1 if self.skill > 0.3 else 0)):
            stray = self._strays(env)
            if len(stray) < 2:
                break
            yield from self._stroke(env, float(np.median(stray[:, 1])), float(stray[:, 0].max()) + 0.035)
        yield from self._put_back(env)

    # ------------------------------------------------------------------ helpers
    def _strays(self, env: SweepPaperScrapsEnv) -> np.ndarray:
        pos = env.scrap_positions()
        return pos[~env.scraps_in_zone()]

    def _holding(self, env: SweepPaperScrapsEnv) -> bool:
        return env.grasps["left"].active(env.data)

    # ------------------------------------------------------------------ sub-plans
    def _pick(self, env: SweepPaperScrapsEnv) -> Iterator[Segment]:
        pos, yaw = env.broom_pose()
        xy = pos[:2] + self.jitter(0.02, 2)
        grip_z = pos[2] + self.GRIP_ABOVE_HEAD + float(self.jitter(0.015, 1)[0])
        above = ArmGoal((float(xy[0]), float(xy[1]), grip_z + 0.07), yaw=yaw, grip=1.0)
        yield Segment("pick_grab", self.pace(1.6), left=above)
        yield from self.maybe_hesitate()
        yield Segment("pick_grab", self.pace(0.9), left=above.moved(dz=-0.07))
        yield Segment("pick_grab", 0.6, left=self.goal("left").moved(grip=0.0))
        yield Segment("pick_grab", self.pace(0.8), left=self.goal("left").moved(dz=0.06))
        if not self._holding(env):  # missed: open and look again
            yield from self.let_go(0.5, "left", rise=0.02)

    def _stroke(self, env: SweepPaperScrapsEnv, band_y: float, start_x: float) -> Iterator[Segment]:
        """One stroke towards the robot along ``band_y``, starting behind the scraps at ``start_x``."""
        if not self._holding(env):
            return
        yield from self.maybe_hesitate()
        # Where the tool must be to put the head at a given place (the post is gripped off-centre).
        head, head_yaw = env.broom_pose()
        tool = np.asarray(self.goal("left").pos)
        c, s = np.cos(head_yaw), np.sin(head_yaw)
        offset = np.array([[c, s], [-s, c]]) @ (tool[:2] - head[:2])  # in the head's frame = after the turn
        grip_above_head = tool[2] - head[2]
        yaw = self.goal("left").yaw - head_yaw  # turns the head square to the stroke (yaw 0)
        band_y = float(np.clip(band_y + self.jitter(0.025, 1)[0], -0.31, -0.17))
        lift = max(0.0, float(self.rng.normal(0.001, 0.003))) * self.clumsiness  # too light a touch
        z = HEAD_HALF[2] + self.SWEEP_CLEARANCE + grip_above_head + lift
        end_x = self.STROKE_END_X + self.clumsiness * self.rng.uniform(0.0, 0.06)  # stops short
        start = ArmGoal((start_x + offset[0], band_y + offset[1], z + 0.05), yaw=yaw, grip=0.0)
        yield Segment("sweep", self.pace(1.3), left=start)
        yield Segment("sweep", self.pace(0.6), left=start.moved(dz=-0.05))
        yield Segment("sweep", self.pace(2.2), left=start.moved(dz=-0.05, dx=end_x - start_x))
        if self.chance(0.1):  # lets the broom go mid-task
            yield Segment("sweep", 0.5, left=self.goal("left").moved(grip=1.0))
            yield Segment("dummy", 0.6, left=self.goal("left").moved(dz=0.05))
            return
        yield Segment("sweep", self.pace(0.6), left=self.goal("left").moved(dz=0.05))

    def _put_back(self, env: SweepPaperScrapsEnv) -> Iterator[Segment]:
        if not self._holding(env):
            yield from self._give_up()
            return
        yield from self.maybe_hesitate()
        head, head_yaw = env.broom_pose()
        tool = np.asarray(self.goal("left").pos)
        offset = tool[:2] - head[:2]
        target = BROOM_REST + offset + self.jitter(0.02, 2)
        above = ArmGoal((float(target[0]), float(target[1]), tool[2] + 0.02), yaw=self.goal("left").yaw, grip=0.0)
        yield Segment("place", self.pace(1.5), left=above)
        down = tool[2] - (head[2] - HEAD_HALF[2]) + 0.003  # head bottom 3 mm above the table
        yield Segment("place", self.pace(0.8), left=above.moved(dz=down - above.pos[2]))
        yield Segment("place", 0.5, left=self.goal("left").moved(grip=1.0))
        yield Segment("place", self.pace(0.8), left=self.goal("left").moved(dz=0.07))
        yield Segment("dummy", self.pace(1.0), left=self.REST["left"])

    def _give_up(self) -> Iterator[Segment]:
        yield Segment("dummy", 1.5, left=ArmGoal((0.25, 0.0, 0.15), grip=1.0), right=self.REST["right"])
