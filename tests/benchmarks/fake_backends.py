"""A reward backend that fails mid-run, registered by the harness tests to check failure isolation."""

from __future__ import annotations

from rewards.references import OracleRewardModel


class ExplodingRewardModel(OracleRewardModel):
    """Behaves like ``oracle`` until asked to predict, then raises."""

    name = "exploding"

    def predict_episode(self, episode, embeddings=None):
        raise RuntimeError("simulated crash inside a backend")
