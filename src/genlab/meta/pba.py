"""Population-based augmentation (Ho et al. 2019): an augmentation policy as hyperparameters,
applied to batches, and PBA's explore step for population-based training.

A policy holds two (probability, magnitude) pairs for each operation of
`genlab.data.augment.OPS`: probabilities on 0..10 (tenths), magnitudes on 0..9, as integers
(shape (ops, 2, 2), last axis: probability, magnitude). A schedule is the policy over training
time: a list of (step, policy) changes, written as JSON.

Applying a policy to one image (PBA's `apply_policy`): draw how many operations to apply,
0, 1 or 2 with probabilities 0.2, 0.3, 0.5; walk the 2 x ops slots in a random order and apply
each slot's operation with its probability and magnitude until that many have been applied.
"""

from __future__ import annotations

import numpy as np
import torch

from genlab.data.augment import OPS

NAMES = tuple(OPS)
SLOTS = 2  # (probability, magnitude) pairs per operation
PROB_LEVELS, MAG_LEVELS = 10, 9  # probability p/10, magnitude m/9
COUNT_PROBS = (0.2, 0.3, 0.5)  # how many operations an image gets: 0, 1 or 2
RESAMPLE = 0.2  # explore: chance to draw a hyperparameter afresh instead of perturbing it
STEPS = (0, 1, 2, 3)  # explore: perturbation sizes


def empty_policy() -> np.ndarray:
    """No augmentation: every probability 0. (ops, 2, 2) int."""
    return np.zeros((len(NAMES), SLOTS, 2), dtype=np.int64)


def random_policy(rng: np.random.Generator) -> np.ndarray:
    """Every probability and magnitude uniform on its levels."""
    policy = empty_policy()
    policy[..., 0] = rng.integers(0, PROB_LEVELS + 1, policy.shape[:2])
    policy[..., 1] = rng.integers(0, MAG_LEVELS + 1, policy.shape[:2])
    return policy


def explore(policy: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """PBA's explore: each hyperparameter is resampled with chance 0.2, else moved by 0-3 levels
    up or down (clipped to its range)."""
    out = policy.copy()
    top = np.array([PROB_LEVELS, MAG_LEVELS])
    for index in np.ndindex(*policy.shape):
        hi = top[index[-1]]
        if rng.random() < RESAMPLE:
            out[index] = rng.integers(0, hi + 1)
        else:
            step = rng.choice(STEPS) * rng.choice((-1, 1))
            out[index] = np.clip(out[index] + step, 0, hi)
    return out


def chosen_slots(policy: np.ndarray, n: int, generator: torch.Generator) -> torch.Tensor:
    """For each of n images, the flat slot indices (op * SLOTS + slot) applied in order, -1 for
    none: (n, 2) long. Follows PBA: a count from COUNT_PROBS, then the slots in a random order,
    each taken with its probability, until the count is reached."""
    flat = torch.from_numpy(policy.reshape(-1, 2))  # (S, 2)
    S = len(flat)
    counts = torch.multinomial(torch.tensor(COUNT_PROBS), n, True, generator=generator)  # (n,)
    order = torch.argsort(torch.rand(n, S, generator=generator), 1)  # (n, S) a random order
    fires = torch.rand(n, S, generator=generator) < flat[order, 0] / PROB_LEVELS  # (n, S)
    rank = torch.cumsum(fires, 1)  # how many have fired up to each position
    out = torch.full((n, 2), -1, dtype=torch.long)
    for k in range(2):  # the (k+1)-th slot that fires, if the count allows
        hit = fires & (rank == k + 1) & (counts[:, None] > k)
        found = hit.any(1)
        out[found, k] = order[found, hit[found].float().argmax(1)]
    return out


def apply_policy(x: torch.Tensor, policy: np.ndarray, generator: torch.Generator) -> torch.Tensor:
    """Augment a batch x (B, C, H, W) in [0, 1] with `policy`, each image on its own draw."""
    slots = chosen_slots(policy, len(x), generator)  # (B, 2)
    flat = policy.reshape(-1, 2)
    out = x.clone()
    for k in range(2):
        for s in torch.unique(slots[:, k]).tolist():
            if s < 0:
                continue
            rows = (slots[:, k] == s).nonzero()[:, 0]
            m = torch.full((len(rows),), flat[s, 1] / MAG_LEVELS)
            out[rows] = OPS[NAMES[s // SLOTS]](out[rows], m, generator)
    return out


def policy_json(policy: np.ndarray) -> dict:
    """{operation: [[probability, magnitude], [probability, magnitude]]} in [0, 1]."""
    return {name: [[p / PROB_LEVELS, m / MAG_LEVELS] for p, m in policy[i].tolist()]
            for i, name in enumerate(NAMES)}  # fmt: skip


def policy_from_json(data: dict) -> np.ndarray:
    """The inverse of `policy_json` (unknown operation names are an error)."""
    unknown = set(data) - set(NAMES)
    if unknown:
        raise ValueError(f"unknown augmentation operations: {', '.join(sorted(unknown))}")
    policy = empty_policy()
    for i, name in enumerate(NAMES):
        for j, (p, m) in enumerate(data.get(name, [[0, 0]] * SLOTS)):
            policy[i, j] = round(p * PROB_LEVELS), round(m * MAG_LEVELS)
    return policy


def policy_at(schedule: list[tuple[int, np.ndarray]], step: int) -> np.ndarray:
    """The policy in force at `step`: the last change at or before it (none before the first)."""
    current = empty_policy()
    for start, policy in schedule:
        if start > step:
            break
        current = policy
    return current
