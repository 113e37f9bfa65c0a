"""Batches from tensors held in memory, as index tensors (no per-example Python work).

`batch(step)` is a pure function of (seed, step): shuffled epochs without replacement, the last
partial batch dropped, and a per-batch random generator for stochastic transforms (e.g. dynamic
binarization). A resumed run therefore sees exactly the batches the uninterrupted run would.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

Transform = Callable[[dict[str, torch.Tensor], torch.Generator], dict[str, torch.Tensor]]


def seeded(*keys: int) -> torch.Generator:
    """A generator seeded from a tuple of ints (e.g. (seed, epoch)), independent across tuples."""
    h = 0x9E3779B97F4A7C15
    for k in keys:
        h = (h ^ (k + 0x9E3779B9 + (h << 6) + (h >> 2))) & 0xFFFFFFFFFFFFFFFF
    return torch.Generator().manual_seed(h)


class InMemoryBatches:
    def __init__(
        self,
        tensors: dict[str, torch.Tensor],
        batch_size: int,
        seed: int = 0,
        transform: Transform | None = None,
    ):
        sizes = {k: v.shape[0] for k, v in tensors.items()}
        if len(set(sizes.values())) != 1:
            raise ValueError(f"tensors disagree on the number of examples: {sizes}")
        self.n = next(iter(sizes.values()))
        if batch_size > self.n:
            raise ValueError(f"batch size {batch_size} exceeds the {self.n} examples available")
        self.tensors, self.batch_size, self.seed, self.transform = (
            tensors,
            batch_size,
            seed,
            transform,
        )
        self.steps_per_epoch = self.n // batch_size
        self._epoch, self._perm = -1, torch.empty(0, dtype=torch.long)

    def indices(self, step: int) -> torch.Tensor:
        epoch, pos = divmod(step, self.steps_per_epoch)
        if epoch != self._epoch:
            self._epoch, self._perm = (
                epoch,
                torch.randperm(self.n, generator=seeded(self.seed, epoch)),
            )
        return self._perm[pos * self.batch_size : (pos + 1) * self.batch_size]

    def batch(self, step: int) -> dict[str, torch.Tensor]:
        idx = self.indices(step)
        out = {k: v[idx] for k, v in self.tensors.items()}
        if self.transform is not None:
            out = self.transform(out, seeded(self.seed, 1 << 20, step))
        return out
