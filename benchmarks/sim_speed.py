"""Simulation speed: env steps/s with 3 cameras per task and resolution, and the env's overhead.

For each task, one expert episode's actions are recorded once and replayed (so the expert's IK is not
timed). Per resolution the same actions are replayed twice in this run:

* through ``env.step`` (validation, grasp assists, ground truth, observation dict, 3 renders);
* "raw": the same physics substeps (``mj_step(nstep=...)``) and the same 3 camera renders, nothing else.

``overhead = env time / raw time`` is what the wrapper layers cost on top of the work they cannot avoid.
Targets on a 2-core CPU: rigid tasks >= 60 steps/s at 128 px, deformable ones (cloth, cable; the env
class's ``deformable``) >= 15 steps/s, overhead <= 1.3. Run::

    python benchmarks/sim_speed.py [--steps 150] [--sizes 64,128,224] [--tasks FoldShorts,CleanWhiteboard]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

RIGID_TARGET, DEFORMABLE_TARGET = 60.0, 15.0
MAX_OVERHEAD = 1.3


def target_steps_per_s(task_id: str) -> float:
    """The speed target of a task at 128 px (env steps/s on 2 CPU cores)."""
    import gymnasium as gym

    env_cls = gym.spec(task_id).entry_point
    if isinstance(env_cls, str):
        from importlib import import_module

        module, name = env_cls.split(":")
        env_cls = getattr(import_module(module), name)
    return DEFORMABLE_TARGET if env_cls.deformable else RIGID_TARGET


def record_actions(task_id: str, steps: int) -> list[np.ndarray]:
    """The scripted expert's actions for ``steps`` steps of ``task_id`` (replayed by the timing runs)."""
    import tasks
    from tasks.expert import run_expert_episode

    env = tasks.make_task_env(task_id, image_size=32)
    expert = tasks.make_expert(env, skill=1.0)
    actions = [a for _, a, _, _ in run_expert_episode(env, expert, seed=0, max_steps=steps) if a is not None]
    env.close()
    while len(actions) < steps:  # hold the last pose if the episode ended early
        actions.append(actions[-1])
    return actions[:steps]


def time_env(task_id: str, size: int, actions: list[np.ndarray]) -> tuple[float, float]:
    """Seconds per env.step and per raw (physics + 3 renders) step, same actions, same run."""
    import mujoco

    import tasks

    env = tasks.make_task_env(task_id, image_size=size, terminate_on_success=False).unwrapped
    env.reset(seed=0)
    t0 = time.perf_counter()
    for a in actions:
        env.step(a)
    env_dt = (time.perf_counter() - t0) / len(actions)

    env.reset(seed=0)
    renderer = env._renderer  # the env's own renderer: same GL context and buffers
    physics = render = 0.0
    for a in actions:
        env.data.ctrl[:] = env._action_to_ctrl(env._validate_action(a))
        env._before_physics(a)  # keep grasps engaging as in the env run, untimed
        t0 = time.perf_counter()
        mujoco.mj_step(env.model, env.data, nstep=env.n_substeps)
        t1 = time.perf_counter()
        renderer.render(env.data)
        t2 = time.perf_counter()
        physics += t1 - t0
        render += t2 - t1
    env.close()
    return env_dt, (physics + render) / len(actions)


def main() -> None:
    """Print the simulator's speed per task: physics, rendering and a full env step."""
    import tasks

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--sizes", default="64,128,224")
    parser.add_argument("--tasks", default=",".join(tasks.TASKS))
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    task_ids = [tasks.resolve_task_id(t) for t in args.tasks.split(",")]

    print(f"{'task':26s} {'px':>4s} {'env steps/s':>11s} {'raw steps/s':>11s} {'overhead':>8s}  target")
    failures = []
    for task_id in task_ids:
        actions = record_actions(task_id, args.steps)
        for size in sizes:
            env_dt, raw_dt = time_env(task_id, size, actions)
            ratio = env_dt / raw_dt
            target = ""
            if size == 128:
                goal = target_steps_per_s(task_id)
                ok = 1 / env_dt >= goal and ratio <= MAX_OVERHEAD
                target = f">= {goal:.0f}/s, <= {MAX_OVERHEAD}: {'met' if ok else 'MISSED'}"
                if not ok:
                    failures.append(task_id)
            print(f"{task_id:26s} {size:4d} {1 / env_dt:11.1f} {1 / raw_dt:11.1f} {ratio:8.2f}  {target}")
    if failures:
        print(f"targets missed for: {', '.join(failures)}")


if __name__ == "__main__":
    main()
