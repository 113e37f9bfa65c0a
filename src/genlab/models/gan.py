"""GANs on 28x28 images: DCGAN (non-saturating loss), WGAN (weight clipping, RMSprop) and
WGAN-GP (gradient penalty), optionally class-conditional.

The critic is a standalone module that scores any batch of images in [0, 1] (higher = more
real), so other parts (SPIRAL's reward) can reuse a trained one. Training plugs into the shared
loop through `gan_step`: one loop step is one generator update preceded by `n_critic` critic
updates, each on its own slice of the step's batch (`--batch-size` = images per generator step).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from genlab.errors import ConfigError
from genlab.train import distributed as dist
from genlab.train.config import TrainConfig, doc
from genlab.train.loop import StepFn, adam, autocast, check_finite, make_state, optimizer_update
from genlab.train.state import TrainState


@dataclass(frozen=True)
class GANConfig:
    LOSS: ClassVar[str] = "wgan_gp"  # the objective is fixed by the model's name, not a flag
    latent_dim: int = doc("size of the noise vector z", default=64)
    channels: int = doc("conv channels (the inner layers have twice as many)", default=64)
    n_critic: int = doc("critic updates per generator update", default=5)
    gp_weight: float = doc("WGAN-GP: weight lambda of the gradient penalty", default=10.0)
    clip: float = doc("WGAN: clip every critic weight to [-clip, clip]", default=0.01)
    conditional: bool = doc("condition both networks on the class label", default=False)
    n_classes: int = doc("number of classes when conditional", default=10)

    @property
    def loss(self) -> str:
        return self.LOSS

    def __post_init__(self) -> None:
        if self.n_critic < 1:
            raise ConfigError(f"n_critic must be >= 1, got {self.n_critic}")

    @property
    def representation(self) -> str:
        return "float"


# The three CLI names share one model; only their defaults differ (the papers' settings).
@dataclass(frozen=True)
class DCGANConfig(GANConfig):
    LOSS: ClassVar[str] = "dcgan"
    n_critic: int = doc("discriminator updates per generator update", default=1)


@dataclass(frozen=True)
class WGANConfig(GANConfig):
    LOSS: ClassVar[str] = "wgan"


@dataclass(frozen=True)
class WGANGPConfig(GANConfig):
    """CPU defaults (measured in benchmarks/gan_mnist.py); the paper's MNIST setting is
    --channels 64 --n-critic 5 --lr 1e-4 --batch-size 320 (5 critic slices of 64)."""

    LOSS: ClassVar[str] = "wgan_gp"
    channels: int = doc("conv channels (the inner layers have twice as many)", default=32)
    n_critic: int = doc("critic updates per generator update", default=2)


class Generator(nn.Module):
    """z (B, Z) [+ labels (B,)] -> images (B, 1, 28, 28) in [-1, 1]."""

    def __init__(self, cfg: GANConfig):
        super().__init__()
        c = cfg.channels
        self.embed = nn.Embedding(cfg.n_classes, cfg.latent_dim) if cfg.conditional else None
        self.net = nn.Sequential(
            nn.Linear(cfg.latent_dim, 2 * c * 49), nn.BatchNorm1d(2 * c * 49), nn.ReLU(),
            nn.Unflatten(1, (2 * c, 7, 7)),
            nn.ConvTranspose2d(2 * c, c, 4, 2, 1), nn.BatchNorm2d(c), nn.ReLU(),  # (B, c, 14, 14)
            nn.ConvTranspose2d(c, 1, 4, 2, 1), nn.Tanh(),  # (B, 1, 28, 28)
        )  # fmt: skip

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if self.embed is not None:
            z = z * self.embed(y)  # multiplicative conditioning keeps the noise's scale
        return self.net(z)


class Critic(nn.Module):
    """Scores images x (B, C, 28, 28) in [0, 1] -> (B,): higher means more real. C is 1, or
    more for stacked images (SPIRAL's conditional critic judges (canvas, target) pairs).

    No batch normalisation, so each image's score depends on that image alone (the gradient
    penalty is defined per sample). Conditional critics add a projection term <embed(y), h>.
    """

    def __init__(self, cfg: GANConfig, in_channels: int = 1):
        super().__init__()
        c = cfg.channels
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, c, 4, 2, 1), nn.LeakyReLU(0.2),  # (B, c, 14, 14)
            nn.Conv2d(c, 2 * c, 4, 2, 1), nn.LeakyReLU(0.2),  # (B, 2c, 7, 7)
            nn.Flatten(),
            nn.Linear(2 * c * 49, 4 * c), nn.LeakyReLU(0.2),
        )  # fmt: skip
        # A bias cancels in E[D(real)] - E[D(fake)]: Wasserstein critics have none.
        self.out = nn.Linear(4 * c, 1, bias=cfg.loss == "dcgan")
        self.embed = nn.Embedding(cfg.n_classes, 4 * c) if cfg.conditional else None

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        h = self.body(2.0 * x - 1.0).float()  # (B, 4c)
        score = self.out(h).squeeze(1)
        if self.embed is not None:
            score = score + (self.embed(y) * h).sum(1)
        return score.float()  # scored in float32 under bfloat16 autocast too


class GAN(nn.Module):
    def __init__(self, cfg: GANConfig):
        super().__init__()
        self.cfg = cfg
        self.generator = Generator(cfg)
        self.critic = Critic(cfg)

    def generate(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """(B, Z) -> (B, 1, 28, 28) in [0, 1], float32 (also under bfloat16 autocast)."""
        return (self.generator(z, y).float() + 1.0) / 2.0

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 1, 28, 28) in [0, 1] -> (B, 4c): the critic's penultimate layer, the
        representation `genlab probe` reads (in float32)."""
        return self.critic.body(2.0 * x - 1.0).float()

    @torch.no_grad()
    def sample(
        self, n: int, *, generator: torch.Generator | None = None, y: torch.Tensor | None = None
    ) -> torch.Tensor:
        """(n, 1, 28, 28) in [0, 1]; a conditional GAN cycles through the classes unless given y."""
        z = torch.randn(n, self.cfg.latent_dim, generator=generator)
        if self.cfg.conditional and y is None:
            y = torch.arange(n) % self.cfg.n_classes
        return self.generate(z, y)


def gradient_penalty(
    critic: nn.Module, real: torch.Tensor, fake: torch.Tensor, alpha: torch.Tensor, y=None
) -> torch.Tensor:
    """WGAN-GP penalty (Gulrajani et al. 2017), per sample, averaged: mean_b (|g_b|_2 - 1)^2.

    x_hat = alpha * real + (1 - alpha) * fake with one alpha (B,) per sample; g_b is the gradient
    of the critic's score of x_hat_b with respect to x_hat_b, flattened over all its pixels.
    """
    a = alpha.view(-1, *([1] * (real.dim() - 1)))
    x_hat = (a * real + (1 - a) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x_hat, y).sum(), x_hat, create_graph=True)
    return (grad.flatten(1).norm(dim=1) - 1.0).square().mean()


def critic_loss(model: GAN, real, fake, y=None) -> dict[str, torch.Tensor]:
    d_real, d_fake = model.critic(real, y), model.critic(fake, y)
    if model.cfg.loss == "dcgan":
        loss = (
            F.softplus(-d_real).mean() + F.softplus(d_fake).mean()
        )  # -log D(x) - log(1 - D(G(z)))
        return {"d_loss": loss}
    wasserstein = d_real.mean() - d_fake.mean()  # the critic's estimate of W(real, fake)
    out = {"d_loss": -wasserstein, "wasserstein": wasserstein}
    if model.cfg.loss == "wgan_gp":
        alpha = torch.rand(real.shape[0])
        out["gp"] = gradient_penalty(model.critic, real, fake, alpha, y)
        out["d_loss"] = out["d_loss"] + model.cfg.gp_weight * out["gp"]
    return out


def generator_loss(model: GAN, fake, y=None) -> torch.Tensor:
    d_fake = model.critic(fake, y)
    if model.cfg.loss == "dcgan":
        return F.softplus(-d_fake).mean()  # non-saturating: -log D(G(z))
    return -d_fake.mean()


def gan_step(cfg: TrainConfig) -> StepFn:
    """One generator update after n_critic critic updates on slices of the batch; the networks'
    forward passes at `cfg.precision` (the scores and images they give are float32)."""

    def step(state: TrainState, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        model: GAN = state.model
        g = model.cfg
        reals = batch["x"].chunk(g.n_critic)
        labels = batch["y"].chunk(g.n_critic) if g.conditional else [None] * g.n_critic
        critic_params = list(model.critic.parameters())
        for real, y in zip(reals, labels, strict=True):
            with torch.no_grad(), autocast(cfg.precision):
                fake = model.generate(torch.randn(real.shape[0], g.latent_dim), y)
            with autocast(cfg.precision):
                d = critic_loss(model, real, fake, y)
            check_finite(state.step + 1, {"d_loss": dist.sum_over_ranks(d["d_loss"].detach())})
            optimizer_update(state, "critic", d["d_loss"], critic_params)
            if g.loss == "wgan":
                with torch.no_grad():
                    for p in critic_params:
                        p.clamp_(-g.clip, g.clip)
        y = labels[-1]
        n = reals[-1].shape[0]
        with autocast(cfg.precision):
            g_loss = generator_loss(model, model.generate(torch.randn(n, g.latent_dim), y), y)
        check_finite(state.step + 1, {"g_loss": dist.sum_over_ranks(g_loss.detach())})
        optimizer_update(state, "generator", g_loss, list(model.generator.parameters()))
        for sched in state.schedulers.values():  # once per loop step, so schedules count steps
            sched.step()
        return {"g_loss": g_loss.detach(), **{k: v.detach() for k, v in d.items()}}

    return step


def make_gan_state(model: GAN, cfg: TrainConfig) -> TrainState:
    """The papers' optimizers: Adam(0.5, 0.999) for DCGAN, RMSprop for WGAN, Adam(0, 0.9) for
    WGAN-GP, at `cfg.lr` for both networks, with the shared warmup/schedule."""
    g = model.cfg
    opts = {}
    for name, module in (("generator", model.generator), ("critic", model.critic)):
        if g.loss == "wgan":
            opts[name] = torch.optim.RMSprop(module.parameters(), lr=cfg.lr)
        else:
            betas = (0.5, 0.999) if g.loss == "dcgan" else (0.0, 0.9)
            opts[name] = adam(module.parameters(), cfg.lr, betas=betas)
    return make_state(model, cfg, opts)
