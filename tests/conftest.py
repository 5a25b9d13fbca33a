"""Shared pytest configuration: markers and cached simulated environments."""

from __future__ import annotations

import pytest

# ``import tasks`` picks the headless OpenGL backend; it must run before anything imports mujoco,
# or rendering falls back to GLFW and fails without a display. Doing it here makes the test suite
# independent of the order in which test modules import things.
import tasks  # noqa: F401

MARKERS = {
    "slow": "expensive statistical tests (still part of the default run; deselect with -m 'not slow')",
    "gpu": "tests that need a CUDA device",
    "hardware": "tests that need the real YAM station",
}


def pytest_configure(config: pytest.Config) -> None:
    for name, help_text in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {help_text}")


@pytest.fixture(scope="session")
def cached_env():
    """``cached_env(task_id, image_size=32)``: one shared ``gym.make`` env per (id, size).

    Building a station costs ~0.1-0.7 s; tests that use a shared env must ``reset(seed=...)`` it
    first (which also checks that reset leaves nothing of an earlier episode behind).
    """
    import gymnasium as gym

    envs: dict[tuple[str, object], gym.Env] = {}

    def get(task_id: str, image_size: int | tuple[int, int] = 32) -> gym.Env:
        key = (task_id, image_size)
        if key not in envs:
            envs[key] = gym.make(task_id, image_size=image_size)
        return envs[key]

    yield get
    for env in envs.values():
        env.close()


# reward-model fixtures (a tiny trained SARM2 checkpoint) shared by tests/rewards and tests/sarm2_env
from tests.rewards.fixtures import tiny_sarm2_checkpoint  # noqa: E402,F401
