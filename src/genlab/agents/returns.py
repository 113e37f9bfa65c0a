"""Return and advantage estimators: pure functions on time-major tensors.

Conventions: rewards, values, discounts are (T, B); `discounts[t]` is gamma times 0 where the
episode ended at step t (no bootstrapping across that boundary), else gamma; `bootstrap` (B,) is
the value estimate of the state after the last step. Targets carry no gradient.
"""

from __future__ import annotations

import torch


def _check(rewards: torch.Tensor, values: torch.Tensor, discounts: torch.Tensor, bootstrap):
    if not (rewards.shape == values.shape == discounts.shape) or rewards.dim() != 2:
        raise ValueError(
            f"rewards {tuple(rewards.shape)}, values {tuple(values.shape)} and discounts "
            f"{tuple(discounts.shape)} must share one (T, B) shape"
        )
    if bootstrap.shape != rewards.shape[1:]:
        raise ValueError(f"bootstrap {tuple(bootstrap.shape)} must be (B,) = {rewards.shape[1]}")


@torch.no_grad()
def gae(
    rewards: torch.Tensor,
    values: torch.Tensor,
    discounts: torch.Tensor,
    bootstrap: torch.Tensor,
    lam: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation (Schulman et al. 2016).

    delta_t = r_t + d_t V_{t+1} - V_t;  A_t = delta_t + d_t lam A_{t+1};  returns = A + V.
    lam = 1 gives discounted Monte-Carlo returns (bootstrapped at the end), lam = 0 one-step TD.
    Returns (advantages, value targets), both (T, B).
    """
    _check(rewards, values, discounts, bootstrap)
    next_values = torch.cat([values[1:], bootstrap[None]])  # (T, B)
    deltas = rewards + discounts * next_values - values
    adv = torch.empty_like(rewards)
    acc = torch.zeros_like(bootstrap)
    for t in range(rewards.shape[0] - 1, -1, -1):
        acc = deltas[t] + discounts[t] * lam * acc
        adv[t] = acc
    return adv, adv + values
