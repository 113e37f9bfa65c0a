"""The learned optimizer's table (Andrychowicz et al. 2016, talk 005): meta-train the LSTM
optimizer on a problem family, then compare it with SGD, Nesterov momentum, RMSprop and Adam,
each at the rate a grid search picked on other problems of the family, on the same held-out
problems; for MNIST also the paper's transfer tests (40 hidden units, two hidden layers, ReLU,
and 200 steps where it was meta-trained for 100).

    python benchmarks/learned_optimizers.py [--dir runs/bench-l2l] [--parts quadratic,mnist]
                                            [--seeds 0,1] [--minutes 30] [--n 100] [--threads 2]

Each part meta-trains one run per seed: DIR/PART for one seed (on --threads threads), or
DIR/PART-seedS for several, two at a time on one thread each. A run that trained to its budget
is reused (delete it to redo); an interrupted one resumes. With several seeds the one kept is
the one with the lowest validation loss (mean loss at step 100 on 50 problems drawn apart from
the tuning and test ones: `genlab.tasks.learned_optimizers.validation_loss`), so the test
problems are seen only by the run chosen. That run is evaluated with `genlab eval RUN --n N`
and has its curves in RUN/pictures. DIR/ledger.json records each part's selection (training
and validation) minutes across resumptions. Prints one JSON line. Bar (issue 37): at step 100
the learned optimizer's mean loss is below tuned Adam's and RMSprop's on quadratics and on the
MNIST sigmoid MLP, meta-trained (selection included) in <= 30 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from common import StageLedger, evaluation, run_two_at_a_time
from genlab.tasks.learned_optimizers import validation_loss
from genlab.tasks.runs import load_run

# Per part, the `genlab train l2l_optimizer` options: problems per meta-step and meta-steps
# (quadratics: 2,500, about 5 minutes on one thread); for MNIST (15,910 coordinates a problem)
# the LSTM's step compiled, the log meta-objective, and 240 meta-steps with the rate decayed to
# 0 on a cosine and the weights averaged (2026-12-07: about 14 minutes on one thread).
TRAIN = {"quadratic": ["--batch-size", "32", "--steps", "2500"],
         "mnist": ["--batch-size", "1", "--compile", "--meta-loss", "log", "--schedule", "cosine",
                   "--ema-decay", "0.99", "--steps", "240"]}  # fmt: skip


def seed_runs(root: Path, part: str, seeds: list[int]) -> dict[int, Path]:
    """{seed: its run directory}: DIR/PART alone, or DIR/PART-seedS for several seeds."""
    if len(seeds) == 1:
        return {seeds[0]: root / part}
    return {seed: root / f"{part}-seed{seed}" for seed in seeds}


def train_command(part: str, seed: int, run: Path, minutes: float, threads: int) -> list[str]:
    return [sys.executable, "-m", "genlab", "train", "l2l_optimizer", "--data", part,
            *TRAIN[part], "--seed", str(seed), "--minutes", str(minutes),
            "--threads", str(threads), "--out", str(run)]  # fmt: skip


def select(runs: dict[int, Path]) -> dict:
    """{"validation_loss": {seed: loss}, "chosen": the seed with the lowest}. The runs differ
    only in their seed, so the problem family (MNIST's images) is loaded once."""
    losses, family = {}, None
    for seed, run in runs.items():
        entry, options, model, config = load_run(run)
        if family is None:
            family = entry.load_data(config["data"], None, options)
        losses[seed] = validation_loss(model, family)
    return {"validation_loss": {str(s): round(v, 4) for s, v in losses.items()},
            "chosen": min(losses, key=losses.__getitem__)}  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--dir", default="runs/bench-l2l")
    p.add_argument("--parts", default="quadratic,mnist")
    p.add_argument("--seeds", default="0,1", help="comma-separated; several: keep the best on "
                   "validation problems")  # fmt: skip
    p.add_argument("--minutes", type=float, default=30.0,
                   help="meta-training, each run, at most (each part also stops at its steps)")  # fmt: skip
    p.add_argument("--n", type=int, default=100, help="held-out problems per family")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    root = Path(args.dir)
    torch.set_num_threads(args.threads)
    ledger = StageLedger(root / "ledger.json", {"parts": args.parts, "seeds": seeds})
    report: dict = {"benchmark": "learned_optimizers", "dir": str(root), "seeds": seeds}
    for part in args.parts.split(","):
        runs = seed_runs(root, part, seeds)
        threads = args.threads if len(seeds) == 1 else 1

        def choose(_spent: float, part=part, runs=runs, threads=threads) -> dict:
            run_two_at_a_time([(run, train_command(part, seed, run, args.minutes, threads))
                               for seed, run in runs.items()])  # fmt: skip
            return select(runs) if len(runs) > 1 else {"chosen": seeds[0]}

        chosen = ledger.run(f"{part}-selection", choose)
        report[part] = {**chosen, "selection_minutes": round(ledger.minutes(f"{part}-selection"), 1),
                        **evaluation(runs[chosen["chosen"]], n=args.n, threads=args.threads)}  # fmt: skip
    print(json.dumps(report))


if __name__ == "__main__":
    main()
