"""``FlattenPixels``: one flat ``Dict`` observation for libraries that refuse nested spaces.

SARM2 observations nest the camera images (``{"pixels": {"top", "left_wrist", "right_wrist"},
"agent_pos"}``), which Stable-Baselines3's ``MultiInputPolicy`` rejects. Put this wrapper *outside*
:class:`~sarm2_env.SARM2RewardWrapper` (the reward model reads the nested observation)::

    env = FlattenPixels(SARM2RewardWrapper(gym.make("SARM2/FoldShorts-v0", image_size=64)))
    PPO("MultiInputPolicy", env).learn(10_000)

Keys become ``top``, ``left_wrist``, ``right_wrist`` and ``agent_pos``; arrays are passed through, not copied.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
from gymnasium import spaces
from typing_extensions import override

from sarm2_env.constants import CAMERAS
from sarm2_env.errors import InputShapeError


class FlattenPixels(gym.ObservationWrapper):
    """``{"pixels": {cam: img}, "agent_pos": q}`` -> ``{cam: img, ..., "agent_pos": q}``."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        space = env.observation_space
        if (
            not isinstance(space, spaces.Dict)
            or not isinstance(space.spaces.get("pixels"), spaces.Dict)
            or "agent_pos" not in space.spaces
        ):
            want = "{'pixels': Dict, 'agent_pos': Box}"
            raise InputShapeError(f"`env`: FlattenPixels needs a SARM2 observation space {want}; got {space}")
        pixels = space["pixels"]
        missing = [c for c in CAMERAS if c not in pixels.spaces]
        if missing:
            raise InputShapeError(f"`env`: observation 'pixels' lacks cameras {missing}")
        self.observation_space = spaces.Dict({**{c: pixels[c] for c in CAMERAS}, "agent_pos": space["agent_pos"]})

    @override
    def observation(self, observation: dict[str, Any]) -> dict[str, Any]:
        return {**{c: observation["pixels"][c] for c in CAMERAS}, "agent_pos": observation["agent_pos"]}
