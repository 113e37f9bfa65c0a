"""Few-shot speaker adaptation of WaveNet on FSDD (talk 004).

    python benchmarks/speaker_adaptation.py [--holdout theo] [--base-minutes 30 | --base RUN]
                                            [--shots 1,5,20,100] [--steps 200]
                                            [--scratch-steps 400] [--out runs/bench-adapt] [--threads 1]

A WaveNet conditioned on speaker and digit is trained on five speakers (`--holdout-speaker`
leaves one out of both splits). For each N in `--shots`, the held-out speaker's first N training
utterances are used to (a) fit only a new speaker embedding, (b) fine-tune the whole model, each
for `--steps` Adam steps, and (c) train a model from scratch on the same N for
`--scratch-steps`. Prints the held-out speaker's test NLL (bits per sample, its 50 test
utterances) for each, beside the unadapted model (the new speaker's embedding set to the mean of
the trained speakers'). One JSON line.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import time
from pathlib import Path

import torch

from common import parse_set, train_for_minutes
from genlab.data import fsdd
from genlab.models.adaptation import adapt_speaker, with_mean_embedding
from genlab.models.wavenet import WaveNet
from genlab.tasks.audio import clip_nll, load_data
from genlab.tasks.registry import get_model
from genlab.tasks.runs import load_run


def bits(model, clips) -> float:
    with torch.no_grad():
        nats = clip_nll(model.eval(), clips).sum().item()
    return round(nats / int(clips.offsets[-1]) / math.log(2), 4)


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--holdout", default="theo", choices=fsdd.SPEAKERS)
    p.add_argument("--base-minutes", type=float, default=30.0)
    p.add_argument("--base", default=None, help="an existing wavenet run with --holdout-speaker")
    p.add_argument("--shots", default="1,5,20,100")
    p.add_argument("--steps", type=int, default=200, help="adaptation steps")
    p.add_argument("--scratch-steps", type=int, default=400)
    p.add_argument("--lr", type=float, default=1e-3, help="fine-tuning and from-scratch lr")
    p.add_argument("--embedding-lr", type=float, default=1e-2, help="embedding-only lr")
    p.add_argument("--set", action="append", default=[], help="WaveNet option key=value")
    p.add_argument("--out", default="runs/bench-adapt")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    entry = get_model("wavenet")
    if args.base:
        base_dir = Path(args.base)
        options = load_run(base_dir)[1]
        if options.holdout_speaker != args.holdout:
            raise SystemExit(f"{base_dir} held out '{options.holdout_speaker}', not {args.holdout}")
    else:
        base_dir = Path(args.out) / "base"
        options = entry.options(**{**parse_set(args.set, entry.options),
                                   "holdout_speaker": args.holdout})  # fmt: skip
        train_for_minutes("wavenet", "fsdd", options, args.base_minutes, base_dir, args.threads)
    base: WaveNet = load_run(base_dir)[2]
    splits = load_data("fsdd", None, options)
    sid = fsdd.SPEAKERS.index(args.holdout)
    test = splits.heldout_test
    report: dict = {"benchmark": "speaker_adaptation", "holdout": args.holdout,
                    "unadapted": bits(with_mean_embedding(base, sid), test),
                    "base_step": load_run(base_dir)[3]["step"], "rows": {}}  # fmt: skip
    t0 = time.monotonic()
    for n in (int(v) for v in args.shots.split(",")):
        clips = splits.heldout_train.select(torch.arange(len(splits.heldout_train)) < n)
        row = {}
        for mode in ("embedding", "all"):
            lr = args.embedding_lr if mode == "embedding" else args.lr
            net = adapt_speaker(base, clips, sid, mode, args.steps, lr, crop=options.crop)
            row[mode] = bits(net, test)
        torch.manual_seed(0)
        scratch = WaveNet(dataclasses.replace(options, holdout_speaker=""))
        row["scratch"] = bits(adapt_speaker(scratch, clips, sid, "all", args.scratch_steps,
                                            args.lr, crop=options.crop), test)  # fmt: skip
        report["rows"][n] = row
    report.update(
        adapt_steps=args.steps, scratch_steps=args.scratch_steps,
        minutes=round((time.monotonic() - t0) / 60, 1), threads=torch.get_num_threads(),
        date=time.strftime("%Y-%m-%d"),
    )  # fmt: skip
    print(json.dumps(report))


if __name__ == "__main__":
    main()
