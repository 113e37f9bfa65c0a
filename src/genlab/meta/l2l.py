"""Learning to learn by gradient descent by gradient descent (Andrychowicz et al. 2016):
theta_{t+1} = theta_t + g_t(grad f(theta_t), phi), g an LSTM that sees each coordinate of the
gradient alone (the same small network for every parameter, its own state per coordinate).

    x_t = preprocess(grad_t)             (C, 2)    log-magnitude and sign (appendix A)
    h_t = LSTM_phi(x_t, h_{t-1})         (C, H)    two layers of 20 units, coordinatewise
    theta_{t+1} = theta_t + s w.h_t      (C,)      C = every coordinate of every problem

Meta-training minimises the sum of f(theta_t) (or of log f, `meta_loss`) along an unroll of 20
steps by backpropagating into phi; like the paper, the optimisee's gradient is an input, not
differentiated through (no second derivatives). The baselines' update rules are pure functions
of the same shape, so every optimizer runs on the very same problems.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from genlab.errors import ConfigError
from genlab.meta.optimizees import MLPShape
from genlab.train.config import TrainConfig, doc
from genlab.train.loop import StepFn, check_finite, optimizer_update, step_generator
from genlab.train.state import TrainState

META_LOSSES = ("mean", "log")
CHUNK = 4096  # coordinates per pass without a graph: over 100 MNIST MLPs (1.6M coordinates),
# 2.8x faster than one pass, whose (C, 80) gate tensors leave the cache


def preprocess(g: torch.Tensor, p: float) -> torch.Tensor:
    """g (...) -> (..., 2): (log|g| / p, sign g) where |g| >= e^-p, else (-1, e^p g)."""
    big = g.abs() >= math.exp(-p)
    log_magnitude = torch.where(big, g.abs().clamp_min(1e-38).log() / p, -torch.ones_like(g))
    sign = torch.where(big, g.sign(), math.exp(p) * g)
    return torch.stack([log_magnitude, sign], -1)


@dataclass(frozen=True)
class L2LConfig:
    hidden: int = doc("units in each of the coordinatewise LSTM's layers", default=20)
    layers: int = doc("LSTM layers", default=2)
    unroll: int = doc("optimisee steps per truncation (one meta-gradient step each)", default=20)
    horizon: int = doc("optimisee steps per problem while meta-training", default=100)
    scale: float = doc(
        "the output multiplier s: the update is s times the LSTM's output", default=0.1
    )
    preprocess_p: float = doc(
        "the preprocessing's p: gradients below e^-p are scaled, not logged", default=10.0
    )
    meta_loss: str = doc(
        "the meta-objective along an unroll: 'mean' f(theta_t) (the paper's, "
        "w_t = 1) or 'log', the mean log f (a step's relative progress counts "
        "alike early and late)",
        default="mean",
    )
    mlp_hidden: str = doc("MNIST: widths of the optimisee MLP's hidden layers", default="20")
    mlp_activation: str = doc("MNIST: the optimisee MLP's activation (sigmoid, relu)",
                              default="sigmoid")  # fmt: skip
    mlp_init: str = doc(
        "MNIST: how the optimisee MLP starts (uniform: torch's Linear; normal: "
        "N(0, 0.01^2), the paper's code)",
        default="uniform",
    )

    def __post_init__(self) -> None:
        for name in ("hidden", "layers", "unroll", "horizon"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("scale", "preprocess_p"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be > 0, got {getattr(self, name)}")
        if self.meta_loss not in META_LOSSES:
            raise ConfigError(f"meta_loss must be one of {', '.join(META_LOSSES)}, "
                              f"got '{self.meta_loss}'")  # fmt: skip
        if self.unroll > self.horizon:
            raise ConfigError(f"unroll ({self.unroll}) must not exceed horizon ({self.horizon})")
        self.mlp_shape  # noqa: B018 -- ConfigError naming a bad width or activation

    @property
    def mlp_shape(self) -> MLPShape:
        try:
            hidden = tuple(int(w) for w in self.mlp_hidden.split(","))
        except ValueError:
            raise ConfigError(f"mlp_hidden must be widths like '20' or '20,20', got "
                              f"'{self.mlp_hidden}'") from None  # fmt: skip
        return MLPShape(hidden, self.mlp_activation, self.mlp_init)


class LSTMOptimizer(nn.Module):
    """The learned update rule: coordinatewise, so one network serves any number of parameters."""

    def __init__(self, cfg: L2LConfig):
        super().__init__()
        self.cfg = cfg
        sizes = [2] + [cfg.hidden] * cfg.layers
        self.cells = nn.ModuleList(nn.LSTMCell(i, cfg.hidden) for i in sizes[:-1])
        self.out = nn.Linear(cfg.hidden, 1)

    def initial_state(self, coordinates: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        zeros = torch.zeros(coordinates, self.cfg.hidden)
        return [(zeros, zeros) for _ in self.cells]

    def forward(
        self, grad: torch.Tensor, state: list[tuple[torch.Tensor, torch.Tensor]]
    ) -> tuple[torch.Tensor, list[tuple[torch.Tensor, torch.Tensor]]]:
        """grad (C,) and each layer's (h, c) (C, H) -> the update (C,) and the new state;
        without a graph, CHUNK coordinates at a time (the same numbers)."""
        if torch.is_grad_enabled() or len(grad) <= CHUNK:
            return self.step(grad, state)
        update, new = torch.empty_like(grad), [(torch.empty_like(h), torch.empty_like(c))
                                               for h, c in state]  # fmt: skip
        for start in range(0, len(grad), CHUNK):
            part = slice(start, start + CHUNK)
            update[part], layers = self.step(grad[part], [(h[part], c[part]) for h, c in state])
            for (h_all, c_all), (h, c) in zip(new, layers, strict=True):
                h_all[part], c_all[part] = h, c
        return update, new

    def step(
        self, grad: torch.Tensor, state: list[tuple[torch.Tensor, torch.Tensor]]
    ) -> tuple[torch.Tensor, list[tuple[torch.Tensor, torch.Tensor]]]:
        """`forward` in one pass."""
        x, new = preprocess(grad, self.cfg.preprocess_p), []
        for cell, hc in zip(self.cells, state, strict=True):
            h, c = cell(x, hc)
            new.append((h, c))
            x = h
        return self.cfg.scale * self.out(x).squeeze(-1), new


# --- the baselines' update rules: (theta, grad, state, lr) -> (theta', state'), all (n, P) -----
Rule = Callable[[torch.Tensor, torch.Tensor, dict, float], tuple[torch.Tensor, dict]]


def sgd(theta: torch.Tensor, g: torch.Tensor, state: dict, lr: float) -> tuple[torch.Tensor, dict]:
    return theta - lr * g, state


def nag(theta: torch.Tensor, g: torch.Tensor, state: dict, lr: float,
        momentum: float = 0.9) -> tuple[torch.Tensor, dict]:  # fmt: skip
    """Nesterov momentum as torch.optim.SGD(nesterov=True) writes it."""
    buf = momentum * state["buf"] + g if "buf" in state else g
    return theta - lr * (g + momentum * buf), {"buf": buf}


def rmsprop(theta: torch.Tensor, g: torch.Tensor, state: dict, lr: float, alpha: float = 0.99,
            eps: float = 1e-8) -> tuple[torch.Tensor, dict]:  # fmt: skip
    v = alpha * state.get("v", torch.zeros_like(g)) + (1 - alpha) * g * g
    return theta - lr * g / (v.sqrt() + eps), {"v": v}


def adam(theta: torch.Tensor, g: torch.Tensor, state: dict, lr: float,
         betas: tuple[float, float] = (0.9, 0.999),
         eps: float = 1e-8) -> tuple[torch.Tensor, dict]:  # fmt: skip
    t = state.get("t", 0) + 1
    m = betas[0] * state.get("m", torch.zeros_like(g)) + (1 - betas[0]) * g
    v = betas[1] * state.get("v", torch.zeros_like(g)) + (1 - betas[1]) * g * g
    m_hat, v_hat = m / (1 - betas[0] ** t), v / (1 - betas[1] ** t)
    return theta - lr * m_hat / (v_hat.sqrt() + eps), {"t": t, "m": m, "v": v}


RULES: dict[str, Rule] = {"sgd": sgd, "nag": nag, "rmsprop": rmsprop, "adam": adam}


# --- running an optimizer on a batch of problems -----------------------------------------------
def gradient(problems, theta: torch.Tensor, t: int) -> tuple[torch.Tensor, torch.Tensor]:
    """f(theta_t) (n,) with its graph kept, and each problem's gradient (n, P), detached."""
    if not theta.requires_grad:
        theta = theta.requires_grad_()
    loss = problems.loss(theta, t)
    (g,) = torch.autograd.grad(loss.sum(), theta, retain_graph=torch.is_grad_enabled())
    return loss, g.detach()


def unroll(model: Callable[[torch.Tensor, list], tuple[torch.Tensor, list]], problems,
           theta: torch.Tensor, state: list, start: int,
           steps: int) -> tuple[torch.Tensor, list, torch.Tensor]:  # fmt: skip
    """`steps` learned updates from step `start`: (theta, LSTM state, f before each (steps, n)).
    Differentiable in the LSTM's weights through theta (not through the gradients). `model` is
    the LSTMOptimizer, or its `step` compiled."""
    losses = []
    for t in range(start, start + steps):
        loss, g = gradient(problems, theta, t)
        update, state = model(g.flatten(), state)
        theta = theta + update.view_as(theta)
        losses.append(loss)
    return theta, state, torch.stack(losses)


@torch.no_grad()
def loss_curve(step: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], problems,
               steps: int) -> torch.Tensor:  # fmt: skip
    """f(theta_t) for t = 0..steps (steps+1, n), theta_{t+1} = step(theta_t, grad_t); no
    meta-graph (MLP problems need steps+1 minibatches)."""
    theta, losses = problems.theta0.clone(), []
    for t in range(steps + 1):
        with torch.enable_grad():
            loss, g = gradient(problems, theta.detach(), t)
        losses.append(loss.detach())
        if t < steps:
            theta = step(theta, g)
    return torch.stack(losses)


def learned_curve(model: LSTMOptimizer, problems, steps: int) -> torch.Tensor:
    """`loss_curve` under the learned optimizer, its state fresh."""
    state = model.initial_state(problems.theta0.numel())

    def step(theta: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        nonlocal state
        update, state = model(g.flatten(), state)
        return theta + update.view_as(theta)

    return loss_curve(step, problems, steps)


def rule_curve(rule: Rule, lr: float, problems, steps: int) -> torch.Tensor:
    """`loss_curve` under a baseline rule at learning rate lr."""
    state: dict = {}

    def step(theta: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        nonlocal state
        theta, state = rule(theta, g, state, lr)
        return theta

    return loss_curve(step, problems, steps)


# --- meta-training on the shared loop -----------------------------------------------------------
class ProblemBatches:
    """The loop's BatchSource: `n` fresh problems of `family` per step, a pure function of
    (seed, step)."""

    def __init__(self, family, n: int, horizon: int, seed: int):
        self.family, self.n, self.horizon, self.seed = family, n, horizon, seed

    def batch(self, step: int):
        g = step_generator(self.seed, step)
        return self.family.draw(self.n, g, self.horizon)


def meta_objective(losses: torch.Tensor, kind: str) -> torch.Tensor:
    """losses (steps, n) -> the mean f, or the mean log f (f floored at 1e-12), over both."""
    return losses.mean() if kind == "mean" else losses.clamp_min(1e-12).log().mean()


def meta_step(cfg: TrainConfig) -> StepFn:
    """One loop step = one batch of problems optimised for `horizon` steps from their start,
    the LSTM's state fresh; every `unroll` steps, one Adam step on the meta-objective along
    them (the truncated backpropagation through time of the paper), theta and the state
    carried over. With `cfg.compile` the LSTM's step is compiled: inductor fuses its gates'
    pointwise work forward and backward (an MNIST meta-step 4.5 -> 3.0 s on one thread; about
    13 s of compilation in the first step)."""
    compiled: dict[int, Callable] = {}

    def step(state: TrainState, problems) -> dict[str, torch.Tensor]:
        model: LSTMOptimizer = state.model
        learned = model
        if cfg.compile:
            if id(model) not in compiled:
                compiled[id(model)] = torch.compile(model.step)
            learned = compiled[id(model)]
        theta, lstm = problems.theta0, model.initial_state(problems.theta0.numel())
        metas = []
        for start in range(0, model.cfg.horizon, model.cfg.unroll):
            steps = min(model.cfg.unroll, model.cfg.horizon - start)
            theta, lstm, losses = unroll(learned, problems, theta, lstm, start, steps)
            meta = meta_objective(losses, model.cfg.meta_loss)
            check_finite(state.step + 1, {"meta_loss": meta.detach()})
            optimizer_update(state, "main", meta, grad_clip=cfg.grad_clip)
            theta, lstm = theta.detach(), [(h.detach(), c.detach()) for h, c in lstm]
            metas.append(meta.detach())
        state.schedulers["main"].step()
        with torch.no_grad():
            final = problems.loss(theta, model.cfg.horizon)
        return {"loss": torch.stack(metas).mean(), "final_loss": final.mean(),
                "final_log_loss": final.clamp_min(1e-12).log().mean(),
                "lr": torch.tensor(state.optimizers["main"].param_groups[0]["lr"])}  # fmt: skip

    return step
