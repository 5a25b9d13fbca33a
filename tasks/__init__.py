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

import dataclasses  # noqa: E402
import importlib  # noqa: E402

import gymnasium as gym  # noqa: E402

from sarm2_env.errors import UnknownNameError  # noqa: E402


@dataclasses.dataclass(frozen=True)
class TaskEntry:
    """One registered task: where its env and scripted expert live, and its episode limit.

    Attributes:
        name: the task's name (``"PullPlug"``); its module defines ``<name>Env`` and ``<name>Expert``.
        module: the module under :mod:`tasks` that holds both classes.
        max_episode_steps: episode limit in control steps at 10 Hz (about twice a full-skill expert episode).
        version: the id's ``-vN``; raised when the task's observations, physics or ``progress`` change meaning.
    """

    name: str
    module: str
    max_episode_steps: int
    version: int = 0

    @property
    def id(self) -> str:
        """The Gymnasium id, ``SARM2/<Name>-v<version>``."""
        return f"SARM2/{self.name}-v{self.version}"

    @property
    def env_entry_point(self) -> str:
        """``module:Class`` of the env."""
        return f"tasks.{self.module}:{self.name}Env"

    @property
    def instruction(self) -> str:
        """The task's instruction (its env class's ``instruction``)."""
        module, name = self.env_entry_point.split(":")
        return str(getattr(importlib.import_module(module), name).instruction)

    @property
    def expert_entry_point(self) -> str:
        """``module:Class`` of the scripted expert."""
        return f"tasks.{self.module}:{self.name}Expert"


#: Every task, one line each: adding a task is its module plus one line here.
TASK_TABLE: tuple[TaskEntry, ...] = (
    TaskEntry("FoldShorts", "fold_shorts", 700),
    TaskEntry("CleanWhiteboard", "clean_whiteboard", 900),
    TaskEntry("PlatesToBin", "plates_to_bin", 450),
    TaskEntry("PlatesToDishRack", "plates_to_dish_rack", 700),
    TaskEntry("FoldTShirt", "fold_tshirt", 900),
    TaskEntry("PullPlug", "pull_plug", 400),
    TaskEntry("SetDinnerTable", "set_dinner_table", 900),
    TaskEntry("PutAwayUmbrella", "put_away_umbrella", 500),
    TaskEntry("SweepPaperScraps", "sweep_paper_scraps", 600),
    TaskEntry("CoilHeadphones", "coil_headphones", 600),
)

#: Registered task ids -> their entries, in the table's order.
TASKS: dict[str, TaskEntry] = {entry.id: entry for entry in TASK_TABLE}

for _entry in TASK_TABLE:
    gym.register(_entry.id, entry_point=_entry.env_entry_point, max_episode_steps=_entry.max_episode_steps)


def task_entry(name: str) -> TaskEntry:
    """The :class:`TaskEntry` of a task id or short name (see :func:`resolve_task_id`)."""
    return TASKS[resolve_task_id(name)]


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


def make_task_env(task: str, **kwargs) -> gym.Env:
    """``gym.make`` for a SARM2 task by full id or short name (``"FoldShorts"``): the bare task env, no reward
    wrapper (:func:`sarm2_env.make_env` adds one)."""
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
    module, cls = TASKS[task_id].expert_entry_point.split(":")
    return getattr(import_module(module), cls)(env, skill=skill, variability=variability)


__all__ = [
    "TASKS",
    "TASK_TABLE",
    "TaskEntry",
    "make_task_env",
    "make_expert",
    "resolve_task_id",
    "resolve_task_ids",
    "task_entry",
]
