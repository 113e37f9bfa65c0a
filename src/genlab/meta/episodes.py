"""Meta-RL task families as batched, pre-drawn episodes: every random number an episode needs is
in its batch, so an episode is a deterministic function of (batch, actions).

A family has `obs_dim`, `n_actions`, `length` (steps per episode), `sample(n, generator)` -> batch
and `reward(batch, t, actions (B,))` -> rewards (B,) plus `observe(batch, t)` -> (B, obs_dim).

- `Bandits(arms, pulls)`: k-armed Bernoulli bandits, p ~ U[0, 1]; observations are empty (the
  agent learns from its previous action and reward).
- `Harlow(trials, object_dim)`: Harlow's (1949) learning-set task as in Wang et al. (2018): each
  episode brings two new objects (random vectors); one of them is rewarded for the whole episode.
  On each trial both appear, in random left/right order; the agent picks a side and gets 1 if
  the rewarded object is there. Trial 1 is a guess; a learner-to-learn is right from trial 2.
- `TabularMDPs(states, actions, horizon, episodes)`: random finite MDPs as in Duan et al.
  (2016, section 3.2): transitions from a flat Dirichlet, each (state, action)'s mean reward
  from N(1, 1), rewards observed with N(0, 1) noise. A trial is `episodes` episodes of `horizon`
  steps in the same MDP; each episode starts in a uniformly drawn state (our choice). The
  observation is the state one-hot and a flag on an episode's first step. The current state
  lives in the batch (`batch["state"]`), set again at every episode start, so a batch can be
  played more than once.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Bandits:
    arms: int = 5
    pulls: int = 100

    @property
    def obs_dim(self) -> int:
        return 0

    @property
    def n_actions(self) -> int:
        return self.arms

    @property
    def length(self) -> int:
        return self.pulls

    def sample(self, n: int, g: torch.Generator) -> dict[str, torch.Tensor]:
        return {
            "probs": torch.rand(n, self.arms, generator=g),  # (B, k)
            "u": torch.rand(n, self.pulls, generator=g),  # (B, T): reward r_t = u_t < p[a_t]
        }

    def observe(self, batch: dict, t: int) -> torch.Tensor:
        return batch["probs"].new_zeros(batch["probs"].shape[0], 0)

    def reward(self, batch: dict, t: int, actions: torch.Tensor) -> torch.Tensor:
        p = batch["probs"].gather(1, actions[:, None]).squeeze(1)
        return (batch["u"][:, t] < p).float()


@dataclass(frozen=True)
class Harlow:
    trials: int = 6
    object_dim: int = 8

    @property
    def obs_dim(self) -> int:
        return 2 * self.object_dim  # [object on the left, object on the right]

    @property
    def n_actions(self) -> int:
        return 2  # left, right

    @property
    def length(self) -> int:
        return self.trials

    def sample(self, n: int, g: torch.Generator) -> dict[str, torch.Tensor]:
        return {
            "objects": torch.randn(n, 2, self.object_dim, generator=g),  # object 0 is rewarded
            "swap": torch.rand(n, self.trials, generator=g) < 0.5,  # object 0 on the right
        }

    def observe(self, batch: dict, t: int) -> torch.Tensor:
        a, b = batch["objects"][:, 0], batch["objects"][:, 1]
        swap = batch["swap"][:, t, None]
        left, right = torch.where(swap, b, a), torch.where(swap, a, b)
        return torch.cat([left, right], 1)

    def reward(self, batch: dict, t: int, actions: torch.Tensor) -> torch.Tensor:
        rewarded_side = batch["swap"][:, t].long()  # 0 = left, 1 = right
        return (actions == rewarded_side).float()


@dataclass(frozen=True)
class TabularMDPs:
    states: int = 10
    actions: int = 5
    horizon: int = 10
    episodes: int = 10

    @property
    def obs_dim(self) -> int:
        return self.states + 1  # the state one-hot, and 1 on an episode's first step

    @property
    def n_actions(self) -> int:
        return self.actions

    @property
    def length(self) -> int:
        return self.horizon * self.episodes

    def sample(self, n: int, g: torch.Generator) -> dict[str, torch.Tensor]:
        s, a, t = self.states, self.actions, self.length
        flat = -torch.log(torch.rand(n, s, a, s, generator=g).clamp_min(1e-12))  # Gamma(1)
        return {
            "transitions": flat / flat.sum(-1, keepdim=True),  # (B, S, A, S'): Dirichlet(1)
            "means": 1.0 + torch.randn(n, s, a, generator=g),  # (B, S, A)
            "noise": torch.randn(n, t, generator=g),  # (B, T): the reward noise at each step
            "u": torch.rand(n, t, generator=g),  # (B, T): draws the next state
            "starts": torch.randint(0, s, (n, self.episodes), generator=g),  # (B, episodes)
            "state": torch.zeros(n, dtype=torch.long),  # (B,) where each episode is now
        }

    def observe(self, batch: dict, t: int) -> torch.Tensor:
        first = t % self.horizon == 0
        if first:
            batch["state"] = batch["starts"][:, t // self.horizon].clone()
        onehot = torch.nn.functional.one_hot(batch["state"], self.states).float()
        return torch.cat([onehot, torch.full_like(onehot[:, :1], float(first))], 1)

    def reward(self, batch: dict, t: int, actions: torch.Tensor) -> torch.Tensor:
        """The reward of `actions` (B,) in the current states; moves each episode on."""
        rows, state = torch.arange(len(actions)), batch["state"]
        r = batch["means"][rows, state, actions] + batch["noise"][:, t]
        cdf = batch["transitions"][rows, state, actions].cumsum(-1)  # (B, S')
        nxt = (batch["u"][:, t, None] > cdf).sum(-1).clamp_max(self.states - 1)
        batch["state"] = nxt
        return r
