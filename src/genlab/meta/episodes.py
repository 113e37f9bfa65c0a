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
