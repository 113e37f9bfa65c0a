"""Does a reconstruction keep a small object (Pong's ball, a paddle), and do the latents say
where it is? Pure functions on tensors; positions are [x, y] in the image's pixel coordinates.

- `kept`: the reconstruction has an "on" pixel (> 0.5) within `radius` pixels (a square
  window) of the object's true position.
- `false_alarms`: the same test where the true frame has nothing, so that a reconstruction
  that lights every pixel cannot score.
- `probe_r2`: how much of the position's variance a linear map from the latents explains on
  frames it was not fitted on (k contiguous folds, ridge regression).
"""

from __future__ import annotations

import torch


def windows(images: torch.Tensor, centres: torch.Tensor, radius: int) -> torch.Tensor:
    """images (N, H, W), centres (N, 2) [x, y] (finite) -> (N, 2r+1, 2r+1): the square around
    each rounded centre; pixels outside the image read 0."""
    r, p = radius, radius + 1  # a border of zeros at least one wider than the window
    padded = torch.nn.functional.pad(images, (p, p, p, p))  # (N, H + 2p, W + 2p)
    x, y = (centres.round().long() + p - r).unbind(-1)  # each window's first column and row
    offsets = torch.arange(2 * r + 1)
    H, W = padded.shape[1:]
    rows = (y[:, None] + offsets).clamp(0, H - 1)[:, :, None]  # (N, 2r+1, 1); off the image:
    cols = (x[:, None] + offsets).clamp(0, W - 1)[:, None, :]  # (N, 1, 2r+1)   the zero border
    return padded[torch.arange(len(images))[:, None, None], rows, cols]


def kept(recon: torch.Tensor, centres: torch.Tensor, radius: int = 2) -> torch.Tensor:
    """recon (N, H, W) in [0, 1], centres (N, 2) -> (N,) bool: an on pixel (> 0.5) within
    `radius` of the centre."""
    return (windows(recon, centres, radius) > 0.5).flatten(1).any(1)


def mirrored(centres: torch.Tensor, size: int) -> torch.Tensor:
    """Each position reflected through the image's centre: [x, y] -> [S-1-x, S-1-y] (N, 2)."""
    return (size - 1) - centres


def false_alarms(
    recon: torch.Tensor, truth: torch.Tensor, centres: torch.Tensor, radius: int = 2
) -> tuple[int, int]:
    """At each position reflected through the centre, on frames whose true window is empty:
    (how many reconstructions have an on pixel there, how many such frames)."""
    spots = mirrored(centres, truth.shape[-1])
    empty = ~kept(truth, spots, radius)
    return int(kept(recon[empty], spots[empty], radius).sum()), int(empty.sum())


def probe_r2(features: torch.Tensor, targets: torch.Tensor, folds: int = 5,
             ridge: float = 1e-3) -> float:  # fmt: skip
    """features (N, D), targets (N, T) -> the out-of-fold R^2, 1 - SSE / SST pooled over the
    targets' columns, of a ridge regression with an intercept (features standardised on each
    training fold; the penalty `ridge` * N_train on the weights, not the intercept). Folds are
    contiguous blocks, so frames of one episode stay together where episodes are in order."""
    n = len(features)
    if n < 2 * folds:
        raise ValueError(f"{n} examples are too few for {folds} folds")
    f, t = features.double(), targets.double()
    predicted = torch.empty_like(t)
    for test in torch.arange(n).tensor_split(folds):
        train = torch.ones(n, dtype=torch.bool)
        train[test] = False
        mean, std = f[train].mean(0), f[train].std(0).clamp(min=1e-8)
        a = (f[train] - mean) / std  # (n_train, D)
        b = t[train] - t[train].mean(0)
        w = torch.linalg.solve(a.T @ a + ridge * len(a) * torch.eye(a.shape[1]), a.T @ b)
        predicted[test] = ((f[test] - mean) / std) @ w + t[train].mean(0)
    sse = ((predicted - t) ** 2).sum()
    sst = ((t - t.mean(0)) ** 2).sum()
    return float(1 - sse / sst)
