"""Folding T-shirt: fold both sleeves in, then fold the shirt in half."""

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

GRID = (9, 11)  # lattice rows along x (depth: near hem -> far shoulders) and columns along y (width)
SPACING = 0.025  # m: the body is 0.20 m deep and 0.15 m wide; with the sleeves the shirt is 0.25 m wide
CLOTH_Z = 0.004
SLEEVE_COLS = 2  # lattice columns of each sleeve beyond the body's side
SLEEVE_ROWS = 4  # lattice rows of each sleeve, counted from the shoulder (far) edge
FOLD_TOL = 0.045  # m: landmark pairs closer than this count as folded onto each other
FLAT_Z = 0.04  # m: every landmark below this height (up to four layers of cloth lie on the table)
HOME_LEFT = (0.25, 0.0, 0.15)
HOME_RIGHT = (0.25, -0.61, 0.15)
_NX, _NY = GRID[0] - 1, GRID[1] - 1
BODY_COLS = (SLEEVE_COLS, _NY - SLEEVE_COLS)  # first and last lattice column of the body
SLEEVE_ROW0 = _NX - SLEEVE_ROWS + 1  # first lattice row of the sleeves


def _in_shirt(ix: int, iy: int) -> bool:
    """Whether lattice point (row ``ix``, column ``iy``) is cloth: the body, or a sleeve at the shoulders."""
    if not (0 <= ix <= _NX and 0 <= iy <= _NY):
        return False
    return BODY_COLS[0] <= iy <= BODY_COLS[1] or ix >= SLEEVE_ROW0


#: Lattice point -> vertex index of the T-shaped cloth (row-major over the points that are cloth).
VERTEX = {
    (ix, iy): k for k, (ix, iy) in enumerate((i, j) for i in range(GRID[0]) for j in range(GRID[1]) if _in_shirt(i, j))
}
N_VERTICES = len(VERTEX)


def vertex(ix: int, iy: int) -> int:
    """Vertex index of lattice point (row ``ix``, 0 = near hem; column ``iy``, 0 = right sleeve tip)."""
    return VERTEX[(ix, iy)]


def _cloth_attributes() -> str:
    """A T-shaped ``flexcomp`` (``type="direct"``): two triangles per lattice square that is all cloth."""
    centre = np.array([_NX, _NY]) * SPACING / 2
    points = []
    for ix, iy in VERTEX:
        x, y = np.array([ix, iy]) * SPACING - centre
        points.append(f"{x:.4f} {y:.4f} 0")
    tris = []
    for ix in range(_NX):
        for iy in range(_NY):
            corners = [(ix, iy), (ix + 1, iy), (ix + 1, iy + 1), (ix, iy + 1)]
            if all(_in_shirt(*c) for c in corners):
                a, b, d, c = (VERTEX[k] for k in corners)
                tris.append(f"{a} {b} {d} {a} {d} {c}")  # counter-clockwise seen from above
    return (
        f'name="cloth" type="direct" dim="2" point="{"  ".join(points)}" element="{"  ".join(tris)}" '
        f'pos="0.30 {STATION_CENTER_Y} {CLOTH_Z}" radius="0.003" mass="0.06" rgba="0.75 0.22 0.2 1"'
    )


#: Sleeve folds: each sleeve's outer column lands on its mirror image about the body's side, at the
#: sleeve's shoulder row and its lower (armpit) row.
SLEEVE_PAIR_ROWS = (SLEEVE_ROW0, _NX)
LEFT_SLEEVE_PAIRS = tuple((vertex(r, _NY), vertex(r, _NY - 2 * SLEEVE_COLS)) for r in SLEEVE_PAIR_ROWS)
RIGHT_SLEEVE_PAIRS = tuple((vertex(r, 0), vertex(r, 2 * SLEEVE_COLS)) for r in SLEEVE_PAIR_ROWS)
#: Half fold: the shoulder edge onto the hem, at the body's sides and its middle.
HALF_COLS = (BODY_COLS[0], _NY // 2, BODY_COLS[1])
HALF_PAIRS = tuple((vertex(_NX, c), vertex(0, c)) for c in HALF_COLS)
ALL_PAIRS = LEFT_SLEEVE_PAIRS + RIGHT_SLEEVE_PAIRS + HALF_PAIRS
LANDMARK_VERTICES = tuple(sorted({v for pair in ALL_PAIRS for v in pair}))
#: Calibrated progress: a tool centre this close (m) to the cloth point it pinches has arrived, and from there its
#: gripper's closing counts as pinching; a fold's term (``left_side`` / ``right_side`` / ``half``) at which it
#: counts as laid down, above which a laid fold still counts as laid, and at which it has clearly begun.
ARRIVED = 0.015
CLOSING_REACH = 0.03
FOLD_DONE = 0.95
FOLD_KEPT = 0.8
FOLD_BEGUN = 0.2
#: Calibrated stages: per fold (left sleeve, right sleeve, half), reach the cloth, pinch it, fold it, let go.
FOLDS = ("left", "right", "half")
FOLD_STAGES = ("reach", "grasp", "fold", "release")
#: Calibrated stage weights (``<fold>/<stage>``): each stage's mean share of full-skill demo time, measured on 20
#: demos at operator variability 1 (seeds 0-19) with ``python benchmarks/calibrated_progress.py --tasks FoldTShirt
#: --fit``.
CALIBRATION_WEIGHTS = stage_weights(
    **{
        "left/reach": 0.092,
        "left/grasp": 0.02,
        "left/fold": 0.102,
        "left/release": 0.075,
        "right/reach": 0.161,
        "right/grasp": 0.021,
        "right/fold": 0.107,
        "right/release": 0.068,
        "half/reach": 0.161,
        "half/grasp": 0.022,
        "half/fold": 0.117,
        "half/release": 0.056,
    }
)


class FoldTShirtEnv(YamTaskEnv):
    """## Folding T-shirt (``SARM2/FoldTShirt-v0``)

    **Description.** A T-shirt lies flat between the arms, shoulders away from the robot: an
    inextensible ``flexcomp`` cloth on a 2.5 cm lattice, a 0.20 x 0.15 m body (9 x 7 vertices) with a
    0.075 x 0.05 m sleeve (4 x 2 vertices) on each side at the shoulders, 79 vertices in all. The left
    arm folds the left sleeve in over the body, the right arm the right sleeve, then both arms fold the
    shoulders down onto the hem. Proxy of the paper's "Folding T-shirt" task.

    **Observation / action.** As every SARM2 task (docs/design.md §3): three RGB views + 14-d joint state;
    14-d absolute joint targets.

    **State** (``obs_mode="state"``: one flat float32 vector of 255 values; ``"pixels+state"`` adds it as
    ``obs["state"]``): ``agent_pos`` (14), ``shirt/cloth/vertices`` (237: 79 vertices x (x, y, z)), then the
    evaluation terms ``eval/half``, ``eval/held``, ``eval/left_side``, ``eval/right_side`` (1 each), in that order
    (``env.unwrapped.state_layout``). Simulation only.

    **Progress** (from the cloth's vertex positions; valid for any trajectory)::

        0.2 * left + 0.2 * right + 0.5 * half + 0.1 * success

    Each term is a mean over landmark pairs of ``clip((d0 - d) / (d0 - 0.045), 0, 1)``, with ``d`` the
    pair's distance and ``d0`` its flat distance: 0 when flat, 1 once the pair is within the 4.5 cm
    fold tolerance. ``left`` / ``right``: the sleeve's outer column onto its mirror image about the
    shoulder seam (0.10 m flat), at the armpit row and the shoulder row. ``half``: the shoulder edge
    onto the hem (0.20 m flat) at both sides of the body and its middle. Unfolding the cloth brings
    the distances, and the progress, back.

    **Calibrated progress** (``info["calibrated_progress"]``; :mod:`tasks.calibration`): the same physics in
    demo-time units, for comparison with time-linear progress. For each fold in demo order (left sleeve, right
    sleeve, half), four stages, each weighted by its mean share of full-skill demo time
    (``CALIBRATION_WEIGHTS``), each a fraction from the current physics state: ``reach`` (the tool centres'
    approach to the cloth points the fold pinches, from their home poses: the sleeve's tip, or the shoulders
    inside the side folds), ``grasp`` (those grippers closing there), ``fold`` (the fold's term / 0.95),
    ``release`` (the grippers opening once it is laid). Sum of weight x fraction; 1 on success, at most 0.99
    without it. Unfolding lowers it.

    **Success.** Every pair above closer than 4.5 cm, all landmarks within 4 cm of the table, and no
    gripper holding the cloth.

    **Randomisation.** Shirt position (+-2 cm in x, +-2 cm in y) and yaw (+-0.12 rad).

    **Episode end.** Success (``terminated``) or 900 control steps (90 s at 10 Hz, ``truncated``).

    **Grasping.** Cloth is pinched: closing fingers connect to the nearest vertices (up to 8 within
    3 cm: every layer when the cloth is folded); opening releases. A pinch can miss.

    **Expert primitives.** ``pick_grab``, ``fold_flatten``, ``place``, ``dummy``.

    **Version history.** v0: initial release.
    """

    task_name = "FoldTShirt"
    instruction = "Fold the sleeves of the T-shirt in, then fold the T-shirt in half."
    deformable = True

    def _build_task(self, spec: mujoco.MjSpec) -> None:
        # As for the shorts: the cloth touches the table but not the fingers (pinching does the grasping).
        spec.geom("table").conaffinity = 3
        attach_flexcomp(spec, "shirt/", _cloth_attributes(), damping=0.002, solref=0.006, friction=0.9)
        PinchGrasp.add_for_arms(spec, "shirt/cloth_0")

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._vbody, self._vqadr, self._rest = self.flex_vertices("shirt/cloth_", N_VERTICES)  # rest: flat, as built
        self.pinches = PinchGrasp.for_arms(self.model, self._vbody, radius=0.03)
        self._d0 = np.array([np.linalg.norm(self._rest[a] - self._rest[b]) for a, b in ALL_PAIRS])
        self._pair_a = self._vbody[[a for a, _ in ALL_PAIRS]]
        self._pair_b = self._vbody[[b for _, b in ALL_PAIRS]]
        self._landmarks = self._vbody[list(LANDMARK_VERTICES)]

    def _reset_task(self) -> None:
        self.scatter_flex(self._vqadr, self._rest, (0.02, 0.02), 0.12)
        self.reset_grasp_assists(self.pinches)

    def _before_physics(self, action: np.ndarray) -> None:
        self.update_grasp_assists(self.pinches)

    # ------------------------------------------------------------------ ground truth
    def point(self, ix: int, iy: int) -> np.ndarray:
        """World position of the grid vertex in row ``ix``, column ``iy``."""
        return self.data.xpos[self._vbody[vertex(ix, iy)]].copy()

    def vertices(self) -> np.ndarray:
        """Positions of the cloth's vertices ``(V, 3)``."""
        return self.data.xpos[self._vbody].copy()

    @override
    def evaluate(self) -> Evaluation:
        xpos = self.data.xpos
        dist = np.linalg.norm(xpos[self._pair_a] - xpos[self._pair_b], axis=1)
        # 0 when flat, 1 once within the fold tolerance: success then implies full fold terms.
        score = np.clip((self._d0 - dist) / (self._d0 - FOLD_TOL), 0.0, 1.0)
        n_side = len(SLEEVE_PAIR_ROWS)
        left = float(score[:n_side].mean())
        right = float(score[n_side : 2 * n_side].mean())
        half = float(score[2 * n_side :].mean())
        flat = float(xpos[self._landmarks, 2].max()) < FLAT_Z
        folded = flat and bool(np.all(dist < FOLD_TOL))
        released = not any(p.active(self.data) for p in self.pinches.values())
        success = folded and released
        progress = 0.2 * left + 0.2 * right + 0.5 * half + 0.1 * float(success)
        terms = {"left_side": left, "right_side": right, "half": half, "held": float(not released)}
        stages = self.calibration_stages(left, right, half)
        return Evaluation(progress, success, terms, calibrated_progress(stages, CALIBRATION_WEIGHTS, success))

    calibration_weights = CALIBRATION_WEIGHTS

    def _pinch_stages(self, targets: dict[str, np.ndarray]) -> tuple[float, float]:
        """``(reach, grasp)`` of the arms in ``targets`` (arm -> cloth point to pinch): mean approach from the home
        pose, mean closing once there (1 for an arm already pinching)."""
        opening = self.agent_pos()[[6, 13]]
        reach, grasp = [], []
        for arm, point in targets.items():
            if self.pinches[arm].active(self.data):
                reach.append(1.0)
                grasp.append(1.0)
                continue
            d = float(np.linalg.norm(self.data.site_xpos[self._tcp[arm]] - point))
            reach.append(approach(d, float(np.linalg.norm(self._home_tcp[arm] - point)), ARRIVED))
            grasp.append(gripper_closure(opening[0 if arm == "left" else 1]) if d <= CLOSING_REACH else 0.0)
        return float(np.mean(reach)), float(np.mean(grasp))

    def calibration_stages(
        self, left: float | None = None, right: float | None = None, half: float | None = None
    ) -> dict[str, float]:
        """Fraction done (from physics) of each calibrated stage, in demo order (see the task card).

        ``left``, ``right`` and ``half`` reuse the fold terms :meth:`evaluate` has already computed.
        """
        if left is None or right is None or half is None:
            terms = self.evaluate().terms
            left, right, half = terms["left_side"], terms["right_side"], terms["half"]
        held = {arm: self.pinches[arm].active(self.data) for arm in ("left", "right")}
        opening = dict(zip(("left", "right"), self.agent_pos()[[6, 13]]))
        score = {"left": left, "right": right, "half": half}
        # A laid fold that a later fold pulls a little short (as the half fold does to the sleeves) stays laid.
        done = {fold: score[fold] >= FOLD_KEPT for fold in FOLDS}
        sleeves_done = done["left"] and done["right"]
        # Both hands pinching once both sleeves are in: the half fold has begun.
        half_pinched = sleeves_done and (all(held.values()) or half > FOLD_BEGUN)
        stages: dict[str, float] = {}
        # Each sleeve: its arm pinches the middle of the sleeve's tip, lays it over the body and lets go.
        for arm, col in (("left", _NY), ("right", 0)):
            tip = 0.5 * (self.point(SLEEVE_ROW0 + 1, col) + self.point(SLEEVE_ROW0 + 2, col))
            if score[arm] > FOLD_BEGUN or done[arm]:
                reach = grasp = 1.0
            else:
                reach, grasp = self._pinch_stages({arm: tip})
            release = 0.0
            if done[arm]:
                release = float(np.clip(opening[arm], 0.0, 1.0)) if held[arm] and not half_pinched else 1.0
            values = {"reach": reach, "grasp": grasp, "fold": min(score[arm] / FOLD_DONE, 1.0), "release": release}
            stages.update({f"{arm}/{stage}": values[stage] for stage in FOLD_STAGES})
        # The half fold: both arms pinch the shoulders (inside the side folds), lay them on the hem and let go.
        values = dict.fromkeys(FOLD_STAGES, 0.0)
        if half_pinched or done["half"]:
            values.update(reach=1.0, grasp=1.0, fold=min(half / FOLD_DONE, 1.0))
        elif sleeves_done and stages["left/release"] == 1.0 and stages["right/release"] == 1.0:
            cols = {"left": BODY_COLS[1] - 1, "right": BODY_COLS[0] + 1}
            values["reach"], values["grasp"] = self._pinch_stages({a: self.point(_NX, c) for a, c in cols.items()})
        if done["half"]:
            values["release"] = float(np.mean([np.clip(opening[a], 0, 1) if held[a] else 1.0 for a in held]))
        stages.update({f"half/{stage}": values[stage] for stage in FOLD_STAGES})
        return stages


class FoldTShirtExpert(ScriptedExpert):
    """Left arm folds the left sleeve in, right arm the right sleeve; then both fold the shoulders onto the hem."""

    TEMPO = 1.5  # cloth is handled slowly
    PAUSE_WHILE_HOLDING = False  # held-up cloth sags during a pause and the fold comes out short
    # Never faster than nominal: with faster folds 1-4 demos in 20 ended with a sleeve short (measured).
    MIN_PACE = 1.0
    PRIMITIVES = frozenset({"pick_grab", "fold_flatten", "place"})
    GRASP_Z = 0.006  # tool centre height when pinching cloth off the table

    @override
    def plan(self) -> Iterator[Segment]:
        env: FoldTShirtEnv = self.env
        retries = self.attempts()
        # ---- sleeve folds: each arm brings its sleeve's tip over onto the body
        # Always the left sleeve first: with the right one first, the sleeve folded first is pulled short by the half
        # fold in about 1 demo in 5 (measured), so operator variability does not change this order.
        for arm, outer, inner in (("left", _NY, _NY - 2 * SLEEVE_COLS), ("right", 0, 2 * SLEEVE_COLS)):
            yield from self.maybe_hesitate()
            if not (yield from self._side_fold(env, arm, outer, inner, retries)):
                yield from self._give_up()
                return
        # ---- half fold: both arms bring the shoulders (both layers, inside the side folds) onto the hem
        yield from self.maybe_hesitate()
        cols = {"left": BODY_COLS[1] - 1, "right": BODY_COLS[0] + 1}  # inside the shoulder corners
        for _fold_try in range(retries):
            for _attempt in range(retries):
                goals = {}
                for arm, col in cols.items():
                    p = env.point(_NX, col)[:2] + self.jitter(0.025, 2)
                    inward = env.point(_NX - 1, col)[:2] - env.point(_NX, col)[:2]
                    p = p + 0.3 * inward  # just inside the edge
                    goals[arm] = ArmGoal((float(p[0]), float(p[1]), 0.07), grip=1.0)
                yield from self._pinch(goals)
                if all(p.active(env.data) for p in env.pinches.values()):
                    break
                yield from self.let_go(0.6, "left", "right")
            else:
                yield from self._give_up()
                return
            moves = {arm: (env.point(_NX, col)[:2], env.point(0, col)[:2]) for arm, col in cols.items()}
            # A low arc (half the shirt's depth) keeps the folded sleeves from flopping open.
            yield from self._fold(moves, lift=0.05)
            if env.evaluate().terms["half"] > 0.99:
                break
        yield Segment("dummy", self.pace(1.0), left=ArmGoal(HOME_LEFT), right=ArmGoal(HOME_RIGHT))

    # ------------------------------------------------------------------ sub-plans
    def _side_fold(self, env: FoldTShirtEnv, arm: str, outer: int, inner: int, retries: int):
        """Fold one sleeve in with one arm (again if it did not stay folded); False if no pinch could be made."""
        rows = (SLEEVE_ROW0 + 1, SLEEVE_ROW0 + 2)  # the middle of the sleeve's tip
        term = "left_side" if arm == "left" else "right_side"

        def middle(col: int) -> np.ndarray:
            return 0.5 * (env.point(rows[0], col) + env.point(rows[1], col))[:2]

        step_in = 1 if inner > outer else -1
        for _fold_try in range(retries):
            for _attempt in range(retries):
                inward = 0.3 * (middle(outer + step_in) - middle(outer))  # pinch just inside the sleeve's tip
                p = middle(outer) + inward + self.jitter(0.025, 2)
                yield from self._pinch({arm: ArmGoal((float(p[0]), float(p[1]), 0.07), grip=1.0)})
                if env.pinches[arm].active(env.data):
                    break
                yield from self.let_go(0.5, arm)
            else:
                return False
            # Lay the sleeve's tip on its mirror image about the shoulder seam; a low arc (no higher than
            # the sleeve is wide) keeps the sleeve from dragging the body along.
            yield from self._fold({arm: (middle(outer), middle(inner))}, lift=0.035, overshoot=0.0)
            # Clear the middle: a hand left hovering there blocks the other arm's fold.
            home = HOME_LEFT if arm == "left" else HOME_RIGHT
            yield Segment("dummy", self.pace(0.8), **{arm: ArmGoal(home, grip=1.0)})
            if env.evaluate().terms[term] > 0.99:
                break
        return True

    def _pinch(self, goals: dict[str, ArmGoal]) -> Iterator[Segment]:
        yield Segment("pick_grab", self.pace(1.4), **goals)
        yield Segment("pick_grab", self.pace(0.8), **{a: g.moved(dz=self.GRASP_Z - 0.07) for a, g in goals.items()})
        yield Segment("pick_grab", 0.5, **{a: self.goal(a).moved(grip=0.0) for a in goals})

    def _fold(
        self, arcs: dict[str, tuple[np.ndarray, np.ndarray]], lift: float, overshoot: float = 0.015
    ) -> Iterator[Segment]:
        shortfall = self.clumsiness * self.rng.uniform(0.0, 0.15)
        arcs = {arm: (a, b + shortfall * (a - b)) for arm, (a, b) in arcs.items()}
        mid = {arm: ArmGoal((*(0.5 * (a + b)), lift), grip=0.0) for arm, (a, b) in arcs.items()}
        yield Segment("fold_flatten", self.pace(1.6), **mid)
        if self.chance(0.2):  # lets go mid-fold: the cloth falls back, partly folded
            yield Segment("fold_flatten", 0.5, **{a: self.goal(a).moved(grip=1.0) for a in arcs})
            yield Segment("dummy", 0.6, **{a: self.goal(a).moved(dz=0.04) for a in arcs})
            return
        over = {
            arm: ArmGoal((*(b + overshoot * (b - a) / max(np.linalg.norm(b - a), 1e-6)), 0.03), grip=0.0)
            for arm, (a, b) in arcs.items()
        }
        yield Segment("fold_flatten", self.pace(1.4), **over)
        # Release a little above the table: opening fingers at table height would sweep the cloth.
        yield Segment("fold_flatten", self.pace(0.6), **{a: g.moved(dz=-0.008) for a, g in over.items()})
        yield Segment("place", 0.5, **{a: self.goal(a).moved(grip=1.0) for a in arcs})
        yield Segment("place", 0.7, **{a: self.goal(a).moved(dz=0.06) for a in arcs})

    def _give_up(self) -> Iterator[Segment]:
        yield Segment("dummy", 1.5, left=ArmGoal(HOME_LEFT, grip=1.0), right=ArmGoal(HOME_RIGHT, grip=1.0))
