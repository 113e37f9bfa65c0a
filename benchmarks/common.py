"""Helpers shared by the benchmark scripts (run them from the repository root)."""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from genlab.errors import ConfigError
from genlab.tasks.registry import get_model
from genlab.tasks.training import RunSpec, train
from genlab.train import netns, runs
from genlab.train.config import TrainConfig, parse_overrides
from genlab.train.loop import FitResult
from genlab.workflow import evaluate


def parse_set(items: list[str], options_cls: type) -> dict:
    """['key=value', ...] from `--set` -> {key: value} typed like the dataclass field's default."""
    try:
        return parse_overrides(items, options_cls)
    except ConfigError as e:
        raise SystemExit(f"--set {e}") from e


def train_from_scratch(model: str, data: str, options, cfg, out: Path) -> FitResult:
    """A benchmark run: an emptied run directory, no progress bar, and no figures for a budget
    that did not finish (a SystemExit instead)."""
    shutil.rmtree(out, ignore_errors=True)
    spec = RunSpec(entry=get_model(model), data=data, options=options, train=cfg, run_dir=Path(out))
    result = train(spec, progress=False)
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


def train_unless_done(
    model: str, data: str, options, run: Path, data_dir: str | None = None, **train_options
) -> None:
    """Train `model` into `run` with its default training options and those given, unless the
    run has already trained to its budget: a finished part is reused, not retrained (delete it
    to redo), and an interrupted one resumes."""
    if runs.finished(run):
        return
    entry = get_model(model)
    cfg = TrainConfig(**{**entry.train_defaults, **train_options})
    spec = RunSpec(entry=entry, data=data, options=options, train=cfg, run_dir=Path(run),
                   data_dir=data_dir)  # fmt: skip
    train(spec, progress=False)


def run_two_at_a_time(jobs: list[tuple[Path, list[str]]]) -> None:
    """Run each (run directory, command) whose run has not trained to its budget (an interrupted
    one resumes), at most two at once (one-thread trainings on the 2-core machine); SystemExit
    naming a command that failed."""
    todo = [(run, cmd) for run, cmd in jobs if not runs.finished(run)]
    running: list[subprocess.Popen] = []
    while todo or running:
        while todo and len(running) < 2:
            running.append(subprocess.Popen(todo.pop(0)[1]))
        time.sleep(1)
        for proc in [r for r in running if r.poll() is not None]:
            if proc.returncode:
                raise SystemExit(f"a run failed: {' '.join(proc.args)}")
            running.remove(proc)


def seed_stats(values: list[float]) -> dict:
    """Mean and sample standard deviation over seeds (0 for one seed), and each value."""
    return {"mean": round(statistics.mean(values), 3),
            "sd": round(statistics.stdev(values), 3) if len(values) > 1 else 0.0,
            "errors": [round(v, 3) for v in values]}  # fmt: skip


def evaluation(run: Path, **options) -> dict:
    """`genlab eval RUN` (also written to RUN/eval.json), without the run's own labels."""
    return without_labels(evaluate(Path(run), **options))


def without_labels(result: dict) -> dict:
    """An evaluation's numbers, without the model, data and split it names."""
    return {k: v for k, v in result.items() if k not in ("model", "data", "split")}


def median_ms(fn: Callable[[], object], repeats: int = 20) -> float:
    """Median wall-clock milliseconds of `repeats` calls of fn, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return round(1000 * statistics.median(times), 1)


class StageLedger:
    """A multi-stage benchmark's record, `path` (JSON), so that running it again after an
    interruption, even a kill, resumes it honestly: a finished stage is skipped and its saved
    result returned, and each stage's wall-clock minutes add up across runs. While a stage runs
    its minutes are written every `flush_s` seconds, so a kill loses at most that much.
    `options` (JSON-serialisable) must be the ones the record was started with, except those
    named in `stage_options` (option -> the stages that alone depend on it), which may change
    while none of their stages has begun (e.g. adding an ablation stage to a finished run)."""

    def __init__(
        self, path: Path, options: dict, flush_s: float = 30.0,
        stage_options: dict[str, tuple[str, ...]] | None = None,
    ):  # fmt: skip
        self.path, self.flush_s, self.lock = Path(path), flush_s, threading.Lock()
        fresh = {"options": options, "minutes": {}, "results": {}}
        self.data = json.loads(self.path.read_text()) if self.path.is_file() else fresh
        before, later = self.data["options"], stage_options or {}
        begun = {*self.data["minutes"], *self.data["results"]}
        changed = sorted(k for k in {*before, *options} if before.get(k) != options.get(k)
                         and (k not in later or begun & set(later[k])))  # fmt: skip
        if changed:
            raise SystemExit(
                f"{self.path} was started with other options ("
                + ", ".join(f"{k}: {before.get(k)} then, {options.get(k)} now" for k in changed)
                + "): run it with the same ones, or start afresh elsewhere"
            )
        self.data["options"] = options
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._save()

    def minutes(self, stage: str) -> float:
        """Wall-clock minutes spent on `stage` so far, over every run."""
        return self.data["minutes"].get(stage, 0.0)

    def run(self, stage: str, fn: Callable[[float], object]) -> object:
        """`fn(minutes already spent on the stage)` -> its result (JSON-serialisable), recorded;
        or the recorded result if the stage finished in an earlier run."""
        if stage in self.data["results"]:
            return self.data["results"][stage]
        spent, start, stop = self.minutes(stage), time.monotonic(), threading.Event()

        def count() -> None:
            self.data["minutes"][stage] = spent + (time.monotonic() - start) / 60
            self._save()

        def tick() -> None:
            while not stop.wait(self.flush_s):
                count()

        clock = threading.Thread(target=tick, daemon=True)
        clock.start()
        try:
            result = fn(spent)
        finally:
            stop.set()
            clock.join()
            count()
        self.data["results"][stage] = result
        self._save()
        return result

    def _save(self) -> None:
        with self.lock:
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.data, indent=1))
            os.replace(tmp, self.path)


def in_private_network(needed: bool = True) -> None:
    """Re-run this benchmark in a private network with only loopback (`genlab.train.netns`)
    when it will start Ray and is not in one yet: Ray probes outside addresses otherwise."""
    if needed and not netns.inside():
        reason = netns.unavailable()
        if reason:
            raise SystemExit(f"error: Ray benchmarks run in a private network, but {reason}")
        os.execvp("unshare", netns.command([sys.executable, *sys.argv]))
