"""Why Reptile was far below its paper (issue 40 B): each of the paper's settings that genlab's
defaults lacked, added alone to those defaults ("before": inner steps on all of a task's
drawings, genlab's default until 2026-12-06), then all together, at one budget, one thread each,
two trainings at a time; each tested on the same 1,000 Omniglot 5-way 1-shot tasks.

    python benchmarks/reptile_changes.py [--minutes 15] [--only NAME,...] [--out runs/bench-reptile]

The changes (Nichol et al. 2018's Omniglot settings):
- adam: the inner steps by Adam with beta1 = 0 at 0.001 (genlab: SGD at 0.1), also at test time;
- drawings: 10 drawings per class in each training task (genlab: 5);
- inner-batch: inner steps on 10 drawings at a time, in turn (before: all of them each step;
  genlab's default since this benchmark measured it: 87.5% against 46.4% at 15 minutes);
- anneal: the meta step annealed linearly to 0 by the end of the budget;
- eval-50: 50 inner steps at test time (genlab: 20); "before"'s trained weights, tested so;
- paper: all of the above.
Prints one JSON line per change (benchmarks/meta_omniglot.py's), then a summary line.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

from genlab.workflow import evaluate

ADAM = ["--set", "inner_optimizer=adam", "--set", "inner_lr=0.001"]
DRAWINGS = ["--set", "queries=9"]
BATCH = ["--set", "inner_batch=10"]
ANNEAL = ["--schedule", "linear"]
EVAL50 = ["--set", "eval_inner_steps=50"]
BEFORE = ["--set", "inner_batch=0"]  # the base: genlab's defaults until 2026-12-06
CHANGES = {"before": BEFORE, "adam": BEFORE + ADAM, "drawings": BEFORE + DRAWINGS,
           "inner-batch": BATCH, "anneal": BEFORE + ANNEAL,
           "paper": ADAM + DRAWINGS + BATCH + ANNEAL + EVAL50}  # fmt: skip


def command(name: str, args) -> list[str]:
    return [sys.executable, str(Path(__file__).with_name("meta_omniglot.py")), "--model",
            "reptile", "--minutes", str(args.minutes), "--threads", "1", "--out",
            str(Path(args.out) / name), *CHANGES[name]]  # fmt: skip


def tested_with_50_steps(out: Path) -> dict:
    """The "before" run copied with eval_inner_steps 50 in its config, then tested."""
    source, copy = out / "before" / "reptile-5w1s", out / "eval-50" / "reptile-5w1s"
    if not copy.is_dir():
        shutil.copytree(source, copy)
        config = json.loads((copy / "config.json").read_text())
        config["model_options"]["eval_inner_steps"] = 50
        (copy / "config.json").write_text(json.dumps(config, indent=1))
    result = evaluate(copy, tasks=1000)
    return {"change": "eval-50", "accuracy": round(result["accuracy"], 4),
            "ci95": round(result["ci95"], 4)}  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--minutes", type=float, default=15.0)
    p.add_argument("--only", default=",".join(CHANGES), help="changes to run, comma-separated")
    p.add_argument("--out", default="runs/bench-reptile")
    args = p.parse_args()
    names = args.only.split(",")
    unknown = [n for n in names if n not in CHANGES]
    if unknown:
        raise SystemExit(f"--only: unknown change {unknown[0]}; known: {', '.join(CHANGES)}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results, running, todo = {}, [], list(names)
    while todo or running:
        while todo and len(running) < 2:
            name = todo.pop(0)
            log = open(out / f"{name}.json", "w")  # noqa: SIM115 -- closed when the run ends
            running.append((name, log, subprocess.Popen(command(name, args), stdout=log)))
        time.sleep(2)
        for name, log, proc in [r for r in running if r[2].poll() is not None]:
            log.close()
            running.remove((name, log, proc))
            if proc.returncode:
                raise SystemExit(f"the '{name}' run failed: {' '.join(proc.args)}")
            results[name] = json.loads((out / f"{name}.json").read_text().splitlines()[-1])
            print(json.dumps({"change": name, **results[name]}), flush=True)
    if "before" in results:
        print(json.dumps(tested_with_50_steps(out)), flush=True)
    print(json.dumps({"summary": {n: [r["accuracy"], r["ci95"], r["iterations"]]
                                  for n, r in results.items()}}))  # fmt: skip


if __name__ == "__main__":
    main()
