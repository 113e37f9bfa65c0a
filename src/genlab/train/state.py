"""Everything a run needs to continue exactly: weights, optimizers, EMA, step counter, RNG.

One checkpoint format for all of genlab: `<run>/checkpoint.pt`, written atomically (temp file +
fsync + rename, so a crash mid-save keeps the previous good file) and read with
`torch.load(weights_only=True)`, which never unpickles arbitrary objects.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import torch
from torch import nn

from genlab.data.files import atomic_torch_save
from genlab.errors import NonFiniteError, RunError
from genlab.train import distributed as dist

CHECKPOINT = "checkpoint.pt"


class EMA:
    """Exponential moving average of a module's parameters and buffers: s <- d*s + (1-d)*w."""

    def __init__(self, module: nn.Module, decay: float):
        if not 0.0 < decay < 1.0:
            raise ValueError(f"ema decay must be in (0, 1), got {decay}")
        self.decay = decay
        self.shadow = copy.deepcopy(module).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, module: nn.Module) -> None:
        for s, w in zip(self.shadow.parameters(), module.parameters(), strict=True):
            s.lerp_(w, 1.0 - self.decay)
        for s, w in zip(self.shadow.buffers(), module.buffers(), strict=True):
            s.copy_(w)


class LoopState(Protocol):
    """What the loop needs of a state: its step counter and seconds, a `prepare()` before the
    first step, and a state dict for checkpoints. `TrainState` is the usual one; a search that
    is not gradient descent (World Models' CMA-ES) brings its own."""

    step: int
    seconds: float

    def prepare(self) -> None: ...

    def state_dict(self) -> dict: ...

    def load_state_dict(self, sd: dict) -> None: ...


@dataclass
class TrainState:
    """The mutable state of one run. A step function reads and updates it; the loop saves it."""

    model: nn.Module
    optimizers: dict[str, torch.optim.Optimizer]
    schedulers: dict[str, torch.optim.lr_scheduler.LRScheduler] = field(default_factory=dict)
    ema: EMA | None = None
    step: int = 0  # optimizer steps completed
    seconds: float = 0.0  # wall-clock seconds trained, summed over resumes
    # `seconds` over (the seconds trained before this invocation + its --minutes), set by the
    # loop after each step for a schedule that ends with the budget; not saved
    budget_fraction: float = 0.0

    def prepare(self) -> None:
        """Before the loop's first step: the same weights on every rank, training mode."""
        dist.broadcast_parameters(self.model)
        self.model.train()

    def state_dict(self) -> dict:
        return {
            "step": self.step,
            "seconds": self.seconds,
            "model": self.model.state_dict(),
            "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
            "schedulers": {k: s.state_dict() for k, s in self.schedulers.items()},
            "ema": self.ema.shadow.state_dict() if self.ema else None,
            "rng": torch.get_rng_state(),
        }

    def load_state_dict(self, sd: dict) -> None:
        self.step, self.seconds = int(sd["step"]), float(sd["seconds"])
        self.model.load_state_dict(sd["model"])
        for k, o in self.optimizers.items():
            o.load_state_dict(sd["optimizers"][k])
        for k, s in self.schedulers.items():
            s.load_state_dict(sd["schedulers"][k])
        if self.ema is not None:
            if sd["ema"] is None:
                raise RunError("this run was trained without EMA; drop --ema-decay to resume it")
            self.ema.shadow.load_state_dict(sd["ema"])
        torch.set_rng_state(sd["rng"])


def first_nonfinite(value, where: str = "") -> str | None:
    """The dotted name of the first floating-point tensor (or float) in a state dict holding a
    NaN or an infinity, or None if every one is finite."""
    if isinstance(value, torch.Tensor):
        finite = not value.is_floating_point() or bool(torch.isfinite(value).all())
        return None if finite else where
    if isinstance(value, float):
        return None if math.isfinite(value) else where
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list | tuple):
        items = enumerate(value)
    else:
        return None
    for k, v in items:
        if (found := first_nonfinite(v, f"{where}.{k}" if where else str(k))) is not None:
            return found
    return None


def save_checkpoint(state: LoopState, run_dir: Path) -> Path:
    """Write the state atomically, unless a weight (or EMA weight, or optimizer moment) is NaN
    or infinite: then NonFiniteError, and the checkpoint already on disk stays the last good
    one."""
    path = Path(run_dir) / CHECKPOINT
    sd = state.state_dict()
    if (bad := first_nonfinite({k: v for k, v in sd.items() if k != "rng"})) is not None:
        raise NonFiniteError(f"step {state.step}: {bad} is not finite, so it was not saved")
    atomic_torch_save(sd, path)
    return path


def read_checkpoint(run_dir: Path) -> dict:
    """Load `<run>/checkpoint.pt` safely (tensors only, never code); a missing, empty, truncated
    or foreign file is a RunError naming it and what is wrong."""
    path = Path(run_dir) / CHECKPOINT
    if not path.is_file():
        raise RunError(f"no checkpoint at {path}: is '{run_dir}' a genlab run directory?")
    if path.stat().st_size == 0:
        raise RunError(f"checkpoint {path} is empty (delete it to train from the start)")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch's own message suggests unsafe loading: say what it means
        kind = type(e).__name__
        raise RunError(f"checkpoint {path} is truncated, corrupt or not a genlab checkpoint "
                       f"({kind}); delete it to train from the start") from None  # fmt: skip
    if not isinstance(ckpt, dict) or not ({"step", "generation"} & ckpt.keys()):
        raise RunError(f"checkpoint {path} is not a genlab checkpoint (no step recorded)")
    return ckpt


def restore(state: LoopState, ckpt: dict, path: Path) -> None:
    """`state.load_state_dict(ckpt)`, a RunError naming `path` if the checkpoint does not fit."""
    try:
        state.load_state_dict(ckpt)
    except RunError:
        raise
    except (KeyError, RuntimeError, ValueError, TypeError, AttributeError) as e:
        detail = f"no {e}" if isinstance(e, KeyError) else str(e).splitlines()[0][:300]
        raise RunError(f"checkpoint {path} does not fit this run ({detail})") from None
