"""The one metrics logger: JSON lines in `<run>/metrics.jsonl` and TensorBoard scalars in `<run>/tb`."""

from __future__ import annotations

import json
import math
import shutil
import sys
from pathlib import Path

from torch.utils.tensorboard import SummaryWriter

from genlab.data.files import atomic_write_text
from genlab.errors import RunError


class MetricsLogger:
    """Append `{"step": s, name: value, ...}` lines; mirror them to TensorBoard. Only loops log."""

    def __init__(self, run_dir: Path, tensorboard: bool = True):
        self.path = Path(run_dir) / "metrics.jsonl"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "a")  # noqa: SIM115 (closed in close())
        self._tb = None
        if tensorboard:
            self._tb = SummaryWriter(str(Path(run_dir) / "tb"))

    def log(self, step: int, metrics: dict[str, float]) -> None:
        row = {"step": step, **{k: float(v) for k, v in metrics.items()}}
        self._file.write(json.dumps(row) + "\n")
        self._file.flush()
        if self._tb is not None:
            for k, v in row.items():
                if k != "step" and math.isfinite(v):
                    self._tb.add_scalar(k, v, step)

    def close(self) -> None:
        self._file.close()
        if self._tb is not None:
            self._tb.close()


def read_metrics(run_dir: Path) -> list[dict]:
    """The rows of `<run>/metrics.jsonl`. A torn last line (a process killed mid-write) is
    dropped with a warning; a bad line elsewhere is a RunError naming the file and line."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        return []
    try:
        lines = path.read_bytes().decode(errors="replace").splitlines()
    except OSError as e:
        raise RunError(f"cannot read {path}: {e.strerror or e}") from None
    rows = []
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            if not isinstance(row, dict) or not isinstance(row.get("step"), int):
                raise ValueError("no step")
        except ValueError:
            if i == len(lines) - 1:
                print(f"warning: {path}: dropped a torn last line", file=sys.stderr)
                break
            raise RunError(f"{path} line {i + 1} is not a metrics row") from None
        rows.append(row)
    return rows


def truncate_after(run_dir: Path, step: int) -> None:
    """Drop metric rows past `step` (rows logged after the checkpoint a resume restarts from),
    and any torn line."""
    rows = [r for r in read_metrics(run_dir) if r["step"] <= step]
    atomic_write_text(Path(run_dir) / "metrics.jsonl", "".join(json.dumps(r) + "\n" for r in rows))


def start_clean(run_dir: Path) -> None:
    """Forget the metrics and TensorBoard events of an attempt that kept no checkpoint."""
    (Path(run_dir) / "metrics.jsonl").unlink(missing_ok=True)
    shutil.rmtree(Path(run_dir) / "tb", ignore_errors=True)
