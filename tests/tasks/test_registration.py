"""One registration per task: the ``tasks.TASK_TABLE`` line drives the Gymnasium id, the limit and the docs."""

from __future__ import annotations

import re
import types
from importlib import import_module
from pathlib import Path

import gymnasium as gym

import tasks
from tasks.base import YamTaskEnv

ROOT = Path(__file__).resolve().parents[2]


def test_every_table_line_is_registered_with_its_limit_and_classes() -> None:
    assert len(tasks.TASKS) == len(tasks.TASK_TABLE) == 10
    for entry in tasks.TASK_TABLE:
        spec = gym.spec(entry.id)
        assert spec.entry_point == entry.env_entry_point
        assert spec.max_episode_steps == entry.max_episode_steps
        module = import_module(f"tasks.{entry.module}")
        env_cls = getattr(module, f"{entry.name}Env")
        assert issubclass(env_cls, YamTaskEnv) and env_cls.task_name == entry.name
        assert hasattr(module, f"{entry.name}Expert")
        # The env's own limit (read by the expert's episode runner) is the table's, not a second copy.
        assert "max_episode_steps" not in vars(env_cls)
        assert YamTaskEnv.max_episode_steps.fget(types.SimpleNamespace(task_name=entry.name)) == entry.max_episode_steps
        assert tasks.task_entry(entry.name) is entry
        assert entry.instruction == env_cls.instruction and len(entry.instruction) > 10


def test_the_task_table_in_the_docs_lists_exactly_the_registered_ids() -> None:
    text = (ROOT / "docs" / "tasks.md").read_text()
    section = text.split("## The ten tasks", 1)[1].split("\n## ", 1)[0]
    documented = re.findall(r"^\| `(SARM2/[A-Za-z]+-v\d+)` \|", section, flags=re.M)
    assert sorted(documented) == sorted(tasks.TASKS), "docs/tasks.md's task table and tasks.TASK_TABLE disagree"
