"""Variational autoencoder (Kingma & Welling 2014) and a plain autoencoder for comparison.

Encoder q(z | x) = N(mu(x), diag(exp(logvar(x)))), prior p(z) = N(0, I), decoder p(x | z) one of
- "bernoulli" on binarized images (the standard MNIST likelihood benchmark, in nats),
- "continuous_bernoulli" or "gaussian" on [0, 1] images (densities: not comparable to the above).

All log-likelihoods are nats per example, summed over the 784 pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from genlab.errors import ConfigError
from genlab.metrics.likelihood import (
    diagonal_normal_log_prob,
    gaussian_kl_standard_normal,
)
from genlab.nn.conv import ConvDecoder, ConvEncoder, downsampling_plan, gaussian_posterior
from genlab.nn.likelihoods import (
    bernoulli_log_prob,
    continuous_bernoulli_log_prob,
    gaussian_log_prob,
    standard_normal_log_prob,
)
from genlab.train.config import doc

LIKELIHOODS = ("bernoulli", "continuous_bernoulli", "gaussian")


@dataclass(frozen=True)
class VAEConfig:
    latent_dim: int = doc("size of the latent z", default=32)
    channels: int = doc(
        "conv channels of the first layer (the second has twice as many)", default=32
    )
    hidden: int = doc("width of the fully connected layer", default=512)
    likelihood: str = doc(f"decoder distribution: {', '.join(LIKELIHOODS)}", default="bernoulli")
    beta: float = doc("weight of the KL term (1 = the ELBO; beta-VAE otherwise)", default=1.0)
    gaussian_std: float = doc(
        "gaussian likelihood: the decoder's fixed std (0.7071 makes -log p(x|z) the World Models "
        "paper's summed squared error, plus a constant); 0 learns one std per pixel",
        default=0.0,
    )
    image_size: int = doc("side of the square input images (28: MNIST; 64: World Models frames)",
                          default=28)  # fmt: skip
    image_channels: int = doc("channels of the input images (1 grey, 3 colour)", default=1)
    kl_tolerance: float = doc(
        "the training loss counts each example's KL as at least this many nats per latent "
        "dimension (the World Models paper's 0.5: its first nats cost nothing, so z is used; "
        "0 = the plain ELBO)", default=0.0,
    )  # fmt: skip

    def __post_init__(self) -> None:
        if self.kl_tolerance < 0:
            raise ConfigError(f"kl_tolerance must be >= 0, got {self.kl_tolerance}")
        if self.likelihood not in LIKELIHOODS:
            raise ConfigError(f"likelihood must be one of {LIKELIHOODS}, got '{self.likelihood}'")
        if self.latent_dim < 1:
            raise ConfigError(f"latent_dim must be >= 1, got {self.latent_dim}")
        if self.gaussian_std < 0 or (self.gaussian_std > 0 and self.likelihood != "gaussian"):
            raise ConfigError(f"gaussian_std {self.gaussian_std}: give a positive std with "
                              f"likelihood gaussian, or 0 (got likelihood '{self.likelihood}')")  # fmt: skip
        try:
            downsampling_plan(self.image_size)
        except ValueError as e:
            raise ConfigError(f"image_size {self.image_size}: {e}") from None

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one image."""
        return (self.image_channels, self.image_size, self.image_size)

    @property
    def representation(self) -> str:
        """How training images are presented: binarized afresh every batch, or [0, 1] floats."""
        return "binary_dynamic" if self.likelihood == "bernoulli" else "float"


class _Decoding(nn.Module):
    """What the VAE and the autoencoder share: a decoder and its likelihood."""

    cfg: VAEConfig
    decoder: ConvDecoder

    def _init_decoder(self, cfg: VAEConfig) -> None:
        self.decoder = ConvDecoder(cfg.latent_dim, cfg.channels, cfg.hidden, cfg.image_channels,
                                   cfg.image_size)  # fmt: skip
        if cfg.likelihood == "gaussian" and cfg.gaussian_std == 0:
            # One learned log-std per pixel and channel. On frames whose pixels are mostly static
            # (CarRacing's grass and dashboard) it sharpens those and calls the road noise: the
            # likelihood climbs while reconstructions stay the mean frame (see vision.py).
            self.log_std = nn.Parameter(torch.full((1, *cfg.image_shape), -1.0))

    def log_px(self, logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """log p(x | z) in nats from decoder outputs: (B, C, H, W) x2 -> (B,), scored in float32
        (the logits may come in bfloat16 under `--precision bf16`)."""
        logits = logits.float()
        if self.cfg.likelihood == "bernoulli":
            return bernoulli_log_prob(logits, x)
        if self.cfg.likelihood == "continuous_bernoulli":
            return continuous_bernoulli_log_prob(logits, x)
        fixed = self.cfg.gaussian_std > 0  # a constant, from the config: nothing to store
        log_std = torch.tensor(math.log(self.cfg.gaussian_std)) if fixed else self.log_std
        return gaussian_log_prob(torch.sigmoid(logits), log_std, x)

    def mean_image(self, z: torch.Tensor) -> torch.Tensor:
        """(B, Z) -> (B, C, H, W) in [0, 1]: Bernoulli probabilities or the Gaussian mean.

        (For the continuous Bernoulli this is sigmoid(logits), its parameter, which reads better
        as a picture than the distribution's mean.)
        """
        return torch.sigmoid(self.decoder(z))


class VAE(_Decoding):
    def __init__(self, cfg: VAEConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = ConvEncoder(2 * cfg.latent_dim, cfg.channels, cfg.hidden,
                                   cfg.image_channels, cfg.image_size)  # fmt: skip
        self._init_decoder(cfg)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, C, H, W) -> mu, logvar, each (B, Z)."""
        if x.shape[1:] != self.cfg.image_shape:
            raise ConfigError(f"this VAE takes images {self.cfg.image_shape}, got {tuple(x.shape[1:])}"
                              " (set --image-size and --image-channels to the data's)")  # fmt: skip
        return gaussian_posterior(self.encoder(x).float())

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The latent code used for pictures and arithmetic: the posterior mean (B, Z)."""
        return self.encode(x)[0]

    def loss(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """One-sample ELBO, reparameterized. All metrics are nats per example (batch means)."""
        x = batch["x"]
        mu, logvar = self.encode(x)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        rec = -self.log_px(self.decoder(z), x)  # (B,)
        kl = gaussian_kl_standard_normal(mu, logvar)  # (B,)
        counted = kl.clamp(min=self.cfg.kl_tolerance * self.cfg.latent_dim)  # (B,)
        return {
            "loss": (rec + self.cfg.beta * counted).mean(),
            "neg_elbo": (rec + kl).mean(),
            "rec": rec.mean(),
            "kl": kl.mean(),
        }

    @torch.no_grad()
    def log_weights(self, x: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Importance weights for k samples z ~ q(z | x).

        Returns log_w (k, B) = log p(x | z) + log p(z) - log q(z | x), and log p(x | z) (k, B).
        """
        mu, logvar = self.encode(x)  # (B, Z)
        z = mu + torch.randn(k, *mu.shape) * torch.exp(0.5 * logvar)  # (k, B, Z)
        xk = x.expand(k, *x.shape).flatten(0, 1)  # (k*B, C, H, W)
        log_px = self.log_px(self.decoder(z.flatten(0, 1)), xk).view(k, -1)  # (k, B)
        log_w = log_px + standard_normal_log_prob(z) - diagonal_normal_log_prob(z, mu, logvar)
        return log_w, log_px

    @torch.no_grad()
    def sample(self, n: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """(n, C, H, W) mean images in [0, 1] decoded from z ~ N(0, I)."""
        z = torch.randn(n, self.cfg.latent_dim, generator=generator)
        return self.mean_image(z)


class AutoEncoder(_Decoding):
    """Deterministic z = f(x), trained to reconstruct: the baseline the VAE is compared with.

    It has no prior, so it cannot sample; its latent space is there to look at.
    """

    def __init__(self, cfg: VAEConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = ConvEncoder(cfg.latent_dim, cfg.channels, cfg.hidden, cfg.image_channels,
                                   cfg.image_size)  # fmt: skip
        self._init_decoder(cfg)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def loss(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        rec = -self.log_px(self.decoder(self.encoder(batch["x"])), batch["x"])  # (B,)
        return {"loss": rec.mean(), "rec": rec.mean()}
