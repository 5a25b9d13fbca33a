"""SARM2's training options against the clock shortcut: speed, hold, mismatched instructions, motion negatives."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rewards.sarm2.config import SARM2Config
from rewards.sarm2.windows import causal_windows, hold_windows, rewind_windows, speed_strides
from sarm2_env.constants import NUM_PRIMITIVES, STATE_DIM
from sarm2_env.errors import ConfigError
from tests.rewards.fixtures import SIM_TASKS, synthetic_features

LENGTH = 60


def frame_indexed(episode_id: str, instruction: str, length: int = LENGTH, offset: float = 0.0):
    """An episode whose embedding and state values are ``offset`` + the frame index (so a batch says which frames,
    and which episode, it read)."""
    from rewards.data import EpisodeFeatures

    frame = offset + np.arange(length, dtype=np.float32)
    return EpisodeFeatures(
        episode_id=episode_id,
        task_id=SIM_TASKS[0],
        instruction=instruction,
        success=True,
        skill=1.0,
        embeddings=np.broadcast_to(frame[:, None, None], (length, 3, 4)).copy(),
        state=np.broadcast_to(frame[:, None], (length, STATE_DIM)).copy(),
        primitive=np.arange(length) % NUM_PRIMITIVES,
        progress=np.zeros(length, dtype=np.float32),
    )


def test_per_window_strides() -> None:
    w = causal_windows(np.array([30, 30]), n_history=2, stride=np.array([10, 5]))
    assert w.tolist() == [[10, 20, 30], [20, 25, 30]]


def test_speed_strides_double_or_halve_at_the_given_rate() -> None:
    strides = speed_strides(10, 4000, np.random.default_rng(0), speed_prob=0.5)
    assert set(np.unique(strides)) == {5, 10, 20}
    assert 0.45 < (strides != 10).mean() < 0.55
    assert (speed_strides(10, 100, np.random.default_rng(0), speed_prob=0.0) == 10).all()
    assert set(np.unique(speed_strides(1, 200, np.random.default_rng(0), 1.0))) == {1, 2}  # half of 1 stays 1


def test_rewind_with_per_window_strides_steps_back_by_each_stride() -> None:
    stride = np.array([2, 4] * 500)
    idx, k = rewind_windows(np.full(1000, 80), 5, stride, np.random.default_rng(0), rewind_prob=1.0, max_rewind=2)
    for row, kb, s in zip(idx, k, stride):
        if kb:
            assert (np.diff(row)[-kb:] == -s).all()


def test_hold_freezes_the_last_frames_of_a_window() -> None:
    window = np.tile(np.arange(0, 60, 10), (500, 1))
    held = hold_windows(window, np.random.default_rng(0), hold_prob=1.0)
    for row in held:
        changed = np.flatnonzero(row != np.arange(0, 60, 10))
        assert len(changed) >= 1  # every window held (j >= 1)
        first = changed[0]
        assert (row[first:] == row[first - 1]).all()  # frozen on the frame before the pause
    assert np.array_equal(hold_windows(window, np.random.default_rng(0), 0.0), window)


def test_held_window_targets_do_not_advance() -> None:
    from rewards.sarm2.objective import WindowBatcher

    config = SARM2Config.preset("tiny", rewind_prob=0.0, hold_prob=1.0)
    batcher = WindowBatcher([frame_indexed("e", "x")], {"x": np.zeros(8, np.float32)}, config, torch.device("cpu"))
    batch = batcher.sample(np.random.default_rng(0), 128)
    frames = batch["emb"][:, 1:, 0, 0]  # (B, W) frame index of each window entry
    assert (frames[:, -1] == frames[:, -2]).all()  # the scene is frozen at the end of every window
    assert torch.allclose(batch["target"], frames[:, -1] / (LENGTH - 1))  # target = the frozen frame's progress


def test_wrong_instruction_negatives_get_another_task_and_target_zero() -> None:
    from rewards.sarm2.objective import WindowBatcher

    emb = {"a": np.zeros(8, np.float32), "b": np.ones(8, np.float32)}
    config = SARM2Config.preset("tiny", rewind_prob=0.0, negative_prob=0.5)
    episodes = [frame_indexed("e0", "a"), frame_indexed("e1", "b", offset=1000.0)]
    batcher = WindowBatcher(episodes, emb, config, torch.device("cpu"))
    batch = batcher.sample(np.random.default_rng(0), 512)
    current = batch["emb"][:, -1, 0, 0]
    second = current >= 1000  # drawn from e1, whose instruction is "b" (ones)
    own = second.float()  # the value of the episode's own instruction embedding
    swapped = batch["task_emb"][:, 0] != own
    assert 0.35 < swapped.float().mean() < 0.65
    assert (batch["target"][swapped] == 0).all()
    time_linear = (current - 1000 * second.float()) / (LENGTH - 1)
    assert torch.allclose(batch["target"][~swapped], time_linear[~swapped])


def test_options_off_draw_nothing_extra_from_the_generator() -> None:
    """Defaults (probabilities 0) reproduce today's training batches exactly."""
    from rewards.sarm2.objective import WindowBatcher

    emb = {"x": np.zeros(8, np.float32)}
    base = SARM2Config.preset("tiny")
    assert base.speed_prob == base.hold_prob == base.negative_prob == 0.0
    batcher = WindowBatcher([frame_indexed("e", "x")], emb, base, torch.device("cpu"))
    a = batcher.sample(np.random.default_rng(3), 64)
    rng = np.random.default_rng(3)
    episode = rng.integers(0, 1, size=64)
    window, _ = rewind_windows(np.full(64, LENGTH), base.n_history, base.frame_stride, rng, base.rewind_prob, 3)
    assert torch.equal(a["emb"][:, 1:, 0, 0], torch.from_numpy(window).float())
    assert episode.shape == (64,)


@pytest.mark.parametrize("field", ["speed_prob", "hold_prob", "negative_prob"])
def test_probabilities_are_validated(field: str) -> None:
    with pytest.raises(ConfigError, match=field):
        SARM2Config(**{field: 1.5})


def test_fit_with_motion_negatives_learns_their_zero_target() -> None:
    """Negatives (episodes whose task does not advance) pull the prediction on them towards their physics progress."""
    import dataclasses

    from rewards.encoders import make_image_encoder
    from rewards.sarm2.model import SARM2RewardModel

    demos = synthetic_features(SIM_TASKS[0], 6, seed=0)
    rng = np.random.default_rng(5)
    # motion negatives: embeddings unlike any demo frame, physics progress 0 throughout
    negatives = [
        dataclasses.replace(
            f,
            episode_id=f"neg-{i}",
            embeddings=(f.embeddings + 2.0 * rng.normal(size=f.embeddings.shape)).astype(np.float32),
            progress=np.zeros(f.length, np.float32),
            calibrated_progress=np.zeros(f.length, np.float32),
            success=False,
        )
        for i, f in enumerate(synthetic_features(SIM_TASKS[0], 4, seed=9))
    ]

    def trained(with_negatives: bool) -> float:
        model = SARM2RewardModel(
            SARM2Config.preset("tiny", steps=150),
            encoder=make_image_encoder("tiny", device="cpu"),
            text_encoder="tiny-hash",
            device="cpu",
        )
        summary = model.fit(demos, progress=False, negatives=negatives if with_negatives else ())
        assert summary["negative_episodes"] == (len(negatives) if with_negatives else 0)
        return float(np.mean([model.predict_episode(n).progress[-10:].mean() for n in negatives]))

    assert trained(True) < trained(False) - 0.1
