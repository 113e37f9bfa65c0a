"""Normalizing flows: the Transform protocol, composition, inversion, and a Flow density.

Direction convention (everywhere in genlab.flows): `forward` maps data to noise,

    forward(x, context=None) -> (z, logdet)   logdet = log |det dz/dx|,  (B,)
    inverse(z, context=None) -> (x, logdet)   logdet = log |det dx/dz|,  (B,)

so forward and inverse log-dets of the same pair sum to zero, and a Flow's density is
log p(x) = log p_base(forward(x)) + logdet_forward(x), in nats per example.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch
from torch import nn

from genlab.nn.likelihoods import standard_normal_log_prob


@runtime_checkable
class Transform(Protocol):
    def forward(
        self, x: torch.Tensor, context: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]: ...

    def inverse(
        self, z: torch.Tensor, context: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]: ...


def sum_per_example(x: torch.Tensor) -> torch.Tensor:
    """(B, ...) -> (B,)."""
    return x.flatten(1).sum(1)


class Compose(nn.Module):
    """Transforms applied in order (forward) and in reverse order (inverse); log-dets add up."""

    def __init__(self, *transforms: nn.Module):
        super().__init__()
        self.transforms = nn.ModuleList(transforms)

    def forward(self, x, context=None):
        logdet = x.new_zeros(x.shape[0])
        for t in self.transforms:
            x, ld = t(x, context)
            logdet = logdet + ld
        return x, logdet

    def inverse(self, z, context=None):
        logdet = z.new_zeros(z.shape[0])
        for t in reversed(self.transforms):
            z, ld = t.inverse(z, context)
            logdet = logdet + ld
        return z, logdet


class Invert(nn.Module):
    """The transform with forward and inverse swapped (e.g. an inverse autoregressive flow from
    an autoregressive one)."""

    def __init__(self, transform: nn.Module):
        super().__init__()
        self.transform = transform

    def forward(self, x, context=None):
        return self.transform.inverse(x, context)

    def inverse(self, z, context=None):
        return self.transform(z, context)


class Flow(nn.Module):
    """A density on data: a Transform (data -> noise) onto a standard normal base.

    `log_prob(x)` (B,) nats; `sample(n, temperature)` draws z ~ N(0, T^2 I) of `noise_shape`
    (default: the data's `event_shape`; a multi-scale transform returns flat (D,)) and inverts.
    """

    def __init__(
        self,
        transform: nn.Module,
        event_shape: tuple[int, ...],
        noise_shape: tuple[int, ...] | None = None,
    ):
        super().__init__()
        self.transform = transform
        self.event_shape = tuple(event_shape)
        self.noise_shape = tuple(noise_shape or event_shape)

    def log_prob(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        z, logdet = self.transform(x, context)
        return standard_normal_log_prob(z, event_dims=z.dim() - 1) + logdet

    def encode(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        return self.transform(x, context)[0]

    def decode(self, z: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        return self.transform.inverse(z, context)[0]

    def sample(
        self,
        n: int,
        temperature: float = 1.0,
        context: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        like = next(self.parameters())
        z = torch.randn((n, *self.noise_shape), generator=generator, dtype=like.dtype)
        return self.decode(z.to(like.device) * temperature, context)
