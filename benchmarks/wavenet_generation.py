"""WaveNet generation speed on this machine: naive recomputation vs cached queues.

    python benchmarks/wavenet_generation.py [--run RUN] [--seconds 1.0] [--threads N]

For the default FSDD model (or a trained run's), batch 1 and batch 16, it prints samples/s
(per stream x streams) of: `naive` (the network over the receptive field for every sample),
`cached` (per-layer queues in PyTorch, one call per operation) and `native` (the same loop in
C, genlab/nn/kernels/wavenet_generate.c, what `generate` uses). Checks: naive and cached draw
the same codes from the same uniforms (else it stops); `same_codes_until` is the first step at
which native drew a different code than cached in any stream (float32 rounding in a
different order moves a cumulative probability across a uniform now and then; from there the
streams are different but equally likely samples); `max_output_diff` compares the native
kernel's outputs with the full forward pass on the same 2,000 codes. One JSON line.
Bars (issue 7): single stream >= 8,000 samples/s (real time at 8 kHz) on 2 cores; cached
>= 20x naive.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from genlab.models.wavenet import NativeGenerator, WaveNet, WaveNetConfig
from genlab.tasks.audio import conditioning
from genlab.tasks.runs import load_run


def timed(fn) -> tuple[object, float]:
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def agree_until(a: torch.Tensor, b: torch.Tensor) -> int:
    """The first time step at which two (B, T) code arrays differ in any stream (T if never)."""
    differ = (a != b).any(0).nonzero()
    return int(differ[0]) if len(differ) else a.shape[1]


def measure(net: WaveNet, batch: int, samples: int, naive_samples: int) -> dict:
    spk, dig = conditioning(net, batch)
    u = torch.rand(batch, samples, 2, generator=torch.Generator().manual_seed(0))
    row: dict = {}
    naive, s = timed(lambda: net.generate_naive(u[:, :naive_samples], spk, dig))
    row["naive"] = round(naive_samples * batch / s, 1)
    cached, s = timed(lambda: net.generate(u, spk, dig, method="cached"))
    row["cached"] = round(samples * batch / s, 1)
    native_gen = NativeGenerator(net, spk, dig)
    native_gen.run(u[:, :10])  # compiles the kernel once
    native, s = timed(lambda: native_gen.run(u)[0])
    row["native"] = round(samples * batch / s, 1)
    if not torch.equal(cached[:, :naive_samples], naive):
        raise SystemExit(f"batch {batch}: cached and naive generation drew different codes")
    row["same_codes_until"] = agree_until(native, cached)
    _, outputs = native_gen.run(u[:, :2000], forced=cached[:, :2000], keep_outputs=True)
    full = net(cached[:, :2000], spk, dig).transpose(1, 2)
    row["max_output_diff"] = float((outputs - full).abs().max())
    row["cached_over_naive"] = round(row["cached"] / row["naive"], 1)
    row["native_over_naive"] = round(row["native"] / row["naive"], 1)
    return row


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--run", default=None, help="a trained wavenet run (default: untrained)")
    p.add_argument("--seconds", type=float, default=1.0, help="audio generated per row (8 kHz)")
    p.add_argument("--naive-samples", type=int, default=100)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.run:
        net = load_run(args.run)[2]
    else:
        torch.manual_seed(0)
        net = WaveNet(WaveNetConfig())
    net.eval()
    samples = int(args.seconds * 8000)
    report: dict = {"receptive_field": net.cfg.receptive_field, "samples": samples}
    with torch.no_grad():
        for batch in (1, 16):
            report[f"batch_{batch}"] = measure(net, batch, samples, args.naive_samples)
    best = report["batch_1"]["native"]
    report.update(
        single_stream_samples_per_s=best,
        real_time_factor=round(best / 8000, 2),
        bar_met=best >= 8000 and report["batch_1"]["native_over_naive"] >= 20,
        threads=torch.get_num_threads(),
        date=time.strftime("%Y-%m-%d"),
    )
    print(json.dumps(report))


if __name__ == "__main__":
    main()
