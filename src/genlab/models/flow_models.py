"""Glow (Kingma & Dhariwal 2018) and RealNVP (Dinh et al. 2017) on 8-bit MNIST, 28x28x1 as it is
(never padded to 32x32x3), dequantized uniformly.

Both are a multi-scale flow (`genlab.flows.multiscale`) from y = (x + u) / 256 - 1/2 to a flat
standard normal (or, with `logit` = a > 0, from RealNVP's logit(a + (1 - 2a) (x + u) / 256),
its log-det counted); 28x28 allows two levels, (4, 14, 14) and (8, 7, 7).
- Glow: each step is ActNorm -> invertible 1x1 conv (LU) -> affine (or additive) coupling.
- RealNVP: each step is ActNorm -> masked affine coupling, the masks alternating checkerboard
  (both parities) and channel halves. (The paper used batch norm and a squeeze between its
  checkerboard and channel couplings; here each level squeezes first.)

Glow's coupling networks can be shared (talk 003): `share_coupling` = "none" (one network per
step), "per_level" (one per level), "all" (one for the whole flow; levels with fewer channels
zero-pad its input and read the first outputs), optionally with a small learned per-step
embedding fed to the shared network (`step_embedding`, as NanoFlow does).

`log_prob` is the density of the dequantized image in nats; the loss and `genlab eval` report the
8-bit bound in bits per dimension (`metrics.likelihood.dequantized_log_prob`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from genlab.errors import ConfigError
from genlab.flows.base import Compose, Flow
from genlab.flows.layers import (
    ActNorm,
    AffineCoupling,
    CouplingNet,
    InvConv1x1,
    InvConv1x1LU,
    Logit,
    MaskedAffineCoupling,
    channel_mask,
    checkerboard_mask,
)
from genlab.flows.multiscale import MultiScale, level_shapes
from genlab.metrics.likelihood import dequantized_log_prob
from genlab.train.config import doc

EVENT_SHAPE = (1, 28, 28)
SHARING = ("none", "per_level", "all")
LOGIT_DOC = ("model logit(a + (1 - 2a) x) of the dequantized image x in [0, 1) with a = this, "
             "as RealNVP does (0: model x - 1/2, as Glow does)")  # fmt: skip


def check_logit(alpha: float) -> None:
    if not 0 <= alpha < 0.5:
        raise ConfigError(f"logit must be 0 (off) or in (0, 0.5), got {alpha}")


@dataclass(frozen=True)
class GlowConfig:
    levels: int = doc("multi-scale levels (28x28 allows 1 or 2)", default=2)
    depth: int = doc("flow steps per level (K in the Glow paper)", default=8)
    hidden: int = doc("channels inside each coupling network", default=128)
    coupling: str = doc("'affine' or 'additive'", default="affine")
    lu: bool = doc("LU-parameterised 1x1 convolutions (else plain, with slogdet)", default=True)
    share_coupling: str = doc(f"share coupling networks: {', '.join(SHARING)}", default="none")
    step_embedding: int = doc("size of a per-step embedding fed to shared networks", default=0)
    logit: float = doc(LOGIT_DOC, default=0.0)

    def __post_init__(self) -> None:
        if self.coupling not in ("affine", "additive"):
            raise ConfigError(f"coupling must be 'affine' or 'additive', got '{self.coupling}'")
        if self.share_coupling not in SHARING:
            raise ConfigError(
                f"share_coupling must be one of {SHARING}, got '{self.share_coupling}'"
            )
        level_shapes(EVENT_SHAPE, self.levels)  # raises for sizes that cannot be squeezed
        check_logit(self.logit)

    @property
    def representation(self) -> str:
        return "dequantized"


@dataclass(frozen=True)
class RealNVPConfig:
    levels: int = doc("multi-scale levels (28x28 allows 1 or 2)", default=2)
    depth: int = doc("coupling layers per level (masks alternate)", default=8)
    hidden: int = doc("channels inside each coupling network", default=128)
    logit: float = doc(LOGIT_DOC, default=0.0)

    def __post_init__(self) -> None:
        level_shapes(EVENT_SHAPE, self.levels)
        check_logit(self.logit)

    @property
    def representation(self) -> str:
        return "dequantized"


class PaddedNet(nn.Module):
    """A coupling network shared across levels of different widths: zero-pad the input channels
    to the network's, keep the first `out_channels` outputs."""

    def __init__(self, net: CouplingNet, in_channels: int, net_in: int, out_channels: int):
        super().__init__()
        self.net, self.pad, self.out_channels = net, net_in - in_channels, out_channels

    def forward(self, x, context=None):
        return self.net(F.pad(x, (0, 0, 0, 0, 0, self.pad)), context)[:, : self.out_channels]


def _coupling_nets(cfg: GlowConfig, shapes) -> list[list[nn.Module]]:
    """nets[level][step] following cfg.share_coupling (the same module object where shared)."""
    add = cfg.coupling == "additive"

    def io(c):  # coupling-net input and output channels for a level of c channels
        return c // 2, (c - c // 2) * (1 if add else 2)

    def new(c_in, c_out):
        return CouplingNet(c_in, c_out, cfg.hidden, cfg.step_embedding)

    if cfg.share_coupling == "none":
        return [[new(*io(c)) for _ in range(cfg.depth)] for c, _, _ in shapes]
    if cfg.share_coupling == "per_level":
        return [[new(*io(c))] * cfg.depth for c, _, _ in shapes]
    widest_in, widest_out = (max(io(c)[k] for c, _, _ in shapes) for k in (0, 1))
    shared = new(widest_in, widest_out)
    return [[PaddedNet(shared, io(c)[0], widest_in, io(c)[1])] * cfg.depth for c, _, _ in shapes]


def build_glow(cfg: GlowConfig) -> MultiScale:
    shapes = level_shapes(EVENT_SHAPE, cfg.levels)
    nets = _coupling_nets(cfg, shapes)
    conv = InvConv1x1LU if cfg.lu else InvConv1x1
    levels = []
    for (c, _, _), level_nets in zip(shapes, nets, strict=True):
        steps = []
        for net in level_nets:
            steps += [ActNorm(c), conv(c),
                      AffineCoupling(net, cfg.coupling == "additive", cfg.step_embedding)]  # fmt: skip
        levels.append(Compose(*steps))
    return MultiScale(EVENT_SHAPE, levels)


def build_realnvp(cfg: RealNVPConfig) -> MultiScale:
    levels = []
    for c, h, w in level_shapes(EVENT_SHAPE, cfg.levels):
        steps = []
        for k in range(cfg.depth):
            kind, parity = divmod(k, 2)
            mask = checkerboard_mask(h, w, parity) if kind % 2 == 0 else channel_mask(c, parity)
            steps += [ActNorm(c), MaskedAffineCoupling(CouplingNet(c, 2 * c, cfg.hidden), mask)]
        levels.append(Compose(*steps))
    return MultiScale(EVENT_SHAPE, levels)


class ImageFlow(nn.Module):
    """A flow on dequantized 28x28 images; `x` everywhere is (B, 1, 28, 28) in [0, 1)."""

    def __init__(self, cfg: GlowConfig | RealNVPConfig):
        super().__init__()
        self.cfg = cfg
        transform = build_glow(cfg) if isinstance(cfg, GlowConfig) else build_realnvp(cfg)
        if cfg.logit:
            transform = Compose(Logit(cfg.logit), transform)
        self.center = 0.0 if cfg.logit else 0.5  # what the flow's input is shifted by
        self.dims = math.prod(EVENT_SHAPE)
        self.flow = Flow(transform, EVENT_SHAPE, (self.dims,))

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """log density of the dequantized images (B,) nats (shifting to [-1/2, 1/2) is volume
        preserving; the logit's log-det is in the flow's)."""
        return self.flow.log_prob(x - self.center)

    def bits_per_dim(self, x: torch.Tensor) -> torch.Tensor:
        """The 8-bit bound per image (B,) in bits per dimension."""
        nats = -dequantized_log_prob(self.log_prob(x), self.dims, 256.0)
        return nats / (self.dims * math.log(2))

    def loss(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        bpd = self.bits_per_dim(batch["x"]).mean()
        return {"loss": bpd, "bits_per_dim": bpd}

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 1, 28, 28) in [0, 1) -> z (B, 784)."""
        return self.flow.encode(x - self.center)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """z (B, 784) -> images (B, 1, 28, 28); exact inverse of `encode`."""
        return self.flow.decode(z) + self.center

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The latent of an image (LatentModel): its z."""
        return self.encode(x)

    def mean_image(self, z: torch.Tensor) -> torch.Tensor:
        """LatentModel: the image of z, in [0, 1] (`as_image`)."""
        return as_image(self.decode(z))

    @torch.no_grad()
    def sample(
        self, n: int, *, generator: torch.Generator | None = None, temperature: float = 1.0
    ) -> torch.Tensor:
        """n images in [0, 1] from z ~ N(0, T^2 I) (`as_image`)."""
        return as_image(self.flow.sample(n, temperature, generator=generator).add(self.center))


def as_image(x: torch.Tensor) -> torch.Tensor:
    """Decoded pixels -> [0, 1]. Latents far in the tails can overflow the inverse (each affine
    coupling divides by a scale below 1: about 1 sample in 2,000 at temperature 1 after an hour
    of training), giving +-inf or NaN; those pixels are clamped like any other out-of-range
    value (NaN to 0), so one overflowing sample cannot turn a batch's metrics into NaN."""
    return torch.nan_to_num(x, nan=0.0).clamp(0, 1)
