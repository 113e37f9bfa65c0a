"""Learning curves on MinAtar: IMPALA and A2C at equal wall-clock, and one multi-task agent.

    python benchmarks/impala_minatar.py [--games breakout,space_invaders] [--algos impala,a2c]
        [--minutes 30] [--multitask asterix,breakout,space_invaders] [--episodes 100]
        [--set KEY=VALUE ...] [--out runs/bench-impala]

Each (game, algorithm) trains from scratch for `--minutes` with the model's defaults (IMPALA on
the local backend: one actor process and the learner, one core each; A2C inline on both cores),
then plays `--episodes` evaluation episodes (sampling its actions). `--multitask` trains one
IMPALA agent on those games together for the same minutes. Writes curves.png (frames vs mean
return of the last 100 training episodes) and curves.json into --out; prints one JSON line.
Bars (issue 4), 30 minutes each: Breakout mean return >= 20, SpaceInvaders >= 60, and IMPALA
matching or beating A2C at equal wall-clock. `--set backend=ray` trains on Ray (one Ray actor;
issue 41's bar: Breakout >= 20 in 30 minutes), in a private network with only loopback.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from common import in_private_network, parse_set, train_for_minutes
from genlab.tasks.registry import get_model
from genlab.train.logger import read_metrics
from genlab.viz.curves import save_curves
from genlab.workflow import evaluate

BARS = {"breakout": 20.0, "space_invaders": 60.0}
BACKEND = {"impala": {"backend": "local", "actors": 1, "envs_per_actor": 32}, "a2c": {}}


def curve(run: Path, key: str = "return") -> tuple[list[float], list[float]]:
    rows = [r for r in read_metrics(run) if key in r]
    return [r["frames"] for r in rows], [r[key] for r in rows]


def train_and_eval(algo: str, env: str, minutes: float, episodes: int, out: Path, extra: dict):
    entry = get_model(algo)
    options = entry.options(**{**BACKEND[algo], "env": env, **extra})
    result = train_for_minutes(algo, "env", options, minutes, out)
    m = evaluate(out, episodes=episodes)
    frames = read_metrics(out)[-1]["frames"]
    row = {"mean_return": round(m["mean_return"], 2), "std_return": round(m["std_return"], 2),
           "episodes": episodes, "frames": int(frames), "steps": result.step,
           "train_minutes": round(result.seconds / 60, 1),
           "frames_per_s": round(frames / result.seconds)}  # fmt: skip
    if "tasks" in m:
        row["tasks"] = {k: round(v["mean_return"], 2) for k, v in m["tasks"].items()}
    return row


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--games", default="breakout,space_invaders")
    p.add_argument("--algos", default="impala,a2c")
    p.add_argument("--minutes", type=float, default=30.0)
    p.add_argument("--multitask", default="", help="games for one multi-task agent ('' = none)")
    p.add_argument("--episodes", type=int, default=100)
    p.add_argument("--set", nargs="*", default=[], help="KEY=VALUE options for every run")
    p.add_argument("--out", default="runs/bench-impala")
    args = p.parse_args()
    in_private_network("backend=ray" in args.set)  # Ray only in a network with only loopback
    out = Path(args.out)
    report: dict = {"benchmark": "impala_minatar", "minutes": args.minutes}
    curves: dict = {}
    for game in filter(None, args.games.split(",")):  # --games '' runs the multi-task agent only
        report[game] = {}
        for algo in args.algos.split(","):
            extra = parse_set(args.set, get_model(algo).options)
            run = out / f"{algo}-{game}"
            report[game][algo] = train_and_eval(algo, f"minatar:{game}", args.minutes,
                                                args.episodes, run, extra)  # fmt: skip
            curves[f"{algo} {game}"] = curve(run)
        if game in BARS:
            best = max(r["mean_return"] for r in report[game].values())
            report[game]["bar"] = BARS[game]
            report[game]["bar_met"] = best >= BARS[game]
    if args.multitask:
        games = args.multitask.split(",")
        run = out / "impala-multitask"
        env = ",".join(f"minatar:{g}" for g in games)
        extra = parse_set(args.set, get_model("impala").options)
        report["multitask"] = train_and_eval("impala", env, args.minutes, args.episodes, run,
                                             extra)  # fmt: skip
        for g in games:
            curves[f"multi {g}"] = curve(run, f"return/minatar:{g}")
    (out / "curves.json").write_text(json.dumps(curves) + "\n")
    save_curves(curves, out / "curves.png", "environment frames", "mean return (last 100)",
                f"MinAtar, {args.minutes:g} min per run, 2 cores")  # fmt: skip
    report.update(date=time.strftime("%Y-%m-%d"))
    print(json.dumps(report))


if __name__ == "__main__":
    main()
