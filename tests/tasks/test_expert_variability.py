"""Tests of the scripted experts' operator variability (``variability`` in tasks/expert.py)."""

from __future__ import annotations

import itertools
from dataclasses import replace

import gymnasium as gym
import numpy as np
import pytest

import tasks
from sarm2_env.errors import ConfigError
from tasks.expert import FREE_SPACE_Z, PACE_RANGE, ArmGoal, Segment, run_expert_episode

PLUG = "SARM2/PullPlug-v0"
TABLE = "SARM2/SetDinnerTable-v0"


@pytest.fixture(scope="module")
def plug_env():
    env = gym.make(PLUG, obs_mode="state")
    yield env
    env.close()


def _actions(env, seed: int, variability: float | None, skill: float = 1.0) -> tuple[np.ndarray, bool]:
    kwargs = {} if variability is None else {"variability": variability}
    items = list(run_expert_episode(env, tasks.make_expert(env, skill=skill, **kwargs), seed=seed))
    return np.stack([a for _, a, _, _ in items[1:]]).astype(np.float64), bool(items[-1][3]["success"])


@pytest.mark.parametrize(
    "task_id,seed,skill,length,total,absolute",
    [
        (PLUG, 0, 1.0, 102, 334.0052468412137, 1399.4350986140175),
        (PLUG, 5, 0.5, 124, 382.2695221694697, 1747.9685002210274),  # the skill noise stream is untouched too
        (TABLE, 1, 1.0, 436, 2011.6175829476847, 5028.5059904930395),
    ],
)
def test_zero_variability_reproduces_the_deterministic_demos(task_id, seed, skill, length, total, absolute):
    # The figures are those of the experts before the variability setting existed (same seed, state mode).
    env = gym.make(task_id, obs_mode="state")
    try:
        actions, ok = _actions(env, seed, variability=0.0, skill=skill)
    finally:
        env.close()
    assert ok and len(actions) == length
    assert actions.sum() == pytest.approx(total, rel=1e-9)
    assert np.abs(actions).sum() == pytest.approx(absolute, rel=1e-9)


def test_variability_is_seeded_and_varies_length_not_success(plug_env):
    first, _ = _actions(plug_env, 3, 1.0)
    again, _ = _actions(plug_env, 3, 1.0)
    np.testing.assert_array_equal(first, again)  # reproducible from the seed
    lengths, outcomes = [], []
    for seed in range(8):
        actions, ok = _actions(plug_env, seed, 1.0)
        lengths.append(len(actions))
        outcomes.append(ok)
    assert all(outcomes)
    assert np.std(lengths) / np.mean(lengths) >= 0.1, lengths
    deterministic = {len(_actions(plug_env, seed, 0.0)[0]) for seed in range(3)}
    assert max(deterministic) - min(deterministic) <= 2  # the clock-friendly baseline this setting breaks


@pytest.mark.parametrize("value", [-0.1, 1.5, "1", None, True, float("nan")])
def test_invalid_variability(plug_env, value):
    with pytest.raises(ConfigError, match="`variability` must be a number in \\[0, 1\\]"):
        tasks.make_expert(plug_env, variability=value)


def test_vary_order(plug_env):
    fixed = tasks.make_expert(plug_env, variability=0.0)
    fixed.reset(0)
    assert all(fixed.vary_order("abc") == ["a", "b", "c"] for _ in range(20))
    varied = tasks.make_expert(plug_env, variability=1.0)
    varied.reset(0)
    seen = {tuple(varied.vary_order("abc")) for _ in range(200)}
    assert seen == set(itertools.permutations("abc"))


def _segments(expert, segment: Segment, draws: int = 300) -> list[list[Segment]]:
    out = []
    for seed in range(draws):
        expert.reset(seed)
        out.append(expert._vary(segment))
    return out


def test_only_free_space_moves_get_detours_or_reapproaches(plug_env):
    expert = tasks.make_expert(plug_env, variability=1.0)
    expert.reset(0)
    start = expert.goal("left")
    # Holding something (gripper closed at the goal): only the pace and pauses may change.
    carry = Segment("place", 1.0, left=ArmGoal((start.pos[0] + 0.1, start.pos[1], 0.2), grip=0.0))
    for variant in _segments(expert, carry):
        moving = [s for s in variant if s.left is not None or s.right is not None]
        assert len(moving) == 1 and moving[0].left == carry.left
        assert all(s.primitive == "dummy" for s in variant if s is not moving[0])
        assert PACE_RANGE[0] <= moving[0].duration <= PACE_RANGE[1]  # tempo x segment pace, clipped
    # A free-space move of an open gripper: some draws go through via points, every one ends at the goal.
    free = Segment("pick_grab", 1.0, left=ArmGoal((start.pos[0] + 0.1, start.pos[1], 0.2), grip=1.0))
    variants = _segments(expert, free)
    durations = {round(sum(s.duration for s in v if s.left is not None), 6) for v in variants}
    assert len(durations) > 100  # paced differently almost every time
    assert any(len([s for s in v if s.left is not None]) > 1 for v in variants)
    for variant in variants:
        moves = [s for s in variant if s.left is not None]
        assert moves[-1].left == free.left
        assert all(s.left.pos[2] >= FREE_SPACE_Z for s in moves)
        assert all(s.right is None for s in variant)


def test_zero_variability_leaves_segments_alone(plug_env):
    expert = tasks.make_expert(plug_env, variability=0.0)
    segment = Segment("pick_grab", 1.0, left=ArmGoal((0.3, 0.1, 0.2), grip=1.0))
    assert all(v == [segment] for v in _segments(expert, segment, draws=20))


def test_pauses_come_between_steps_and_not_while_cloth_is_held(plug_env):
    expert = tasks.make_expert(plug_env, variability=1.0)
    start = ArmGoal((0.3, 0.1, 0.2), grip=1.0)
    step = Segment("pick_grab", 1.0, left=start.moved(dx=0.01))
    first, again = [], []
    for seed in range(200):
        expert.reset(seed)
        expert._goal["left"] = start
        first.append(expert._vary(step))
        again.append(expert._vary(step))  # the same primitive continues: no pause inside it

    def paused(variant: list[Segment]) -> bool:  # a pause leads the variant (a re-approach holds in the middle)
        return variant[0].primitive == "dummy"

    assert any(paused(v) for v in first)
    assert not any(paused(v) for v in again)
    # An expert whose task spoils when held objects wait (cloth) pauses only with every gripper open.
    cloth = tasks.make_expert(gym.make("SARM2/FoldShorts-v0", obs_mode="state"), variability=1.0)
    assert cloth.PAUSE_WHILE_HOLDING is False
    for seed in range(200):
        cloth.reset(seed)
        cloth._goal["right"] = replace(cloth._goal["right"], grip=0.0)
        assert not paused(cloth._vary(step))


def test_an_expert_that_must_not_speed_up_only_slows_down():
    env = gym.make("SARM2/FoldTShirt-v0", obs_mode="state")
    shirt = tasks.make_expert(env, variability=1.0)
    assert shirt.MIN_PACE == 1.0
    durations = []
    for seed in range(300):
        shirt.reset(seed)
        durations.append(shirt._vary(Segment("fold_flatten", 1.0))[-1].duration)
    assert min(durations) == 1.0 and max(durations) <= PACE_RANGE[1]  # drawn speed-ups are held at nominal
    assert np.mean(np.array(durations) > 1.0) > 0.3
    env.close()


def test_attempts_and_retry_follow_the_operator_skill(plug_env):
    skilled, clumsy = tasks.make_expert(plug_env, skill=0.8), tasks.make_expert(plug_env, skill=0.2)
    assert (skilled.attempts(), clumsy.attempts()) == (skilled.MAX_RETRIES, skilled.LOW_SKILL_ATTEMPTS) == (3, 1)
    assert (skilled.attempts(2), clumsy.attempts(2), clumsy.attempts(2, clumsy=0)) == (2, 1, 0)
    assert list(skilled.tries(2)) == [0, 1]
    results = iter([False, False, True])
    done = []

    def attempt():
        yield Segment("dummy", 0.1)

    def back_off():
        done.append("back off")
        yield Segment("dummy", 0.2)

    run = skilled.retry(attempt, lambda: next(results), back_off)
    segments = []
    try:
        while True:
            segments.append(next(run))
    except StopIteration as stop:
        ok = stop.value
    assert ok is True and [s.duration for s in segments] == [0.1, 0.2, 0.1, 0.2, 0.1] and len(done) == 2
    failing = clumsy.retry(attempt, lambda: False)  # one try at low skill, then give up
    assert [s.duration for s in failing] == [0.1]
