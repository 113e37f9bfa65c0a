"""The neural Bayesian optimiser: GP draws with the RBF kernel's covariance, the observed-
improvement loss against a loop, the proposer's replay equal to its rollout, and the searchers
(BoTorch, Optuna, random) in the shape `genlab tune` relies on."""

from __future__ import annotations

import math

import pytest
import torch

from genlab.errors import ConfigError
from genlab.meta.neural_bo import (
    FourierGP,
    NeuralBOConfig,
    Proposer,
    fold,
    incumbent,
    mean_best,
    observed_improvement,
    rbf_kernel,
)
from genlab.meta.searchers import minimise, neural, searcher
from genlab.tasks.neural_bo import Benchmark, one


def test_gp_draws_have_the_rbf_kernels_covariance():
    torch.manual_seed(0)
    lengthscale, points = 0.3, torch.rand(5, 2)
    f = FourierGP.draw(4000, 2, torch.Generator().manual_seed(1), (lengthscale, lengthscale))
    values = f(points.expand(4000, 5, 2))  # (4000, 5): every function at the same points
    empirical = values.T @ values / 4000  # zero mean by construction
    want = rbf_kernel(points, points, torch.full((2,), lengthscale))
    assert (empirical - want).abs().max() < 0.08
    assert want[0, 1] < 0.95  # the points are apart: a wrong length scale would show


def test_observed_improvement_is_the_papers_sum_written_as_a_loop():
    ys = torch.randn(3, 12)
    want = torch.zeros(3)
    for i in range(3):
        for t in range(1, 12):
            want[i] += min(float(ys[i, t] - ys[i, :t].min()), 0.0)
    assert torch.allclose(observed_improvement(ys), want, atol=1e-6)
    assert torch.allclose(want, ys.min(1).values - ys[:, 0], atol=1e-6)  # it telescopes


def test_mean_best_is_the_running_minimum_averaged_as_a_loop():
    ys = torch.randn(3, 12)
    want = torch.tensor([sum(float(ys[i, : t + 1].min()) for t in range(12)) / 12
                         for i in range(3)])  # fmt: skip
    assert torch.allclose(mean_best(ys), want, atol=1e-6)


def test_fold_reflects_the_real_line_into_the_unit_interval():
    z = torch.tensor([-1.25, -0.25, 0.0, 0.3, 1.0, 1.2, 2.0, 3.7])
    assert torch.allclose(fold(z), torch.tensor([0.75, 0.25, 0.0, 0.3, 1.0, 0.8, 0.0, 0.3]))
    z = torch.linspace(-2.995, 2.995, 600, requires_grad=True)  # off the folds themselves
    fold(z).sum().backward()
    assert torch.allclose(z.grad.abs(), torch.ones(600))  # never saturates


def test_the_incumbent_is_the_running_best_of_a_loop():
    xs, ys = torch.rand(4, 9, 2), torch.randn(4, 9)
    best = None
    for t in range(9):
        best = incumbent(best, xs[:, t], ys[:, t])
        for i in range(4):
            j = int(ys[i, : t + 1].argmin())
            assert torch.equal(best[0][i], xs[i, j]) and best[1][i] == ys[i, j]


@pytest.mark.parametrize("inputs", ["last", "incumbent"])
def test_the_proposer_replayed_over_a_history_asks_what_its_rollout_asked(inputs):
    torch.manual_seed(0)
    model = Proposer(NeuralBOConfig(dim=3, hidden=16, inputs=inputs))
    f = FourierGP.draw(1, 3, torch.Generator().manual_seed(2))
    with torch.no_grad():
        xs, ys = model.rollout(f, 1, 6)
        for t in range(6):
            asked = neural(model, standardise=False)(xs[0, :t], ys[0, :t], 0)
            assert torch.allclose(asked, xs[0, t], atol=1e-6)


@pytest.mark.parametrize("loss, detach", [("oi", False), ("best", True)])
def test_the_meta_gradient_reaches_the_lstm_through_the_functions_values(loss, detach):
    torch.manual_seed(0)
    model = Proposer(NeuralBOConfig(dim=2, hidden=8, horizon=5, loss=loss, detach=detach))
    loss = model.loss(FourierGP.draw(16, 2, torch.Generator().manual_seed(3)))["loss"]
    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


@pytest.mark.parametrize("detach", [False, True])
def test_detach_cuts_the_meta_gradient_through_what_the_lstm_reads_back(detach):
    torch.manual_seed(0)
    model = Proposer(NeuralBOConfig(dim=2, hidden=8, inputs="incumbent", detach=detach))
    f = FourierGP.draw(3, 2, torch.Generator().manual_seed(5))
    shift = torch.zeros(1, requires_grad=True)
    _, ys = model.rollout(lambda x: f(x) + shift, 3, 6)  # y_t = f(x_t) + shift
    (grad,) = torch.autograd.grad(ys.sum(), shift)
    # detached, shift reaches the sum only as itself in each of the 18 values; otherwise also
    # through every later query the LSTM made from the values it read
    assert math.isclose(float(grad), 18.0, rel_tol=1e-6) is detach


def test_one_function_of_a_batch_is_that_row():
    f = FourierGP.draw(4, 2, torch.Generator().manual_seed(4))
    x = torch.rand(4, 2)
    assert all(math.isclose(one(f, i)(x[i]), float(f(x)[i]), rel_tol=1e-5) for i in range(4))


def test_branins_standardised_minimum_has_zero_regret():
    branin = Benchmark("branin")
    at_minimum = torch.tensor([[(math.pi + 5) / 15, 2.275 / 15]])  # (pi, 2.275) in its bounds
    assert abs(float(branin.regret(branin(at_minimum)))) < 1e-3
    assert (branin.regret(branin(torch.rand(64, 2))) >= 0).all()  # nowhere below the minimum


@pytest.mark.parametrize("name", ["botorch", "optuna", "random"])
def test_each_searcher_asks_inside_the_cube_and_repeats_under_its_seed(name):
    ask = searcher(name, 2)
    xs, ys = minimise(ask, lambda x: float((x - 0.3).pow(2).sum()), 2, 12, seed=5)
    assert xs.shape == (12, 2) and ((xs >= 0) & (xs <= 1)).all()
    assert torch.equal(ask(xs, ys, 7), ask(xs, ys, 7))
    if name == "botorch":  # a smooth bowl: expected improvement homes in where random does not
        assert ys.min() < 0.01


def test_bad_searchers_are_one_line_errors():
    with pytest.raises(ConfigError, match="must be one of"):
        searcher("grid", 2)
    with pytest.raises(ConfigError, match="--dim 3"):
        searcher("neural_bo", 3, Proposer(NeuralBOConfig(dim=2)))
    with pytest.raises(ConfigError, match="--inputs must be one of last, incumbent"):
        NeuralBOConfig(inputs="best")
    with pytest.raises(ConfigError, match="--loss must be one of oi, best"):
        NeuralBOConfig(loss="ei")
    with pytest.raises(ConfigError, match="min_lengthscale"):
        NeuralBOConfig(min_lengthscale=0.6, max_lengthscale=0.5)
