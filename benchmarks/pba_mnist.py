"""Population-based augmentation on a small labelled MNIST subset: the talk's table at CPU scale.

    python benchmarks/pba_mnist.py [--data mnist] [--population 8] [--interval 100] [--rounds 20]
        [--seeds 5] [--train-images 1000] [--val-images 5000] [--widen 2] [--base-augment none]
        [--out runs/bench-pba]

`--data omniglot` runs the same on Omniglot's 964 background characters (a few drawings of
each; see `genlab.tasks.augmentation`).

1. The search: `genlab tune pba` with those settings (Ray Tune's PBT; this script re-runs
   itself in a private network with only loopback) into OUT/search.
2. Fresh wide ResNets trained interval x rounds steps with no augmentation, the standard shift
   and rotation, one random PBA policy (a new one per seed) and the searched schedule, `--seeds`
   seeds each (two one-thread trainings at a time), then test error on the test set.
Prints one JSON line: the search's summary (CPU-hours included) and each augmentation's test
error, mean and standard deviation over the seeds. A part that exists is reused.
With `--base-augment standard` the random and PBA policies run on top of the standard shift and
rotation (the search's members too), as PBA's and AutoAugment's policies run on top of their
baseline crop and flip.
Bar (issue 42): PBA below no augmentation, and no worse than standard, with the search within
2 hours on 2 cores, and a schedule that augments (an empty one on the standard base would be
the standard row).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

from common import StageLedger, evaluation, in_private_network, run_two_at_a_time, seed_stats
from genlab import population
from genlab.models.wide_resnet import BASES
from genlab.tasks.augmentation import CLASSES, read_schedule

AUGMENTS = ("none", "standard", "random", "pba")


def train_command(augment: str, seed: int, args, schedule: Path, run: Path) -> list[str]:
    cmd = [sys.executable, "-m", "genlab.cli", "train", "wrn", "--augment", augment,
           "--data", args.data, "--n-classes", str(CLASSES[args.data]),
           "--val-images", str(args.val_images),
           "--train-images", str(args.train_images), "--widen", str(args.widen),
           "--steps", str(args.interval * args.rounds), "--seed", str(seed), "--threads", "1",
           "--quiet", "--out", str(run)]  # fmt: skip
    if augment in ("random", "pba"):
        cmd += ["--base-augment", args.base_augment]
    return cmd + (["--pba-schedule", str(schedule)] if augment == "pba" else [])


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--data", default="mnist", choices=CLASSES,
                   help="digits, or omniglot's 964 background characters")  # fmt: skip
    p.add_argument("--population", type=int, default=8)
    p.add_argument("--interval", type=int, default=100)
    p.add_argument("--rounds", type=int, default=20)
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--train-images", type=int, default=1000)
    p.add_argument("--val-images", type=int, default=5000)
    p.add_argument("--widen", type=int, default=2)
    p.add_argument("--base-augment", default="none", choices=BASES,
                   help="under the random and PBA policies (search included): 'standard' "
                        "shifts and rotates after the policy, as PBA on top of crop and flip")  # fmt: skip
    p.add_argument("--out", default="runs/bench-pba")
    args = p.parse_args()
    in_private_network()
    out = Path(args.out)
    cfg = population.PBAConfig(data=args.data, val_images=args.val_images,
                               population=args.population, interval=args.interval,
                               rounds=args.rounds, train_images=args.train_images,
                               widen=args.widen, base_augment=args.base_augment)  # fmt: skip
    # The search's wall clock adds up over interrupted runs (a resumed search's own would not).
    ledger = StageLedger(out / "ledger.json", asdict(cfg))
    summary = ledger.run("search", lambda _: population.search(cfg, out / "search", progress=False))
    summary["wall_minutes"] = round(ledger.minutes("search"), 1)
    schedule = out / "search" / population.SCHEDULE
    jobs = [(a, s, out / f"{a}-seed{s}") for a in AUGMENTS for s in range(args.seeds)]
    run_two_at_a_time([(run, train_command(a, s, args, schedule, run)) for a, s, run in jobs])
    table = {}
    for augment in AUGMENTS:
        errors = [evaluation(run, threads=2)["test_error"] for a, _, run in jobs if a == augment]
        table[augment] = seed_stats(errors)
    # an empty schedule on the standard base is the standard row: no learned augmentation
    learned = any(p[..., 0].any() for _, p in read_schedule(schedule))
    bar = (learned and table["pba"]["mean"] < table["none"]["mean"]
           and table["pba"]["mean"] <= table["standard"]["mean"]
           and summary["wall_minutes"] <= 120)  # fmt: skip
    print(json.dumps({"benchmark": "pba_mnist", "search": summary, "test_error": table,
                      "data": args.data, "steps": args.interval * args.rounds,
                      "seeds": args.seeds,
                      "base_augment": args.base_augment, "schedule_learned": learned,
                      "bar_met": bar, "date": time.strftime("%Y-%m-%d")}))  # fmt: skip


if __name__ == "__main__":
    main()
