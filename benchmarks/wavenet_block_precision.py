"""Why bfloat16 speeds WaveNet up so little: one gated residual block's forward and backward
timed in float32 and in bfloat16 (autocast), three ways of running its convolutions.

    python benchmarks/wavenet_block_precision.py [--threads 2] [--repeats 10]

The block is the default WaveNet's (32 residual channels, 2 x 32 gate channels, 64 skip
channels; dilation 64) on a batch of 8 crops of 6,000 samples: `conv1d` as genlab runs it,
`conv2d_channels_last` (the same convolutions as 2-d with height 1 in channels-last layout, the
layout bf16 training gives 2-d models), `matmul` (the taps concatenated, one matrix product).
`convs_only` and `gate_only` split the block's time between its two convolutions and its
tanh-sigmoid gate. One JSON line of milliseconds per forward + backward (best of three
rounds of --repeats).
"""

from __future__ import annotations

import argparse
import json
import time

import torch
import torch.nn.functional as F

B, C, G, S, T, D = 8, 32, 32, 64, 6000, 64


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=10)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x = torch.randn(B, C, T, requires_grad=True)
    w = torch.randn(2 * G, C, 2, requires_grad=True)
    b = torch.zeros(2 * G, requires_grad=True)
    w_out = torch.randn(C + S, G, 1, requires_grad=True)
    z_given = torch.randn(B, 2 * G, T, requires_grad=True)

    def gate(z):
        return torch.tanh(z[:, :G]) * torch.sigmoid(z[:, G:])

    def conv1d(x):
        return F.conv1d(gate(F.conv1d(F.pad(x, (D, 0)), w, b, dilation=D)), w_out)

    def conv2d_channels_last(x):
        x4 = F.pad(x, (D, 0)).unsqueeze(2).contiguous(memory_format=torch.channels_last)
        z = F.conv2d(x4, w.unsqueeze(2), b, dilation=(1, D))
        return F.conv2d(gate(z), w_out.unsqueeze(2)).squeeze(2)

    def matmul(x):
        xp = F.pad(x, (D, 0))
        taps = torch.cat([xp[:, :, :T], xp[:, :, D:]], 1).transpose(1, 2)  # (B, T, 2C)
        z = (taps @ torch.cat([w[:, :, 0], w[:, :, 1]], 1).T + b).transpose(1, 2)
        return (gate(z).transpose(1, 2) @ w_out[:, :, 0].T).transpose(1, 2)

    def convs_only(x):
        return F.conv1d(F.conv1d(F.pad(x, (D, 0)), w, b, dilation=D)[:, :G], w_out)

    def gate_only(_):
        return gate(z_given)

    def once(f, bf16: bool) -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            y = f(x)
        y.float().sum().backward()

    cases = [(f, bf16) for f in (conv1d, conv2d_channels_last, matmul, convs_only, gate_only)
             for bf16 in (False, True)]  # fmt: skip
    for f, bf16 in cases * 2:  # warm every case up before any is timed
        once(f, bf16)
    best = {}
    for _ in range(3):  # rounds taken in turn across the cases; each case's best round counts,
        for f, bf16 in cases:  # so a slow spell of the machine does not fall on one case
            t0 = time.perf_counter()
            for _ in range(args.repeats):
                once(f, bf16)
            ms = (time.perf_counter() - t0) / args.repeats * 1000
            best[f.__name__, bf16] = min(ms, best.get((f.__name__, bf16), ms))
    report = {}
    for name in dict.fromkeys(name for name, _ in best):
        fp32, bf16 = round(best[name, False], 1), round(best[name, True], 1)
        report[name] = {"fp32_ms": fp32, "bf16_ms": bf16, "speedup": round(fp32 / bf16, 2)}
    report.update(threads=args.threads, date=time.strftime("%Y-%m-%d"))
    print(json.dumps(report))


if __name__ == "__main__":
    main()
