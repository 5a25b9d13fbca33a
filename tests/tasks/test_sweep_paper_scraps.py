"""Tests of SARM2/SweepPaperScraps-v0 (tasks/sweep_paper_scraps.py): ground truth and the scripted expert."""

from __future__ import annotations

import mujoco
import numpy as np
import pytest

from tasks.sweep_paper_scraps import (
    BROOM_REST,
    HEAD_HALF,
    N_SCRAPS,
    SCRAP_HALF,
    SCRAP_REGION_HI,
    SCRAP_REGION_LO,
    ZONE_HI,
    ZONE_LO,
)
from tests.tasks.rollouts import (
    check_declared_primitives,
    check_full_skill_rollout,
    close_shared_envs,
    expert_rollout,
    shared_env,
)

TASK = "SARM2/SweepPaperScraps-v0"


@pytest.fixture(scope="module", autouse=True)
def _close_envs():
    yield
    close_shared_envs()


def _env(seed: int = 0):
    env = shared_env(TASK).unwrapped
    env.reset(seed=seed)
    return env


def _put_scraps(env, xy: np.ndarray) -> None:
    for k, adr in enumerate(env._scrap_qadr):
        env.data.qpos[adr : adr + 7] = [*xy[k], SCRAP_HALF[2], 1, 0, 0, 0]
    mujoco.mj_forward(env.model, env.data)


def _put_broom(env, x: float, y: float, z: float = HEAD_HALF[2]) -> None:
    adr = env._broom_qadr
    env.data.qpos[adr : adr + 7] = [x, y, z, 1, 0, 0, 0]
    mujoco.mj_forward(env.model, env.data)


def _zone_points(n: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.uniform(ZONE_LO + 0.01, ZONE_HI - 0.01, size=(n, 2))


# ---------------------------------------------------------------------- expert
def test_full_skill_expert_succeeds():
    ep = expert_rollout(TASK, 0, 1.0)
    check_full_skill_rollout(TASK, ep, 0)
    assert 260 <= len(ep.infos) <= 360
    assert ep.final["eval/in_zone"] >= 0.9 and ep.final["eval/broom_at_rest"] == 1.0


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2])
def test_full_skill_expert_succeeds_on_more_seeds(seed):
    check_full_skill_rollout(TASK, expert_rollout(TASK, seed, 1.0), seed)


def test_full_skill_expert_uses_the_declared_primitives():
    ep = expert_rollout(TASK, 0, 1.0)
    check_declared_primitives(TASK, ep)
    labels = [info["primitive"] for info in ep.infos]
    in_zone = ep.series("eval/in_zone")
    # Scraps only reach the zone while sweeping, and the broom is held throughout the strokes.
    first_sweep = labels.index("sweep")
    assert in_zone[first_sweep] == 0.0
    assert all(info["eval/broom_held"] == 1.0 for info in ep.infos if info["primitive"] == "sweep")
    assert in_zone[labels.index("place")] >= 0.9  # swept before the broom is put back


@pytest.mark.slow
def test_low_skill_expert_fails_sometimes():
    outcomes, progress = [], []
    for seed in range(8):
        ep = expert_rollout(TASK, seed, 0.3)
        outcomes.append(ep.final["success"])
        progress.append(ep.final["progress"])
        if not outcomes[-1] and 0.0 < progress[-1] < 0.9:
            break  # a failure with partial progress is all this test needs
    assert not all(outcomes)
    assert any(0.0 < p < 0.9 for p, ok in zip(progress, outcomes) if not ok)


def test_expert_is_reproducible():
    first = expert_rollout(TASK, 3, 0.5, expert_seed=11, max_steps=40)
    again = expert_rollout.__wrapped__(TASK, 3, 0.5, expert_seed=11, max_steps=40)
    for a, b in zip(first.actions, again.actions):
        np.testing.assert_array_equal(a, b)
    assert first.infos == again.infos


# ---------------------------------------------------------------------- ground truth
def test_reset_scatters_the_scraps_outside_the_zone():
    env = _env(0)
    pos = env.scrap_positions()
    assert pos.shape == (N_SCRAPS, 3) and 30 <= N_SCRAPS <= 40
    assert np.all((pos[:, :2] >= SCRAP_REGION_LO) & (pos[:, :2] <= SCRAP_REGION_HI))
    assert not env.scraps_in_zone().any()
    ev = env.evaluate()
    assert ev.progress == 0.0 and not ev.success and ev.terms["broom_at_rest"] == 1.0
    other = _env(1).scrap_positions()
    assert not np.allclose(pos, other)


def test_progress_follows_the_scraps_in_the_zone():
    env = _env(0)
    xy = env.scrap_positions()[:, :2]
    half = N_SCRAPS // 2
    xy[:half] = _zone_points(half)
    _put_scraps(env, xy)
    ev = env.evaluate()
    assert ev.terms["in_zone"] == pytest.approx(half / N_SCRAPS)
    assert ev.progress == pytest.approx(0.9 * half / N_SCRAPS + 0.1 * half / N_SCRAPS)  # broom at rest
    assert not ev.success

    xy[:] = _zone_points(N_SCRAPS)
    _put_scraps(env, xy)
    full = env.evaluate()
    assert full.success and full.progress == pytest.approx(1.0)

    # Scraps knocked back out of the zone take the progress down.
    xy[: N_SCRAPS // 4] = SCRAP_REGION_LO + 0.02
    _put_scraps(env, xy)
    back = env.evaluate()
    assert back.progress < full.progress and not back.success
    assert back.terms["in_zone"] == pytest.approx(1 - (N_SCRAPS // 4) / N_SCRAPS)


def test_success_needs_ninety_percent_and_the_broom_back_on_its_spot():
    env = _env(2)
    xy = _zone_points(N_SCRAPS)
    n_out = int(np.ceil(0.1 * N_SCRAPS)) + 1  # just under 90 % in
    xy[:n_out] = SCRAP_REGION_HI - 0.02
    _put_scraps(env, xy)
    assert not env.evaluate().success
    xy[: n_out - 1] = _zone_points(n_out - 1)  # one out: >= 90 %
    _put_scraps(env, xy)
    assert env.evaluate().success

    _put_broom(env, *(BROOM_REST + np.array([0.0, -0.2])))  # lying elsewhere on the table
    away = env.evaluate()
    assert not away.success and away.terms["broom_at_rest"] == 0.0 and away.progress < 0.9 + 1e-9
    _put_broom(env, *BROOM_REST, z=0.1)  # hovering over its spot
    assert not env.evaluate().success
    _put_broom(env, *BROOM_REST)
    grasp = env.grasps["left"]
    env.data.eq_active[grasp.eq_id] = 1  # still held
    held = env.evaluate()
    assert not held.success and held.terms["broom_held"] == 1.0
    env.data.eq_active[grasp.eq_id] = 0
    assert env.evaluate().success


def test_scraps_lifted_off_the_table_do_not_count():
    env = _env(0)
    xy = _zone_points(N_SCRAPS)
    _put_scraps(env, xy)
    adr = env._scrap_qadr[0]
    env.data.qpos[adr + 2] = 0.1
    mujoco.mj_forward(env.model, env.data)
    assert env.evaluate().terms["in_zone"] == pytest.approx((N_SCRAPS - 1) / N_SCRAPS)
