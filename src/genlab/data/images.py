"""28x28 single-channel image datasets as uint8 tensors, and how models see them.

`image_splits('mnist' | 'omniglot')` gives train/test images (N, 1, 28, 28) uint8 and labels.
For Omniglot, train = the background set, test = the evaluation set, label = alphabet id.
`representation(kind)` turns a uint8 batch into what a model trains on.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from genlab.data import mnist, omniglot
from genlab.data.batches import Transform
from genlab.errors import DataError

IMAGE_DATASETS = ("mnist", "omniglot")
REPRESENTATIONS = ("binary_dynamic", "float", "uint8", "dequantized")


@dataclass(frozen=True)
class ImageSplits:
    train_x: torch.Tensor  # (N, 1, 28, 28) uint8, 0 = background, 255 = ink
    train_y: torch.Tensor  # (N,) int64
    test_x: torch.Tensor
    test_y: torch.Tensor
    label_names: tuple[str, ...]


def image_splits(name: str, data_dir: str | Path | None = None) -> ImageSplits:
    if name == "mnist":
        tx, ty = mnist.load("train", data_dir)
        vx, vy = mnist.load("test", data_dir)
        return ImageSplits(tx, ty, vx, vy, tuple(str(d) for d in range(10)))
    if name == "omniglot":
        d = omniglot.load(data_dir)
        bg = d["background"]
        x = d["images"].unsqueeze(1)
        return ImageSplits(
            x[bg], d["alphabet"][bg], x[~bg], d["alphabet"][~bg], tuple(d["alphabet_names"])
        )
    raise DataError(f"unknown image dataset '{name}'; choose from {', '.join(IMAGE_DATASETS)}")


def random_shift(x: torch.Tensor, max_shift: int, g: torch.Generator) -> torch.Tensor:
    """Translate each image by its own random (dy, dx) in [-max_shift, max_shift], zero-filled.

    x: (B, C, H, W) -> (B, C, H, W); one gather for the whole batch, no per-image Python loop.
    """
    if max_shift == 0:
        return x
    b, c, h, w = x.shape
    s = max_shift
    padded = torch.nn.functional.pad(x, (s, s, s, s))  # (B, C, H + 2s, W + 2s)
    dy, dx = torch.randint(0, 2 * s + 1, (2, b, 1), generator=g)  # offsets into the padding
    rows = (torch.arange(h) + dy)[:, None, :, None]  # (B, 1, H, 1)
    cols = (torch.arange(w) + dx)[:, None, None, :]  # (B, 1, 1, W)
    return padded[
        torch.arange(b)[:, None, None, None], torch.arange(c)[None, :, None, None], rows, cols
    ]


def representation(kind: str, max_shift: int = 0) -> Transform:
    """Batch transform on {"x": uint8, ...}: dynamic binarization, [0, 1] floats, raw uint8, or
    uniformly dequantized [0, 1) floats, after an optional random translation of up to
    `max_shift` pixels (training augmentation)."""
    if kind not in REPRESENTATIONS:
        raise ValueError(f"unknown representation '{kind}'; choose from {REPRESENTATIONS}")

    def transform(batch: dict[str, torch.Tensor], g: torch.Generator) -> dict[str, torch.Tensor]:
        x = random_shift(batch["x"], max_shift, g)
        if kind == "binary_dynamic":
            x = mnist.binarize(x, g)
        elif kind == "float":
            x = x.float() / 255.0
        elif kind == "dequantized":
            x = dequantize(x, g)
        return {**batch, "x": x}

    return transform


def dequantize(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """uint8 images -> (x + u) / 256 in [0, 1), u ~ U[0, 1) per pixel: the uniform dequantization
    that density models of 8-bit data train on (see metrics.likelihood.dequantized_log_prob)."""
    return (x.float() + torch.rand(x.shape, generator=g)) / 256.0


def static_binarization(x: torch.Tensor, seed: int) -> torch.Tensor:
    """One fixed Bernoulli(x/255) draw of a whole split (a standard fixed test set)."""
    return mnist.binarize(x, torch.Generator().manual_seed(seed))
