"""Parallel WaveNet on FSDD: a student distilled from a trained WaveNet teacher, and what each loss
contributes.

    python benchmarks/parallel_wavenet.py --teacher RUN [--minutes 30] [--ablate power,perceptual]
                                          [--student RUN] [--per-digit 10] [--set flows=4 ...]
                                          [--threads 1] [--out runs/bench-pwn] [--reuse]
                                          [--judge RUN]

For the teacher (cached native generation) and the student (all losses, `--minutes` of
training, or an existing `--student` run): single-stream generation speed (samples/s, batch 1,
one second of audio), and `--per-digit` conditioned clips per digit scored by
`audio_tasks.score_generated`: the teacher's NLL of them (bits per sample), the rate genlab's
spoken-digit classifier hears their digit, their energy relative to real test speech, and the
fraction of clips 20 dB quieter than it (quiet_clip_fraction; the real test utterances' own,
cut to the same length, beside it).
That classifier is also the perceptual loss, so a student may learn to please it: `--judge`
names a second `genlab train audio_classifier` run (another seed), which no student saw, and
its rate is reported beside it (judge_digit_accuracy).
Then, for each loss named in `--ablate` (kl, power, perceptual, contrastive), a student
trained for the same budget without it, scored the same way. The final checkpoint's loudness
is one draw, so each student also reports its training batches' energy ratio over the second
half of training (`energy_over_training`: quartiles, and the fraction of logged batches more
than 20 dB quieter than the real crops). One JSON line.

Bars (issue 8): student >= 400,000 samples/s (50x real time) on 2 cores; its digit accuracy
within 10 points of the teacher's; without the power loss the student whispers (taken here as:
most of its clips 20 dB quieter than real speech, and more of them than the full student's).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import time
from pathlib import Path

import torch

from common import median_ms, parse_set, train_for_minutes
from genlab.tasks.audio import conditioning, load_data, score_generated
from genlab.tasks.registry import get_model
from genlab.tasks.runs import load_run
from genlab.train.logger import read_metrics

LOSSES = ("kl", "power", "perceptual", "contrastive")


def speed(model, seconds: float = 1.0) -> float:
    """Samples per second generating one stream of `seconds` of 8 kHz audio (median of 10)."""
    spk, dig = conditioning(model, 1)
    u = torch.rand(1, int(8000 * seconds), 2)
    with torch.no_grad():
        ms = median_ms(lambda: model.generate(u, spk, dig), repeats=10)
    return round(u.shape[1] / (ms / 1000))


def scored(model, options, teacher, splits, n: int, judge=None) -> dict:
    out = score_generated(model, options, teacher, splits, n, judge=judge)
    return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in out.items()}


def energy_over_training(run: Path) -> dict:
    """The energy ratio logged during the second half of `run`'s training: min, quartiles and
    max, and the fraction of logged batches below 0.01 (20 dB quieter than the real crops);
    only the count where fewer than two batches were logged."""
    rows = [r for r in read_metrics(run) if "energy_ratio" in r]
    late = sorted(r["energy_ratio"] for r in rows if r["step"] > rows[-1]["step"] / 2)
    if len(late) < 2:
        return {"batches": len(late)}
    q = statistics.quantiles(late, n=4)
    return {"min": late[0], "q1": q[0], "median": q[1], "q3": q[2], "max": late[-1],
            "below_0.01": sum(e < 0.01 for e in late) / len(late), "batches": len(late)}  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--teacher", required=True, help="a trained `genlab train wavenet` run")
    p.add_argument("--student", default=None, help="an existing parallel_wavenet run (no training)")
    p.add_argument("--minutes", type=float, default=30.0, help="training budget per student")
    p.add_argument("--ablate", default="", help=f"comma-separated losses among {LOSSES}")
    p.add_argument("--per-digit", type=int, default=10, help="conditioned clips per digit")
    p.add_argument("--set", action="append", default=[], help="student option key=value")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    p.add_argument("--out", default="runs/bench-pwn")
    p.add_argument(
        "--judge",
        default=None,
        help="an audio_classifier run (another seed) that also scores the digits",
    )
    p.add_argument("--reuse", action="store_true",
                   help="measure students already in --out (full, no_LOSS) instead of training")  # fmt: skip
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    ablate = [name for name in args.ablate.split(",") if name]
    if unknown := set(ablate) - set(LOSSES):
        raise SystemExit(f"--ablate: unknown losses {sorted(unknown)}; choose from {LOSSES}")
    n = 10 * args.per_digit
    _, t_options, teacher, t_config = load_run(Path(args.teacher))
    splits = load_data("fsdd", None, t_options)
    judge = None
    if args.judge:
        judge_entry, _, judge, _ = load_run(Path(args.judge))
        if judge_entry.name != "audio_classifier":
            raise SystemExit(f"--judge {args.judge}: an audio_classifier run is needed, "
                             f"not a {judge_entry.name} run")  # fmt: skip
    entry = get_model("parallel_wavenet")
    report: dict = {"benchmark": "parallel_wavenet", "teacher_run": args.teacher,
                    "teacher_step": t_config["step"]}  # fmt: skip
    report["teacher"] = {"samples_per_s_batch_1": speed(teacher),
                         **scored(teacher, t_options, teacher, splits, n, judge)}  # fmt: skip

    def student(name: str, overrides: dict) -> tuple[object, object, dict]:
        """The student `name` (trained now unless reused), its options, and how it trained."""
        out = Path(args.out) / name
        if name == "full" and args.student:
            out = Path(args.student)
        elif not (args.reuse and (out / "checkpoint.pt").is_file()):
            options = entry.options(**{**parse_set(args.set, entry.options), **overrides,
                                       "teacher": args.teacher})  # fmt: skip
            train_for_minutes("parallel_wavenet", "fsdd", options, args.minutes, out, args.threads)
        _, options, model, config = load_run(out)
        report.setdefault("options", dataclasses.asdict(options))
        trained = {"steps": config["step"], "train_minutes": round(config["train_seconds"] / 60, 1),
                   "energy_over_training": energy_over_training(out)}  # fmt: skip
        return model, options, trained

    model, options, trained = student("full", {})
    report["student"] = {"samples_per_s_batch_1": speed(model), **trained,
                         **scored(model, options, teacher, splits, n, judge)}  # fmt: skip
    report["ablation"] = {}
    for loss in ablate:
        model, options, trained = student(f"no_{loss}", {f"{loss}_weight": 0.0})
        report["ablation"][f"no_{loss}"] = {**trained,
                                            **scored(model, options, teacher, splits, n, judge)}  # fmt: skip
    s, t = report["student"], report["teacher"]
    report["bars"] = {
        "student_50x_real_time": s["samples_per_s_batch_1"] >= 400_000,
        "digit_accuracy_within_10_points": (
            s.get("digit_accuracy", 0) >= t.get("digit_accuracy", 1) - 0.10
        ),
    }
    if "no_power" in report["ablation"]:
        quiet = report["ablation"]["no_power"]["quiet_clip_fraction"]
        report["bars"]["whisper_without_power_loss"] = (
            quiet > 0.5 and quiet > s["quiet_clip_fraction"]
        )
    report.update(threads=torch.get_num_threads(), date=time.strftime("%Y-%m-%d"))
    print(json.dumps(report))


if __name__ == "__main__":
    main()
