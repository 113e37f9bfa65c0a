"""The few-shot classifier of MAML/Reptile on Omniglot: 4 x [3x3 conv (stride 2), batch norm, ReLU]
then a linear layer to N classes (Finn et al. 2017, Omniglot: 64 channels, strided convolutions).

Batch norm keeps no running statistics: the statistics always come from a batch, and which batch is
explicit (`stats_rows`). With `stats_rows=None` every row of `x` contributes ("transductive": the
query set normalises itself, as MAML and Reptile evaluate). With `stats_rows=n`, only the first n
rows do: pass cat(support, query) with n = len(support) and each query prediction then depends on
the support set and on that query alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


def batch_norm(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor,
    stats_rows: int | None = None,
    eps: float = 1e-5,
) -> torch.Tensor:
    """x (B, C, H, W) normalised per channel with the mean and biased variance of x[:stats_rows]
    (all rows if None), then scaled by weight (C,) and shifted by bias (C,)."""
    if stats_rows is None:  # the fused kernel: same numbers, much faster double backward
        return F.batch_norm(x, None, None, weight, bias, training=True, eps=eps)
    ref = x[:stats_rows]
    mean = ref.mean(dim=(0, 2, 3), keepdim=True)  # (1, C, 1, 1)
    var = ref.var(dim=(0, 2, 3), unbiased=False, keepdim=True)
    return (x - mean) * torch.rsqrt(var + eps) * weight.view(1, -1, 1, 1) + bias.view(1, -1, 1, 1)


class Norm(nn.Module):
    """Learned per-channel scale and shift of `batch_norm`; no buffers."""

    def __init__(self, channels: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))


@dataclass(frozen=True)
class NetShape:
    ways: int = 5
    channels: int = 64
    layers: int = 4
    image_size: int = 28


class FewShotConvNet(nn.Module):
    """x (B, 1, 28, 28) in [0, 1] -> logits (B, ways)."""

    def __init__(self, shape: NetShape):
        super().__init__()
        c, size = shape.channels, shape.image_size
        self.convs = nn.ModuleList(
            nn.Conv2d(1 if i == 0 else c, c, 3, stride=2, padding=1) for i in range(shape.layers)
        )
        self.norms = nn.ModuleList(Norm(c) for _ in range(shape.layers))
        for _ in range(shape.layers):
            size = (size + 1) // 2  # 28 -> 14 -> 7 -> 4 -> 2
        self.head = nn.Linear(c * size * size, shape.ways)

    def forward(self, x: torch.Tensor, stats_rows: int | None = None) -> torch.Tensor:
        return self.head(self.trunk(x, stats_rows))

    def trunk(self, x: torch.Tensor, stats_rows: int | None = None) -> torch.Tensor:
        """x (B, 1, 28, 28) -> the features the head reads, (B, c * size * size)."""
        for conv, norm in zip(self.convs, self.norms, strict=True):
            x = F.relu(batch_norm(conv(x), norm.weight, norm.bias, stats_rows))
        return x.flatten(1)
