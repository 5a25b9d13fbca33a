"""A small training loop shared by every trainable reward model: AdamW, warm-up + cosine schedule,
gradient clipping, periodic validation, checkpoints, resume, and multi-process data parallelism.

Run under ``torchrun`` and it uses torch DDP (NCCL on GPUs, gloo on CPUs): each rank draws its own
batches (seeded by rank), gradients are averaged, rank 0 logs and writes checkpoints.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypedDict

import numpy as np
import torch
from torch import nn

from sarm2_env.atomic import atomic_path

log = logging.getLogger(__name__)

STATE_FILE = "training_state.pt"


@dataclasses.dataclass(frozen=True)
class DistContext:
    """Where this process sits in a (possibly single-process) data-parallel job."""

    rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        """Whether this is rank 0 (it logs and writes checkpoints)."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """Whether more than one process trains."""
        return self.world_size > 1


@contextlib.contextmanager
def seeded_init(seed: int):
    """Build modules from torch's RNG seeded with ``seed``; the caller's global RNG state is left as it was.

    Without it a net's initial weights depend on every random draw the process made before (encoders
    built, other models trained), so the same training run gives other weights in another process history.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def default_device(device: str | torch.device | None = None) -> torch.device:
    """``cuda`` when available, else ``cpu``, unless ``device`` says otherwise."""
    if device is not None:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def init_distributed(device: str | torch.device | None = None) -> DistContext:
    """Join the process group ``torchrun`` describes (``WORLD_SIZE`` > 1), or return a single-process context."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistContext(device=default_device(device))
    import torch.distributed as dist

    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    dev = default_device(device)
    if dev.type == "cuda":
        dev = torch.device("cuda", local_rank)
        torch.cuda.set_device(dev)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
    return DistContext(rank=rank, world_size=world, device=dev)


def warmup_cosine(warmup: int, total: int) -> Callable[[int], float]:
    """LR multiplier: linear warm-up over ``warmup`` steps, then cosine decay to 0 at ``total``."""

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        span = max(1, total - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, (step - warmup) / span)))

    return factor


LossFn = Callable[[nn.Module, np.random.Generator], tuple[torch.Tensor, dict[str, float]]]


class FitOptions(TypedDict, total=False):
    """The run options every trainable reward model's ``fit`` takes as keywords (defaults in
    :data:`FIT_DEFAULTS`).

    Attributes:
        out_dir: checkpoint directory, written as training goes (``None``: keep the model in memory only).
        resume: continue from the optimiser state in ``out_dir``.
        seed: seeds the network's initialisation and the batch sampling.
        progress: show a progress bar.
        eval_every: steps between validations.
        checkpoint_every: steps between optimiser-state checkpoints.
        ctx: a distributed context from :func:`init_distributed` (``None``: one process on the model's device).
    """

    out_dir: str | os.PathLike | None
    resume: bool
    seed: int
    progress: bool
    eval_every: int
    checkpoint_every: int
    ctx: DistContext | None


FIT_DEFAULTS: dict[str, Any] = {
    "out_dir": None,
    "resume": False,
    "seed": 0,
    "progress": True,
    "eval_every": 500,
    "checkpoint_every": 1000,
    "ctx": None,
}


def fit_options(options: Mapping[str, Any], model: str) -> dict[str, Any]:
    """``options`` (keywords given to ``fit``) completed with :data:`FIT_DEFAULTS`; an unknown name is a
    :class:`TypeError` naming it, as for any other function."""
    unknown = sorted(set(options) - set(FIT_DEFAULTS))
    if unknown:
        raise TypeError(f"{model}.fit() got unexpected keyword argument(s) {unknown}; known: {sorted(FIT_DEFAULTS)}")
    return {**FIT_DEFAULTS, **options}


def run_training(
    *,
    module: nn.Module,
    param_groups: list[dict[str, Any]],
    loss_fn: LossFn,
    steps: int,
    warmup: int,
    grad_clip: float,
    seed: int,
    ctx: DistContext,
    out_dir: str | os.PathLike | None = None,
    resume: bool = False,
    evaluate: Callable[[nn.Module], dict[str, float]] | None = None,
    save: Callable[[nn.Module, dict[str, Any]], None] | None = None,
    eval_every: int = 500,
    checkpoint_every: int = 1000,
    progress: bool = True,
) -> dict[str, Any]:
    """Train ``module`` for ``steps`` optimiser steps and return a summary (final and best validation metrics).

    ``loss_fn(model, rng)`` draws its own batch with ``rng`` and returns ``(loss, scalars)``; ``model`` is the
    DDP-wrapped module when distributed. ``evaluate(module)`` (rank 0, eval mode, no grad) returns metrics;
    ``save(module, summary)`` writes the model checkpoint (rank 0). With ``out_dir`` the optimiser state is
    written every ``checkpoint_every`` steps and at the end, so ``resume=True`` continues where it stopped.
    """
    module.to(ctx.device)
    model: nn.Module = module
    if ctx.distributed:
        from torch.nn.parallel import DistributedDataParallel

        ids = [ctx.device.index] if ctx.device.type == "cuda" else None
        model = DistributedDataParallel(module, device_ids=ids)
    optimizer = torch.optim.AdamW(param_groups)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(warmup, steps))
    rng = np.random.default_rng([seed, ctx.rank])
    torch.manual_seed(seed + ctx.rank)
    start = 0
    history: list[dict[str, float]] = []
    state_path = Path(out_dir) / STATE_FILE if out_dir is not None else None
    if resume and state_path is not None and state_path.exists():
        state = torch.load(state_path, map_location=ctx.device, weights_only=False)
        module.load_state_dict(state["module"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start, history = int(state["step"]), list(state["history"])
        rng.bit_generator.state = state["rng"][ctx.rank] if ctx.rank < len(state["rng"]) else rng.bit_generator.state
        log.info("resumed from %s at step %d", state_path, start)

    def write_state(step: int) -> None:
        if state_path is None:
            return
        rng_states = _gather_rng_states(rng, ctx)
        if not ctx.is_main:
            return
        state_path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(state_path) as tmp:
            torch.save(
                {
                    "module": module.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "step": step,
                    "history": history,
                    "rng": rng_states,
                },
                tmp,
            )

    bar = None
    if progress and ctx.is_main:
        from tqdm import tqdm

        bar = tqdm(total=steps, initial=start, desc="train", dynamic_ncols=True)
    running: dict[str, float] = {}
    step = start
    for step in range(start, steps):
        model.train()
        loss, scalars = loss_fn(model, rng)
        if not torch.isfinite(loss):
            from sarm2_env.errors import NonFiniteError

            raise NonFiniteError(f"training loss at step {step}: expected a finite value; got {loss.item()}")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if grad_clip > 0:
            nn.utils.clip_grad_norm_(module.parameters(), grad_clip)
        optimizer.step()
        scheduler.step()
        for key, value in scalars.items():
            running[key] = 0.9 * running.get(key, value) + 0.1 * value
        if bar is not None:
            bar.update(1)
            bar.set_postfix({k: f"{v:.4f}" for k, v in running.items()})
        done = step + 1
        if evaluate is not None and ctx.is_main and (done % eval_every == 0 or done == steps):
            metrics = _evaluate(module, evaluate)
            history.append({"step": done, **metrics})
            message = " ".join(f"{k}={v:.4f}" for k, v in metrics.items())
            (bar.write if bar is not None else log.info)(f"step {done}: {message}")
        if done % checkpoint_every == 0 and done != steps:
            write_state(done)
    if bar is not None:
        bar.close()
    summary = {
        "steps": steps,
        "history": history,
        "final": history[-1] if history else {},
        "world_size": ctx.world_size,
        # One digest of the weights per rank: equal on every rank when DDP kept the replicas in sync.
        "rank_weight_checksums": _gather_weight_checksums(module, ctx),
    }
    if len(set(summary["rank_weight_checksums"])) > 1:
        log.error("the DDP ranks ended with different weights: %s", summary["rank_weight_checksums"])
    write_state(steps if steps > start else start)
    if save is not None and ctx.is_main:
        save(module, summary)
    if ctx.distributed:
        import torch.distributed as dist

        dist.barrier()
    return summary


def _evaluate(module: nn.Module, evaluate: Callable[[nn.Module], dict[str, float]]) -> dict[str, float]:
    module.eval()
    with torch.no_grad():
        return {k: float(v) for k, v in evaluate(module).items()}


def _gather_rng_states(rng: np.random.Generator, ctx: DistContext) -> list[dict]:
    if not ctx.distributed:
        return [rng.bit_generator.state]
    import torch.distributed as dist

    states: list[Any] = [None] * ctx.world_size
    dist.all_gather_object(states, rng.bit_generator.state)
    return states


def weight_checksum(module: nn.Module) -> str:
    """SHA-256 (first 16 hex digits) of every parameter and buffer, in ``state_dict`` order."""
    import hashlib

    digest = hashlib.sha256()
    for name, tensor in module.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().to("cpu").contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]


def _gather_weight_checksums(module: nn.Module, ctx: DistContext) -> list[str]:
    mine = weight_checksum(module)
    if not ctx.distributed:
        return [mine]
    import torch.distributed as dist

    sums: list[Any] = [None] * ctx.world_size
    dist.all_gather_object(sums, mine)
    return [str(x) for x in sums]
