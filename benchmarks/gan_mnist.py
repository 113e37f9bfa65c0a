"""Train WGAN-GP and DCGAN on MNIST for a wall-clock budget each, then measure their samples.

    python benchmarks/gan_mnist.py [--minutes 30] [--models wgan_gp,dcgan] [--samples 10000]

Prints one JSON line: for each model fid, precision, recall, class_kl, classes_below_half and
images/s trained (real images consumed per second), plus the real-test-vs-real-train fid on the
same features so the scale is visible. All on genlab's MNIST classifier features (not Inception).
Bar (issue 3): within 30 minutes WGAN-GP has a lower fid than the VAE, precision >= 0.8,
recall >= 0.6 and all 10 classes covered.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import torch

from common import parse_set, train_from_scratch
from genlab.tasks.registry import get_model
from genlab.train.config import TrainConfig
from genlab.workflow import evaluate


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--minutes", type=float, default=30.0, help="training budget per model")
    p.add_argument("--models", default="wgan_gp,dcgan")
    p.add_argument("--samples", type=int, default=10_000)
    p.add_argument("--set", action="append", default=[], help="model option key=value")
    p.add_argument("--out", default="runs/bench-gan")
    args = p.parse_args()
    report: dict = {"benchmark": "gan_mnist", "budget_minutes": args.minutes}
    for name in args.models.split(","):
        entry = get_model(name)
        out = Path(args.out) / name
        cfg = TrainConfig(
            minutes=args.minutes, checkpoint_every=2000, log_every=200, **entry.train_defaults
        )
        options = entry.options(**parse_set(args.set, entry.options))
        result = train_from_scratch(name, "mnist", options, cfg, out)
        m = evaluate(out, samples=args.samples)
        report[name] = {
            "fid": round(m["fid"], 3),
            "precision": round(m["precision"], 3),
            "recall": round(m["recall"], 3),
            "class_kl": round(m["class_kl"], 4),
            "classes_below_half": m["classes_below_half"],
            "images_per_s": round(result.step * cfg.batch_size / result.seconds, 1),
            "steps": result.step,
            "options": dataclasses.asdict(options),
        }
        report["fid_real_test_vs_train"] = round(m["fid_real_test_vs_train"], 3)
    report.update(threads=torch.get_num_threads(), date=time.strftime("%Y-%m-%d"))
    print(json.dumps(report))


if __name__ == "__main__":
    main()
