"""PixelVAE (Gulrajani et al. 2017; talk 003): a VAE whose decoder is a small Gated PixelCNN
conditioned on z, so the latents need only carry what the decoder cannot model locally.

As in the paper, z reaches the PixelCNN as a map: the VAE's own convolutional decoder turns it
into features (B, decoder_channels, S, S) (S = 28 for MNIST, 64 for Pong frames), and each
pixel's gates are conditioned on the features at that pixel. So z can say where the strokes
go; the PixelCNN, whose view is a few pixels, draws them. (`--no-spatial-z` gives every pixel
the same bias from z instead, which leaves the decoder no way to place what z says: the
latents then carry little.)

q(z | x) = N(mu(x), diag(exp(logvar(x)))) from a conv encoder; p(z) = N(0, I);
p(x | z) = prod_i Bernoulli(x_i | x_<i, z) (binarized MNIST, or binary Pong frames). All terms
are nats per image.

A strong autoregressive decoder can ignore z ("posterior collapse"); two remedies, both options:
- free bits (Kingma et al. 2016): each latent dimension's batch-mean KL counts as at least
  `free_bits` nats in the training loss;
- KL warm-up: the KL weight rises linearly from 0 to 1 over `kl_warmup_steps` training steps
  (counted in a buffer, so a resumed run continues the ramp).
`genlab eval` reports -ELBO, the importance-weighted NLL, the KL and the number of active latent
units (Burda et al. 2016: Var_x E_q[z_d] > 0.01), so collapse is visible.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from genlab.errors import ConfigError
from genlab.metrics.likelihood import diagonal_normal_log_prob
from genlab.models.pixelcnn import PixelCNN, PixelCNNConfig
from genlab.nn.conv import ConvDecoder, ConvEncoder, downsampling_plan, gaussian_posterior
from genlab.nn.likelihoods import standard_normal_log_prob
from genlab.train.config import doc


@dataclass(frozen=True)
class PixelVAEConfig:
    latent_dim: int = doc("size of the latent z", default=32)
    channels: int = doc("encoder conv channels (doubled in its second layer)", default=32)
    hidden: int = doc("encoder fully connected width", default=512)
    decoder_channels: int = doc("Gated PixelCNN decoder channels", default=32)
    decoder_layers: int = doc("Gated PixelCNN decoder layers", default=4)
    free_bits: float = doc("minimum KL per latent dimension in the loss (nats; 0 = off)",
                           default=0.0)  # fmt: skip
    kl_warmup_steps: int = doc("steps over which the KL weight rises from 0 to 1", default=0)
    spatial_z: bool = doc("condition each pixel on z decoded to an image-sized map (else one "
                          "bias for all pixels)", default=True)  # fmt: skip
    image_size: int = doc("side of the square binary input images (28: MNIST; 64: Pong frames)",
                          default=28)  # fmt: skip

    def __post_init__(self) -> None:
        try:
            downsampling_plan(self.image_size)
        except ValueError as e:
            raise ConfigError(f"image_size {self.image_size}: {e}") from None

    @property
    def representation(self) -> str:
        return "binary_dynamic"

    @property
    def likelihood(self) -> str:
        return "bernoulli (autoregressive, Gated PixelCNN given z)"


class PixelVAE(nn.Module):
    def __init__(self, cfg: PixelVAEConfig):
        super().__init__()
        self.cfg = cfg
        size = cfg.image_size
        self.encoder = ConvEncoder(2 * cfg.latent_dim, cfg.channels, cfg.hidden, size=size)
        decoder = PixelCNNConfig(kind="gated", channels=cfg.decoder_channels,
                                 layers=cfg.decoder_layers, output="bernoulli")  # fmt: skip
        if cfg.spatial_z:  # the VAE's decoder, with features out instead of logits
            self.z_map = ConvDecoder(cfg.latent_dim, cfg.channels, cfg.hidden,
                                     out_channels=cfg.decoder_channels, size=size)  # fmt: skip
        cond_dim = cfg.decoder_channels if cfg.spatial_z else cfg.latent_dim
        self.decoder = PixelCNN(decoder, cond_dim=cond_dim, spatial=cfg.spatial_z)
        self.register_buffer("steps_seen", torch.tensor(0, dtype=torch.long))

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 1, S, S) -> mu, logvar (B, Z), float32 even under bfloat16 autocast."""
        return gaussian_posterior(self.encoder(x).float())

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.encode(x)[0]

    def condition(self, z: torch.Tensor) -> torch.Tensor:
        """z (B, Z) -> what the decoder is conditioned on: (B, decoder_channels, S, S) with
        spatial_z, else z itself."""
        return self.z_map(z) if self.cfg.spatial_z else z

    def log_px(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """log p(x | z) (B,) nats."""
        return self.decoder.log_prob(x, z=self.condition(z))

    def kl_weight(self) -> float:
        if self.cfg.kl_warmup_steps <= 0:
            return 1.0
        return min(1.0, float(self.steps_seen) / self.cfg.kl_warmup_steps)

    def loss(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        x = batch["x"]
        mu, logvar = self.encode(x)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        rec = -self.log_px(x, z)  # (B,)
        kl_dims = 0.5 * (mu.square() + logvar.exp() - 1.0 - logvar)  # (B, Z)
        kl_floor = kl_dims.mean(0).clamp(min=self.cfg.free_bits).sum()  # free bits, per dim
        weight = self.kl_weight()
        if self.training:
            self.steps_seen += 1
        kl = kl_dims.sum(1)
        return {
            "loss": rec.mean() + weight * kl_floor,
            "neg_elbo": (rec + kl).mean(),
            "rec": rec.mean(),
            "kl": kl.mean(),
            "kl_weight": torch.tensor(weight),
        }

    @torch.no_grad()
    def log_weights(self, x: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """log_w (k, B) = log p(x | z) + log p(z) - log q(z | x) for z ~ q, and log p(x | z)."""
        mu, logvar = self.encode(x)
        z = mu + torch.randn(k, *mu.shape) * torch.exp(0.5 * logvar)  # (k, B, Z)
        xk = x.expand(k, *x.shape).flatten(0, 1)
        log_px = self.log_px(xk, z.flatten(0, 1)).view(k, -1)
        log_w = log_px + standard_normal_log_prob(z) - diagonal_normal_log_prob(z, mu, logvar)
        return log_w, log_px

    @torch.no_grad()
    def decode(self, z: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """z (B, Z) and uniforms u (B, S, S, 2) -> binary images (B, 1, S, S)."""
        return self.decoder.sample_from_uniforms(u, z=self.condition(z))

    def mean_image(self, z: torch.Tensor) -> torch.Tensor:
        """The most likely pixel at every step given z (a deterministic picture of z)."""
        S = self.cfg.image_size
        return self.decode(z, torch.full((z.shape[0], S, S, 2), 0.5))

    def sample(self, n: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
        z = torch.randn(n, self.cfg.latent_dim, generator=generator)
        S = self.cfg.image_size
        return self.decode(z, torch.rand(n, S, S, 2, generator=generator))
