"""The Neural Programmer-Interpreter's table (talk 004): one core per task, one core for both,
then MAX learned with that core frozen; accuracy of the network's own programs on new inputs,
at the training lengths and far beyond them.

    python benchmarks/npi.py [--dir runs/bench-npi] [--minutes 25] [--multi-minutes 65]
                             [--max-minutes 15] [--max-lr 0.1]
                             [--parts add,sort,multi,max,seq2seq] [--n 50] [--threads 1]
                             [--seed 0] [--reuse-evals]

Each part trains into DIR/PART (an existing run is reused, not retrained: delete it to redo)
and is evaluated with `genlab eval DIR/PART --n N` (N new problems per length; addition at
3, 10, 20, 50, 100 digits per number, sorting at 4, 8, 15, 30 items; training lengths go up to
10 digits and 8 items). `seq2seq` is the baseline: an LSTM encoder-decoder trained on the same
problems' answers (add and sort together, like `multi`), without traces. Prints one JSON line
and draws DIR/accuracy_by_length.png. Bars (issue 38): single-task add and sort 100%
at the training lengths within 30 minutes each on 2 cores; multi-task >= 97% add, 100% sort;
MAX with the core frozen >= 99%, add and sort unchanged.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from common import evaluation, train_unless_done, without_labels
from genlab.tasks.registry import get_model
from genlab.viz.curves import save_curves

PARTS = {"add": {"tasks": "add"}, "sort": {"tasks": "sort"}, "multi": {"tasks": "add,sort"},
         "max": {"new_program": "max", "freeze_core": True}, "seq2seq": {"tasks": "add,sort"}}  # fmt: skip
LEGEND = {"add": "NPI, addition alone", "sort": "NPI, sorting alone", "multi": "NPI, one core for both",
          "max": "NPI, MAX learned with it frozen", "seq2seq": "seq2seq, both, no traces"}  # fmt: skip
TASK_NAMES = {"add": "addition", "sort": "sorting", "max": "MAX"}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--dir", default="runs/bench-npi")
    p.add_argument("--minutes", type=float, default=25.0, help="add, sort and seq2seq, each")
    p.add_argument("--multi-minutes", type=float, default=65.0, help="add and sort on one core")
    p.add_argument("--max-minutes", type=float, default=15.0, help="for MAX, core frozen")
    p.add_argument("--max-lr", type=float, default=0.1, help="for MAX: only 2 embeddings and "
                   "2 keys learn")  # fmt: skip
    p.add_argument("--parts", default="add,sort,multi,max,seq2seq")
    p.add_argument("--n", type=int, default=50, help="problems per length in evaluation")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0, help="of every part's training (another seed "
                   "in another --dir: another core)")  # fmt: skip
    p.add_argument(
        "--reuse-evals",
        action="store_true",
        help="take each part's last "
        "evaluation from DIR/PART/eval.json where there is one (to redraw the picture)",
    )
    args = p.parse_args()
    root = Path(args.dir)
    report: dict = {"benchmark": "npi", "dir": str(root)}
    for part in args.parts.split(","):
        run, model = root / part, "seq2seq" if part == "seq2seq" else "npi"
        minutes = {"max": args.max_minutes, "multi": args.multi_minutes}.get(part, args.minutes)
        init = {"init_from": str(root / "multi"), "lr": args.max_lr} if part == "max" else {}
        train_unless_done(model, "programs", get_model(model).options(**PARTS[part]), run,
                          minutes=minutes, threads=args.threads, seed=args.seed, **init)  # fmt: skip
        saved = run / "eval.json"
        if args.reuse_evals and saved.is_file():
            report[part] = without_labels(json.loads(saved.read_text()))
        else:
            report[part] = evaluation(run, n=args.n, threads=args.threads)
    series = {f"{LEGEND[part]}: {TASK_NAMES[k.split('_')[0]]}":
              ([int(x) for x in v], [100 * y for y in v.values()])
              for part, r in report.items() if isinstance(r, dict)
              for k, v in r.items() if k.endswith("_by_length")}  # fmt: skip
    if series:
        save_curves(series, root / "accuracy_by_length.png", "input length (digits or items)",
                    "% right", "NPI vs seq2seq: trained up to 10 digits / 8 items")  # fmt: skip
    print(json.dumps(report))


if __name__ == "__main__":
    main()
