"""The dream: a game as M imagines it, a gymnasium.Env in which a controller can be trained
without the real game (Ha & Schmidhuber 2018, sections 3.4 and 4), and the same dream played
by many controllers at once for the search (`dream_scores`).

The state is M's LSTM state and the current latent z. An observation is [z_t, h_t] (Doom:
[z_t, h_t, c_t]), what C sees; a step feeds (z_t, a_t) to M, draws z_{t+1} from its mixture at
temperature tau, and takes the episode's end from M's done head (a Bernoulli draw). The reward
is M's reward head (CarRacing) or 1 per step alive (Doom: the return is the time survived).
Episodes start from the latents of real first frames and are cut at `max_steps`.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch

from genlab.agents.world_models.controller import OUTPUTS, LinearController
from genlab.agents.world_models.games import CARRACING, Game
from genlab.agents.world_models.mdnrnn import MDNRNN, mdn_sample
from genlab.errors import ConfigError

CAR_ACTIONS = gym.spaces.Box(np.array([-1, 0, 0], np.float32), np.array([1, 1, 1], np.float32))
MOVES = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)  # Doom: -1 left, +1 right; Pong: down, up
ACTION_SPACES = {"car": CAR_ACTIONS, "doom": MOVES, "pong": MOVES}


def reads_of_m(m: MDNRNN | None, game: Game) -> int:
    """The size of what C reads of M: 0 without M, H, or 2H with the cell state."""
    return 0 if m is None else m.cfg.hidden * (2 if game.cell_state else 1)


def memory_features(state: tuple[torch.Tensor, torch.Tensor], cell: bool) -> torch.Tensor:
    """What C reads of M's LSTM state ((1, B, H) each): h (B, H), or [h, c] (B, 2H)."""
    h, c = state
    return torch.cat([h[0], c[0]], -1) if cell else h[0]


@torch.no_grad()
def dream_step(
    m: MDNRNN, z: torch.Tensor, a: torch.Tensor, state, tau: float, survival: bool,
    generator: torch.Generator,
):  # fmt: skip
    """One step of B dreams: z (B, Z), a (B, A) -> the next z (B, Z), reward (B,), died (B,) bool
    and M's new state."""
    out, _, state = m(z[:, None], a[:, None], state)
    z = mdn_sample(out["logit_pi"][:, 0], out["mu"][:, 0], out["log_sigma"][:, 0], tau, generator)
    done_p = torch.sigmoid(out["done"][:, 0])  # (B,)
    died = torch.rand(done_p.shape, generator=generator) < done_p
    reward = torch.ones_like(done_p) if survival else out["reward"][:, 0]
    return z, reward, died, state


def check_m_for(m: MDNRNN, game: Game, initial_z: np.ndarray) -> np.ndarray:
    """initial_z as float32 (N, Z); a ConfigError unless M fits the game and the latents."""
    initial_z = np.asarray(initial_z, dtype=np.float32)
    cfg = m.cfg
    if initial_z.ndim != 2 or initial_z.shape[1] != cfg.latent_dim or not len(initial_z):
        raise ConfigError(f"initial_z must be (N >= 1, {cfg.latent_dim}), got "
                          f"{initial_z.shape}")  # fmt: skip
    if cfg.action_dim != OUTPUTS[game.output]:
        raise ConfigError(f"the dream plays {game.env} ({OUTPUTS[game.output]} action values); "
                          f"M reads {cfg.action_dim}")  # fmt: skip
    return initial_z


class DreamEnv(gym.Env):
    """Every draw comes from a generator seeded by `reset(seed=...)`: a seed fixes the dream."""

    metadata = {"render_modes": []}

    def __init__(
        self, m: MDNRNN, initial_z: np.ndarray, tau: float = 1.0, max_steps: int = 1000,
        game: Game = CARRACING,
    ):  # fmt: skip
        self.initial_z = check_m_for(m, game, initial_z)
        self.m, self.tau, self.max_steps, self.game = m.eval(), tau, max_steps, game
        size = m.cfg.latent_dim + reads_of_m(m, game)  # [z, h(, c)]
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (size,), np.float32)
        self.action_space = ACTION_SPACES[game.output]
        self._generator = torch.Generator()

    def _observation(self) -> np.ndarray:
        memory = memory_features(self.state, self.game.cell_state)[0]
        return torch.cat([self.z[0], memory]).numpy()

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self._generator.manual_seed(int(self.np_random.integers(2**62)))
        start = self.initial_z[self.np_random.integers(len(self.initial_z))]
        self.z = torch.from_numpy(start.copy())[None]  # (1, Z)
        h = torch.zeros(1, 1, self.m.cfg.hidden)
        self.state = (h, h.clone())
        self.t = 0
        return self._observation(), {}

    def step(self, action):
        space = self.action_space
        a = torch.as_tensor(np.clip(action, space.low, space.high), dtype=torch.float32)
        self.z, reward, died, self.state = dream_step(
            self.m, self.z, a.view(1, -1), self.state, self.tau, self.game.survival,
            self._generator,
        )  # fmt: skip
        terminated = bool(died[0])
        self.t += 1
        truncated = self.t >= self.max_steps and not terminated
        return self._observation(), float(reward[0]), terminated, truncated, {}


@torch.no_grad()
def dream_scores(
    m: MDNRNN, initial_z: np.ndarray, controllers: list[LinearController], seeds: list[int],
    tau: float, max_steps: int, game: Game = CARRACING,
) -> tuple[np.ndarray, int]:  # fmt: skip
    """Every controller plays one dream per seed, all P * R dreams stepping together through M
    (one batched LSTM step per time step instead of P * R): returns (P, R) returns and the
    dream steps taken. Dream (p, r) starts from initial_z[a draw of seeds[r]], so every
    controller starts its r-th dream from the same frame; the later draws differ."""
    initial_z = check_m_for(m, game, initial_z)
    P, R = len(controllers), len(seeds)
    starts = [np.random.default_rng(s).integers(len(initial_z)) for s in seeds]
    z = torch.from_numpy(initial_z[starts]).repeat(P, 1)  # (P * R, Z), dream p * R + r
    generator = torch.Generator().manual_seed(int(seeds[0]))
    zeros = torch.zeros(1, P * R, m.cfg.hidden)
    state = (zeros, zeros.clone())
    total, alive, steps = torch.zeros(P * R), torch.ones(P * R, dtype=torch.bool), 0
    for _ in range(max_steps):
        obs = torch.cat([z, memory_features(state, game.cell_state)], -1).view(P, R, -1).numpy()
        a = torch.from_numpy(np.stack([c(o) for c, o in zip(controllers, obs, strict=True)]))
        z, reward, died, state = dream_step(m, z, a.view(P * R, -1), state, tau, game.survival,
                                            generator)  # fmt: skip
        total += reward * alive
        steps += int(alive.sum())
        alive &= ~died
        if not alive.any():
            break
    return total.view(P, R).numpy(), steps


def check_dream(m: MDNRNN, initial_z: np.ndarray, tau: float, episodes: int = 8,
                min_steps: int = 20, game: Game = CARRACING) -> None:  # fmt: skip
    """Raise unless the dream lasts: if half of `episodes` dreams (no action) end within
    `min_steps`, every candidate scores the same and a search learns nothing. That happened
    with an M whose done head, never shown an episode end, fired at the first step."""
    env = DreamEnv(m, initial_z, tau, max_steps=min_steps, game=game)
    lengths = []
    for seed in range(episodes):
        env.reset(seed=seed)
        done, t = False, 0
        while not done:
            _, _, terminated, truncated, _ = env.step(np.zeros(env.action_space.shape, np.float32))
            done, t = terminated or truncated, t + 1
        lengths.append(t)
    if np.median(lengths) < min_steps:
        with torch.no_grad():
            z = torch.as_tensor(env.initial_z[:1])[:, None]
            out, _, _ = m(z, torch.zeros(1, 1, m.cfg.action_dim), None)
        raise ConfigError(
            f"M ends its dreams at once: {episodes} dreams lasted {sorted(lengths)} steps (its "
            f"done probability at the first step is {torch.sigmoid(out['done']).item():.2f}), so "
            "a controller cannot be searched in them; train M afresh (its windows now include "
            "episode starts: SequenceBatches' from_start) or longer"
        )
