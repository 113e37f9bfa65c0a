"""Bernoulli bandits as a meta-learning problem (Duan et al. 2016, RL²), and the classic baselines.

A task is k arms with success probabilities drawn from U[0, 1]; an episode is n pulls of it
(`genlab.meta.episodes.Bandits` draws them and pays the rewards). Everything is vectorised
over B tasks at once: probs (B, k), actions (B,), rewards (B,).
Policies see only the history, summarised by per-arm successes and failures (B, k), and the
number of pulls left. The Bayesian baselines use the U[0, 1] = Beta(1, 1) prior of the tasks.

- `gittins_table(n)`: the finite-horizon Gittins index (calibration by dynamic programming): for
  h pulls left and an arm with posterior Beta(s + 1, f + 1), the largest known per-pull reward
  lambda at which pulling this arm is still worth it, over the remaining h pulls. With h = 1 it
  is the posterior mean.
- `bayes_optimal_value(k, n)`: the exact Bayes-optimal expected total reward, by dynamic
  programming over all arms' counts (tractable for small k and n, e.g. (5 arms, 10 pulls)).
- `tune`: a baseline's parameter (UCB's exploration constant, epsilon) chosen on tuning episodes
  apart from the test episodes, per setting (`TUNED` holds the grids).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import numpy as np
import torch

from genlab.meta.episodes import Bandits

Policy = Callable[[int, torch.Tensor, torch.Tensor, torch.Generator], torch.Tensor]
# (pulls_left, successes (B, k), failures (B, k), generator) -> arms (B,)


def _argmax_random_ties(scores: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """(B, k) -> (B,): the best arm, ties broken uniformly at random."""
    noise = torch.rand(scores.shape, generator=g, dtype=scores.dtype) * 1e-9
    best = scores.max(1, keepdim=True).values
    return torch.where(scores >= best - 1e-12, 1.0 + noise, noise).argmax(1)


def random_policy(left, s, f, g):
    return torch.randint(0, s.shape[1], (s.shape[0],), generator=g)


def epsilon_greedy(eps: float = 0.1) -> Policy:
    """Pull the arm with the highest posterior mean; a uniformly random arm with probability eps."""

    def act(left, s, f, g):
        greedy = _argmax_random_ties((s + 1) / (s + f + 2), g)
        explore = torch.rand(s.shape[0], generator=g) < eps
        return torch.where(explore, random_policy(left, s, f, g), greedy)

    return act


def ucb(c: float = math.sqrt(2)) -> Policy:
    """Every arm once, then argmax mean + c sqrt(ln t / n_i) (c = sqrt 2: UCB1, Auer et al.
    2002)."""

    def act(left, s, f, g):
        n = s + f
        t = n.sum(1, keepdim=True).clamp_min(1)
        score = s / n.clamp_min(1) + c * torch.sqrt(torch.log(t) / n.clamp_min(1))
        score = torch.where(n == 0, torch.full_like(score, math.inf), score)
        return _argmax_random_ties(score, g)

    return act


ucb1 = ucb()


def thompson(left, s, f, g):
    """Sample each arm's probability from its Beta(s + 1, f + 1) posterior; pull the best."""
    a, b = s + 1, f + 1
    # Beta via two Gammas, drawn with the given generator (torch's Beta takes no generator).
    x, y = _gamma(a, g), _gamma(b, g)
    return _argmax_random_ties(x / (x + y), g)


def _gamma(shape: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Gamma(shape, 1) for integer shapes >= 1: a sum of exponentials, -sum log U."""
    k = int(shape.max())
    u = torch.rand(*shape.shape, k, generator=g).clamp_min(1e-12)
    mask = torch.arange(k) < shape[..., None]
    return -(torch.log(u) * mask).sum(-1)


@functools.lru_cache(maxsize=8)
def gittins_table(n: int, grid: int = 512) -> torch.Tensor:
    """(n + 1, n + 1, n + 1) float64: index[h, s, f] for h pulls left (1..n) and s successes, f
    failures, right at every state an n-pull episode reaches (s + f <= n - h).
    Calibration: with a known arm of reward lambda per pull as the alternative,
    W_h(s, f) = max(lambda h, p (1 + W_{h-1}(s+1, f)) + (1 - p) W_{h-1}(s, f+1)),
    p = (s + 1) / (s + f + 2). Continuing minus retiring is decreasing in lambda; the index is its
    root, found on a grid of `grid` lambdas and refined by linear interpolation (the function is
    piecewise linear in lambda). Step h works only on the (n - h + 1)^2 counts it can reach, in
    reused buffers (n = 150 on one thread: 3.9 s; over the full square with fresh arrays, 27.3 s)."""
    lam = np.linspace(0.0, 1.0, grid)[:, None, None]  # (L, 1, 1)
    step = lam[1, 0, 0] - lam[0, 0, 0]
    counts = np.arange(n + 1)
    p = (counts[:, None] + 1) / (counts[:, None] + counts[None, :] + 2)  # (n + 1, n + 1)
    # Three flat buffers reused as contiguous (L, m, m) arrays: no fresh gigabytes each step.
    last, spare, scratch = (np.zeros(grid * (n + 1) ** 2) for _ in range(3))
    w = last.reshape(grid, n + 1, n + 1)  # W_0 = 0, on the counts step 1 reads
    index = np.zeros((n + 1, n + 1, n + 1))
    for h in range(1, n + 1):
        m = n - h + 1  # step h: s, f < m
        cont, gap = (b[: grid * m * m].reshape(grid, m, m) for b in (spare, scratch))
        np.add(w[:, 1 : m + 1, :m], 1.0, out=cont)  # 1 + W_{h-1}(s + 1, f)
        cont *= p[:m, :m]
        np.multiply(w[:, :m, 1 : m + 1], 1.0 - p[:m, :m], out=gap)  # (1 - p) W_{h-1}(s, f + 1)
        cont += gap
        np.subtract(cont, lam * h, out=gap)  # (L, m, m), decreasing in lambda
        w = np.maximum(cont, lam * h, out=cont)  # (L, m, m): W_h
        last, spare = spare, last
        pos = np.clip((gap >= 0).sum(0) - 1, 0, grid - 2)  # last grid point still worth it
        g0 = np.take_along_axis(gap, pos[None], 0)[0]
        g1 = np.take_along_axis(gap, pos[None] + 1, 0)[0]
        root = lam[pos, 0, 0] + step * np.clip(g0 / np.where(g0 - g1 > 0, g0 - g1, 1.0), 0, 1)
        index[h, :m, :m] = root
    return torch.from_numpy(index)


def gittins(n: int) -> Policy:
    """Pull the arm with the highest finite-horizon Gittins index (see `gittins_table`)."""
    table = gittins_table(n)

    def act(left, s, f, g):
        return _argmax_random_ties(table[left][s.long(), f.long()], g)

    return act


def run_policy(
    policy: Policy, family: Bandits, batch: dict[str, torch.Tensor], generator: torch.Generator,
    record: list | None = None,
) -> torch.Tensor:  # fmt: skip
    """Total reward (B,) of `policy` over the episodes of `batch` (from `family.sample`), paid
    by the family's own reward rule: the same draws an RL² agent sees. `generator` drives only
    the policy's own randomness. `record`, if given, receives each step's (arms, rewards)."""
    probs = batch["probs"]  # (B, k)
    s, f = torch.zeros_like(probs), torch.zeros_like(probs)
    total = torch.zeros(probs.shape[0])
    rows = torch.arange(probs.shape[0])
    for t in range(family.pulls):
        arms = policy(family.pulls - t, s, f, generator)
        r = family.reward(batch, t, arms)
        if record is not None:
            record.append((arms, r))
        s[rows, arms] += r
        f[rows, arms] += 1 - r
        total += r
    return total


def bayes_optimal_value(arms: int, pulls: int) -> float:
    """Exact Bayes-optimal expected total reward over `pulls` pulls of `arms` arms with U[0, 1]
    priors. The state is the multiset of per-arm (successes, failures); memoised recursion."""

    @functools.cache
    def value(state: tuple[tuple[int, int], ...], left: int) -> float:
        if left == 0:
            return 0.0
        best = 0.0
        for i, (s, f) in enumerate(state):
            if i and state[i - 1] == (s, f):
                continue  # identical arms have identical values
            p = (s + 1) / (s + f + 2)
            win = tuple(sorted(state[:i] + ((s + 1, f),) + state[i + 1 :]))
            lose = tuple(sorted(state[:i] + ((s, f + 1),) + state[i + 1 :]))
            best = max(best, p * (1 + value(win, left - 1)) + (1 - p) * value(lose, left - 1))
        return best

    return value(tuple([(0, 0)] * arms), pulls)


def tune(
    make: Callable[[float], Policy], grid: tuple[float, ...], family: Bandits,
    batch: dict[str, torch.Tensor], seed: int,
) -> tuple[float, dict[float, float]]:  # fmt: skip
    """The value of `grid` whose policy `make(value)` earns the most on the tuning episodes
    `batch` (each value on the same episodes and with the same randomness, seeded by `seed`),
    and every value's mean total reward."""
    means = {v: run_policy(make(v), family, batch, torch.Generator().manual_seed(seed)).mean()
             .item() for v in grid}  # fmt: skip
    return max(means, key=means.__getitem__), means


# The baselines tuned per setting, as Duan et al. tuned theirs: the parameter and its grid.
TUNED: dict[str, tuple[Callable[[float], Policy], tuple[float, ...]]] = {
    "ucb1": (ucb, (0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0, math.sqrt(2))),
    "epsilon_greedy": (epsilon_greedy, (0.0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3)),
}

BASELINES: dict[str, Callable[[int], Policy]] = {
    "random": lambda n: random_policy,
    "epsilon_greedy": lambda n: epsilon_greedy(0.1),
    "ucb1": lambda n: ucb1,
    "thompson": lambda n: thompson,
    "gittins": gittins,
}
