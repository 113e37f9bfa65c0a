"""WaveNet on FSDD for a wall-clock budget, measured three ways.

    python benchmarks/wavenet_fsdd.py [--minutes 60] [--baseline-minutes 10] [--per-digit 10]
                                      [--set channels=64 ...] [--out runs/bench-wavenet]
    python benchmarks/wavenet_fsdd.py --run RUN --baseline-minutes 0   # measure a trained run

1. genlab's spoken-digit classifier (trained once into the cache, checked >= 0.95 on the test
   split): its test accuracy.
2. Test NLL over the full test utterances, bits and nats per sample, of the digit- and
   speaker-conditioned WaveNet (`genlab train wavenet`) and of the linear autoregressive baseline
   with the same receptive field (`genlab train linear_ar`).
3. Digit-conditioned samples (`--per-digit` per digit, speakers cycling, `sample_seconds` long,
   at `--temperature`, with classifier-free `--guidance` for a run trained with
   `digit_dropout`) classified by (1): the rate at which they are heard as their digit,
   overall and per digit; and where they stop sounding (`metrics.audio.sound_end`, median
   seconds), beside the real test utterances'.
One JSON line. Bars (issue 7): classifier >= 0.95; conditioned samples >= 0.70; WaveNet's NLL
clearly below the baseline's.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import torch

from common import parse_set, train_for_minutes
from genlab.data import fsdd
from genlab.data.audio import mulaw_decode
from genlab.metrics.audio import sound_end
from genlab.tasks.audio import (
    AudioSplits,
    digit_accuracy,
    digit_classifier,
    evaluate_audio_classifier,
    generate_clips,
    load_data,
)
from genlab.tasks.registry import get_model
from genlab.tasks.runs import load_run
from genlab.workflow import evaluate


def train_and_score(model: str, options, minutes: float, out: Path, threads: int | None) -> dict:
    result = train_for_minutes(model, "fsdd", options, minutes, out, threads)
    m = evaluate(out)
    return {
        "nll_bits_per_sample": round(m["nll_bits_per_sample"], 4),
        "nll_nats_per_sample": round(m["nll_nats_per_sample"], 4),
        "steps": result.step,
        "train_minutes": round(result.seconds / 60, 1),
    }


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--minutes", type=float, default=60.0, help="WaveNet training budget")
    p.add_argument("--baseline-minutes", type=float, default=10.0,
                   help="linear AR budget (0 skips the baseline)")  # fmt: skip
    p.add_argument("--per-digit", type=int, default=10, help="conditioned samples per digit")
    p.add_argument("--set", action="append", default=[], help="WaveNet option key=value")
    p.add_argument("--out", default="runs/bench-wavenet")
    p.add_argument("--run", default=None, help="measure this trained wavenet run (no training)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    p.add_argument("--temperature", type=float, default=1.0, help="sampling temperature")
    p.add_argument("--seed", type=int, default=1, help="seed of the samples' random draws")
    p.add_argument("--guidance", type=float, default=None,
                   help="classifier-free guidance scale for the samples (default: the run's, 1)")  # fmt: skip
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    wavenet = get_model("wavenet")
    options = wavenet.options(**parse_set(args.set, wavenet.options))
    report: dict = {"benchmark": "wavenet_fsdd", "options": dataclasses.asdict(options)}

    classifier = digit_classifier()
    splits: AudioSplits = load_data("fsdd", None, classifier.cfg)
    report["classifier_accuracy"] = round(
        evaluate_audio_classifier(classifier, classifier.cfg, splits)["accuracy"], 4
    )
    if args.baseline_minutes > 0:
        linear = get_model("linear_ar")
        report["linear_ar"] = train_and_score("linear_ar", linear.options(), args.baseline_minutes,
                                              out / "linear_ar", args.threads)  # fmt: skip
    if args.run:
        run = Path(args.run)
        m = evaluate(run)
        report["wavenet"] = {
            "nll_bits_per_sample": round(m["nll_bits_per_sample"], 4),
            "nll_nats_per_sample": round(m["nll_nats_per_sample"], 4),
            "steps": m["step"],
            "train_minutes": round(m["train_seconds"] / 60, 1),
        }
    else:
        run = out / "wavenet"
        report["wavenet"] = train_and_score("wavenet", options, args.minutes, run, args.threads)
    sampling = None if args.guidance is None else [f"guidance={args.guidance}"]
    _, options, model, _ = load_run(run, overrides=sampling)
    report["options"] = dataclasses.asdict(options)
    t0 = time.monotonic()
    clips, _ = generate_clips(model, options, 10 * args.per_digit, args.seed, args.temperature)
    generation_seconds = round(time.monotonic() - t0, 1)
    digits = torch.arange(10 * args.per_digit) % 10
    heard = digit_accuracy(classifier, clips, digits)
    ends = sound_end(torch.stack(clips), fsdd.SAMPLE_RATE)
    real_ends = [sound_end(mulaw_decode(splits.test.clip(k))[None], fsdd.SAMPLE_RATE).item()
                 for k in range(len(splits.test))]  # fmt: skip
    report["samples"] = {
        "digit_accuracy": round(heard["digit_accuracy"], 4),
        "per_digit": {d: round(a, 2) for d, a in heard["per_digit"].items()},
        "n": len(clips),
        "seconds_each": options.sample_seconds,
        "temperature": args.temperature,
        "guidance": options.guidance,
        "seed": args.seed,
        "sound_end_seconds_median": round(ends.median().item(), 3),
        "real_sound_end_seconds_median": round(torch.tensor(real_ends).median().item(), 3),
        "generation_seconds": generation_seconds,
    }
    report.update(threads=torch.get_num_threads(), date=time.strftime("%Y-%m-%d"))
    print(json.dumps(report))


if __name__ == "__main__":
    main()
