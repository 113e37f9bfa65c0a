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

`--whole` instead times the whole default WaveNet's training step (`genlab train wavenet`'s
batch and crop, random codes) as genlab runs it (1-d) and with every convolution run as a 2-d
channels-last one on activations kept (B, C, 1, T) channels-last from the embedding to the
head, in float32 and bf16: seconds per step, best of two rounds; the two forms' outputs are
checked equal first. It decides whether genlab should switch WaveNet to 2-d layouts (issue 43).
"""

from __future__ import annotations

import argparse
import functools
import json
import time

import torch
import torch.nn.functional as F

from genlab.nn.gates import gated_activation
from genlab.tasks.registry import get_model
from genlab.train.config import TrainConfig

B, C, G, S, T, D = 8, 32, 32, 64, 6000, 64
CL = torch.channels_last


def conv2d(conv: torch.nn.Conv1d, x: torch.Tensor, left: int = 0) -> torch.Tensor:
    """A 1-d convolution's weights applied to x (B, C, 1, T) as a 2-d channels-last one."""
    w = conv.weight.unsqueeze(2).contiguous(memory_format=CL)  # (O, I, 1, k)
    return F.conv2d(F.pad(x, (left, 0)), w, conv.bias, dilation=(1, conv.dilation[0]))


def from_embedding_2d(net, e: torch.Tensor, g: torch.Tensor | None) -> torch.Tensor:
    """WaveNet.from_embedding with (B, C, 1, T) channels-last activations throughout."""
    h = conv2d(net.input, F.pad(e, (1, -1))[:, :, None, :].contiguous(memory_format=CL), 1)
    skip = 0
    for blk in net.blocks:
        z = conv2d(blk.conv, h, blk.conv.left)
        bias = blk.cond_bias(g)
        if bias is not None:
            z = z + (bias[:, :, None, :] if bias.dim() == 3 else bias[:, :, None, None])
        out = conv2d(blk.out, gated_activation(z, blk.gate))
        h, skip = h + out[:, : blk.channels], skip + out[:, blk.channels :]
    return conv2d(net.head2, F.relu(conv2d(net.head1, F.relu(skip))))[:, :, 0, :]


def run_2d(net) -> None:
    """Make a WaveNet run `from_embedding_2d` in place of its own."""
    net.from_embedding = functools.partial(from_embedding_2d, net)


def whole_model(steps: int = 4) -> dict:
    """Seconds per default WaveNet training step, 1-d against 2-d channels-last."""
    from precision_speed import random_batch, seconds_per_step

    entry = get_model("wavenet")
    options = entry.options()
    check = entry.build(options).eval()
    batch = random_batch("wavenet", options, 2)
    with torch.no_grad():
        one_d = check(batch["x"][:, :500], batch["speaker"], batch["digit"])
        run_2d(check)
        two_d = check(batch["x"][:, :500], batch["speaker"], batch["digit"])
    assert (one_d - two_d).abs().max() < 1e-4, "the 2-d form computes something else"

    batch_size = TrainConfig(**entry.train_defaults).batch_size

    def seconds(precision: str, two: bool) -> float:
        return seconds_per_step("wavenet", precision, steps, {}, batch_size,
                                prepare=run_2d if two else None)  # fmt: skip

    report = {}
    for precision in ("fp32", "bf16"):
        one, two = (min(seconds(precision, t) for _ in range(2)) for t in (False, True))
        report[precision] = {"conv1d_step_s": round(one, 3), "conv2d_channels_last_step_s":
                             round(two, 3), "speedup": round(one / two, 2)}  # fmt: skip
    return report


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--whole", action="store_true", help="time the whole model's training step")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    if args.whole:
        report = {"whole_model": whole_model(), "threads": args.threads}
        print(json.dumps({**report, "date": time.strftime("%Y-%m-%d")}))
        return
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
