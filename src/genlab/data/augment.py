"""Image augmentation operations for population-based augmentation (Ho et al. 2019), on batches
of images in [0, 1], shape (B, C, H, W), in torch (no PIL round trip).

Each operation takes the images and a magnitude m in [0, 1] per image (B,) (PBA's 0-9 scale,
divided by 9) and returns the transformed images. Magnitudes map to AutoAugment's ranges:
shears up to 0.3, translations up to 30% of the side, rotations up to 30 degrees, enhancement
factors 0.1-1.9, solarize thresholds 256 → 0 levels, posterize 8 → 4 bits, cutout up to 60% of the side,
sample pairing up to 0.4 of another image of the batch. Geometric operations take a random sign
per image (`generator`); the enhancement ones go both ways by their factor. PIL's definitions
(`ImageOps`, `ImageEnhance`) are the reference the tests check these against.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

Op = Callable[[torch.Tensor, torch.Tensor, torch.Generator | None], torch.Tensor]


def _sign(n: int, generator: torch.Generator | None) -> torch.Tensor:
    return torch.randint(0, 2, (n,), generator=generator).float() * 2 - 1


def _per_image(v: torch.Tensor) -> torch.Tensor:
    return v.view(-1, 1, 1, 1)


def affine(x: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
    """Resample x (B, C, H, W) at `matrix` (B, 2, 3) applied to each output pixel's (column,
    row) in pixels: output(p) = input(A p + t), nearest neighbour, zeros outside."""
    B, _, H, W = x.shape
    rows, cols = torch.meshgrid(torch.arange(H, dtype=x.dtype), torch.arange(W, dtype=x.dtype),
                                indexing="ij")  # fmt: skip
    points = torch.stack([cols, rows, torch.ones_like(cols)], -1).view(1, H * W, 3)  # (1, HW, 3)
    source = points @ matrix.transpose(1, 2)  # (B, HW, 2): (column, row) to read
    grid = torch.stack([(source[..., 0] * 2 + 1) / W - 1, (source[..., 1] * 2 + 1) / H - 1], -1)
    return F.grid_sample(x, grid.view(B, H, W, 2), mode="nearest", padding_mode="zeros",
                         align_corners=False)  # fmt: skip


def _matrix(a, b, c, d, tx, ty) -> torch.Tensor:
    return torch.stack([torch.stack([a, b, tx], -1), torch.stack([c, d, ty], -1)], 1)


def shear_x(x, m, generator=None):
    s = 0.3 * m * _sign(len(m), generator)
    one, zero = torch.ones_like(s), torch.zeros_like(s)
    return affine(x, _matrix(one, s, zero, one, zero, zero))  # reads column + s * row


def shear_y(x, m, generator=None):
    s = 0.3 * m * _sign(len(m), generator)
    one, zero = torch.ones_like(s), torch.zeros_like(s)
    return affine(x, _matrix(one, zero, s, one, zero, zero))


def translate_x(x, m, generator=None):
    t = torch.round(0.3 * x.shape[-1] * m) * _sign(len(m), generator)
    one, zero = torch.ones_like(t), torch.zeros_like(t)
    return affine(x, _matrix(one, zero, zero, one, t, zero))


def translate_y(x, m, generator=None):
    t = torch.round(0.3 * x.shape[-2] * m) * _sign(len(m), generator)
    one, zero = torch.ones_like(t), torch.zeros_like(t)
    return affine(x, _matrix(one, zero, zero, one, zero, t))


def rotate(x, m, generator=None):
    """Rotate about the image centre by up to 30 degrees."""
    angle = math.radians(30) * m * _sign(len(m), generator)
    return affine(x, _rotation(angle, torch.zeros_like(angle), torch.zeros_like(angle), x.shape))


def _rotation(angle, tx, ty, shape) -> torch.Tensor:
    """(B, 2, 3): rotate by `angle` about the image centre, then shift by (tx, ty) pixels:
    source = R (p - c) + c + t."""
    cos, sin = torch.cos(angle), torch.sin(angle)
    cx, cy = (shape[-1] - 1) / 2, (shape[-2] - 1) / 2
    return _matrix(
        cos, -sin, sin, cos, cx - cos * cx + sin * cy + tx, cy - sin * cx - cos * cy + ty
    )


def _blend(degenerate: torch.Tensor, x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """PIL's ImageEnhance: degenerate + factor * (x - degenerate), clipped to [0, 1]."""
    return (degenerate + _per_image(factor) * (x - degenerate)).clamp(0, 1)


def _factor(m: torch.Tensor, generator) -> torch.Tensor:
    return 1 + 0.9 * m * _sign(len(m), generator)  # 0.1 .. 1.9


def contrast(x, m, generator=None):
    mean = x.mean((1, 2, 3), keepdim=True).expand_as(x)
    return _blend(mean, x, _factor(m, generator))


def brightness(x, m, generator=None):
    return _blend(torch.zeros_like(x), x, _factor(m, generator))


def sharpness(x, m, generator=None):
    """Blend with PIL's SMOOTH filter (centre 5, the other eight 1, over 13); borders kept."""
    C = x.shape[1]
    kernel = torch.ones(C, 1, 3, 3, dtype=x.dtype)
    kernel[:, :, 1, 1] = 5
    smooth = x.clone()
    smooth[..., 1:-1, 1:-1] = F.conv2d(x, kernel / 13, groups=C)
    return _blend(smooth, x, _factor(m, generator))


def solarize(x, m, generator=None):
    """Invert the 8-bit levels at or above a threshold that falls from 256 (none) to 0 (all)."""
    threshold = _per_image(256 * (1 - m))
    return torch.where(torch.round(x * 255) >= threshold, 1 - x, x)


def posterize(x, m, generator=None):
    """Keep the top 8 → 4 bits of each 8-bit pixel."""
    bits = 8 - torch.round(4 * m)
    step = _per_image(2 ** (8 - bits))
    return torch.floor(torch.round(x * 255) / step) * step / 255


def invert(x, m=None, generator=None):
    return 1 - x


def autocontrast(x, m=None, generator=None):
    """Stretch each image's range to [0, 1] (a flat image is left alone)."""
    lo, hi = x.amin((2, 3), keepdim=True), x.amax((2, 3), keepdim=True)
    scale = torch.where(hi > lo, 1 / (hi - lo).clamp_min(1e-8), torch.ones_like(hi))
    return torch.where(hi > lo, (x - lo) * scale, x).clamp(0, 1)


def equalize(x, m=None, generator=None):
    """PIL's ImageOps.equalize on 8-bit levels, per image and channel: the cumulative histogram
    (without the last level's count) spread over 256 levels."""
    B, C, H, W = x.shape
    levels = torch.round(x * 255).long().view(B * C, H * W)  # (BC, HW)
    hist = torch.zeros(B * C, 256, dtype=torch.long).scatter_add_(
        1, levels, torch.ones_like(levels)
    )
    last = hist.gather(1, levels.max(1, keepdim=True).values)  # count of the top level present
    step = (H * W - last) // 255  # (BC, 1)
    lut = (torch.cumsum(hist, 1) - hist + step // 2) // step.clamp_min(1)  # (BC, 256)
    lut = lut.clamp(0, 255)
    out = lut.gather(1, levels).float() / 255
    return torch.where(step > 0, out, levels.float() / 255).view(B, C, H, W).to(x.dtype)


def cutout(x, m, generator=None):
    """Zero a square of side up to 60% of the image, centred at a random pixel (clipped)."""
    B, _, H, W = x.shape
    size = torch.round(0.6 * min(H, W) * m)  # (B,)
    cy = torch.randint(0, H, (B,), generator=generator)
    cx = torch.randint(0, W, (B,), generator=generator)
    rows, cols = torch.arange(H).view(1, H, 1), torch.arange(W).view(1, 1, W)
    y0, x0 = (cy - size // 2).view(B, 1, 1), (cx - size // 2).view(B, 1, 1)
    inside = (rows >= y0) & (rows < y0 + size.view(B, 1, 1)) & (cols >= x0)
    inside &= cols < x0 + size.view(B, 1, 1)
    return x.masked_fill(inside[:, None], 0.0)


def sample_pairing(x, m, generator=None):
    """Blend each image with another of the batch, up to 0.4 of it."""
    partner = x[torch.randperm(len(x), generator=generator)]
    w = _per_image(0.4 * m)
    return (1 - w) * x + w * partner


def standard(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """The hand-designed baseline: shift each image by up to 2 pixels each way and rotate it by
    up to 10 degrees about its centre (uniform draws per image)."""
    B = x.shape[0]
    angle = math.radians(10) * (2 * torch.rand(B, generator=generator) - 1)
    tx, ty = torch.randint(-2, 3, (2, B), generator=generator).to(x.dtype)
    return affine(x, _rotation(angle, tx, ty, x.shape))


OPS: dict[str, Op] = {
    "autocontrast": autocontrast, "equalize": equalize, "rotate": rotate, "posterize": posterize,
    "solarize": solarize, "contrast": contrast, "brightness": brightness, "sharpness": sharpness,
    "shear_x": shear_x, "shear_y": shear_y, "translate_x": translate_x,
    "translate_y": translate_y, "cutout": cutout, "sample_pairing": sample_pairing,
    "invert": invert,
}  # fmt: skip
