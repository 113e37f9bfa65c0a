"""The one functional core of MAML, first-order MAML and Reptile, on `torch.func`.

Parameters travel as dicts {name: tensor}; `functional_call` runs the network with them, so no
module is ever mutated by adaptation. Shapes for one task: support x (S, 1, 28, 28), y (S,);
query x (Q, 1, 28, 28), y (Q,). Losses are mean cross-entropies in nats.

    adapted = adapt(net, params, sx, sy, steps=1, lr=0.4)              # MAML: differentiable
    adapted = adapt(net, params, sx, sy, steps=1, lr=0.4, first_order=True)
    loss, acc = meta_batch(net, params, batch, task_fn, vectorize=True)   # vmap over tasks
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad, vmap

Params = dict[str, torch.Tensor]
BN_MODES = ("transductive", "support")
INNER_RULES = ("sgd", "adam")  # adam: beta1 = 0, as Reptile's inner optimizer


def logits_of(net: nn.Module, params: Params, x: torch.Tensor, stats_rows: int | None = None):
    return functional_call(net, params, (x,), {"stats_rows": stats_rows})


def task_loss(net: nn.Module, params: Params, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits_of(net, params, x), y)


def adam0_update(
    p: torch.Tensor, g: torch.Tensor, v: torch.Tensor, t: int, lr: float,
    beta2: float = 0.999, eps: float = 1e-8,
) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """One step t (from 1) of Adam with beta1 = 0 (no momentum; Reptile's inner optimizer):
    v <- beta2 v + (1 - beta2) g^2,  p <- p - lr g / (sqrt(v / (1 - beta2^t)) + eps).
    Returns the new (p, v); every tensor the shape of p."""
    v = beta2 * v + (1 - beta2) * g * g
    return p - lr * g / ((v / (1 - beta2**t)).sqrt() + eps), v


def minibatch(x: torch.Tensor, y: torch.Tensor, step: int, size: int | None):
    """The step-th batch of `size` rows cycling through (x, y) in order (None: all rows)."""
    if size is None or size >= len(x):
        return x, y
    rows = (step * size + torch.arange(size)) % len(x)  # (size,)
    return x[rows], y[rows]


def adapt(
    net: nn.Module,
    params: Params,
    x: torch.Tensor,
    y: torch.Tensor,
    steps: int,
    lr: float,
    first_order: bool = False,
    rule: str = "sgd",
    batch: int | None = None,
) -> Params:
    """`steps` steps of gradient descent (`rule`: SGD, or Adam with beta1 = 0 from fresh
    moments) on the loss of (x, y), starting from `params`; each step on the next `batch` rows
    of (x, y), cycling (None: all of them).

    Second order (default): the result is a differentiable function of `params`, so a loss on it
    backpropagates through the inner gradients (MAML). First order: the inner gradients are
    constants, so d(result)/d(params) is the identity (FOMAML).
    """
    if rule not in INNER_RULES:
        raise ValueError(f"inner rule must be one of {INNER_RULES}, got '{rule}'")
    inner_grad = grad(task_loss, argnums=1)
    moments = {k: torch.zeros_like(p) for k, p in params.items()} if rule == "adam" else {}
    for step in range(steps):
        g = inner_grad(net, params, *minibatch(x, y, step, batch))
        if first_order:
            g = {k: v.detach() for k, v in g.items()}
        if rule == "sgd":
            params = {k: p - lr * g[k] for k, p in params.items()}
            continue
        updated = {k: adam0_update(p, g[k], moments[k], step + 1, lr) for k, p in params.items()}
        params = {k: p for k, (p, _) in updated.items()}
        moments = {k: v for k, (_, v) in updated.items()}
    return params


def predict(
    net: nn.Module, params: Params, support_x: torch.Tensor, query_x: torch.Tensor, bn: str
) -> torch.Tensor:
    """Query logits (Q, N). bn='transductive': the query batch normalises itself; bn='support':
    batch-norm statistics come from the support set only (no information shared across queries)."""
    if bn == "transductive":
        return logits_of(net, params, query_x)
    if bn == "support":
        n = support_x.shape[0]
        return logits_of(net, params, torch.cat([support_x, query_x]), stats_rows=n)[n:]
    raise ValueError(f"batch-norm mode must be one of {BN_MODES}, got '{bn}'")


def maml_task(
    net: nn.Module, steps: int, lr: float, first_order: bool, bn: str, rule: str = "sgd"
) -> Callable[..., tuple[torch.Tensor, torch.Tensor]]:
    """(params, sx, sy, qx, qy) -> (query loss after adaptation, query accuracy) for one task."""

    def run(params: Params, sx, sy, qx, qy):
        adapted = adapt(net, params, sx, sy, steps, lr, first_order, rule)
        logits = predict(net, adapted, sx, qx, bn)
        return F.cross_entropy(logits, qy), (logits.argmax(-1) == qy).float().mean()

    return run


def reptile_task(
    net: nn.Module, steps: int, lr: float, ways: int, rule: str = "sgd", batch: int | None = None
) -> Callable[..., Params]:
    """(params, sx, sy, qx, qy) -> the weights after `steps` steps of `rule` on the task's
    drawings (Reptile has no support/query distinction while training): all of them each step,
    or batches of `batch` taken in turn from the drawings in class-interleaved order (support,
    then query, each `by_drawing`), so a batch of a multiple of `ways` holds every class evenly."""

    def run(params: Params, sx, sy, qx, qy):
        x = torch.cat([by_drawing(sx, ways), by_drawing(qx, ways)])
        y = torch.cat([by_drawing(sy, ways), by_drawing(qy, ways)])
        return adapt(net, params, x, y, steps, lr, first_order=True, rule=rule, batch=batch)

    return run


def by_drawing(rows: torch.Tensor, ways: int) -> torch.Tensor:
    """Class-major rows (N*K, ...) (K drawings of class 0, then class 1, ...) reordered
    drawing-major: row j * N + c is class c's j-th drawing. Same shape."""
    k = len(rows) // ways
    return rows.view(ways, k, *rows.shape[1:]).transpose(0, 1).reshape(rows.shape)


def over_tasks(task_fn: Callable, params: Params, batch: dict, vectorize: bool):
    """Apply `task_fn(params, sx, sy, qx, qy)` to each task of a meta-batch (leading dim T) and
    stack the results: with `vmap` (one batched computation) or a plain Python loop."""
    args = (batch["support_x"], batch["support_y"], batch["query_x"], batch["query_y"])
    if vectorize:
        return vmap(task_fn, in_dims=(None, 0, 0, 0, 0))(params, *args)
    outs = [task_fn(params, *(a[t] for a in args)) for t in range(args[0].shape[0])]
    if isinstance(outs[0], dict):
        return {k: torch.stack([o[k] for o in outs]) for k in outs[0]}
    return tuple(torch.stack(xs) for xs in zip(*outs, strict=True))


def reptile_objective(params: Params, targets: Params) -> torch.Tensor:
    """0.5 * sum ||theta - stopgrad(phi_mean)||^2, whose gradient is the Reptile direction
    theta - phi_mean: one SGD step of size eps on it is theta + eps * (phi_mean - theta)."""
    return 0.5 * sum(((p - targets[k].detach()) ** 2).sum() for k, p in params.items())
