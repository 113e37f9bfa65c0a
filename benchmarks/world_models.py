"""World Models on CarRacing-v3, end to end on this machine, with the wall-clock of every stage.

    python benchmarks/world_models.py [--dir runs/bench-wm] [--episodes 100] [--v-minutes 20]
                                      [--m-minutes 20] [--c-minutes 100] [--dream-minutes 20]
                                      [--vc-minutes 0] [--eval-episodes 20] [--workers 2]
                                      [--rollouts 1] [--search-steps 1000]

Stages (run the same command again after an interruption, even a kill: finished stages are
skipped, the one cut short resumes from its checkpoint with what is left of its budget, and
DIR/benchmark.json adds up each stage's wall-clock over the runs; a stage's own options, its
minutes or --tau, may change until it begins, so `--vc-minutes 30` after a finished run adds
the ablation):
collect (random policy) -> V (`genlab train vae`, 64x64x3, z 32; the benchmark stops here,
naming the numbers, if V draws held-out frames no better than their mean frame: see
genlab/tasks/world_models.py) -> M (`genlab train mdnrnn`) -> C by CMA-ES in the real
game (V+M+C) -> evaluation over `--eval-episodes` unseen tracks.
Then, beside it: C searched inside the dream (M at --tau) and evaluated in the real game, and
V+C without M (the paper's ablation) if `--vc-minutes` > 0. One JSON line: each stage's minutes,
collection and search speed (environment steps/s), and mean +- std returns.

Bars (issue 9): V+M+C >= 600 over 20 tracks with the real-game pipeline within 3 hours; the
dream-trained controller reported beside it with its tau. Paper: 906 +- 21 (V+M+C), 632 +- 251
(V+C), on 10,000 rollouts and a 64-CPU population.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from common import StageLedger
from genlab.agents.world_models.games import collect
from genlab.agents.world_models.search import SearchConfig
from genlab.cli import main as genlab
from genlab.tasks.world_models import (
    V_CHECK,
    check_v_run,
    controller_dir,
    evaluate_controller_run,
    search_controller,
)


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--dir", default="runs/bench-wm")
    p.add_argument("--episodes", type=int, default=100, help="random-policy rollouts")
    p.add_argument("--v-minutes", type=float, default=20.0)
    p.add_argument("--m-minutes", type=float, default=20.0)
    p.add_argument("--c-minutes", type=float, default=100.0, help="CMA-ES in the real game")
    p.add_argument(
        "--dream-minutes", type=float, default=20.0, help="CMA-ES in the dream (0: skip)"
    )
    p.add_argument("--vc-minutes", type=float, default=0.0, help="V+C without M (0: skip)")
    p.add_argument("--tau", type=float, default=1.15)
    p.add_argument("--popsize", type=int, default=16)
    p.add_argument("--eval-episodes", type=int, default=20)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--max-steps", type=int, default=1000, help="episode cap (smoke runs: less)")
    p.add_argument("--rollouts", type=int, default=1, help="tracks each CMA-ES candidate plays")
    p.add_argument("--search-steps", type=int, default=None,
                   help="episode cap while searching (default --max-steps; evaluation always "
                        "plays --max-steps)")  # fmt: skip
    args = p.parse_args()
    root = Path(args.dir)
    rollouts = root / "data" / "carracing"
    if not (root / "benchmark.json").is_file() and any(rollouts.glob("episode_*.npz")):
        raise SystemExit(f"{rollouts} holds episodes that this benchmark did not time (no "
                         f"{root / 'benchmark.json'}): give a fresh --dir")  # fmt: skip
    searches = ("train-c", "train-c-dream", "train-c-vc")
    later = {"v_minutes": ("train-v",), "m_minutes": ("train-m",), "c_minutes": ("train-c",),
             "dream_minutes": ("train-c-dream",), "tau": ("train-c-dream",),
             "vc_minutes": ("train-c-vc",), "rollouts": searches, "search_steps": searches}  # fmt: skip
    ledger = StageLedger(root / "benchmark.json", vars(args), stage_options=later)
    report: dict = {"benchmark": "world_models", "dir": str(root)}
    report["collect"] = ledger.run("collect", lambda _: collect(
        rollouts, args.episodes, args.workers, args.max_steps, progress=False))  # fmt: skip

    def left(budget: float, spent: float) -> str:  # what a resumed stage still has
        return str(max(budget - spent, budget / 20))

    for key, stage, run, budget in (("v", "train-v", "vae", args.v_minutes),
                                    ("m", "train-m", "mdnrnn", args.m_minutes)):  # fmt: skip

        def fit(spent: float, stage=stage, run=run, budget=budget) -> dict:
            code = genlab(["worldmodels", stage, str(root), "--minutes", left(budget, spent),
                           "--quiet"])  # fmt: skip
            if code != 0:
                raise SystemExit(f"{stage} failed (exit {code})")
            return json.loads((root / run / "metrics.jsonl").read_text().splitlines()[-1])

        report[key] = ledger.run(stage, fit)
        if stage == "train-v":  # a V that draws every frame as the mean frame hides the road
            saved = root / "vae" / V_CHECK  # written by train-v; computed if V predates it
            report["v_check"] = (
                json.loads(saved.read_text()) if saved.is_file() else check_v_run(root)
            )
            if report["v_check"]["blind"]:
                print(json.dumps(report))
                raise SystemExit(f"V ({root / 'vae'}) reconstructs held-out frames no better than "
                                 f"their mean frame ({report['v_check']}): a controller on it "
                                 "cannot see the road. Give a fresh --dir more --v-minutes")  # fmt: skip

    def controller(name: str, minutes: float, dream: bool = False, memory: bool = True) -> dict:
        out = controller_dir(root, dream, memory)

        def run_search(spent: float) -> dict:
            cfg = SearchConfig(vae=str(root / "vae"), dream=dream, tau=args.tau,
                               mdnrnn=str(root / "mdnrnn") if memory else "",
                               popsize=args.popsize, minutes=float(left(minutes, spent)),
                               workers=args.workers, rollouts=args.rollouts,
                               max_steps=args.search_steps or args.max_steps)  # fmt: skip
            return search_controller(cfg, out, str(root / "data"), progress=False)

        last = ledger.run(name, run_search)
        result = ledger.run(f"eval-{name}", lambda _: evaluate_controller_run(
            out, args.eval_episodes, args.workers, max_steps=args.max_steps, progress=False,
            gifs=False))  # fmt: skip
        return {"search": last, **{k: v for k, v in result.items() if k != "returns"}}

    report["v_m_c"] = controller("train-c", args.c_minutes)
    if args.dream_minutes > 0:
        report["dream"] = controller("train-c-dream", args.dream_minutes, dream=True)
    if args.vc_minutes > 0:
        report["v_c"] = controller("train-c-vc", args.vc_minutes, memory=False)
    report["minutes"] = {k: round(v, 1) for k, v in ledger.data["minutes"].items()}
    pipeline = ("collect", "train-v", "train-m", "train-c", "eval-train-c")
    report["pipeline_minutes"] = round(sum(ledger.minutes(s) for s in pipeline), 1)
    report["bar_met"] = report["v_m_c"]["mean_return"] >= 600 and report["pipeline_minutes"] <= 180
    report["date"] = time.strftime("%Y-%m-%d")
    print(json.dumps(report))


if __name__ == "__main__":
    main()
