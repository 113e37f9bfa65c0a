"""Is genlab fast by default? (issue 43) One JSON line, parts chosen with --parts:

    python benchmarks/speed.py [--parts steps,layout,peak,concurrent,beside_eval,vae5]
                               [--models vae,glow,gated_pixelcnn] [--steps 5] [--minutes 2]
                               [--dir runs/bench-speed]

steps       seconds per training step of each model at its default options and batch: today's
            default (fp32, eager), the new default (`--precision auto`), and auto compiled
            (`--compile`), with the compile time (the compiled rounds' time beyond their steps:
            forward and backward compiled, plus building the model) and the minutes after which
            compiling has paid
            back (two rounds each, the faster kept; random inputs; all cores).
peak        the fp32 matrix-product peak of this CPU (2048^2 products, all cores), Glow's FLOPs
            per training step counted in fp32 (torch.utils.flop_counter) and the fraction of the
            peak its default step reaches.
concurrent  one default `genlab train vae` alone for --minutes, then two at once: steps/s of each
            against alone (subprocesses, as a user runs them).
layout      seconds per float32 step of each model (--layout-models) with its convolution
            weights contiguous and channels-last: should float32 use channels-last too?
beside_eval one default VAE training for --minutes while default `genlab eval --k 100 --n 2000`s
            of another VAE run follow one another beside it: the training's steps/s and the
            evaluations' seconds, each against alone (the training alone: `concurrent`'s, or
            timed here).
vae5        the README's first command: `genlab train vae --minutes 5`, then `genlab eval --k 100`.

Run it on an otherwise idle machine; `uptime` is recorded beside the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from genlab.tasks.registry import get_model
from genlab.tasks.training import resolved
from genlab.train.config import TrainConfig
from genlab.train.loop import gradient_step, laid_out_for, make_state
from genlab.train.state import read_checkpoint
from precision_speed import random_batch, seconds_per_step


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def step_times(models: list[str], steps: int) -> dict:
    out = {}
    for model in models:
        entry = get_model(model)
        batch = TrainConfig(**entry.train_defaults).batch_size
        auto = resolved(entry, TrainConfig(**entry.train_defaults)).precision
        timed = {}
        for name, precision, compile in [("fp32", "fp32", False), ("auto", auto, False),
                                         ("auto_compiled", auto, True)]:  # fmt: skip
            start = time.perf_counter()
            timed[name] = min(seconds_per_step(model, precision, steps, {}, batch, compile)
                              for _ in range(2))  # fmt: skip
            if compile:  # the first of the two rounds compiled; the second reused the cache
                total = time.perf_counter() - start
                timed["compile_s"] = total - 2 * (steps + 2) * timed[name]
        row = {"auto_precision": auto, "batch_size": batch,
               **{f"{k}_step_s": round(v, 4) for k, v in timed.items() if k != "compile_s"},
               "compile_s": round(timed["compile_s"], 1),
               "auto_speedup": round(timed["fp32"] / timed["auto"], 2),
               "compiled_speedup": round(timed["auto"] / timed["auto_compiled"], 2)}  # fmt: skip
        gain = timed["auto"] - timed["auto_compiled"]  # seconds saved per step
        row["compile_payback_min"] = round(timed["compile_s"] / gain / 60, 1) if gain > 0 else None
        out[model] = row
    return out


def layouts(models: list[str], steps: int) -> dict:
    out = {}
    for model in models:
        entry = get_model(model)
        batch = TrainConfig(**entry.train_defaults).batch_size
        timed = {name: min(seconds_per_step(model, "fp32", steps, {}, batch, channels_last=last)
                           for _ in range(2))
                 for name, last in (("contiguous", False), ("channels_last", True))}  # fmt: skip
        out[model] = {f"{k}_step_s": round(v, 4) for k, v in timed.items()}
        out[model]["channels_last_speedup"] = round(timed["contiguous"] / timed["channels_last"], 2)
    return out


def matmul_peak(n: int = 2048, repeats: int = 10) -> float:
    """GFLOP/s of float32 n x n products, the best of `repeats`."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e9


def glow_flops_per_step() -> int:
    entry = get_model("glow")
    cfg = TrainConfig(**entry.train_defaults, precision="fp32")
    net = laid_out_for(entry.build(entry.options()), "fp32")
    state, step = make_state(net, cfg), gradient_step(cfg.grad_clip, "fp32")
    batch = random_batch("glow", entry.options(), cfg.batch_size)
    with FlopCounterMode(display=False) as counter:
        step(state, batch)
    return counter.get_total_flops()


def peak(steps: int) -> dict:
    gflops = matmul_peak()
    flops = glow_flops_per_step()
    entry = get_model("glow")
    cfg = resolved(entry, TrainConfig(**entry.train_defaults))
    seconds = min(seconds_per_step("glow", cfg.precision, steps, {}, cfg.batch_size)
                  for _ in range(2))  # fmt: skip
    return {"fp32_matmul_gflops": round(gflops, 1), "glow_gflop_per_step": round(flops / 1e9, 2),
            "glow_step_s": round(seconds, 4), "glow_precision": cfg.precision,
            "glow_gflops": round(flops / seconds / 1e9, 1),
            "glow_fraction_of_peak": round(flops / seconds / 1e9 / gflops, 3)}  # fmt: skip


def genlab(*args: str) -> list[str]:
    return [str(Path(sys.executable).with_name("genlab")), *args]


def steps_per_s(run: Path) -> float:
    ckpt = read_checkpoint(run)
    return int(ckpt["step"]) / float(ckpt["seconds"])


def concurrent(root: Path, minutes: float) -> dict:
    """One VAE training alone, then two at once, each with genlab's defaults."""
    env = {**os.environ, "GENLAB_DATA": os.environ.get("GENLAB_DATA", "../shared/data")}

    def trainings(names: list[str]) -> list[float]:
        procs = [subprocess.Popen(genlab("train", "vae", "--minutes", str(minutes), "--quiet",
                                         "--out", str(root / name)), env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                 for name in names]  # fmt: skip
        notes = [p.communicate()[1] for p in procs]
        if any(p.returncode for p in procs):
            raise SystemExit(f"a training failed: {notes}")
        return [steps_per_s(root / name) for name in names]

    for name in ("alone", "pair-a", "pair-b"):
        subprocess.run(["rm", "-rf", str(root / name)], check=True)
    (alone,) = trainings(["alone"])
    pair = trainings(["pair-a", "pair-b"])
    return {"minutes": minutes, "alone_steps_per_s": round(alone, 2),
            "pair_steps_per_s": [round(x, 2) for x in pair],
            "pair_ratio": [round(x / alone, 3) for x in pair]}  # fmt: skip


def beside_eval(root: Path, minutes: float, alone: float | None) -> dict:
    """A default VAE training beside back-to-back default evaluations (of `root/judged`, a
    short VAE run made first), each against alone."""
    env = {**os.environ, "GENLAB_DATA": os.environ.get("GENLAB_DATA", "../shared/data")}
    judged, trained = root / "judged", root / "beside-eval"
    if not (judged / "checkpoint.pt").is_file():
        subprocess.run(genlab("train", "vae", "--steps", "200", "--quiet", "--out", str(judged)),
                       env=env, check=True, stdout=subprocess.DEVNULL)  # fmt: skip
    evaluate = genlab("eval", str(judged), "--k", "100", "--samples", "0", "--n", "2000")

    def timed_eval() -> float:
        t0 = time.perf_counter()
        subprocess.run(evaluate, env=env, check=True, stdout=subprocess.DEVNULL)
        return time.perf_counter() - t0

    eval_alone = timed_eval()
    if alone is None:
        subprocess.run(["rm", "-rf", str(root / "alone")], check=True)
        subprocess.run(genlab("train", "vae", "--minutes", str(minutes), "--quiet", "--out",
                              str(root / "alone")), env=env, check=True,
                       stdout=subprocess.DEVNULL)  # fmt: skip
        alone = steps_per_s(root / "alone")
    subprocess.run(["rm", "-rf", str(trained)], check=True)
    training = subprocess.Popen(genlab("train", "vae", "--minutes", str(minutes), "--quiet",
                                       "--out", str(trained)), env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip
    evals = []
    while training.poll() is None:
        evals.append(timed_eval())
    notes = training.communicate()[1]
    if training.returncode:
        raise SystemExit(f"the training failed: {notes}")
    beside = steps_per_s(trained)
    evals = evals[:-1] or evals  # the last one partly ran alone
    mean_eval = sum(evals) / len(evals)
    return {"minutes": minutes, "train_alone_steps_per_s": round(alone, 2),
            "train_beside_eval_steps_per_s": round(beside, 2),
            "train_ratio": round(beside / alone, 3), "eval_alone_s": round(eval_alone, 1),
            "eval_beside_training_s": round(mean_eval, 1),
            "eval_ratio": round(eval_alone / mean_eval, 3), "evals": len(evals),
            "governor_lines": [line for line in notes.splitlines() if "thread" in line]}  # fmt: skip


def vae5(root: Path) -> dict:
    run = root / "vae-mnist"
    subprocess.run(["rm", "-rf", str(run)], check=True)
    env = {**os.environ, "GENLAB_DATA": os.environ.get("GENLAB_DATA", "../shared/data")}
    subprocess.run(genlab("train", "vae", "--minutes", "5", "--quiet", "--out", str(run)),
                   env=env, check=True, stdout=subprocess.DEVNULL)  # fmt: skip
    subprocess.run(genlab("eval", str(run), "--k", "100", "--samples", "0"), env=env,
                   check=True, stdout=subprocess.DEVNULL)  # fmt: skip
    result = json.loads((run / "eval.json").read_text())
    ckpt = read_checkpoint(run)
    return {"nll_nats": result.get("nll_nats"), "steps": int(ckpt["step"]),
            "precision": json.loads((run / "config.json").read_text())["train"]["precision"]}  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--parts", default="steps,layout,peak,concurrent,beside_eval,vae5")
    p.add_argument("--models", default="vae,glow,gated_pixelcnn")
    p.add_argument("--steps", type=int, default=5, help="timed steps per round")
    p.add_argument("--layout-models", default="vae,dcgan,pixelvae,glow,gated_pixelcnn")
    p.add_argument("--minutes", type=float, default=2.0, help="per training in 'concurrent'")
    p.add_argument("--dir", default="runs/bench-speed")
    p.add_argument("--threads", type=int, default=None, help="steps, layout, peak (default: all)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    root = Path(args.dir)
    root.mkdir(parents=True, exist_ok=True)
    report: dict = {"benchmark": "speed", "uptime_before": uptime(), "cpus": os.cpu_count(),
                    "threads": torch.get_num_threads()}  # fmt: skip
    parts = args.parts.split(",")
    if "steps" in parts:
        report["steps"] = step_times(args.models.split(","), args.steps)
    if "layout" in parts:
        report["layout"] = layouts(args.layout_models.split(","), args.steps)
    if "peak" in parts:
        report["peak"] = peak(args.steps)
    if "concurrent" in parts:
        report["concurrent"] = concurrent(root, args.minutes)
    if "beside_eval" in parts:
        alone = report.get("concurrent", {}).get("alone_steps_per_s")
        report["beside_eval"] = beside_eval(root, args.minutes, alone)
    if "vae5" in parts:
        report["vae5"] = vae5(root)
    report["uptime_after"] = uptime()
    print(json.dumps(report))


if __name__ == "__main__":
    main()
