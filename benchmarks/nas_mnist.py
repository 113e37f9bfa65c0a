"""Architecture search on 1,000 MNIST training images: ENAS, NAS from scratch and random search
over one space, each found architecture retrained from scratch with 3 seeds, beside a
hand-designed one (issue 42 B).

    python benchmarks/nas_mnist.py [--enas-minutes 5] [--ratio 10] [--child-steps 200]
        [--retrain-steps 2000] [--seeds 3] [--out runs/bench-nas]

1. NAS (`genlab train enas --search nas`) and random search (`--search random`) for
   ratio x enas-minutes each, side by side, one thread each; both score every child on 1,000
   validation images after --child-steps of training from scratch.
2. ENAS (`--search enas`, its defaults) for --enas-minutes beside the hand-designed
   architecture's retraining, one thread each; `genlab eval` then draws 20 children and names
   the best on the 5,000 validation images with the shared weights.
3. Each search's architecture and the hand-designed one (conv3 cells with residual skips),
   retrained from scratch for --retrain-steps with --seeds seeds, two one-thread trainings at a
   time; test error on MNIST's 10,000 test digits.
Prints one JSON line and draws OUT/architectures.png. A part that exists is reused.
Bar: ENAS names its architecture (its search, then scoring 20 drawn children: `genlab eval`,
one thread) >= 10x faster than NAS's search, and it retrains to a test error no more than one
of NAS's seeds' standard deviations above NAS's.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from common import evaluation, run_two_at_a_time, seed_stats
from genlab.models.supernet import SearchSpace
from genlab.viz.architectures import save_architectures

HAND = "0,0,1,0,0,1,0,0,0,1"  # conv3 | conv3 +stem | conv3 +c0 | conv3 +c1
NAMES = {"enas": "ENAS", "nas": "NAS from scratch", "random": "random search"}


def genlab(*args: str) -> list[str]:
    return [sys.executable, "-m", "genlab.cli", *args]


def search_command(search: str, minutes: float, args, run: Path) -> list[str]:
    cmd = genlab("train", "enas", "--search", search, "--minutes", str(minutes), "--threads",
                 "1", "--quiet", "--seed", "0", "--out", str(run))  # fmt: skip
    if search != "enas":
        cmd += ["--child-steps", str(args.child_steps), "--val-batch", "1000", "--log-every",
                "1", "--checkpoint-every", "5"]  # fmt: skip
    return cmd


def retrain_command(arch: str, seed: int, args, run: Path) -> list[str]:
    return genlab("train", "enas", "--arch", arch, "--steps", str(args.retrain_steps), "--seed",
                  str(seed), "--threads", "1", "--quiet", "--out", str(run))  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--enas-minutes", type=float, default=5.0)
    p.add_argument("--ratio", type=float, default=10.0)
    p.add_argument("--child-steps", type=int, default=200)
    p.add_argument("--retrain-steps", type=int, default=2000)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--out", default="runs/bench-nas")
    args = p.parse_args()
    out = Path(args.out)
    long = args.enas_minutes * args.ratio
    run_two_at_a_time(
        [(out / s, search_command(s, long, args, out / s)) for s in ("nas", "random")]
    )
    hand = [(out / f"hand-seed{s}", retrain_command(HAND, s, args, out / f"hand-seed{s}"))
            for s in range(args.seeds)]  # fmt: skip
    run_two_at_a_time([(out / "enas", search_command("enas", args.enas_minutes, args,
                                                    out / "enas")), *hand])  # fmt: skip
    found, naming = {}, {}
    for s in ("enas", "nas", "random"):
        t = time.monotonic()
        found[s] = evaluation(out / s, threads=1)
        naming[s] = (time.monotonic() - t) / 60  # ENAS names its best here: part of its search
    archs = {"hand": HAND, **{s: f["arch"] for s, f in found.items()}}
    jobs = [(out / f"{m}-seed{s}", retrain_command(a, s, args, out / f"{m}-seed{s}"))
            for m, a in archs.items() for s in range(args.seeds)]  # fmt: skip
    run_two_at_a_time(jobs)
    table = {}
    for method, arch in archs.items():
        errors = [evaluation(out / f"{method}-seed{s}", threads=2)["test_error"]
                  for s in range(args.seeds)]  # fmt: skip
        table[method] = {"arch": arch, "description": SearchSpace().describe(arch.split(",")),
                         **seed_stats(errors)}  # fmt: skip
        if method in found:
            search = found[method]
            minutes = search["train_seconds"] / 60 + (naming[method] if method == "enas" else 0)
            table[method].update(search_minutes=round(minutes, 1), search_steps=search["step"],
                                 children=search.get("children", search.get("candidates")),
                                 score=search.get("best_reward", search.get("val_accuracy")))  # fmt: skip
    names = {"hand": "hand-designed", **{m: f"{NAMES[m]}, {table[m]['search_minutes']:g} min"
                                         for m in found}}  # fmt: skip
    save_architectures({f"{names[m]}: {r['mean']:.2f}% error": SearchSpace().parse(r["arch"].split(","))
                        for m, r in table.items()}, out / "architectures.png")  # fmt: skip
    speedup = table["nas"]["search_minutes"] / table["enas"]["search_minutes"]
    bar = speedup >= 10 and table["enas"]["mean"] <= table["nas"]["mean"] + table["nas"]["sd"]
    print(json.dumps({"benchmark": "nas_mnist", "table": table, "ratio": args.ratio,
                      "speedup": round(speedup, 2), "child_steps": args.child_steps,
                      "retrain_steps": args.retrain_steps, "seeds": args.seeds, "bar_met": bar,
                      "date": time.strftime("%Y-%m-%d")}))  # fmt: skip


if __name__ == "__main__":
    main()
