"""Episode labels on the real station, where no physics tells us progress or success.

:class:`OperatorLabels` holds what the operator said about the running episode (progress, success, the current
action primitive, "end the episode now") and is safe to update from a key-listener thread.
:class:`~real.env.RealStationEnv` reports it as ``info["progress"]``, ``info["success"]`` and
``info["primitive"]``; a *labelling hook* (any callable ``hook(obs, info) -> mapping``) can override those keys
each step, e.g. a scale reading or a vision check of the task.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from real.config import LabelConfig
from sarm2_env.constants import PRIMITIVES
from sarm2_env.errors import ConfigError

__all__ = ["LabelHook", "LabelState", "OperatorLabels"]

logger = logging.getLogger(__name__)


class LabelHook(Protocol):
    """``hook(obs, info) -> {"progress": float, "success": bool, "primitive": str, "done": bool}`` (any subset)."""

    def __call__(self, obs: Mapping[str, Any], info: Mapping[str, Any]) -> Mapping[str, Any]:
        """Extra info keys from the observation and info of one step."""
        ...


@dataclasses.dataclass(frozen=True)
class LabelState:
    """A snapshot of the operator's labels."""

    progress: float = 0.0
    success: bool = False
    primitive: str | None = None
    done: bool = False
    failed: bool = False


class OperatorLabels:
    """Thread-safe labels for the running episode (see the module docstring).

    Progress never goes below 0 or above 1; marking success sets progress to 1. :meth:`reset` starts a new episode
    with progress 0, no success and ``initial_primitive``.
    """

    def __init__(self, initial_primitive: str | None = None) -> None:
        self._lock = threading.Lock()
        self._initial = self._check_primitive(initial_primitive)
        self._state = LabelState(primitive=self._initial)

    @staticmethod
    def _check_primitive(name: str | None) -> str | None:
        if name is not None and name not in PRIMITIVES:
            raise ConfigError(f"`primitive` must be one of the 22 SARM2 primitives {list(PRIMITIVES)}; got {name!r}")
        return name

    def _update(self, **changes: Any) -> None:
        with self._lock:
            self._state = dataclasses.replace(self._state, **changes)
        logger.info("label: %s", ", ".join(f"{k}={v}" for k, v in changes.items()))

    def reset(self) -> None:
        """Start a new episode."""
        with self._lock:
            self._state = LabelState(primitive=self._initial)

    def set_progress(self, progress: float) -> None:
        """Set task progress (clipped to [0, 1])."""
        self._update(progress=min(max(float(progress), 0.0), 1.0))

    def mark_success(self) -> None:
        """The task is done: success, progress 1."""
        self._update(success=True, progress=1.0)

    def mark_failure(self) -> None:
        """The attempt failed: end the episode without success."""
        self._update(success=False, failed=True, done=True)

    def end(self) -> None:
        """End the episode as it stands."""
        self._update(done=True)

    def set_primitive(self, name: str | None) -> None:
        """Set the primitive being executed (one of the 22 SARM2 names), or ``None``."""
        self._update(primitive=self._check_primitive(name))

    def snapshot(self) -> LabelState:
        """The current labels."""
        with self._lock:
            return self._state

    def key_bindings(self, config: LabelConfig) -> dict[str, Callable[[], None]]:
        """Key -> callback: digits set progress 0.0-0.9, then the success / fail / end / primitive keys."""
        bindings: dict[str, Callable[[], None]] = {str(d): (lambda d=d: self.set_progress(d / 10.0)) for d in range(10)}
        bindings[config.success_key] = self.mark_success
        bindings[config.fail_key] = self.mark_failure
        bindings[config.end_key] = self.end
        bindings[config.dummy_key] = lambda: self.set_primitive("dummy")
        for key, name in config.primitive_keys:
            bindings[key] = lambda name=name: self.set_primitive(name)
        return bindings
