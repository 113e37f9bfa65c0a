"""VizDoom's Take Cover as a gymnasium environment ("vizdoom:TakeCover"): the World Models
paper's Doom task (Ha & Schmidhuber 2018, section 4).

Monsters at the far wall throw fireballs; the agent can only step left or right, and is paid 1
per game tic it survives, so an episode's return is its length. One environment step is one tic
(no frame skip, as the paper's environment); the registry cuts episodes at 2,100 steps, the
paper's limit. Observations are the whole 160x120 screen resized to 64x64 RGB, channels first
(3, 64, 64) uint8 as the other image environments; the HUD is off (the scenario's config).

The game runs in-process through the `vizdoom` wheel (its scenarios ship inside it; nothing is
downloaded). A seed fixes an episode: `reset(seed=s)` twice plays the same fireballs.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from PIL import Image

from genlab.errors import ConfigError

SIZE = 64
SCENARIOS = {"TakeCover": "take_cover.cfg"}
ACTIONS = ("left", "right", "stay")  # the paper's three
BUTTONS = {"left": [1, 0], "right": [0, 1], "stay": [0, 0]}  # the scenario's MOVE_LEFT, MOVE_RIGHT


def vizdoom_module():
    """The vizdoom package, or a one-line ConfigError saying how to install it."""
    try:
        import vizdoom  # here, not at the top: vizdoom is optional (the rl extra)
    except ImportError:
        raise ConfigError("VizDoom needs the vizdoom package: pip install 'genlab[rl]'") from None
    return vizdoom


def resize(screen: np.ndarray) -> np.ndarray:
    """A screen (H, W, 3) uint8 -> (64, 64, 3) uint8 (the whole screen, bilinear)."""
    if screen.ndim != 3 or screen.shape[2] != 3 or screen.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 screen, got {screen.shape} {screen.dtype}")
    return np.asarray(Image.fromarray(screen).resize((SIZE, SIZE), Image.Resampling.BILINEAR))


class VizDoomEnv(gym.Env):
    """One VizDoom scenario (a `SCENARIOS` name); actions are indices into `ACTIONS`."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 35}

    def __init__(self, scenario: str = "TakeCover", render_mode: str | None = "rgb_array"):
        if scenario not in SCENARIOS:
            raise ConfigError(f"vizdoom:{scenario}: known scenarios are {', '.join(SCENARIOS)}")
        vzd = vizdoom_module()
        game = vzd.DoomGame()
        game.load_config(f"{vzd.scenarios_path}/{SCENARIOS[scenario]}")
        game.set_window_visible(False)
        game.set_screen_resolution(vzd.ScreenResolution.RES_160X120)
        game.set_screen_format(vzd.ScreenFormat.RGB24)
        game.set_episode_timeout(0)  # the registry's TimeLimit cuts episodes
        # vizdoom writes its settings file into the working directory unless told where
        game.set_doom_config_path(str(Path(tempfile.gettempdir()) / "genlab_vizdoom.ini"))
        game.init()
        self.game, self.render_mode = game, render_mode
        self.observation_space = spaces.Box(0, 255, (3, SIZE, SIZE), np.uint8)
        self.action_space = spaces.Discrete(len(ACTIONS))
        self._screen = np.zeros((120, 160, 3), np.uint8)

    def _observation(self) -> np.ndarray:
        state = self.game.get_state()
        if state is not None:  # None once the episode is over: the last screen stays
            self._screen = state.screen_buffer
        return resize(self._screen).transpose(2, 0, 1).copy()

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.game.set_seed(int(self.np_random.integers(2**31 - 1)))
        self.game.new_episode()
        return self._observation(), {}

    def step(self, action):
        reward = self.game.make_action(BUTTONS[ACTIONS[int(action)]])
        terminated = self.game.is_episode_finished()
        return self._observation(), float(reward), terminated, False, {}

    def render(self) -> np.ndarray:
        return self._screen

    def close(self) -> None:
        self.game.close()
