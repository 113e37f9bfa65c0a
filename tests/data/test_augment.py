"""Augmentation operations against PIL's definitions (ImageOps, ImageEnhance) and a naive
per-pixel loop for the geometric ones."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image, ImageEnhance, ImageOps

from genlab.data import augment


def images(n=4, size=12, seed=0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    levels = torch.randint(0, 256, (n, 1, size, size), generator=g)
    levels[0] = levels[0] // 3 + 40  # one image with a narrow range, for autocontrast/equalize
    return levels.float() / 255


def pil(x: torch.Tensor) -> list[Image.Image]:
    return [Image.fromarray(np.round(im[0].numpy() * 255).astype(np.uint8)) for im in x]


def levels(x: torch.Tensor) -> np.ndarray:
    return np.round(x[:, 0].numpy() * 255).astype(int)


def stack(ims: list[Image.Image]) -> np.ndarray:
    return np.stack([np.asarray(im, dtype=int) for im in ims])


@pytest.mark.parametrize(
    "name,reference,exact",
    [
        ("equalize", ImageOps.equalize, True),
        ("invert", ImageOps.invert, True),
        ("autocontrast", ImageOps.autocontrast, False),  # PIL truncates each level
    ],
)
def test_magnitude_free_operations_match_pil(name, reference, exact):
    x = images()
    ours = levels(augment.OPS[name](x, torch.zeros(len(x))))
    theirs = stack([reference(im) for im in pil(x)])
    if exact:
        assert np.array_equal(ours, theirs)
    else:
        assert np.abs(ours - theirs).max() <= 1


def test_solarize_and_posterize_match_pil():
    x = images()
    m = torch.full((len(x),), 0.5)  # threshold 0.5 (PIL: 128); 6 bits
    assert np.array_equal(levels(augment.solarize(x, m)),
                          stack([ImageOps.solarize(im, 128) for im in pil(x)]))  # fmt: skip
    assert np.array_equal(levels(augment.posterize(x, m)),
                          stack([ImageOps.posterize(im, 6) for im in pil(x)]))  # fmt: skip
    nothing = augment.solarize(x, torch.zeros(len(x)))
    assert torch.equal(nothing, x)


@pytest.mark.parametrize("name,enhancer", [("contrast", ImageEnhance.Contrast),
                                           ("brightness", ImageEnhance.Brightness),
                                           ("sharpness", ImageEnhance.Sharpness)])  # fmt: skip
def test_enhancements_match_pil_at_their_factor(name, enhancer):
    x = images()
    g = torch.Generator().manual_seed(3)
    m = torch.tensor([0.2, 0.5, 0.8, 1.0])
    factors = 1 + 0.9 * m * augment._sign(len(m), torch.Generator().manual_seed(3))
    ours = levels(augment.OPS[name](x, m, g))
    theirs = stack([enhancer(im).enhance(float(f)) for im, f in zip(pil(x), factors, strict=True)])
    assert np.abs(ours - theirs).max() <= 2  # PIL rounds its mean and each step to 8 bits


def naive_affine(x: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
    """out[r, c] = x[round(row'), round(col')] with (col', row') = A (c, r) + t; 0 outside."""
    B, C, H, W = x.shape
    out = torch.zeros_like(x)
    for b in range(B):
        for r in range(H):
            for c in range(W):
                sc, sr = (matrix[b] @ torch.tensor([c, r, 1.0])).tolist()
                # grid_sample's nearest rounds half to even: stay away from exact halves
                rr, cc = round(sr), round(sc)
                if 0 <= rr < H and 0 <= cc < W:
                    out[b, :, r, c] = x[b, :, rr, cc]
    return out


def test_affine_resampling_matches_a_naive_loop():
    x = images(n=3, size=9)
    angle = torch.tensor([0.3, -0.2, 0.0])
    cos, sin = torch.cos(angle), torch.sin(angle)
    matrix = augment._matrix(cos, -sin, sin, cos, torch.tensor([0.7, 0.0, 2.0]),
                             torch.tensor([0.0, -1.3, 0.0]))  # fmt: skip
    ours, naive = augment.affine(x, matrix), naive_affine(x, matrix)
    assert (ours != naive).float().mean() < 0.02  # rounding ties may differ, nothing else


def test_geometric_operations_move_pixels_as_their_magnitude_says():
    x = torch.zeros(2, 1, 10, 10)
    x[:, :, 4, 5] = 1.0  # one bright pixel
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    signs = augment._sign(2, g())
    moved = augment.translate_x(x, torch.full((2,), 1 / 3), g())  # 0.3 * 10 / 3 = 1 px
    for b in range(2):
        col = int(moved[b, 0, 4].argmax())
        assert col == 5 - int(signs[b])  # out(p) = in(p + t): content moves by -t
    y = images(n=2, size=10)
    turned = augment.rotate(y, torch.ones(2), g())
    angle = math.radians(30) * signs  # about the centre (4.5, 4.5): source = R (p - c) + c
    cos, sin = torch.cos(angle), torch.sin(angle)
    t = lambda u, v: 4.5 - u * 4.5 - v * 4.5  # noqa: E731
    matrix = augment._matrix(cos, -sin, sin, cos, t(cos, -sin), t(sin, cos))
    assert (turned != naive_affine(y, matrix)).float().mean() < 0.02
    assert torch.equal(augment.rotate(x, torch.zeros(2), g()), x)
    assert torch.equal(augment.shear_x(x, torch.zeros(2), g()), x)
    half = augment.rotate(torch.ones(1, 1, 9, 9), torch.ones(1))
    corners = half[0, 0, [0, 0, -1, -1], [0, -1, 0, -1]]
    assert corners.sum() < 4 and half[0, 0, 4, 4] == 1  # 30 degrees: corners leave, centre stays


def test_cutout_zeroes_a_square_of_the_magnitude_side():
    x = torch.ones(64, 1, 20, 20)
    out = augment.cutout(x, torch.full((64,), 0.5), torch.Generator().manual_seed(0))
    zeros = (out == 0).sum((1, 2, 3)).float()
    assert zeros.max() == 36 and zeros.min() > 0  # 6 x 6 when inside, clipped at the edges
    assert math.isclose(float(augment.cutout(x, torch.zeros(64)).mean()), 1.0)


def test_every_operation_keeps_shape_range_and_identity_at_zero_where_defined():
    x = images()
    for name, op in augment.OPS.items():
        out = op(x, torch.full((len(x),), 0.7), torch.Generator().manual_seed(1))
        assert out.shape == x.shape and out.min() >= 0 and out.max() <= 1, name
    for name in ("rotate", "shear_x", "shear_y", "translate_x", "translate_y", "contrast",
                 "brightness", "sharpness", "solarize", "posterize", "cutout",
                 "sample_pairing"):  # fmt: skip
        assert torch.allclose(augment.OPS[name](x, torch.zeros(len(x))), x, atol=1e-6), name
