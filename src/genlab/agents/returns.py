"""Return and advantage estimators: pure functions on time-major tensors (GAE for A2C and RL²,
V-trace for IMPALA).

Conventions: rewards, values, discounts are (T, B); `discounts[t]` is gamma times 0 where the
episode ended at step t (no bootstrapping across that boundary), else gamma; `bootstrap` (B,) is
the value estimate of the state after the last step. Both estimators return `Returns(targets,
advantages)`, (T, B) each, carrying no gradient.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch


class Returns(NamedTuple):
    targets: torch.Tensor  # (T, B) value targets (V-trace's v_s; GAE's A + V)
    advantages: torch.Tensor  # (T, B) the policy gradient's advantages


def _check(rewards: torch.Tensor, values: torch.Tensor, discounts: torch.Tensor, bootstrap, **more):
    tensors = {"rewards": rewards, "values": values, "discounts": discounts, **more}
    if any(t.shape != rewards.shape for t in tensors.values()) or rewards.dim() != 2:
        shapes = ", ".join(f"{k} {tuple(t.shape)}" for k, t in tensors.items())
        raise ValueError(f"{shapes} must share one (T, B) shape")
    if bootstrap.shape != rewards.shape[1:]:
        raise ValueError(f"bootstrap {tuple(bootstrap.shape)} must be (B,) = {rewards.shape[1]}")


@torch.no_grad()
def gae(
    rewards: torch.Tensor,
    values: torch.Tensor,
    discounts: torch.Tensor,
    bootstrap: torch.Tensor,
    lam: float = 1.0,
) -> Returns:
    """Generalised advantage estimation (Schulman et al. 2016).

    delta_t = r_t + d_t V_{t+1} - V_t;  A_t = delta_t + d_t lam A_{t+1};  returns = A + V.
    lam = 1 gives discounted Monte-Carlo returns (bootstrapped at the end), lam = 0 one-step TD.
    Returns (value targets A + V, advantages A), both (T, B).
    """
    _check(rewards, values, discounts, bootstrap)
    next_values = torch.cat([values[1:], bootstrap[None]])  # (T, B)
    deltas = rewards + discounts * next_values - values
    adv = torch.empty_like(rewards)
    acc = torch.zeros_like(bootstrap)
    for t in range(rewards.shape[0] - 1, -1, -1):
        acc = deltas[t] + discounts[t] * lam * acc
        adv[t] = acc
    return Returns(targets=adv + values, advantages=adv)


@torch.no_grad()
def vtrace(
    log_rhos: torch.Tensor,
    discounts: torch.Tensor,
    rewards: torch.Tensor,
    values: torch.Tensor,
    bootstrap: torch.Tensor,
    rho_bar: float = 1.0,
    c_bar: float = 1.0,
    pg_rho_bar: float = 1.0,
    lam: float = 1.0,
) -> Returns:
    """V-trace targets (Espeholt et al. 2018, eq. 1), computed backwards in O(T).

    log_rhos (T, B) = log pi(a_t|x_t) - log mu(a_t|x_t), target over behaviour policy.
    rho_t = min(rho_bar, e^log_rho), c_t = lam * min(c_bar, e^log_rho) (math.inf = no clipping);
      v_s = V(x_s) + sum_{t>=s} (prod_{i=s}^{t-1} d_i c_i) rho_t (r_t + d_t V(x_{t+1}) - V(x_t)),
    computed as v_s - V(x_s) = delta_s + d_s c_s (v_{s+1} - V(x_{s+1})), with V(x_T) and v_T
    both `bootstrap`. Returns (targets v_s, advantages rho^pg_s (r_s + d_s v_{s+1} - V(x_s))),
    the policy-gradient weight rho^pg_s = min(pg_rho_bar, e^log_rho).
    On-policy (log_rhos = 0) with lam = 1 the targets are n-step bootstrapped returns.
    """
    _check(rewards, values, discounts, bootstrap, log_rhos=log_rhos)
    rhos = log_rhos.exp()
    clipped_rhos = rhos.clamp(max=rho_bar) if math.isfinite(rho_bar) else rhos
    cs = lam * (rhos.clamp(max=c_bar) if math.isfinite(c_bar) else rhos)
    next_values = torch.cat([values[1:], bootstrap[None]])  # (T, B)
    deltas = clipped_rhos * (rewards + discounts * next_values - values)
    corrections = torch.empty_like(values)  # v_s - V(x_s)
    acc = torch.zeros_like(bootstrap)
    for t in range(values.shape[0] - 1, -1, -1):
        acc = deltas[t] + discounts[t] * cs[t] * acc
        corrections[t] = acc
    vs = values + corrections
    next_vs = torch.cat([vs[1:], bootstrap[None]])
    pg_rhos = rhos.clamp(max=pg_rho_bar) if math.isfinite(pg_rho_bar) else rhos
    return Returns(targets=vs, advantages=pg_rhos * (rewards + discounts * next_vs - values))


def vtrace_from_log_probs(
    target_log_probs: torch.Tensor, behaviour_log_probs: torch.Tensor, *args, **kwargs
) -> Returns:
    """`vtrace` with the importance weights given as the two policies' log-probs (T, B) of the
    actions taken; the remaining arguments are vtrace's."""
    return vtrace(target_log_probs - behaviour_log_probs, *args, **kwargs)


def fold_truncation(
    rewards: torch.Tensor,
    discounts: torch.Tensor,
    truncated: torch.Tensor,
    final_values: torch.Tensor,
    gamma: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Time-limit truncation, handled apart from termination.

    Where an episode was cut by a time limit at step t (truncated[t], bool (T, B)), the next row
    of the trajectory already belongs to a new episode, so the trace must stop there (discount
    0), but the return must not: r_t becomes r_t + gamma V(final observation), with that value
    given in `final_values` (T, B) (ignored elsewhere). The V-trace/GAE targets computed on the
    folded inputs equal those of the segment bootstrapped from its final observation.
    """
    truncated = truncated.to(torch.bool)
    folded_rewards = torch.where(truncated, rewards + gamma * final_values, rewards)
    return folded_rewards, torch.where(truncated, torch.zeros_like(discounts), discounts)
