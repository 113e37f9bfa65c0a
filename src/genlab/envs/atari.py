"""Atari 2600 through ale-py with the standard preprocessing, written out so it needs no OpenCV.

Per agent step: the action repeated for `frame_skip` emulator frames, the max of the last two
grey frames (sprites flicker), resized to 84x84 (Pillow, bilinear), the last 4 stacked (4, 84, 84)
uint8. Up to 30 no-op actions on reset; sticky actions with probability 0.25 and no
end-of-life terminals (Machado et al. 2018's recommended protocol); episodes truncated at 27,000
agent steps (108,000 frames, 30 minutes of play). Rewards are returned unclipped; the learner
clips them. One agent step is `frame_skip` emulator frames.
"""

from __future__ import annotations

from collections import deque

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from PIL import Image

SIZE, STACK = 84, 4


class AtariEnv(gym.Env):
    metadata = {"render_modes": ["rgb_array"], "render_fps": 15}

    def __init__(
        self,
        game: str,
        frame_skip: int = 4,
        noop_max: int = 30,
        sticky_action_prob: float = 0.25,
        render_mode: str | None = "rgb_array",
    ):
        import ale_py  # here, not at the top: ale-py is optional (the `rl` extra)

        gym.register_envs(ale_py)
        self.game_name = game
        self.ale_env = gym.make(
            f"ALE/{game}-v5",
            frameskip=1,
            repeat_action_probability=sticky_action_prob,
            obs_type="grayscale",
            full_action_space=False,
        )
        self.frame_skip, self.noop_max = frame_skip, noop_max
        self.frames: deque[np.ndarray] = deque(maxlen=STACK)
        self.observation_space = spaces.Box(0, 255, (STACK, SIZE, SIZE), np.uint8)
        self.action_space = self.ale_env.action_space
        self.render_mode = render_mode

    @staticmethod
    def _resize(frame: np.ndarray) -> np.ndarray:
        return np.asarray(Image.fromarray(frame).resize((SIZE, SIZE), Image.BILINEAR))

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        frame, info = self.ale_env.reset(seed=seed)
        for _ in range(int(self.np_random.integers(0, self.noop_max + 1))):
            frame, _, terminated, truncated, info = self.ale_env.step(0)
            if terminated or truncated:
                frame, info = self.ale_env.reset()
        small = self._resize(frame)
        for _ in range(STACK):
            self.frames.append(small)
        return np.stack(self.frames), info

    def step(self, action):
        total, last = 0.0, []
        terminated = truncated = False
        info: dict = {}
        for i in range(self.frame_skip):
            frame, reward, terminated, truncated, info = self.ale_env.step(int(action))
            total += float(reward)
            if i >= self.frame_skip - 2:
                last.append(frame)
            if terminated or truncated:
                break
        pooled = np.maximum(last[0], last[-1]) if last else frame
        self.frames.append(self._resize(pooled))
        return np.stack(self.frames), total, terminated, truncated, info

    def render(self) -> np.ndarray:
        return self.ale_env.unwrapped.ale.getScreenRGB()

    def close(self) -> None:
        self.ale_env.close()
