"""The one policy interface (sarm2_env.policy): batching one observation, chunk execution, the adapters."""

from __future__ import annotations

import numpy as np
import pytest

from sarm2_env.errors import InputShapeError, InvalidActionError
from sarm2_env.policy import Policy, PredictPolicy, act_once, action_chunk, as_policy, batch_of_one


class _ChunkModel:
    """predict(obs) -> a chunk of 3 actions whose first entry counts the calls."""

    def __init__(self) -> None:
        self.calls = 0

    def predict(self, obs):
        self.calls += 1
        chunk = np.zeros((3, 14))
        chunk[:, 0] = self.calls
        chunk[:, 1] = np.arange(3)
        chunk[:, 2] = obs["agent_pos"][0]  # proves the unbatched observation reached predict
        return chunk


def _obs(n: int, value: float = 0.5):
    return {"agent_pos": np.full((n, 14), value), "pixels": {"top": np.zeros((n, 4, 4, 3), np.uint8)}}


def test_batch_of_one_adds_a_leading_axis_everywhere():
    batch = batch_of_one({"agent_pos": np.zeros(14), "pixels": {"top": np.zeros((4, 4, 3))}})
    assert batch["agent_pos"].shape == (1, 14) and batch["pixels"]["top"].shape == (1, 4, 4, 3)
    assert batch_of_one(np.zeros(7)).shape == (1, 7)


def test_predict_policy_runs_each_chunk_in_order_per_env():
    model = _ChunkModel()
    policy = PredictPolicy(model)
    assert isinstance(policy, Policy)
    policy.reset(["a", "b"])
    first = policy.act(_obs(2, 0.25))
    assert first.shape == (2, 14) and first[:, 0].tolist() == [1, 2] and first[:, 2].tolist() == [0.25, 0.25]
    seconds = [policy.act(_obs(2))[:, 1].tolist() for _ in range(2)]
    assert seconds == [[1, 1], [2, 2]] and model.calls == 2  # the chunks are used up before predicting again
    policy.reset(["b"], indices=[1])  # a new episode in env 1 drops its queue only
    third = policy.act(_obs(2))
    assert model.calls == 4 and third[:, 1].tolist() == [0, 0]
    with pytest.raises(InputShapeError, match="one per index"):
        policy.reset(["x", "y"], indices=[0])
    with pytest.raises(InputShapeError, match="reset for 2 envs; got a batch of 3"):
        policy.act(_obs(3))


def test_act_once_and_as_policy():
    model = _ChunkModel()
    policy = as_policy(model)
    assert isinstance(policy, PredictPolicy) and as_policy(policy) is policy
    action = act_once(policy, {"agent_pos": np.full(14, 0.75), "pixels": {"top": np.zeros((4, 4, 3), np.uint8)}})
    assert action.shape == (14,) and action[2] == 0.75
    with pytest.raises(TypeError, match="expected a Policy"):
        as_policy(object())

    class _Wide:
        def reset(self, instructions, indices=None):
            pass

        def act(self, observations):
            return np.zeros((2, 14))

    with pytest.raises(InvalidActionError, match=r"\(1, 14\) for one env; got \(2, 14\)"):
        act_once(_Wide(), {"agent_pos": np.zeros(14)})


def test_action_chunk_shapes():
    assert action_chunk(np.zeros(14)).shape == (1, 14)
    assert action_chunk(np.zeros((5, 14))).shape == (5, 14)
    for bad in (np.zeros(13), np.zeros((2, 3, 14)), "x", np.zeros((0, 14))):
        with pytest.raises(InvalidActionError):
            action_chunk(bad)
