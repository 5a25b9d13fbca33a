"""Folding Shorts: fold a cloth garment in half, then in half again, with both arms."""

from __future__ import annotations

from collections.abc import Iterator

import mujoco
import numpy as np

from tasks.base import Evaluation, YamTaskEnv
from tasks.expert import ArmGoal, ScriptedExpert, Segment
from tasks.grasping import PinchGrasp
from tasks.station import STATION_CENTER_Y

GRID = (9, 9)  # vertices along x (depth) and y (width)
SPACING = 0.025  # m: the garment is 0.20 m x 0.20 m
CLOTH_Z = 0.004
FOLD_TOL = 0.035  # m: corner pairs closer than this count as folded onto each other
_CLOTH_XML = f"""<mujoco><worldbody>
<flexcomp name="cloth" type="grid" count="{GRID[0]} {GRID[1]} 1" spacing="{SPACING} {SPACING} {SPACING}"
          pos="0.30 {STATION_CENTER_Y} {CLOTH_Z}" radius="0.003" dim="2" mass="0.06" rgba="0.2 0.32 0.62 1">
  <edge equality="true" damping="0.002"/>
  <contact selfcollide="none" condim="3" solref="0.006 1" friction="0.9 0.005 0.0001" contype="2" conaffinity="2"/>
</flexcomp></worldbody></mujoco>"""


def _vertex(ix: int, iy: int) -> int:
    return ix * GRID[1] + iy


# Landmarks, by grid index: far (+x) / near (-x) and left (+y) / right (-y) corners; mid-edge points.
_NX, _NY = GRID[0] - 1, GRID[1] - 1
LANDMARKS = {
    "far_left": _vertex(_NX, _NY),
    "far_right": _vertex(_NX, 0),
    "near_left": _vertex(0, _NY),
    "near_right": _vertex(0, 0),
    "mid_left": _vertex(_NX // 2, _NY),
    "mid_right": _vertex(_NX // 2, 0),
}
#: First fold (far edge onto near edge) and second fold (left end onto right end) corner pairs.
FOLD1_PAIRS = (("far_left", "near_left"), ("far_right", "near_right"))
FOLD2_PAIRS = (("near_left", "near_right"), ("mid_left", "mid_right"))


class FoldShortsEnv(YamTaskEnv):
    """## Folding Shorts (``SARM2/FoldShorts-v0``)

    **Description.** A garment (a 0.20 x 0.20 m inextensible ``flexcomp`` cloth, 9 x 9 vertices)
    lies flat between the arms. Both arms pinch the far corners and fold the far half onto the near
    half; then the right arm holds the strip down while the left arm folds its left end onto its right
    end. Proxy of the paper's "Folding Shorts" task.

    **Observation / action.** As every SARM2 task (DESIGN.md §3): three RGB views + 14-d joint state;
    14-d absolute joint targets.

    **State** (``obs_mode="state"``: one flat float32 vector of 260 values; ``"pixels+state"`` adds it as
    ``obs["state"]``): ``agent_pos`` (14), ``shorts/cloth/vertices`` (243: 81 vertices x (x, y, z)), then the
    evaluation terms ``eval/fold1``, ``eval/fold2``, ``eval/held`` (1 each), in that order
    (``env.unwrapped.state_layout``). Simulation only.

    **Progress** (from the cloth's vertex positions; valid for any trajectory)::

        0.45 * fold1 + 0.45 * fold2 + 0.1 * success

    ``fold1`` = mean over (far-left, near-left), (far-right, near-right) of ``clip(1 - d / d0, 0, 1)``
    with ``d0`` the flat distance; ``fold2`` the same over (near-left, near-right), (mid-left,
    mid-right). Unfolding the cloth again brings the distances, and the progress, back.

    **Success.** Every pair above closer than 3.5 cm, all corners within 3 cm of the table, and no
    gripper holding the cloth.

    **Randomisation.** Garment position (+-2 cm in x, +-3 cm in y) and yaw (+-0.15 rad).

    **Episode end.** Success (``terminated``) or 700 control steps (70 s at 10 Hz, ``truncated``).

    **Grasping.** Cloth is pinched: closing fingers connect to the nearest vertices
    (up to 8 within 3 cm: both layers when the cloth is folded); opening releases. A pinch can miss.

    **Expert primitives.** ``pick_grab``, ``fold_flatten``, ``place``, ``dummy``.

    **Version history.** v0: initial release.
    """

    task_name = "FoldShorts"
    instruction = "Fold the shorts in half, then in half again."
    max_episode_steps = 700
    deformable = True

    def _build_task(self, spec: mujoco.MjSpec) -> None:
        # The cloth touches the table (bit 2 added to its affinity) but not the fingers: grasping it
        # is the pinch's job, and finger pads sweeping through a soft cloth only tear the fold apart.
        spec.geom("table").conaffinity = 3
        child = mujoco.MjSpec.from_string(_CLOTH_XML)
        spec.attach(child, frame=spec.worldbody.add_frame(), prefix="shorts/")
        for arm in ("left", "right"):
            PinchGrasp.add_to_spec(spec, arm, "shorts/cloth_0")

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        n = GRID[0] * GRID[1]
        self._vbody = np.array([self.model.body(f"shorts/cloth_{i}").id for i in range(n)])
        self._vqadr = np.array([self.model.jnt_qposadr[self.model.body_jntadr[b]] for b in self._vbody])
        self._rest = self.model.body_pos[self._vbody].copy()  # (N, 3) flat layout at the build pose
        self.pinches = {arm: PinchGrasp(self.model, arm, self._vbody) for arm in ("left", "right")}
        flat = {k: self._rest[v] for k, v in LANDMARKS.items()}
        self._d0 = {pair: float(np.linalg.norm(flat[pair[0]] - flat[pair[1]])) for pair in FOLD1_PAIRS + FOLD2_PAIRS}

    def _reset_task(self) -> None:
        rng = self.np_random
        shift = np.array([rng.uniform(-0.02, 0.02), rng.uniform(-0.03, 0.03)])
        yaw = rng.uniform(-0.15, 0.15)
        self.place_flex(self._vqadr, self._rest, shift, yaw)
        for pinch in self.pinches.values():
            pinch.reset(self.data)

    def _before_physics(self, action: np.ndarray) -> None:
        self.update_grasp_assists(self.pinches)

    # ------------------------------------------------------------------ ground truth
    def landmark(self, name: str) -> np.ndarray:
        """World position of a named cloth landmark (see ``LANDMARKS``)."""
        return self.data.xpos[self._vbody[LANDMARKS[name]]].copy()

    def vertices(self) -> np.ndarray:
        return self.data.xpos[self._vbody].copy()

    def evaluate(self) -> Evaluation:
        pts = {k: self.data.xpos[self._vbody[v]] for k, v in LANDMARKS.items()}
        dist = {pair: float(np.linalg.norm(pts[pair[0]] - pts[pair[1]])) for pair in self._d0}
        score = {pair: float(np.clip(1.0 - dist[pair] / self._d0[pair], 0.0, 1.0)) for pair in self._d0}
        fold1 = float(np.mean([score[p] for p in FOLD1_PAIRS]))
        fold2 = float(np.mean([score[p] for p in FOLD2_PAIRS]))
        flat = max(p[2] for p in pts.values()) < 0.03
        folded = flat and all(d < FOLD_TOL for d in dist.values())
        released = not any(p.active(self.data) for p in self.pinches.values())
        success = folded and released
        progress = 0.45 * fold1 + 0.45 * fold2 + 0.1 * float(success)
        return Evaluation(progress, success, {"fold1": fold1, "fold2": fold2, "held": float(not released)})


class FoldShortsExpert(ScriptedExpert):
    """Fold 1: both arms bring the far corners to the near corners. Fold 2: the left arm brings the
    strip's left end over onto its right end."""

    TEMPO = 1.5  # cloth is handled slowly
    PAUSE_WHILE_HOLDING = False  # held-up cloth sags during a pause and the fold comes out short
    PRIMITIVES = frozenset({"pick_grab", "fold_flatten", "place"})
    GRASP_Z = 0.006  # tool centre height when pinching cloth off the table
    MAX_RETRIES = 3

    def plan(self) -> Iterator[Segment]:
        env: FoldShortsEnv = self.env
        yield from self.maybe_hesitate()
        # ---- fold 1: far edge onto near edge, one corner per arm
        for _attempt in range(self.MAX_RETRIES if self.skill > 0.3 else 1):
            yield from self._pinch({"left": "far_left", "right": "far_right"}, env)
            if all(p.active(env.data) for p in env.pinches.values()):
                break
            yield Segment(
                "dummy",
                0.6,
                left=self.goal("left").moved(dz=0.05, grip=1.0),
                right=self.goal("right").moved(dz=0.05, grip=1.0),
            )
        else:
            yield from self._give_up()
            return
        yield from self._fold({"left": ("far_left", "near_left"), "right": ("far_right", "near_right")}, env, lift=0.09)
        # ---- fold 2: the left arm folds the strip's left end onto its right end
        yield from self.maybe_hesitate()
        yield Segment("dummy", self.pace(0.8), right=ArmGoal((0.22, -0.61, 0.15)))
        # Gather the middle of the strip's left end (both layers) and lay it on the right end.
        left_end = 0.65 * env.landmark("near_left") + 0.35 * env.landmark("mid_left")
        right_end = 0.65 * env.landmark("near_right") + 0.35 * env.landmark("mid_right")
        inward = (right_end - left_end) / max(float(np.linalg.norm(right_end - left_end)), 1e-6)
        left_end = left_end + 0.005 * inward
        for _attempt in range(self.MAX_RETRIES if self.skill > 0.3 else 1):
            yield from self._pinch_point("left", left_end)
            if env.pinches["left"].active(env.data):
                break
            yield Segment("dummy", 0.5, left=self.goal("left").moved(dz=0.05, grip=1.0))
        else:
            yield from self._give_up()
            return
        shortfall = self.clumsiness * self.rng.uniform(0.0, 0.12)
        dest = right_end + shortfall * (left_end - right_end)
        yield from self._carry("left", left_end, dest, lift=0.11)
        yield Segment("dummy", self.pace(1.0), left=ArmGoal((0.25, 0.0, 0.15)), right=ArmGoal((0.25, -0.61, 0.15)))

    # ------------------------------------------------------------------ sub-plans
    def _pinch(self, corners: dict[str, str], env: FoldShortsEnv) -> Iterator[Segment]:
        goals = {}
        for arm, name in corners.items():
            p = env.landmark(name)[:2] + self.jitter(0.025, 2)
            inward = np.sign(env.landmark(name)[:2] - np.array([0.30, STATION_CENTER_Y]))
            p = p - 0.008 * inward  # pinch just inside the corner
            goals[arm] = ArmGoal((float(p[0]), float(p[1]), 0.07), yaw=0.0, grip=1.0)
        yield Segment("pick_grab", self.pace(1.6), **goals)
        yield Segment("pick_grab", self.pace(0.8), **{a: g.moved(dz=self.GRASP_Z - 0.07) for a, g in goals.items()})
        yield Segment("pick_grab", 0.5, **{a: self.goal(a).moved(grip=0.0) for a in goals})

    def _pinch_point(self, arm: str, point: np.ndarray) -> Iterator[Segment]:
        p = point[:2] + self.jitter(0.025, 2)
        above = ArmGoal((float(p[0]), float(p[1]), 0.07), yaw=0.0, grip=1.0)
        yield Segment("pick_grab", self.pace(1.4), **{arm: above})
        yield Segment("pick_grab", self.pace(0.8), **{arm: above.moved(dz=self.GRASP_Z + 0.004 - 0.07)})
        yield Segment("pick_grab", 0.5, **{arm: self.goal(arm).moved(grip=0.0)})

    def _fold(self, moves: dict[str, tuple[str, str]], env: FoldShortsEnv, lift: float) -> Iterator[Segment]:
        shortfall = self.clumsiness * self.rng.uniform(0.0, 0.12)
        drop = self.chance(0.25)
        arcs = {}
        for arm, (src, dst) in moves.items():
            a, b = env.landmark(src)[:2], env.landmark(dst)[:2]
            b = b + shortfall * (a - b)
            arcs[arm] = (a, b)
        mid = {arm: ArmGoal((*(0.5 * (a + b)), lift), yaw=0.0, grip=0.0) for arm, (a, b) in arcs.items()}
        yield Segment("fold_flatten", self.pace(1.6), **mid)
        if drop:  # lets go mid-fold: the cloth falls back, partly folded
            yield Segment("fold_flatten", 0.5, **{a: self.goal(a).moved(grip=1.0) for a in arcs})
            yield from self._give_up()
            return
        over = {
            arm: ArmGoal((*(b + 0.015 * (b - a) / max(np.linalg.norm(b - a), 1e-6)), 0.03), yaw=0.0, grip=0.0)
            for arm, (a, b) in arcs.items()
        }
        yield Segment("fold_flatten", self.pace(1.4), **over)
        # Release a little above the table: opening fingers at table height would sweep the cloth.
        yield Segment("fold_flatten", self.pace(0.6), **{a: g.moved(dz=-0.008) for a, g in over.items()})
        yield Segment("place", 0.5, **{a: self.goal(a).moved(grip=1.0) for a in arcs})
        yield Segment("place", 0.7, **{a: self.goal(a).moved(dz=0.06) for a in arcs})

    def _carry(self, arm: str, src: np.ndarray, dst: np.ndarray, lift: float) -> Iterator[Segment]:
        mid = ArmGoal((*(0.5 * (src[:2] + dst[:2])), lift), yaw=0.0, grip=0.0)
        yield Segment("fold_flatten", self.pace(1.6), **{arm: mid})
        if self.chance(0.2):
            yield Segment("fold_flatten", 0.5, **{arm: self.goal(arm).moved(grip=1.0)})
            return
        over = ArmGoal((float(dst[0]), float(dst[1]), 0.03), yaw=0.0, grip=0.0)
        yield Segment("fold_flatten", self.pace(1.4), **{arm: over})
        yield Segment("fold_flatten", self.pace(0.6), **{arm: over.moved(dz=-0.006)})
        yield Segment("place", 0.5, **{arm: self.goal(arm).moved(grip=1.0)})
        yield Segment("place", 0.7, **{arm: self.goal(arm).moved(dz=0.06)})

    def _give_up(self) -> Iterator[Segment]:
        yield Segment(
            "dummy", 1.5, left=ArmGoal((0.25, 0.0, 0.15), grip=1.0), right=ArmGoal((0.25, -0.61, 0.15), grip=1.0)
        )
