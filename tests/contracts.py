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


def check_bf16_metrics_near_fp32(
    model: nn.Module, metrics: Callable[[], dict[str, torch.Tensor]], rel: float, atol: float
) -> dict[str, dict[str, torch.Tensor]]:
    """`metrics()` in float32 and under bf16 autocast: the model's 2-d convolutions ran in both
    formats, every bf16 metric came out float32, and each is within `rel` of its float32 value
    plus `atol`. Returns both sets of metrics, by precision."""
    from genlab.train.loop import autocast

    formats: set[torch.dtype] = set()
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            m.register_forward_hook(lambda mod, inp, out: formats.add(out.dtype))
    values = {}
    for precision in ("fp32", "bf16"):
        with autocast(precision):
            values[precision] = metrics()
    assert formats == {torch.float32, torch.bfloat16}
    assert {k: v.dtype for k, v in values["bf16"].items() if v.dtype != torch.float32} == {}
    for k, full in values["fp32"].items():
        assert abs(values["bf16"][k].item() - full.item()) < rel * abs(full.item()) + atol, k
    return values


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
