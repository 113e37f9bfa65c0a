"""Likelihood accounting in one place: importance-weighted bounds, nats and bits."""

from __future__ import annotations

import math

import torch


def iwae_bound(log_w: torch.Tensor) -> torch.Tensor:
    """Importance-weighted lower bound on log p(x) (Burda et al. 2015), in nats.

    log_w: (K, B) log importance weights log p(x, z_k) - log q(z_k | x), z_k ~ q(z | x).
    Returns (B,): log (1/K) sum_k exp(log_w_k). It is >= mean_k log_w_k (the ELBO estimate from
    the same samples) by Jensen's inequality, and tends to log p(x) as K grows.
    """
    return torch.logsumexp(log_w, dim=0) - math.log(log_w.shape[0])


def nats_to_bits_per_dim(nats: float | torch.Tensor, dims: int) -> float | torch.Tensor:
    """Negative log-likelihood in nats per example -> bits per dimension."""
    return nats / (dims * math.log(2.0))


def dequantized_log_prob(log_density: torch.Tensor, dims: int, scale: float) -> torch.Tensor:
    """The bound on an 8-bit image's log-probability that a density model of its dequantized
    version gives (uniform dequantization, Theis et al. 2016), in nats per example.

    The model saw y = (x + u) / scale with x in {0..255}^D and u ~ U[0, 1)^D, and gave the
    density log p(y) (`log_density`, (B,)). Then
        log P(x) >= E_u log p((x + u) / scale) - D log(scale),
    the last term being the change of variables from x + u to y: scale = 256 puts y in [0, 1)
    (term -D log 256), scale = 1 keeps [0, 256) (no term). Shifting y (e.g. to [-0.5, 0.5))
    changes nothing. Divide the negative by D ln 2 for bits per dimension.
    """
    return log_density - dims * math.log(scale)


def gaussian_kl_standard_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) in nats: (B, Z) -> (B,)."""
    return 0.5 * (mu.square() + logvar.exp() - 1.0 - logvar).sum(1)


def diagonal_normal_log_prob(
    z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor
) -> torch.Tensor:
    """log N(z | mu, diag(exp(logvar))): (..., Z) -> (...)."""
    return -0.5 * ((z - mu).square() / logvar.exp() + logvar + math.log(2 * math.pi)).sum(-1)


def importance_sampled_nll(
    log_weights,
    x: torch.Tensor,
    k: int,
    batch_size: int = 100,
    max_images: int = 8192,
    progress=None,
) -> dict[str, torch.Tensor]:
    """Per-example -log p(x) estimates over a dataset, streaming the K samples in chunks.

    `log_weights(x_batch, k_chunk) -> (log_w (k_chunk, B), log_px (k_chunk, B))`. Returns (N,)
    tensors in nats: `nll` = -IWAE_K, `neg_elbo` = -mean_k log_w and `rec` = -mean_k log p(x|z),
    all from the same K samples, so nll <= neg_elbo holds example by example.
    """
    k_chunk = max(1, min(k, max_images // batch_size))
    nll, neg_elbo, rec = [], [], []
    for start in range(0, x.shape[0], batch_size):
        xb = x[start : start + batch_size]
        lse, sum_w, sum_px, done = None, 0.0, 0.0, 0
        while done < k:
            kc = min(k_chunk, k - done)
            log_w, log_px = log_weights(xb, kc)  # (kc, B)
            chunk_lse = torch.logsumexp(log_w, 0)
            lse = chunk_lse if lse is None else torch.logaddexp(lse, chunk_lse)
            sum_w = sum_w + log_w.sum(0)
            sum_px = sum_px + log_px.sum(0)
            done += kc
        nll.append(-(lse - math.log(k)))
        neg_elbo.append(-sum_w / k)
        rec.append(-sum_px / k)
        if progress is not None:
            progress(xb.shape[0])
    return {"nll": torch.cat(nll), "neg_elbo": torch.cat(neg_elbo), "rec": torch.cat(rec)}
