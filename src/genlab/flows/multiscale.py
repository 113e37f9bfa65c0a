"""Glow and RealNVP's multi-scale architecture as one Transform (data -> noise).

For each level: squeeze (C, H, W) -> (4C, H/2, W/2), the level's flow steps, then (except at the
last level) split off half of the channels. The split-off half z2 is standardised under a
learned Gaussian prior conditioned on the kept half z1,

    eps2 = (z2 - mu(z1)) * exp(-log_sigma(z1)),  log|det| = -sum log_sigma(z1),

so the whole map is a bijection from the image to a flat noise vector (B, C*H*W) whose base is a
standard normal: log p(x) = log N(z) + logdet exactly, and decode(encode(x)) = x.
"""

from __future__ import annotations

import torch
from torch import nn

from genlab.flows.layers import Squeeze
from genlab.nn.likelihoods import widened


class LearnedPrior(nn.Module):
    """(mu, log_sigma) of the split-off half from the kept half: a zero-initialised 3x3 conv, so
    every split starts as a standard normal."""

    def __init__(self, kept: int, split: int):
        super().__init__()
        self.conv = nn.Conv2d(kept, 2 * split, 3, padding=1)
        nn.init.zeros_(self.conv.weight)
        nn.init.zeros_(self.conv.bias)

    def forward(self, z2: torch.Tensor, z1: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, log_sigma = widened(self.conv(z1)).chunk(2, 1)  # float32 even under bf16 autocast
        return (z2 - mu) * torch.exp(-log_sigma), -log_sigma.flatten(1).sum(1)

    def inverse(self, eps2: torch.Tensor, z1: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, log_sigma = widened(self.conv(z1)).chunk(2, 1)
        return eps2 * torch.exp(log_sigma) + mu, log_sigma.flatten(1).sum(1)


def level_shapes(event_shape: tuple[int, int, int], levels: int) -> list[tuple[int, int, int]]:
    """The (C, H, W) each level's steps see: squeezed from the previous level's kept half."""
    c, h, w = event_shape
    shapes = []
    for i in range(levels):
        if h % 2 or w % 2:
            raise ValueError(f"level {i + 1} cannot squeeze {h}x{w} (odd); use fewer levels")
        c, h, w = 4 * c, h // 2, w // 2
        shapes.append((c, h, w))
        c = c // 2  # the half kept after the split
    return shapes


class MultiScale(nn.Module):
    """`steps[i]` is the Transform of level i (on level_shapes(event_shape)[i]); the noise is
    (B, C*H*W): the split-off parts in level order, then the last level's output, flattened."""

    def __init__(self, event_shape: tuple[int, int, int], steps: list[nn.Module]):
        super().__init__()
        self.event_shape = tuple(event_shape)
        self.shapes = level_shapes(self.event_shape, len(steps))
        self.steps = nn.ModuleList(steps)
        self.squeeze = Squeeze()
        self.priors = nn.ModuleList(
            LearnedPrior(c // 2, c - c // 2) for c, _, _ in self.shapes[:-1]
        )

    def forward(self, x, context=None):
        logdet = x.new_zeros(x.shape[0])
        pieces = []
        h = x
        for i, steps in enumerate(self.steps):
            h, _ = self.squeeze(h)
            h, ld = steps(h, context)
            logdet = logdet + ld
            if i < len(self.priors):
                z1, z2 = h[:, : h.shape[1] // 2], h[:, h.shape[1] // 2 :]
                eps2, ld = self.priors[i](z2, z1)
                pieces.append(eps2.flatten(1))
                logdet = logdet + ld
                h = z1
        pieces.append(h.flatten(1))
        return torch.cat(pieces, 1), logdet

    def inverse(self, z, context=None):
        B = z.shape[0]
        sizes = [((c - c // 2) * hh * ww) for c, hh, ww in self.shapes[:-1]]
        c, hh, ww = self.shapes[-1]
        parts = list(z.split([*sizes, c * hh * ww], 1))
        h = parts[-1].reshape(B, c, hh, ww)
        logdet = z.new_zeros(B)
        for i in reversed(range(len(self.steps))):
            if i < len(self.priors):
                c, hh, ww = self.shapes[i]
                eps2 = parts[i].reshape(B, c - c // 2, hh, ww)
                z2, ld = self.priors[i].inverse(eps2, h)
                logdet = logdet + ld
                h = torch.cat([h, z2], 1)
            h, ld = self.steps[i].inverse(h, context)
            logdet = logdet + ld
            h, _ = self.squeeze.inverse(h)
        return h, logdet
