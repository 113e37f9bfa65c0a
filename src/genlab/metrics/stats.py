"""Summary statistics reported with every mean over episodes or tasks."""

from __future__ import annotations

import math

import torch


def mean_ci95(x: torch.Tensor) -> tuple[float, float]:
    """Mean of the values x (N,) and the half-width of its normal 95% confidence interval,
    1.96 * sample std / sqrt(N) (NaN when N < 2)."""
    x = x.detach().double().flatten()
    if x.numel() < 2:
        return x.mean().item(), float("nan")
    return x.mean().item(), 1.96 * x.std().item() / math.sqrt(x.numel())
