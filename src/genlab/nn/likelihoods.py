"""Per-example log-likelihoods of images under decoder outputs, in nats, summed over pixels.

The image likelihoods take decoder outputs and data of shape (B, C, H, W) and return (B,). The
discretized logistic mixture works elementwise (audio and images both use it) and leaves summing
to its caller.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def widened(t: torch.Tensor) -> torch.Tensor:
    """A network's outputs as a likelihood should read them: bfloat16/float16 (from autocast)
    widened to float32; float32 and float64 unchanged."""
    return t.float() if t.dtype in (torch.bfloat16, torch.float16) else t


def standard_normal_log_prob(z: torch.Tensor, event_dims: int = 1) -> torch.Tensor:
    """log N(z | 0, I) summed over the last `event_dims` dimensions: (..., *E) -> (...) nats.
    A latent (B, Z) -> (B,); a flow's noise (B, C, H, W) with event_dims=3 -> (B,)."""
    lp = -0.5 * z.square() - 0.5 * math.log(2 * math.pi)
    return lp.sum(tuple(range(-event_dims, 0))) if event_dims else lp


def bernoulli_log_prob(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """log Bernoulli(x | sigmoid(logits)) for x in {0, 1}."""
    return -F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1)


def gaussian_log_prob(mean: torch.Tensor, log_std: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """log N(x | mean, exp(log_std)^2), a density (can exceed 0 nats)."""
    z = (x - mean) * torch.exp(-log_std)
    lp = -0.5 * z.square() - log_std - 0.5 * math.log(2 * math.pi)
    return lp.flatten(1).sum(1)


def continuous_bernoulli_log_norm(logits: torch.Tensor) -> torch.Tensor:
    """log C(lambda) of the continuous Bernoulli (Loaiza-Ganem & Cunningham 2019), elementwise.

    C(l) = 2 artanh(1 - 2l) / (1 - 2l), and C(1/2) = 2. Near l = 1/2 a Taylor expansion in
    t = 1 - 2l is used: log C = log 2 + t^2/3 + 4 t^4 / 45.
    """
    lam = torch.sigmoid(logits).clamp(1e-6, 1 - 1e-6)
    t = 1.0 - 2.0 * lam
    far = t.abs() > 1e-2
    t_far = torch.where(far, t, torch.ones_like(t))
    exact = torch.log(2.0 * torch.atanh(t_far) / t_far)
    taylor = math.log(2.0) + t.square() / 3.0 + 4.0 * t.pow(4) / 45.0
    return torch.where(far, exact, taylor)


def continuous_bernoulli_log_prob(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """log CB(x | sigmoid(logits)) for x in [0, 1], a density on [0, 1]^D."""
    return bernoulli_log_prob(logits, x) + continuous_bernoulli_log_norm(logits).flatten(1).sum(1)


def _bin_edges(k: torch.Tensor, bins: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Code k in [0, bins) sits at c = 2k / (bins - 1) - 1 in [-1, 1]; its bin is c +- 1/(bins-1)."""
    centre = 2.0 * k.float() / (bins - 1) - 1.0
    half = 1.0 / (bins - 1)
    return centre - half, centre + half


def discretized_logistic_mixture_log_prob(
    params: torch.Tensor, k: torch.Tensor, bins: int = 256
) -> torch.Tensor:
    """log P(k) of integer codes k in [0, bins) under a mixture of M logistics on [-1, 1] whose mass
    is binned onto `bins` evenly spaced levels; the end bins take the tails (Salimans et al. 2017).

    params (..., 3M): mixture logits, means, log-scales; k (...) long -> (...) nats, elementwise.
    Each bin's mass s(a) - s(b) (s the logistic CDF at the bin's scaled edges a > b) is computed
    as log s(a) + log s(-b) + log(1 - e^(b - a)), which is stable in the tails.
    """
    logit_pi, mean, log_scale = params.chunk(3, -1)  # (..., M) each
    inv_s = torch.exp(-log_scale.clamp(min=-7.0))
    lo, hi = _bin_edges(k, bins)
    a = (hi[..., None] - mean) * inv_s
    b = (lo[..., None] - mean) * inv_s
    top, bottom = (k == bins - 1)[..., None], (k == 0)[..., None]
    a = torch.where(top, torch.full_like(a, 1e4), a)  # s(a) = 1: the upper tail
    b = torch.where(bottom, torch.full_like(b, -1e4), b)  # s(b) = 0: the lower tail
    log_mass = F.logsigmoid(a) + F.logsigmoid(-b) + torch.log(-torch.expm1(b - a).clamp(max=-1e-12))
    return torch.logsumexp(F.log_softmax(logit_pi, -1) + log_mass, -1)


def discretized_logistic_mixture_sample(
    params: torch.Tensor, u: torch.Tensor, bins: int = 256, temperature: float = 1.0
) -> torch.Tensor:
    """Codes (...) long drawn from the mixture of `params` (..., 3M), using the uniforms
    u (..., 2) in (0, 1) (component, then position), so a caller can replay the same draws.
    `temperature` scales the logistics' widths (1 = the model's distribution)."""
    logit_pi, mean, log_scale = params.chunk(3, -1)
    cdf = torch.softmax(logit_pi, -1).cumsum(-1)  # (..., M)
    m = torch.searchsorted(cdf, u[..., :1].contiguous()).clamp(max=cdf.shape[-1] - 1)  # (..., 1)
    mu = mean.gather(-1, m).squeeze(-1)
    s = torch.exp(log_scale.clamp(min=-7.0)).gather(-1, m).squeeze(-1) * temperature
    v = u[..., 1].clamp(1e-5, 1 - 1e-5)
    x = mu + s * (torch.log(v) - torch.log1p(-v))  # inverse logistic CDF
    return torch.round((x.clamp(-1, 1) + 1) / 2 * (bins - 1)).long()
