"""Latent arithmetic helpers against their definitions."""

from __future__ import annotations

import torch

from genlab.nn.latent import (
    attribute_vector,
    lerp,
    lerp_at,
    pca_2d,
    plane,
    principal_axes,
    slerp,
    slerp_at,
)


def test_lerp_and_slerp_hit_both_ends():
    z0, z1 = torch.randn(6), torch.randn(6)
    for f in (lerp, slerp):
        path = f(z0, z1, 7)
        assert path.shape == (7, 6)
        assert torch.allclose(path[0], z0, atol=1e-5) and torch.allclose(path[-1], z1, atol=1e-5)


def test_slerp_moves_at_constant_angle_on_a_circle():
    z0, z1 = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    path = slerp(z0, z1, 5)
    assert torch.allclose(path.norm(dim=1), torch.ones(5), atol=1e-6)  # stays on the unit circle
    angles = torch.atan2(path[:, 1], path[:, 0])
    assert torch.allclose(angles, torch.linspace(0, torch.pi / 2, 5), atol=1e-6)


def test_attribute_vector_is_difference_of_class_means():
    z = torch.tensor([[0.0, 0.0], [2.0, 0.0], [0.0, 4.0], [0.0, 6.0]])
    y = torch.tensor([0, 0, 1, 1])
    assert torch.allclose(attribute_vector(z, y, 0, 1), torch.tensor([-1.0, 5.0]))


def test_pca_finds_the_spread_direction():
    torch.manual_seed(0)
    z = torch.randn(500, 5) * torch.tensor([10.0, 0.1, 0.1, 5.0, 0.1])
    p = pca_2d(z)
    assert p.shape == (500, 2)
    assert p[:, 0].var() > p[:, 1].var() > 10  # the two wide directions survive
    assert torch.equal(pca_2d(z[:, :2]), z[:, :2])  # a 2-d latent is shown as is


def test_interpolation_at_any_fraction_matches_the_evenly_spaced_path():
    z0, z1 = torch.randn(5), torch.randn(5)
    t = torch.tensor([0.0, 0.25, 1.0])
    assert torch.allclose(lerp_at(z0, z1, t), lerp(z0, z1, 5)[[0, 1, 4]], atol=1e-6)
    assert torch.allclose(slerp_at(z0, z1, t), slerp(z0, z1, 5)[[0, 1, 4]], atol=1e-6)
    assert torch.allclose(lerp_at(z0, z1, torch.tensor([0.3]))[0], 0.7 * z0 + 0.3 * z1)


def test_plane_grid_points_against_a_loop():
    center, basis = torch.randn(4), torch.randn(2, 4)
    xs, ys = torch.tensor([-1.0, 0.0, 2.0]), torch.tensor([0.5, -0.5])
    grid = plane(center, basis, xs, ys)
    assert grid.shape == (2, 3, 4)
    for i, y in enumerate(ys):
        for j, x in enumerate(xs):
            assert torch.allclose(grid[i, j], center + x * basis[0] + y * basis[1])


def test_principal_axes_are_the_spread_directions_scaled_by_their_spread():
    torch.manual_seed(0)
    z = torch.randn(4000, 3) * torch.tensor([3.0, 0.1, 1.0])
    axes = principal_axes(z)
    assert torch.allclose(axes.abs(), torch.tensor([[3.0, 0, 0], [0, 0, 1.0]]), atol=0.1)
