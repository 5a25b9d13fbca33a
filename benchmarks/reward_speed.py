"""Reward-wrapper speed: what ``SARM2RewardWrapper`` costs per env step, against the work it cannot avoid.

For 1 and 8 sub-envs (Gymnasium sync vector env of CleanWhiteboard at 128 px), in one run:

* wrapper cost: time in ``wrapped.step`` minus time in the inner ``env.step`` of the same calls
  (measured with a timing shim around the inner env, so simulator noise does not enter the difference);
* unavoidable cost: one encoder call on the step's 3 x N new frames + one batched model forward, timed
  on the same frames outside the wrapper;
* encoder frames per step: counted by the encoder, against re-encoding the whole 7-frame, 3-camera
  window every step as the public SARM code does.

Targets (issue #4): wrapper / unavoidable <= 1.2; >= 7x fewer frames encoded per step than re-encoding
the window. Also prints SARM2 training throughput (samples/s) on CPU, and on CUDA when present. Run::

    python benchmarks/reward_speed.py [--steps 20] [--envs 1,8] [--checkpoint default]
"""

from __future__ import annotations

import argparse
import time

import gymnasium as gym
import numpy as np
from typing_extensions import override

TASK = "SARM2/CleanWhiteboard-v0"
MAX_RATIO = 1.2
MIN_FEWER_FRAMES = 7.0


class InnerTimer(gym.vector.VectorWrapper):
    """Accumulates the time spent in the wrapped vector env's ``step``."""

    def __init__(self, env) -> None:
        super().__init__(env)
        self.seconds = 0.0

    @override
    def step(self, actions):
        start = time.perf_counter()
        out = self.env.step(actions)
        self.seconds += time.perf_counter() - start
        return out


def time_wrapper(model, n_envs: int, steps: int, image_size: int) -> dict[str, float]:
    """Time the reward wrapper on ``n_envs`` vector envs for ``steps`` steps: ms per step and its parts."""
    from sarm2_env.constants import CAMERAS
    from sarm2_env.wrapper import SARM2RewardWrapper

    vec = gym.make_vec(TASK, num_envs=n_envs, vectorization_mode="sync", image_size=image_size)
    inner = InnerTimer(vec)
    wrapped = SARM2RewardWrapper(inner, reward_model=model)
    obs, _ = wrapped.reset(seed=list(range(n_envs)))
    rng = np.random.default_rng(0)
    for _ in range(3):  # warm-up: first calls at a new batch size build the kernels; not what we measure
        obs, *_ = wrapped.step(obs["agent_pos"].astype(np.float32))
    encoder = model.image_encoder
    sessions = [model.start(TASK) for _ in range(n_envs)]

    def reference(o) -> None:  # the unavoidable work: encode the 3N new frames once, one batched forward
        frames = np.stack([o["pixels"][c] for c in CAMERAS], axis=1).reshape(-1, image_size, image_size, 3)
        model.step_batch(sessions, encoder.encode(frames).reshape(n_envs, len(CAMERAS), -1), o["agent_pos"])

    reference(obs)
    frames0 = encoder.frames_encoded
    total, unavoidable, encoded = 0.0, 0.0, 0
    for _ in range(steps):
        # interleaved, on the same observation, so machine noise hits both measurements alike
        action = obs["agent_pos"] + rng.normal(0, 0.02, size=obs["agent_pos"].shape)
        before = inner.seconds
        start = time.perf_counter()
        obs, *_ = wrapped.step(action.astype(np.float32))
        total += (time.perf_counter() - start) - (inner.seconds - before)
        encoded += encoder.frames_encoded - frames0
        start = time.perf_counter()
        reference(obs)
        unavoidable += time.perf_counter() - start
        frames0 = encoder.frames_encoded
    frames_per_step = encoded / steps / n_envs
    wrapped.close()
    window_frames = (model.config.n_history + 2) * len(CAMERAS)  # start + history + current, per camera
    return {
        "wrapper_ms": 1000 * total / steps,
        "unavoidable_ms": 1000 * unavoidable / steps,
        "ratio": total / unavoidable,
        "frames_per_env_step": frames_per_step,
        "fewer_frames_x": window_frames / frames_per_step,
    }


def training_throughput(device: str, batch: int = 64, steps: int = 15) -> float:
    """SARM2 training windows per second on ``device``."""
    import torch

    from rewards.sarm2.config import SARM2Config
    from rewards.sarm2.network import SARM2Net
    from rewards.sarm2.objective import sarm2_loss

    config = SARM2Config()
    net = SARM2Net(config, 1280, 384).to(device)
    opt = torch.optim.AdamW(net.parameters(), 1e-4)
    w = config.window + 1
    b = {
        "emb": torch.randn(batch, w, 3, 1280, device=device),
        "state": torch.randn(batch, w, 14, device=device),
        "task_emb": torch.randn(batch, 384, device=device),
        "primitive": torch.randint(0, 22, (batch,), device=device),
        "target": torch.rand(batch, device=device),
    }
    for i in range(steps + 3):
        if i == 3:
            if device == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
        loss, _ = sarm2_loss(net, b, config)
        opt.zero_grad()
        loss.backward()
        opt.step()
    if device == "cuda":
        torch.cuda.synchronize()
    return batch * steps / (time.perf_counter() - start)


def main() -> None:
    """Print the reward models' inference and training speed on this machine."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--envs", default="1,8")
    p.add_argument("--image-size", type=int, default=128)
    p.add_argument("--checkpoint", default="default")
    args = p.parse_args()
    import torch

    import tasks  # noqa: F401  (headless GL before anything imports mujoco)
    from rewards.sarm2.model import SARM2RewardModel

    model = SARM2RewardModel.load(args.checkpoint, device="cpu")
    print(f"reward model: {model.label}; encoder {model.encoder_spec.key}; torch threads {torch.get_num_threads()}")
    print(f"{'sub-envs':>8} {'wrapper ms':>11} {'unavoid. ms':>11} {'ratio':>6} {'frames/step':>11} {'fewer':>6}")
    ok = True
    for n in [int(x) for x in args.envs.split(",")]:
        r = time_wrapper(model, n, args.steps, args.image_size)
        ok &= r["ratio"] <= MAX_RATIO and r["fewer_frames_x"] >= MIN_FEWER_FRAMES
        print(
            f"{n:>8} {r['wrapper_ms']:>11.1f} {r['unavoidable_ms']:>11.1f} {r['ratio']:>6.2f} "
            f"{r['frames_per_env_step']:>11.1f} {r['fewer_frames_x']:>5.1f}x"
        )
    print(
        f"targets: ratio <= {MAX_RATIO}, >= {MIN_FEWER_FRAMES:.0f}x fewer frames encoded: {'met' if ok else 'MISSED'}"
    )
    print(f"SARM2 (small) training throughput, batch 64: CPU {training_throughput('cpu'):.0f} samples/s", end="")
    if torch.cuda.is_available():
        print(f"; CUDA {training_throughput('cuda'):.0f} samples/s")
    else:
        print("; no CUDA device in this run")


if __name__ == "__main__":
    main()
