"""The one policy interface of the toolkit, in simulation and on the real station.

A :class:`Policy` acts in ``N`` envs at once: ``reset(instructions)`` starts their episodes and ``act(observations)``
maps a batch of observations (every array with a leading ``N`` axis, as a Gymnasium vector env returns them) to
``(N, 14)`` absolute joint targets, one action per env and step. Chunked policies keep their own queue of planned
actions. SPIRAL's policies, the rollout collectors, ``real.record`` and the real station's teleoperation all use it;
on the real station ``N = 1`` (:func:`act_once`).

A model that only has ``predict(obs) -> (14,)`` or an action chunk ``(k, 14)`` for one observation (a VLA client,
say) becomes a Policy through :class:`PredictPolicy`, which executes each chunk in order, one action per step.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from sarm2_env.actions import numeric_array
from sarm2_env.constants import ACTION_DIM
from sarm2_env.errors import InputShapeError, InvalidActionError

__all__ = ["ActionQueues", "Policy", "PredictPolicy", "act_once", "action_chunk", "batch_of_one", "as_policy"]


@runtime_checkable
class Policy(Protocol):
    """Acts in ``N`` envs at once (see the module docstring)."""

    def reset(self, instructions: Sequence[str], indices: Sequence[int] | None = None) -> None:
        """Start new episodes: all ``N`` envs (``indices=None``; ``N = len(instructions)``) or only those listed."""

    def act(self, observations: Any) -> np.ndarray:
        """Batched observations (a dict such as ``pixels`` per camera ``(N, H, W, 3)`` and ``agent_pos (N, 14)``,
        or a flat ``(N, D)`` state) -> ``(N, 14)`` actions."""


def batch_of_one(observation: Any) -> Any:
    """One env's observation as a batch of ``N = 1``: a leading axis on every array, nested dicts kept."""
    if isinstance(observation, Mapping):
        return {key: batch_of_one(value) for key, value in observation.items()}
    return np.asarray(observation)[None]


def _row(observations: Any, i: int) -> Any:
    if isinstance(observations, Mapping):
        return {key: _row(value, i) for key, value in observations.items()}
    return np.asarray(observations)[i]


def act_once(policy: Policy, observation: Any) -> np.ndarray:
    """``policy``'s action ``(14,)`` for one env's (unbatched) observation."""
    actions = np.asarray(policy.act(batch_of_one(observation)))
    if actions.shape != (1, ACTION_DIM):
        raise InvalidActionError(f"a policy's act() must return (1, {ACTION_DIM}) for one env; got {actions.shape}")
    return actions[0]


def action_chunk(output: Any) -> np.ndarray:
    """A ``predict`` output as a chunk ``(k, 14)`` of actions (a single action becomes ``k = 1``)."""
    arr = numeric_array(output, "a policy must return numbers of shape (14,) or (k, 14)")
    if arr.ndim == 1:
        arr = arr[None]
    if arr.ndim != 2 or arr.shape[1] != ACTION_DIM or arr.shape[0] < 1:
        raise InvalidActionError(f"a policy must return shape ({ACTION_DIM},) or (k, {ACTION_DIM}); got {arr.shape}")
    return arr


class ActionQueues:
    """Per-env queues of planned actions, the mechanism every chunked policy acts through: ``reset`` empties the
    queues of the envs that start an episode, and :meth:`_pop_actions` refills the empty ones with a new plan
    before taking one action from each."""

    _instructions: list[str]
    _queues: list[list[np.ndarray]]

    def reset(self, instructions: Sequence[str], indices: Sequence[int] | None = None) -> None:
        """Start new episodes: all envs (``indices=None``) or only those listed; their queues are emptied."""
        if indices is None:
            self._instructions = [str(s) for s in instructions]
            self._queues = [[] for _ in self._instructions]
            return
        if len(instructions) != len(indices):
            raise InputShapeError(f"`instructions`: expected one per index ({len(indices)}); got {len(instructions)}")
        for i, text in zip(indices, instructions):
            self._instructions[i] = str(text)
            self._queues[i] = []

    def _pop_actions(self, n: int, plan: Callable[[list[int]], Sequence[np.ndarray]]) -> np.ndarray:
        """One action per env ``(n, 14)``: the envs whose queue ran out (their indices) first get ``plan(need)``,
        one chunk ``(K, 14)`` each."""
        if n != len(self._queues):
            raise InputShapeError(
                f"`observations`: the policy was reset for {len(self._queues)} envs; got a batch of {n}"
            )
        need = [i for i in range(n) if not self._queues[i]]
        if need:
            chunks = plan(need)
            for j, i in enumerate(need):
                self._queues[i] = list(chunks[j])
        return np.stack([q.pop(0) for q in self._queues]).astype(np.float32)


def _batch_size(observations: Any) -> int:
    if isinstance(observations, Mapping):
        return _batch_size(next(iter(observations.values())))
    return len(observations)


class PredictPolicy(ActionQueues):
    """A :class:`Policy` from a single-observation model: ``predict(obs)`` (a method, or the callable itself)
    returns one action ``(14,)`` or a chunk ``(k, 14)``; each env executes its chunk in order and asks for the
    next one when it runs out.

    Args:
        predictor: an object with ``predict(obs)``, or a function ``obs -> action or chunk``.
    """

    def __init__(self, predictor: Any) -> None:
        predict = getattr(predictor, "predict", predictor)
        if not callable(predict):
            raise TypeError(f"`predictor` must have predict(obs) or be callable; got {type(predictor).__name__}")
        self.predictor = predictor
        self._predict: Callable[[Any], Any] = predict
        self._instructions = []
        self._queues = []

    def act(self, observations: Any) -> np.ndarray:
        """One action per env: the next of its chunk, predicting a new chunk from its observation when empty."""
        if not self._queues:
            self.reset([""])  # used without reset(): one env, as on the real station
        return self._pop_actions(
            _batch_size(observations),
            lambda need: [action_chunk(self._predict(_row(observations, i))) for i in need],
        )


def as_policy(obj: Any) -> Policy:
    """``obj`` if it is a :class:`Policy` (``reset`` and ``act``), else wrapped in :class:`PredictPolicy` when it
    has ``predict``; anything else is a :class:`TypeError` naming what was expected."""
    if isinstance(obj, Policy):
        return obj
    if callable(getattr(obj, "predict", None)):
        return PredictPolicy(obj)
    raise TypeError(
        f"expected a Policy (reset(instructions), act(observations) -> (N, 14)) or an object with "
        f"predict(obs) -> (14,) or (k, 14); got {type(obj).__name__}"
    )
