"""Does PPO on the bare wrapper learn to raise the learned reward without doing the task?

    python benchmarks/reward_hacking.py                                 # shipped checkpoint, 2 tasks, ~10 min
    python benchmarks/reward_hacking.py --checkpoints runs/a,runs/b --tasks PullPlug   # paired: the same PPO seed

The setting a new RL user starts from: ``PPO("MlpPolicy", SARM2RewardWrapper(gym.make(id, obs_mode="state")))``
with the default reward (progress differences), on short episodes (``--episode-steps``, 10 s) so that PPO sees
many of them. Every episode's final learned progress (``info["sarm2/progress"]``) is logged beside its final
physics progress (calibrated where the task has it). A reward that pays for motion shows up as learned progress
that rises over training while the physics progress stays flat; the table gives both, on the first and the last
quarter of the episodes, and the largest gap between them on any episode. Several checkpoints run with the same
PPO seed, a paired comparison.

Writes ``<out>/results.json``, ``<out>/summary.md`` and the same table to ``--docs`` (date and commit stamped).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from typing_extensions import override

log = logging.getLogger("benchmarks.reward_hacking")


class EpisodeFinals(gym.Wrapper):
    """Records each episode's final learned and physics progress (outermost, above the reward wrapper)."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.finals: list[tuple[float, float]] = []

    @override
    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        if terminated or truncated:
            physics = info.get("calibrated_progress", info.get("progress", float("nan")))
            self.finals.append((float(info["sarm2/progress"]), float(physics)))
        return obs, reward, terminated, truncated, info


def run_task(task: str, checkpoint: str, steps: int, episode_steps: int, seed: int) -> dict[str, Any]:
    """PPO for ``steps`` environment steps on one task; the finals of every episode."""
    from stable_baselines3 import PPO

    import tasks
    from sarm2_env.wrapper import SARM2RewardWrapper

    task_id = tasks.resolve_task_id(task)
    base = gym.make(task_id, obs_mode="state", max_episode_steps=episode_steps)
    env = EpisodeFinals(SARM2RewardWrapper(base, reward_model=None if checkpoint == "default" else checkpoint))
    started = time.perf_counter()
    n_steps = min(512, steps)  # one PPO rollout is at most the whole budget
    model = PPO("MlpPolicy", env, n_steps=n_steps, batch_size=min(128, n_steps), seed=seed, verbose=0, device="cpu")
    model.learn(total_timesteps=steps)
    env.close()
    finals = np.asarray(env.finals, dtype=np.float64)  # (episodes, 2): learned, physics
    quarter = max(1, len(finals) // 4)
    first, last = finals[:quarter].mean(0), finals[-quarter:].mean(0)
    return {
        "checkpoint": checkpoint,
        "task": task_id,
        "episodes": len(finals),
        "learned_first": float(first[0]),
        "learned_last": float(last[0]),
        "physics_first": float(first[1]),
        "physics_last": float(last[1]),
        "max_gap": float(np.max(finals[:, 0] - finals[:, 1])) if len(finals) else float("nan"),
        "finals": finals.tolist(),
        "minutes": (time.perf_counter() - started) / 60,
    }


def summary(results: dict[str, Any], command: str) -> str:
    """The reward-hacking check as Markdown (progress paid for motion without task progress)."""
    from benchmarks.report import _git_revision, short_revision

    stamp = f"{dt.date.today().isoformat()}, commit {short_revision(_git_revision())}"
    meta = results["meta"]
    lines = [
        "# PPO on the bare wrapper: does the learned reward rise without the task?",
        "",
        f"{stamp}. `{command}`. PPO (SB3 defaults, `MlpPolicy`, n_steps 512, "
        f'batch 128) on `obs_mode="state"`, {meta["steps"]} steps per task, episodes of {meta["episode_steps"]} '
        "steps; final learned vs physics (calibrated) progress per episode, mean over the first and the last quarter "
        "of the episodes, and the largest learned-minus-physics gap of any episode.",
        "",
        "| reward model | task | episodes | learned, first quarter | learned, last quarter | physics, first quarter | "
        "physics, last quarter | largest gap | minutes |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results["tasks"]:
        lines.append(
            f"| {_label(r['checkpoint'])} | {r['task'].split('/')[-1].removesuffix('-v0')} | {r['episodes']} | "
            f"{r['learned_first']:.3f} | "
            f"{r['learned_last']:.3f} | {r['physics_first']:.3f} | {r['physics_last']:.3f} | {r['max_gap']:.3f} | "
            f"{r['minutes']:.1f} |"
        )
    return "\n".join(lines) + "\n"


def _label(checkpoint: str) -> str:
    """A table label: the shipped checkpoint, or the checkpoint folder's name with its training data."""
    if checkpoint == "default":
        return "shipped SARM2 (`rewards/checkpoints/sarm2-sim`)"
    config = json.loads((Path(checkpoint) / "config.json").read_text())
    negatives = config.get("training", {}).get("negative_episodes", 0)
    data = f"demos + {negatives} motion negatives" if negatives else "demos only"
    return f"`{Path(checkpoint).name}` ({data})"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the reward-hacking check (PPO on the wrapped env); returns the exit status."""
    import sys

    from sarm2_env.atomic import atomic_write, write_json_atomic

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoints", default="default", help="comma-separated checkpoints ('default': the shipped one)")
    p.add_argument("--tasks", default="PullPlug,CleanWhiteboard", help="comma-separated task names")
    p.add_argument("--steps", type=int, default=6144, help="PPO environment steps per task")
    p.add_argument("--episode-steps", type=int, default=100, help="steps per episode (10 Hz)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="results/reward_hacking")
    p.add_argument("--docs", default="docs/results/reward_hacking.md", help="markdown copy of the table ('' = none)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    rows = []
    for checkpoint in [c.strip() for c in args.checkpoints.split(",") if c.strip()]:
        for task in [t.strip() for t in args.tasks.split(",") if t.strip()]:
            rows.append(run_task(task, checkpoint, args.steps, args.episode_steps, args.seed))
            log.info("%s on %s: %s", checkpoint, task, {k: v for k, v in rows[-1].items() if k != "finals"})
    results = {
        "tasks": rows,
        "meta": {
            "steps": args.steps,
            "episode_steps": args.episode_steps,
            "seed": args.seed,
        },
    }
    out = Path(args.out)
    write_json_atomic(out / "results.json", results)
    command = "python benchmarks/reward_hacking.py " + " ".join(sys.argv[1:] if argv is None else argv)
    text = summary(results, command.strip())
    for path in [out / "summary.md", *([Path(args.docs)] if args.docs else [])]:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda f: f.write(text.encode("utf-8")))
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
