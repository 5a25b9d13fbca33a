"""Motion without task progress: the control policies a reward model must not pay.

A learned reward that rises when the arms merely move is hacked by the first RL run. These policies make
episodes in which the task does not advance, to measure that (``benchmarks/scene_reading.py``) and to train
against it (negatives whose target is the physics progress, ~0):

* ``idle`` - hold the home pose;
* ``random`` - a new uniformly random joint target every few steps (flailing; may bump objects);
* ``play`` - the arms move between random tool poses high above the table, grippers opening and closing,
  without reaching down to the task objects.

Each one drives an env like a scripted expert (``reset(seed)``, ``act(obs)``, ``done``), so
:func:`tasks.collect.record_episode` records it; every frame is labelled with the ``dummy`` primitive. The
episode's ground truth stays the env's physics progress, so a control that does move an object is scored
against what really happened.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
from tqdm import tqdm
from typing_extensions import override

from sarm2_env.constants import ARMS
from sarm2_env.errors import UnknownNameError, check_positive_int
from tasks.calibration import home_tcp_positions
from tasks.expert import ArmGoal, ScriptedExpert, Segment

#: Control names, in the order tables show them.
CONTROLS: tuple[str, ...] = ("idle", "random", "play")
#: Evaluation episodes of the controls: env seeds from here (disjoint from every benchmark split and from the
#: training negatives' seeds) and 30 s (300 steps at 10 Hz) each.
CONTROL_SEED = 910_000
CONTROL_STEPS = 300
#: Training negatives (episodes a reward model learns to give no progress): the controls that move, env seeds from
#: here (disjoint from the evaluation episodes'), 15 s each, every frame rendered (training reads every frame).
NEGATIVE_CONTROLS: tuple[str, ...] = ("random", "play")
NEGATIVE_SEED = 920_000
NEGATIVE_STEPS = 150

#: ``play``: tool-centre heights (m above the table top) the arms move between; every task object lies lower.
PLAY_HEIGHT_M = (0.22, 0.34)
#: ``play``: how far (m) a waypoint may be from the arm's home tool position, in x and y.
PLAY_REACH_M = 0.15
#: ``play``: seconds per move between waypoints.
PLAY_MOVE_S = (0.8, 2.0)
#: ``random``: a new random joint target every this many control steps.
RANDOM_HOLD_STEPS = 3


class IdleControl(ScriptedExpert):
    """Holds the home pose for the whole episode."""

    @override
    def plan(self) -> Iterator[Segment]:
        while True:
            yield Segment("dummy", 1.0)


class ArmPlayControl(ScriptedExpert):
    """Moves both arms between random poses high above the table (grippers opening and closing)."""

    @override
    def plan(self) -> Iterator[Segment]:
        home = home_tcp_positions(self.env.model)
        while True:
            goals = {}
            for arm in ARMS:
                x, y, _ = home[arm]
                goals[arm] = ArmGoal(
                    pos=(
                        float(x + self.rng.uniform(-PLAY_REACH_M, PLAY_REACH_M)),
                        float(y + self.rng.uniform(-PLAY_REACH_M, PLAY_REACH_M)),
                        float(self.rng.uniform(*PLAY_HEIGHT_M)),
                    ),
                    yaw=float(self.rng.uniform(-0.6, 0.6)),
                    grip=float(self.rng.choice([0.0, 1.0])),
                )
            yield Segment("dummy", float(self.rng.uniform(*PLAY_MOVE_S)), left=goals["left"], right=goals["right"])


class RandomControl:
    """Uniformly random actions within the action space, each held for :data:`RANDOM_HOLD_STEPS` steps."""

    variability = 0.0

    def __init__(self, env, **_: object) -> None:
        self.env = env.unwrapped
        self.rng = np.random.default_rng(0)
        self.done = False
        self._action = np.asarray(self.env.home_action, dtype=np.float32)
        self._k = 0

    def reset(self, seed: int | None = None) -> None:
        """Start a new episode with a fresh random stream."""
        self.rng = np.random.default_rng(seed)
        self._k = 0

    def act(self, obs=None) -> np.ndarray:
        """A uniformly random action, held for a few steps."""
        if self._k % RANDOM_HOLD_STEPS == 0:
            space = self.env.action_space
            self._action = self.rng.uniform(space.low, space.high).astype(np.float32)
        self._k += 1
        self.env.current_primitive = "dummy"
        return self._action.copy()


_CLASSES = {"idle": IdleControl, "random": RandomControl, "play": ArmPlayControl}


def make_control(name: str, env):
    """The control policy ``name`` (one of :data:`CONTROLS`) for ``env``; call ``reset(seed)`` after ``env.reset``."""
    if name not in _CLASSES:
        raise UnknownNameError("motion control", name, CONTROLS)
    return _CLASSES[name](env)


def control_dir(root: str | os.PathLike[str], control: str, steps: int = CONTROL_STEPS, render_every: int = 1) -> Path:
    """Where a benchmark data root keeps the evaluation episodes of ``control``."""
    return Path(root) / "motion_controls" / f"{control}-{steps}steps-every{render_every}"


def negative_dir(root: str | os.PathLike[str], control: str, steps: int = NEGATIVE_STEPS) -> Path:
    """Where a benchmark data root keeps the training negatives of ``control`` (every frame rendered)."""
    return Path(root) / "motion_negatives" / f"{control}-{steps}steps"


def collect_controls(
    out: str | os.PathLike[str],
    task_ids: Sequence[str],
    control: str,
    seeds: Sequence[int],
    *,
    steps: int,
    image_size: int = 128,
    render_every: int = 1,
    progress_bar: bool = False,
) -> dict[str, int]:
    """Record ``control`` on every task for every seed into the dataset at ``out`` (resumable per episode).

    ``render_every`` > 1 keeps camera frames every N steps (the reward's query rate) and renders only those.
    Returns ``{"written": n, "skipped": m}``.
    """
    import tasks
    from sarm2_env.dataset import DatasetWriter
    from tasks.collect import record_episode

    if control not in _CLASSES:
        raise UnknownNameError("motion control", control, CONTROLS)
    check_positive_int("steps", steps)
    task_ids = [tasks.resolve_task_id(t) for t in task_ids]
    counts = {"written": 0, "skipped": 0}
    obs_mode = "pixels" if render_every == 1 else "state"  # state: render only the kept steps
    with DatasetWriter(out) as writer:
        done = {(e["task_id"], int(e["seed"])) for e in writer.entries}
        jobs = [(t, int(s)) for t in task_ids for s in seeds if (t, int(s)) not in done]
        counts["skipped"] = len(task_ids) * len(seeds) - len(jobs)
        env, env_task = None, None
        try:
            for task_id, seed in tqdm(jobs, desc=f"record {control}", unit="ep", disable=not progress_bar):
                if task_id != env_task:
                    if env is not None:
                        env.close()
                    env, env_task = tasks.make_task_env(task_id, image_size=image_size, obs_mode=obs_mode), task_id
                episode = record_episode(
                    env, make_control(control, env), seed=seed, skill=0.0, render_every=render_every, max_steps=steps
                )
                writer.add(episode)
                counts["written"] += 1
        finally:
            if env is not None:
                env.close()
    return counts


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m tasks.motion_controls --control play --task all --episodes 3 --out data/play``."""
    import argparse

    import tasks
    from sarm2_env.errors import SARM2Error

    p = argparse.ArgumentParser(prog="python -m tasks.motion_controls", description=__doc__.split("\n\n")[0])
    p.add_argument("--control", required=True, choices=CONTROLS, help="which control to record")
    p.add_argument("--task", default="all", help="comma-separated task ids or short names, or all")
    p.add_argument("--episodes", type=int, default=3, help="episodes per task (env seeds from --seed)")
    p.add_argument("--steps", type=int, default=NEGATIVE_STEPS, help="steps per episode (10 Hz)")
    p.add_argument("--seed", type=int, default=NEGATIVE_SEED, help="first env seed")
    p.add_argument("--image-size", type=int, default=128)
    p.add_argument("--render-every", type=int, default=1, help="camera frames every N steps (1: every step)")
    p.add_argument("--out", required=True, help="dataset directory (a rerun resumes)")
    args = p.parse_args(argv)
    task_ids = list(tasks.TASKS) if args.task == "all" else [t.strip() for t in args.task.split(",") if t.strip()]
    try:
        counts = collect_controls(
            args.out,
            task_ids,
            args.control,
            range(args.seed, args.seed + args.episodes),
            steps=args.steps,
            image_size=args.image_size,
            render_every=args.render_every,
            progress_bar=True,
        )
    except SARM2Error as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{args.control}: {counts['written']} written, {counts['skipped']} already there -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
