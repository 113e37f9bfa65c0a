"""Meta-train a few-shot learner on Omniglot for a wall-clock budget, then test it on 1,000 tasks.

    python benchmarks/meta_omniglot.py [--model maml|fomaml|reptile|snail] [--minutes 60]
                                       [--ways 5] [--shots 1]
                                       [--set inner_lr=0.4 --set bn=support ...] [--speed-only]
                                       [--schedule linear [--steps N]]

Prints one JSON line: `accuracy` and `ci95` (fractions) on `--tasks` meta-test tasks of the
random1200-seed1 split with 15 queries per class, meta-iterations done, minutes trained, and
`ms_per_iteration` of one meta-batch with vmap over tasks and with a Python loop (training then
uses the faster one unless `--set vectorize=...` says otherwise; `options.vectorize` records
it; SNAIL has no inner loop: one time, `step`), and `live_ms`: adapting to 5 new drawings and
classifying one more (genlab.meta.live, the draw-and-classify demo; bar < 200 ms).
Bars: 5-way 1-shot >= 0.970 within 60 minutes on 2 cores for the best algorithm (issue 6);
SNAIL 5-way 1-shot >= 0.980 and 20-way 1-shot >= 0.950 within 90 minutes (issue 40).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import torch

from common import median_ms, parse_set, train_from_scratch
from genlab.meta.tasks import fewshot_data
from genlab.tasks.meta import few_shot_classifier, train_batches
from genlab.tasks.registry import get_model
from genlab.train.config import TrainConfig
from genlab.workflow import evaluate


def ms_per_iteration(entry, options, data, batch_size: int) -> float:
    """One meta-iteration (loss and meta-gradient) on the same meta-batch, median of 20."""
    model = entry.build(options)
    batch = train_batches(options, data, batch_size, 0).batch(0)
    return median_ms(lambda: model.loss(batch)["loss"].backward())


def live_ms(run: Path, data, ways: int) -> float:
    """Adapt to one drawing of each of `ways` new classes and classify one more."""
    clf = few_shot_classifier(run)
    drawings = [data.test[c, 0].numpy() for c in range(ways)]
    query = [data.test[0, 1].numpy()]
    return median_ms(lambda: clf.fit(drawings, list(range(ways))).predict_proba(query))


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--model", default="maml", choices=("maml", "fomaml", "reptile", "snail"))
    p.add_argument("--minutes", type=float, default=60.0)
    p.add_argument("--ways", type=int, default=5)
    p.add_argument("--shots", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=None, help="tasks per meta-batch")
    p.add_argument("--lr", type=float, default=None, help="outer learning rate")
    p.add_argument("--steps", type=int, default=None, help="stop at this meta-iteration too")
    p.add_argument("--schedule", default=None, help="outer learning-rate schedule: linear and "
                   "cosine reach 0 at --steps or when --minutes runs out, whichever comes "
                   "first (the loop's --schedule-ends budget)")  # fmt: skip
    p.add_argument("--set", action="append", default=[], help="model option key=value")
    p.add_argument("--tasks", type=int, default=1000)
    p.add_argument("--speed-only", action="store_true", help="only time vmap vs loop")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    p.add_argument("--out", default="runs/bench-meta")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    entry = get_model(args.model)
    options = entry.options(ways=args.ways, shots=args.shots, **parse_set(args.set, entry.options))
    given = {k: v for k, v in (("batch_size", args.batch_size), ("lr", args.lr),
                               ("steps", args.steps)) if v}  # fmt: skip
    cfg = TrainConfig(
        minutes=args.minutes, checkpoint_every=500, threads=args.threads,
        **{**entry.train_defaults, **given},
    )  # fmt: skip
    report: dict = {
        "benchmark": "meta_omniglot",
        "model": args.model,
        "ways": args.ways,
        "shots": args.shots,
        "batch_size": cfg.batch_size,
    }
    data = fewshot_data(options.split)
    if args.model == "snail":
        report["ms_per_iteration"] = {
            "step": ms_per_iteration(entry, options, data, cfg.batch_size)
        }
    else:
        report["ms_per_iteration"] = {
            way: ms_per_iteration(
                entry, dataclasses.replace(options, vectorize=vmap), data, cfg.batch_size
            )
            for way, vmap in (("vmap", True), ("loop", False))
        }
    if args.model != "snail" and not any(s.startswith("vectorize=") for s in args.set):
        faster = report["ms_per_iteration"]["vmap"] <= report["ms_per_iteration"]["loop"]
        options = dataclasses.replace(options, vectorize=faster)
    if args.schedule:
        cfg = dataclasses.replace(cfg, schedule=args.schedule, schedule_ends="budget")
        report.update(schedule=args.schedule, schedule_ends="budget", schedule_steps=args.steps)
    if not args.speed_only:
        out = Path(args.out) / f"{args.model}-{args.ways}w{args.shots}s"
        result = train_from_scratch(args.model, "omniglot", options, cfg, out)
        t = time.monotonic()
        m = evaluate(out, tasks=args.tasks)
        report.update(
            accuracy=round(m["accuracy"], 4),
            ci95=round(m["ci95"], 4),
            tasks=m["tasks"],
            iterations=result.step,
            train_minutes=round(result.seconds / 60, 1),
            eval_seconds=round(time.monotonic() - t, 1),
            bn=m.get("bn", "running statistics"),
            eval_inner_steps=m.get("inner_steps"),
            options=dataclasses.asdict(options),
            live_ms=live_ms(out, data, args.ways),
        )
    report.update(threads=torch.get_num_threads(), date=time.strftime("%Y-%m-%d"))
    print(json.dumps(report))


if __name__ == "__main__":
    main()
