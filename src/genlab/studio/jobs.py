"""Trainings started from the studio: one `genlab train` subprocess at a time.

A preset is a short `genlab train` command line with a minutes budget. The subprocess writes its
run under the studio's runs root as any training does; the page follows it through the run's own
metrics.jsonl, and Stop sends SIGINT, which the training loop treats as Ctrl-C: it finishes the
step, saves the checkpoint and exits.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from genlab.errors import ConfigError, RunError
from genlab.studio.guard import Busy
from genlab.train.logger import read_metrics

LOGS = ".studio"  # under the runs root: the trainings' output (no config.json: not a run)


@dataclass(frozen=True)
class Preset:
    label: str  # what the button says
    model: str
    minutes: float
    args: tuple[str, ...] = ()  # more `genlab train` flags

    def argv(self, out: Path) -> list[str]:
        return ["train", self.model, "--minutes", str(self.minutes), "--out", str(out),
                *self.args]  # fmt: skip


# Short presets checkpoint often: each checkpoint of a sampler also draws its sample grid, which
# the run's page shows, so something is seen within the first minute.
OFTEN = ("--checkpoint-every", "200")
PRESETS = {
    "vae-1min": Preset("VAE on MNIST, 1 minute", "vae", 1, OFTEN),
    "vae-3min": Preset("VAE on MNIST, 3 minutes", "vae", 3, OFTEN),
    "classifier-2min": Preset("MNIST classifier, 2 minutes", "classifier", 2, OFTEN),
    "wgan_gp-10min": Preset("WGAN-GP on MNIST, 10 minutes", "wgan_gp", 10, OFTEN),
    "glow-10min": Preset("Glow on MNIST, 10 minutes", "glow", 10, OFTEN),
    "maml-10min": Preset("MAML 5-way 1-shot Omniglot, 10 minutes", "maml", 10),
}


class Trainer:
    """Starts, watches and stops the one studio training."""

    def __init__(self, root: Path, presets: dict[str, Preset] | None = None):
        self.root = Path(root)
        self.presets = PRESETS if presets is None else presets
        self._lock = threading.Lock()
        self._proc: subprocess.Popen | None = None
        self._job: dict = {}

    def start(self, name: str) -> dict:
        if name not in self.presets:
            raise ConfigError(f"unknown preset '{name}'; one of {', '.join(self.presets)}")
        with self._lock:
            if self._proc is not None and self._proc.poll() is None:
                raise Busy(f"a training is running ({self._job['run']}); stop it first")
            preset = self.presets[name]
            stamp = time.strftime("%Y%m%d-%H%M%S")
            run = f"{name}-{stamp}"
            logs = self.root / LOGS
            logs.mkdir(parents=True, exist_ok=True)
            log = (logs / f"{run}.log").open("wb")
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "genlab", *preset.argv(self.root / run)],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )  # fmt: skip
            log.close()
            self._job = {"preset": name, "label": preset.label, "run": run,
                         "minutes": preset.minutes, "started": time.time(),
                         "log": str(logs / f"{run}.log"), "stopped": False}  # fmt: skip
            return self.status()

    def stop(self) -> dict:
        with self._lock:
            if self._proc is None or self._proc.poll() is not None:
                raise RunError("no training is running")
            self._proc.send_signal(signal.SIGINT)  # as Ctrl-C: the loop saves, then exits
            self._job["stopped"] = True
        return self.status()

    def status(self) -> dict:
        if self._proc is None:
            return {"state": "idle", "presets": {k: p.label for k, p in self.presets.items()}}
        code = self._proc.poll()
        job = self._job
        elapsed = time.time() - job["started"]
        try:
            rows = read_metrics(self.root / job["run"])
        except RunError:
            rows = []
        state = "running" if code is None else "finished" if code == 0 else "failed"
        if job["stopped"]:  # after Stop a training saves and exits with 130; stopped while
            # Python was still starting, it dies of the signal with nothing yet to save
            state = "stopping" if code is None else "stopped"
        out = {
            "state": state, "preset": job["preset"], "label": job["label"], "run": job["run"],
            "step": rows[-1]["step"] if rows else 0, "elapsed": round(elapsed, 1),
            "progress": 1.0 if code is not None else min(1.0, elapsed / (60 * job["minutes"])),
            "presets": {k: p.label for k, p in self.presets.items()},
        }  # fmt: skip
        if state == "failed":
            out["error"] = last_line(Path(job["log"]))
        return out

    def close(self) -> None:
        """Stop a training still running when the studio exits (it saves its checkpoint): a
        SIGINT unless Stop sent one (a second would interrupt the saving), then up to 30 s."""
        if self._proc is None or self._proc.poll() is not None:
            return
        if not self._job["stopped"]:
            self._proc.send_signal(signal.SIGINT)
        try:
            self._proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()


def last_line(path: Path) -> str:
    """The last non-empty line a training printed (its one-line error when it failed)."""
    try:
        lines = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return "the training failed"
    return lines[-1].split("\r")[-1][-300:] if lines else "the training failed"
