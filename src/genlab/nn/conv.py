"""Convolutional encoder and decoder for square images of any size that halves to >= 4.

Stride-2 convolutions halve the image while its side is even and the half is at least 4,
doubling the channels each time: 28x28 -> 14 -> 7 (two layers: c, 2c), 64x64 -> 32 -> 16 -> 8
-> 4 (four layers: c .. 8c, the World Models V). Then an MLP. The decoder mirrors it.
"""

from __future__ import annotations

import torch
from torch import nn


def downsampling_plan(size: int) -> list[int]:
    """Sides after each stride-2 layer: 28 -> [14, 7]; 64 -> [32, 16, 8, 4]."""
    sides = []
    while size % 2 == 0 and size // 2 >= 4:
        size //= 2
        sides.append(size)
    if not sides:
        raise ValueError(f"image side {size} cannot be halved to >= 4 pixels")
    return sides


def gaussian_posterior(h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """An encoder's output (B, 2Z) -> mu, logvar, each (B, Z).

    logvar's value is clamped to [-12, 8] but its gradient passes straight through: under a
    plain clamp a logvar that one large step pushed past 8 has no gradient and stays there (a
    World Models V froze so, its KL near 1,500 nats in each such dimension).
    """
    mu, logvar = h.chunk(2, dim=1)
    return mu, logvar + (logvar.clamp(-12.0, 8.0) - logvar).detach()


class ConvEncoder(nn.Module):
    """(B, in_channels, S, S) -> (B, out_dim)."""

    def __init__(
        self,
        out_dim: int,
        channels: int = 32,
        hidden: int = 512,
        in_channels: int = 1,
        size: int = 28,
    ):
        super().__init__()
        sides = downsampling_plan(size)
        layers: list[nn.Module] = []
        c_in = in_channels
        for i in range(len(sides)):
            c_out = channels * 2**i
            layers += [nn.Conv2d(c_in, c_out, 4, 2, 1), nn.ELU()]
            c_in = c_out
        self.net = nn.Sequential(
            *layers,
            nn.Flatten(),
            nn.Linear(c_in * sides[-1] ** 2, hidden), nn.ELU(),
            nn.Linear(hidden, out_dim),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class ConvDecoder(nn.Module):
    """(B, in_dim) -> (B, out_channels, S, S) unconstrained outputs (e.g. Bernoulli logits)."""

    def __init__(
        self,
        in_dim: int,
        channels: int = 32,
        hidden: int = 512,
        out_channels: int = 1,
        size: int = 28,
    ):
        super().__init__()
        sides = downsampling_plan(size)
        c = channels * 2 ** (len(sides) - 1)  # the encoder's last channels
        layers: list[nn.Module] = [
            nn.Linear(in_dim, hidden), nn.ELU(),
            nn.Linear(hidden, c * sides[-1] ** 2), nn.ELU(),
            nn.Unflatten(1, (c, sides[-1], sides[-1])),
        ]  # fmt: skip
        for _ in range(len(sides) - 1):
            layers += [nn.ConvTranspose2d(c, c // 2, 4, 2, 1), nn.ELU()]
            c //= 2
        layers.append(nn.ConvTranspose2d(c, out_channels, 4, 2, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)
