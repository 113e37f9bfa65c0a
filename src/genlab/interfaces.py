"""The few protocols genlab's parts agree on. Read this file first.

Units: log-likelihoods are nats per example unless a name says bits. Shapes are batch-first.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch


@runtime_checkable
class GenerativeModel(Protocol):
    """What the training loop and `genlab eval/sample` need from a model (an nn.Module).

    - `loss(batch)`: a dict of scalar tensors; key "loss" is minimised, the rest are logged.
      `batch` is {"x": (B, ...), "y": (B,) optional}.
    - `sample(n, generator=...)`: (n, ...) samples; for images, floats in [0, 1].

    Models with a likelihood also expose it: a VAE gives `log_weights(x, k)` for importance
    sampling (its `log p(x)` is only bounded); exact models will give `log_prob(x) -> (B,)`.
    A model that needs its own optimisation step (a GAN alternates two optimizers) passes a
    step function `step(state, batch) -> metrics` to `genlab.train.loop.fit` instead of
    bending `loss`.
    """

    def loss(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]: ...

    def sample(self, n: int, *, generator: torch.Generator | None = None) -> torch.Tensor: ...


@runtime_checkable
class LatentModel(Protocol):
    """A model with a latent space to look at (VAE, autoencoder): `genlab latent` uses these."""

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, Z): the code of each image (a VAE's posterior mean)."""
        ...

    def mean_image(self, z: torch.Tensor) -> torch.Tensor:
        """(B, Z) -> (B, C, H, W) in [0, 1]."""
        ...


@runtime_checkable
class NoiseGenerator(Protocol):
    """A model that maps noise to images (a GAN generator): `generate(z)`, z of size
    `cfg.latent_dim`, images (B, C, H, W) in [0, 1]. Used for interpolation strips."""

    def generate(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor: ...
