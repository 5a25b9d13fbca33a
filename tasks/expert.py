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
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace

import numpy as np

from sarm2_env.constants import ARMS, PRIMITIVE_INDEX
from sarm2_env.errors import ConfigError
from tasks.ik import ArmIK, tool_rotation
from tasks.station import HOME_QPOS


@dataclass(frozen=True)
class ArmGoal:
    """Goal of one arm: tool-centre position (m, world), yaw and tilt (rad), gripper opening [0, 1]."""

    pos: tuple[float, float, float]
    yaw: float = 0.0
    grip: float = 1.0
    tilt: float = 0.0

    def moved(self, dx: float = 0.0, dy: float = 0.0, dz: float = 0.0, **kw: float) -> ArmGoal:
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


def _min_jerk(s: float) -> float:
    return s * s * s * (10.0 - 15.0 * s + 6.0 * s * s)


class ScriptedExpert:
    """Base class: subclasses implement :meth:`plan` for one task.

    Args:
        env: the task env (wrappers are looked through).
        skill: 1.0 = expert demonstrations; lower values add hesitation, pose errors, drops and
            skipped steps. Must be in [0, 1].
    """

    def __init__(self, env, skill: float = 1.0) -> None:
        if not (isinstance(skill, (int, float)) and 0.0 <= skill <= 1.0):
            raise ConfigError(f"`skill` must be a number in [0, 1]; got {skill!r}")
        self.env = env.unwrapped
        self.skill = float(skill)
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
        return 1.0 - self.skill

    def chance(self, p_at_zero_skill: float) -> bool:
        """True with probability ``p_at_zero_skill * (1 - skill)``."""
        return bool(self.rng.random() < p_at_zero_skill * self.clumsiness)

    def jitter(self, scale_at_zero_skill: float, size: int = 3) -> np.ndarray:
        """Gaussian pose error whose std grows as skill drops (zero at skill 1)."""
        return self.rng.normal(0.0, scale_at_zero_skill * self.clumsiness, size=size)

    #: Scales every paced duration: a task's operators may work more slowly than the defaults.
    TEMPO = 1.0
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

    # ------------------------------------------------------------------ driving
    def reset(self, seed: int | None = None) -> None:
        """Start a new episode (call after ``env.reset``)."""
        self.rng = np.random.default_rng(seed)
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
            try:
                self._segment = next(self._plan)
            except StopIteration:
                self.done = True
                self._segment = Segment("dummy", 1.0)
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
