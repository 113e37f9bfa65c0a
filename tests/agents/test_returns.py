"""V-trace against the paper's formula written as a naive O(T^2) loop, its on-policy reduction to
n-step returns, truncation folded into the rewards, and GAE against the sum of its discounted
deltas."""

from __future__ import annotations

import math

import pytest
import torch

from genlab.agents.returns import fold_truncation, gae, vtrace


def naive_vtrace(log_rhos, discounts, rewards, values, bootstrap, rho_bar, c_bar, pg_rho_bar, lam):
    """Espeholt et al. (2018) eq. (1) term by term: one explicit sum (and product) per s."""
    T, B = rewards.shape
    rhos = log_rhos.exp().double()
    clip = lambda x, bar: min(bar, x)  # noqa: E731
    V = torch.cat([values, bootstrap[None]]).double()
    vs = torch.zeros(T, B, dtype=torch.float64)
    for b in range(B):
        for s in range(T):
            total = 0.0
            for t in range(s, T):
                weight = 1.0
                for i in range(s, t):
                    weight *= discounts[i, b].item() * lam * clip(rhos[i, b].item(), c_bar)
                delta = clip(rhos[t, b].item(), rho_bar) * (
                    rewards[t, b].item() + discounts[t, b].item() * V[t + 1, b].item()
                    - V[t, b].item()
                )  # fmt: skip
                total += weight * delta
            vs[s, b] = V[s, b] + total
    next_vs = torch.cat([vs[1:], bootstrap[None].double()])
    pg = torch.zeros(T, B, dtype=torch.float64)
    for b in range(B):
        for s in range(T):
            pg[s, b] = clip(rhos[s, b].item(), pg_rho_bar) * (
                rewards[s, b].item() + discounts[s, b].item() * next_vs[s, b].item()
                - V[s, b].item()
            )  # fmt: skip
    return vs, pg


def random_inputs(T, B, seed):
    g = torch.Generator().manual_seed(seed)
    log_rhos = torch.randn(T, B, generator=g, dtype=torch.float64)
    discounts = torch.full((T, B), 0.9, dtype=torch.float64)
    ends = torch.rand(T, B, generator=g) < 0.2  # episode ends inside the unroll
    discounts[ends] = 0.0
    rewards = torch.randn(T, B, generator=g, dtype=torch.float64)
    values = torch.randn(T, B, generator=g, dtype=torch.float64)
    bootstrap = torch.randn(B, generator=g, dtype=torch.float64)
    return log_rhos, discounts, rewards, values, bootstrap


@pytest.mark.parametrize("T,B", [(1, 1), (5, 3), (12, 2)])
@pytest.mark.parametrize(
    "rho_bar,c_bar,pg_rho_bar,lam",
    [(1.0, 1.0, 1.0, 1.0), (2.0, 0.5, 1.5, 0.9), (math.inf, math.inf, math.inf, 1.0)],
)
def test_vtrace_matches_the_papers_formula(T, B, rho_bar, c_bar, pg_rho_bar, lam):
    inputs = random_inputs(T, B, seed=T * 10 + B)
    got = vtrace(*inputs, rho_bar=rho_bar, c_bar=c_bar, pg_rho_bar=pg_rho_bar, lam=lam)
    vs, pg = naive_vtrace(*inputs, rho_bar, c_bar, pg_rho_bar, lam)
    torch.testing.assert_close(got.targets, vs)
    torch.testing.assert_close(got.advantages, pg)


def test_on_policy_vtrace_is_the_n_step_return():
    log_rhos, discounts, rewards, values, bootstrap = random_inputs(9, 4, seed=3)
    on_policy = torch.zeros_like(log_rhos)
    vs = vtrace(on_policy, discounts, rewards, values, bootstrap, math.inf, math.inf).targets
    # the discounted sum of rewards up to the unroll's end (or the episode's), then the bootstrap
    T, B = rewards.shape
    for b in range(B):
        for s in range(T):
            ret, weight = 0.0, 1.0
            for t in range(s, T):
                ret += weight * rewards[t, b].item()
                weight *= discounts[t, b].item()
            ret += weight * bootstrap[b].item()
            assert vs[s, b].item() == pytest.approx(ret, abs=1e-9)
    gae_targets = gae(rewards, values, discounts, bootstrap, lam=1.0).targets
    torch.testing.assert_close(vs, gae_targets)


def test_vtrace_targets_carry_no_gradient():
    log_rhos, discounts, rewards, values, bootstrap = random_inputs(4, 2, seed=1)
    values.requires_grad_(True)
    log_rhos.requires_grad_(True)
    out = vtrace(log_rhos, discounts, rewards, values, bootstrap)
    assert not out.targets.requires_grad and not out.advantages.requires_grad


def test_vtrace_names_mismatched_shapes():
    log_rhos, discounts, rewards, values, bootstrap = random_inputs(4, 2, seed=1)
    with pytest.raises(ValueError, match=r"log_rhos \(3, 2\)"):
        vtrace(log_rhos[:3], discounts, rewards, values, bootstrap)
    with pytest.raises(ValueError, match=r"bootstrap \(3,\)"):
        vtrace(log_rhos, discounts, rewards, values, torch.zeros(3))


def test_truncation_bootstraps_from_the_final_value_instead_of_cutting_the_return():
    """A time limit at step t: the targets before t equal those of the segment [0, t] bootstrapped
    from the final observation's value; a termination there would cut the return to zero."""
    log_rhos, discounts, rewards, values, bootstrap = random_inputs(8, 1, seed=5)
    discounts.fill_(0.9)
    t, final_value = 4, torch.tensor([2.5], dtype=torch.float64)
    truncated = torch.zeros(8, 1, dtype=torch.bool)
    truncated[t] = True
    final_values = torch.zeros(8, 1, dtype=torch.float64)
    final_values[t] = final_value
    r, d = fold_truncation(rewards, discounts, truncated, final_values, gamma=0.9)
    got = vtrace(log_rhos, d, r, values, bootstrap, lam=0.95)
    segment = vtrace(
        log_rhos[: t + 1], discounts[: t + 1], rewards[: t + 1], values[: t + 1], final_value,
        lam=0.95,
    )  # fmt: skip
    torch.testing.assert_close(got.targets[: t + 1], segment.targets)
    torch.testing.assert_close(got.advantages[: t + 1], segment.advantages)
    rest = vtrace(log_rhos[t + 1 :], d[t + 1 :], r[t + 1 :], values[t + 1 :], bootstrap, lam=0.95)
    torch.testing.assert_close(
        got.targets[t + 1 :], rest.targets
    )  # the next episode is independent
    terminated = vtrace(log_rhos, d, rewards, values, bootstrap, lam=0.95)
    assert not torch.allclose(terminated.targets[t], got.targets[t])


def test_gae_matches_the_sum_of_discounted_deltas():
    g = torch.Generator().manual_seed(0)
    T, N = 7, 3
    r, v, boot = torch.randn(T, N, generator=g), torch.randn(T, N, generator=g), torch.randn(N)
    d = torch.full((T, N), 0.9)
    d[3, 1] = 0.0  # an episode ends at step 3 of column 1
    for lam in (0.0, 0.5, 1.0):
        ret, adv = gae(r, v, d, boot, lam)
        nxt = torch.cat([v[1:], boot[None]])
        delta = r + d * nxt - v
        for t in range(T):
            for b in range(N):
                ref, weight = 0.0, 1.0
                for u in range(t, T):
                    ref += weight * delta[u, b].item()
                    weight *= d[u, b].item() * lam
                assert adv[t, b].item() == pytest.approx(ref, abs=1e-5)
        torch.testing.assert_close(ret, adv + v)
    # lam = 1: the discounted return, bootstrapped only where no episode ended
    ret = gae(r, v, d, boot, 1.0).targets
    assert ret[3, 1].item() == pytest.approx(r[3, 1].item(), abs=1e-6)
    expected = sum(0.9**k * r[k, 0].item() for k in range(T)) + 0.9**T * boot[0].item()
    assert ret[0, 0].item() == pytest.approx(expected, abs=1e-5)
    with pytest.raises(ValueError, match=r"rewards \(7, 3\), values \(6, 3\)"):
        gae(r, v[:6], d, boot)
