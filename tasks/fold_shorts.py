"""Folding Shorts: fold a cloth garment in half, then in half again, with both arms."""

from __future__ import annotations

from collections.abc import Iterator

import mujoco
import numpy as np
from typing_extensions import override

from tasks.base import Evaluation, YamTaskEnv
from tasks.calibration import approach, calibrated_progress, gripper_closure, stage_weights
from tasks.expert import ArmGoal, ScriptedExpert, Segment
from tasks.grasping import PinchGrasp
from tasks.station import STATION_CENTER_Y, attach_flexcomp

GRID = (9, 9)  # vertices along x (depth) and y (width)
SPACING = 0.025  # m: the garment is 0.20 m x 0.20 m
CLOTH_Z = 0.004
FOLD_TOL = 0.035  # m: corner pairs closer than this count as folded onto each other
_CLOTH = (
    f'name="cloth" type="grid" count="{GRID[0]} {GRID[1]} 1" spacing="{SPACING} {SPACING} {SPACING}" '
    f'pos="0.30 {STATION_CENTER_Y} {CLOTH_Z}" radius="0.003" dim="2" mass="0.06" rgba="0.2 0.32 0.62 1"'
)


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
#: Calibrated progress: a tool centre this close (m) to the cloth point it pinches has arrived, and from there its
#: gripper's closing counts as pinching; a fold's score (``fold1`` / ``fold2``) at which it counts as laid down
#: (demos let go at 0.87-0.91).
ARRIVED = 0.015
CLOSING_REACH = 0.03
FOLD_DONE = 0.86
#: After fold 1 the right hand makes way (goes home, from about this far, m) and the left pinches again from about
#: this far (m) above the cloth.
MAKE_WAY = 0.35
REPINCH_START = 0.12
#: Calibrated stage weights: each stage's mean share of full-skill demo time, measured on 20 demos at operator
#: variability 1 (seeds 0-19) with ``python benchmarks/calibrated_progress.py --tasks FoldShorts --fit``.
CALIBRATION_WEIGHTS = stage_weights(
    reach1=0.156, grasp1=0.03, fold1=0.187, release1=0.078, reach2=0.141, grasp2=0.141, fold2=0.191, release2=0.077
)


class FoldShortsEnv(YamTaskEnv):
    """## Folding Shorts (``SARM2/FoldShorts-v0``)

    **Description.** A garment (a 0.20 x 0.20 m inextensible ``flexcomp`` cloth, 9 x 9 vertices)
    lies flat between the arms. Both arms pinch the far corners and fold the far half onto the near
    half; then the right arm holds the strip down while the left arm folds its left end onto its right
    end. Proxy of the paper's "Folding Shorts" task.

    **Observation / action.** As every SARM2 task (docs/design.md §3): three RGB views + 14-d joint state;
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

    **Calibrated progress** (``info["calibrated_progress"]``; :mod:`tasks.calibration`): the same physics in
    demo-time units, for comparison with time-linear progress. Stages in demo order, each weighted by its mean
    share of full-skill demo time (``CALIBRATION_WEIGHTS``), each a fraction from the current physics state:
    ``reach1`` (both tool centres' approach to the far corners, from their home poses), ``grasp1`` (both
    grippers closing there), ``fold1`` (``fold1`` / 0.86, the score demos lay the fold at), ``release1`` (both
    grippers opening); then ``reach2`` (the right hand making way to its home pose and the left approaching the
    strip's left end), ``grasp2`` (the left gripper closing), ``fold2`` (``fold2`` / 0.86), ``release2`` (the left
    gripper opening). Sum of weight x fraction; 1 on success, at most 0.99 without it. Unfolding lowers it.

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
    deformable = True

    def _build_task(self, spec: mujoco.MjSpec) -> None:
        # The cloth touches the table (bit 2 added to its affinity) but not the fingers: grasping it
        # is the pinch's job, and finger pads sweeping through a soft cloth only tear the fold apart.
        spec.geom("table").conaffinity = 3
        attach_flexcomp(spec, "shorts/", _CLOTH, damping=0.002, solref=0.006, friction=0.9)
        PinchGrasp.add_for_arms(spec, "shorts/cloth_0")

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        n = GRID[0] * GRID[1]
        self._vbody, self._vqadr, self._rest = self.flex_vertices("shorts/cloth_", n)  # rest: flat, as built
        self.pinches = PinchGrasp.for_arms(self.model, self._vbody)
        flat = {k: self._rest[v] for k, v in LANDMARKS.items()}
        self._d0 = {pair: float(np.linalg.norm(flat[pair[0]] - flat[pair[1]])) for pair in FOLD1_PAIRS + FOLD2_PAIRS}

    def _reset_task(self) -> None:
        self.scatter_flex(self._vqadr, self._rest, (0.02, 0.03), 0.15)
        self.reset_grasp_assists(self.pinches)

    def _before_physics(self, action: np.ndarray) -> None:
        self.update_grasp_assists(self.pinches)

    # ------------------------------------------------------------------ ground truth
    def landmark(self, name: str) -> np.ndarray:
        """World position of a named cloth landmark (see ``LANDMARKS``)."""
        return self.data.xpos[self._vbody[LANDMARKS[name]]].copy()

    def vertices(self) -> np.ndarray:
        """Positions of the cloth's vertices ``(V, 3)``."""
        return self.data.xpos[self._vbody].copy()

    @override
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
        stages = self.calibration_stages(fold1, fold2)
        return Evaluation(
            progress,
            success,
            {"fold1": fold1, "fold2": fold2, "held": float(not released)},
            calibrated_progress(stages, CALIBRATION_WEIGHTS, success),
        )

    calibration_weights = CALIBRATION_WEIGHTS

    def _pinch_stages(
        self, targets: dict[str, np.ndarray], done: bool, start: float | None = None
    ) -> tuple[float, float]:
        """``(reach, grasp)`` of the arms in ``targets`` (arm -> cloth point to pinch): mean approach, mean closing.

        An approach starts from the arm's home pose, or from ``start`` (m) away.
        """
        if done:
            return 1.0, 1.0
        opening = self.agent_pos()[[6, 13]]
        reach, grasp = [], []
        for arm, point in targets.items():
            held = self.pinches[arm].active(self.data)
            d = float(np.linalg.norm(self.data.site_xpos[self._tcp[arm]] - point))
            d0 = float(np.linalg.norm(self._home_tcp[arm] - point)) if start is None else start
            reach.append(1.0 if held else approach(d, d0, ARRIVED))
            closing = gripper_closure(opening[0 if arm == "left" else 1]) if d <= CLOSING_REACH else 0.0
            grasp.append(1.0 if held else closing)
        return float(np.mean(reach)), float(np.mean(grasp))

    def _release_fraction(self, arms: tuple[str, ...]) -> float:
        opening = self.agent_pos()[[6, 13]]
        return float(
            np.mean([1.0 if not self.pinches[a].active(self.data) else opening[0 if a == "left" else 1] for a in arms])
        )

    def calibration_stages(self, fold1: float | None = None, fold2: float | None = None) -> dict[str, float]:
        """Fraction done (from physics) of each calibrated stage, in demo order (see the task card).

        ``fold1`` and ``fold2`` reuse the scores :meth:`evaluate` has already computed.
        """
        if fold1 is None or fold2 is None:
            pts = {k: self.data.xpos[self._vbody[v]] for k, v in LANDMARKS.items()}
            score = {
                p: float(np.clip(1.0 - np.linalg.norm(pts[p[0]] - pts[p[1]]) / d0, 0, 1)) for p, d0 in self._d0.items()
            }
            fold1 = float(np.mean([score[p] for p in FOLD1_PAIRS]))
            fold2 = float(np.mean([score[p] for p in FOLD2_PAIRS]))
        left_held, right_held = (self.pinches[arm].active(self.data) for arm in ("left", "right"))
        both_held = left_held and right_held
        # Fold 1: both arms pinch the far corners, lay them on the near ones and let go ...
        first_done = fold1 >= FOLD_DONE
        reach1, grasp1 = self._pinch_stages(
            {"left": self.landmark("far_left"), "right": self.landmark("far_right")}, done=fold1 > 0.2 or first_done
        )
        release1 = (self._release_fraction(("left", "right")) if both_held else 1.0) if first_done else 0.0
        # ... fold 2: the right hand makes way, the left pinches the strip's left end and lays it on its right end.
        second_done = fold2 >= FOLD_DONE
        reach2 = grasp2 = release2 = 0.0
        if first_done and not both_held:
            if fold2 > 0.2 or second_done or left_held:
                reach2 = grasp2 = 1.0
            else:
                left_end = 0.65 * self.landmark("near_left") + 0.35 * self.landmark("mid_left")
                right = self.data.site_xpos[self._tcp["right"]]
                make_way = approach(float(np.linalg.norm(right - self._home_tcp["right"])), MAKE_WAY, ARRIVED)
                reach_left, grasp2 = self._pinch_stages({"left": left_end}, done=False, start=REPINCH_START)
                reach2 = 0.5 * (make_way + reach_left)
            if second_done:
                release2 = self._release_fraction(("left",))
        return {
            "reach1": reach1,
            "grasp1": grasp1,
            "fold1": float(np.clip(fold1 / FOLD_DONE, 0.0, 1.0)),
            "release1": release1,
            "reach2": reach2,
            "grasp2": grasp2,
            "fold2": float(np.clip(fold2 / FOLD_DONE, 0.0, 1.0)) if first_done else 0.0,
            "release2": release2,
        }


class FoldShortsExpert(ScriptedExpert):
    """Fold 1: both arms bring the far corners to the near corners. Fold 2: the left arm brings the
    strip's left end over onto its right end."""

    TEMPO = 1.5  # cloth is handled slowly
    PAUSE_WHILE_HOLDING = False  # held-up cloth sags during a pause and the fold comes out short
    PRIMITIVES = frozenset({"pick_grab", "fold_flatten", "place"})
    GRASP_Z = 0.006  # tool centre height when pinching cloth off the table

    @override
    def plan(self) -> Iterator[Segment]:
        env: FoldShortsEnv = self.env
        yield from self.maybe_hesitate()
        # ---- fold 1: far edge onto near edge, one corner per arm
        corners = {"left": "far_left", "right": "far_right"}
        if not (
            yield from self.retry(
                lambda: self._pinch(corners, env),
                lambda: all(p.active(env.data) for p in env.pinches.values()),
                lambda: self.let_go(0.6, "left", "right"),
            )
        ):
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
        if not (
            yield from self.retry(
                lambda: self._pinch_point("left", left_end),
                lambda: env.pinches["left"].active(env.data),
                lambda: self.let_go(0.5, "left"),
            )
        ):
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
