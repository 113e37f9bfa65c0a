"""The runs the studio shows: found under one root, named by their path relative to it, loaded
once per checkpoint, and worked on by one heavy request at a time each.

A run that is training is read while it trains: every file genlab writes is replaced
atomically, so a reader sees the old checkpoint or the new one, never half of one, and a new
checkpoint (a new modification time) is loaded afresh.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from genlab.data.files import read_json
from genlab.errors import GenlabError, RunError
from genlab.studio.guard import Busy, Missing, inside
from genlab.tasks.runs import load_run
from genlab.train.logger import read_metrics
from genlab.train.runs import LOCK, find_runs, summarize
from genlab.train.state import CHECKPOINT

PICTURES = (".png", ".gif", ".svg", ".jpg", ".jpeg", ".webp")
KEPT_MODELS = 4  # loaded runs kept in memory
BUSY_WAIT = 10.0  # seconds a request waits for the run's previous one


@dataclass
class Loaded:
    entry: object
    options: object
    model: object
    config: dict
    extras: dict = field(default_factory=dict)  # computed once per load: datasets, codes


class Library:
    def __init__(self, root: Path, data_dir: str | None = None):
        self.root = Path(root)
        self.data_dir = data_dir
        self._models: OrderedDict[tuple, Loaded] = OrderedDict()
        self._lock = threading.Lock()
        self._busy: dict[str, threading.Lock] = {}

    # --- finding runs ---
    def path(self, run: str) -> Path:
        """The directory of run `run` (a path relative to the root); Refused if it leaves the
        root, RunError if no run is there."""
        path = inside(self.root, run)
        if not (path / "config.json").is_file():
            raise Missing(f"no run '{run}' under {self.root}")
        return path

    def file(self, run: str, rel: str) -> Path:
        """A file inside run `run`; Refused outside it, RunError if there is none."""
        path = inside(self.path(run), rel)
        if not path.is_file():
            raise Missing(f"run '{run}' has no file '{rel}'")
        return path

    def names(self) -> list[str]:
        """Every run under the root, by its path relative to it (not the studio's own logs
        or other hidden folders)."""
        names = (path.relative_to(self.root) for path in find_runs(self.root))
        return [n.as_posix() for n in names if not any(p.startswith(".") for p in n.parts)]

    def summary(self, run: str) -> dict:
        """`genlab runs`' row for run `run`, with whether it is training now."""
        path = self.root / run
        return {**summarize(path), "run": run, "training": is_training(path)}

    def runs(self) -> list[dict]:
        return [self.summary(run) for run in self.names()]

    def pictures(self, run: str) -> dict:
        """The run's pictures (paths relative to it) and its latest checkpoint's samples."""
        path = self.path(run)
        pictures = path / "pictures"
        if not pictures.is_dir():
            return {"pictures": [], "progress": None}
        shown = sorted(
            p.relative_to(path).as_posix() for p in pictures.rglob("*")
            if p.suffix.lower() in PICTURES and p.is_file()
            and "progress" not in p.relative_to(pictures).parts
        )  # fmt: skip
        progress = sorted((pictures / "progress").glob("*.png"))
        return {"pictures": shown,
                "progress": progress[-1].relative_to(path).as_posix() if progress else None}  # fmt: skip

    def detail(self, run: str) -> dict:
        path = self.path(run)
        out = {**self.summary(run), **self.pictures(run)}
        with contextlib.suppress(GenlabError):
            out["config"] = read_json(path / "config.json", RunError)
        evaluation = path / "eval.json"
        if evaluation.is_file():
            with contextlib.suppress(GenlabError):
                out["eval"] = read_json(evaluation, RunError)
        return out

    def metrics(self, run: str, since: int = 0) -> list[dict]:
        """metrics.jsonl rows after the first `since` (a torn last line is left for later)."""
        return read_metrics(self.path(run))[max(0, since) :]

    # --- loading ---
    def load(self, run: str, overrides: tuple[str, ...] = ()) -> Loaded:
        path = self.path(run)
        ckpt = path / CHECKPOINT
        if not ckpt.is_file():
            raise Missing(f"run '{run}' has no checkpoint yet")
        key = (run, ckpt.stat().st_mtime_ns, overrides)
        with self._lock:
            if key in self._models:
                self._models.move_to_end(key)
                return self._models[key]
        entry, options, model, config = load_run(path, overrides=list(overrides) or None)
        loaded = Loaded(entry, options, model, config)
        with self._lock:
            self._models[key] = loaded
            while len(self._models) > KEPT_MODELS:
                self._models.popitem(last=False)
        return loaded

    def extra(self, loaded: Loaded, name: str, make) -> object:
        """make(loaded), computed once per loaded run (its dataset, its codes of test images);
        callers hold the run (`busy`), so no two compute it at once."""
        if name not in loaded.extras:
            loaded.extras[name] = make(loaded)
        return loaded.extras[name]

    def data(self, loaded: Loaded):
        """The run's dataset, loaded once per loaded run."""
        return self.extra(loaded, "data", lambda r: r.entry.load_data(
            r.config["data"], self.data_dir, r.options))  # fmt: skip

    @contextlib.contextmanager
    def busy(self, run: str, wait: float | None = None) -> Iterator[None]:
        """Hold run `run` for one heavy request, waiting up to `wait` seconds for the one
        before it (a page's slider and grid queue, not fail); Busy if it does not end by then."""
        with self._lock:
            lock = self._busy.setdefault(run, threading.Lock())
        if not lock.acquire(timeout=BUSY_WAIT if wait is None else wait):
            raise Busy(f"run '{run}' is busy with another request; try again when it is done")
        try:
            yield
        finally:
            lock.release()


def is_training(run_dir: Path, locks: Path = Path("/proc/locks")) -> bool:
    """Whether some process holds the run's training lock (an flock on <run>/.lock) now. It
    is read from the kernel's lock table, not tested by taking the lock, which could make a
    training that starts at that instant fail; where there is no such table, whether the
    process named in the lock file is alive."""
    path = Path(run_dir) / LOCK
    try:
        st = path.stat()
    except OSError:
        return False
    try:
        table = locks.read_text()
    except OSError:
        return pid_alive(path)
    where = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    return any(line.split()[1] == "FLOCK" and where in line.split()
               for line in table.splitlines() if len(line.split()) > 5)  # fmt: skip


def pid_alive(lock: Path) -> bool:
    try:
        os.kill(int(lock.read_text().split()[0]), 0)
    except (OSError, ValueError, IndexError):
        return False
    return True
