"""Checks a model's own tests apply (see shared/GUIDE.md, 'Test contracts'): a finite loss whose
gradients reach every parameter, seeded sampling, seeded training; and `genlab` as a child
process. The run-level contract every registry entry passes is tests/tasks/test_contracts.py."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn


def check_loss_finite_and_gradients_reach_every_parameter(model: nn.Module, batch: dict) -> None:
    model.zero_grad(set_to_none=True)
    metrics = model.loss(batch)
    assert "loss" in metrics, f"loss() must return a 'loss' key, got {sorted(metrics)}"
    for k, v in metrics.items():
        assert math.isfinite(float(v.detach())), f"metric {k} = {float(v.detach())}"
    metrics["loss"].backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, f"no gradient reaches parameter {name}"
        assert p.grad.abs().sum() > 0, f"gradient of {name} is identically zero"


def check_sample(model: nn.Module, n: int, shape: tuple[int, ...], dtype=torch.float32) -> None:
    g = torch.Generator().manual_seed(0)
    x = model.sample(n, generator=g)
    assert x.shape == (n, *shape), f"sample shape {tuple(x.shape)}, expected {(n, *shape)}"
    assert x.dtype == dtype
    again = model.sample(n, generator=torch.Generator().manual_seed(0))
    assert torch.equal(x, again), "sampling with the same generator seed must repeat"


def check_seeded_runs_identical(
    make_model: Callable[[], nn.Module], batch: dict, steps: int = 3
) -> None:
    def run() -> list[float]:
        torch.manual_seed(0)
        model = make_model()
        opt = torch.optim.Adam(model.parameters(), 1e-3)
        losses = []
        for _ in range(steps):
            loss = model.loss(batch)["loss"]
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        return losses

    assert run() == run()


def genlab_process(*args: object, **kw) -> subprocess.Popen:
    """`genlab ARGS...` as a child process (for signals and timing), output captured as text."""
    exe = Path(sys.executable).parent / "genlab"
    return subprocess.Popen(
        [str(exe), *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
        **kw,
    )
