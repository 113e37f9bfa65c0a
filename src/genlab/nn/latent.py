"""Latent-space arithmetic as small pure functions (shapes in comments)."""

from __future__ import annotations

import torch


def lerp(z0: torch.Tensor, z1: torch.Tensor, steps: int) -> torch.Tensor:
    """(Z,), (Z,) -> (steps, Z): points on the straight line from z0 to z1, both ends included."""
    t = torch.linspace(0.0, 1.0, steps).unsqueeze(1)
    return (1 - t) * z0 + t * z1


def slerp(z0: torch.Tensor, z1: torch.Tensor, steps: int) -> torch.Tensor:
    """(Z,), (Z,) -> (steps, Z): spherical interpolation (White 2016), along the great circle
    between the directions while the norm moves linearly; falls back to lerp for parallel vectors."""
    t = torch.linspace(0.0, 1.0, steps).unsqueeze(1)
    n0, n1 = z0.norm(), z1.norm()
    cos = torch.clamp(torch.dot(z0, z1) / (n0 * n1 + 1e-12), -1.0, 1.0)
    omega = torch.arccos(cos)
    if omega.abs() < 1e-4:
        return lerp(z0, z1, steps)
    u0, u1 = z0 / n0, z1 / n1
    direction = (torch.sin((1 - t) * omega) * u0 + torch.sin(t * omega) * u1) / torch.sin(omega)
    return direction * ((1 - t) * n0 + t * n1)


def attribute_vector(z: torch.Tensor, labels: torch.Tensor, src: int, dst: int) -> torch.Tensor:
    """(N, Z), (N,) -> (Z,): mean latent of class `dst` minus mean latent of class `src`."""
    for c in (src, dst):
        if not (labels == c).any():
            raise ValueError(f"no example of class {c} to build an attribute vector from")
    return z[labels == dst].mean(0) - z[labels == src].mean(0)


def pca_2d(z: torch.Tensor) -> torch.Tensor:
    """(N, Z) -> (N, 2): projection on the two leading principal components (identity if Z == 2)."""
    if z.shape[1] == 2:
        return z
    centered = z - z.mean(0)
    _, _, v = torch.linalg.svd(centered, full_matrices=False)
    return centered @ v[:2].T
