"""Cost of the residual actor-critic's training (``ResidualACPolicy.fit``) on this machine.

    python benchmarks/residual_speed.py [--steps 40] [--episodes 30] [--frames 400]

Times the real trainer, as SPIRAL calls it with ``benchmarks/configs/spiral*.yaml``'s settings (5 critics, batch
256, 20-step chunks of which 12 are executed, the EfficientNet-Lite0 + MiniLM base policy), on synthetic
rollouts of the configured size: the one-off preparation (the base policy's projections and chunks at every
decision frame) and seconds per TD3 step, then the projected time of the config's 1500 steps.
Synthetic rollouts change nothing in the cost: it depends on sizes, not values.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from agents.policy import BCPolicy, BCPolicyConfig, PolicyEpisode
from agents.residual import ResidualACConfig, ResidualACPolicy
from sarm2_env.constants import ACTION_DIM, CAMERAS, STATE_DIM

INSTRUCTION = "Pick up the eraser and wipe the whiteboard clean."


def synthetic_episodes(n: int, frames: int, dim: int, seed: int = 0) -> list[PolicyEpisode]:
    """``n`` random policy episodes of ``frames`` frames with ``dim``-d embeddings (timing only)."""
    rng = np.random.default_rng(seed)
    return [
        PolicyEpisode(
            instruction=INSTRUCTION,
            embeddings=rng.normal(size=(frames, len(CAMERAS), dim)).astype(np.float16),
            state=rng.normal(scale=0.3, size=(frames, STATE_DIM)).astype(np.float32),
            action=rng.normal(scale=0.3, size=(frames, ACTION_DIM)).astype(np.float32),
        )
        for _ in range(n)
    ]


def main() -> None:
    """Print the residual actor-critic's training and acting speed on synthetic episodes."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=40, help="timed TD3 steps")
    parser.add_argument("--episodes", type=int, default=30, help="rollouts per round (spiral_cpu.yaml: 30)")
    parser.add_argument("--frames", type=int, default=400, help="frames per rollout")
    parser.add_argument("--planned-steps", type=int, default=1500, help="steps a SPIRAL round trains (finetune_steps)")
    args = parser.parse_args()

    base = BCPolicy(BCPolicyConfig(chunk=20, execute=12, dropout=0.0, weight_decay=0.0, steps=2, batch_size=32))
    dim = base.image_encoder.dim
    base.fit(synthetic_episodes(2, 40, dim), seed=0)
    episodes = synthetic_episodes(args.episodes, args.frames, dim, seed=1)
    progress = [np.linspace(0.0, 1.0, args.frames, dtype=np.float32) for _ in episodes]
    policy = ResidualACPolicy(base, ResidualACConfig(), seed=0)

    started = time.perf_counter()
    policy.fit(episodes, progress, steps=1)  # preparation + one step
    first = time.perf_counter() - started
    started = time.perf_counter()
    summary = policy.fit(episodes, progress, steps=1 + args.steps)
    total = time.perf_counter() - started
    per_step = (total - first) / args.steps
    prep = max(0.0, first - per_step)
    print(
        f"residual actor-critic fit: {summary['transitions']} chunk transitions from {args.episodes} rollouts x "
        f"{args.frames} frames; {torch.get_num_threads()} torch threads"
    )
    print(f"preparation (base projections and chunks): {prep:.2f} s")
    print(f"per TD3 step (5 critics, batch 256):       {per_step:.3f} s")
    minutes = (prep + args.planned_steps * per_step) / 60
    print(f"{args.planned_steps} steps: {minutes:.1f} min")


if __name__ == "__main__":
    main()
