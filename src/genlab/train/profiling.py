"""`--profile N`: where a training step's time goes, from torch's profiler.

    profiler = StepProfiler(steps=5, out=run_dir / "profile")
    for ...: step(); profiler.tick()     # one warm-up step, then N recorded
    profiler.close()                     # if training ended before N steps were recorded

Writes out/trace.json (open it in https://ui.perfetto.dev or chrome://tracing, offline both)
and out/top_operations.txt, and prints the top operations by their own CPU time.
"""

from __future__ import annotations

import sys
from pathlib import Path

from torch.profiler import ProfilerActivity, profile, schedule

TOP = 15  # operations printed


class StepProfiler:
    def __init__(self, steps: int, out: Path, warmup: int = 1):
        self.out, self.steps = Path(out), steps
        self.prof = profile(
            activities=[ProfilerActivity.CPU],
            schedule=schedule(wait=0, warmup=warmup, active=steps, repeat=1),
            on_trace_ready=self._report,
        )
        self.prof.start()
        self.left = warmup + steps

    def tick(self) -> None:
        """After each training step."""
        if self.left <= 0:
            return
        self.prof.step()
        self.left -= 1
        if self.left == 0:
            self.prof.stop()

    def close(self) -> None:
        if self.left > 0:
            self.left = 0
            self.prof.stop()  # fewer steps than asked for: the trace holds what ran

    def _report(self, prof: profile) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        prof.export_chrome_trace(str(self.out / "trace.json"))
        table = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=TOP)
        (self.out / "top_operations.txt").write_text(table + "\n")
        print(f"genlab: profile of {self.steps} steps in {self.out} (trace.json, "
              f"top_operations.txt); the top operations by own CPU time:\n{table}",
              file=sys.stderr, flush=True)  # fmt: skip
