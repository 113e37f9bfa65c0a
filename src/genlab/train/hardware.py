"""What this CPU offers and who else is using it: AMX (bfloat16 that pays), and how many threads a
training should run beside other work.

    has_amx()                          # True on CPUs with AMX (bfloat16 matrix tiles)
    choose_precision("auto", offered=True, amx=True)      # ("bf16", "why ...")
    governor = ThreadGovernor(base=2)      # in the loop: governor.tick() after each step

Two trainings that each run one thread per core on a 2-core machine fight over the cores
(each ran at 0.23x of its solo speed; with one thread each, 0.67x). The governor watches how
much of the CPUs other processes use, from /proc/stat less this process's own share, and gives
this process the cores that are left (at least one, at most `base`).
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

# The /proc/cpuinfo flag under which bfloat16 training is faster than float32. AVX512-BF16 alone
# is not enough: on a host of this machine without AMX (2026-12-05, idle,
# benchmarks/precision_speed.py) a bf16 step ran at 0.69x float32's speed for the VAE (64 vs
# 44 ms), 0.96x for Glow and 1.06x for the Gated PixelCNN, where with AMX it was 1.29x, 2.24x and
# 2.06x (2026-12-04, docs/usage.md).
AMX_FLAGS = ("amx_bf16",)


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> set[str]:
    """The feature flags of the first CPU listed in `cpuinfo` (empty where unreadable)."""
    try:
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("flags"):
                return set(line.partition(":")[2].split())
    except OSError:
        pass
    return set()


def has_amx(flags: set[str] | None = None) -> bool:
    """Does this CPU have AMX, the bfloat16 matrix units that make bf16 training pay?"""
    return bool((cpu_flags() if flags is None else flags) & set(AMX_FLAGS))


def choose_precision(requested: str, offered: bool, amx: bool) -> tuple[str, str]:
    """(precision, why) for `requested` ('auto', 'fp32' or 'bf16'): 'auto' is bf16 where the
    model's bf16 path is checked (`offered`) and the CPU has AMX (`amx`), else fp32."""
    if requested != "auto":
        return requested, "asked for"
    if not offered:
        return "fp32", "auto: this model has no checked bf16 path"
    if not amx:
        return "fp32", "auto: this CPU has no AMX (bf16 without it was slower than fp32)"
    return "bf16", "auto: the model's bf16 path is checked and this CPU has AMX"


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity mask, which containers narrow)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


@dataclass(frozen=True)
class CpuSample:
    """Cumulative clock ticks: busy across the machine's CPUs, and this process's own."""

    at: float  # time.monotonic()
    busy: int  # all processes, all CPUs (user, nice, system, irq, softirq, steal)
    own: int  # this process, all its threads (utime + stime)


def sample_cpu(stat: Path = Path("/proc/stat"), me: Path = Path("/proc/self/stat")) -> CpuSample:
    """Read the counters now; OSError where /proc is missing (not Linux)."""
    fields = stat.read_text().splitlines()[0].split()  # "cpu user nice system idle iowait ..."
    ticks = [int(x) for x in fields[1:]]
    busy = sum(ticks[:3]) + sum(ticks[5:8])  # everything but idle and iowait
    mine = me.read_text().rpartition(")")[2].split()  # after "pid (name)"; fields from 3rd
    return CpuSample(time.monotonic(), busy, int(mine[11]) + int(mine[12]))


def others_busy(a: CpuSample, b: CpuSample, ticks_per_s: float) -> float:
    """Cores' worth of CPU that processes other than this one used between samples a and b."""
    seconds = b.at - a.at
    if seconds <= 0:
        return 0.0
    return max(0.0, ((b.busy - a.busy) - (b.own - a.own)) / ticks_per_s / seconds)


def fair_threads(base: int, cpus: int, others: float) -> int:
    """Threads for this process: the cores others leave free (an other's half core or more
    counts as a core), at least 1, at most `base`."""
    return max(1, min(base, cpus - int(others + 0.5)))


class ThreadGovernor:
    """Every `every` seconds, set torch's thread count to `fair_threads` of what other
    processes used since the last look; prints one line, naming the `job`, when it changes the
    count."""

    def __init__(self, base: int, every: float = 10.0, cpus: int | None = None,
                 clock=time.monotonic, job: str = "training"):  # fmt: skip
        self.base, self.every, self.cpus, self.clock = base, every, cpus or usable_cpus(), clock
        self.job = job
        self.ticks_per_s = float(os.sysconf("SC_CLK_TCK")) if hasattr(os, "sysconf") else 100.0
        try:
            self.last: CpuSample | None = sample_cpu()
        except (OSError, IndexError, ValueError):  # no /proc: leave the threads alone
            self.last = None

    def tick(self) -> None:
        if self.last is None or self.clock() - self.last.at < self.every:
            return
        now = sample_cpu()
        others = others_busy(self.last, now, self.ticks_per_s)
        self.last = now
        threads, current = fair_threads(self.base, self.cpus, others), torch.get_num_threads()
        if threads != current:
            torch.set_num_threads(threads)
            why = f"other processes use {others:.1f} of {self.cpus} cores"
            print(f"genlab: {why}: {self.job} on {threads} thread{'s' * (threads > 1)} "
                  f"(was {current}; --threads N fixes it)", file=sys.stderr, flush=True)  # fmt: skip


def start_fair(base: int, job: str, look: float = 0.25, sleep=time.sleep) -> None:
    """For a job about to start (an evaluation), once: a governor's look at what other
    processes use over `look` seconds sets torch's threads (and says so when it lowers them)."""
    torch.set_num_threads(base)
    governor = ThreadGovernor(base, every=look, job=job)
    sleep(look)
    governor.tick()
