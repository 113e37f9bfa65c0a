"""Train the default VAE on binarized MNIST for a wall-clock budget, then measure test -log p(x).

    python benchmarks/vae_mnist.py [--minutes 30] [--k 1000] [--out runs/bench-vae]

Prints one JSON line: test nll_nats (IWAE, K samples, full 10,000-image test set), neg_elbo_nats,
images/s trained, the budget and the step count. Bar: nll_nats <= 86.0 within 30 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch

from common import train_from_scratch
from genlab.models.vae import VAEConfig
from genlab.train.config import TrainConfig
from genlab.workflow import evaluate


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--minutes", type=float, default=30.0)
    p.add_argument("--k", type=int, default=1000)
    p.add_argument("--n", type=int, default=None, help="test images (default: all 10,000)")
    p.add_argument("--out", default="runs/bench-vae")
    p.add_argument("--ema-decay", type=float, default=0.999)
    args = p.parse_args()
    out = Path(args.out)
    cfg = TrainConfig(
        minutes=args.minutes, ema_decay=args.ema_decay, checkpoint_every=5000, log_every=200
    )
    result = train_from_scratch("vae", "mnist", VAEConfig(), cfg, out)
    t0 = time.monotonic()
    metrics = evaluate(out, k=args.k, n=args.n, samples=0)  # likelihood only
    print(
        json.dumps(
            {
                "benchmark": "vae_mnist",
                "nll_nats": round(metrics["nll_nats"], 2),
                "neg_elbo_nats": round(metrics["neg_elbo_nats"], 2),
                "nll_stderr": round(metrics["nll_stderr"], 3),
                "k": args.k,
                "test_images": metrics["n"],
                "images_per_s": round(result.step * cfg.batch_size / result.seconds, 1),
                "steps": result.step,
                "budget_minutes": args.minutes,
                "eval_seconds": round(time.monotonic() - t0, 1),
                "threads": torch.get_num_threads(),
                "cpus": os.cpu_count(),
                "machine": platform.machine(),
                "date": time.strftime("%Y-%m-%d"),
            }
        )
    )


if __name__ == "__main__":
    main()
