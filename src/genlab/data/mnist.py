"""MNIST from the original IDX .gz files: 60,000 train / 10,000 test, 28x28, 0 = background, 255 = ink.

Representations (all from one cached uint8 tensor; see `genlab.data.images.representation`):
- `uint8`: integers 0..255 for dequantized models;
- `float`: x / 255 in [0, 1];
- `binary_dynamic`: a fresh Bernoulli(x/255) draw every batch (training against overfitting);
- static binarization: one Bernoulli draw of a whole split with a fixed seed (a fixed test set,
  `genlab.data.images.static_binarization`).
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import torch

from genlab.data.cache import load_decoded
from genlab.data.resolve import RemoteFile, Source, resolve
from genlab.errors import DataError

SOURCE = Source(
    name="mnist",
    files=(
        RemoteFile(
            "train-images-idx3-ubyte.gz",
            ("sha256:440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",),
        ),
        RemoteFile(
            "train-labels-idx1-ubyte.gz",
            ("sha256:3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",),
        ),
        RemoteFile(
            "t10k-images-idx3-ubyte.gz",
            ("sha256:8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",),
        ),
        RemoteFile(
            "t10k-labels-idx1-ubyte.gz",
            ("sha256:f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",),
        ),
    ),
    base_urls=(
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://yann.lecun.com/exdb/mnist/",
    ),
)
SPLIT_SIZES = {"train": 60_000, "test": 10_000}


def read_idx(path: Path) -> np.ndarray:
    """Read a gzip IDX file (images: magic 2051, labels: 2049) into a uint8 array."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    magic = struct.unpack(">I", raw[:4])[0]
    if magic == 2051:
        n, rows, cols = struct.unpack(">III", raw[4:16])
        shape, offset = (n, rows, cols), 16
    elif magic == 2049:
        (n,) = struct.unpack(">I", raw[4:8])
        shape, offset = (n,), 8
    else:
        raise DataError(f"{path}: not an IDX file (magic {magic}, expected 2051 or 2049)")
    expected = offset + int(np.prod(shape))
    if len(raw) != expected:
        raise DataError(f"{path}: {len(raw)} bytes after gunzip, header says {expected}")
    return np.frombuffer(raw, np.uint8, offset=offset).reshape(shape)


def _decode(folder: Path) -> dict[str, torch.Tensor]:
    out = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        x = read_idx(folder / f"{prefix}-images-idx3-ubyte.gz")
        y = read_idx(folder / f"{prefix}-labels-idx1-ubyte.gz")
        if len(x) != SPLIT_SIZES[split] or len(y) != SPLIT_SIZES[split]:
            raise DataError(f"{folder}: MNIST {split} has {len(x)} images, {len(y)} labels")
        out[f"{split}_x"] = torch.from_numpy(x.copy())  # (N, 28, 28) uint8
        out[f"{split}_y"] = torch.from_numpy(y.astype(np.int64))  # (N,)
    return out


def load(split: str, data_dir: str | Path | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (images uint8 (N, 1, 28, 28), labels int64 (N,)) for split 'train' or 'test'."""
    if split not in SPLIT_SIZES:
        raise DataError(f"MNIST has splits 'train' and 'test', not '{split}'")
    data = load_decoded(SOURCE, resolve(SOURCE, data_dir), _decode)
    return data[f"{split}_x"].unsqueeze(1), data[f"{split}_y"]


def binarize(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Bernoulli(x / 255) draw of uint8 images; returns float32 of 0s and 1s, same shape."""
    return torch.bernoulli(x.float() / 255.0, generator=generator)
