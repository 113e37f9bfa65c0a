"""The World Models agent: V sees, M remembers, C acts (Ha & Schmidhuber 2018, figure 2).

Per real environment step: frame (64, 64, 3) uint8 -> V's posterior mean z -> C([z, h]) -> a
(Doom: C([z, h, c])), then M consumes (z, a) to give the next state. Without M ("V+C", the
paper's ablation) C sees z alone. Episodes in the real game and in the dream are played here,
for search and evaluation (dreams are scored in batches by `dream.dream_scores`).
"""

from __future__ import annotations

import numpy as np
import torch

from genlab.agents.world_models.controller import OUTPUTS, LinearController, controller_size
from genlab.agents.world_models.dream import memory_features, reads_of_m
from genlab.agents.world_models.games import CARRACING, Game
from genlab.agents.world_models.mdnrnn import MDNRNN
from genlab.agents.world_models.vision import v_input


def n_params(vae, m: MDNRNN | None, game: Game = CARRACING) -> int:
    """C's parameter count for this V, M and game."""
    return controller_size(vae.cfg.latent_dim, reads_of_m(m, game), OUTPUTS[game.output])


class WorldModelPolicy:
    """A stateful policy for a game's `play`: frame -> action, carrying M's LSTM state."""

    def __init__(
        self, vae, m: MDNRNN | None, params: np.ndarray, brake: str = "clip",
        game: Game = CARRACING,
    ):  # fmt: skip
        self.vae, self.m, self.game = vae.eval(), (m.eval() if m is not None else None), game
        self.controller = LinearController(params, vae.cfg.latent_dim, reads_of_m(m, game),
                                           brake=brake, output=game.output)  # fmt: skip
        self.state = None
        self.memory = np.zeros(reads_of_m(m, game), np.float32)
        self.latents: list[np.ndarray] = []  # z of every frame seen (for pictures)

    @torch.no_grad()
    def __call__(self, frame: np.ndarray, action: np.ndarray | None = None) -> np.ndarray:
        """C's action for `frame`; or, given `action` (another policy's, taken instead), that
        one, which M then consumes as it would C's."""
        x = v_input(frame[None])  # (1, 3, 64, 64)
        z = self.vae.encode(x)[0]  # (1, Z), the posterior mean
        self.latents.append(z[0].numpy())
        if action is None:
            action = self.controller(np.concatenate([z[0].numpy(), self.memory]))
        action = np.asarray(action, np.float32)
        if self.m is not None:
            a = torch.from_numpy(action)[None, None]
            _, _, self.state = self.m(z[:, None], a, self.state)
            self.memory = memory_features(self.state, self.game.cell_state)[0].numpy()
        return action


def real_return(
    vae, m, params, seed: int, max_steps: int = 1000, patience: int = 0, brake: str = "clip",
    game: Game = CARRACING,
):  # fmt: skip
    """One real episode (track or game `seed`) with this controller: (return, steps). With
    `patience` > 0 a CarRacing episode stops after that many steps without positive reward (a
    speed-up for search only; evaluation plays whole episodes)."""
    policy = WorldModelPolicy(vae, m, params, brake, game)
    episode = game.play(seed, max_steps, policy, patience=patience)
    return float(episode.rewards.sum()), len(episode.rewards)
