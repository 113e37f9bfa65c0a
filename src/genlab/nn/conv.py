"""Convolutional encoder and decoder for 28x28 single-channel images."""

from __future__ import annotations

import torch
from torch import nn


class ConvEncoder(nn.Module):
    """(B, 1, 28, 28) -> (B, out_dim): two stride-2 convs (28 -> 14 -> 7), then an MLP."""

    def __init__(self, out_dim: int, channels: int = 32, hidden: int = 512):
        super().__init__()
        c = channels
        self.net = nn.Sequential(
            nn.Conv2d(1, c, 4, 2, 1), nn.ELU(),  # (B, c, 14, 14)
            nn.Conv2d(c, 2 * c, 4, 2, 1), nn.ELU(),  # (B, 2c, 7, 7)
            nn.Flatten(),
            nn.Linear(2 * c * 49, hidden), nn.ELU(),
            nn.Linear(hidden, out_dim),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class ConvDecoder(nn.Module):
    """(B, in_dim) -> (B, out_channels, 28, 28) unconstrained outputs (e.g. Bernoulli logits)."""

    def __init__(self, in_dim: int, channels: int = 32, hidden: int = 512, out_channels: int = 1):
        super().__init__()
        c = channels
        self.net = nn.Sequential(
            nn.Linear(in_dim, hidden), nn.ELU(),
            nn.Linear(hidden, 2 * c * 49), nn.ELU(),
            nn.Unflatten(1, (2 * c, 7, 7)),
            nn.ConvTranspose2d(2 * c, c, 4, 2, 1), nn.ELU(),  # (B, c, 14, 14)
            nn.ConvTranspose2d(c, out_channels, 4, 2, 1),  # (B, out, 28, 28)
        )  # fmt: skip

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)
