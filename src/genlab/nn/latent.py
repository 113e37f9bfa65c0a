"""Latent-space arithmetic as small pure functions (shapes in comments)."""

from __future__ import annotations

import torch


def lerp_at(z0: torch.Tensor, z1: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """(Z,), (Z,), (S,) -> (S, Z): the points a fraction t of the straight way from z0 to z1."""
    t = t.to(z0.dtype).unsqueeze(1)  # (S, 1)
    return (1 - t) * z0 + t * z1


def slerp_at(z0: torch.Tensor, z1: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """(Z,), (Z,), (S,) -> (S, Z): spherical interpolation (White 2016), along the great circle
    between the directions while the norm moves linearly; falls back to lerp for parallel vectors."""
    n0, n1 = z0.norm(), z1.norm()
    cos = torch.clamp(torch.dot(z0, z1) / (n0 * n1 + 1e-12), -1.0, 1.0)
    omega = torch.arccos(cos)
    if omega.abs() < 1e-4:
        return lerp_at(z0, z1, t)
    t = t.to(z0.dtype).unsqueeze(1)  # (S, 1)
    u0, u1 = z0 / n0, z1 / n1
    direction = (torch.sin((1 - t) * omega) * u0 + torch.sin(t * omega) * u1) / torch.sin(omega)
    return direction * ((1 - t) * n0 + t * n1)


def lerp(z0: torch.Tensor, z1: torch.Tensor, steps: int) -> torch.Tensor:
    """(Z,), (Z,) -> (steps, Z): points on the straight line from z0 to z1, both ends included."""
    return lerp_at(z0, z1, torch.linspace(0.0, 1.0, steps))


def slerp(z0: torch.Tensor, z1: torch.Tensor, steps: int) -> torch.Tensor:
    """(Z,), (Z,) -> (steps, Z): `slerp_at` at `steps` evenly spaced fractions, ends included."""
    return slerp_at(z0, z1, torch.linspace(0.0, 1.0, steps))


def plane(center: torch.Tensor, basis: torch.Tensor, xs: torch.Tensor, ys: torch.Tensor):
    """(Z,), (2, Z), (W,), (H,) -> (H, W, Z): the points center + x * basis[0] + y * basis[1]
    of a grid over a 2-D plane through latent space (row i at ys[i], column j at xs[j])."""
    return center + xs.view(1, -1, 1) * basis[0] + ys.view(-1, 1, 1) * basis[1]


def principal_axes(z: torch.Tensor) -> torch.Tensor:
    """(N, Z) -> (2, Z): the two leading principal directions, each scaled to one standard
    deviation of the codes along it (so a step of 1 is a typical distance)."""
    spread = (z - z.mean(0)) @ unit_principal_axes(z).T  # (N, 2)
    return unit_principal_axes(z) * spread.std(0).unsqueeze(1)


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
    return (z - z.mean(0)) @ unit_principal_axes(z).T


def unit_principal_axes(z: torch.Tensor) -> torch.Tensor:
    """(N, Z) -> (2, Z): the two leading principal directions (unit vectors)."""
    _, _, v = torch.linalg.svd(z - z.mean(0), full_matrices=False)
    return v[:2]
