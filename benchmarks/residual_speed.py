"""Cost of one residual actor-critic training step on this machine, for the critics' two possible inputs.

    python benchmarks/residual_speed.py [--steps 20]

Prints seconds per TD3 step (5 critics, batch 256, the default sizes) when the actor and critics read the raw
frame embeddings (3 x 1280, EfficientNet-Lite0) versus the frozen base policy's projections (3 x 128, what
``agents.residual`` uses), and their ratio, measured in one run.
"""

from __future__ import annotations

import argparse
import time

import torch

from agents.residual import ResidualACConfig, _Actor, _Critics
from sarm2_env.constants import ACTION_DIM, STATE_DIM


def seconds_per_step(obs_dim: int, act_dim: int, steps: int, cfg: ResidualACConfig) -> float:
    critics, actor = _Critics(obs_dim, act_dim, cfg), _Actor(obs_dim, act_dim, cfg)
    opt_c, opt_a = torch.optim.Adam(critics.parameters()), torch.optim.Adam(actor.parameters())
    obs, act = torch.randn(cfg.batch_size, obs_dim), torch.randn(cfg.batch_size, act_dim)
    started = time.perf_counter()
    for step in range(steps):
        with torch.no_grad():
            target = critics(obs, act + actor(obs, act)).min(0).values
        loss = ((critics(obs, act) - target) ** 2).mean()
        opt_c.zero_grad()
        loss.backward()
        opt_c.step()
        if step % cfg.policy_delay == 0:
            loss_a = -critics(obs, act + actor(obs, act)).mean()
            opt_a.zero_grad()
            loss_a.backward()
            opt_a.step()
    return (time.perf_counter() - started) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    cfg = ResidualACConfig()
    act_dim = 12 * ACTION_DIM  # 12 executed steps, as in benchmarks/configs/spiral*.yaml
    raw = seconds_per_step(3 * 1280 + STATE_DIM + 384, act_dim, args.steps, cfg)
    projected = seconds_per_step(3 * 128 + STATE_DIM + 64, act_dim, args.steps, cfg)
    print(f"raw embeddings:       {raw:.3f} s/step ({1500 * raw / 60:.1f} min for 1500 steps)")
    print(f"base's projections:   {projected:.3f} s/step ({1500 * projected / 60:.1f} min for 1500 steps)")
    print(f"ratio raw / projected: {raw / projected:.1f}x  ({torch.get_num_threads()} torch threads)")


if __name__ == "__main__":
    main()
