"""The dream: CarRacing as M imagines it, a gymnasium.Env in which a controller can be trained
without the real game (Ha & Schmidhuber 2018, section 4.4).

The state is M's LSTM state and the current latent z. An observation is [z_t, h_t] (what C
sees); a step feeds (z_t, a_t) to M, draws z_{t+1} from its mixture at temperature tau, and takes
the reward from M's reward head and the episode's end from its done head (a Bernoulli draw).
Episodes start from the latents of real first frames and are cut at `max_steps`. Every draw
comes from a generator seeded by `reset(seed=...)`, so a seed fixes the whole dream.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch

from genlab.agents.world_models.mdnrnn import MDNRNN, mdn_sample
from genlab.errors import ConfigError

CAR_ACTIONS = gym.spaces.Box(np.array([-1, 0, 0], np.float32), np.array([1, 1, 1], np.float32))


class DreamEnv(gym.Env):
    metadata = {"render_modes": []}

    def __init__(self, m: MDNRNN, initial_z: np.ndarray, tau: float = 1.0, max_steps: int = 1000):
        cfg = m.cfg
        initial_z = np.asarray(initial_z, dtype=np.float32)
        if initial_z.ndim != 2 or initial_z.shape[1] != cfg.latent_dim or not len(initial_z):
            raise ConfigError(f"initial_z must be (N >= 1, {cfg.latent_dim}), got "
                              f"{initial_z.shape}")  # fmt: skip
        if cfg.action_dim != 3:
            raise ConfigError(f"the dream plays CarRacing (3 actions); M has {cfg.action_dim}")
        self.m, self.initial_z, self.tau, self.max_steps = m.eval(), initial_z, tau, max_steps
        size = cfg.latent_dim + cfg.hidden
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (size,), np.float32)
        self.action_space = CAR_ACTIONS
        self._generator = torch.Generator()

    def _observation(self) -> np.ndarray:
        return np.concatenate([self.z[0, 0].numpy(), self.state[0][0, 0].numpy()])

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self._generator.manual_seed(int(self.np_random.integers(2**62)))
        start = self.initial_z[self.np_random.integers(len(self.initial_z))]
        self.z = torch.from_numpy(start.copy())[None, None]  # (1, 1, Z)
        h = torch.zeros(1, 1, self.m.cfg.hidden)
        self.state = (h, h.clone())
        self.t = 0
        return self._observation(), {}

    @torch.no_grad()
    def step(self, action):
        a = torch.as_tensor(np.clip(action, CAR_ACTIONS.low, CAR_ACTIONS.high),
                            dtype=torch.float32).view(1, 1, 3)  # fmt: skip
        out, _, self.state = self.m(self.z, a, self.state)
        self.z = mdn_sample(out["logit_pi"], out["mu"], out["log_sigma"], self.tau,
                            self._generator)  # fmt: skip
        done_p = torch.sigmoid(out["done"]).item()
        terminated = bool(torch.rand((), generator=self._generator).item() < done_p)
        self.t += 1
        truncated = self.t >= self.max_steps and not terminated
        return self._observation(), float(out["reward"].item()), terminated, truncated, {}


def check_dream(m: MDNRNN, initial_z: np.ndarray, tau: float, episodes: int = 8,
                min_steps: int = 20) -> None:  # fmt: skip
    """Raise unless the dream lasts: if half of `episodes` dreams (C's first guess, no action)
    end within `min_steps`, every candidate scores the same and a search learns nothing. That
    happened with an M whose done head, never shown an episode end, fired at the first step."""
    env = DreamEnv(m, initial_z, tau, max_steps=min_steps)
    lengths = []
    for seed in range(episodes):
        env.reset(seed=seed)
        done, t = False, 0
        while not done:
            _, _, terminated, truncated, _ = env.step(np.zeros(3, np.float32))
            done, t = terminated or truncated, t + 1
        lengths.append(t)
    if np.median(lengths) < min_steps:
        with torch.no_grad():
            z = torch.as_tensor(initial_z[:1], dtype=torch.float32)[:, None]
            out, _, _ = m(z, torch.zeros(1, 1, 3), None)
        raise ConfigError(
            f"M ends its dreams at once: {episodes} dreams lasted {sorted(lengths)} steps (its "
            f"done probability at the first step is {torch.sigmoid(out['done']).item():.2f}), so "
            "a controller cannot be searched in them; train M afresh (its windows now include "
            "episode starts: SequenceBatches' from_start) or longer"
        )
