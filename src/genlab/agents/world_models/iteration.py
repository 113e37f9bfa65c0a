"""Iterative training (Ha & Schmidhuber 2018, section 5): the real game played by a controller
that was searched in the dream, so that M learns what happens where C goes.

A controller can win its dreams by going where the random episodes seldom went: on Doom, one
that stands at a wall, where M saw few fireballs, survives every dream and dies at once in the
game (the paper's "cheating the world model"). Its own episodes show M that place; M trained
on them too makes a dream in which the trick fails, and a new search in it looks elsewhere.
C itself still learns only in the dream: the game gives M data, never C a score.

Each recorded episode is C's, with random stretches: time is cut into holds of 1..HOLD steps
(uniform), and each hold is played by the game's random policy with probability `explore`,
so M also sees what other moves would have done there. M consumes the move that was made.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from genlab.agents.world_models.agent import WorldModelPolicy
from genlab.agents.world_models.games import Game
from genlab.agents.world_models.mdnrnn import MDNRNN
from genlab.data.episodes import save_episode
from genlab.errors import ConfigError

HOLD = 8  # random stretches last 1 .. HOLD steps, as Doom's random policy holds a move


def check_explore(explore: float) -> None:
    if not 0.0 <= explore <= 1.0:
        raise ConfigError(f"--explore must be a probability in [0, 1], got {explore}")


def explore_mask(rng: np.random.Generator, steps: int, explore: float) -> np.ndarray:
    """(steps,) bool: True where the random policy plays. Holds of 1..HOLD steps, each random
    with probability `explore` (so about that fraction of the steps)."""
    check_explore(explore)
    out, t = np.zeros(steps, bool), 0
    while t < steps:
        hold = int(rng.integers(1, HOLD + 1))
        out[t : t + hold] = rng.random() < explore
        t += hold
    return out


class ExploringPolicy:
    """`policy` (a WorldModelPolicy), except at the steps `mask` marks, where `actions[t]`
    (the game's random policy) is played; M is fed the move made either way."""

    def __init__(self, policy: WorldModelPolicy, actions: np.ndarray, mask: np.ndarray):
        self.policy, self.actions, self.mask, self.t = policy, actions, mask, 0

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        t, self.t = self.t, self.t + 1
        return self.policy(frame, self.actions[t] if self.mask[t] else None)


def record(
    vae, m: MDNRNN | None, params: np.ndarray, seed: int, max_steps: int, brake: str,
    game: Game, explore: float, path: Path,
) -> tuple[float, int]:  # fmt: skip
    """Play game `seed` with controller `params` (and random stretches drawn from `seed`),
    store the episode at `path` as a collected one; returns (C's return, steps)."""
    rng = np.random.default_rng(seed)
    policy = ExploringPolicy(WorldModelPolicy(vae, m, params, brake, game),
                             game.random_actions(rng, max_steps),
                             explore_mask(rng, max_steps, explore))  # fmt: skip
    episode = game.play(seed, max_steps, policy)
    save_episode(episode, Path(path))
    return float(episode.rewards.sum()), len(episode.actions)
