"""Per-example log-likelihoods of images under decoder outputs, in nats, summed over pixels.

All take decoder outputs and data of shape (B, C, H, W) and return (B,).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def bernoulli_log_prob(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """log Bernoulli(x | sigmoid(logits)) for x in {0, 1}."""
    return -F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1)


def gaussian_log_prob(mean: torch.Tensor, log_std: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """log N(x | mean, exp(log_std)^2), a density (can exceed 0 nats)."""
    z = (x - mean) * torch.exp(-log_std)
    lp = -0.5 * z.square() - log_std - 0.5 * math.log(2 * math.pi)
    return lp.flatten(1).sum(1)


def continuous_bernoulli_log_norm(logits: torch.Tensor) -> torch.Tensor:
    """log C(lambda) of the continuous Bernoulli (Loaiza-Ganem & Cunningham 2019), elementwise.

    C(l) = 2 artanh(1 - 2l) / (1 - 2l), and C(1/2) = 2. Near l = 1/2 a Taylor expansion in
    t = 1 - 2l is used: log C = log 2 + t^2/3 + 4 t^4 / 45.
    """
    lam = torch.sigmoid(logits).clamp(1e-6, 1 - 1e-6)
    t = 1.0 - 2.0 * lam
    far = t.abs() > 1e-2
    t_far = torch.where(far, t, torch.ones_like(t))
    exact = torch.log(2.0 * torch.atanh(t_far) / t_far)
    taylor = math.log(2.0) + t.square() / 3.0 + 4.0 * t.pow(4) / 45.0
    return torch.where(far, exact, taylor)


def continuous_bernoulli_log_prob(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """log CB(x | sigmoid(logits)) for x in [0, 1], a density on [0, 1]^D."""
    return bernoulli_log_prob(logits, x) + continuous_bernoulli_log_norm(logits).flatten(1).sum(1)
