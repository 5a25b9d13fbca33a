"""MuJoCo task proxies of the SARM2 benchmark on a simulated bimanual YAM station.

Every task is a Gymnasium env registered as ``SARM2/<Task>-v0``::

    import gymnasium as gym
    import tasks  # registers the ids

    env = gym.make("SARM2/CleanWhiteboard-v0", image_size=128)

Importing this package selects a headless OpenGL backend (EGL, else OSMesa) unless ``MUJOCO_GL``
is set, which is why it must happen before anything imports ``mujoco``.
"""

from __future__ import annotations

from tasks.rendering import configure_gl

configure_gl()

import gymnasium as gym  # noqa: E402

from sarm2_env.errors import UnknownNameError  # noqa: E402

#: Registered task ids -> (env entry point, scripted-expert entry point).
TASKS: dict[str, tuple[str, str]] = {
    "SARM2/FoldShorts-v0": ("tasks.fold_shorts:FoldShortsEnv", "tasks.fold_shorts:FoldShortsExpert"),
    "SARM2/CleanWhiteboard-v0": (
        "tasks.clean_whiteboard:CleanWhiteboardEnv",
        "tasks.clean_whiteboard:CleanWhiteboardExpert",
    ),
    "SARM2/PlatesToBin-v0": ("tasks.plates_to_bin:PlatesToBinEnv", "tasks.plates_to_bin:PlatesToBinExpert"),
    "SARM2/PlatesToDishRack-v0": (
        "tasks.plates_to_dish_rack:PlatesToDishRackEnv",
        "tasks.plates_to_dish_rack:PlatesToDishRackExpert",
    ),
    "SARM2/FoldTShirt-v0": ("tasks.fold_tshirt:FoldTShirtEnv", "tasks.fold_tshirt:FoldTShirtExpert"),
    "SARM2/PullPlug-v0": ("tasks.pull_plug:PullPlugEnv", "tasks.pull_plug:PullPlugExpert"),
    "SARM2/SetDinnerTable-v0": (
        "tasks.set_dinner_table:SetDinnerTableEnv",
        "tasks.set_dinner_table:SetDinnerTableExpert",
    ),
    "SARM2/PutAwayUmbrella-v0": (
        "tasks.put_away_umbrella:PutAwayUmbrellaEnv",
        "tasks.put_away_umbrella:PutAwayUmbrellaExpert",
    ),
    "SARM2/SweepPaperScraps-v0": (
        "tasks.sweep_paper_scraps:SweepPaperScrapsEnv",
        "tasks.sweep_paper_scraps:SweepPaperScrapsExpert",
    ),
    "SARM2/CoilHeadphones-v0": (
        "tasks.coil_headphones:CoilHeadphonesEnv",
        "tasks.coil_headphones:CoilHeadphonesExpert",
    ),
}

# Episode limits in control steps at 10 Hz: about twice a full-skill expert episode.
gym.register("SARM2/FoldShorts-v0", entry_point="tasks.fold_shorts:FoldShortsEnv", max_episode_steps=700)
gym.register("SARM2/CleanWhiteboard-v0", entry_point="tasks.clean_whiteboard:CleanWhiteboardEnv", max_episode_steps=900)
gym.register("SARM2/PlatesToBin-v0", entry_point="tasks.plates_to_bin:PlatesToBinEnv", max_episode_steps=450)
gym.register(
    "SARM2/PlatesToDishRack-v0", entry_point="tasks.plates_to_dish_rack:PlatesToDishRackEnv", max_episode_steps=700
)
gym.register("SARM2/FoldTShirt-v0", entry_point="tasks.fold_tshirt:FoldTShirtEnv", max_episode_steps=900)
gym.register("SARM2/PullPlug-v0", entry_point="tasks.pull_plug:PullPlugEnv", max_episode_steps=400)
gym.register("SARM2/SetDinnerTable-v0", entry_point="tasks.set_dinner_table:SetDinnerTableEnv", max_episode_steps=900)
gym.register(
    "SARM2/PutAwayUmbrella-v0", entry_point="tasks.put_away_umbrella:PutAwayUmbrellaEnv", max_episode_steps=500
)
gym.register(
    "SARM2/SweepPaperScraps-v0", entry_point="tasks.sweep_paper_scraps:SweepPaperScrapsEnv", max_episode_steps=600
)
gym.register("SARM2/CoilHeadphones-v0", entry_point="tasks.coil_headphones:CoilHeadphonesEnv", max_episode_steps=600)


def resolve_task_id(name: str) -> str:
    """Accept ``SARM2/FoldShorts-v0``, ``FoldShorts-v0`` or ``FoldShorts``; raise on unknown names."""
    aliases = {}
    for task_id in TASKS:
        short = task_id.split("/", 1)[1]
        if name in (task_id, short, short.rsplit("-v", 1)[0]):
            return task_id
        aliases.update({short: task_id, short.rsplit("-v", 1)[0]: task_id})
    raise UnknownNameError("task", name, TASKS, aliases=aliases)


def resolve_task_ids(text: str) -> list[str]:
    """A command line's task list: ``"all"`` (every id, sorted) or comma-separated ids or short names."""
    if text == "all":
        return sorted(TASKS)
    return [resolve_task_id(t) for t in text.split(",")]


def make_env(task: str, **kwargs) -> gym.Env:
    """``gym.make`` for a SARM2 task by full id or short name (``"FoldShorts"``)."""
    return gym.make(resolve_task_id(task), **kwargs)


def make_expert(env: gym.Env, skill: float = 1.0, variability: float = 0.0):
    """The scripted expert of ``env``'s task, at the given skill and operator variability (both in [0, 1]).

    See :class:`tasks.expert.ScriptedExpert` for what each setting changes.
    """
    from importlib import import_module

    spec = env.unwrapped.spec
    task_id = spec.id if spec is not None else None
    if task_id not in TASKS:
        raise UnknownNameError("task", str(task_id), TASKS)
    module, cls = TASKS[task_id][1].split(":")
    return getattr(import_module(module), cls)(env, skill=skill, variability=variability)


__all__ = ["TASKS", "make_env", "make_expert", "resolve_task_id", "resolve_task_ids"]
