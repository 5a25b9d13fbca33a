"""Scripted experts: Cartesian plans turned into joint targets, labelled with SARM2 primitives.

An expert is a generator of :class:`Segment` s (a primitive label, a duration, and a goal pose for
each arm). The generator runs lazily, so a plan can look at the simulation when a segment ends and
react: check a grasp, retry it, wipe the ink that is left. Between goals the tool centre follows a
minimum-jerk profile; :class:`~tasks.ik.ArmIK` turns each intermediate pose into joint targets.

The ``skill`` setting (1 = expert, 0 = clumsy) makes behaviour imperfect in the ways teleoperators
and weak policies are: hesitation pauses, slower motions, grasp-position errors (missed grasps),
drops in transit, skipped sub-steps, and fewer retries. Every random choice comes from the
expert's own generator seeded at :meth:`ScriptedExpert.reset`, so an episode is reproducible from
``(env seed, expert seed, skill)``.

The ``variability`` setting (0 = today's identical pacing, 1 = teleoperation-like) varies *how* a
successful operator works without making them less successful: a per-episode tempo and a per-segment
pace factor (log-normal), short pauses, detours on free-space moves, an occasional corrective
re-approach (overshoot beside the goal, then correct), and a different order of sub-tasks where the
task allows it (:meth:`ScriptedExpert.vary_order`). Its random choices come from a second generator
seeded from the same expert seed, so ``variability=0`` reproduces the deterministic demos exactly.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import TypeVar

import numpy as np

from sarm2_env.constants import ARMS, PRIMITIVE_INDEX
from sarm2_env.errors import ConfigError, check_fraction
from tasks.ik import ArmIK, tool_rotation
from tasks.station import HOME_QPOS

T = TypeVar("T")


@dataclass(frozen=True)
class ArmGoal:
    """Goal of one arm: tool-centre position (m, world), yaw and tilt (rad), gripper opening [0, 1]."""

    pos: tuple[float, float, float]
    yaw: float = 0.0
    grip: float = 1.0
    tilt: float = 0.0

    def moved(self, dx: float = 0.0, dy: float = 0.0, dz: float = 0.0, **kw: float) -> ArmGoal:
        """This goal moved by ``(dx, dy, dz)``, other fields replaced by ``kw`` (``yaw``, ``grip``)."""
        x, y, z = self.pos
        return replace(self, pos=(x + dx, y + dy, z + dz), **kw)


@dataclass(frozen=True)
class Segment:
    """One labelled motion: both arms move to their goals (``None`` = hold) over ``duration`` s."""

    primitive: str
    duration: float
    left: ArmGoal | None = None
    right: ArmGoal | None = None

    def __post_init__(self) -> None:
        if self.primitive not in PRIMITIVE_INDEX:
            raise ConfigError(f"`primitive` must be one of the 22 SARM2 primitives; got {self.primitive!r}")
        if self.duration <= 0:
            raise ConfigError(f"`duration` must be > 0 s; got {self.duration}")


#: Log-normal sigma of the per-episode tempo at ``variability=1`` (a coefficient of variation of about 0.25), and
#: the range it is clipped to (slower still would run into the tasks' step limits).
TEMPO_SIGMA = 0.27
TEMPO_RANGE = (0.7, 1.6)
#: Log-normal sigma of each segment's pace factor at ``variability=1``.
SEGMENT_PACE_SIGMA = 0.25
#: The combined pace factor stays in this range: faster grasps would start failing, slower ones hit the step limit.
PACE_RANGE = (0.8, 2.0)
#: Chance, at ``variability=1``, of a short pause (labelled ``dummy``) before a segment that starts a new primitive
#: (operators pause between steps; a pause inside one, e.g. between lining up and lowering, spoils timed contacts),
#: and its length (s).
PAUSE_CHANCE = 0.3
PAUSE_RANGE_S = (0.3, 1.2)
#: Chance, per free-space move of an open gripper at ``variability=1``, of a detour through a displaced via point.
DETOUR_CHANCE = 0.5
#: Chance, per free-space move of an open gripper at ``variability=1``, of a corrective re-approach.
REAPPROACH_CHANCE = 0.15
#: A move counts as free-space when both its ends are at least this high (m) and both grippers stay open.
FREE_SPACE_Z = 0.09
#: Salt mixed into the expert seed for the variability generator (keeps the skill noise stream unchanged).
_VARIABILITY_SALT = 0x5A2


def _min_jerk(s: float) -> float:
    return s * s * s * (10.0 - 15.0 * s + 6.0 * s * s)


class ScriptedExpert:
    """Base class: subclasses implement :meth:`plan` for one task.

    Args:
        env: the task env (wrappers are looked through).
        skill: 1.0 = expert demonstrations; lower values add hesitation, pose errors, drops and
            skipped steps. Must be in [0, 1].
        variability: 0.0 = identical pacing on every seed; 1.0 = teleoperation-like variation in
            pace, pauses, paths, corrections and sub-task order (success unchanged). Must be in [0, 1].
    """

    def __init__(self, env, skill: float = 1.0, variability: float = 0.0) -> None:
        self.env = env.unwrapped
        self.skill = check_fraction("skill", skill)
        self.variability = check_fraction("variability", variability)
        self.vrng = np.random.default_rng(0)
        self._tempo = 1.0
        self._queue: list[Segment] = []
        self._last_primitive = ""
        self.ik = ArmIK()
        self.rng = np.random.default_rng(0)
        self.done = False
        self._plan: Iterator[Segment] | None = None

    # ------------------------------------------------------------------ for subclasses
    def plan(self) -> Iterator[Segment]:
        """Yield the segments of one episode; may inspect ``self.env`` between segments."""
        raise NotImplementedError

    @property
    def clumsiness(self) -> float:
        """``1 - skill``: how much noise and how many mistakes the operator makes."""
        return 1.0 - self.skill

    def chance(self, p_at_zero_skill: float) -> bool:
        """True with probability ``p_at_zero_skill * (1 - skill)``."""
        return bool(self.rng.random() < p_at_zero_skill * self.clumsiness)

    def jitter(self, scale_at_zero_skill: float, size: int = 3) -> np.ndarray:
        """Gaussian pose error whose std grows as skill drops (zero at skill 1)."""
        return self.rng.normal(0.0, scale_at_zero_skill * self.clumsiness, size=size)

    #: Attempts a skilled operator (skill > 0.3) makes at a step that can fail (a grasp, an insertion, ...).
    MAX_RETRIES = 3
    #: Attempts below that skill: clumsy operators give up sooner.
    LOW_SKILL_ATTEMPTS = 1

    def attempts(self, skilled: int | None = None, clumsy: int | None = None) -> int:
        """How many times to try a step that can fail: ``skilled`` (default :attr:`MAX_RETRIES`) at skill > 0.3,
        else ``clumsy`` (default :attr:`LOW_SKILL_ATTEMPTS`)."""
        if self.skill > 0.3:
            return self.MAX_RETRIES if skilled is None else skilled
        return self.LOW_SKILL_ATTEMPTS if clumsy is None else clumsy

    def tries(self, skilled: int | None = None, clumsy: int | None = None) -> range:
        """``range(attempts(...))``: the retry loop of a step that can fail."""
        return range(self.attempts(skilled, clumsy))

    def retry(
        self,
        attempt: Callable[[], Iterator[Segment]],
        succeeded: Callable[[], bool],
        back_off: Callable[[], Iterator[Segment]] | None = None,
    ) -> Generator[Segment, None, bool]:
        """Run ``attempt`` up to :meth:`attempts` times until ``succeeded()``; after each failed try, ``back_off``
        (open and rise, say). Returns whether it succeeded: ``ok = yield from self.retry(...)``."""
        for _ in self.tries():
            yield from attempt()
            if succeeded():
                return True
            if back_off is not None:
                yield from back_off()
        return False

    def let_go(self, duration: float, *arms: str, rise: float = 0.05) -> Iterator[Segment]:
        """After a missed grasp: open ``arms``' grippers and rise ``rise`` m to look again (one ``dummy``)."""
        yield Segment("dummy", duration, **{arm: self.goal(arm).moved(dz=rise, grip=1.0) for arm in arms})

    #: Scales every paced duration: a task's operators may work more slowly than the defaults.
    TEMPO = 1.0
    #: Lowest pace factor operator variability may apply (< 1: faster than nominal); drawn factors below it are
    #: held at it.
    MIN_PACE = PACE_RANGE[0]
    #: False where a pause while holding something spoils the task (cloth sags and creeps while held up): operator
    #: variability then pauses only with every gripper open.
    PAUSE_WHILE_HOLDING = True
    #: The primitives a full-skill episode of this expert uses besides ``dummy`` (tests check it).
    PRIMITIVES: frozenset[str] = frozenset()

    def pace(self, duration: float) -> float:
        """Nominal duration (times ``TEMPO``) stretched for less skilled operators."""
        return self.TEMPO * duration * (1.0 + self.clumsiness * self.rng.uniform(0.0, 0.8))

    def maybe_hesitate(self) -> Iterator[Segment]:
        """A pause (labelled ``dummy``) before a step, more likely at low skill."""
        if self.chance(0.4):
            yield Segment("dummy", float(self.rng.uniform(0.5, 2.0)))

    def goal(self, arm: str) -> ArmGoal:
        """The last commanded goal of ``arm``."""
        return self._goal[arm]

    def vary_order(self, items: Sequence[T]) -> list[T]:
        """``items`` in the plan's default order, or, with probability ``variability``, in a random order.

        Experts call this wherever the task allows the sub-tasks in any order (which plate first, the
        order of the table items, which band of the floor first, ...).
        """
        items = list(items)
        if self.variability > 0.0 and self.vrng.random() < self.variability:
            return [items[i] for i in self.vrng.permutation(len(items))]
        return items

    # ------------------------------------------------------------------ operator variability
    def _vary(self, segment: Segment) -> list[Segment]:
        """The segments an operator with this ``variability`` performs for one planned segment."""
        v = self.variability
        if v == 0.0:
            return [segment]
        factor = self._tempo * float(np.exp(self.vrng.normal(0.0, SEGMENT_PACE_SIGMA * v)))
        segment = replace(segment, duration=segment.duration * float(np.clip(factor, self.MIN_PACE, PACE_RANGE[1])))
        out: list[Segment] = []
        holding = any(self._goal[arm].grip < 0.5 for arm in ARMS)
        new_step = segment.primitive != self._last_primitive
        self._last_primitive = segment.primitive
        if self.vrng.random() < PAUSE_CHANCE * v and new_step and (self.PAUSE_WHILE_HOLDING or not holding):
            out.append(Segment("dummy", float(self.vrng.uniform(*PAUSE_RANGE_S))))
        arms = [] if holding else self._free_space_arms(segment)
        if arms and self.vrng.random() < REAPPROACH_CHANCE * v:
            out.extend(self._reapproach(segment, arms))
        elif arms and self.vrng.random() < DETOUR_CHANCE * v:
            out.extend(self._detour(segment, arms))
        else:
            out.append(segment)
        return out

    def _free_space_arms(self, segment: Segment) -> list[str]:
        """The arms ``segment`` moves far through free space with open grippers ([] if any moving arm does not).

        Called only while neither arm holds anything: a displaced path near a held object (a handover, a carry)
        knocks it out of the other hand.
        """
        arms = []
        for arm in ARMS:
            target = getattr(segment, arm)
            if target is None:
                continue
            start = self._goal[arm]
            free = min(start.grip, target.grip) >= 0.5 and min(start.pos[2], target.pos[2]) >= FREE_SPACE_Z
            far = float(np.linalg.norm(np.subtract(target.pos, start.pos))) >= 0.05
            if not free:
                return []
            if far:
                arms.append(arm)
        return arms

    def _via(self, segment: Segment, arms: list[str], offset: dict[str, np.ndarray], at: float) -> Segment:
        """A segment to the point a fraction ``at`` along ``segment``'s moves, displaced by ``offset`` per arm."""
        goals = {}
        for arm in ARMS:
            target = getattr(segment, arm)
            if target is None:
                goals[arm] = None
                continue
            start = self._goal[arm]
            pos = np.asarray(start.pos) + at * (np.asarray(target.pos) - np.asarray(start.pos))
            pos = pos + offset.get(arm, 0.0)
            goals[arm] = replace(target, pos=tuple(float(x) for x in pos))
        return Segment(segment.primitive, segment.duration * at, **goals)

    def _detour(self, segment: Segment, arms: list[str]) -> list[Segment]:
        """The move through a via point half way, displaced sideways and upwards."""
        offset = {arm: np.append(self.vrng.uniform(-0.03, 0.03, size=2), self.vrng.uniform(0.0, 0.04)) for arm in arms}
        via = self._via(segment, arms, offset, 0.5)
        return [via, replace(segment, duration=segment.duration * 0.5)]

    def _reapproach(self, segment: Segment, arms: list[str]) -> list[Segment]:
        """Overshoot to a point beside and above the goal, hold briefly, then correct to the goal."""
        offset = {}
        for arm in arms:
            angle = self.vrng.uniform(0.0, 2.0 * np.pi)
            radius = self.vrng.uniform(0.025, 0.045)
            offset[arm] = np.array([radius * np.cos(angle), radius * np.sin(angle), 0.02])
        miss = self._via(segment, arms, offset, 1.0)
        hold = Segment("dummy", float(self.vrng.uniform(0.2, 0.6)))
        return [miss, hold, replace(segment, duration=max(0.5, 0.6 * segment.duration))]

    # ------------------------------------------------------------------ driving
    def reset(self, seed: int | None = None) -> None:
        """Start a new episode (call after ``env.reset``)."""
        self.rng = np.random.default_rng(seed)
        self.vrng = np.random.default_rng(None if seed is None else [int(seed), _VARIABILITY_SALT])
        self._tempo = 1.0
        if self.variability > 0.0:
            tempo = float(np.exp(self.vrng.normal(0.0, TEMPO_SIGMA * self.variability)))
            self._tempo = float(np.clip(tempo, *TEMPO_RANGE))
        self._queue = []
        self._last_primitive = ""
        self.done = False
        self._q = {arm: HOME_QPOS[:6].copy() for arm in ARMS}
        self._goal = {}
        for arm in ARMS:
            pos, _ = self.ik.forward(arm, self._q[arm])
            self._goal[arm] = ArmGoal(pos=tuple(float(v) for v in pos), yaw=0.0, grip=1.0)
        self._plan = self.plan()
        self._segment: Segment | None = None
        self._start: dict[str, ArmGoal] = {}
        self._k = self._n = 0

    def act(self, obs=None) -> np.ndarray:
        """The next 14-d action; sets ``env.current_primitive`` to the segment's label."""
        if self._plan is None:
            raise RuntimeError("call expert.reset() after env.reset() before act()")
        while self._segment is None or self._k >= self._n:
            if not self._queue:
                try:
                    self._queue = self._vary(next(self._plan))
                except StopIteration:
                    self.done = True
                    self._queue = [Segment("dummy", 1.0)]
            self._segment = self._queue.pop(0)
            self._start = dict(self._goal)
            self._n = max(1, int(round(self._segment.duration * self.env.control_hz)))
            self._k = 0
        self._k += 1
        s = _min_jerk(self._k / self._n)
        action = np.empty(14, dtype=np.float32)
        for i, arm in enumerate(ARMS):
            target = getattr(self._segment, arm)
            start = self._start[arm]
            if target is None:
                target = start
            pos = np.asarray(start.pos) + s * (np.asarray(target.pos) - np.asarray(start.pos))
            yaw = start.yaw + s * (target.yaw - start.yaw)
            tilt = start.tilt + s * (target.tilt - start.tilt)
            grip = start.grip + s * (target.grip - start.grip)
            self._q[arm], _ = self.ik.solve(arm, pos, tool_rotation(yaw, tilt), self._q[arm])
            action[7 * i : 7 * i + 6] = self._q[arm]
            action[7 * i + 6] = grip
            if self._k == self._n:
                self._goal[arm] = target
        self.env.current_primitive = self._segment.primitive
        return action


def run_expert_episode(
    env, expert: ScriptedExpert, seed: int | None = None, expert_seed: int | None = None, max_steps: int | None = None
):
    """Roll out ``expert`` on ``env`` for one episode; yields ``(obs, action, reward, info)`` per step.

    The first item carries the reset observation with ``action=None``. Stops at termination,
    truncation, when the expert's plan is exhausted (after a short settle), or after ``max_steps``.
    """
    obs, info = env.reset(seed=seed)
    expert.reset(seed if expert_seed is None else expert_seed)
    yield obs, None, 0.0, info
    steps, settle = 0, 0
    limit = max_steps if max_steps is not None else env.unwrapped.max_episode_steps
    while steps < limit:
        action = expert.act(obs)
        obs, reward, terminated, truncated, info = env.step(action)
        steps += 1
        yield obs, action, reward, info
        if terminated or truncated:
            return
        if expert.done:
            settle += 1
            if settle >= 5:
                return
