"""Contrastive predictive coding's pieces (van den Oord et al. 2018; Hénaff et al. 2019) as pure
functions: cutting images into overlapping patches, and the InfoNCE loss.

InfoNCE: given a prediction p_i and a set of candidate codes {z_j}, one of which (j = t_i) is the
true target, the loss is the cross-entropy of picking it,

    L_i = -log( exp(p_i . z_{t_i}) / sum_j exp(p_i . z_j) ),

a lower bound's estimator of the mutual information between context and target: I >= log M - L
for M candidates.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def grid_side(size: int, patch: int, stride: int) -> int:
    """How many patches fit along a side of `size` pixels."""
    if patch > size or patch < 1 or stride < 1 or (size - patch) % stride:
        raise ValueError(f"patches of {patch} at stride {stride} do not tile {size} pixels "
                         f"((size - patch) must be a multiple of the stride)")  # fmt: skip
    return (size - patch) // stride + 1


def image_patches(x: torch.Tensor, patch: int, stride: int) -> torch.Tensor:
    """(B, C, H, W) -> (B, R, S, C, patch, patch): the overlapping patches of each image, R rows
    by S columns, patch (r, s) starting at pixel (r * stride, s * stride)."""
    b, c, h, w = x.shape
    r, s = grid_side(h, patch, stride), grid_side(w, patch, stride)
    tiles = x.unfold(2, patch, stride).unfold(3, patch, stride)  # (B, C, R, S, patch, patch)
    assert tiles.shape[2:4] == (r, s)
    return tiles.permute(0, 2, 3, 1, 4, 5)


def info_nce(
    predictions: torch.Tensor, candidates: torch.Tensor, targets: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, D) predictions, (M, D) candidate codes, (N,) index of each prediction's true code ->
    ((N,) loss in nats, (N,) bool: the true code scored highest). Scores are dot products,
    computed in float32."""
    if predictions.shape[-1] != candidates.shape[-1] or targets.shape != predictions.shape[:1]:
        raise ValueError(f"predictions {tuple(predictions.shape)}, candidates "
                         f"{tuple(candidates.shape)} and targets {tuple(targets.shape)} "
                         "do not match")  # fmt: skip
    logits = predictions.float() @ candidates.float().T  # (N, M)
    loss = F.cross_entropy(logits, targets, reduction="none")
    return loss, logits.argmax(1) == targets


def info_nce_over_offsets(
    predicted: dict[int, tuple[torch.Tensor, torch.Tensor]], candidates: torch.Tensor
) -> dict[str, torch.Tensor]:
    """CPC's objective: {k: ((N_k, D) predictions k steps ahead, (N_k,) their true codes' rows
    in candidates)}, (M, D) candidates -> {"loss": the mean over k of each offset's mean
    InfoNCE, "acc_k": how often the true code scored highest at offset k}."""
    metrics, total = {}, 0.0
    for k, (pred, targets) in predicted.items():
        loss, right = info_nce(pred, candidates, targets)
        total = total + loss.mean()
        metrics[f"acc_{k}"] = right.float().mean()
    return {"loss": total / len(predicted), **metrics}
