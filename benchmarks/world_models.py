"""World Models on CarRacing-v3 or Doom Take Cover, end to end on this machine, with the
wall-clock of every stage.

    python benchmarks/world_models.py [--env gym:CarRacing-v3] [--dir runs/bench-wm]
                                      [--episodes 100] [--v-minutes 20] [--m-minutes 20]
                                      [--c-minutes 100] [--dream-minutes 20] [--taus 1.15]
                                      [--vc-minutes 0] [--eval-episodes 20] [--workers 2]
                                      [--rollouts 1] [--search-steps 1000]
                                      [--v-options '--schedule cosine --steps 12000'] [--m-options ...]
                                      [--iterations 0] [--iter-episodes 200] [--explore 0.25]
                                      [--iter-m-minutes 10]
    python benchmarks/world_models.py --env vizdoom:TakeCover --dir runs/bench-doom ...

Stages (run the same command again after an interruption, even a kill: finished stages are
skipped, the one cut short resumes from its checkpoint with what is left of its budget, and
DIR/benchmark.json adds up each stage's wall-clock over the runs; a stage's own options, its
minutes or --tau, may change until it begins, so `--vc-minutes 30` after a finished run adds
the ablation):
collect (random policy) -> V (`genlab train vae`, 64x64x3, z 32; the benchmark stops here,
naming the numbers, if V draws held-out frames no better than their mean frame: see
genlab/tasks/world_models.py) -> M (`genlab train mdnrnn`; on Doom, the deaths it expects
on held-out episodes beside those that happened: `m_check`) -> C by CMA-ES in the real
game (V+M+C) -> evaluation over `--eval-episodes` unseen tracks.
Then, beside it: C searched inside the dream (M at --tau) and evaluated in the real game, and
V+C without M (the paper's ablation) if `--vc-minutes` > 0. One JSON line: each stage's minutes,
collection and search speed (environment steps/s), and mean +- std returns.

Bars (issue 9): V+M+C >= 600 over 20 tracks with the real-game pipeline within 3 hours; the
dream-trained controller reported beside it with its tau. Paper: 906 +- 21 (V+M+C), 632 +- 251
(V+C), on 10,000 rollouts and a 64-CPU population.

Iterative training (`--iterations K`, the paper's section 5; after the dream search): round k
works in DIR/iterk with the last round's episodes and V (hard links); the last dream controller
plays --iter-episodes more real games (random stretches with probability --explore), M trains
--iter-m-minutes more from the last M on all of them, and C is searched anew in that M's dream
and evaluated. C still never learns from the game; on Doom the last round's controller is the
one the bar scores, and the rounds count towards the pipeline's 3 hours.

Doom (issue 36 A): C is searched only in the dream (--c-minutes defaults to 0 there), once per
tau in --taus (the first into DIR/controller-dream, the others into controller-dream-tau{T}),
each evaluated over --eval-episodes (default 100) real games, beside its score in as many
dreams; plus a uniformly random policy (the paper's ~210). Bar: the first tau's controller
>= 750 time steps over 100 real games with collect, V, M, its search and evaluation within 3
hours. Paper (Ha & Schmidhuber 2018, table 2): tau 0.10: 193, 0.50: 196, 1.00: 868, 1.15:
1092 +- 556, 1.30: 753 (10,000 rollouts, population 64, 16 dreams per candidate).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import time
from pathlib import Path

import numpy as np

from common import StageLedger
from genlab import workflow
from genlab.agents.world_models.evaluation import baseline_returns
from genlab.agents.world_models.games import collect, game
from genlab.agents.world_models.search import SearchConfig
from genlab.cli import main as genlab
from genlab.data.episodes import episode_files
from genlab.tasks.world_models import (
    V_CHECK,
    check_v_run,
    collect_with_controller,
    controller_dir,
    evaluate_controller_run,
    search_controller,
)

# one round of iterative training, each stage DIR/iterK's (its evaluation is eval-iterK-...)
ITERATION_STAGES = ("collect", "train-m", "check-m", "train-c-dream")


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--env", default="gym:CarRacing-v3", help="or vizdoom:TakeCover")
    p.add_argument("--dir", default="runs/bench-wm")
    p.add_argument("--episodes", type=int, default=100, help="random-policy rollouts")
    p.add_argument("--v-minutes", type=float, default=20.0)
    p.add_argument("--m-minutes", type=float, default=20.0)
    p.add_argument("--c-minutes", type=float, default=None,
                   help="CMA-ES in the real game (default: CarRacing 100, Doom 0: skip)")  # fmt: skip
    p.add_argument(
        "--dream-minutes", type=float, default=20.0, help="CMA-ES in the dream (0: skip)"
    )
    p.add_argument("--vc-minutes", type=float, default=0.0, help="V+C without M (0: skip)")
    p.add_argument("--taus", default="1.15", help="M's temperatures for the dream searches")
    p.add_argument("--popsize", type=int, default=16)
    p.add_argument("--eval-episodes", type=int, default=None,
                   help="real episodes per evaluation (default: CarRacing 20, Doom 100)")  # fmt: skip
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--v-options", default="",
                   help="more options of V's training, e.g. '--schedule cosine --steps 9000'")  # fmt: skip
    p.add_argument("--m-options", default="", help="more options of M's training, as --v-options")
    p.add_argument("--threads", type=int, default=None,
                   help="torch threads of V's and M's training (default: genlab's)")  # fmt: skip
    p.add_argument("--max-steps", type=int, default=None,
                   help="episode cap (default: the game's, 1000 or 2100; smoke runs: less)")  # fmt: skip
    p.add_argument("--rollouts", type=int, default=1, help="tracks each CMA-ES candidate plays")
    p.add_argument("--search-steps", type=int, default=None,
                   help="episode cap while searching (default --max-steps; evaluation always "
                        "plays --max-steps)")  # fmt: skip
    p.add_argument("--iterations", type=int, default=0,
                   help="iterative training after the dream search (0: none): each round, in "
                   "DIR/iterK, the last dream controller plays --iter-episodes more episodes, "
                   "M trains on with them, and C is searched anew in its dream")  # fmt: skip
    p.add_argument("--iter-episodes", type=int, default=200, help="a round's new episodes")
    p.add_argument("--explore", type=float, default=0.25,
                   help="a round's episodes: the chance of a random stretch of 1-8 steps")  # fmt: skip
    p.add_argument("--iter-m-minutes", type=float, default=10.0, help="M's training per round")
    args = p.parse_args()
    world = game(args.env)
    doom = world.folder == "doom"
    args.c_minutes = (0.0 if doom else 100.0) if args.c_minutes is None else args.c_minutes
    args.eval_episodes = args.eval_episodes or (100 if doom else 20)
    args.max_steps = args.max_steps or world.max_steps
    taus = [float(t) for t in args.taus.split(",")]
    if args.iterations and args.dream_minutes <= 0:
        raise SystemExit("--iterations continues the dream search: give --dream-minutes > 0")
    root = Path(args.dir)
    rollouts = root / "data" / world.folder
    if not (root / "benchmark.json").is_file() and any(rollouts.glob("episode_*.npz")):
        raise SystemExit(f"{rollouts} holds episodes that this benchmark did not time (no "
                         f"{root / 'benchmark.json'}): give a fresh --dir")  # fmt: skip
    dreams = ["train-c-dream"] + [f"train-c-dream-tau{t}" for t in taus[1:]]
    rounds = tuple(f"iter{k}-{stage}" for k in range(1, args.iterations + 1)
                   for stage in ITERATION_STAGES)  # fmt: skip
    searches = ("train-c", *dreams, "train-c-vc")
    later = {"v_minutes": ("train-v",), "m_minutes": ("train-m",), "c_minutes": ("train-c",),
             "v_options": ("train-v",), "m_options": ("train-m", *rounds),
             "dream_minutes": (*dreams, *rounds), "taus": (*dreams, *rounds),
             "vc_minutes": ("train-c-vc",), "rollouts": (*searches, *rounds),
             "search_steps": (*searches, *rounds),
             "eval_episodes": (*(f"eval-{s}" for s in searches), *(f"eval-{s}" for s in rounds)),
             **{k: rounds for k in ("iterations", "iter_episodes", "explore",
                                    "iter_m_minutes")}}  # fmt: skip
    ledger = StageLedger(root / "benchmark.json", vars(args), stage_options=later)
    report: dict = {"benchmark": "world_models", "dir": str(root)}
    report["collect"] = ledger.run("collect", lambda _: collect(
        rollouts, args.episodes, args.workers, args.max_steps, progress=False, env=args.env))  # fmt: skip
    if doom:
        report["random"] = ledger.run("random", lambda _: random_doom(args.eval_episodes))

    def left(budget: float, spent: float) -> str:  # what a resumed stage still has
        return str(max(budget - spent, budget / 20))

    def fit(stage: str, where: Path, budget: float, more: list[str]):
        def go(spent: float) -> dict:
            env = ["--env", args.env] if stage == "train-v" else []
            threads = ["--threads", str(args.threads)] if args.threads else []
            code = genlab(["worldmodels", stage, *env, str(where), "--minutes",
                           left(budget, spent), "--quiet", *threads, *more])  # fmt: skip
            if code != 0:
                raise SystemExit(f"{stage} failed (exit {code})")
            run = "vae" if stage == "train-v" else "mdnrnn"
            return json.loads((where / run / "metrics.jsonl").read_text().splitlines()[-1])

        return go

    for key, stage, budget, more in (
        ("v", "train-v", args.v_minutes, args.v_options),
        ("m", "train-m", args.m_minutes, args.m_options),
    ):
        report[key] = ledger.run(stage, fit(stage, root, budget, shlex.split(more)))
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

    def check_m(stage: str, where: Path) -> dict:
        """Its dreams die as often as the game only if M expects the deaths that happened."""
        return ledger.run(stage, lambda _: {
            k: v for k, v in workflow.evaluate(where / "mdnrnn", str(where / "data"), write=False,
                                               threads=args.threads).items()
            if k in ("episodes", "deaths", "deaths_expected")})  # fmt: skip

    if doom:
        report["m_check"] = check_m("check-m", root)

    def controller(
        name: str, minutes: float, dream: bool = False, memory: bool = True, tau: float = 1.15,
        where: Path = root, suffix: str = "",
    ) -> dict:  # fmt: skip
        out = controller_dir(where, dream, memory)
        out = out.with_name(out.name + suffix)

        def run_search(spent: float) -> dict:
            cfg = SearchConfig(vae=str(where / "vae"), dream=dream, tau=tau,
                               mdnrnn=str(where / "mdnrnn") if memory else "",
                               popsize=args.popsize, minutes=float(left(minutes, spent)),
                               workers=args.workers, rollouts=args.rollouts, game=world.folder,
                               max_steps=args.search_steps or args.max_steps)  # fmt: skip
            return search_controller(cfg, out, str(where / "data"), progress=False)

        last = ledger.run(name, run_search)
        result = ledger.run(f"eval-{name}", lambda _: evaluate_controller_run(
            out, args.eval_episodes, args.workers, max_steps=args.max_steps, progress=False,
            gifs=name.endswith(("train-c", "train-c-dream")),
            data_dir=str(where / "data")))  # fmt: skip
        return {"search": last, "tau": tau, **{k: v for k, v in result.items() if k != "returns"}}

    if args.c_minutes > 0:
        report["v_m_c"] = controller("train-c", args.c_minutes)
    if args.dream_minutes > 0:
        report["dream"] = controller("train-c-dream", args.dream_minutes, dream=True, tau=taus[0])
        for stage, tau in zip(dreams[1:], taus[1:], strict=True):
            report[f"dream_tau{tau}"] = controller(stage, args.dream_minutes, True, tau=tau,
                                                   suffix=f"-tau{tau}")  # fmt: skip
    if args.vc_minutes > 0:
        report["v_c"] = controller("train-c-vc", args.vc_minutes, memory=False)

    def one_round(k: int, last: Path, here: Path) -> dict:
        """Iterative training (the paper's section 5), round k in `here`: `last`'s dream
        controller plays more episodes, M trains on from `last`'s, C is searched anew."""
        link_pipeline(last, here, world.folder)
        total = len(episode_files(last / "data" / world.folder)) + args.iter_episodes
        got = {"collect": ledger.run(f"iter{k}-collect", lambda _: collect_with_controller(
            last / "controller-dream", here / "data", total, args.workers,
            args.explore, args.max_steps, progress=False))}  # fmt: skip
        more = ["--init-from", str(last / "mdnrnn"), *shlex.split(args.m_options)]
        got["m"] = ledger.run(f"iter{k}-train-m", fit("train-m", here, args.iter_m_minutes, more))
        if doom:
            got["m_check"] = check_m(f"iter{k}-check-m", here)
        got["dream"] = controller(f"iter{k}-train-c-dream", args.dream_minutes, dream=True,
                                  tau=taus[0], where=here)  # fmt: skip
        return got

    for k in range(1, args.iterations + 1):
        report[f"iter{k}"] = one_round(k, root / f"iter{k - 1}" if k > 1 else root,
                                       root / f"iter{k}")  # fmt: skip
    report["minutes"] = {k: round(v, 1) for k, v in ledger.data["minutes"].items()}
    c, bar = ("train-c-dream", 750) if doom else ("train-c", 600)
    pipeline = ["collect", "train-v", "train-m", c, f"eval-{c}"]
    if doom and args.iterations:  # the last round's controller is the one scored
        pipeline += [s for s in rounds if not s.endswith("check-m")]
        pipeline += [f"eval-iter{k}-train-c-dream" for k in range(1, args.iterations + 1)]
    report["pipeline_minutes"] = round(sum(ledger.minutes(s) for s in pipeline), 1)
    scored = report.get(f"iter{args.iterations}", {}).get("dream") if doom and (
        args.iterations) else report.get("dream" if doom else "v_m_c")  # fmt: skip
    report["bar_met"] = bool(scored) and scored["mean_return"] >= bar and (
        report["pipeline_minutes"] <= 180)  # fmt: skip
    report["date"] = time.strftime("%Y-%m-%d")
    print(json.dumps(report))


def link_pipeline(last: Path, here: Path, folder: str) -> None:
    """A round's directory: last round's episodes and V, hard-linked (V does not train again;
    its encodings of the new episodes are cached beside the old in here/vae)."""
    data = here / "data" / folder
    data.mkdir(parents=True, exist_ok=True)
    for f in episode_files(last / "data" / folder):
        if not (data / f.name).exists():
            os.link(f, data / f.name)
    if not (here / "vae").exists():
        shutil.copytree(last / "vae", here / "vae", copy_function=os.link)


def random_doom(episodes: int) -> dict:
    """The paper's random policy on Take Cover: a uniformly drawn move every step, over the
    evaluation's games (the controllers' unseen seeds). Doom pays 1 a step: the return is the
    time survived."""
    from genlab.agents.world_models.games import DOOM

    def policy_for(i: int):
        rng = np.random.default_rng(i)
        return lambda frame: rng.integers(-1, 2, 1)

    report = baseline_returns(DOOM, episodes, DOOM.max_steps, policy_for)
    return {k: report[k] for k in ("mean_return", "std_return", "episodes")}


if __name__ == "__main__":
    main()
