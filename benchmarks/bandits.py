"""Meta-RL on 2 cores: RL² on Bernoulli bandits and random tabular MDPs beside the classic
baselines, and Harlow's task.

    python benchmarks/bandits.py [--settings 10x5,100x5,100x10] [--mdps 10,25,50,75,100]
                                 [--minutes 10] [--tasks 10000] [--core gru|lstm|snail]
                                 [--batch-size TASKS] [--threads N] [--harlow-minutes 10]
                                 [--set snail_filters=8 ...] [--baselines-only]

For each setting (n pulls x k arms) it trains `genlab train rl2 --core CORE` for `--minutes` and
prints, on `--tasks` test tasks (arm probabilities ~ U[0, 1]), the mean total reward of the
agent (sampling its actions) with a 95% CI, the same for random, epsilon-greedy (0.1), UCB1,
Thompson sampling and the finite-horizon Gittins index on the same tasks and reward draws,
UCB1 and epsilon-greedy tuned on other tasks (as Duan et al. tuned theirs; `tuned` gives the
values chosen), and the agent's fraction of Gittins. For each number of episodes per trial in
`--mdps` (none by default), `genlab train rl2_mdp --episodes N` the same way, scored beside
random play, the posterior-mean planner, posterior sampling (PSRL) and each MDP's optimal policy
on the same trials (Duan et al., section 3.2). Then the Harlow agent's accuracy per trial on new
episodes. One JSON line. `--baselines-only`: the baselines alone, no training.
Bars: RL² within 2% of Gittins at (100, 5) and (100, 10); Harlow trial 2 >= 0.90 (issue 6);
on 500 x 10, SNAIL a higher fraction of Gittins than the GRU at equal training time (issue 40).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from common import parse_set, train_for_minutes
from genlab.data.batches import seeded
from genlab.meta import tabular
from genlab.meta.episodes import Bandits, TabularMDPs
from genlab.meta.rl2 import EVAL_SEED, baseline_rewards
from genlab.tasks.registry import get_model
from genlab.workflow import evaluate


def run(model: str, data: str, options, minutes: float, out: Path, tasks: int,
        threads: int | None = None, **train) -> dict:  # fmt: skip
    result = train_for_minutes(model, data, options, minutes, out, threads, checkpoint_every=500,
                               **train)  # fmt: skip
    m = evaluate(out, tasks=tasks, threads=threads)
    return {"steps": result.step, "train_minutes": round(result.seconds / 60, 1), **m}


def trained(model: str, data: str, args, **options) -> dict:
    """`model` trained with `--core` for `--minutes` into `--out`/MODEL-CORE-NAME, evaluated."""
    entry = get_model(model)
    name = "-".join(f"{v}" for v in options.values())
    batch = {"batch_size": args.batch_size} if args.batch_size else {}
    chosen = {"core": args.core, **parse_set(args.set, entry.options), **options}
    return run(model, data, entry.options(**chosen), args.minutes,
               Path(args.out) / f"{model}-{chosen['core']}-{name}", args.tasks, args.threads,
               **batch)  # fmt: skip


def bandit_row(args, pulls: int, arms: int) -> dict:
    fam = Bandits(arms, pulls)
    if args.baselines_only:
        baselines, tuned = baseline_rewards(fam, fam.sample(args.tasks, seeded(EVAL_SEED, 0)))
        return {**baselines, "tuned": tuned}
    m = trained("rl2", "bandits", args, pulls=pulls, arms=arms)
    return {**agent_columns(m), **m["baselines"], "tuned": m["tuned"],
            "fraction_of_gittins": round(m["fraction_of_gittins"], 4)}  # fmt: skip


def mdp_row(args, episodes: int) -> dict:
    fam = TabularMDPs(episodes=episodes)
    if args.baselines_only:
        batch = fam.sample(args.tasks, seeded(EVAL_SEED, 0))
        return {k: round(tabular.play(k, fam, batch, 0).mean().item(), 3) for k in tabular.PLANNERS}
    m = trained("rl2_mdp", "mdps", args, episodes=episodes)
    return {**agent_columns(m), **m["baselines"],
            "fraction_of_optimal": round(m["fraction_of_optimal"], 4)}  # fmt: skip


def agent_columns(m: dict) -> dict:
    """The trained agent's figures from `trained`'s result."""
    return {"rl2": round(m["reward"], 2), "rl2_ci95": round(m["ci95"], 2),
            "rl2_greedy": round(m["reward_greedy"], 2), "steps": m["steps"],
            "train_minutes": m["train_minutes"]}  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--settings", default="10x5,100x5,100x10", help="PULLSxARMS, comma-separated")
    p.add_argument("--mdps", default="", help="episodes per MDP trial, comma-separated (none)")
    p.add_argument("--minutes", type=float, default=10.0, help="training budget per setting")
    p.add_argument("--tasks", type=int, default=10_000)
    p.add_argument("--harlow-minutes", type=float, default=10.0, help="0 skips Harlow")
    p.add_argument("--core", default="gru", help="the agent's core: gru, lstm or snail")
    p.add_argument("--batch-size", type=int, default=None,
                   help="episodes per training step (default: the model's, 256)")  # fmt: skip
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="an agent option for every run, e.g. snail_filters=8")  # fmt: skip
    p.add_argument("--baselines-only", action="store_true", help="no training: baselines only")
    p.add_argument("--out", default="runs/bench-bandits")
    args = p.parse_args()
    report: dict = {"benchmark": "bandits", "minutes_per_setting": args.minutes,
                    "core": args.core, "batch_size": args.batch_size, "set": args.set}  # fmt: skip
    for setting in filter(None, args.settings.split(",")):
        report[setting] = bandit_row(args, *(int(v) for v in setting.split("x")))
    for episodes in filter(None, args.mdps.split(",")):
        report[f"mdp{episodes}"] = mdp_row(args, int(episodes))
    if args.harlow_minutes > 0 and not args.baselines_only:
        harlow = get_model("harlow")
        m = run("harlow", "harlow", harlow.options(), args.harlow_minutes,
                Path(args.out) / "harlow", min(args.tasks, 10_000), args.threads)  # fmt: skip
        report["harlow"] = {
            "trial2_accuracy": round(m["trial2_accuracy"], 4),
            "ci95": round(m["ci95"], 4),
            "accuracy_by_trial": m["accuracy_by_trial"],
            "steps": m["steps"],
            "train_minutes": m["train_minutes"],
        }
    report.update(threads=args.threads or torch.get_num_threads(), date=time.strftime("%Y-%m-%d"))
    print(json.dumps(report))


if __name__ == "__main__":
    main()
