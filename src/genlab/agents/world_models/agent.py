"""The World Models agent: V sees, M remembers, C acts (Ha & Schmidhuber 2018, figure 2).

Per real environment step: frame (64, 64, 3) uint8 -> V's posterior mean z -> C([z, h]) -> a,
then M consumes (z, a) to give the next h. Without M ("V+C", the paper's ablation) C sees z
alone. Episodes in the real game and in the dream are played here, for search and evaluation.
"""

from __future__ import annotations

import numpy as np
import torch

from genlab.agents.world_models.controller import LinearController, controller_size
from genlab.agents.world_models.dream import DreamEnv
from genlab.agents.world_models.mdnrnn import MDNRNN
from genlab.agents.world_models.rollouts import play
from genlab.agents.world_models.vision import v_input


def n_params(vae, m: MDNRNN | None) -> int:
    """C's parameter count for this V and M."""
    return controller_size(vae.cfg.latent_dim, m.cfg.hidden if m is not None else 0)


class WorldModelPolicy:
    """A stateful policy for `rollouts.play`: frame -> action, carrying M's LSTM state."""

    def __init__(self, vae, m: MDNRNN | None, params: np.ndarray, brake: str = "clip"):
        self.vae, self.m = vae.eval(), (m.eval() if m is not None else None)
        hidden = m.cfg.hidden if m is not None else 0
        self.controller = LinearController(params, vae.cfg.latent_dim, hidden, brake=brake)
        self.state = None
        self.h = np.zeros(hidden, np.float32)
        self.latents: list[np.ndarray] = []  # z of every frame seen (for pictures)

    @torch.no_grad()
    def __call__(self, frame: np.ndarray) -> np.ndarray:
        x = v_input(frame[None])  # (1, 3, 64, 64)
        z = self.vae.encode(x)[0]  # (1, Z), the posterior mean
        self.latents.append(z[0].numpy())
        action = self.controller(np.concatenate([z[0].numpy(), self.h]))
        if self.m is not None:
            a = torch.from_numpy(action)[None, None]
            _, h, self.state = self.m(z[:, None], a, self.state)
            self.h = h[0, 0].numpy()
        return action


def real_return(
    vae, m, params, seed: int, max_steps: int = 1000, patience: int = 0, brake: str = "clip"
):
    """One CarRacing episode (track `seed`) with this controller: (return, steps). With
    `patience` > 0 the episode stops after that many steps without positive reward (a speed-up
    for search only; evaluation plays whole episodes)."""
    episode = play(seed, max_steps, WorldModelPolicy(vae, m, params, brake), patience=patience)
    return float(episode.rewards.sum()), len(episode.rewards)


def dream_return(
    m: MDNRNN, initial_z: np.ndarray, params, seed: int, tau: float, max_steps: int = 1000,
    brake: str = "clip",
):  # fmt: skip
    """One episode inside M at temperature tau: (M's predicted return, steps)."""
    env = DreamEnv(m, initial_z, tau, max_steps)
    controller = LinearController(params, m.cfg.latent_dim, m.cfg.hidden, brake=brake)
    obs, _ = env.reset(seed=seed)
    total, steps, done = 0.0, 0, False
    while not done:
        obs, reward, terminated, truncated, _ = env.step(controller(obs))
        total, steps, done = total + reward, steps + 1, terminated or truncated
    return total, steps
