"""Fixtures for reward-model tests: synthetic cached features and a tiny trained SARM2 checkpoint."""

from __future__ import annotations

import numpy as np
import pytest

from sarm2_env.constants import STATE_DIM

TINY_DIM = 64  # embedding size of the tiny random-init test encoder
SIM_TASKS = ("SARM2/FoldShorts-v0", "SARM2/CleanWhiteboard-v0")


def instruction_of(task_id: str) -> str:
    import gymnasium as gym

    import tasks  # noqa: F401  (registers the ids)

    module, cls = gym.spec(task_id).entry_point.split(":")
    from importlib import import_module

    return getattr(import_module(module), cls).instruction


def synthetic_features(task_id: str, n: int, length: int = 30, seed: int = 0, dim: int = TINY_DIM):
    """Episodes whose embeddings carry a noisy time signal, so time-linear progress is learnable."""
    from rewards.data import EpisodeFeatures

    rng = np.random.default_rng(seed)
    start, end = np.random.default_rng(123).normal(size=(2, 3, dim)).astype(np.float32)
    out = []
    for i in range(n):
        t = np.linspace(0.0, 1.0, length, dtype=np.float32)
        emb = (1 - t)[:, None, None] * start + t[:, None, None] * end + 0.3 * rng.normal(size=(length, 3, dim))
        emb = emb.astype(np.float16).astype(np.float32)  # the precision embeddings are stored at
        primitive = np.where(t < 0.5, 7, 8).astype(np.int64)  # pick_grab then place
        out.append(
            EpisodeFeatures(
                episode_id=f"{task_id.split('/')[-1]}-{seed}-{i}",
                task_id=task_id,
                instruction=instruction_of(task_id),
                success=True,
                skill=1.0,
                embeddings=emb,
                state=rng.normal(size=(length, STATE_DIM)).astype(np.float32),
                primitive=primitive,
                progress=t,
            )
        )
    return out


@pytest.fixture(scope="session")
def tiny_sarm2_checkpoint(tmp_path_factory):
    """A tiny SARM2 (tiny encoder, tiny-hash text) trained briefly on synthetic features of both sim tasks."""
    from rewards.encoders import make_image_encoder
    from rewards.sarm2.config import SARM2Config
    from rewards.sarm2.model import SARM2RewardModel

    path = tmp_path_factory.mktemp("ckpt") / "tiny-sarm2"
    feats = [f for k, task in enumerate(SIM_TASKS) for f in synthetic_features(task, 4, seed=k)]
    model = SARM2RewardModel(
        SARM2Config.preset("tiny", steps=60),
        encoder=make_image_encoder("tiny", device="cpu"),
        text_encoder="tiny-hash",
        device="cpu",
    )
    model.fit(feats, progress=False)
    model.save(path)
    return path


def at_query_rate(feats, every: int):
    """``feats`` as if recorded with frames every ``every`` steps plus the last: embeddings and state held between
    rendered steps, ``query_indices`` set (what :meth:`EpisodeFeatures.from_episode` builds for such episodes)."""
    import dataclasses

    from sarm2_env.dataset import hold_rows

    steps = np.unique(np.r_[np.arange(0, feats.length, every), feats.length - 1])
    rows = steps[hold_rows(steps, feats.length)]  # per step: the newest rendered step
    return dataclasses.replace(
        feats, embeddings=feats.embeddings[rows], state=feats.state[rows], query_indices=steps.astype(np.int64)
    )
