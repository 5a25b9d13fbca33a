"""Train a reward model on cached frame embeddings of one or more episode datasets.

Examples::

    python -m rewards.train --model sarm2 --data data/demos --out runs/sarm2
    python -m rewards.train --model sarm2 --data data/demos --out runs/sarm2 --resume        # continue
    python -m rewards.train --model sarm2 --data data/demos --out runs/paper --preset paper --set steps=5000
    torchrun --nproc_per_node 4 -m rewards.train --model sarm2 --data data/demos --out runs/ddp   # DDP

Frames are encoded once into ``<dataset>/embeddings/<encoder key>/`` and reused by every later run.
10 % of each task's episodes are held out (``--val-fraction``) unless ``--val-data`` names a dataset;
held-out value MSE (against time-linear progress) and primitive accuracy are printed during training.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from typing import Any

import yaml

from rewards.encoders import DEFAULT_REWARD_ENCODER, IMAGE_ENCODERS
from sarm2_env.errors import ConfigError, SARM2Error

log = logging.getLogger("rewards.train")


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    """``["steps=500", "lr_value=1e-4"]`` -> ``{"steps": 500, "lr_value": 0.0001}`` (values parsed as YAML)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"`--set` must be KEY=VALUE; got {item!r}")
        out[key.strip()] = yaml.safe_load(value)
    return out


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``python -m rewards.train``."""
    p = argparse.ArgumentParser(prog="python -m rewards.train", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="sarm2", help="registered reward model (default: sarm2)")
    p.add_argument("--data", action="append", required=True, help="episode dataset directory (repeatable)")
    p.add_argument("--val-data", action="append", default=[], help="held-out dataset (default: split --data)")
    p.add_argument(
        "--negatives",
        action="append",
        default=[],
        help="dataset of episodes that do not advance the task (tasks.motion_controls), trained towards their "
        "physics progress (repeatable; SARM2 and its ablations)",
    )
    p.add_argument("--out", required=True, help="checkpoint directory to write (and resume from)")
    p.add_argument(
        "--encoder",
        default=DEFAULT_REWARD_ENCODER,
        help=f"image encoder: {', '.join(IMAGE_ENCODERS)} (default: %(default)s)",
    )
    p.add_argument("--encoder-path", default=None, help="local weights directory (siglip2)")
    p.add_argument("--image-size", type=int, default=None, help="encoder input size (default: the encoder's)")
    p.add_argument("--text-encoder", default="minilm", help="text encoder: minilm, siglip2, tiny-hash")
    p.add_argument("--text-encoder-path", default=None, help="local weights directory (siglip2 text)")
    p.add_argument("--preset", default="small", help="model config preset (small, paper, tiny)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config field")
    p.add_argument("--steps", type=int, default=None, help="optimiser steps (overrides the preset)")
    p.add_argument("--batch-size", type=int, default=None, help="global batch size (overrides the preset)")
    p.add_argument("--val-fraction", type=float, default=None, help="held-out fraction of episodes per task")
    p.add_argument("--eval-every", type=int, default=500)
    p.add_argument("--checkpoint-every", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: cuda when available)")
    p.add_argument("--resume", action="store_true", help="continue from --out's training state")
    p.add_argument("--half", action="store_true", help="store fp16 weights (smaller checkpoint)")
    p.add_argument("--include-failures", action="store_true", help="also train on unsuccessful episodes")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


def model_config(args: argparse.Namespace) -> dict[str, Any]:
    """The ``--model`` backend's config: its ``--preset`` with ``--set`` / ``--steps`` / ... overrides, as a dict."""
    from rewards.registry import reward_model_class

    config_cls = reward_model_class(args.model).config_cls
    overrides = parse_overrides(args.set)
    for key in ("steps", "batch_size", "val_fraction"):
        if getattr(args, key) is not None:
            overrides[key] = getattr(args, key)
    return config_cls.preset(args.preset, **overrides).to_dict()


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m rewards.train``: train a reward backend; returns the exit status."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        summary = run(args)
    except SARM2Error as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if summary is not None:
        print(json.dumps({"final": summary.get("final", {}), "out": args.out}, indent=2))
    return 0


def run(args: argparse.Namespace) -> dict[str, Any] | None:
    """Train the backend the arguments name; returns its training summary (``None`` when nothing trains)."""
    from rewards.data import load_features, split_episodes
    from rewards.encoders import make_image_encoder
    from rewards.registry import reward_model_class
    from rewards.train_loop import init_distributed

    cls = reward_model_class(args.model)
    if not cls.trainable:
        raise ConfigError(f"`--model` must be a trainable backend; {args.model!r} is zero-shot")
    if args.negatives and not cls.trains_on_negatives:
        raise ConfigError(f"`--negatives`: {args.model!r} does not train on negatives (sarm2 and its ablations do)")
    ctx = init_distributed(args.device)
    encoder = make_image_encoder(args.encoder, image_size=args.image_size, path=args.encoder_path, device=ctx.device)
    config = model_config(args)

    # rank 0 encodes missing frames into the shared on-disk cache first; the other ranks then only read it
    def load(dirs: Sequence[str]) -> list:
        return [f for d in dirs for f in load_features(d, encoder, progress=ctx.is_main and not args.no_progress)]

    if ctx.is_main:
        features, val, negatives = load(args.data), load(args.val_data), load(args.negatives)
    if ctx.distributed:
        _barrier(ctx)
    if not ctx.is_main:
        features, val, negatives = load(args.data), load(args.val_data), load(args.negatives)
    if val:
        train = features
    else:
        train, val = split_episodes(features, config["val_fraction"], seed=args.seed)
    if ctx.is_main:
        tasks = sorted({f.task_id for f in train})
        log.info(
            "%s: %d training / %d held-out episodes over %d task(s); encoder %s; %d process(es) on %s",
            args.model,
            len(train),
            len(val),
            len(tasks),
            encoder.label,
            ctx.world_size,
            ctx.device,
        )
    model = cls(
        config,
        encoder=encoder,
        text_encoder=args.text_encoder,
        text_encoder_path=args.text_encoder_path,
        device=ctx.device,
    )
    summary = model.fit(
        train,
        val,
        out_dir=args.out,
        resume=args.resume,
        seed=args.seed,
        progress=not args.no_progress,
        eval_every=args.eval_every,
        checkpoint_every=args.checkpoint_every,
        ctx=ctx,
        include_failures=args.include_failures,
        **({"negatives": negatives} if negatives else {}),
    )
    if args.half and ctx.is_main:
        model.save(args.out, half=True)
    return summary if ctx.is_main else None


def _barrier(ctx) -> None:
    import torch.distributed as dist

    dist.barrier()


if __name__ == "__main__":
    sys.exit(main())
