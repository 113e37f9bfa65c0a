"""The learned optimizer's parts against naive references: the gradient preprocessing, the
baselines' update rules against torch.optim, the problems' losses against plain modules, and the
meta-gradient through an unroll against finite differences (gradcheck)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from genlab.meta.l2l import (
    CHUNK,
    RULES,
    L2LConfig,
    LSTMOptimizer,
    gradient,
    meta_objective,
    preprocess,
    rule_curve,
    unroll,
)
from genlab.meta.optimizees import MLPProblems, MLPShape, Quadratics


def test_preprocessing_is_the_papers_formula_coordinate_by_coordinate():
    g = torch.tensor([3.0, -0.5, 1e-3, -2e-5, 4e-5, 0.0, -1e-9])
    p = 10.0
    want = []
    for v in g.tolist():
        if abs(v) >= math.exp(-p):
            want.append([math.log(abs(v)) / p, math.copysign(1.0, v)])
        else:
            want.append([-1.0, math.exp(p) * v])
    assert torch.allclose(preprocess(g, p), torch.tensor(want), atol=1e-6)


TORCH = {
    "sgd": lambda w, lr: torch.optim.SGD(w, lr),
    "nag": lambda w, lr: torch.optim.SGD(w, lr, momentum=0.9, nesterov=True),
    "rmsprop": lambda w, lr: torch.optim.RMSprop(w, lr, alpha=0.99, eps=1e-8),
    "adam": lambda w, lr: torch.optim.Adam(w, lr),
}


@pytest.mark.parametrize("name", list(RULES))
def test_each_baseline_rule_steps_as_torch_optim_does(name):
    torch.manual_seed(0)
    theta0 = torch.randn(3, 5, dtype=torch.float64)
    grads = [torch.randn(3, 5, dtype=torch.float64) for _ in range(5)]
    w = nn.Parameter(theta0.clone())
    opt = TORCH[name]([w], 0.03)
    theta, state = theta0.clone(), {}
    for g in grads:
        w.grad = g.clone()
        opt.step()
        theta, state = RULES[name](theta, g, state, 0.03)
    assert torch.allclose(theta, w.detach(), atol=1e-12)
    assert not torch.allclose(theta, theta0)


def test_quadratic_loss_is_the_squared_residual_of_each_problem():
    problems = Quadratics.draw(4, torch.Generator().manual_seed(0))
    theta = torch.randn(4, 10)
    want = torch.stack([(problems.W[i] @ theta[i] - problems.y[i]).pow(2).sum() for i in range(4)])
    assert torch.allclose(problems.loss(theta, 7), want, rtol=1e-5)


@pytest.mark.parametrize("shape", [MLPShape(), MLPShape((6, 5), "relu")])
def test_mlp_problem_loss_is_the_mlp_it_describes_on_its_own_minibatch(shape):
    g = torch.Generator().manual_seed(0)
    images, labels = torch.rand(300, 784, generator=g), torch.randint(10, (300,), generator=g)
    problems = MLPProblems.draw(3, g, images, labels, steps=4, shape=shape)
    assert problems.theta0.shape == (3, shape.size)
    act = nn.Sigmoid() if shape.activation == "sigmoid" else nn.ReLU()
    for i in range(3):
        layers, start = [], 0
        for fan_in, fan_out in shape.layers:
            lin = nn.Linear(fan_in, fan_out)
            with torch.no_grad():
                lin.weight.copy_(problems.theta0[i, start : start + fan_in * fan_out]
                                 .view(fan_in, fan_out).T)  # fmt: skip
                start += fan_in * fan_out
                lin.bias.copy_(problems.theta0[i, start : start + fan_out])
                start += fan_out
            layers += [lin, act]
        net = nn.Sequential(*layers[:-1])
        idx = problems.index[i, 2]
        want = nn.functional.cross_entropy(net(images[idx]), labels[idx])
        assert torch.allclose(problems.loss(problems.theta0, 2)[i], want, atol=1e-5)


def test_mlp_problems_start_as_their_init_says():
    g = torch.Generator().manual_seed(0)
    images, labels = torch.rand(10, 784), torch.randint(10, (10,))
    uniform = MLPProblems.draw(50, g, images, labels, 1, MLPShape((20,))).theta0
    normal = MLPProblems.draw(50, g, images, labels, 1, MLPShape((20,), init="normal")).theta0
    first, second = slice(0, 784 * 20 + 20), slice(784 * 20 + 20, None)  # each layer's w and b
    for part, fan_in in ((first, 784), (second, 20)):
        bound = 1 / math.sqrt(fan_in)
        assert uniform[:, part].abs().max() <= bound
        assert uniform[:, part].std() == pytest.approx(bound / math.sqrt(3), rel=0.05)
        assert normal[:, part].std() == pytest.approx(0.01, rel=0.05)
        assert normal[:, part].mean().abs() < 1e-3


def test_the_update_is_the_output_scaled_and_the_input_preprocessed_with_p():
    torch.manual_seed(0)
    model = LSTMOptimizer(L2LConfig(scale=0.01, preprocess_p=5.0))
    g = torch.tensor([0.3, -2e-3, 1e-4])  # the last below e^-5 only at p = 5
    state = model.initial_state(3)
    update, _ = model(g, state)
    h = preprocess(g, 5.0)
    for cell, hc in zip(model.cells, state, strict=True):
        h, _ = cell(h, hc)
    assert torch.allclose(update, 0.01 * model.out(h).squeeze(-1), atol=1e-7)
    assert preprocess(g, 5.0)[2].tolist() == pytest.approx([-1.0, math.exp(5) * 1e-4])


def test_the_meta_objective_is_the_mean_of_f_or_of_log_f():
    losses = torch.tensor([[2.0, 0.5], [1e-20, 4.0]])  # (steps, problems)
    assert meta_objective(losses, "mean").item() == pytest.approx((2 + 0.5 + 1e-20 + 4) / 4)
    want = (math.log(2) + math.log(0.5) + math.log(1e-12) + math.log(4)) / 4  # floored at 1e-12
    assert meta_objective(losses, "log").item() == pytest.approx(want, rel=1e-6)


def test_each_problems_gradient_is_its_own():
    problems = Quadratics.draw(3, torch.Generator().manual_seed(1))
    theta = torch.randn(3, 10)
    _, g = gradient(problems, theta.clone(), 0)
    for i in range(3):
        alone = Quadratics(problems.W[i : i + 1], problems.y[i : i + 1], problems.theta0[i : i + 1])
        _, gi = gradient(alone, theta[i : i + 1].clone(), 0)
        assert torch.allclose(g[i], gi[0], atol=1e-5)


def test_the_meta_gradient_through_an_unroll_matches_finite_differences():
    """The paper drops second derivatives: the optimisee's gradients are inputs. So the
    reference takes them as fixed inputs, and gradcheck perturbs only the LSTM's weights."""
    torch.manual_seed(0)
    model = LSTMOptimizer(L2LConfig(hidden=3, layers=2)).double()
    problems = Quadratics(*(t.double() for t in
                            (torch.randn(2, 3, 3), torch.randn(2, 3), torch.randn(2, 3))))  # fmt: skip
    names = [n for n, _ in model.named_parameters()]
    start = [(h.double(), c.double()) for h, c in model.initial_state(6)]
    theta, state, grads = problems.theta0, start, []
    for t in range(3):  # the gradients the unroll will see
        _, g = gradient(problems, theta.detach().clone(), t)
        update, state = model(g.flatten(), state)
        theta, grads = theta + update.view_as(theta), grads + [g]

    def meta_loss(*weights):
        theta, state, total = problems.theta0, start, 0
        for t in range(3):
            total = total + problems.loss(theta, t).sum()
            update, state = torch.func.functional_call(model, dict(zip(names, weights, strict=True)),
                                                       (grads[t].flatten(), state))  # fmt: skip
            theta = theta + update.view_as(theta)
        return total

    weights = [p.detach().clone().requires_grad_() for p in model.parameters()]
    assert torch.autograd.gradcheck(meta_loss, weights, atol=1e-8, rtol=1e-6)
    _, _, losses = unroll(model, problems, problems.theta0, start, 0, 3)
    ours = torch.autograd.grad(losses.sum(), list(model.parameters()))
    want = torch.autograd.grad(meta_loss(*weights), weights)
    for a, b in zip(ours, want, strict=True):
        assert torch.allclose(a, b, atol=1e-10)


def test_the_learned_rule_without_a_graph_gives_the_same_numbers_chunk_by_chunk():
    torch.manual_seed(0)
    model = LSTMOptimizer(L2LConfig())
    coordinates = 2 * CHUNK + 7  # a ragged last chunk
    g = torch.randn(coordinates) * torch.logspace(-6, 1, coordinates)
    state = [(torch.randn(coordinates, 20), torch.randn(coordinates, 20)) for _ in range(2)]
    with torch.no_grad():
        chunked, chunked_state = model(g, state)
    whole, whole_state = model.step(g, state)
    assert torch.allclose(chunked, whole, atol=1e-6)
    for (a, b), (c, d) in zip(chunked_state, whole_state, strict=True):
        assert torch.allclose(a, c, atol=1e-6) and torch.allclose(b, d, atol=1e-6)


def test_a_tuned_rule_lowers_the_quadratics():
    problems = Quadratics.draw(8, torch.Generator().manual_seed(2))
    curve = rule_curve(RULES["adam"], 0.1, problems, 50)
    assert curve.shape == (51, 8)
    assert (curve[-1] < 0.5 * curve[0]).all()


def test_bad_families_and_shapes_are_one_line_errors(capsys, tmp_path):
    from genlab.cli import main

    for args, word in ((["--data", "omniglot"], "omniglot"),
                       (["--data", "mnist", "--mlp-hidden", "20,x"], "mlp_hidden"),
                       (["--data", "quadratic", "--unroll", "50", "--horizon", "20"], "unroll"),
                       (["--data", "mnist", "--mlp-activation", "tanh"], "activation"),
                       (["--data", "mnist", "--mlp-init", "xavier"], "init"),
                       (["--data", "quadratic", "--scale", "0"], "scale")):  # fmt: skip
        code = main(["train", "l2l_optimizer", "--steps", "1", "--out", str(tmp_path / "r"), *args])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1 and word in err[0], (args, err)


def test_a_compiled_meta_step_is_the_eager_one():
    from genlab.meta.l2l import ProblemBatches, meta_step
    from genlab.meta.optimizees import Family
    from genlab.train.config import TrainConfig
    from genlab.train.loop import make_state

    batches, runs = ProblemBatches(Family("quadratic"), 4, horizon=2, seed=0), []
    for compile in (False, True):
        torch.manual_seed(0)
        cfg = TrainConfig(lr=1e-2, compile=compile)
        state = make_state(LSTMOptimizer(L2LConfig(hidden=4, unroll=2, horizon=2)), cfg)
        step = meta_step(cfg)
        losses = [step(state, batches.batch(i))["loss"].item() for i in range(2)]
        runs.append((losses, [p.detach().clone() for p in state.model.parameters()]))
    assert runs[1][0] == pytest.approx(runs[0][0], rel=1e-5)
    for a, b in zip(runs[0][1], runs[1][1], strict=True):
        assert torch.allclose(a, b, atol=1e-5)


def test_the_validation_loss_is_each_problems_own_run_averaged_and_inf_when_one_diverges():
    from genlab.meta.optimizees import Family
    from genlab.tasks.learned_optimizers import (
        TEST_SEED,
        TUNE_SEED,
        TUNE_STEP,
        VALID_SEED,
        validation_loss,
    )

    torch.manual_seed(0)
    model, family, n = LSTMOptimizer(L2LConfig(hidden=4)), Family("quadratic"), 6
    problems = family.draw(n, torch.Generator().manual_seed(VALID_SEED), TUNE_STEP)
    finals = []
    for i in range(n):  # one problem at a time, the LSTM's state its own, by hand
        W, y = problems.W[i], problems.y[i]
        theta, state = problems.theta0[i].clone(), model.initial_state(W.shape[0])
        for _ in range(TUNE_STEP):
            g = 2 * W.T @ (W @ theta - y)
            with torch.no_grad():
                update, state = model(g, state)
            theta = theta + update
        finals.append((W @ theta - y).pow(2).sum())
    assert validation_loss(model, family, n) == pytest.approx(float(torch.stack(finals).mean()),
                                                              rel=1e-4)  # fmt: skip
    for other in (TUNE_SEED, TEST_SEED):  # the choice never sees the tuning or test problems
        drawn = family.draw(n, torch.Generator().manual_seed(other), TUNE_STEP)
        assert not torch.isclose(drawn.theta0, problems.theta0).any()
    wild = LSTMOptimizer(L2LConfig(hidden=4, scale=1e30))
    assert validation_loss(wild, family, n) == math.inf


def test_the_paired_difference_is_taken_problem_by_problem_and_null_when_one_diverged():
    from genlab.tasks.learned_optimizers import REPORT_STEPS, family_rows

    steps, n = max(REPORT_STEPS), 40
    spread = torch.logspace(-2, 1, n)  # problems of very different difficulty
    baseline = spread.expand(steps + 1, n).clone()
    learned = baseline - 0.01  # a little better on every problem
    learned[10, 3] = math.inf  # diverged at step 10 on one problem
    rows = family_rows({"learned": (None, learned), "adam": (0.03, baseline)})
    adam = rows["adam"]
    assert adam["learned_minus_100"] == pytest.approx(-0.01, abs=1e-6)
    assert adam["learned_minus_100_ci95"] < 1e-6  # the same gap everywhere: no doubt
    assert adam["loss_100_ci95"] > 0.5  # while the means' intervals are wide
    assert adam["learned_minus_10"] is None and adam["learned_minus_10_ci95"] is None
    assert "learned_minus_100" not in rows["learned"] and rows["learned"]["diverged_10"] == 1
