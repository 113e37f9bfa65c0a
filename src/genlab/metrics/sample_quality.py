"""Sample-quality metrics on feature vectors: FID, k-NN precision/recall, class coverage.

genlab cannot download Inception weights, so features come from genlab's own MNIST classifier
(`genlab.metrics.features`). Numbers are therefore "FID on genlab MNIST features": comparable
across genlab models, not with Inception FID in papers.
"""

from __future__ import annotations

import math

import torch


def gaussian_stats(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, D) -> mean (D,), unbiased covariance (D, D), in float64."""
    f = features.double()
    return f.mean(0), torch.cov(f.T)


def frechet_distance(
    mu1: torch.Tensor, cov1: torch.Tensor, mu2: torch.Tensor, cov2: torch.Tensor
) -> float:
    """Squared Fréchet (2-Wasserstein) distance between N(mu1, cov1) and N(mu2, cov2):

        |mu1 - mu2|^2 + Tr(cov1 + cov2 - 2 (cov1 cov2)^{1/2}).

    Tr (cov1 cov2)^{1/2} is the sum of square roots of the eigenvalues of the symmetric PSD matrix
    cov1^{1/2} cov2 cov1^{1/2}, which has the same spectrum and is numerically tamer.
    """
    evals, evecs = torch.linalg.eigh(cov1)
    sqrt1 = evecs @ torch.diag(evals.clamp_min(0).sqrt()) @ evecs.T
    middle = sqrt1 @ cov2 @ sqrt1
    tr_sqrt = torch.linalg.eigvalsh((middle + middle.T) / 2).clamp_min(0).sqrt().sum()
    d = (mu1 - mu2).square().sum() + torch.trace(cov1) + torch.trace(cov2) - 2 * tr_sqrt
    return float(d.clamp_min(0))


def fid(features_a: torch.Tensor, features_b: torch.Tensor) -> float:
    """FID between two feature sets (N, D) and (M, D)."""
    return frechet_distance(*gaussian_stats(features_a), *gaussian_stats(features_b))


def knn_radii(x: torch.Tensor, k: int, chunk: int = 2048) -> torch.Tensor:
    """(N, D) -> (N,): distance from each point to its k-th nearest neighbour in x (self excluded)."""
    out = []
    for start in range(0, x.shape[0], chunk):
        d = torch.cdist(x[start : start + chunk], x)  # (c, N)
        out.append(d.kthvalue(k + 1, dim=1).values)  # the 1st smallest is the point itself (0)
    return torch.cat(out)


def coverage_by_balls(
    centers: torch.Tensor, radii: torch.Tensor, queries: torch.Tensor, chunk: int = 2048
) -> torch.Tensor:
    """(N, D), (N,), (M, D) -> (M,) bool: is each query inside at least one ball."""
    inside = []
    for start in range(0, queries.shape[0], chunk):
        d = torch.cdist(queries[start : start + chunk], centers)  # (c, N)
        inside.append((d <= radii.unsqueeze(0)).any(1))
    return torch.cat(inside)


def precision_recall(real: torch.Tensor, fake: torch.Tensor, k: int = 3) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019) with k-NN manifold estimates.

    precision: fraction of fake points inside the real manifold (union of balls around real
    points reaching their k-th neighbour); recall: fraction of real points inside the fake one.
    """
    real, fake = real.float(), fake.float()
    precision = coverage_by_balls(real, knn_radii(real, k), fake).float().mean().item()
    recall = coverage_by_balls(fake, knn_radii(fake, k), real).float().mean().item()
    return precision, recall


def class_coverage(predicted: torch.Tensor, n_classes: int) -> dict[str, float]:
    """Mode coverage from predicted classes (N,) of generated samples.

    class_kl: KL(p || uniform) in nats of the predicted-class histogram p (0 = perfectly even,
    log(n_classes) = a single class); classes_below_half: classes with p_c < 1 / (2 n_classes).
    """
    p = torch.bincount(predicted, minlength=n_classes).double() / predicted.numel()
    nz = p > 0
    kl = float((p[nz] * (p[nz] * n_classes).log()).sum())
    return {
        "class_kl": kl,
        "classes_below_half": int((p < 0.5 / n_classes).sum()),
        "max_class_kl": math.log(n_classes),
    }
