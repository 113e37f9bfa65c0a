"""Baselines for random tabular MDPs (`episodes.TabularMDPs`), played on the same trials an RL²
agent sees, vectorised over B trials:

- `random`: a uniformly random action;
- `greedy`: plan on the posterior mean MDP (no exploration);
- `psrl`: posterior sampling (Osband et al. 2013): at each episode's start, draw an MDP from the
  posterior (transitions Dirichlet(1 + counts), each mean reward normal from the N(1, 1) prior
  and the unit-variance observations) and follow its optimal finite-horizon policy;
- `optimal`: the optimal policy of the true MDP (it knows what the others must learn; an upper
  bound, not a learner).
"""

from __future__ import annotations

import numpy as np
import torch

from genlab.meta.episodes import TabularMDPs

PLANNERS = ("random", "greedy", "psrl", "optimal")


def finite_horizon_q(transitions: torch.Tensor, means: torch.Tensor, horizon: int) -> torch.Tensor:
    """transitions (B, S, A, S'), mean rewards (B, S, A) -> Q (H, B, S, A): Q[h] is the expected
    reward of taking each action with H - h steps left and acting optimally after:
    Q[h] = R + P V[h + 1], V[h] = max_a Q[h], V[H] = 0."""
    q = torch.empty(horizon, *means.shape, dtype=means.dtype)
    v = torch.zeros(means.shape[:2], dtype=means.dtype)  # (B, S)
    for h in reversed(range(horizon)):
        q[h] = means + (transitions @ v[:, None, :, None]).squeeze(-1)  # (B, S, A)
        v = q[h].max(-1).values
    return q


def posterior_mdp(counts: torch.Tensor, reward_sums: torch.Tensor, visits: torch.Tensor,
                  rng: np.random.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """The posterior after `counts` (B, S, A, S') transitions, `reward_sums` and `visits`
    (B, S, A): its mean MDP (rng None) or one draw from it: (transitions, mean rewards)."""
    alpha = 1.0 + counts.double()
    precision = 1.0 + visits.double()  # prior N(1, 1), observation noise N(0, 1)
    mean = (1.0 + reward_sums.double()) / precision
    if rng is None:
        return alpha / alpha.sum(-1, keepdim=True), mean
    gamma = torch.from_numpy(rng.gamma(alpha.numpy()))
    draw = mean + torch.from_numpy(rng.standard_normal(mean.shape)) / precision.sqrt()
    return gamma / gamma.sum(-1, keepdim=True), draw


def play(planner: str, family: TabularMDPs, batch: dict, seed: int = 0) -> torch.Tensor:
    """Total reward (B,) of `planner` over each trial of `batch` (its own randomness seeded by
    `seed`), paid by the family's rules: the same draws an RL² agent sees."""
    if planner not in PLANNERS:
        raise ValueError(f"unknown planner '{planner}'; known: {', '.join(PLANNERS)}")
    n, s, a = batch["means"].shape
    rng, g = np.random.default_rng(seed), torch.Generator().manual_seed(seed)
    counts = torch.zeros(n, s, a, s)
    sums, visits, total = torch.zeros(n, s, a), torch.zeros(n, s, a), torch.zeros(n)
    rows = torch.arange(n)
    q = None
    for t in range(family.length):
        h = t % family.horizon
        family.observe(batch, t)
        if h == 0 and planner != "random":
            mdp = ((batch["transitions"].double(), batch["means"].double())
                   if planner == "optimal" else
                   posterior_mdp(counts, sums, visits, rng if planner == "psrl" else None))  # fmt: skip
            q = finite_horizon_q(*mdp, family.horizon)
        state = batch["state"]
        action = (torch.randint(0, a, (n,), generator=g) if q is None
                  else q[h][rows, state].argmax(-1))  # fmt: skip
        r = family.reward(batch, t, action)
        counts[rows, state, action, batch["state"]] += 1
        sums[rows, state, action] += r
        visits[rows, state, action] += 1
        total += r
    return total
