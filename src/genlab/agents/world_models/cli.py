"""`genlab worldmodels STAGE DIR ...`: the World Models pipeline, one resumable stage at a time.

    DIR/data/carracing/   collect   episodes of a random policy (one npz each)
    DIR/vae/              train-v   genlab's VAE on the frames (a `genlab train vae` run)
    DIR/mdnrnn/           train-m   M on V's latents (a `genlab train mdnrnn` run)
    DIR/controller*/      train-c   C by CMA-ES: controller, controller-dream, controller-vc
                          eval      mean +- std return on unseen tracks, GIFs

train-v and train-m pass any further arguments to `genlab train` (--minutes, --steps, ...).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

# The paper's V: squared error (a gaussian of fixed std 1/sqrt(2)) plus the KL. With genlab's
# learned per-pixel std, V drew every frame as the mean frame after 8.4 minutes (3,594 steps of
# 32) in one run of 2026-11-23 and saw the road after 6 in others (see vision.py). Batch 32, not
# genlab's 128: at equal minutes on 2 cores, 128 still drew the mean frame after 15 minutes.
V_OPTIONS = ["--image-size", "64", "--image-channels", "3", "--likelihood", "gaussian",
             "--gaussian-std", "0.7071", "--latent-dim", "32", "--batch-size", "32"]  # fmt: skip


def controller_dir(root: Path, dream: bool, memory: bool) -> Path:
    return Path(root) / ("controller" + ("-dream" if dream else "") + ("" if memory else "-vc"))


def cmd(ns: argparse.Namespace) -> int:
    from genlab.cli import main

    root = Path(ns.dir)
    data = ["--data", "carracing", "--data-dir", str(root / "data")]
    if ns.stage == "collect":
        from genlab.agents.world_models.rollouts import collect

        report = collect(
            root / "data" / "carracing", ns.episodes, ns.workers, ns.max_steps, ns.seed
        )
        print(json.dumps(report))
        return 0
    if ns.stage == "train-v":
        code = main(["train", "vae", *data, *V_OPTIONS, "--out", str(root / "vae"), *ns.extra])
        if code == 0:
            from genlab.agents.world_models.vision import V_CHECK, check_v_run

            check = check_v_run(root)
            mse = f"mse {check['v_mse']:.5f} vs the mean frame's {check['mean_frame_mse']:.5f}"
            if check["blind"]:
                print(f"warning: V draws held-out frames no better than their mean frame ({mse}):"
                      " it cannot see the road yet; train it longer", file=sys.stderr)  # fmt: skip
            else:
                print(f"  V check:  {mse} on held-out frames ({V_CHECK})", file=sys.stderr)
        return code
    if ns.stage == "train-m":
        return main(["train", "mdnrnn", *data, "--vae", str(root / "vae"),
                     "--out", str(root / "mdnrnn"), *ns.extra])  # fmt: skip
    if ns.stage == "train-c":
        from genlab.agents.world_models.search import SearchConfig, search

        cfg = SearchConfig(
            vae=str(root / "vae"), mdnrnn="" if ns.no_memory else str(root / "mdnrnn"),
            dream=ns.dream, tau=ns.tau, popsize=ns.popsize, rollouts=ns.rollouts,
            generations=ns.generations, minutes=ns.minutes, workers=ns.workers,
            max_steps=ns.max_steps, patience=ns.patience, seed=ns.seed, brake=ns.brake,
        )  # fmt: skip
        out = controller_dir(root, ns.dream, not ns.no_memory)
        print(json.dumps(search(cfg, out, str(root / "data"))))
        print(f"next: genlab worldmodels eval {root} --controller {out.name}")
        return 0
    from genlab.agents.world_models.evaluation import episode_gifs, evaluate_controller

    run = root / ns.controller
    report = evaluate_controller(run, ns.episodes, ns.workers, ns.which, ns.max_steps)
    report["gifs"] = [str(p) for p in episode_gifs(run, ns.which, ns.max_steps)]
    print(json.dumps(report))
    return 0


def add_parser(sub) -> None:
    fmt = argparse.ArgumentDefaultsHelpFormatter
    w = sub.add_parser("worldmodels", help="World Models on CarRacing: collect, train-v, train-m, "
                       "train-c, eval", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    stages = w.add_subparsers(dest="stage", required=True, metavar="STAGE")
    c = stages.add_parser("collect", help="random-policy rollouts", formatter_class=fmt)
    c.add_argument("--episodes", type=int, default=200)
    for name in ("train-v", "train-m"):
        t = stages.add_parser(name, help=f"{'V' if name == 'train-v' else 'M'} via genlab train "
                              "(further arguments go to it)", formatter_class=fmt)  # fmt: skip
        t.add_argument("dir", metavar="DIR")
        t.add_argument("extra", nargs=argparse.REMAINDER, help="e.g. --minutes 20")
        t.set_defaults(fn=cmd)
    s = stages.add_parser("train-c", help="C by CMA-ES, in the real game or the dream",
                          formatter_class=fmt)  # fmt: skip
    s.add_argument("--dream", action="store_true", help="score candidates inside M")
    s.add_argument("--tau", type=float, default=1.15, help="M's temperature in the dream")
    s.add_argument("--no-memory", action="store_true", help="V+C only (the paper's ablation)")
    s.add_argument("--popsize", type=int, default=16)
    s.add_argument("--rollouts", type=int, default=1, help="tracks per candidate")
    s.add_argument("--generations", type=int, default=None)
    s.add_argument("--minutes", type=float, default=None)
    s.add_argument("--patience", type=int, default=100,
                   help="stop a search episode after N steps without reward (0: never)")  # fmt: skip
    s.add_argument("--brake", default="clip", choices=("clip", "shift"),
                   help="C's brake: clip(tanh, 0, 1) as in the paper, or (tanh + 1) / 2")  # fmt: skip
    e = stages.add_parser("eval", help="mean +- std return on unseen tracks, GIFs",
                          formatter_class=fmt)  # fmt: skip
    e.add_argument("--controller", default="controller", help="controller directory in DIR")
    e.add_argument("--which", default="mean", choices=("mean", "best"))
    e.add_argument("--episodes", type=int, default=20)
    for p in (c, s, e):
        p.add_argument("dir", metavar="DIR")
        p.add_argument("--workers", type=int, default=2, help="worker processes")
        p.add_argument("--max-steps", type=int, default=1000)
        if p is not e:
            p.add_argument("--seed", type=int, default=0)
        p.set_defaults(fn=cmd)
