"""The painting environment as an agent task ("paint:mnist", "paint:mnist-target-l2", ...): the
same strokes, with the observation flattened into uint8 image planes that genlab's agents read.

    paint:DATASET            unconditional: paint anything (the reward comes from outside, e.g.
                             SPIRAL's critic); reward 0 here
    paint:DATASET-target     conditional: a target from DATASET's training images is shown
    paint:DATASET-target-l2  conditional, rewarded at the last step by minus the mean squared
                             difference between canvas and target ink, per pixel in [0, 1]

Observation (C, canvas, canvas) uint8: the canvas' luminance (255 = white), then the target's
(conditional), then a plane filled with round(255 * fraction of the episode done), then the pen:
255 on the grid cell where the next stroke starts, 0 elsewhere (SPIRAL's agent sees its previous
action; without it the start of every stroke would have to be remembered).
"""

from __future__ import annotations

from functools import cache

import gymnasium as gym
import numpy as np

from genlab.data.images import image_splits
from genlab.envs.paint import PaintConfig, PaintEnv, ink
from genlab.errors import ConfigError

DATASETS = ("mnist", "omniglot")
DEFAULT = PaintConfig()  # the canvas, grid and episode length of tasks made by name


def parse(task: str) -> tuple[str, bool, bool]:
    """'mnist-target-l2' -> ('mnist', conditional True, l2 True)."""
    dataset, *flags = task.split("-")
    if dataset not in DATASETS or flags not in ([], ["target"], ["target", "l2"]):
        raise ConfigError(f"paint task '{task}' should be DATASET, DATASET-target or "
                          f"DATASET-target-l2 with DATASET one of {', '.join(DATASETS)}")  # fmt: skip
    return dataset, bool(flags), flags == ["target", "l2"]


@cache
def target_images(dataset: str) -> np.ndarray:
    """Training images of `dataset` as (N, 28, 28) uint8 ink (255 = ink), loaded once per
    process (an actor steps many environments)."""
    return image_splits(dataset).train_x[:, 0].numpy()


class PaintTask(gym.Env):
    metadata = {"render_modes": ["rgb_array"]}

    def __init__(
        self, task: str, cfg: PaintConfig | None = None, targets: np.ndarray | None = None
    ):
        dataset, conditional, self.l2 = parse(task)
        base = cfg or DEFAULT
        self.cfg = PaintConfig(**{**base.__dict__, "conditional": conditional})
        if conditional and targets is None:
            targets = target_images(dataset)
        self.env = PaintEnv(self.cfg, targets)
        self.render_mode = "rgb_array"
        planes = 4 if conditional else 3
        size = self.cfg.canvas
        self.observation_space = gym.spaces.Box(0, 255, (planes, size, size), np.uint8)
        self.action_space = self.env.action_space

    def _planes(self, obs: dict) -> np.ndarray:
        size = self.cfg.canvas
        planes = [obs["canvas"].mean(-1).round().astype(np.uint8)]
        if self.cfg.conditional:
            planes.append(obs["target"].mean(-1).round().astype(np.uint8))
        planes.append(np.full((size, size), round(255 * float(obs["step"][0])), np.uint8))
        planes.append(self._pen_plane())
        return np.stack(planes)

    def _pen_plane(self) -> np.ndarray:
        """(canvas, canvas) uint8: 255 on the pixels of the pen's grid cell (any grid size)."""
        size, grid = self.cfg.canvas, self.cfg.grid
        col, row = (min(int(v * grid / size), grid - 1) for v in self.env.pen)
        cells = np.arange(size) * grid // size  # each pixel row's (or column's) cell
        return ((cells[:, None] == row) & (cells[None, :] == col)).astype(np.uint8) * 255

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        obs, info = self.env.reset(seed=seed, options=options)
        return self._planes(obs), info

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        if self.l2 and terminated:
            reward = -float(np.mean((ink(obs["canvas"]) - ink(obs["target"])) ** 2))
        return self._planes(obs), reward, terminated, truncated, info

    def render(self) -> np.ndarray:
        return self.env.render()

    def program(self):
        return self.env.program()
