"""Population-based augmentation: slot choice against PBA's per-image loop, explore's moves,
policies applied to batches, JSON and schedules."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from genlab.meta import pba


def naive_slots(policy: np.ndarray, n: int, generator: torch.Generator) -> list[list[int]]:
    """PBA's apply_policy, one image at a time, on the same random draws as `chosen_slots`."""
    flat = torch.from_numpy(policy.reshape(-1, 2))
    S = len(flat)
    counts = torch.multinomial(torch.tensor(pba.COUNT_PROBS), n, True, generator=generator)
    order = torch.argsort(torch.rand(n, S, generator=generator), 1)
    u = torch.rand(n, S, generator=generator)
    out = []
    for i in range(n):
        applied = []
        for pos in range(S):
            if len(applied) == counts[i]:
                break
            slot = int(order[i, pos])
            if u[i, pos] < flat[slot, 0] / pba.PROB_LEVELS:
                applied.append(slot)
        out.append(applied + [-1] * (2 - len(applied)))
    return out


def test_chosen_slots_match_pbas_loop():
    policy = pba.random_policy(np.random.default_rng(0))
    ours = pba.chosen_slots(policy, 300, torch.Generator().manual_seed(1))
    assert ours.tolist() == naive_slots(policy, 300, torch.Generator().manual_seed(1))
    always = pba.empty_policy()
    always[..., 0] = pba.PROB_LEVELS  # every slot fires: the count alone decides
    slots = pba.chosen_slots(always, 20000, torch.Generator().manual_seed(2))
    shares = np.bincount((slots >= 0).sum(1).numpy(), minlength=3) / 20000
    assert np.allclose(shares, pba.COUNT_PROBS, atol=0.015)
    both = (slots >= 0).all(1)
    assert (slots[both, 0] != slots[both, 1]).all()  # a slot is applied once at most


def test_apply_policy_applies_what_it_chose():
    x = torch.rand(2000, 1, 6, 6)
    assert torch.equal(pba.apply_policy(x, pba.empty_policy(), torch.Generator()), x)
    policy = pba.empty_policy()
    policy[pba.NAMES.index("invert"), 0] = (pba.PROB_LEVELS, 0)  # one slot, always
    out = pba.apply_policy(x, policy, torch.Generator().manual_seed(0))
    inverted = torch.isclose(out, 1 - x).all((1, 2, 3))
    kept = torch.equal(out[~inverted], x[~inverted])
    assert kept and abs(inverted.float().mean().item() - 0.8) < 0.03  # count 0 one time in 5


def test_explore_perturbs_within_range_and_sometimes_resamples():
    rng = np.random.default_rng(0)
    policy = pba.random_policy(rng)
    moves = []
    for _ in range(200):
        new = pba.explore(policy, rng)
        assert new[..., 0].max() <= pba.PROB_LEVELS and new[..., 1].max() <= pba.MAG_LEVELS
        assert new.min() >= 0
        moves.append(np.abs(new - policy))
    moves = np.stack(moves)
    assert 0.02 < (moves > 3).mean() < 0.2  # only a resample jumps more than 3 levels
    assert (moves == 0).mean() > 0.2  # step 0, or clipped at an end


def test_policies_round_trip_through_json_and_schedules_pick_the_last_change():
    policy = pba.random_policy(np.random.default_rng(3))
    assert np.array_equal(pba.policy_from_json(pba.policy_json(policy)), policy)
    with pytest.raises(ValueError, match="unknown augmentation operations: blur"):
        pba.policy_from_json({"blur": [[0.5, 0.5]]})
    a, b = pba.random_policy(np.random.default_rng(4)), pba.random_policy(np.random.default_rng(5))
    schedule = [(100, a), (300, b)]
    assert pba.policy_at(schedule, 50).sum() == 0
    assert np.array_equal(pba.policy_at(schedule, 100), a)
    assert np.array_equal(pba.policy_at(schedule, 299), a)
    assert np.array_equal(pba.policy_at(schedule, 10_000), b)
