"""The linear probe: how well a frozen representation separates classes, from few labels.

A multinomial logistic regression on standardized features, fit to convergence by L-BFGS on
the whole labelled set with an L2 penalty, then scored on held-out examples; or, beside it, a
small non-linear probe (one hidden ReLU layer, fit the same way). Labelled sets are drawn
stratified (the same number per class) and reproducibly from a seed.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F


def stratified_draw(labels: torch.Tensor, per_class: int, seed: int) -> torch.Tensor:
    """(N,) integer labels -> sorted indices of `per_class` examples of each class present,
    drawn without replacement by a generator seeded with `seed`."""
    g = torch.Generator().manual_seed(seed)
    chosen = []
    for c in labels.unique(sorted=True):
        members = (labels == c).nonzero().squeeze(1)
        if len(members) < per_class:
            raise ValueError(f"class {int(c)} has {len(members)} examples, fewer than {per_class}")
        chosen.append(members[torch.randperm(len(members), generator=g)[:per_class]])
    return torch.cat(chosen).sort().values


def fit_logistic(
    features: torch.Tensor, labels: torch.Tensor, n_classes: int, l2: float,
    max_iter: int = 100, dtype: torch.dtype = torch.float32,
) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """(N, D) features, (N,) labels -> weights (D, K), bias (K,) minimising

        mean_i -log softmax(x_i W + b)[y_i] + l2 / 2 * ||W||^2

    by L-BFGS in `dtype` (the bias is not penalised)."""
    x, y = features.to(dtype), labels.long()
    w = torch.zeros(x.shape[1], n_classes, dtype=dtype, requires_grad=True)
    b = torch.zeros(n_classes, dtype=dtype, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=max_iter, tolerance_grad=1e-7,
                            tolerance_change=1e-10, line_search_fn="strong_wolfe")  # fmt: skip

    def objective() -> torch.Tensor:
        opt.zero_grad()
        loss = F.cross_entropy(x @ w + b, y) + 0.5 * l2 * (w * w).sum()
        loss.backward()
        return loss

    opt.step(objective)
    return w.detach(), b.detach()


def fit_mlp(
    features: torch.Tensor, labels: torch.Tensor, n_classes: int, l2: float,
    hidden: int = 256, max_iter: int = 200, seed: int = 0,
) -> Callable[[torch.Tensor], torch.Tensor]:  # fmt: skip
    """(N, D) features, (N,) labels -> class scores x -> relu(x W1 + b1) W2 + b2 (float32),
    minimising mean cross-entropy + l2 / 2 * (||W1||^2 + ||W2||^2) by L-BFGS from a He
    initialisation drawn with `seed`."""
    x, y = features.float(), labels.long()
    g = torch.Generator().manual_seed(seed)
    w1 = (torch.randn(x.shape[1], hidden, generator=g) * (2 / x.shape[1]) ** 0.5).requires_grad_()
    w2 = (torch.randn(hidden, n_classes, generator=g) / hidden**0.5).requires_grad_()
    b1, b2 = torch.zeros(hidden, requires_grad=True), torch.zeros(n_classes, requires_grad=True)
    opt = torch.optim.LBFGS([w1, b1, w2, b2], max_iter=max_iter, tolerance_grad=1e-7,
                            tolerance_change=1e-10, line_search_fn="strong_wolfe")  # fmt: skip

    def scores(f: torch.Tensor) -> torch.Tensor:
        return torch.relu(f.float() @ w1 + b1) @ w2 + b2  # (N, K)

    def objective() -> torch.Tensor:
        opt.zero_grad()
        loss = F.cross_entropy(scores(x), y) + 0.5 * l2 * ((w1 * w1).sum() + (w2 * w2).sum())
        loss.backward()
        return loss

    opt.step(objective)
    return lambda f: scores(f).detach()


def fit_linear(
    features: torch.Tensor, labels: torch.Tensor, n_classes: int, l2: float
) -> Callable[[torch.Tensor], torch.Tensor]:
    """`fit_logistic` as a map from features to class scores."""
    w, b = fit_logistic(features, labels, n_classes, l2)
    return lambda f: f.to(w.dtype) @ w + b


HEADS = {"linear": fit_linear, "mlp": fit_mlp}  # the probes genlab fits on frozen features


def standardizer(features: torch.Tensor):
    """The map x -> (x - mean) / std with the statistics of `features` (N, D); constant
    columns are left centred, not divided by zero."""
    mean, std = features.double().mean(0), features.double().std(0, unbiased=False)
    std = torch.where(std > 1e-8, std, torch.ones_like(std))
    return lambda x: (x.double() - mean) / std


def probe_accuracy(
    train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor, test_y: torch.Tensor,
    n_classes: int, l2: float, head: str = "linear",
) -> float:  # fmt: skip
    """Fit a `head` ("linear" or "mlp") on (train_x, train_y), standardized by the training
    features' statistics, and return the accuracy on (test_x, test_y)."""
    scale = standardizer(train_x)
    scores = HEADS[head](scale(train_x), train_y, n_classes, l2)
    return (scores(scale(test_x)).argmax(1) == test_y).double().mean().item()
