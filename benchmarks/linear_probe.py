"""The linear-probe table: how well each genlab representation classifies MNIST digits (or
Omniglot's unseen characters) from a few labels per class, at CPU scale (the
research-directions talk's table).

    python benchmarks/linear_probe.py [--data mnist|omniglot] [--models cpc,rotnet,vae]
        [--minutes 30,15,15] [--threads N] [--labels 1,5,10,100,all] [--draws 5]
        [--supervised-steps 300] [--supervised-up-to 10] [--mlp] [--n 10000]
        [--set cpc.KEY=VALUE ...] [--out runs/bench-probe]

1. Each model is trained its `--minutes` on `--data` with its defaults (plus `--set`) into
   OUT/MODEL, unless that run exists (then it is reused; delete it to retrain). An agent that
   trains on an environment (spiral, painting `--data`'s images by default) trains there.
2. `genlab probe` on each run: a logistic regression on the frozen representation with N labels
   per class (`--draws` stratified draws), scored on the test set (MNIST's 10,000 digits; for
   Omniglot, drawers 16-20 of the 659 evaluation characters, labels from drawers 1-15: use
   `--labels 1,5,10,all`). The first model's probe also gives raw pixels, its network
   untrained, and its network trained from scratch on the same labels (`--supervised-steps`,
   with shifts and rotations; up to `--supervised-up-to` labels per class): the "supervised"
   row. With `--mlp`, each run's features also get a one-hidden-layer probe (row MODEL+mlp).
Prints one JSON line: accuracy (%) with 95% interval per row and label count, and the training
minutes and steps behind each row. Bar (issue 39): on MNIST with <= 10 labels per class, CPC's
probe beats the supervised row and raw pixels, CPC pretrained in <= 60 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from common import parse_set, train_unless_done
from genlab import workflow
from genlab.tasks.registry import get_model
from genlab.tasks.representation import count_key, label_counts
from genlab.train.runs import summarize


def earlier_probe(run: Path, counts, draws: int, supervised: int, up_to: int,
                  mlp: bool) -> dict | None:  # fmt: skip
    """The probe already in RUN/eval.json if it was made with these settings on the run's
    current checkpoint (so running the benchmark again does not redo it), else None."""
    try:
        probe = json.loads((run / "eval.json").read_text())["probe"]
        same = (probe["draws"] == draws and probe["supervised_steps"] == supervised
                and probe["supervised_up_to"] == up_to and not probe["overrides"]
                and probe.get("mlp", False) == mlp
                and probe["step"] == summarize(run)["step"]
                and next(iter(probe["tasks"].values()))["labels_per_class"]
                == [count_key(c) for c in counts])  # fmt: skip
    except (OSError, ValueError, KeyError, StopIteration):
        return None
    return probe if same else None


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--data", default="mnist", choices=("mnist", "omniglot"))
    p.add_argument("--models", default="cpc,rotnet,vae")
    p.add_argument("--minutes", default="30,15,15", help="training minutes of each model")
    p.add_argument("--labels", default="1,5,10,100,all")
    p.add_argument("--draws", type=int, default=5)
    p.add_argument("--supervised-steps", type=int, default=300)
    p.add_argument("--supervised-up-to", type=int, default=10, help="labels per class")
    p.add_argument("--mlp", action="store_true", help="also a one-hidden-layer probe")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    p.add_argument("--n", type=int, default=None, help="test images (default: all)")
    p.add_argument("--set", action="append", default=[], metavar="MODEL.KEY=VALUE")
    p.add_argument("--out", default="runs/bench-probe")
    args = p.parse_args()
    counts = label_counts(args.labels)
    models = args.models.split(",")
    budgets = [float(m) for m in args.minutes.split(",")]
    if len(budgets) != len(models):
        raise SystemExit(f"--minutes {args.minutes}: give one budget per model ({args.models})")
    rows, minutes, steps = {}, {}, {}
    for i, model in enumerate(models):
        entry, run = get_model(model), Path(args.out) / model
        given = [s.split(".", 1)[1] for s in args.set if s.startswith(f"{model}.")]
        if args.data in entry.datasets:
            data = args.data
        elif entry.datasets == ("env",):  # an agent: SPIRAL paints the dataset's images
            data = "env"
            given = [f"env=paint:{args.data}", *given] if model == "spiral" else given
        else:
            raise SystemExit(f"--models: {model} does not train on {args.data}")
        options = entry.options(**parse_set(given, entry.options))
        train_unless_done(model, data, options, run, minutes=budgets[i], threads=args.threads)
        supervised = args.supervised_steps if i == 0 else 0
        result = earlier_probe(run, counts, args.draws, supervised, args.supervised_up_to,
                               args.mlp) or \
            workflow.probe(run, counts, args.draws, n=args.n, supervised_steps=supervised,
                           supervised_up_to=args.supervised_up_to, threads=args.threads,
                           mlp=args.mlp)  # fmt: skip
        minutes[model] = round(result["train_seconds"] / 60, 1)
        steps[model] = result["step"]
        (table,) = result["tasks"].values()
        for name, row in table["rows"].items():
            label = model + name.removeprefix("run") if name.startswith("run") else \
                f"{name} ({model})"  # fmt: skip
            if name.startswith("run") or i == 0:
                rows[label] = {k: [round(v["accuracy"], 2), v["ci95"] and round(v["ci95"], 2)]
                               for k, v in row.items()}  # fmt: skip
    print(json.dumps({"benchmark": "linear_probe", "data": args.data, "labels": args.labels,
                      "draws": args.draws, "supervised_steps": args.supervised_steps,
                      "supervised_up_to": args.supervised_up_to,
                      "train_minutes": minutes, "train_steps": steps,
                      "accuracy_ci95": rows}), flush=True)  # fmt: skip  # fmt: skip


if __name__ == "__main__":
    main()
