"""The one metrics logger: JSON lines in `<run>/metrics.jsonl` and TensorBoard scalars in `<run>/tb`."""

from __future__ import annotations

import json
import math
from pathlib import Path

from torch.utils.tensorboard import SummaryWriter


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
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def truncate_after(run_dir: Path, step: int) -> None:
    """Drop metric rows past `step` (rows logged after the checkpoint a resume restarts from)."""
    path = Path(run_dir) / "metrics.jsonl"
    rows = [r for r in read_metrics(run_dir) if r["step"] <= step]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
