import pytest
import torch

from genlab.metrics.probe import fit_logistic, fit_mlp, probe_accuracy, stratified_draw


def test_draws_are_stratified_reproducible_and_differ_by_seed():
    labels = torch.arange(10).repeat(30)[
        torch.randperm(300, generator=torch.Generator().manual_seed(1))
    ]
    a = stratified_draw(labels, 3, seed=5)
    assert torch.equal(a, stratified_draw(labels, 3, seed=5))
    assert not torch.equal(a, stratified_draw(labels, 3, seed=6))
    assert torch.equal(labels[a].bincount(), torch.full((10,), 3))
    assert len(a.unique()) == 30


def test_a_class_with_too_few_examples_is_refused():
    with pytest.raises(ValueError, match="class 1 has 2 examples"):
        stratified_draw(torch.tensor([0, 0, 0, 1, 1]), 3, seed=0)


def test_unpenalised_fit_on_a_categorical_feature_gives_the_empirical_frequencies():
    # With one-hot features and a bias, maximum likelihood makes p(y | x) equal the observed
    # class frequencies among the examples with that x (the closed-form solution).
    counts = torch.tensor([[5, 1, 2], [1, 4, 3], [2, 2, 6]])  # counts[x, y]
    xs, ys = [], []
    for x in range(3):
        for y in range(3):
            xs += [x] * int(counts[x, y])
            ys += [y] * int(counts[x, y])
    features = torch.nn.functional.one_hot(torch.tensor(xs), 3).double()
    w, b = fit_logistic(features, torch.tensor(ys), 3, l2=0.0, max_iter=500, dtype=torch.float64)
    p = torch.softmax(torch.eye(3, dtype=torch.float64) @ w + b, 1)
    expected = counts.double() / counts.sum(1, keepdim=True)
    assert torch.allclose(p, expected, atol=1e-5)


def test_penalty_shrinks_the_weights():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(40, 5, generator=g), torch.randint(0, 2, (40,), generator=g)
    loose, _ = fit_logistic(x, y, 2, l2=1e-4)
    tight, _ = fit_logistic(x, y, 2, l2=10.0)
    assert tight.norm() < 0.2 * loose.norm()


def test_probe_separates_well_separated_classes_and_ignores_scale():
    g = torch.Generator().manual_seed(0)
    centres = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    y = torch.arange(3).repeat(20)
    x = centres[y] + torch.randn(60, 2, generator=g)
    x = torch.cat([x, 1e6 * torch.ones(60, 1)], 1)  # a constant column is harmless
    assert probe_accuracy(x[:30] * 1e3, y[:30], x[30:] * 1e3, y[30:], 3, 1e-2) == 1.0


def rings(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Two concentric rings in 2-D: no line separates them."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(2).repeat(n // 2)
    angle = 2 * torch.pi * torch.rand(n, generator=g)
    radius = 1.0 + 2.0 * y + 0.2 * torch.randn(n, generator=g)
    return torch.stack([radius * angle.cos(), radius * angle.sin()], 1), y


def test_the_mlp_probe_separates_what_the_linear_probe_cannot():
    x, y = rings(400, seed=0)
    tx, ty = rings(400, seed=1)
    linear = probe_accuracy(x, y, tx, ty, 2, 1e-3, head="linear")
    mlp = probe_accuracy(x, y, tx, ty, 2, 1e-3, head="mlp")
    assert linear < 0.7 and mlp > 0.97


def test_the_mlp_probe_is_reproducible_from_its_seed():
    x, y = rings(100, seed=0)
    a, b, c = (fit_mlp(x, y, 2, 1e-2, hidden=16, max_iter=20, seed=s)(x) for s in (3, 3, 4))
    assert torch.equal(a, b) and not torch.equal(a, c)
