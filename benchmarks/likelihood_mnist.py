"""Exact-likelihood image models on MNIST for a wall-clock budget: test likelihood and sampling
speed.

    python benchmarks/likelihood_mnist.py --model gated_pixelcnn [--minutes 60]
        [--set output=softmax ...] [--k 100] [--threads N] [--out runs/bench-likelihood]

Trains MODEL (gated_pixelcnn, pixelcnn, glow, realnvp, pixelvae) with its defaults for
`--minutes`, then evaluates it on the full test set (`genlab eval`: nats per image, bits/dim for
8-bit data; PixelVAE's NLL by importance sampling with `--k` samples, plus active units), and
times sampling 16 images: images/s, and for the PixelCNNs and PixelVAE's decoder each exact
method on 4 images: naive whole-image recomputation, the row window and (gated) the cached
vertical stack, with speed-ups over naive (same images, checked). One JSON line.
Bars (issue 5, 2 cores, 60 min): Gated PixelCNN nll_nats <= 86 (binarized); Glow or RealNVP
bits_per_dim <= 1.25 (8-bit); PixelVAE nll_nats <= 84 (binarized).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import torch

from common import parse_set, train_for_minutes
from genlab.models.pixelcnn import PixelCNN
from genlab.tasks.registry import get_model
from genlab.tasks.runs import load_run
from genlab.workflow import evaluate

MODELS = ("gated_pixelcnn", "pixelcnn", "glow", "realnvp", "pixelvae")


def sampling_speed(model, n: int = 16) -> dict:
    """images/s of `model.sample(n)`; for the PixelCNNs (and PixelVAE's decoder) also each exact
    pixel-by-pixel method on the same 4 images' uniforms, checked to draw the same images."""
    model.eval()
    g = torch.Generator().manual_seed(0)
    t = time.perf_counter()
    model.sample(n, generator=g)
    row = {"images_per_s": round(n / (time.perf_counter() - t), 2)}
    pixelcnn = model if isinstance(model, PixelCNN) else getattr(model, "decoder", None)
    if not isinstance(pixelcnn, PixelCNN):
        return row
    u = torch.rand(4, 28, 28, 2, generator=g)
    y = torch.arange(4) if pixelcnn.cfg.conditional else None
    z = None if pixelcnn is model else model.condition(torch.randn(4, model.cfg.latent_dim,
                                                                  generator=g))  # fmt: skip
    methods = ("naive", "window") + (("cached",) if pixelcnn.cfg.kind == "gated" else ())
    times, images = {}, {}
    for method in methods:
        t = time.perf_counter()
        images[method] = pixelcnn.sample_from_uniforms(u, y, method=method, z=z)
        times[method] = time.perf_counter() - t
        if not torch.equal(images[method], images["naive"]):
            raise SystemExit(f"{method} sampling differs from naive sampling")
        row[f"{method}_images_per_s"] = round(4 / times[method], 2)
        row[f"{method}_speedup"] = round(times["naive"] / times[method], 2)
    return row


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--model", required=True, choices=MODELS)
    p.add_argument("--minutes", type=float, default=60.0)
    p.add_argument("--set", action="append", default=[], help="model option key=value")
    p.add_argument("--k", type=int, default=100, help="importance samples (pixelvae)")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--out", default="runs/bench-likelihood")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    entry = get_model(args.model)
    options = entry.options(**parse_set(args.set, entry.options))
    out = Path(args.out) / args.model
    result = train_for_minutes(args.model, "mnist", options, args.minutes, out, args.threads)
    metrics = evaluate(out, k=args.k, samples=0)
    keep = ("nll_nats", "bits_per_dim", "neg_elbo_nats", "kl_nats", "active_units", "n")
    report = {
        "benchmark": "likelihood_mnist",
        "model": args.model,
        **{k: round(v, 4) if isinstance(v, float) else v for k, v in metrics.items() if k in keep},
        "steps": result.step,
        "train_minutes": round(result.seconds / 60, 1),
        "sampling": sampling_speed(load_run(out)[2]),
        "options": dataclasses.asdict(options),
        "threads": torch.get_num_threads(),
        "date": time.strftime("%Y-%m-%d"),
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
