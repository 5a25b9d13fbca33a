"""SARM2RewardWrapper on single and vector SARM2 envs: reward modes, info keys, batching, autoreset, errors."""

from __future__ import annotations

import sys

import gymnasium as gym
import numpy as np
import pytest

from rewards.encoders import DEFAULT_REWARD_ENCODER
from sarm2_env.constants import CAMERAS
from sarm2_env.errors import CheckpointError, ConfigError, InputShapeError, NonFiniteError
from sarm2_env.wrapper import SARM2RewardWrapper, SARM2VectorRewardWrapper
from tests.rewards.fixtures import SIM_TASKS

TASK = SIM_TASKS[1]  # CleanWhiteboard: the faster of the two to simulate


@pytest.fixture()
def model(tiny_sarm2_checkpoint):
    from rewards.sarm2.model import SARM2RewardModel

    return SARM2RewardModel.load(tiny_sarm2_checkpoint, device="cpu")


def hold_action(obs) -> np.ndarray:
    return np.asarray(obs["agent_pos"], dtype=np.float32)


def test_delta_reward_info_keys_and_task_reward(model) -> None:
    env = SARM2RewardWrapper(gym.make(TASK, image_size=32), reward_model=model)
    obs, info = env.reset(seed=0)
    assert 0.0 <= info["sarm2/progress"] <= 1.0 and info["sarm2/primitive"] is not None
    first = previous = info["sarm2/progress"]
    total = 0.0
    for _ in range(4):
        obs, reward, terminated, truncated, info = env.step(hold_action(obs))
        assert reward == pytest.approx(info["sarm2/progress"] - previous)
        assert info["task_reward"] == float(info["success"])  # the env's own reward, kept
        assert "progress" in info and "success" in info  # ground truth untouched
        previous, total = info["sarm2/progress"], total + reward
    assert total == pytest.approx(previous - first)  # potential-based: the shaped return telescopes
    env.close()


@pytest.mark.parametrize("mode", ["progress", "delta+success"])
def test_other_reward_modes(model, mode: str) -> None:
    env = SARM2RewardWrapper(gym.make(TASK, image_size=32), reward_model=model, mode=mode, success_bonus=5.0)
    obs, info = env.reset(seed=1)
    previous = info["sarm2/progress"]
    obs, reward, *_, info = env.step(hold_action(obs))
    expected = info["sarm2/progress"] if mode == "progress" else info["sarm2/progress"] - previous
    assert reward == pytest.approx(expected)
    env.close()


def test_wrapper_reward_matches_offline_prediction_of_the_same_frames(model) -> None:
    """The online reward sees the same progress as predict_episode on the recorded frames."""
    from rewards.data import EpisodeFeatures

    env = SARM2RewardWrapper(gym.make(TASK, image_size=32), reward_model=model, mode="progress")
    obs, info = env.reset(seed=2)
    frames, states, online = [obs], [obs["agent_pos"]], [info["sarm2/progress"]]
    for _ in range(12):
        obs, reward, *_ = env.step(hold_action(obs))
        frames.append(obs)
        states.append(obs["agent_pos"])
        online.append(reward)
    emb = np.stack([model.image_encoder.encode(np.stack([o["pixels"][c] for c in CAMERAS])) for o in frames])
    n = len(frames)
    feats = EpisodeFeatures(
        episode_id="live",
        task_id=TASK,
        instruction=info["task"],
        success=False,
        skill=1.0,
        embeddings=emb,
        state=np.asarray(states, np.float32),
        primitive=np.full(n, -1),
        progress=np.zeros(n, np.float32),
    )
    np.testing.assert_allclose(online, model.predict_episode(feats).progress, atol=1e-5)
    env.close()


def test_only_the_new_frames_are_encoded(model) -> None:
    env = SARM2RewardWrapper(gym.make(TASK, image_size=32), reward_model=model)
    obs, _ = env.reset(seed=0)
    encoder = model.image_encoder
    calls, frames = encoder.calls, encoder.frames_encoded
    for _ in range(5):
        obs, *_ = env.step(hold_action(obs))
    assert encoder.calls - calls == 5 and encoder.frames_encoded - frames == 5 * len(CAMERAS)
    env.close()


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_check_env_passes_on_the_wrapped_env(model) -> None:
    from gymnasium.utils.env_checker import check_env

    env = SARM2RewardWrapper(gym.make(TASK, image_size=32).unwrapped, reward_model=model, allow_unseen_tasks=True)
    check_env(env, skip_render_check=True)
    env.close()


def test_vector_env_batches_encoder_and_model_and_handles_autoreset(model) -> None:
    envs = gym.make_vec(TASK, num_envs=2, vectorization_mode="sync", image_size=32, max_episode_steps=3)
    wrapped = SARM2RewardWrapper(envs, reward_model=model)
    assert isinstance(wrapped, SARM2VectorRewardWrapper)
    obs, info = wrapped.reset(seed=[0, 1])
    assert info["sarm2/progress"].shape == (2,)
    encoder = model.image_encoder
    calls, frames = encoder.calls, encoder.frames_encoded
    rewards, truncs = [], []
    for _ in range(5):  # episode of 3 steps, then the next-step autoreset, then one more step
        obs, reward, terminated, truncated, info = wrapped.step(obs["agent_pos"].astype(np.float32))
        rewards.append(reward)
        truncs.append(truncated)
        assert info["sarm2/progress"].shape == (2,) and info["sarm2/primitive"].shape == (2,)
        assert "task_reward" in info
    assert encoder.calls - calls == 5  # one encoder call per step for both sub-envs
    assert encoder.frames_encoded - frames == 5 * 2 * len(CAMERAS)
    assert truncs[2].all()
    np.testing.assert_array_equal(rewards[3], 0.0)  # the autoreset step starts a new episode: no reward
    assert all(s.frame == 1 for s in wrapped._sessions)  # new sessions: reset frame + one step
    wrapped.close()


def test_state_mode_scores_the_frames_it_renders_itself(model) -> None:
    """On obs_mode='state' the wrapper renders the views it scores: the same rewards as on the pixel env."""
    pixel_env = SARM2RewardWrapper(gym.make(TASK, image_size=32), reward_model=model)
    state_env = SARM2RewardWrapper(gym.make(TASK, image_size=32, obs_mode="state"), reward_model=model)
    assert state_env.observation_space == state_env.env.observation_space  # the policy sees the flat state
    p_obs, p_info = pixel_env.reset(seed=4)
    s_obs, s_info = state_env.reset(seed=4)
    assert s_info["sarm2/progress"] == pytest.approx(p_info["sarm2/progress"])
    for _ in range(3):
        action = hold_action(p_obs)
        p_obs, p_reward, *_, p_info = pixel_env.step(action)
        s_obs, s_reward, *_, s_info = state_env.step(action)
        assert s_reward == pytest.approx(p_reward, abs=1e-6)
        assert s_info["sarm2/progress"] == pytest.approx(p_info["sarm2/progress"], abs=1e-6)
    pixel_env.close()
    state_env.close()


def test_vector_state_mode_renders_in_the_sub_envs(model) -> None:
    envs = gym.make_vec(TASK, num_envs=2, vectorization_mode="sync", image_size=32, obs_mode="state")
    wrapped = SARM2RewardWrapper(envs, reward_model=model)
    obs, info = wrapped.reset(seed=[0, 1])
    assert obs.ndim == 2 and info["sarm2/progress"].shape == (2,)
    frames = model.image_encoder.frames_encoded
    obs, reward, *_, info = wrapped.step(obs[:, :14].astype(np.float32))
    assert model.image_encoder.frames_encoded - frames == 2 * len(CAMERAS) and np.all(np.isfinite(reward))
    wrapped.close()
    same_step = gym.make_vec(
        TASK,
        num_envs=2,
        vectorization_mode="sync",
        image_size=32,
        obs_mode="state",
        vector_kwargs={"autoreset_mode": gym.vector.AutoresetMode.SAME_STEP},
    )
    with pytest.raises(ConfigError, match="NEXT_STEP"):
        SARM2RewardWrapper(same_step, reward_model=model)
    same_step.close()


def test_frames_at_another_resolution_are_rendered_at_the_trained_one(model) -> None:
    """A 48 px env under a checkpoint trained on 32 px frames scores 32 px renders, the same as a 32 px env."""
    assert model.encoder_spec.image_size == 32
    seen: list[tuple[int, ...]] = []
    encode = model.encode_frames

    def spy(frames):
        seen.append(tuple(np.asarray(frames).shape[-3:-1]))
        return encode(frames)

    model.encode_frames = spy
    big = SARM2RewardWrapper(gym.make(TASK, image_size=48), reward_model=model)
    same = SARM2RewardWrapper(gym.make(TASK, image_size=32), reward_model=model)
    b_obs, b_info = big.reset(seed=2)
    s_obs, s_info = same.reset(seed=2)
    assert b_obs["pixels"]["top"].shape == (48, 48, 3)  # the policy's observation is untouched
    assert set(seen) == {(32, 32)}
    assert b_info["sarm2/progress"] == pytest.approx(s_info["sarm2/progress"], abs=1e-6)
    b_obs, _, _, _, b_info = big.step(hold_action(b_obs))
    s_obs, _, _, _, s_info = same.step(hold_action(s_obs))
    assert b_info["sarm2/progress"] == pytest.approx(s_info["sarm2/progress"], abs=1e-6)
    big.close()
    same.close()


def test_vector_pixels_at_another_resolution_are_refused(model) -> None:
    envs = gym.make_vec(TASK, num_envs=2, vectorization_mode="sync", image_size=48)
    wrapped = SARM2RewardWrapper(envs, reward_model=model)
    with pytest.raises(InputShapeError, match="trained on 32x32 px.*image_size=32"):
        wrapped.reset(seed=[0, 1])
    wrapped.close()


def test_observations_without_pixels_that_cannot_render_are_refused(model) -> None:
    env = SARM2RewardWrapper(_no_views(), reward_model=model)
    with pytest.raises(InputShapeError, match="no camera views"):
        env.reset(seed=0)


def _no_views() -> gym.Env:
    """An env with a flat observation and no ``render_views`` (not a SARM2 task)."""
    from gymnasium import spaces

    class Flat(gym.Env):
        observation_space = spaces.Box(-1.0, 1.0, (14,), np.float32)
        action_space = spaces.Box(-1.0, 1.0, (14,), np.float32)
        spec = gym.spec(TASK)

        def reset(self, *, seed=None, options=None):
            super().reset(seed=seed)
            return np.zeros(14, np.float32), {"task": "flat"}

        def step(self, action):
            return np.zeros(14, np.float32), 0.0, False, False, {}

    return Flat()


def test_uncovered_task_raises_with_training_instructions(tmp_path) -> None:
    from rewards.encoders import make_image_encoder
    from rewards.sarm2.config import SARM2Config
    from rewards.sarm2.model import SARM2RewardModel
    from tests.rewards.fixtures import synthetic_features

    model = SARM2RewardModel(
        SARM2Config.preset("tiny", steps=2),
        encoder=make_image_encoder("tiny", device="cpu"),
        text_encoder="tiny-hash",
        device="cpu",
    )
    model.fit(synthetic_features(SIM_TASKS[0], 2), progress=False)  # FoldShorts only
    with pytest.raises(CheckpointError, match="python -m rewards.train") as err:
        SARM2RewardWrapper(gym.make(TASK, image_size=32), reward_model=model)
    assert TASK in str(err.value)
    SARM2RewardWrapper(gym.make(TASK, image_size=32), reward_model=model, allow_unseen_tasks=True).close()


def test_bad_configuration_and_observations(model) -> None:
    with pytest.raises(ConfigError, match="`mode` must be one of"):
        SARM2RewardWrapper(gym.make(TASK, image_size=32), reward_model=model, mode="sparse")
    from sarm2_env.errors import UnknownNameError

    with pytest.raises(UnknownNameError, match="sarm2"):
        SARM2RewardWrapper(gym.make(TASK, image_size=32), reward_model="sarm3")
    env = SARM2RewardWrapper(gym.make(TASK, image_size=32), reward_model=model)
    obs, _ = env.reset(seed=0)
    with pytest.raises(InputShapeError, match="missing \\['left_wrist'\\]"):
        env._progress(
            {
                "pixels": {"top": obs["pixels"]["top"], "right_wrist": obs["pixels"]["top"]},
                "agent_pos": obs["agent_pos"],
            },
            {},
        )
    with pytest.raises(InputShapeError, match="frames"):
        env._progress({"pixels": {c: obs["pixels"][c][..., :2] for c in CAMERAS}, "agent_pos": obs["agent_pos"]}, {})
    with pytest.raises(NonFiniteError, match="agent_pos"):
        env._progress({"pixels": obs["pixels"], "agent_pos": np.full(14, np.nan, np.float32)}, {})
    env.close()


def test_default_checkpoint_works_on_every_sarm2_task() -> None:
    """``SARM2RewardWrapper(env)`` with no other argument: the shipped checkpoint, for every registered task."""
    from tasks import TASKS

    for task_id in TASKS:
        env = SARM2RewardWrapper(gym.make(task_id, image_size=64))
        obs, info = env.reset(seed=0)
        obs, reward, *_, info = env.step(hold_action(obs))
        assert np.isfinite(reward) and 0.0 <= info["sarm2/progress"] <= 1.0
        assert env.reward_model.encoder_spec.name == DEFAULT_REWARD_ENCODER
        env.close()


def test_make_env_builds_the_canonical_stack(model) -> None:
    from sarm2_env import make_env

    env = make_env("CleanWhiteboard", reward_model=model, image_size=32)
    assert isinstance(env, SARM2RewardWrapper) and env.spec.id == TASK
    env.reset(seed=0)
    env.close()
    assert not isinstance(make_env("CleanWhiteboard", image_size=32), SARM2RewardWrapper)


def test_loading_a_checkpoint_says_so_on_a_terminal(capsys, monkeypatch) -> None:
    from sarm2_env.wrapper import resolve_reward_model

    model = resolve_reward_model("sarm2")  # not a terminal: nothing printed
    assert capsys.readouterr().err == ""
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    again = resolve_reward_model("sarm2")
    err = capsys.readouterr().err
    assert err.startswith("loading reward model 'sarm2' (shipped checkpoint) ...") and err.rstrip().endswith(" s")
    assert type(again) is type(model)
