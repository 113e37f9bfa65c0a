"""Sample-quality metrics against naive references and closed forms."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from genlab.metrics.sample_quality import (
    class_coverage,
    fid,
    frechet_distance,
    knn_radii,
    precision_recall,
)


def test_frechet_distance_of_diagonal_gaussians_has_closed_form():
    mu1, mu2 = torch.tensor([0.0, 1.0, 2.0]).double(), torch.tensor([1.0, 1.0, 0.0]).double()
    a, b = torch.tensor([1.0, 4.0, 0.25]).double(), torch.tensor([9.0, 1.0, 0.25]).double()
    expected = (mu1 - mu2).square().sum() + (a.sqrt() - b.sqrt()).square().sum()
    assert frechet_distance(mu1, torch.diag(a), mu2, torch.diag(b)) == pytest.approx(
        float(expected)
    )


def test_frechet_distance_matches_eigenvalues_of_the_product():
    torch.manual_seed(0)
    m1, m2 = torch.randn(6, 6).double(), torch.randn(6, 6).double()
    c1, c2 = m1 @ m1.T + 0.1 * torch.eye(6), m2 @ m2.T + 0.1 * torch.eye(6)
    mu1, mu2 = torch.randn(6).double(), torch.randn(6).double()
    # Naive: Tr sqrt(c1 c2) = sum sqrt(eigenvalues of the non-symmetric product c1 @ c2).
    eig = np.linalg.eigvals((c1 @ c2).numpy()).real
    naive = float((mu1 - mu2).square().sum() + c1.trace() + c2.trace() - 2 * np.sqrt(eig).sum())
    assert frechet_distance(mu1, c1, mu2, c2) == pytest.approx(naive, rel=1e-8)
    assert frechet_distance(mu1, c1, mu1, c1) == pytest.approx(0.0, abs=1e-8)


def test_fid_grows_with_the_shift():
    torch.manual_seed(0)
    x = torch.randn(2000, 8)
    values = [fid(x, torch.randn(2000, 8) + s) for s in (0.0, 0.5, 1.0, 2.0)]
    assert values == sorted(values) and values[0] < 0.1
    assert values[-1] == pytest.approx(8 * 4.0, rel=0.1)  # |shift|^2 summed over 8 dims


def test_knn_radii_match_a_loop():
    torch.manual_seed(0)
    x = torch.randn(30, 3)
    for k in (1, 3):
        naive = []
        for i in range(30):
            d = sorted(float((x[i] - x[j]).norm()) for j in range(30) if j != i)
            naive.append(d[k - 1])
        assert torch.allclose(knn_radii(x, k, chunk=7), torch.tensor(naive), atol=1e-5)


def test_precision_recall_match_a_loop_and_behave():
    torch.manual_seed(0)
    real, fake = torch.randn(40, 2), torch.randn(30, 2) * 0.5 + 1.0
    r_real, r_fake = knn_radii(real, 3), knn_radii(fake, 3)
    naive_p = (
        sum(any((f - r).norm() <= rr for r, rr in zip(real, r_real, strict=True)) for f in fake)
        / 30
    )
    naive_r = (
        sum(any((r - f).norm() <= rf for f, rf in zip(fake, r_fake, strict=True)) for r in real)
        / 40
    )
    p, r = precision_recall(real, fake, k=3)
    assert (p, r) == (pytest.approx(float(naive_p)), pytest.approx(float(naive_r)))
    same = precision_recall(real, torch.randn(40, 2), k=3)
    assert same[0] > 0.8 and same[1] > 0.8
    collapsed = precision_recall(real, torch.zeros(30, 2) + 0.01 * torch.randn(30, 2), k=3)
    assert collapsed[0] > 0.9 and collapsed[1] < 0.2  # precise but no recall: mode collapse


def test_class_coverage_even_and_collapsed():
    even = class_coverage(torch.arange(1000) % 10, 10)
    assert even["class_kl"] == pytest.approx(0.0, abs=1e-12) and even["classes_below_half"] == 0
    single = class_coverage(torch.full((100,), 3), 10)
    assert single["class_kl"] == pytest.approx(math.log(10)) and single["classes_below_half"] == 9
