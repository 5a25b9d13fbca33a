"""``SARM2RewardWrapper``: a learned, stage-aware dense reward for any Gymnasium env with the SARM2
observation layout (three camera views under ``obs["pixels"]`` and the 14-d ``obs["agent_pos"]``).

Each step encodes only the three new frames (the reward model's session keeps earlier embeddings in memory)
and runs one model forward. On a vector env the frames of all sub-envs go through the encoder in one call
and the model in one batched forward. Frames are scored at the resolution the checkpoint's encoder was trained
on: an observation at another size gets views rendered at that size for the reward (``env.render_views``), or a
clear error where the env cannot render them.

Reward modes:
    ``"delta"`` (default): p_t - p_{t-1}, potential-based shaping with potential = predicted progress;
    ``"progress"``: p_t itself;
    ``"delta+success"``: p_t - p_{t-1} plus ``success_bonus`` on steps where ``info["success"]`` is true.
The env's own reward is kept in ``info["task_reward"]``; the wrapper adds ``info["sarm2/progress"]`` and
``info["sarm2/primitive"]``, and never touches ``info["success"]`` or ``info["progress"]``.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from typing import Any

import gymnasium as gym
import numpy as np
from typing_extensions import override

from sarm2_env.constants import CAMERAS, STATE_DIM
from sarm2_env.errors import CheckpointError, ConfigError, InputShapeError

MODES = ("delta", "progress", "delta+success")
DEFAULT_BACKEND = "sarm2"


def _train_hint(task: str) -> str:
    return (
        f"No reward model checkpoint covers task {task!r}. Train one on demonstrations of it:\n"
        f"  python -m tasks.collect --task {task} --episodes 40 --out data/my_demos\n"
        f"  python -m rewards.train --model sarm2 --data data/my_demos --out runs/my_sarm2\n"
        f"then wrap with SARM2RewardWrapper(env, reward_model=make_reward_model('sarm2', checkpoint='runs/my_sarm2')) "
        f"(make_reward_model is in rewards), or pass allow_unseen_tasks=True to use it anyway."
    )


@contextlib.contextmanager
def _announce_load(what: str):
    """One line on a terminal while a checkpoint loads (weights, encoders: seconds on a CPU), then its time."""
    show = sys.stderr.isatty()
    if show:
        print(f"loading reward model {what} ...", end="", file=sys.stderr, flush=True)
    started = time.perf_counter()
    try:
        yield
    finally:
        if show:
            print(f" {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)


def resolve_reward_model(reward_model: Any, device: Any = None):
    """A reward model from an instance, a registered name (its default checkpoint), or a checkpoint directory."""
    from rewards.base import RewardModel
    from rewards.registry import REGISTRY, make_reward_model

    if reward_model is None:
        reward_model = DEFAULT_BACKEND
    if isinstance(reward_model, RewardModel):
        return reward_model
    if isinstance(reward_model, (str, os.PathLike)):
        text = os.fspath(reward_model)
        if text in REGISTRY:
            with _announce_load(f"{text!r} (shipped checkpoint)"):
                return make_reward_model(text, device=device)
        if os.path.isdir(text):
            import json

            try:
                name = json.loads(open(os.path.join(text, "config.json")).read())["model"]
            except (OSError, ValueError, KeyError) as exc:
                raise CheckpointError(f"`reward_model`: {text!r} is not a reward-model checkpoint ({exc})") from exc
            with _announce_load(f"{name!r} from {text}"):
                return make_reward_model(name, checkpoint=text, device=device)
        from sarm2_env.errors import UnknownNameError

        raise UnknownNameError("reward model (name or checkpoint directory)", text, REGISTRY)
    raise ConfigError(
        f"`reward_model` must be a RewardModel, a registered name or a checkpoint directory; got {type(reward_model)}"
    )


def _task_id(env) -> str | None:
    spec = getattr(env, "spec", None) or getattr(getattr(env, "unwrapped", None), "spec", None)
    return spec.id if spec is not None else None


def _check_coverage(model, task_id: str | None, allow_unseen: bool) -> None:
    if allow_unseen:
        return
    if task_id is None or not model.covers(task_id):
        raise CheckpointError(_train_hint(task_id or "<your task>"))


def _prepare(env, reward_model: Any, mode: str, allow_unseen: bool, device: Any):
    """Validate the wrapper arguments shared by the single and vector forms; return the reward model."""
    if mode not in MODES:
        raise ConfigError(f"`mode` must be one of {MODES}; got {mode!r}")
    model = resolve_reward_model(reward_model, device)
    _check_coverage(model, _task_id(env), allow_unseen)
    return model


def _frames(obs: dict, batch: int | None) -> np.ndarray:
    """``obs["pixels"]`` -> uint8 frames ``(C, H, W, 3)`` or ``(N * C, H, W, 3)`` (sub-env major)."""
    pixels = obs.get("pixels") if isinstance(obs, dict) else None
    if not isinstance(pixels, dict):
        raise InputShapeError(f"`obs['pixels']`: expected a dict of camera images {list(CAMERAS)}; got {type(pixels)}")
    missing = [c for c in CAMERAS if c not in pixels]
    if missing:
        raise InputShapeError(f"`obs['pixels']`: expected cameras {list(CAMERAS)}; missing {missing}")
    images = [np.asarray(pixels[c]) for c in CAMERAS]
    if batch is None:
        return np.stack(images)  # (C, H, W, 3)
    return np.stack(images, axis=1).reshape(-1, *images[0].shape[1:])  # (N * C, H, W, 3)


def _state(obs: Any, batch: int | None) -> np.ndarray:
    """The 14-d joint state: ``obs["agent_pos"]``, or the first 14 values of a flat ``obs_mode="state"`` vector."""
    from rewards.data import check_state

    if isinstance(obs, dict):
        if "agent_pos" not in obs:
            raise InputShapeError("`obs['agent_pos']`: expected the 14-d joint state; missing")
        return check_state(obs["agent_pos"], () if batch is None else (batch,), name="obs['agent_pos']")
    flat = np.asarray(obs)
    return check_state(flat[..., :STATE_DIM], () if batch is None else (batch,), name="obs[:14] (agent_pos)")


def _obs_mode(env: Any) -> str:
    """The env's ``obs_mode`` (``"pixels"`` for envs that do not have one), for single and vector envs."""
    if isinstance(env, gym.vector.VectorEnv):
        try:
            return str(env.get_attr("obs_mode")[0])
        except AttributeError:
            return "pixels"
    return str(getattr(env.unwrapped, "obs_mode", "pixels"))


def _trained_size(model: Any) -> int | None:
    """Square frame side the model's frozen encoder was trained on; None for models that take any size."""
    spec = getattr(model, "encoder_spec", None)
    return None if spec is None else int(spec.image_size)


def _size_error(env: Any, frames: np.ndarray, size: int) -> InputShapeError:
    return InputShapeError(
        f"`obs['pixels']`: frames are {frames.shape[-3]}x{frames.shape[-2]} px, but the reward model's checkpoint was "
        f"trained on {size}x{size} px frames and {type(env.unwrapped).__name__} cannot render them at that size "
        f"here; make the env with image_size={size} (frames at another resolution get progress the checkpoint was "
        "never trained for)"
    )


def _no_pixels_error(env: Any) -> InputShapeError:
    return InputShapeError(
        f"`obs['pixels']`: the observation carries no camera views and {type(env.unwrapped).__name__} cannot render "
        f"them (no `render_views()`); give it the SARM2 layout, or obs_mode 'pixels' / 'pixels+state'"
    )


class SARM2RewardWrapper(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Replace an env's reward with a learned progress reward (see the module docstring for modes and keys).

    Works in every observation mode of the SARM2 tasks: when the observation carries no camera views
    (``obs_mode="state"``), the wrapper renders the three views it scores itself (``env.render_views()``), so
    ``PPO("MlpPolicy", SARM2RewardWrapper(gym.make(id, obs_mode="state")))`` trains on the flat state with the
    learned, image-based reward.

    ``SARM2RewardWrapper(env)`` on a ``SARM2/*`` task loads the shipped SARM2 checkpoint for the simulated
    station; on a task it has no checkpoint for it raises :class:`CheckpointError` saying how to train one.
    ``reward_model`` may be a :class:`rewards.RewardModel`, a registered backend name, or a checkpoint directory.
    Given a Gymnasium vector env, this returns a :class:`SARM2VectorRewardWrapper`.
    """

    def __new__(cls, env, *args: Any, **kwargs: Any):
        """A vector env gets :class:`SARM2VectorRewardWrapper`, any other env this class."""
        if isinstance(env, gym.vector.VectorEnv):
            return SARM2VectorRewardWrapper(env, *args, **kwargs)
        return super().__new__(cls)

    def __init__(
        self,
        env: gym.Env,
        reward_model: Any = None,
        mode: str = "delta",
        success_bonus: float = 1.0,
        allow_unseen_tasks: bool = False,
        device: Any = None,
    ) -> None:
        model = _prepare(env, reward_model, mode, allow_unseen_tasks, device)
        gym.utils.RecordConstructorArgs.__init__(
            self,
            reward_model=_model_arg(model, reward_model),
            mode=mode,
            success_bonus=success_bonus,
            allow_unseen_tasks=allow_unseen_tasks,
        )
        gym.Wrapper.__init__(self, env)
        self.reward_model = model
        self.mode, self.success_bonus = mode, float(success_bonus)
        self._session = None
        self._previous = 0.0

    def _progress(self, obs: Any, info: dict) -> float:
        model = self.reward_model
        self._session.info = info
        state = _state(obs, None)
        emb = model.encode_frames(self._frames(obs)[None])  # (1, C, D): only this step's frames are encoded
        return float(model.step_batch([self._session], emb, state[None])[0])

    def _frames(self, obs: Any) -> np.ndarray:
        """This step's camera views at the resolution the reward model was trained on: the observation's, or
        rendered for the reward alone (``obs_mode="state"``, or observations at another resolution)."""
        size = _trained_size(self.reward_model)
        frames = _frames(obs, None) if isinstance(obs, dict) and "pixels" in obs else None
        if frames is not None and (size is None or frames.shape[1:3] == (size, size)):
            return frames
        render = getattr(self.env.unwrapped, "render_views", None)
        if render is None:
            raise _no_pixels_error(self.env) if frames is None else _size_error(self.env, frames, size)
        return _frames({"pixels": render() if size is None else render(image_size=size)}, None)

    def _annotate(self, info: dict, progress: float) -> dict:
        info["sarm2/progress"] = progress
        info["sarm2/primitive"] = self._session.last.get("primitive")
        return info

    @override
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        obs, info = self.env.reset(seed=seed, options=options)
        task_id = _task_id(self.env)
        task = task_id if task_id is not None and self.reward_model.covers(task_id) else info.get("task", task_id or "")
        self._session = self.reward_model.start(task)
        self._previous = self._progress(obs, info)
        return obs, self._annotate(dict(info), self._previous)

    @override
    def step(self, action):
        if self._session is None:
            raise gym.error.ResetNeeded("SARM2RewardWrapper: call reset() before step()")
        obs, task_reward, terminated, truncated, info = self.env.step(action)
        progress = self._progress(obs, info)
        reward = _shape(self.mode, progress, self._previous, bool(info.get("success", False)), self.success_bonus)
        self._previous = progress
        info = self._annotate(dict(info), progress)
        info["task_reward"] = task_reward
        return obs, reward, terminated, truncated, info


def _shape(mode: str, progress: float, previous: float, success: bool, bonus: float) -> float:
    if mode == "progress":
        return progress
    reward = progress - previous
    if mode == "delta+success" and success:
        reward += bonus
    return reward


def _model_arg(model, given: Any) -> Any:
    # record the name / checkpoint, not the module, so gym's spec stack stays serialisable
    if isinstance(given, (str, os.PathLike)) or given is None:
        return os.fspath(given) if given is not None else DEFAULT_BACKEND
    path = getattr(model, "checkpoint_path", None)
    return os.fspath(path) if path is not None else model.name


def _sub_info(info: dict, i: int) -> dict:
    """Sub-env ``i``'s entries of a vector env's info dict (arrays indexed where their mask says present)."""
    out = {}
    for key, value in info.items():
        if key.startswith("_") or isinstance(value, dict):
            continue
        mask = info.get(f"_{key}")
        if isinstance(value, np.ndarray) and len(value) > i and (mask is None or bool(mask[i])):
            out[key] = value[i]
    return out


class SARM2VectorRewardWrapper(gym.vector.VectorWrapper):
    """The vector-env form of :class:`SARM2RewardWrapper`: one batched encoder call and one batched model
    forward per step across all sub-envs. Handles Gymnasium's ``next_step`` and ``same_step`` autoreset modes.
    """

    def __init__(
        self,
        env: gym.vector.VectorEnv,
        reward_model: Any = None,
        mode: str = "delta",
        success_bonus: float = 1.0,
        allow_unseen_tasks: bool = False,
        device: Any = None,
    ) -> None:
        model = _prepare(env, reward_model, mode, allow_unseen_tasks, device)
        super().__init__(env)
        self.reward_model = model
        self.mode, self.success_bonus = mode, float(success_bonus)
        autoreset = env.metadata.get("autoreset_mode", gym.vector.AutoresetMode.NEXT_STEP)
        if autoreset not in (gym.vector.AutoresetMode.NEXT_STEP, gym.vector.AutoresetMode.SAME_STEP):
            raise ConfigError(f"`autoreset_mode` must be NEXT_STEP or SAME_STEP; got {autoreset}")
        self.autoreset = autoreset
        self.renders_views = _obs_mode(env) == "state"  # the observations carry no pixels: render them here
        if self.renders_views and autoreset == gym.vector.AutoresetMode.SAME_STEP:
            raise ConfigError(
                "`autoreset_mode`: with obs_mode='state' the wrapper renders the frames it scores, and SAME_STEP "
                "autoreset has already reset the final state it would render; use NEXT_STEP (the default)"
            )
        self._sessions: list = []
        self._previous = np.zeros(self.num_envs, dtype=np.float32)
        self._done = np.zeros(self.num_envs, dtype=bool)
        self._tasks: list[str] = []

    def _task_for(self, info: dict, i: int) -> str:
        task_id = _task_id(self.env)
        if task_id is not None and self.reward_model.covers(task_id):
            return task_id
        tasks = info.get("task")
        return str(tasks[i]) if tasks is not None else (task_id or "")

    def _split(self, obs: Any) -> tuple[np.ndarray, np.ndarray]:
        """``obs`` -> frames ``(N, C, H, W, 3)`` and states ``(N, 14)``."""
        n = self.num_envs
        size = _trained_size(self.reward_model)
        if self.renders_views:  # one dict per sub-env, rendered in the sub-env's process at the trained size
            views = self.env.call("render_views") if size is None else self.env.call("render_views", image_size=size)
            frames = np.stack([np.stack([v[c] for c in CAMERAS]) for v in views])
            return frames, _state(obs, n)
        frames = _frames(obs, n)
        if size is not None and frames.shape[1:3] != (size, size):
            raise _size_error(self.env, frames, size)  # vector envs: no second render of the final frames
        return frames.reshape(n, len(CAMERAS), *frames.shape[1:]), _state(obs, n)

    def _advance(self, frames: np.ndarray, states: np.ndarray, idx: np.ndarray, info: dict) -> np.ndarray:
        """Step the sessions ``idx`` on their frames: one encoder call for all of them, one model forward."""
        for i in idx:
            self._sessions[i].info = _sub_info(info, i)
        emb = self.reward_model.encode_frames(frames[idx])  # (k, C, D): all sub-envs' frames in one encoder call
        sessions = [self._sessions[i] for i in idx]
        return self.reward_model.step_batch(sessions, emb, states[idx])

    def _annotate(self, info: dict, progress: np.ndarray) -> dict:
        info["sarm2/progress"] = progress.copy()
        info["sarm2/primitive"] = np.array([s.last.get("primitive") for s in self._sessions], dtype=object)
        return info

    @override
    def reset(self, *, seed=None, options=None):
        obs, info = self.env.reset(seed=seed, options=options)
        self._sessions = [self.reward_model.start(self._task_for(info, i)) for i in range(self.num_envs)]
        frames, states = self._split(obs)
        self._previous = self._advance(frames, states, np.arange(self.num_envs), info).astype(np.float32)
        self._done[:] = False
        return obs, self._annotate(dict(info), self._previous)

    @override
    def step(self, actions):
        if not self._sessions:
            raise gym.error.ResetNeeded("SARM2VectorRewardWrapper: call reset() before step()")
        obs, task_reward, terminated, truncated, info = self.env.step(actions)
        info = dict(info)
        n, everyone = self.num_envs, np.arange(self.num_envs)
        success = np.asarray(info.get("success", np.zeros(n, dtype=bool)), dtype=bool).reshape(-1)
        if success.shape != (n,):
            success = np.zeros(n, dtype=bool)
        frames, states = self._split(obs)
        if self.autoreset == gym.vector.AutoresetMode.NEXT_STEP:
            # sub-envs that ended on the previous step were reset by this one: their obs is a first frame
            fresh = self._done.copy()
            for i in np.flatnonzero(fresh):
                self._sessions[i] = self.reward_model.start(self._task_for(info, i))
            progress = self._advance(frames, states, everyone, info)
            scored, previous = progress, np.where(fresh, progress, self._previous)
        else:
            # same-step autoreset: score the terminal frame (``final_obs``), then start the new episode
            ended = np.flatnonzero(np.logical_or(terminated, truncated))
            final = info.get("final_obs")
            end_frames, end_states = frames.copy(), states.copy()
            for i in ended:
                end_frames[i] = np.stack([final[i]["pixels"][c] for c in CAMERAS])
                end_states[i] = final[i]["agent_pos"]
            scored = self._advance(end_frames, end_states, everyone, info)
            progress, previous = scored.copy(), self._previous
            for i in ended:
                self._sessions[i] = self.reward_model.start(self._task_for(info, i))
            if len(ended):
                progress[ended] = self._advance(frames, states, ended, info)
        reward = np.array(
            [_shape(self.mode, scored[i], previous[i], success[i], self.success_bonus) for i in range(n)],
            dtype=np.float32,
        )
        self._previous = np.asarray(progress, dtype=np.float32)
        self._done = np.logical_or(terminated, truncated)
        info = self._annotate(info, self._previous)
        info["task_reward"] = task_reward
        return obs, reward, terminated, truncated, info
