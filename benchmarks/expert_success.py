"""Scripted-expert success rate and episode length per task and skill (ground truth ``info["success"]``).

    python benchmarks/expert_success.py [--seeds 20] [--skills 1.0,0.6,0.3] [--image-size 32]

Rendering does not change the physics, so a small image size measures the same outcomes faster.
The interval is the 95% Wilson score interval.
"""

from __future__ import annotations

import argparse

from sarm2_env.stats import wilson_interval


def main() -> None:
    """Print each task's scripted-expert success rate (Wilson 95 % interval) per skill."""
    import tasks
    from tasks.expert import run_expert_episode

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--skills", default="1.0,0.6,0.3")
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--tasks", default=",".join(tasks.TASKS))
    args = parser.parse_args()

    header = f"{'task':26s} {'skill':>5s} {'success':>9s} {'95% CI':>13s} {'mean steps':>10s}"
    print(f"{header} {'mean final progress':>19s}")
    for task in args.tasks.split(","):
        env = tasks.make_task_env(task, image_size=args.image_size)
        for skill in (float(s) for s in args.skills.split(",")):
            expert = tasks.make_expert(env, skill=skill)
            wins, steps, final = 0, 0, 0.0
            for seed in range(args.seeds):
                n, info = 0, {}
                for _, _, _, step_info in run_expert_episode(env, expert, seed=seed):  # stream: keep no frames
                    n, info = n + 1, step_info
                wins += info["success"]
                steps += n
                final += info["progress"]
            lo, hi = wilson_interval(wins, args.seeds)
            print(
                f"{tasks.resolve_task_id(task):26s} {skill:5.2f} {wins:4d}/{args.seeds:<4d} [{lo:4.2f}, {hi:4.2f}]  "
                f"{steps / args.seeds:10.1f} {final / args.seeds:19.3f}",
                flush=True,
            )
        env.close()


if __name__ == "__main__":
    main()
