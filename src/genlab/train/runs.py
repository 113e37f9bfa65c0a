"""Run directories on disk: where a run's config, checkpoint, metrics and pictures live.

<run>/config.json     resolved config: model, data, model options, training options
<run>/checkpoint.pt   the one checkpoint (see genlab.train.state)
<run>/metrics.jsonl   training metrics; <run>/tb/ the same for TensorBoard
<run>/eval.json       the last `genlab eval`
<run>/pictures/       PNGs written by train, sample and latent
<run>/.lock           held (flock) by the one process training the run; holds its PID

Every file is written atomically (`genlab.data.files`), so a reader never needs the lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path

import torch

from genlab.data.files import atomic_write_json, read_json, sweep_temp_files
from genlab.errors import RunError
from genlab.train.logger import read_metrics
from genlab.train.state import CHECKPOINT, read_checkpoint

DEFAULT_ROOT = Path("runs")
LOCK = ".lock"
CONFIG_KEYS = ("model", "data", "model_options", "train")
# What `genlab runs` shows from eval.json, in this order.
KEY_METRICS = (
    "nll_nats", "neg_elbo_nats", "rec_nats", "fid", "precision", "recall", "accuracy", "ci95",
    "reward", "trial2_accuracy", "mean_return", "std_return",
)  # fmt: skip


def new_run_dir(model: str, data: str, root: Path = DEFAULT_ROOT) -> Path:
    return root / f"{model}-{data}-{time.strftime('%Y%m%d-%H%M%S')}"


def make_run_dir(run_dir: Path) -> Path:
    """Create `run_dir` (and its parents); RunError naming it when it cannot be (a file is in
    the way, no permission, a read-only or special file system)."""
    run_dir = Path(run_dir)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / f".write-test-{os.getpid()}"
        probe.touch()
        probe.unlink()
    except OSError as e:
        raise RunError(f"cannot use '{run_dir}' as a run directory: {e.strerror or e}") from None
    return run_dir


@contextlib.contextmanager
def exclusive(run_dir: Path) -> Iterator[Path]:
    """Hold `run_dir`'s lock while training it: a second trainer is refused with a RunError
    naming the holder's PID. On taking the lock, temporary files left by killed writers are
    swept. The lock is released when the block ends, or by the OS when the process dies. A
    directory this call created is removed again if the block fails before writing into it."""
    run_dir = Path(run_dir)
    created = [d for d in (run_dir, *run_dir.parents) if not d.exists()]  # deepest first
    run_dir = make_run_dir(run_dir)
    fd = os.open(run_dir / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
            raise RunError(
                f"{run_dir} is being trained by process {holder}; wait for it to finish, stop "
                "it, or train into another --out"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        sweep_temp_files(run_dir)
        yield run_dir
    except BaseException:
        if created and [p.name for p in run_dir.iterdir()] == [LOCK]:
            (run_dir / LOCK).unlink()
            for d in created:  # nothing half-made to trip over on the next try
                with contextlib.suppress(OSError):
                    d.rmdir()
        raise
    finally:
        os.close(fd)  # releases the flock


def write_config(run_dir: Path, config: dict) -> None:
    atomic_write_json(make_run_dir(run_dir) / "config.json", config)


def read_config(run_dir: Path) -> dict:
    """A run's config.json; RunError naming the file if it is missing, unreadable or lacks a
    field every run has."""
    path = Path(run_dir) / "config.json"
    if not path.is_file():
        raise RunError(f"no run at '{run_dir}' (missing {path})")
    config = read_json(path, RunError)
    missing = [k for k in CONFIG_KEYS if k not in config]
    if missing:
        raise RunError(f"{path} is incomplete: no {', '.join(missing)}")
    return config


def checkpoint_weights(ckpt: dict, use_ema: bool = True) -> dict[str, torch.Tensor]:
    """A checkpoint's model state dict: its EMA weights if it kept them and `use_ema`."""
    return ckpt["ema"] if use_ema and ckpt.get("ema") is not None else ckpt["model"]


def finished(run_dir: Path) -> bool:
    """Whether a run has trained to its budget: a checkpoint at its step budget (any checkpoint
    for a budget in minutes or frames, which an interrupted run cannot be told apart from). An
    interrupted run keeps a checkpoint too, so "has a checkpoint" is not "done"; training it
    again with the same command resumes it."""
    if not (Path(run_dir) / CHECKPOINT).is_file():
        return False
    steps = read_config(run_dir)["train"].get("steps")
    return steps is None or read_checkpoint(run_dir).get("step", 0) >= steps


def summarize(run_dir: Path) -> dict:
    """Key facts about a run for `genlab runs`; a broken run gets its problem in "status"."""
    out = {"run": str(run_dir), "status": "ok"}
    try:
        raw = read_json(Path(run_dir) / "config.json", RunError)
        if raw.get("stage") == "train-c":  # a World Models controller search
            out.update(model="controller (CMA-ES)", data="carracing")
        else:
            config = read_config(run_dir)
            out.update(model=config["model"], data=config["data"])
        rows = read_metrics(run_dir)
        out["step"] = rows[-1]["step"] if rows else 0
        if rows:
            out["loss"] = rows[-1].get("loss")
        evaluation = Path(run_dir) / "eval.json"
        if evaluation.is_file():
            out.update({k: v for k, v in read_json(evaluation, RunError).items()
                        if k in KEY_METRICS})  # fmt: skip
        out["checkpoint"] = (Path(run_dir) / CHECKPOINT).is_file()
    except RunError as e:
        out["status"] = f"broken: {e}"
    return out


def find_runs(root: Path) -> list[Path]:
    return sorted(p.parent for p in Path(root).glob("**/config.json"))
