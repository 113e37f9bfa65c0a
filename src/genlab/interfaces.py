"""The few protocols genlab's parts agree on. Read this file first.

Units: log-likelihoods are nats per example unless a name says bits. Shapes are batch-first.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import torch
from torch import nn

if TYPE_CHECKING:  # types only: the training layer sits above this file
    from genlab.train.config import TrainConfig
    from genlab.train.state import TrainState


@runtime_checkable
class GenerativeModel(Protocol):
    """What the training loop and `genlab eval/sample` need from a model (an nn.Module).

    - `loss(batch)`: a dict of scalar tensors; key "loss" is minimised, the rest are logged.
      `batch` is {"x": (B, ...), "y": (B,) optional}.
    - `sample(n, generator=...)`: (n, ...) samples; for images, floats in [0, 1].

    Models with a likelihood also expose it: a VAE gives `log_weights(x, k)` for importance
    sampling (its `log p(x)` is only bounded); exact models will give `log_prob(x) -> (B,)`.
    A model that needs its own optimisation step (a GAN alternates two optimizers) passes a
    step function `step(state, batch) -> metrics` to `genlab.train.loop.fit` instead of
    bending `loss`.
    """

    def loss(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]: ...

    def sample(self, n: int, *, generator: torch.Generator | None = None) -> torch.Tensor: ...


@runtime_checkable
class LatentModel(Protocol):
    """A model with a latent space to look at (VAE, autoencoder): `genlab latent` uses these."""

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, Z): the code of each image (a VAE's posterior mean)."""
        ...

    def mean_image(self, z: torch.Tensor) -> torch.Tensor:
        """(B, Z) -> (B, C, H, W) in [0, 1]."""
        ...


@runtime_checkable
class NoiseGenerator(Protocol):
    """A model that maps noise to images (a GAN generator): `generate(z)`, z of size
    `cfg.latent_dim`, images (B, C, H, W) in [0, 1]. Used for interpolation strips."""

    def generate(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor: ...


# --- what the registry's entries hold (genlab.tasks.entry.ModelEntry) ---------------------------
# Every hook takes and returns plain values; a dataset is whatever the entry's `load_data` made.


class Build(Protocol):
    def __call__(self, options: Any) -> nn.Module:
        """A fresh network from its options (a frozen dataclass)."""
        ...


class LoadData(Protocol):
    def __call__(self, data: str, data_dir: str | None, options: Any) -> Any:
        """The dataset `data` (e.g. "mnist") from `data_dir` (else $GENLAB_DATA or the cache)."""
        ...


class BatchSource(Protocol):
    def batch(self, step: int) -> Any:
        """The global batch for `step`: a dict of tensors, or an agent's `Trajectory` (whose
        `stats` the loop logs). A pure function of the step where resume must be exact."""
        ...


class MakeBatches(Protocol):
    def __call__(
        self, options: Any, dataset: Any, batch_size: int, seed: int, *, model: nn.Module
    ) -> BatchSource:
        """The loop's batches (with `close()` if it holds processes or files)."""
        ...


class Evaluate(Protocol):
    def __call__(
        self, model: nn.Module, options: Any, dataset: Any, *, k: int, n: int | None,
        seed: int, tasks: int, episodes: int,
    ) -> dict:  # fmt: skip
        """Test metrics; each hook reads the keyword arguments it needs and ignores the rest."""
        ...


class Pictures(Protocol):
    def __call__(
        self, model: nn.Module, options: Any, dataset: Any, out: Path, seed: int
    ) -> list[Path]:
        """The pictures written after training, into the folder `out`."""
        ...


class Sample(Protocol):
    def __call__(self, model: nn.Module, options: Any, n: int, out: Path, seed: int) -> Path:
        """`genlab sample`: n samples written to `out` (a file or a folder)."""
        ...


class MakeState(Protocol):
    def __call__(self, model: nn.Module, cfg: TrainConfig) -> TrainState:
        """The optimizers, schedules and EMA the loop trains `model` with."""
        ...


class MakeStep(Protocol):
    def __call__(self, cfg: TrainConfig) -> Callable[[TrainState, dict], dict]:
        """The step function `step(state, batch) -> metrics` the loop calls."""
        ...


class OnCheckpoint(Protocol):
    def __call__(self, state: TrainState, run_dir: Path) -> object:
        """Runs after each periodic checkpoint (e.g. draws a sample grid); changes nothing."""
        ...


class FramesPerStep(Protocol):
    def __call__(self, options: Any, cfg: TrainConfig) -> int:
        """Agents: environment frames per training step (so `--frames` converts to steps)."""
        ...
