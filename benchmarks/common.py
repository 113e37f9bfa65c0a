"""Helpers shared by the benchmark scripts (run them from the repository root)."""

from __future__ import annotations

import dataclasses
import shutil
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from genlab.models.registry import get_model
from genlab.train.config import TrainConfig
from genlab.train.loop import FitResult
from genlab.workflow import train


def parse_set(items: list[str], options_cls: type) -> dict:
    """['key=value', ...] -> {key: value} typed like the dataclass field's default."""
    fields = {f.name: f for f in dataclasses.fields(options_cls)}
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or key not in fields:
            raise SystemExit(
                f"--set {item}: expected KEY=VALUE with KEY one of {', '.join(fields)}"
            )
        kind = type(fields[key].default)
        out[key] = value.lower() in ("1", "true", "yes") if kind is bool else kind(value)
    return out


def train_from_scratch(model: str, data: str, options, cfg, out: Path) -> FitResult:
    """A benchmark run: an emptied run directory, no progress bar, and no figures for a budget
    that did not finish (a SystemExit instead)."""
    shutil.rmtree(out, ignore_errors=True)
    result = train(model, data, options, cfg, Path(out), progress=False)
    if result.status != "done":
        raise SystemExit(
            f"{model} interrupted at step {result.step}: no figures for a partial budget"
        )
    return result


def train_for_minutes(
    model: str, data: str, options, minutes: float, out: Path, threads: int | None = None, **train
) -> FitResult:
    """`train_from_scratch` with the model's default training options, a wall-clock budget,
    a thread count (None: all cores) and any other training options given."""
    cfg = TrainConfig(
        minutes=minutes, threads=threads, **{**get_model(model).train_defaults, **train}
    )
    return train_from_scratch(model, data, options, cfg, out)


def median_ms(fn: Callable[[], object], repeats: int = 20) -> float:
    """Median wall-clock milliseconds of `repeats` calls of fn, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return round(1000 * statistics.median(times), 1)
