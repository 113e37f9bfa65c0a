"""Flow building blocks on images (B, C, H, W); every one is a Transform (see `base`): forward is
data -> noise and returns log |det dz/dx| per example.

ActNorm, invertible 1x1 convolutions (plain and LU), affine and additive coupling (Glow's channel
split), masked affine coupling (RealNVP's checkerboard and channel masks), squeeze, and RealNVP's
logit preprocessing.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from genlab.errors import ConfigError
from genlab.flows.base import sum_per_example
from genlab.nn.likelihoods import widened


class ActNorm(nn.Module):
    """y = (x + b) * exp(s) per channel (Kingma & Dhariwal 2018). The first training batch sets b
    and s so that y has zero mean and unit variance per channel; whether that happened is a
    buffer, so it is saved and restored with the weights. log|det| = H W sum(s)."""

    def __init__(self, channels: int):
        super().__init__()
        self.loc = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.log_scale = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.register_buffer("initialized", torch.tensor(0, dtype=torch.uint8))

    @torch.no_grad()
    def _initialize(self, x: torch.Tensor) -> None:
        mean = x.mean((0, 2, 3), keepdim=True)
        std = x.std((0, 2, 3), keepdim=True)
        self.loc.copy_(-mean)
        self.log_scale.copy_(-torch.log(std + 1e-6))
        self.initialized.fill_(1)

    def forward(self, x, context=None):
        if not self.initialized and self.training:
            self._initialize(x)
        hw = x.shape[2] * x.shape[3]
        logdet = (hw * self.log_scale.sum()).expand(x.shape[0])
        return (x + self.loc) * torch.exp(self.log_scale), logdet

    def inverse(self, z, context=None):
        hw = z.shape[2] * z.shape[3]
        return z * torch.exp(-self.log_scale) - self.loc, (-hw * self.log_scale.sum()).expand(
            z.shape[0]
        )


def _random_rotation(channels: int, generator: torch.Generator | None = None) -> torch.Tensor:
    q, _ = torch.linalg.qr(torch.randn(channels, channels, generator=generator))
    return q


def mix_channels(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """x (B, C, H, W), weight (C, C) -> W x at every pixel, in their own precision even under
    bf16 autocast: the flow's stream must stay invertible and match its log-determinant."""
    with torch.autocast(x.device.type, enabled=False):
        return F.conv2d(x, weight[:, :, None, None])


class InvConv1x1(nn.Module):
    """y = W x at every pixel, W (C, C) initialised to a random rotation. log|det| = H W log|det W|.
    The plain form costs an O(C^3) slogdet and inverse per call."""

    def __init__(self, channels: int):
        super().__init__()
        self.weight = nn.Parameter(_random_rotation(channels))

    def forward(self, x, context=None):
        hw = x.shape[2] * x.shape[3]
        logdet = (hw * torch.linalg.slogdet(self.weight)[1]).expand(x.shape[0])
        return mix_channels(x, self.weight), logdet

    def inverse(self, z, context=None):
        hw = z.shape[2] * z.shape[3]
        w_inv = torch.linalg.inv(self.weight)
        logdet = (-hw * torch.linalg.slogdet(self.weight)[1]).expand(z.shape[0])
        return mix_channels(z, w_inv), logdet


class InvConv1x1LU(nn.Module):
    """The same map with W = P L (U + diag(sign * exp(log_s))): P a fixed permutation, L unit lower
    triangular, U strictly upper triangular. log|det W| = sum(log_s), O(C) instead of O(C^3)."""

    def __init__(self, channels: int):
        super().__init__()
        p, lower, upper = torch.linalg.lu(_random_rotation(channels))
        diag = torch.diagonal(upper)
        self.register_buffer("perm", p)
        self.register_buffer("sign", torch.sign(diag))
        self.register_buffer("lower_mask", torch.tril(torch.ones(channels, channels), -1))
        self.lower = nn.Parameter(lower)
        self.upper = nn.Parameter(torch.triu(upper, 1))
        self.log_s = nn.Parameter(torch.log(diag.abs()))

    def weight(self) -> torch.Tensor:
        eye = torch.eye(self.perm.shape[0], dtype=self.lower.dtype)
        lower = self.lower * self.lower_mask + eye
        upper = self.upper * self.lower_mask.T + torch.diag(self.sign * torch.exp(self.log_s))
        # In full precision even under autocast, like its log|det|.
        with torch.autocast(self.lower.device.type, enabled=False):
            return self.perm @ lower @ upper

    def forward(self, x, context=None):
        hw = x.shape[2] * x.shape[3]
        return mix_channels(x, self.weight()), (hw * self.log_s.sum()).expand(x.shape[0])

    def inverse(self, z, context=None):
        hw = z.shape[2] * z.shape[3]
        w_inv = torch.linalg.inv(self.weight())
        return mix_channels(z, w_inv), (-hw * self.log_s.sum()).expand(z.shape[0])


class CouplingNet(nn.Module):
    """The network inside a coupling: conv3x3 -> ReLU -> conv1x1 -> ReLU -> conv3x3, the last
    zero-initialised so that every coupling starts as the identity. `context_channels` extra
    input channels (a conditioning map, or a flow step's embedding broadcast over pixels)."""

    def __init__(self, in_channels: int, out_channels: int, hidden: int, context_channels: int = 0):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(in_channels + context_channels, hidden, 3, padding=1), nn.ReLU(),
            nn.Conv2d(hidden, hidden, 1), nn.ReLU(),
            nn.Conv2d(hidden, out_channels, 3, padding=1),
        )  # fmt: skip
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        if context is not None:
            if context.dim() == 2:  # (B, E) -> (B, E, H, W)
                context = context[:, :, None, None].expand(-1, -1, *x.shape[2:])
            x = torch.cat([x, context], 1)
        return widened(self.net(x))  # float32 even if its convolutions ran in bfloat16


def _affine_scale(raw: torch.Tensor) -> torch.Tensor:
    """Glow's stable scale: sigmoid(raw + 2), in (0, 1), ~0.88 at initialisation."""
    return torch.sigmoid(raw + 2.0)


class AffineCoupling(nn.Module):
    """Glow's coupling on a channel split x = (xa, xb): (shift, raw) = NN(xa [, context]),
    yb = (xb + shift) * sigmoid(raw + 2), ya = xa. log|det| = sum log sigmoid(raw + 2).
    `additive=True` drops the scale (NICE): yb = xb + shift, log|det| = 0.

    `net` maps (B, C//2 [+ context], H, W) to (B, 2 (C - C//2), H, W) (C - C//2 if additive); it
    may be shared with other couplings (Glow with shared coupling parameters). `embedding`, if given,
    is this step's own learned vector, passed to the shared net as context (NanoFlow-style).
    """

    def __init__(self, net: nn.Module, additive: bool = False, embedding: int = 0):
        super().__init__()
        self.net, self.additive = net, additive
        self.embedding = nn.Parameter(torch.randn(1, embedding) * 0.01) if embedding else None

    def _params(self, xa: torch.Tensor, context: torch.Tensor | None):
        if self.embedding is not None:
            step = self.embedding.expand(xa.shape[0], -1)
            context = step if context is None else torch.cat([context, step], 1)
        h = self.net(xa, context)
        if self.additive:
            return h, None
        shift, raw = h.chunk(2, 1)
        return shift, _affine_scale(raw)

    def forward(self, x, context=None):
        xb, xa = x.chunk(2, 1)  # xa conditions (the second half, so sizes match for odd C)
        shift, scale = self._params(xa, context)
        if scale is None:
            return torch.cat([xb + shift, xa], 1), x.new_zeros(x.shape[0])
        return torch.cat([(xb + shift) * scale, xa], 1), sum_per_example(torch.log(scale))

    def inverse(self, z, context=None):
        zb, za = z.chunk(2, 1)
        shift, scale = self._params(za, context)
        if scale is None:
            return torch.cat([zb - shift, za], 1), z.new_zeros(z.shape[0])
        return torch.cat([zb / scale - shift, za], 1), -sum_per_example(torch.log(scale))


def checkerboard_mask(height: int, width: int, parity: int = 0) -> torch.Tensor:
    """(1, 1, H, W) float: 1 where (i + j + parity) is even. RealNVP's spatial mask."""
    i, j = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    return ((i + j + parity) % 2 == 0).float()[None, None]


def channel_mask(channels: int, parity: int = 0) -> torch.Tensor:
    """(1, C, 1, 1) float: 1 on the first half of the channels (second half if parity = 1)."""
    m = (torch.arange(channels) < channels // 2).float()
    return (m if parity == 0 else 1 - m)[None, :, None, None]


class MaskedAffineCoupling(nn.Module):
    """RealNVP's coupling with a binary mask m: the masked part conditions the rest,
    y = m x + (1 - m) ((x + t) * s), (t, raw) = NN(m x), s = sigmoid(raw + 2).
    log|det| = sum over unmasked entries of log s. `net` maps (B, C, H, W) to (B, 2C, H, W)."""

    def __init__(self, net: nn.Module, mask: torch.Tensor):
        super().__init__()
        self.net = net
        self.register_buffer("mask", mask)

    def _params(self, masked: torch.Tensor, context: torch.Tensor | None):
        shift, raw = self.net(masked, context).chunk(2, 1)
        return shift, _affine_scale(raw)

    def forward(self, x, context=None):
        m = self.mask
        shift, scale = self._params(x * m, context)
        y = m * x + (1 - m) * (x + shift) * scale
        return y, sum_per_example((1 - m) * torch.log(scale))

    def inverse(self, z, context=None):
        m = self.mask
        shift, scale = self._params(z * m, context)
        x = m * z + (1 - m) * (z / scale - shift)
        return x, -sum_per_example((1 - m) * torch.log(scale))


class Squeeze(nn.Module):
    """(B, C, H, W) -> (B, 4C, H/2, W/2): each 2x2 block of pixels becomes 4 channels.
    A permutation, so log|det| = 0."""

    def forward(self, x, context=None):
        B, C, H, W = x.shape
        if H % 2 or W % 2:
            raise ValueError(f"Squeeze needs even height and width, got {H}x{W}")
        y = x.reshape(B, C, H // 2, 2, W // 2, 2).permute(0, 1, 3, 5, 2, 4)
        return y.reshape(B, 4 * C, H // 2, W // 2), x.new_zeros(B)

    def inverse(self, z, context=None):
        B, C4, H, W = z.shape
        x = z.reshape(B, C4 // 4, 2, 2, H, W).permute(0, 1, 4, 2, 5, 3)
        return x.reshape(B, C4 // 4, 2 * H, 2 * W), z.new_zeros(B)


class Logit(nn.Module):
    """RealNVP's preprocessing as a Transform, elementwise on data in [0, 1]:
    z = logit(s), s = a + (1 - 2a) x, so values near 0 and 1 (most of MNIST) are spread out
    instead of pressed against the bounds; a in (0, 1/2) keeps z finite at x = 0 and 1.
    log |dz/dx| = log(1 - 2a) - log s - log(1 - s) per element."""

    def __init__(self, alpha: float):
        super().__init__()
        if not 0 < alpha < 0.5:
            raise ConfigError(f"the logit's alpha must be in (0, 0.5), got {alpha}")
        self.alpha = alpha

    def _logdet(self, z: torch.Tensor) -> torch.Tensor:  # log |dz/dx| from z, (B,)
        log_s, log_1ms = F.logsigmoid(z), F.logsigmoid(-z)
        return sum_per_example(math.log(1 - 2 * self.alpha) - log_s - log_1ms)

    def forward(self, x, context=None):
        s = self.alpha + (1 - 2 * self.alpha) * x
        z = torch.log(s) - torch.log1p(-s)
        return z, self._logdet(z)

    def inverse(self, z, context=None):
        return (torch.sigmoid(z) - self.alpha) / (1 - 2 * self.alpha), -self._logdet(z)
