"""GPU smoke tests (marker ``gpu``): the reward core gives the CPU's answers on CUDA, and training runs there.

Skipped where no CUDA device is present (every test machine here); run them on a GPU machine with
``pytest -m gpu``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]
DEVICE = "cuda"


def test_encoder_on_cuda_matches_cpu() -> None:
    from rewards.encoders import make_image_encoder

    frames = np.random.default_rng(0).integers(0, 256, (6, 128, 128, 3), dtype=np.uint8)
    cpu = make_image_encoder("efficientnet-lite0", device="cpu").encode(frames)
    gpu = make_image_encoder("efficientnet-lite0", device=DEVICE).encode(frames)
    assert gpu.shape == cpu.shape == (6, 1280)
    np.testing.assert_allclose(gpu, cpu, rtol=0.05, atol=0.05)  # TF32 / cuDNN kernels differ from the CPU's


def test_shipped_checkpoint_on_cuda_matches_cpu() -> None:
    from rewards import make_reward_model
    from tests.rewards.fixtures import synthetic_features

    episode = synthetic_features("SARM2/CleanWhiteboard-v0", 1, length=40, dim=1280)[0]
    cpu = make_reward_model("sarm2", checkpoint="default", device="cpu").predict_episode(episode).progress
    gpu_model = make_reward_model("sarm2", checkpoint="default", device=DEVICE)
    assert next(gpu_model.net.parameters()).device.type == "cuda"
    gpu = gpu_model.predict_episode(episode).progress
    np.testing.assert_allclose(gpu, cpu, atol=2e-2)


def test_training_runs_on_cuda(tmp_path) -> None:
    from rewards.encoders import make_image_encoder
    from rewards.sarm2.config import SARM2Config
    from rewards.sarm2.model import SARM2RewardModel
    from tests.rewards.fixtures import SIM_TASKS, synthetic_features

    feats = [f for k, task in enumerate(SIM_TASKS) for f in synthetic_features(task, 3, seed=k)]
    model = SARM2RewardModel(
        SARM2Config.preset("tiny", steps=20),
        encoder=make_image_encoder("tiny", device=DEVICE),
        text_encoder="tiny-hash",
        device=DEVICE,
    )
    model.fit(feats, progress=False)
    assert next(model.net.parameters()).device.type == "cuda"
    progress = model.predict_episode(feats[0]).progress
    assert progress.shape == (feats[0].length,) and np.all(np.isfinite(progress))
    model.save(tmp_path / "ckpt")  # and it loads back on the CPU
    from rewards import make_reward_model

    again = make_reward_model("sarm2", checkpoint=tmp_path / "ckpt", device="cpu").predict_episode(feats[0])
    np.testing.assert_allclose(again.progress, progress, atol=2e-2)
