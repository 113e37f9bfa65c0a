"""Learning to learn without gradient descent by gradient descent (Chen et al. 2017): an LSTM
that proposes where to query a black-box function next, from the queries and values so far,
meta-trained by backpropagation through functions drawn from a Gaussian process prior.

    h_t     = LSTM_phi([x_{t-1}, y_{t-1}], h_{t-1})        x_0, y_0 = 0: the first query is learned
              (with `--inputs incumbent` also [x*_{t-1}, y*_{t-1}], the best query so far)
    x_t     = fold(0.5 + W h_t + b)                        (n, d) folded into the unit cube
    y_t     = f(x_t)                                       f ~ GP(0, RBF), differentiable in x
    L_OI    = sum_{t >= 2} min(y_t - min_{i < t} y_i, 0)    the paper's observed improvement
            = min_t y_t - y_1                               (it telescopes)
    L_best  = mean_t min_{i <= t} y_i                       `--loss best`: the best-so-far curve

With `--detach` the x and y the LSTM reads back are constants in the meta-gradient: it reaches
x_t only through y_t = f(x_t) and the LSTM's state, not through what later queries read.

The training functions are GP draws by random Fourier features (Rahimi & Recht 2007): a draw is
a function, so every optimizer in a comparison meets the very same one, and its gradient in x is
exact. The paper instead sampled each y_t from the GP posterior given the earlier draws; with
M = 1,024 features the kernel differs from the RBF by sampling noise of order 1/sqrt(M).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from genlab.errors import ConfigError
from genlab.train.config import doc
from genlab.train.loop import step_generator

FEATURES = 1024  # random Fourier features per GP draw
INPUTS = ("last", "incumbent")  # what the LSTM reads at each query (NeuralBOConfig.inputs)


@dataclass(frozen=True)
class FourierGP:
    """n functions on [0, 1]^d, each a draw of a zero-mean, unit-variance GP with the RBF kernel
    k(x, x') = exp(-sum_j (x_j - x'_j)^2 / (2 l_j^2)), its own length scales l (n, d):

        f(x) = sqrt(2 / M) sum_m a_m cos(omega_m . x + b_m)
        a ~ N(0, 1), omega_mj ~ N(0, 1 / l_j^2), b ~ U(0, 2 pi)
    """

    omega: torch.Tensor  # (n, M, d)
    phase: torch.Tensor  # (n, M)
    weight: torch.Tensor  # (n, M)

    @classmethod
    def draw(cls, n: int, dim: int, generator: torch.Generator,
             lengthscales: tuple[float, float] = (0.1, 0.5),
             features: int = FEATURES) -> FourierGP:  # fmt: skip
        """Length scales log-uniform in `lengthscales`, per function and dimension."""
        g = dict(generator=generator)
        lo, hi = math.log(lengthscales[0]), math.log(lengthscales[1])
        scale = (lo + (hi - lo) * torch.rand(n, 1, dim, **g)).exp()  # (n, 1, d)
        omega = torch.randn(n, features, dim, **g) / scale
        return cls(omega, 2 * math.pi * torch.rand(n, features, **g), torch.randn(n, features, **g))

    @property
    def dim(self) -> int:
        return self.omega.shape[-1]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """x (n, d) or (n, q, d) -> f (n,) or (n, q): each function at its own points."""
        single = x.dim() == 2
        x = x[:, None] if single else x  # (n, q, d)
        features = torch.cos(x @ self.omega.transpose(1, 2) + self.phase[:, None])  # (n, q, M)
        f = math.sqrt(2 / self.omega.shape[1]) * (features @ self.weight[..., None]).squeeze(-1)
        return f[:, 0] if single else f


def rbf_kernel(x1: torch.Tensor, x2: torch.Tensor, lengthscale: torch.Tensor) -> torch.Tensor:
    """x1 (a, d), x2 (b, d), lengthscale (d,) -> exp(-|(x1 - x2) / l|^2 / 2) (a, b)."""
    diff = (x1[:, None] - x2[None]) / lengthscale
    return torch.exp(-0.5 * diff.pow(2).sum(-1))


def fold(z: torch.Tensor) -> torch.Tensor:
    """Any real z folded into [0, 1] like light between two mirrors: 1 - |(z mod 2) - 1|,
    slope +-1 everywhere. A sigmoid instead saturated: the 2-D network, 10 minutes into
    meta-training, had 44% of its query coordinates within 0.01 of an edge, walking the box's
    border with no gradient to leave it, and found less than random search."""
    return 1 - (torch.remainder(z, 2) - 1).abs()


def observed_improvement(ys: torch.Tensor) -> torch.Tensor:
    """ys (n, T) the values queried, in order -> L_OI per function (n,): the sum over t >= 2 of
    min(y_t - min_{i<t} y_i, 0), negative where the query beat every earlier one."""
    best_before = torch.cummin(ys, 1).values[:, :-1]  # (n, T-1)
    return (ys[:, 1:] - best_before).clamp(max=0).sum(1)


def mean_best(ys: torch.Tensor) -> torch.Tensor:
    """ys (n, T) -> the best value so far averaged over the T queries (n,): the area under the
    search's best-so-far curve, so finding a value early counts for more than finding it last."""
    return torch.cummin(ys, 1).values.mean(1)


LOSSES = {"oi": observed_improvement, "best": mean_best}  # NeuralBOConfig.loss


def incumbent(best: tuple[torch.Tensor, torch.Tensor] | None, x: torch.Tensor,
              y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """The best query so far (n, d) and its value (n,) (None before the first), then the query
    x (n, d) with value y (n,) -> the best of the two, row by row (ties keep the earlier);
    differentiable in both."""
    if best is None:
        return x, y
    better = y < best[1]  # (n,)
    return torch.where(better[:, None], x, best[0]), torch.where(better, y, best[1])


# --- the proposer ------------------------------------------------------------------------------
@dataclass(frozen=True)
class NeuralBOConfig:
    dim: int = doc("dimensions of the search space (the unit cube); one network per dim",
                   default=2)  # fmt: skip
    hidden: int = doc("LSTM width", default=128)
    layers: int = doc("LSTM layers", default=2)
    horizon: int = doc("queries per function while meta-training", default=100)
    min_lengthscale: float = doc("GP prior: shortest length scale (log-uniform)", default=0.1)
    max_lengthscale: float = doc("GP prior: longest length scale", default=0.5)
    inputs: str = doc("what the LSTM reads at each query: 'last' (the paper: the last query "
                      "and its value) or 'incumbent' (also the best query so far and its "
                      "value)", default="last")  # fmt: skip
    detach: bool = doc("meta-gradient only through each query's own value: the queries and "
                       "values the LSTM reads back count as constants, as Andrychowicz et al. "
                       "drop the optimizee's second derivatives", default=False)  # fmt: skip
    loss: str = doc("meta-training loss: 'oi' (the paper's observed improvement, which "
                    "telescopes to the last best minus the first value) or 'best' (the best "
                    "value so far, averaged over the queries)", default="oi")  # fmt: skip

    def __post_init__(self) -> None:
        for name in ("dim", "hidden", "layers", "horizon"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0 < self.min_lengthscale <= self.max_lengthscale:
            raise ConfigError(f"need 0 < min_lengthscale <= max_lengthscale, got "
                              f"{self.min_lengthscale} and {self.max_lengthscale}")  # fmt: skip
        if self.inputs not in INPUTS:
            raise ConfigError(f"--inputs must be one of {', '.join(INPUTS)}, got '{self.inputs}'")
        if self.loss not in LOSSES:
            raise ConfigError(f"--loss must be one of {', '.join(LOSSES)}, got '{self.loss}'")


class Proposer(nn.Module):
    """The learned optimizer of black-box functions on [0, 1]^dim (minimising)."""

    def __init__(self, cfg: NeuralBOConfig):
        super().__init__()
        self.cfg = cfg
        reads = (cfg.dim + 1) * (2 if cfg.inputs == "incumbent" else 1)
        self.lstm = nn.LSTM(reads, cfg.hidden, cfg.layers, batch_first=True)
        self.head = nn.Linear(cfg.hidden, cfg.dim)

    def propose(self, x: torch.Tensor, y: torch.Tensor,
                best: tuple[torch.Tensor, torch.Tensor] | None,
                state=None) -> tuple[torch.Tensor, tuple]:  # fmt: skip
        """The last query x (n, d) and its value y (n,) (zeros before the first), the best query
        and value so far (`incumbent`; None before the first: read as zeros) and the LSTM state
        -> the next query (n, d) and the new state."""
        seen = [x, y[:, None]]
        if self.cfg.inputs == "incumbent":
            seen += [x, y[:, None]] if best is None else [best[0], best[1][:, None]]
        if self.cfg.detach:  # what the LSTM reads back is a constant to the meta-gradient
            seen = [v.detach() for v in seen]
        out, state = self.lstm(torch.cat(seen, -1)[:, None], state)
        return fold(0.5 + self.head(out[:, 0])), state

    def first_reads(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """What the first proposal of n searches reads as the last query (n, d) and value (n,):
        zeros. The rollout and the replay of a history both start here."""
        return torch.zeros(n, self.cfg.dim), torch.zeros(n)

    def rollout(self, f, n: int, steps: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Run on n functions f ((n, d) -> (n,)) for `steps` queries: xs (n, T, d), ys (n, T)."""
        (x, y), best, state, xs, ys = self.first_reads(n), None, None, [], []
        for _ in range(steps):
            x, state = self.propose(x, y, best, state)
            y = f(x)
            best = incumbent(best, x, y)
            xs.append(x)
            ys.append(y)
        return torch.stack(xs, 1), torch.stack(ys, 1)

    def loss(self, functions: FourierGP) -> dict[str, torch.Tensor]:
        """The configured loss (`LOSSES`) averaged over the batch's functions, over `horizon`
        queries; also the best value found (the lower the better)."""
        _, ys = self.rollout(functions, functions.omega.shape[0], self.cfg.horizon)
        return {"loss": LOSSES[self.cfg.loss](ys).mean(),
                "best": ys.min(1).values.mean().detach()}  # fmt: skip

    def history_query(self, xs: torch.Tensor, ys: torch.Tensor) -> torch.Tensor:
        """One search's history xs (t, d), ys (t,) -> its next query (d,), the LSTM replayed
        over the history from its fresh state."""
        (x, y), best, state = self.first_reads(1), None, None
        for t in range(len(ys) + 1):
            proposal, state = self.propose(x, y, best, state)
            if t < len(ys):
                x, y = xs[t : t + 1], ys[t : t + 1]
                best = incumbent(best, x, y)
        return proposal[0]


class FunctionBatches:
    """The loop's BatchSource: `n` fresh GP draws per step, a pure function of (seed, step)."""

    def __init__(self, cfg: NeuralBOConfig, n: int, seed: int):
        self.cfg, self.n, self.seed = cfg, n, seed

    def batch(self, step: int) -> FourierGP:
        g = step_generator(self.seed, step)
        return FourierGP.draw(self.n, self.cfg.dim, g,
                              (self.cfg.min_lengthscale, self.cfg.max_lengthscale))  # fmt: skip
