"""Image encoder cost: milliseconds per frame of each frozen encoder, on the same frames in one run.

The reward model's unavoidable cost per step is one encoder call on the new frames (``benchmarks/reward_speed.py``);
a richer feature (``efficientnet-lite0-grid2``: the last feature map pooled into 2 x 2 cells) must say what it adds
to it. Every encoder encodes the same rendered frames (an expert episode's three views), in batches of the
encoder's size, after a warm-up batch; the ratio to the first encoder is measured in this run (these machines are
noisy: compare ratios, not absolute numbers across runs; the encoders take turns in every repeat). Run::

    python benchmarks/encoder_speed.py [--encoders efficientnet-lite0,efficientnet-lite0-grid2] [--frames 96]
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def rendered_frames(task: str, count: int, image_size: int) -> np.ndarray:
    """``count`` camera frames ``(count, S, S, 3)`` of one expert episode (every camera of each step in turn)."""
    import gymnasium as gym

    import tasks
    from tasks.expert import run_expert_episode

    env = gym.make(task, image_size=image_size)
    frames: list[np.ndarray] = []
    try:
        for obs, _, _, _ in run_expert_episode(env, tasks.make_expert(env), seed=0):
            frames.extend(obs["pixels"].values())
            if len(frames) >= count:
                break
    finally:
        env.close()
    while len(frames) < count:  # a short episode: repeat it (the encoder's cost does not depend on the content)
        frames.extend(frames[: count - len(frames)])
    return np.stack(frames[:count])


def time_encoders(names: list[str], frames: np.ndarray, repeats: int) -> dict[str, dict[str, float]]:
    """Best-of-``repeats`` milliseconds per frame of each encoder on ``frames``, and its embedding size.

    The encoders take turns within each repeat (after one warm-up call each), so a load change on the machine hits
    them alike.
    """
    from rewards.encoders import make_image_encoder

    encoders = {name: make_image_encoder(name, image_size=frames.shape[1], device="cpu") for name in names}
    for encoder in encoders.values():
        encoder.encode(frames[: encoder.batch_size])  # warm-up: allocations, kernel selection
    best = dict.fromkeys(encoders, float("inf"))
    for _ in range(repeats):
        for name, encoder in encoders.items():
            start = time.perf_counter()
            encoder.encode(frames)
            best[name] = min(best[name], time.perf_counter() - start)
    return {
        name: {"ms_per_frame": 1000.0 * best[name] / len(frames), "dim": float(enc.spec.dim)}
        for name, enc in encoders.items()
    }


def main(argv: list[str] | None = None) -> int:
    """Print one line per encoder: its embedding size, ms per frame and the ratio to the first encoder."""
    import torch

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--encoders", default="efficientnet-lite0,efficientnet-lite0-grid2")
    p.add_argument("--task", default="SARM2/CleanWhiteboard-v0")
    p.add_argument("--frames", type=int, default=96)
    p.add_argument("--image-size", type=int, default=128)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)
    names = [n.strip() for n in args.encoders.split(",") if n.strip()]
    frames = rendered_frames(args.task, args.frames, args.image_size)
    print(f"{len(frames)} frames at {args.image_size} px from {args.task}; torch threads {torch.get_num_threads()}")
    rows = time_encoders(names, frames, args.repeats)
    first = rows[names[0]]["ms_per_frame"]
    for name, row in rows.items():
        print(
            f"{name}: {int(row['dim'])}-d, {row['ms_per_frame']:.2f} ms/frame "
            f"({row['ms_per_frame'] / first:.2f}x the first)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
