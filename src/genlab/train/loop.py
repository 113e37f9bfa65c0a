"""The one training loop. It owns budgets, progress, checkpoint/resume, signals, NaN checks and
logging; a model owns only its step function `step_fn(state, batch) -> metrics`.

    state = make_state(model, cfg)
    result = fit(state, batches, cfg, run_dir)          # default step: minimise model.loss(batch)["loss"]
    result = fit(state, batches, cfg, run_dir, gan_step)  # a GAN alternates its own optimizers

Running `fit` again on the same `run_dir` resumes from its checkpoint and continues to the new
budget; the losses match an uninterrupted run exactly (same seed, process count and `--threads`:
without it, the thread count follows the cores other processes leave free; see
`genlab.train.hardware`).
"""

from __future__ import annotations

import contextlib
import math
import signal
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from genlab.errors import NonFiniteError
from genlab.interfaces import BatchSource
from genlab.train import distributed as dist
from genlab.train.config import TrainConfig, lr_factor
from genlab.train.hardware import ThreadGovernor
from genlab.train.logger import MetricsLogger, start_clean, truncate_after
from genlab.train.profiling import StepProfiler
from genlab.train.state import (
    CHECKPOINT,
    EMA,
    LoopState,
    TrainState,
    read_checkpoint,
    restore,
    save_checkpoint,
)

StepFn = Callable[[TrainState, dict[str, torch.Tensor]], dict[str, torch.Tensor]]


@dataclass(frozen=True)
class FitResult:
    status: str  # "done" or "interrupted"
    step: int
    seconds: float
    checkpoint: Path | None


def adam(
    params: Iterable[torch.Tensor],
    lr: float,
    *,
    betas: tuple[float, float] = (0.9, 0.999),
    weight_decay: float = 0.0,
) -> torch.optim.AdamW:
    """genlab's Adam: AdamW (decoupled weight decay, none unless asked) with torch's fused
    kernel, one pass over all weights instead of a dozen element-wise operations per tensor. On
    the default VAE's 3.3M weights, 2 threads: 2.2 ms a step against 17.8 ms unfused (issue 43;
    docs/results.md). Same update, to float rounding (tests/train/test_loop.py)."""
    return torch.optim.AdamW(params, lr=lr, betas=betas, weight_decay=weight_decay, fused=True)


def step_generator(seed: int, step: int) -> torch.Generator:
    """A torch generator that is a pure function of (seed, step): for BatchSources that draw
    their problems afresh every step, so that a resumed run draws what it would have."""
    return torch.Generator().manual_seed(int(np.random.default_rng([seed, step]).integers(2**62)))


def make_state(
    model: nn.Module, cfg: TrainConfig, optimizers: dict[str, torch.optim.Optimizer] | None = None
) -> TrainState:
    """Optimizers (default: one AdamW named "main"), each with the warmup/schedule of `cfg`, and
    the optional EMA of weights. Models with several optimizers (a GAN) pass their own."""
    if optimizers is None:
        optimizers = {"main": adam(model.parameters(), cfg.lr, weight_decay=cfg.weight_decay)}
    ema = EMA(model, cfg.ema_decay) if cfg.ema_decay else None
    state = TrainState(model, optimizers, {}, ema)
    for name, opt in optimizers.items():
        state.schedulers[name] = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: lr_factor(s, cfg, state.budget_fraction)
        )
    return state


def check_finite(step: int, metrics: dict[str, torch.Tensor | float]) -> None:
    for k, v in metrics.items():
        if not math.isfinite(float(v)):
            raise NonFiniteError(f"step {step}: metric '{k}' is {float(v)}")


def autocast(precision: str) -> contextlib.AbstractContextManager:
    """The forward pass's number format: 'fp32' as is; 'bf16' runs convolutions and matrix
    products in bfloat16 on the CPU (autocast), the rest as float32 or as its inputs."""
    if precision == "bf16":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def laid_out_for(model: nn.Module, precision: str) -> nn.Module:
    """The model with the weight layout its precision runs fastest in: for 'bf16', 2-d
    convolution weights channels-last (oneDNN's bfloat16 kernels); 'fp32' as is. In place."""
    return model.to(memory_format=torch.channels_last) if precision == "bf16" else model


def optimizer_update(
    state: TrainState,
    name: str,
    loss: torch.Tensor,
    params: list[nn.Parameter] | None = None,
    grad_clip: float | None = None,
) -> torch.Tensor | None:
    """One update of optimizer `name` on `loss`: zero its gradients, backpropagate, average the
    gradients of `params` (default: the optimizer's) over processes, clip their global norm to
    `grad_clip` (the norm before clipping is returned; None without clipping), step. Every step
    function updates weights through here; schedules and the EMA advance once per loop step, in
    the step function."""
    opt = state.optimizers[name]
    if params is None:
        params = [p for group in opt.param_groups for p in group["params"]]
    opt.zero_grad(set_to_none=True)
    loss.backward()
    dist.average_gradients(params)
    norm = nn.utils.clip_grad_norm_(params, grad_clip) if grad_clip is not None else None
    opt.step()
    return norm


def loss_function(compile: bool = False) -> Callable[[nn.Module, dict], dict]:
    """`(model, batch) -> model.loss(batch)`; with `compile`, through `torch.compile(model.loss)`
    (inductor), compiled on the first call, whose time is printed (the forward's compilation and
    that call's forward pass; AOTAutograd compiles the backward at the first backward). The
    compiled function is kept per model."""
    if not compile:
        return lambda model, batch: model.loss(batch)
    compiled: dict[int, Callable] = {}

    def loss(model: nn.Module, batch: dict) -> dict:
        fn = compiled.get(id(model))
        if fn is not None:
            return fn(batch)
        fn = compiled[id(model)] = torch.compile(model.loss)
        start = time.perf_counter()
        out = fn(batch)
        if dist.rank() == 0:
            print(f"genlab: compiled the loss's forward in {time.perf_counter() - start:.1f} s "
                  "(its backward compiles in this first step's backward)", file=sys.stderr)  # fmt: skip
        return out

    return loss


def gradient_step(
    grad_clip: float | None = None, precision: str = "fp32", compile: bool = False
) -> StepFn:
    """The default step: minimise `model.loss(batch)["loss"]` with the 'main' optimizer, its
    forward pass at `precision` (see `autocast`; the backward follows the forward's formats),
    compiled if asked (see `loss_function`)."""
    loss_of = loss_function(compile)

    def step(state: TrainState, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        with autocast(precision):
            metrics = loss_of(state.model, batch)
        check_finite(
            state.step + 1, {"loss": metrics["loss"].detach()}
        )  # before the weights change
        params = [p for p in state.model.parameters() if p.requires_grad]
        norm = optimizer_update(state, "main", metrics["loss"], params, grad_clip)
        if norm is not None:
            metrics["grad_norm"] = norm
        state.schedulers["main"].step()
        metrics["lr"] = torch.tensor(state.optimizers["main"].param_groups[0]["lr"])
        return {k: v.detach() for k, v in metrics.items()}

    return step


class _Stop:
    """SIGINT/SIGTERM set a flag; the loop saves and stops after the current step. A second
    Ctrl-C interrupts at once (the last checkpoint on disk is still good)."""

    def __init__(self) -> None:
        self.requested = False
        self._old: dict[int, object] = {}

    def _handle(self, signum, frame) -> None:
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self) -> _Stop:
        for s in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(
                ValueError
            ):  # not the main thread: signals stay with the caller
                self._old[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for s, h in self._old.items():
            signal.signal(s, h)


class _Progress:
    """tqdm on a terminal (over steps, or over seconds for a --minutes budget, so the ETA is
    right either way); otherwise a plain line every 30 s, so logs show progress too."""

    def __init__(self, cfg: TrainConfig, start: int, enabled: bool):
        self.cfg, self.enabled, self.t0, self.last = cfg, enabled, time.monotonic(), 0.0
        self.by_time = cfg.steps is None
        self.bar = None
        if enabled and sys.stderr.isatty():
            total, initial, unit = (
                (round(60 * cfg.minutes), 0, "s") if self.by_time else (cfg.steps, start, "step")
            )
            self.bar = tqdm(total=total, initial=initial, unit=unit, dynamic_ncols=True)

    def update(self, step: int, metrics: dict[str, float]) -> None:
        if not self.enabled:
            return
        shown = {k: f"{v:.4g}" for k, v in metrics.items() if k != "lr"}
        elapsed = time.monotonic() - self.t0
        if self.bar is not None:
            self.bar.update((int(elapsed) if self.by_time else step) - self.bar.n)
            self.bar.set_postfix({"step": step, **shown} if self.by_time else shown, refresh=False)
        elif elapsed - self.last > 30:
            self.last = elapsed
            target = (
                f"/{self.cfg.steps}"
                if self.cfg.steps
                else f" ({elapsed / 60:.1f}/{self.cfg.minutes} min)"
            )
            print(f"step {step}{target} {shown}", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _record(step: int, metrics: dict, logger: MetricsLogger | None, bar: _Progress) -> None:
    """Check a step's metrics and, on rank 0 (which alone has a logger), log and show them."""
    values = {k: float(v) for k, v in metrics.items()}
    check_finite(step, values)
    if logger is not None:
        logger.log(step, values)
        bar.update(step, values)


def step_hooks(cfg: TrainConfig, run_dir: Path, main: bool) -> list:
    """What runs after every step besides training: the thread governor (unless --threads was
    given) and the profiler (--profile N, on rank 0)."""
    hooks: list = []
    if cfg.threads is None:
        hooks.append(ThreadGovernor(base=torch.get_num_threads()))
    if cfg.profile and main:
        hooks.append(StepProfiler(cfg.profile, run_dir / "profile"))
    return hooks


def fit(
    state: LoopState,
    batches: BatchSource,
    cfg: TrainConfig,
    run_dir: Path,
    step_fn: StepFn | None = None,
    progress: bool = True,
    on_checkpoint: Callable[[TrainState, Path], None] | None = None,
) -> FitResult:
    """Train until `cfg.steps` total steps or `cfg.minutes` of this call, whichever comes first
    (with several processes, the first to run out of time stops them all at the same step).

    `state` is a TrainState, or any LoopState (World Models' CMA-ES search brings its own). The
    loss is checked for NaN/Inf at every step (before the weights change), the other metrics at
    every logged step, and the whole state before every save (nothing non-finite is saved). The
    last step is always logged and checkpointed. Without a checkpoint in `run_dir` the run starts
    clean (an earlier attempt's metrics are dropped). `on_checkpoint(state, run_dir)` runs on
    rank 0 after each periodic checkpoint (e.g. to draw a sample grid); it must not change the
    training state. The caller holds the run's lock (`genlab.train.runs.exclusive`).
    """
    if cfg.steps is None and cfg.minutes is None:
        raise ValueError("give a budget: steps or minutes")
    step_fn = step_fn or gradient_step(cfg.grad_clip, cfg.precision, cfg.compile)
    run_dir = Path(run_dir)
    main = dist.rank() == 0
    if (run_dir / CHECKPOINT).is_file():
        restore(state, read_checkpoint(run_dir), run_dir / CHECKPOINT)
        if main:
            truncate_after(run_dir, state.step)
    elif main:  # nothing was kept: rows and events of an earlier attempt would be repeated
        start_clean(run_dir)
    state.prepare()
    logger = MetricsLogger(run_dir) if main else None
    bar = _Progress(cfg, state.step, progress and main)
    # the seconds this run will have trained when the time budget ends (resumes included)
    budget_seconds = state.seconds + 60 * cfg.minutes if cfg.minutes is not None else math.inf
    if isinstance(state, TrainState):
        state.budget_fraction = state.seconds / budget_seconds
    status, saved_at = "done", None
    hooks = step_hooks(cfg, run_dir, main)
    try:
        with _Stop() as stop, torch.enable_grad():  # even if a caller disabled it
            t_last, logged, metrics = time.monotonic(), state.step, {}
            while cfg.steps is None or state.step < cfg.steps:
                batch = batches.batch(state.step)
                # A batch may carry figures about how it was made (an agent's episode returns,
                # frames, policy lag): logged beside the step's own metrics.
                metrics = {**step_fn(state, dist.shard(batch)), **getattr(batch, "stats", {})}
                # Here, so a model's own step need not remember it (a search's state has none).
                if isinstance(state, TrainState) and state.ema is not None:
                    state.ema.update(state.model)
                state.step += 1
                now = time.monotonic()
                state.seconds += now - t_last
                t_last = now
                # Agreed by all processes: whether to stop, and the schedule's clock.
                stop_asked, fraction = dist.max_over_ranks(
                    [stop.requested, state.seconds / budget_seconds]
                )
                if isinstance(state, TrainState):  # read by the schedule in the next step
                    state.budget_fraction = fraction
                for hook in hooks:
                    hook.tick()
                if state.step % cfg.log_every == 0:
                    _record(state.step, metrics, logger, bar)
                    logged = state.step
                if stop_asked:
                    status = "interrupted"
                    break
                if state.step % cfg.checkpoint_every == 0 and main:
                    saved_at = save_checkpoint(state, run_dir)
                    if on_checkpoint is not None:
                        on_checkpoint(state, run_dir)
                if fraction >= 1.0:  # out of time
                    break
            if metrics and logged != state.step:
                _record(state.step, metrics, logger, bar)
        if main:
            saved_at = save_checkpoint(state, run_dir)
    except NonFiniteError as e:
        kept = (
            f"the last good checkpoint is kept at {run_dir / CHECKPOINT}"
            if (run_dir / CHECKPOINT).is_file()
            else "no checkpoint had been saved yet"
        )
        raise NonFiniteError(f"{e}; training stopped, {kept}") from None
    finally:
        for hook in hooks:
            getattr(hook, "close", lambda: None)()
        bar.close()
        if logger:
            logger.close()
    return FitResult(status, state.step, state.seconds, saved_at)
