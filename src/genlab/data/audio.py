"""Audio as the autoregressive models see it: 8-bit mu-law codes (ITU-T G.711's companding curve,
continuous form, mu = 255), and random training crops.

    float in [-1, 1]  --mulaw_encode-->  long in [0, 255]  --mulaw_decode-->  float in [-1, 1]

Code 128 is the quantisation bin that holds silence (0.0 decodes to ~0.0078 / 255 of full scale).
"""

from __future__ import annotations

import math

import torch

from genlab.errors import DataError

MU = 255
SILENCE = 128  # the code of 0.0


def int16_to_float(x: torch.Tensor) -> torch.Tensor:
    """int16 PCM (...) -> float32 in [-1, 1)."""
    return x.float() / 32768.0


def mulaw_compress(x: torch.Tensor, mu: int = MU) -> torch.Tensor:
    """f(x) = sign(x) ln(1 + mu |x|) / ln(1 + mu), float in [-1, 1] -> float in [-1, 1]."""
    return torch.sign(x) * torch.log1p(mu * x.abs()) / math.log1p(mu)


def mulaw_expand(y: torch.Tensor, mu: int = MU) -> torch.Tensor:
    """The inverse of `mulaw_compress`: x = sign(y) ((1 + mu)^|y| - 1) / mu."""
    return torch.sign(y) * torch.expm1(y.abs() * math.log1p(mu)) / mu


def mulaw_encode(x: torch.Tensor, mu: int = MU) -> torch.Tensor:
    """Float audio in [-1, 1] (any shape) -> long codes in [0, mu]: compress, then round onto mu + 1
    evenly spaced levels. Values outside [-1, 1] are an error (clip them deliberately first)."""
    if x.numel() and (x.abs().max() > 1.0 or not torch.isfinite(x).all()):
        raise DataError(f"mu-law input must be finite and in [-1, 1]; max |x| = {x.abs().max()}")
    y = mulaw_compress(x, mu)
    return torch.round((y + 1) / 2 * mu).long()


def mulaw_decode(q: torch.Tensor, mu: int = MU) -> torch.Tensor:
    """Long codes in [0, mu] -> float audio in [-1, 1] at the centre of each code's level."""
    return mulaw_expand(2 * q.float() / mu - 1, mu)


def random_crops(
    codes: torch.Tensor, offsets: torch.Tensor, length: int, n: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """n crops of `length` samples from clips chosen uniformly (with replacement), built as one
    index tensor. Clip k is codes[offsets[k]:offsets[k + 1]]; codes (N,) any integer dtype.

    Clips shorter than `length` are padded at the end with code SILENCE and masked. Returns the
    crops (n, length) long, a mask (n, length) bool that is True on real samples, and the chosen
    clips (n,) long.
    """
    if length < 1:
        raise DataError(f"crop length must be >= 1, got {length}")
    which = torch.randint(len(offsets) - 1, (n,), generator=generator)  # (n,)
    start, end = offsets[which], offsets[which + 1]
    slack = (end - start - length).clamp(min=0)  # (n,) how far the crop can slide
    start = start + (torch.rand(n, generator=generator) * (slack + 1)).long().clamp(max=slack)
    idx = start[:, None] + torch.arange(length)  # (n, length)
    mask = idx < end[:, None]
    crops = torch.where(mask, codes[idx.clamp(max=len(codes) - 1)].long(), SILENCE)
    return crops, mask, which
