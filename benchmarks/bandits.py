"""Meta-RL on 2 cores: RL² on Bernoulli bandits beside the classic baselines, and Harlow's task.

    python benchmarks/bandits.py [--settings 10x5,100x5,100x10] [--minutes 10] [--tasks 10000]
                                 [--core gru|lstm|snail] [--batch-size TASKS] [--threads N]
                                 [--harlow-minutes 10] [--baselines-only]

For each setting (n pulls x k arms) it trains `genlab train rl2 --core CORE` for `--minutes` and
prints, on `--tasks` test tasks (arm probabilities ~ U[0, 1]), the mean total reward of the
agent (sampling its actions) with a 95% CI, the same for random, epsilon-greedy (0.1), UCB1,
Thompson sampling and the finite-horizon Gittins index on the same tasks and reward draws,
UCB1 and epsilon-greedy tuned on other tasks (as Duan et al. tuned theirs; `tuned` gives the
values chosen), and the agent's fraction of Gittins. Then the Harlow agent's accuracy per trial
on new episodes. One JSON line. `--baselines-only`: the baselines alone, no training.
Bars: RL² within 2% of Gittins at (100, 5) and (100, 10); Harlow trial 2 >= 0.90 (issue 6);
on 500 x 10, SNAIL a higher fraction of Gittins than the GRU at equal training time (issue 40).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from common import train_for_minutes
from genlab.data.batches import seeded
from genlab.meta.episodes import Bandits
from genlab.meta.rl2 import EVAL_SEED, baseline_rewards
from genlab.tasks.registry import get_model
from genlab.workflow import evaluate


def run(model: str, data: str, options, minutes: float, out: Path, tasks: int,
        threads: int | None = None, **train) -> dict:  # fmt: skip
    result = train_for_minutes(model, data, options, minutes, out, threads, checkpoint_every=500,
                               **train)  # fmt: skip
    m = evaluate(out, tasks=tasks, threads=threads)
    return {"steps": result.step, "train_minutes": round(result.seconds / 60, 1), **m}


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--settings", default="10x5,100x5,100x10", help="PULLSxARMS, comma-separated")
    p.add_argument("--minutes", type=float, default=10.0, help="training budget per setting")
    p.add_argument("--tasks", type=int, default=10_000)
    p.add_argument("--harlow-minutes", type=float, default=10.0, help="0 skips Harlow")
    p.add_argument("--core", default="gru", help="the agent's core: gru, lstm or snail")
    p.add_argument("--batch-size", type=int, default=None,
                   help="episodes per training step (default: the model's, 256)")  # fmt: skip
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    p.add_argument("--baselines-only", action="store_true", help="no training: baselines only")
    p.add_argument("--out", default="runs/bench-bandits")
    args = p.parse_args()
    report: dict = {"benchmark": "bandits", "minutes_per_setting": args.minutes,
                    "core": args.core, "batch_size": args.batch_size}  # fmt: skip
    rl2 = get_model("rl2")
    batch = {"batch_size": args.batch_size} if args.batch_size else {}
    for setting in args.settings.split(","):
        pulls, arms = (int(v) for v in setting.split("x"))
        if args.baselines_only:
            fam = Bandits(arms, pulls)
            baselines, tuned = baseline_rewards(fam, fam.sample(args.tasks, seeded(EVAL_SEED, 0)))
            report[setting] = {**baselines, "tuned": tuned}
            continue
        m = run("rl2", "bandits", rl2.options(arms=arms, pulls=pulls, core=args.core),
                args.minutes, Path(args.out) / f"rl2-{args.core}-{setting}", args.tasks,
                args.threads, **batch)  # fmt: skip
        report[setting] = {
            "rl2": round(m["reward"], 2),
            "rl2_ci95": round(m["ci95"], 2),
            "rl2_greedy": round(m["reward_greedy"], 2),
            **m["baselines"],
            "tuned": m["tuned"],
            "fraction_of_gittins": round(m["fraction_of_gittins"], 4),
            "steps": m["steps"],
            "train_minutes": m["train_minutes"],
        }
    if args.harlow_minutes > 0 and not args.baselines_only:
        harlow = get_model("harlow")
        m = run("harlow", "harlow", harlow.options(), args.harlow_minutes,
                Path(args.out) / "harlow", min(args.tasks, 10_000))  # fmt: skip
        report["harlow"] = {
            "trial2_accuracy": round(m["trial2_accuracy"], 4),
            "ci95": round(m["ci95"], 4),
            "accuracy_by_trial": m["accuracy_by_trial"],
            "steps": m["steps"],
            "train_minutes": m["train_minutes"],
        }
    report.update(threads=torch.get_num_threads(), date=time.strftime("%Y-%m-%d"))
    print(json.dumps(report))


if __name__ == "__main__":
    main()
