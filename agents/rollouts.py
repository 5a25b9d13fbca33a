"""Collect policy rollouts on reward-wrapped envs, in parallel, and keep them safely on disk.

A rollout records, per frame ``t`` (the observation before action ``t``; the last frame is the final
observation): the policy's frame embeddings, the joint state, the action taken, the reward model's online
progress (``info["sarm2/progress"]`` from :class:`sarm2_env.SARM2RewardWrapper`), and the simulator's
ground truth (``info["calibrated_progress"]``, or ``info["progress"]`` for envs without it, and
``info["success"]``) that only evaluation and the automatic annotator read.

Executors:

* :class:`LocalExecutor` (default): a Gymnasium vector env on this machine (sub-processes with
  ``asynchronous=True``), with autoreset disabled so every episode starts from the seed it was given.
* :class:`RayExecutor`: the same loop in Ray actors, for many machines (``pip install 'sarm2[ray]'``).

:class:`RolloutStore` writes each rollout atomically as it completes, so an interrupted round resumes
with the rollouts it already has.
"""

from __future__ import annotations

import dataclasses
import io
import logging
import os
import re
import zipfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sarm2_env.atomic import atomic_write
from sarm2_env.constants import ACTION_DIM, CAMERAS, STATE_DIM
from sarm2_env.errors import ConfigError, DatasetError, InputShapeError, WorkerError, WorkerTimeoutError

log = logging.getLogger(__name__)

EnvFactory = Callable[[], Any]
_FIELDS = ("embeddings", "state", "action", "rm_progress", "progress", "success_flags")


class RecordedEpisode:
    """``length`` and ``success`` of an episode record with ``state (T, ...)`` and ``success_flags (T,)``."""

    state: np.ndarray
    success_flags: np.ndarray

    @property
    def length(self) -> int:
        """Frames in the episode (steps + 1)."""
        return int(self.state.shape[0])

    @property
    def success(self) -> bool:
        """Ground-truth success at the last frame."""
        return bool(self.success_flags[-1])


@dataclasses.dataclass(frozen=True, eq=False)
class Rollout(RecordedEpisode):
    """One policy episode (see the module docstring). Arrays have one row per frame ``T = steps + 1``."""

    task_id: str
    instruction: str
    seed: int
    embeddings: np.ndarray  # (T, C, D) float16
    state: np.ndarray  # (T, 14)
    action: np.ndarray  # (T, 14); the last row repeats the last action
    rm_progress: np.ndarray  # (T,) reward model's online progress; NaN where the env had no reward wrapper
    progress: np.ndarray  # (T,) ground truth
    success_flags: np.ndarray  # (T,) ground truth

    def __post_init__(self) -> None:
        t = self.state.shape[0]
        if self.embeddings.ndim != 3 or self.embeddings.shape[:2] != (t, len(CAMERAS)):
            raise InputShapeError(f"`embeddings`: expected ({t}, {len(CAMERAS)}, D); got {self.embeddings.shape}")
        for name, shape in (("state", (t, STATE_DIM)), ("action", (t, ACTION_DIM))):
            if getattr(self, name).shape != shape:
                raise InputShapeError(f"`{name}`: expected {shape}; got {getattr(self, name).shape}")
        for name in ("rm_progress", "progress", "success_flags"):
            if getattr(self, name).shape != (t,):
                raise InputShapeError(f"`{name}`: expected ({t},); got {getattr(self, name).shape}")

    @property
    def episode_id(self) -> str:
        """A file-safe id from the task and seed, e.g. ``clean_whiteboard_0000042``."""
        slug = re.sub(r"[^a-z0-9]+", "_", self.task_id.split("/")[-1].lower()).strip("_")
        return f"{slug}_{self.seed:07d}"

    def to_bytes(self) -> bytes:
        """The rollout as NPZ bytes (what :meth:`from_file` reads)."""
        buf = io.BytesIO()
        np.savez(
            buf,
            meta=np.array([self.task_id, self.instruction, str(self.seed)]),
            **{name: getattr(self, name) for name in _FIELDS},
        )
        return buf.getvalue()

    @classmethod
    def from_file(cls, path: Path) -> Rollout:
        """A rollout written by :meth:`to_bytes`; a truncated or foreign file is a :class:`DatasetError`."""
        try:
            with np.load(path, allow_pickle=False) as z:
                task_id, instruction, seed = (str(v) for v in z["meta"])
                arrays = {name: z[name] for name in _FIELDS}
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
            raise DatasetError(f"{path}: not a readable rollout file ({type(exc).__name__}: {exc})") from exc
        return cls(task_id=task_id, instruction=instruction, seed=int(seed), **arrays)


class RolloutStore:
    """A directory of rollouts, one ``<episode_id>.npz`` each, written atomically as they complete."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)

    def path(self, rollout: Rollout) -> Path:
        """Where ``rollout`` is stored."""
        return self.root / f"{rollout.episode_id}.npz"

    def add(self, rollout: Rollout) -> None:
        """Store ``rollout`` (atomically; an existing file of the same episode is replaced)."""
        self.root.mkdir(parents=True, exist_ok=True)
        data = rollout.to_bytes()
        atomic_write(self.path(rollout), lambda f: f.write(data))

    def files(self) -> list[Path]:
        """The stored rollout files, sorted."""
        return sorted(self.root.glob("*.npz")) if self.root.is_dir() else []

    def __len__(self) -> int:
        return len(self.files())

    def seeds(self) -> set[tuple[str, int]]:
        """``(task_id, seed)`` of the stored rollouts (reads only the small metadata array)."""
        return {(r.task_id, r.seed) for r in self}

    def __iter__(self) -> Iterator[Rollout]:
        for path in self.files():
            yield Rollout.from_file(path)

    def load(self) -> list[Rollout]:
        """Every stored rollout."""
        return list(self)


# --------------------------------------------------------------------------------------------------- collection
@dataclasses.dataclass
class _Buffer:
    task_id: str
    instruction: str
    seed: int
    emb: list[np.ndarray] = dataclasses.field(default_factory=list)
    state: list[np.ndarray] = dataclasses.field(default_factory=list)
    action: list[np.ndarray] = dataclasses.field(default_factory=list)
    rm: list[float] = dataclasses.field(default_factory=list)
    progress: list[float] = dataclasses.field(default_factory=list)
    success: list[bool] = dataclasses.field(default_factory=list)

    def frame(self, emb: np.ndarray, state: np.ndarray, info: dict, i: int) -> None:
        self.emb.append(emb.astype(np.float16))
        self.state.append(state.astype(np.float32))
        self.rm.append(float(_info(info, "sarm2/progress", i, np.nan)))
        # ground truth in the units the oracle reward uses: the calibrated progress where the env reports it
        self.progress.append(float(_info(info, "calibrated_progress", i, _info(info, "progress", i, np.nan))))
        self.success.append(bool(_info(info, "success", i, False)))

    def finish(self) -> Rollout:
        actions = self.action + [self.action[-1] if self.action else self.state[-1].copy()]
        return Rollout(
            task_id=self.task_id,
            instruction=self.instruction,
            seed=self.seed,
            embeddings=np.stack(self.emb),
            state=np.stack(self.state),
            action=np.stack(actions).astype(np.float32),
            rm_progress=np.asarray(self.rm, np.float32),
            progress=np.asarray(self.progress, np.float32),
            success_flags=np.asarray(self.success, bool),
        )


def _info(info: dict, key: str, i: int, default: Any) -> Any:
    if key not in info:
        return default
    mask = info.get(f"_{key}")
    if mask is not None and not mask[i]:
        return default
    return info[key][i]


def _task_id(env) -> str:
    spec = getattr(env, "spec", None)
    return spec.id if spec is not None else type(env.unwrapped).__name__


def run_vector_rollouts(envs, policy, seeds: Sequence[int], on_rollout: Callable[[Rollout], None]) -> int:
    """Roll ``policy`` out on the vector env ``envs`` (autoreset disabled), one episode per seed.

    Each env starts an episode with the next seed as soon as its last one ends; ``on_rollout`` receives
    every finished :class:`Rollout`. Returns the number of rollouts.
    """
    from gymnasium.vector import AutoresetMode

    mode = envs.metadata.get("autoreset_mode")
    if mode not in (AutoresetMode.DISABLED, "Disabled"):
        raise ConfigError(f"`envs`: rollouts need autoreset_mode=DISABLED (seeded episodes); got {mode!r}")
    n = envs.num_envs
    pending = list(seeds)
    if not pending:
        return 0
    first = [pending.pop(0) if pending else None for _ in range(n)]
    obs, info = envs.reset(seed=[s if s is not None else 0 for s in first])
    task_ids = envs.get_attr("spec")
    task_ids = [t.id if t is not None else "unknown" for t in task_ids]
    instructions = [str(_info(info, "task", i, "")) for i in range(n)]
    _require_keys(obs)
    policy.reset(instructions)
    emb, state = policy.encode_observations(obs)
    buffers: list[_Buffer | None] = [
        _Buffer(task_ids[i], instructions[i], s) if s is not None else None for i, s in enumerate(first)
    ]
    for i, buf in enumerate(buffers):
        if buf is not None:
            buf.frame(emb[i], state[i], info, i)
    done_count = 0
    while any(b is not None for b in buffers):
        actions = policy.act_from_embeddings(emb, state)
        obs, _, terminated, truncated, info = envs.step(actions)
        emb, state = policy.encode_observations(obs)
        ended = [i for i in range(n) if terminated[i] or truncated[i]]
        for i, buf in enumerate(buffers):
            if buf is None:
                continue
            buf.action.append(actions[i].astype(np.float32))
            buf.frame(emb[i], state[i], info, i)
            if i in ended:
                on_rollout(buf.finish())
                done_count += 1
                buffers[i] = None
        if ended:
            # Every ended env is reset (stepping an ended env is an error with autoreset disabled); those
            # without a seed left idle until the others finish.
            new_seeds = {i: pending.pop(0) for i in ended if pending}
            mask = np.zeros(n, dtype=bool)
            mask[ended] = True
            obs, info = envs.reset(seed=[new_seeds.get(i, 0) for i in range(n)], options={"reset_mask": mask})
            emb_new, state_new = policy.encode_observations(obs)
            texts = [str(_info(info, "task", i, "")) for i in ended]
            policy.reset(texts, indices=ended)
            for j, i in enumerate(ended):
                emb[i], state[i] = emb_new[i], state_new[i]
                if i in new_seeds:
                    buffers[i] = _Buffer(task_ids[i], texts[j], new_seeds[i])
                    buffers[i].frame(emb[i], state[i], info, i)
    return done_count


def _require_keys(obs: Any) -> None:
    if not isinstance(obs, dict) or "pixels" not in obs or "agent_pos" not in obs:
        got = sorted(obs) if isinstance(obs, dict) else type(obs).__name__
        raise InputShapeError(
            f"`env` observations: SPIRAL needs a SARM2-style dict with 'pixels' (top, left_wrist, right_wrist) and "
            f"'agent_pos'; got {got}"
        )


class LocalExecutor:
    """Rollouts in a Gymnasium vector env on this machine.

    Args:
        num_envs: parallel envs (capped at the number of episodes asked for).
        asynchronous: sub-process envs (``AsyncVectorEnv``); ``False`` steps them in this process.
    """

    def __init__(self, num_envs: int = 4, asynchronous: bool = True) -> None:
        if not isinstance(num_envs, int) or num_envs < 1:
            raise ConfigError(f"`num_envs` must be an integer >= 1; got {num_envs!r}")
        self.num_envs = num_envs
        self.asynchronous = asynchronous

    def collect(self, make_env: EnvFactory, policy, seeds: Sequence[int], on_rollout: Callable[[Rollout], None]) -> int:
        """Roll ``policy`` out on one env per seed (vector env, ``num_envs`` at a time); returns the count."""
        import gymnasium as gym
        from gymnasium.vector import AutoresetMode

        if not seeds:
            return 0
        n = min(self.num_envs, len(seeds))
        if self.asynchronous and n > 1:
            # Spawned, not forked: a fork after torch or OpenGL is initialised can deadlock (docs/design.md §7).
            envs = gym.vector.AsyncVectorEnv([make_env] * n, autoreset_mode=AutoresetMode.DISABLED, context="spawn")
        else:
            envs = gym.vector.SyncVectorEnv([make_env] * n, autoreset_mode=AutoresetMode.DISABLED)
        try:
            return run_vector_rollouts(envs, policy, seeds, on_rollout)
        finally:
            envs.close()


class RayExecutor:
    """Rollouts in Ray actors (one env each), on a local Ray instance or a cluster (``address``).

    Work is handed out as it is asked for: each actor that has started gets one seed, and the next seed only
    when it returns that rollout, which the driver stores at once. So the run finishes whatever the ratio of
    workers to free CPUs (actors Ray cannot place simply never take a seed; with more workers than CPUs the
    extra ones wait unscheduled and are killed at the end) and a slow worker holds up only its own episode.
    The policy travels to the actors as its weights (``policy.state_dict()``, either policy kind).

    Args:
        num_workers: actors to start (at most one per seed).
        address: Ray cluster address; ``None`` starts (or joins) a local instance.
        num_cpus_per_worker: CPUs Ray reserves per actor.
        timeout_s: longest wait, in seconds, for one rollout from a worker; past it
            :class:`~sarm2_env.errors.WorkerTimeoutError` names the stuck worker (its index, host and
            process) and seed. ``None`` waits forever.
        start_timeout_s: longest wait for the first worker to start (placing actors and importing torch, the
            env and the policy); past it the error says the cluster may have no free CPU. ``None`` waits forever.
    """

    def __init__(
        self,
        num_workers: int = 2,
        address: str | None = None,
        num_cpus_per_worker: float = 1.0,
        timeout_s: float | None = 1800.0,
        start_timeout_s: float | None = 600.0,
    ) -> None:
        try:
            import ray  # noqa: F401
        except ImportError as exc:
            raise ConfigError("the Ray executor needs Ray: pip install 'sarm2[ray]' (or executor='local')") from exc
        if not isinstance(num_workers, int) or num_workers < 1:
            raise ConfigError(f"`num_workers` must be an integer >= 1; got {num_workers!r}")
        if not isinstance(num_cpus_per_worker, (int, float)) or num_cpus_per_worker <= 0:
            raise ConfigError(f"`num_cpus_per_worker` must be a number > 0; got {num_cpus_per_worker!r}")
        for name, value in (("timeout_s", timeout_s), ("start_timeout_s", start_timeout_s)):
            if value is not None and (not isinstance(value, (int, float)) or not value > 0):
                raise ConfigError(f"`{name}` must be a number of seconds > 0 or None; got {value!r}")
        self.num_workers = num_workers
        self.address = address
        self.num_cpus_per_worker = num_cpus_per_worker
        self.timeout_s = timeout_s
        self.start_timeout_s = start_timeout_s

    def collect(self, make_env: EnvFactory, policy, seeds: Sequence[int], on_rollout: Callable[[Rollout], None]) -> int:
        """Roll ``policy`` out on Ray workers, one seed per task; returns the count."""
        import time

        import ray

        if not seeds:
            return 0
        if not ray.is_initialized():
            ray.init(address=self.address, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
        worker_cls = ray.remote(num_cpus=self.num_cpus_per_worker)(_RayWorker)
        state = ray.put(policy.state_dict())
        workers = [worker_cls.remote(make_env, state) for _ in range(min(self.num_workers, len(seeds)))]
        pending = list(seeds)
        # ref -> (worker index, seed or None for the start-up ping, when it was handed out)
        in_flight: dict[Any, tuple[int, int | None, float]] = {
            w.where.remote(): (k, None, time.monotonic()) for k, w in enumerate(workers)
        }
        where: dict[int, str] = {}
        count = 0
        try:
            while in_flight:
                ready, _ = ray.wait(list(in_flight), num_returns=1, timeout=min(0.5, self.timeout_s or 0.5))
                if not ready:
                    self._raise_if_stuck(in_flight, where)
                    continue
                ref = ready[0]
                k, seed, _ = in_flight.pop(ref)
                result = self._get(ref, k, seed, where)
                if seed is None:
                    where[k] = result
                else:
                    on_rollout(result)
                    count += 1
                if pending:
                    nxt = pending.pop(0)
                    in_flight[workers[k].collect_one.remote(nxt)] = (k, nxt, time.monotonic())
                elif all(s is None for _, s, _ in in_flight.values()):
                    break  # only start-up pings of workers Ray never placed are left
        finally:
            for w in workers:
                ray.kill(w)
        return count

    def _raise_if_stuck(self, in_flight: dict, where: dict[int, str]) -> None:
        import time

        now = time.monotonic()
        for k, seed, since in in_flight.values():
            waited = now - since
            if seed is not None and self.timeout_s is not None and waited > self.timeout_s:
                raise WorkerTimeoutError(
                    f"Ray rollout worker {k} ({where.get(k, 'unknown host')}) returned no rollout for seed {seed} "
                    f"in {waited:.1f} s (`timeout_s`={self.timeout_s}); it may be hung in the env or the policy"
                )
            # A worker Ray never placed is not stuck while another one works; none working at all is.
            if seed is None and not where and self.start_timeout_s is not None and waited > self.start_timeout_s:
                raise WorkerTimeoutError(
                    f"no Ray rollout worker started in {waited:.0f} s (`start_timeout_s`={self.start_timeout_s}); "
                    f"the cluster may have no free CPU for `num_cpus_per_worker`={self.num_cpus_per_worker}"
                )

    @staticmethod
    def _get(ref: Any, k: int, seed: int | None, where: dict[int, str]) -> Any:
        import ray

        try:
            return ray.get(ref)
        except ray.exceptions.RayError as exc:
            job = "to start" if seed is None else f"on the rollout of seed {seed}"
            raise WorkerError(f"Ray rollout worker {k} ({where.get(k, 'unknown host')}) failed {job}: {exc}") from exc


class _RayWorker:
    """A Ray actor: one env, built once, and a copy of the policy."""

    def __init__(self, make_env: EnvFactory, policy_state: dict) -> None:
        import gymnasium as gym
        from gymnasium.vector import AutoresetMode

        from agents.residual import policy_from_state_dict

        self.policy = policy_from_state_dict(policy_state, device="cpu")
        self.envs = gym.vector.SyncVectorEnv([make_env], autoreset_mode=AutoresetMode.DISABLED)

    def where(self) -> str:
        """``node <hostname>, pid <pid>``: how an error names this worker."""
        import socket

        return f"node {socket.gethostname()}, pid {os.getpid()}"

    def collect_one(self, seed: int) -> Rollout:
        out: list[Rollout] = []
        run_vector_rollouts(self.envs, self.policy, [seed], out.append)
        return out[0]


def make_executor(kind: str = "local", **kwargs: Any):
    """``"local"`` (:class:`LocalExecutor`) or ``"ray"`` (:class:`RayExecutor`)."""
    if kind == "local":
        return LocalExecutor(**kwargs)
    if kind == "ray":
        return RayExecutor(**kwargs)
    from sarm2_env.errors import UnknownNameError

    raise UnknownNameError("executor", kind, ("local", "ray"))
