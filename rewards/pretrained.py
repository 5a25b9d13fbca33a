"""Build the default SARM2 checkpoint for the simulated station (``rewards/checkpoints/sarm2-sim``).

This is the checkpoint ``SARM2RewardWrapper(env)`` loads when given no reward model. One command
reproduces it from nothing (scripted-expert demos and motion controls -> cached EfficientNet-Lite0 embeddings pooled
in 2 x 2 cells -> training)::

    python -m rewards.pretrained                            # the shipped one: ~35 min on 2 CPUs
    python -m rewards.pretrained --data data/sim_demos-var1 # reuse episodes collected earlier (resumes)

It trains the ``small`` SARM2 preset on full-skill demonstrations of every registered task at operator variability
1 (teleoperation-like pace, pauses and order; seeds from 100000, disjoint from the benchmark's), plus motion
negatives (random actions and arm play that do not advance the task, trained towards their physics progress:
:mod:`tasks.motion_controls`), holds out 10 % of the demos, and stores fp16 weights. It prints the held-out value
MSE of the fp32 model and of the fp16 file it ships, so the cost of the smaller file is measured, not assumed,
and records both in the checkpoint's ``config.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rewards.sarm2.model import DEFAULT_CHECKPOINT

log = logging.getLogger("rewards.pretrained")
DEMO_SEED = 100_000
#: First seed of the motion negatives (disjoint from the demos' and from the benchmark's controls and negatives)
NEGATIVE_SEED = 930_000


def held_out_mse(model, episodes) -> float:
    """Mean over held-out frames of (predicted - time-linear progress)^2."""
    errors = [
        (model.predict_episode(f).progress - np.linspace(0.0, 1.0, f.length, dtype=np.float32)) ** 2 for f in episodes
    ]
    return float(np.concatenate(errors).mean())


def main(argv: Sequence[str] | None = None) -> int:
    """Rebuild the shipped default checkpoint; returns the exit status."""
    p = argparse.ArgumentParser(prog="python -m rewards.pretrained", description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default="data/sim_demos-var1", help="demo dataset (collected here if missing)")
    p.add_argument("--episodes", type=int, default=15, help="demos per task to collect")
    p.add_argument("--variability", type=float, default=1.0, help="operator variability of the demos (0: identical)")
    p.add_argument("--negatives", type=int, default=3, help="motion negatives per task and control (random, play)")
    p.add_argument("--steps", type=int, default=3000, help="training steps")
    p.add_argument("--out", default=str(DEFAULT_CHECKPOINT), help="checkpoint directory to write")
    p.add_argument("--encoder", default=None, help="image encoder (default: rewards.encoders.DEFAULT_REWARD_ENCODER)")
    p.add_argument("--device", default=None)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    from rewards.data import load_features, split_episodes
    from rewards.encoders import DEFAULT_REWARD_ENCODER, make_image_encoder
    from rewards.sarm2.config import SARM2Config
    from rewards.sarm2.model import SARM2RewardModel
    from tasks import TASKS
    from tasks.collect import CollectConfig, collect
    from tasks.motion_controls import NEGATIVE_CONTROLS, NEGATIVE_STEPS, collect_controls

    started = time.perf_counter()
    demos = CollectConfig(
        tasks=tuple(TASKS), episodes=args.episodes, skills=(1.0,), seed=DEMO_SEED, variability=args.variability
    )
    collect(demos, args.data, workers=max(1, min(4, os.cpu_count() or 1)))  # one recording process per core
    negative_seeds = range(NEGATIVE_SEED, NEGATIVE_SEED + args.negatives)
    negative_dirs = [Path(f"{args.data}-motion") / control for control in NEGATIVE_CONTROLS]
    for control, folder in zip(NEGATIVE_CONTROLS, negative_dirs):
        collect_controls(folder, tuple(TASKS), control, negative_seeds, steps=NEGATIVE_STEPS, progress_bar=True)
    encoder = make_image_encoder(args.encoder or DEFAULT_REWARD_ENCODER, device=args.device)
    features = load_features(args.data, encoder, progress=True)
    negatives = [f for folder in negative_dirs if args.negatives for f in load_features(folder, encoder, progress=True)]
    config = SARM2Config.preset("small", steps=args.steps)
    train, val = split_episodes(features, config.val_fraction, seed=args.seed)
    model = SARM2RewardModel(config, encoder=encoder, text_encoder="minilm", device=args.device)
    model.fit(train, val, seed=args.seed, eval_every=500, negatives=negatives)
    mse32 = held_out_mse(model, val)
    model.training_summary["built_by"] = "python -m rewards.pretrained " + " ".join(argv or sys.argv[1:])
    model.training_summary["data"] = {
        "tasks": sorted(TASKS),
        "episodes_per_task": args.episodes,
        "seed": DEMO_SEED,
        "variability": args.variability,
        "motion_negatives": {
            "controls": list(NEGATIVE_CONTROLS) if args.negatives else [],
            "episodes_per_task_and_control": args.negatives,
            "steps": NEGATIVE_STEPS,
            "seed": NEGATIVE_SEED,
        },
    }
    model.training_summary["held_out_mse_fp32"] = mse32
    out = Path(args.out)
    model.save(out, half=True)
    shipped = SARM2RewardModel.load(out, device=args.device)
    mse16 = held_out_mse(shipped, val)
    model.training_summary["held_out_mse_fp16"] = mse16
    model.save(out, half=True)
    size = (out / "model.safetensors").stat().st_size
    print(
        json.dumps(
            {
                "checkpoint": str(out),
                "bytes": size,
                "held_out_episodes": len(val),
                "held_out_mse_fp32": mse32,
                "held_out_mse_fp16": mse16,
                "minutes": (time.perf_counter() - started) / 60,
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
