"""`genlab <verb>`: argument parsing and printing over genlab.workflow, nothing more. User
mistakes print one line."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import types
import typing
from pathlib import Path

from genlab import population, tuning, workflow
from genlab.data.check import check_all
from genlab.data.files import to_json
from genlab.errors import ConfigError, GenlabError
from genlab.meta.searchers import SEARCHERS
from genlab.tasks import representation
from genlab.tasks.registry import MODELS, get_model, model_for
from genlab.tasks.world_models import V_CHECK
from genlab.train import distributed as dist
from genlab.train.config import TrainConfig
from genlab.train.runs import KEY_METRICS, find_runs, summarize


class Parser(argparse.ArgumentParser):
    """argparse, with a mistake reported on one line (and where to look) instead of the usage."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def at_least(least: int, most: int | None = None):
    """An argparse type: an integer >= `least` (and <= `most`)."""

    def parse(text: str) -> int:
        value = int(text)
        if value < least or (most is not None and value > most):
            bound = f"between {least} and {most:,}" if most is not None else f">= {least}"
            raise argparse.ArgumentTypeError(f"must be {bound}, got {value}")
        return value

    parse.__name__ = "integer"  # argparse names the type in its messages
    return parse


def positive_float(text: str) -> float:
    value = float(text)
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {text}")
    return value


def flag_type(annotation: object) -> type:
    """The type a flag parses to: `int | None` -> int, `bool` -> bool."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        return args[0]
    return annotation  # type: ignore[return-value]


def add_options(
    parser: argparse.ArgumentParser, cls: type, title: str, defaults: dict | None = None
) -> None:
    """One `--flag` per dataclass field, default shown in --help but SUPPRESSed in the namespace,
    so the caller can tell what the user actually typed. `defaults` overrides shown defaults."""
    group = parser.add_argument_group(title)
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        default = f.default if f.default is not dataclasses.MISSING else None
        default = (defaults or {}).get(f.name, default)
        kind = flag_type(hints[f.name])
        typing_kw = {"action": argparse.BooleanOptionalAction} if kind is bool else {"type": kind}
        group.add_argument(
            "--" + f.name.replace("_", "-"),
            dest=f.name,
            default=argparse.SUPPRESS,
            help=f"{f.metadata.get('help', '')} (default: {default})",
            **typing_kw,
        )


def given(ns: argparse.Namespace, cls: type) -> dict:
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in vars(ns).items() if k in names}


def cmd_train(ns: argparse.Namespace) -> int:
    entry = ns.entry or get_model(ns.model)  # None when options came before MODEL
    spec = workflow.run_spec(
        ns.model, data=ns.data, out=ns.out, data_dir=ns.data_dir, nproc=ns.nproc,
        model_options=given(ns, entry.options), train_options=given(ns, TrainConfig),
    )  # fmt: skip
    if spec.resume and workflow.is_main_process():
        print(f"resuming {spec.run_dir}", file=sys.stderr)
    result, written = workflow.train(spec, progress=not ns.quiet)
    if dist.rank() != 0:
        return 0
    run_dir = spec.run_dir
    if result is not None and result.status == "interrupted":
        print(f"interrupted at step {result.step}; checkpoint saved in {run_dir}.")
        print("Run the same command to resume.")
        return 130  # like any interrupted program, so `train && eval` stops here
    print(f"run: {run_dir}")
    print(f"  metrics:  {run_dir / 'metrics.jsonl'} (TensorBoard: {run_dir / 'tb'})")
    if written:
        print(f"  pictures: {', '.join(p.name for p in written)} in {run_dir / 'pictures'}")
    print(f"  next:     genlab eval {run_dir}")
    return 0


def cmd_eval(ns: argparse.Namespace) -> None:
    result = workflow.evaluate(
        Path(ns.run), ns.data_dir, k=ns.k, n=ns.n, seed=ns.seed, samples=ns.samples,
        tasks=ns.tasks, episodes=ns.episodes, write=False, threads=ns.threads,
    )  # fmt: skip
    if ns.json:
        print(to_json(result), flush=True)
    else:
        for k, v in result.items():
            print(f"{k:>16}  {v:.4f}" if isinstance(v, float) else f"{k:>16}  {v}", flush=True)
    workflow.write_eval(Path(ns.run), result)  # after printing: a failed write loses nothing


def label_list(text: str) -> list[int | None]:
    try:
        return representation.label_counts(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"'{text}': give labels per class as positive integers or 'all', e.g. 1,10,all"
        ) from None


def cmd_probe(ns: argparse.Namespace) -> None:
    result = workflow.probe(
        Path(ns.run), ns.labels, draws=ns.draws, l2=ns.l2, n=ns.n,
        supervised_steps=ns.supervised_steps, data_dir=ns.data_dir, seed=ns.seed,
        threads=ns.threads, overrides=ns.set, supervised_up_to=ns.supervised_up_to, mlp=ns.mlp,
    )  # fmt: skip
    if ns.json:
        print(to_json(result), flush=True)
        return
    for task, table in result["tasks"].items():
        print(f"{task}: test accuracy % (95% interval over {ns.draws} draws), labels per class:")
        keys = table["labels_per_class"]
        print(f"{'':>12}" + "".join(f"{k:>16}" for k in keys))
        for name, row in table["rows"].items():
            cells = [f"{row[k]['accuracy']:.2f}" + (f" ± {row[k]['ci95']:.2f}" if row[k]["ci95"]
                     is not None else "") if k in row else "-" for k in keys]  # fmt: skip
            print(f"{name:>12}" + "".join(f"{c:>16}" for c in cells))
    print(
        f"written: {Path(ns.run) / 'eval.json'}, {Path(ns.run) / 'pictures'}/label_efficiency*.png"
    )


def cmd_sample(ns: argparse.Namespace) -> None:
    written = workflow.sample(Path(ns.run), ns.n, Path(ns.out), ns.seed, ns.set)
    if written.suffix == ".txt":  # a text sample (an NPI's call tree) is shown as well
        print(written.read_text().rstrip())
    print(written)


def sampling_flags(unknown: list[str]) -> list[str] | None:
    """`genlab sample`'s extra flags as --set items: `--task add --input 12,34` sets the model's
    sampling options sample_task and sample_input. None if `unknown` is not such flags."""
    items, i = [], 0
    while i < len(unknown):
        flag, eq, value = unknown[i].partition("=")
        if not flag.startswith("--") or len(flag) < 3:
            return None
        if not eq:
            if i + 1 >= len(unknown) or unknown[i + 1].startswith("--"):
                return None
            value, i = unknown[i + 1], i + 1
        items.append(f"sample_{flag[2:].replace('-', '_')}={value}")
        i += 1
    return items


def cmd_latent(ns: argparse.Namespace) -> None:
    for p in workflow.latent(Path(ns.run), ns.data_dir, ns.seed):
        print(p)


def cmd_runs(ns: argparse.Namespace) -> None:
    rows = [summarize(r) for r in find_runs(Path(ns.dir))]
    if not rows:
        print(f"no runs under {ns.dir}")
        return
    cols = ["run", "model", "data", "step", "loss", *KEY_METRICS, "status"]
    cols = [c for c in cols if any(c in r for r in rows)]  # "status": ok, or what is broken
    fmt = lambda v: f"{v:.2f}" if isinstance(v, float) else ("-" if v is None else str(v))  # noqa: E731
    table = [cols] + [[fmt(r.get(c)) for c in cols] for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(cols))]
    for row in table:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)))


def cmd_data_check(ns: argparse.Namespace) -> None:
    rows = check_all(ns.data_dir, ns.dataset)
    print(f"{'dataset':<10} {'files':>11}  {'checksums':<9}  {'counts':<40}  where")
    for r in rows:
        print(
            f"{r['dataset']:<10} {r['files']:>11}  {r['checksums']:<9}  {r['counts']:<40}  {r['where']}"
        )
    if any(r["checksums"] != "ok" for r in rows):
        raise GenlabError("some datasets are missing or corrupt (see the table)")


def build_parser(model: str | None = None) -> argparse.ArgumentParser:
    """The CLI; with `model` given, `train` also takes that model's options and shows its
    training defaults."""
    entry = get_model(model) if model else None

    p = Parser(prog="genlab", description="Train, evaluate, sample and inspect generative models.")
    sub = p.add_subparsers(dest="verb", required=True, metavar="VERB")
    fmt = argparse.ArgumentDefaultsHelpFormatter

    t = sub.add_parser(
        "train",
        help="train a model (again on the same --out: resume)",
        formatter_class=fmt,
        description="Train MODEL; model options are listed by `genlab train MODEL --help`.",
    )
    t.add_argument("model", metavar="MODEL", help=f"one of: {', '.join(MODELS)}")
    t.add_argument("--data", help="dataset (default: the model's first)")
    t.add_argument("--out", help="run directory (default: runs/MODEL-DATA-TIME)")
    t.add_argument(
        "--data-dir", help="folder holding the datasets (else $GENLAB_DATA, cache, download)"
    )
    t.add_argument(
        "--nproc", type=at_least(1), default=1, help="data-parallel processes on this machine"
    )
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    add_options(t, TrainConfig, "training", entry.train_defaults if entry else None)
    if entry is not None:
        add_options(t, entry.options, f"{entry.name} options")
    t.set_defaults(fn=cmd_train, entry=entry)

    e = sub.add_parser("eval", help="evaluate a run on the test set", formatter_class=fmt)
    e.add_argument("run", metavar="RUN")
    e.add_argument("--json", action="store_true", help="print one JSON object")
    e.add_argument("--k", type=at_least(1), default=1000, help="importance samples per test image")
    e.add_argument(
        "--n", type=at_least(1), default=None, help="evaluate only the first N test images"
    )
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--threads", type=at_least(1), default=None,
                   help="torch CPU threads (default: the cores other processes leave free)")  # fmt: skip
    e.add_argument(
        "--samples",
        type=at_least(0),
        default=10_000,
        help="samples for fid/precision/recall/class_kl (MNIST models that sample; 0 = skip)",
    )
    e.add_argument(
        "--tasks",
        type=at_least(1),
        default=1000,
        help="test tasks for few-shot learners (maml, ...)",
    )
    e.add_argument(
        "--episodes",
        type=at_least(1),
        default=30,
        help="episodes per environment for agents (impala, ...)",
    )
    e.add_argument("--data-dir")
    e.set_defaults(fn=cmd_eval)

    pr = sub.add_parser(
        "probe", formatter_class=fmt,
        help="linear probe of a run's representation from a few labels per class",
        description="Fit a logistic regression on the run's frozen representation (embed()) "
        "with LABELS labels per class, beside raw pixels and the same network untrained; "
        "print the test accuracies; add them to RUN/eval.json and draw "
        "RUN/pictures/label_efficiency.png.",
    )  # fmt: skip
    pr.add_argument("run", metavar="RUN")
    pr.add_argument("--labels", type=label_list, default="1,5,10,100,all",
                    help="labels per class, comma-separated; 'all' = every training label")  # fmt: skip
    pr.add_argument("--draws", type=at_least(1), default=5,
                    help="stratified label draws per count (one for 'all')")  # fmt: skip
    pr.add_argument("--l2", type=float, default=1e-2,
                    help="L2 penalty on the probe's weights (features standardized)")  # fmt: skip
    pr.add_argument("--supervised-steps", type=at_least(0), default=0,
                    help="also train the same network from scratch on the labels alone for "
                    "this many steps (0 = skip)")  # fmt: skip
    pr.add_argument("--supervised-up-to", type=at_least(1), default=100,
                    help="the supervised row for label counts up to this many per class")  # fmt: skip
    pr.add_argument("--mlp", action="store_true",
                    help="also probe the run's features with one hidden layer of 256 ReLUs "
                    "(row run+mlp)")  # fmt: skip
    pr.add_argument("--n", type=at_least(1), default=None, help="only the first N test images")
    pr.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="a weight-free option of the run's model, e.g. probe_regions=1")  # fmt: skip
    pr.add_argument("--seed", type=int, default=0)
    pr.add_argument("--threads", type=at_least(1), default=None)
    pr.add_argument("--json", action="store_true", help="print one JSON object")
    pr.add_argument("--data-dir")
    pr.set_defaults(fn=cmd_probe)

    s = sub.add_parser(
        "sample", help="write a grid of samples as PNG (agents: an episode as GIF)",
        formatter_class=fmt,
    )  # fmt: skip
    s.add_argument("run", metavar="RUN")
    s.add_argument("--n", type=at_least(1, workflow.MAX_SAMPLES), default=64)
    s.add_argument("--out", required=True, help="file to write (PNG; GIF for agents)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE",
        help="a sampling option of the run's model, e.g. guidance=2 or sample_seconds=1 "
        "(WaveNet); options that change the network are refused. A sample_* option is also a "
        "flag of its own: --task add --input 12,345 (NPI) sets sample_task and sample_input",
    )  # fmt: skip
    s.set_defaults(fn=cmd_sample)

    lt = sub.add_parser(
        "latent",
        help="reconstructions, interpolations, latent scatter, attribute vectors",
        formatter_class=fmt,
    )
    lt.add_argument("run", metavar="RUN")
    lt.add_argument("--seed", type=int, default=0)
    lt.add_argument("--data-dir")
    lt.set_defaults(fn=cmd_latent)

    r = sub.add_parser("runs", help="table of runs and their key metrics", formatter_class=fmt)
    r.add_argument("dir", nargs="?", default="runs")
    r.set_defaults(fn=cmd_runs)

    d = sub.add_parser("data", help="dataset tools")
    dsub = d.add_subparsers(dest="data_verb", required=True, metavar="ACTION")
    dc = dsub.add_parser(
        "check", help="verify datasets: files, checksums, counts", formatter_class=fmt
    )
    dc.add_argument("--data-dir")
    dc.add_argument("--dataset", choices=("mnist", "omniglot", "fsdd"), help="only this one")
    dc.set_defaults(fn=cmd_data_check)

    st = sub.add_parser("studio", help="the local web page: train, watch, sample, draw, paint",
                        formatter_class=fmt)  # fmt: skip
    st.add_argument("--runs", default="runs", help="the folder of runs to show and train into")
    st.add_argument("--host", default="127.0.0.1", help="address to bind (others: a warning)")
    st.add_argument("--port", type=int, default=8765)
    st.add_argument("--data-dir")
    st.set_defaults(fn=cmd_studio)

    add_worldmodels(sub)
    add_tune(sub)
    return p


def cmd_studio(ns: argparse.Namespace) -> None:
    try:
        # fastapi and uvicorn come with the optional `studio` extra: imported only here.
        from genlab.studio.server import serve
    except ModuleNotFoundError as e:
        raise ConfigError(f"genlab studio needs {e.name}: pip install -e '.[studio]'") from None
    serve(Path(ns.runs), ns.host, ns.port, ns.data_dir)


def cmd_tune(ns: argparse.Namespace) -> int:
    train_ns = parse(["train", ns.model, *ns.train_args])
    entry = train_ns.entry
    job = tuning.TuneJob(
        model=ns.model, space=ns.space, optimizer=ns.optimizer, trials=ns.trials,
        metric=ns.metric, maximise=ns.maximise, seed=ns.seed, data=train_ns.data,
        model_options=given(train_ns, entry.options), train_options=given(train_ns, TrainConfig),
        neural_bo=ns.neural_bo,
        evaluation={k: v for k, v in (("n", ns.eval_n), ("k", ns.eval_k),
                                      ("samples", ns.eval_samples)) if v is not None},
    )  # fmt: skip
    report = tuning.tune(job, Path(ns.out), progress=not ns.quiet)
    best = report["best_trial"]
    print(f"{len(report['trials'])} trials, {report['failed']} failed, in {ns.out}")
    if best:
        print(f"best {ns.metric} {best['value']:.6g}: trial {best['trial']} {best['params']}")
    return 0


def cmd_tune_pba(ns: argparse.Namespace) -> int:
    fields = {f.name for f in dataclasses.fields(population.PBAConfig)}
    cfg = population.PBAConfig(**{k: v for k, v in vars(ns).items() if k in fields})
    report = population.search(cfg, Path(ns.out), progress=not ns.quiet)
    print(json.dumps(report))
    print(f"schedule: {Path(ns.out) / population.SCHEDULE} (drawn in "
          f"{Path(ns.out) / population.SCHEDULE_PICTURE}); train with it: "
          f"{cfg.retrain_command(Path(ns.out) / population.SCHEDULE)}")  # fmt: skip
    return 0


def pba_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="genlab tune pba", formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="Population-based augmentation: a population of `genlab train wrn` runs on "
        "Ray Tune's PBT scheduler learns an augmentation schedule (the distributed extra). Run "
        "again on the same --out to resume.",
    )  # fmt: skip
    for f in dataclasses.fields(population.PBAConfig):
        p.add_argument(f"--{f.name.replace('_', '-')}", type=type(f.default), default=f.default,
                       help=f.metadata.get("help"))  # fmt: skip
    p.add_argument("--out", required=True, help="the search's directory (again: resume)")
    p.add_argument("--quiet", action="store_true", help="no progress table")
    p.set_defaults(fn=cmd_tune_pba)
    return p


def add_tune(sub) -> None:
    fmt = argparse.ArgumentDefaultsHelpFormatter
    tu = sub.add_parser(
        "tune", help="search hyper-parameters of a training: neural_bo, botorch, optuna, random; "
        "`genlab tune pba`: population-based augmentation on Ray Tune",
        formatter_class=fmt, description="Tune MODEL: each trial is a `genlab train` run in "
        "OUT/trial-NNN, scored by `genlab eval`. Options after -- go to every trial's training, "
        "e.g. -- --steps 300 --threads 1. Run again on the same --out to resume.",
    )  # fmt: skip
    tu.add_argument("model", metavar="MODEL", help=f"one of: {', '.join(MODELS)}")
    tu.add_argument("--space", required=True,
                    help="NAME=LOW:HIGH[:log|int|logint],... e.g. lr=1e-4:1e-2:log,beta=0.5:2")  # fmt: skip
    tu.add_argument("--optimizer", default="botorch", choices=SEARCHERS)
    tu.add_argument("--trials", type=at_least(1), default=10)
    tu.add_argument("--metric", required=True,
                    help="a number `genlab eval` reports, e.g. nll (lower is better)")  # fmt: skip
    tu.add_argument("--maximise", action="store_true", help="higher --metric is better")
    tu.add_argument("--out", required=True, help="the job's directory (again: resume)")
    tu.add_argument("--neural-bo", help="with --optimizer neural_bo: a neural_bo run trained "
                    "with --dim equal to the number of --space options")  # fmt: skip
    tu.add_argument("--eval-n", type=at_least(1), default=None,
                    help="score each trial on the first N test examples (genlab eval --n)")  # fmt: skip
    tu.add_argument("--eval-k", type=at_least(1), default=None,
                    help="importance samples per image (genlab eval --k; default its own)")  # fmt: skip
    tu.add_argument("--eval-samples", type=at_least(0), default=None,
                    help="samples for a fid/precision/recall --metric (genlab eval --samples; "
                    "default 0)")  # fmt: skip
    tu.add_argument("--seed", type=int, default=0)
    tu.add_argument("--quiet", action="store_true", help="no progress bar")
    tu.set_defaults(fn=cmd_tune)


WORLDMODELS_HELP = """World Models on CarRacing, Doom Take Cover or Pong, a resumable stage at a time:

    DIR/data/<game>/      collect   episodes of a random policy (one npz each): --env
                                    gym:CarRacing-v3 (carracing), vizdoom:TakeCover (doom), or
                                    atari:Pong (pong; its V may also be a PixelVAE run linked
                                    as DIR/vae); with --controller, a searched C's episodes
                                    (iterative training: M learns where C goes)
    DIR/vae/              train-v   genlab's VAE on the frames (a `genlab train vae` run; --env)
    DIR/mdnrnn/           train-m   M on V's latents (a `genlab train mdnrnn` run)
    DIR/controller*/      train-c   C by CMA-ES: controller, controller-dream, controller-vc
                          eval      mean +- std return on unseen tracks or games, GIFs

M, C and eval play V's game. train-v and train-m pass any further arguments to `genlab train`
(--minutes, --steps, ...). Doom: `collect --env vizdoom:TakeCover DIR`, then `train-v --env
vizdoom:TakeCover DIR`, then as CarRacing.
"""


def cmd_worldmodels(ns: argparse.Namespace) -> int:
    root = Path(ns.dir)
    if ns.stage == "collect":
        report = workflow.collect(root, env=ns.env, controller=ns.controller,
                                  explore=ns.explore, episodes=ns.episodes, workers=ns.workers,
                                  max_steps=ns.max_steps, seed=ns.seed)  # fmt: skip
        print(json.dumps(report))
        return 0
    if ns.stage in ("train-v", "train-m"):
        env = getattr(ns, "env", "gym:CarRacing-v3")
        argv = ["train", *workflow.worldmodels_train_options(ns.stage, root, env), *ns.extra]
        code = cmd_train(build_parser(argv[1]).parse_args(argv))
        if code == 0 and ns.stage == "train-v":
            check = workflow.check_v(root)
            mse = f"mse {check['v_mse']:.5f} vs the mean frame's {check['mean_frame_mse']:.5f}"
            if check["blind"]:
                print(f"warning: V draws held-out frames no better than their mean frame ({mse}):"
                      " it cannot see the road yet; train it longer", file=sys.stderr)  # fmt: skip
            else:
                print(f"  V check:  {mse} on held-out frames ({V_CHECK})", file=sys.stderr)
        return code
    if ns.stage == "train-c":
        report, out = workflow.search_controller(
            root, dream=ns.dream, memory=not ns.no_memory, tau=ns.tau, popsize=ns.popsize,
            rollouts=ns.rollouts, generations=ns.generations, minutes=ns.minutes,
            workers=ns.workers, max_steps=ns.max_steps, patience=ns.patience, seed=ns.seed,
            brake=ns.brake, backend=ns.backend, address=ns.address,
        )  # fmt: skip
        print(json.dumps(report))
        print(f"next: genlab worldmodels eval {root} --controller {out.name}")
        return 0
    report = workflow.evaluate_controller(root, ns.controller, episodes=ns.episodes,
                                          workers=ns.workers, which=ns.which,
                                          max_steps=ns.max_steps)  # fmt: skip
    print(json.dumps(report))
    return 0


def add_worldmodels(sub) -> None:
    fmt = argparse.ArgumentDefaultsHelpFormatter
    w = sub.add_parser("worldmodels", help="World Models on CarRacing or Doom: collect, train-v, "
                       "train-m, train-c, eval", description=WORLDMODELS_HELP,
                       formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    stages = w.add_subparsers(dest="stage", required=True, metavar="STAGE")
    c = stages.add_parser("collect", help="random-policy rollouts, or a controller's",
                          formatter_class=fmt)  # fmt: skip
    c.add_argument("--episodes", type=at_least(1), default=200,
                   help="episodes 0..N-1 of the folder (those there are kept)")  # fmt: skip
    c.add_argument("--env", default=None,
                   help="gym:CarRacing-v3 (the default) into DIR/data/carracing, "
                   "vizdoom:TakeCover into DIR/data/doom, or atari:Pong into DIR/data/pong "
                   "(binary 64x64 frames with the ball's position; V may also be `genlab train "
                   "pixelvae --data pong --data-dir DIR/data ...`, linked as DIR/vae)")  # fmt: skip
    c.add_argument("--controller", default=None,
                   help="iterative training: a search directory in DIR (e.g. controller-dream) "
                   "plays the missing episodes, in its game, for M to train on again")  # fmt: skip
    c.add_argument("--explore", type=float, default=0.25,
                   help="with --controller: the chance that each stretch of 1-8 steps is played "
                   "by the random policy instead")  # fmt: skip
    for name in ("train-v", "train-m"):
        t = stages.add_parser(name, help=f"{'V' if name == 'train-v' else 'M'} via genlab train "
                              "(further arguments go to it)", formatter_class=fmt)  # fmt: skip
        if name == "train-v":
            t.add_argument("--env", default="gym:CarRacing-v3",
                           help="the game whose frames V learns: gym:CarRacing-v3 or "
                           "vizdoom:TakeCover (before DIR)")  # fmt: skip
        t.add_argument("dir", metavar="DIR")
        t.add_argument("extra", nargs=argparse.REMAINDER, help="e.g. --minutes 20")
        t.set_defaults(fn=cmd_worldmodels)
    s = stages.add_parser("train-c", help="C by CMA-ES, in the real game or the dream",
                          formatter_class=fmt)  # fmt: skip
    s.add_argument("--dream", action="store_true", help="score candidates inside M")
    s.add_argument("--tau", type=positive_float, default=1.15, help="M's temperature in the dream")
    s.add_argument("--no-memory", action="store_true", help="V+C only (the paper's ablation)")
    s.add_argument("--popsize", type=at_least(2), default=16)
    s.add_argument("--rollouts", type=at_least(1), default=1, help="tracks per candidate")
    s.add_argument("--generations", type=at_least(1), default=None)
    s.add_argument("--minutes", type=positive_float, default=None)
    s.add_argument("--patience", type=at_least(0), default=100,
                   help="stop a search episode after N steps without reward (0: never)")  # fmt: skip
    s.add_argument("--brake", default="clip", choices=("clip", "shift"),
                   help="C's brake: clip(tanh, 0, 1) as in the paper, or (tanh + 1) / 2")  # fmt: skip
    s.add_argument("--backend", default="local", choices=("local", "ray"),
                   help="who plays the candidates: local worker processes, or Ray actors on "
                   "any machine of a Ray cluster (the distributed extra)")  # fmt: skip
    s.add_argument("--address", default="",
                   help="with --backend ray: the cluster to join, 'auto' or HOST:PORT of its "
                   "head; empty starts a local one")  # fmt: skip
    e = stages.add_parser("eval", help="mean +- std return on unseen tracks, GIFs",
                          formatter_class=fmt)  # fmt: skip
    e.add_argument("--controller", default="controller", help="controller directory in DIR")
    e.add_argument("--which", default="mean", choices=("mean", "best"))
    e.add_argument("--episodes", type=at_least(1), default=20)
    for p in (c, s, e):
        p.add_argument("dir", metavar="DIR")
        p.add_argument("--workers", type=at_least(1), default=2, help="worker processes")
        p.add_argument("--max-steps", type=at_least(1), default=None,
                       help="cut episodes here (default: the game's limit, CarRacing 1000, "
                       "Doom 2100)")  # fmt: skip
        if p is not e:
            p.add_argument("--seed", type=int, default=0)
        p.set_defaults(fn=cmd_worldmodels)


def flag_value(argv: list[str], flag: str) -> str | None:
    """The value given to `flag` in argv (`--flag V` or `--flag=V`; the last one wins)."""
    value = None
    for i, a in enumerate(argv):
        if a == flag and i + 1 < len(argv):
            value = argv[i + 1]
        elif a.startswith(flag + "="):
            value = a.split("=", 1)[1]
    return value


def parse(argv: list[str]) -> argparse.Namespace:
    """argv -> the namespace of its command (argparse exits on malformed flags); GenlabError
    for an unknown model or unknown arguments (`genlab sample` takes its model's sample_*
    options as flags)."""
    model = (
        argv[1] if len(argv) >= 2 and argv[0] == "train" and not argv[1].startswith("-") else None
    )
    if model is not None:  # `train cpc --data fsdd` is cpc_audio: its options, its entry
        model = model_for(model, flag_value(argv, "--data"))
        argv = [argv[0], model, *argv[2:]]
    if argv[:2] == ["tune", "pba"]:  # population-based augmentation: its own options
        return pba_parser().parse_args(argv[2:])
    train_args: list[str] = []  # `genlab tune ... -- TRAIN OPTIONS`
    if argv[:1] == ["tune"] and "--" in argv:
        argv, train_args = argv[: argv.index("--")], argv[argv.index("--") + 1 :]
    ns, unknown = build_parser(model).parse_known_args(argv)
    if ns.fn is cmd_tune:
        ns.train_args = train_args
    extra = sampling_flags(unknown) if unknown and ns.fn is cmd_sample else None
    if extra is not None:
        ns.set, unknown = [*ns.set, *extra], []
    if unknown:
        where = f"genlab train {model}" if model else f"genlab {argv[0]}"
        raise GenlabError(f"unrecognized arguments: {' '.join(unknown)} (see `{where} --help` "
                          "for the options)")  # fmt: skip
    return ns


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        ns = parse(argv)
        return ns.fn(ns) or 0
    except GenlabError as e:
        print(f"genlab: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("genlab: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
