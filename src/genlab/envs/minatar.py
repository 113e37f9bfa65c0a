"""MinAtar (Young & Tian 2019) games as gymnasium environments: 10x10 boolean-channel grids.

The upstream gym wrapper needs seaborn for rendering and returns (10, 10, C) bools; this one gives
channels-first uint8 (C, 10, 10), renders with genlab's palette, and can pad the channels so that
several games share one network (multi-task). A single game uses its minimal action set (Breakout:
no-op, left, right); games played by one agent use the full set of six, so one policy head serves
them all. With the full set, four of Breakout's six actions do nothing, and a policy gradient
agent settles into standing still (measured: return ~5.5 after 8M frames; in the start state
it moved with probability ~1e-7).
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from genlab.errors import ConfigError
from genlab.viz.images import PALETTE

GAMES = ("asterix", "breakout", "freeway", "seaquest", "space_invaders")


class MinAtarEnv(gym.Env):
    metadata = {"render_modes": ["rgb_array"], "render_fps": 15}

    def __init__(
        self,
        game: str,
        channels: int | None = None,
        sticky_action_prob: float = 0.1,
        full_action_set: bool = False,
        render_mode: str | None = "rgb_array",
    ):
        # Here, not at the top: minatar is optional (the `rl` extra) and takes 1.2 s to import.
        from minatar import Environment

        if game not in GAMES:
            raise ConfigError(f"unknown MinAtar game '{game}'; one of: {', '.join(GAMES)}")
        self.game_name = game
        self.game = Environment(game, sticky_action_prob=sticky_action_prob)
        self.n_channels = self.game.state_shape()[2]
        self.channels = channels or self.n_channels
        if self.channels < self.n_channels:
            raise ValueError(
                f"{game} has {self.n_channels} channels; cannot pad to {self.channels}"
            )
        self.observation_space = spaces.Box(0, 1, (self.channels, 10, 10), np.uint8)
        n = self.game.num_actions()
        self.action_set = list(range(n)) if full_action_set else self.game.minimal_action_set()
        self.action_space = spaces.Discrete(len(self.action_set))
        self.render_mode = render_mode

    def _obs(self) -> np.ndarray:
        obs = np.zeros((self.channels, 10, 10), np.uint8)
        obs[: self.n_channels] = self.game.state().transpose(2, 0, 1)
        return obs

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        if seed is not None:
            self.game.seed(seed % 2**32)  # MinAtar seeds a legacy RandomState: 32 bits
        self.game.reset()
        return self._obs(), {}

    def step(self, action):
        reward, done = self.game.act(self.action_set[int(action)])
        return self._obs(), float(reward), bool(done), False, {}

    def render(self) -> np.ndarray:
        """(10, 10, 3) uint8: each channel in its own palette colour on black."""
        state = self.game.state()  # (10, 10, C) bool
        colours = np.array(PALETTE, np.uint8)[np.arange(state.shape[2]) % len(PALETTE)]
        img = np.zeros((10, 10, 3), np.uint8)
        for c in range(state.shape[2]):
            img[state[:, :, c]] = colours[c]
        return img
