"""The problems a learned optimizer learns to optimise (Andrychowicz et al. 2016, section 3):
batches of n independent problems, each with its own parameters theta (n, P) flattened, so
that one call scores them all and one gradient of the summed loss is every problem's own.

    Quadratics:  f(theta) = ||W theta - y||^2, W (10, 10) and y (10,) i.i.d. N(0, 1) per problem
    MNIST MLPs:  cross-entropy of a small MLP (784 -> 20 sigmoid -> 10 by default) on a fresh
                 minibatch of 128 training images at every step, each problem its own draws

`loss(theta, t)` is f at step t (the minibatch of step t for the MLPs): (n, P) -> (n,).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from genlab.errors import ConfigError

ACTIVATIONS = {"sigmoid": torch.sigmoid, "relu": torch.relu}
INITS = ("uniform", "normal")  # torch's Linear: U(+-1/sqrt(fan_in)); the paper's code: N(0, 0.01^2)
MNIST_BATCH = 128  # images per step (the paper's)


@dataclass(frozen=True)
class Quadratics:
    W: torch.Tensor  # (n, d, d)
    y: torch.Tensor  # (n, d)
    theta0: torch.Tensor  # (n, d) the starting point

    @classmethod
    def draw(cls, n: int, generator: torch.Generator, dim: int = 10) -> Quadratics:
        g = dict(generator=generator)
        return cls(
            torch.randn(n, dim, dim, **g), torch.randn(n, dim, **g), torch.randn(n, dim, **g)
        )

    def loss(self, theta: torch.Tensor, t: int) -> torch.Tensor:
        """theta (n, d) -> ||W theta - y||^2 (n,); the same function at every step."""
        residual = (self.W @ theta[..., None]).squeeze(-1) - self.y  # (n, d)
        return residual.pow(2).sum(-1)


@dataclass(frozen=True)
class MLPShape:
    """An MLP classifier of 28x28 images: hidden layer widths, their activation, and how its
    weights and biases start (`INITS`)."""

    hidden: tuple[int, ...] = (20,)
    activation: str = "sigmoid"
    init: str = "uniform"

    def __post_init__(self) -> None:
        if self.activation not in ACTIVATIONS:
            raise ConfigError(f"activation must be one of {', '.join(ACTIVATIONS)}, "
                              f"got '{self.activation}'")  # fmt: skip
        if self.init not in INITS:
            raise ConfigError(f"init must be one of {', '.join(INITS)}, got '{self.init}'")
        if not self.hidden or min(self.hidden) < 1:
            raise ConfigError(f"hidden layer widths must be >= 1, got {self.hidden}")

    @property
    def layers(self) -> list[tuple[int, int]]:
        """(fan_in, fan_out) of each linear layer."""
        widths = [28 * 28, *self.hidden, 10]
        return list(zip(widths[:-1], widths[1:], strict=True))

    @property
    def size(self) -> int:
        return sum(i * o + o for i, o in self.layers)


@dataclass(frozen=True)
class MLPProblems:
    shape: MLPShape
    images: torch.Tensor  # (N, 784) float in [0, 1], shared by every problem
    labels: torch.Tensor  # (N,)
    index: torch.Tensor  # (n, steps, 128): the images of each problem's minibatch at each step
    theta0: torch.Tensor  # (n, P)

    @classmethod
    def draw(cls, n: int, generator: torch.Generator, images: torch.Tensor, labels: torch.Tensor,
             steps: int, shape: MLPShape = MLPShape()) -> MLPProblems:  # fmt: skip
        """n problems, each with its own start (`shape.init`: weights and biases as torch's
        Linear starts them, U(-1/sqrt(fan_in), +), or N(0, 0.01^2) as the paper's code) and its
        own minibatches for `steps` steps."""
        index = torch.randint(len(images), (n, steps, MNIST_BATCH), generator=generator)
        parts = []
        for fan_in, fan_out in shape.layers:
            size = (n, fan_in * fan_out + fan_out)
            if shape.init == "normal":
                parts.append(0.01 * torch.randn(size, generator=generator))
            else:
                u = torch.rand(size, generator=generator)
                parts.append((2 * u - 1) / math.sqrt(fan_in))
        return cls(shape, images, labels, index, torch.cat(parts, -1))

    def loss(self, theta: torch.Tensor, t: int) -> torch.Tensor:
        """theta (n, P) -> mean cross-entropy on each problem's minibatch of step t (n,)."""
        idx = self.index[:, t]  # (n, B)
        h, labels = self.images[idx], self.labels[idx]  # (n, B, 784), (n, B)
        act, start = ACTIVATIONS[self.shape.activation], 0
        for i, (fan_in, fan_out) in enumerate(self.shape.layers):
            w = theta[:, start : start + fan_in * fan_out].view(-1, fan_in, fan_out)
            b = theta[:, start + fan_in * fan_out : start + fan_in * fan_out + fan_out]
            start += fan_in * fan_out + fan_out
            h = torch.baddbmm(b[:, None], h, w)  # (n, B, fan_out)
            if i < len(self.shape.layers) - 1:
                h = act(h)
        ce = F.cross_entropy(h.flatten(0, 1), labels.flatten(), reduction="none")
        return ce.view(labels.shape).mean(-1)


# --- families: what `--data` names --------------------------------------------------------------
FAMILIES = ("quadratic", "mnist")


@dataclass(frozen=True)
class Family:
    """A family of problems: `quadratic`, or `mnist` with its training images (N, 784) in [0, 1]
    and labels, for MLPs of `shape`."""

    name: str
    images: torch.Tensor | None = None
    labels: torch.Tensor | None = None
    shape: MLPShape = MLPShape()

    def draw(self, n: int, generator: torch.Generator, steps: int) -> Quadratics | MLPProblems:
        """n problems that can be scored at steps 0..steps."""
        if self.name == "quadratic":
            return Quadratics.draw(n, generator)
        return MLPProblems.draw(n, generator, self.images, self.labels, steps + 1, self.shape)
