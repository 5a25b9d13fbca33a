"""EpisodeFeatures built from a recorded episode: what a model reads at every step."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from rewards.data import EpisodeFeatures, stacked_rows
from sarm2_env.constants import CAMERAS, STATE_DIM


def recorded(length: int, frame_index: np.ndarray | None) -> SimpleNamespace:
    """An episode whose state at step t is t everywhere (so a test can read which step a row came from)."""
    return SimpleNamespace(
        episode_id="e",
        task_id="SARM2/PullPlug-v0",
        instruction="pull the plug",
        success=True,
        skill=1.0,
        seed=3,
        state=np.repeat(np.arange(length, dtype=np.float32)[:, None], STATE_DIM, axis=1),
        primitive=np.zeros(length, np.int64),
        progress=np.linspace(0, 1, length, dtype=np.float32),
        success_flags=np.zeros(length, bool),
        calibrated_progress=None,
        frame_index=frame_index,
        length=length,
    )


def frame_embeddings(k: int) -> np.ndarray:
    """``(k, C, 2)``: frame ``i`` of camera ``c`` embeds as ``[i, c]`` (exact in float16)."""
    rows = np.arange(k, dtype=np.float32)[:, None, None]
    return np.concatenate(
        [
            np.broadcast_to(rows, (k, len(CAMERAS), 1)),
            np.broadcast_to(np.arange(len(CAMERAS), dtype=np.float32)[None, :, None], (k, len(CAMERAS), 1)),
        ],
        axis=2,
    )


def test_a_query_rate_step_reads_its_newest_frame_and_the_state_recorded_with_it() -> None:
    frame_index = np.array([0, 10, 20, 25])
    feats = EpisodeFeatures.from_episode(recorded(26, frame_index), frame_embeddings(4))
    assert feats.length == 26 and len(feats.embeddings) == 4  # rows stay one per rendered frame
    assert feats.embeddings.dtype == np.float16
    steps = np.array([0, 9, 10, 19, 24, 25])
    # the step a row was rendered at, per step: 0, 0, 10, 10, 20, 25
    np.testing.assert_array_equal(feats.state[steps, 0], [0, 0, 10, 10, 20, 25])
    np.testing.assert_array_equal(feats.embeddings_at(steps)[:, 0, 0], [0, 0, 1, 1, 2, 3])
    windows = np.array([[0, 10, 20], [5, 15, 25]])
    assert feats.embeddings_at(windows).shape == (2, 3, len(CAMERAS), 2)
    np.testing.assert_array_equal(feats.scored_steps, frame_index)


def test_every_step_rendered_reads_its_own_row() -> None:
    feats = EpisodeFeatures.from_episode(recorded(5, None), frame_embeddings(5))
    assert feats.frame_of_step is None
    np.testing.assert_array_equal(feats.state[:, 0], np.arange(5))
    np.testing.assert_array_equal(feats.embeddings_at(np.arange(5))[:, 0, 0], np.arange(5))


def test_stacked_rows_map_every_step_to_its_episodes_row() -> None:
    torch = pytest.importorskip("torch")
    sparse = EpisodeFeatures.from_episode(recorded(26, np.array([0, 10, 20, 25])), frame_embeddings(4))
    dense = EpisodeFeatures.from_episode(recorded(3, None), frame_embeddings(3) + 100)
    emb, row = stacked_rows([sparse, dense], torch.device("cpu"))
    assert emb.shape == (4 + 3, len(CAMERAS), 2) and emb.dtype == torch.float16 and row.shape == (26 + 3,)
    np.testing.assert_array_equal(emb[row[[0, 12, 25, 26, 28]], 0, 0].numpy(), [0, 1, 3, 100, 102])
