"""`genlab <verb>`: thin argument parsing over genlab.workflow. User mistakes print one line."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import types
import typing
from pathlib import Path

from genlab.errors import GenlabError
from genlab.models.registry import MODELS, get_model

# On resume, the budget comes from the command line alone; these other training options may be
# changed (else they keep the run's values); the rest must match the saved run.
BUDGET = {"steps", "minutes", "frames"}
RESUMABLE = BUDGET | {"checkpoint_every", "log_every", "threads"}


def _field_type(f: dataclasses.Field) -> type:
    t = f.type if not isinstance(f.type, str) else eval(f.type, vars(typing), {})  # noqa: S307
    args = [a for a in typing.get_args(t) if a is not type(None)]
    if isinstance(t, types.UnionType) or typing.get_origin(t) is typing.Union:
        return args[0]
    return t


def add_options(
    parser: argparse.ArgumentParser, cls: type, title: str, defaults: dict | None = None
) -> None:
    """One `--flag` per dataclass field, default shown in --help but SUPPRESSed in the namespace,
    so the caller can tell what the user actually typed. `defaults` overrides shown defaults."""
    group = parser.add_argument_group(title)
    for f in dataclasses.fields(cls):
        default = f.default if f.default is not dataclasses.MISSING else None
        default = (defaults or {}).get(f.name, default)
        kind = _field_type(f)
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
    from genlab.runs import new_run_dir
    from genlab.train import distributed as dist
    from genlab.train.config import TrainConfig
    from genlab.workflow import init_source, saved_config, train_and_show

    entry = get_model(ns.model)
    if dist.env_world_size() > 1 and not ns.out:
        raise GenlabError("under torchrun, pass --out so every process uses the same run directory")
    run_dir = Path(ns.out) if ns.out else new_run_dir(ns.model, ns.data or entry.datasets[0])
    saved = saved_config(run_dir)
    model_given, train_given = given(ns, entry.options), given(ns, TrainConfig)
    if saved is None:
        init = train_given.get("init_from")
        source = init_source(Path(init), ns.model) if init else {}
        data = ns.data or source.get("data") or entry.datasets[0]
        options = entry.options(**{**source.get("model_options", {}), **model_given})
        cfg = TrainConfig(**{**entry.train_defaults, **train_given})
    else:
        if saved["model"] != ns.model:
            raise GenlabError(f"{run_dir} is a '{saved['model']}' run, not '{ns.model}'")
        data = saved["data"]
        if ns.data and ns.data != data:
            raise GenlabError(f"{run_dir} was trained on '{data}', not '{ns.data}'")
        for k, v in model_given.items():
            if saved["model_options"][k] != v:
                raise GenlabError(
                    f"{run_dir} has {k}={saved['model_options'][k]}; cannot resume with {v}"
                )
        for k, v in train_given.items():
            if k not in RESUMABLE and saved["train"][k] != v:
                raise GenlabError(f"{run_dir} has {k}={saved['train'][k]}; cannot resume with {v}")
        options = entry.options(**saved["model_options"])
        kept = {k: v for k, v in saved["train"].items() if k not in BUDGET}
        cfg = TrainConfig(**{**kept, **train_given})
        if dist.env_world_size() == 1 or os.environ.get("RANK") == "0":
            print(f"resuming {run_dir}", file=sys.stderr)
    if cfg.steps is None and cfg.minutes is None and cfg.frames is None:
        raise GenlabError(
            "give a budget: --steps N (total), --minutes M or, for agents, --frames N"
        )
    from genlab.workflow import check_dataset

    check_dataset(ns.model, data)
    result, written = train_and_show(
        ns.model, data, options, cfg, run_dir, ns.data_dir, ns.nproc, not ns.quiet
    )
    if dist.rank() != 0:
        return 0
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
    from genlab.workflow import evaluate

    result = evaluate(
        Path(ns.run), ns.data_dir, k=ns.k, n=ns.n, seed=ns.seed, samples=ns.samples,
        tasks=ns.tasks, episodes=ns.episodes,
    )  # fmt: skip
    if ns.json:
        print(json.dumps(result))
    else:
        for k, v in result.items():
            print(f"{k:>16}  {v:.4f}" if isinstance(v, float) else f"{k:>16}  {v}")


def cmd_sample(ns: argparse.Namespace) -> None:
    from genlab.workflow import sample

    print(sample(Path(ns.run), ns.n, Path(ns.out), ns.seed, ns.set))


def cmd_latent(ns: argparse.Namespace) -> None:
    from genlab.workflow import latent

    for p in latent(Path(ns.run), ns.data_dir, ns.seed):
        print(p)


def cmd_runs(ns: argparse.Namespace) -> None:
    from genlab.runs import KEY_METRICS, find_runs, summarize

    rows = [summarize(r) for r in find_runs(Path(ns.dir))]
    if not rows:
        print(f"no runs under {ns.dir}")
        return
    cols = ["run", "model", "data", "step", "loss", *KEY_METRICS]
    cols = [c for c in cols if any(c in r for r in rows)]
    fmt = lambda v: f"{v:.2f}" if isinstance(v, float) else ("-" if v is None else str(v))  # noqa: E731
    table = [cols] + [[fmt(r.get(c)) for c in cols] for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(cols))]
    for row in table:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)))


def cmd_data_check(ns: argparse.Namespace) -> None:
    from genlab.data.check import check_all

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
    from genlab.train.config import TrainConfig

    entry = get_model(model) if model else None

    p = argparse.ArgumentParser(
        prog="genlab", description="Train, evaluate, sample and inspect generative models."
    )
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
    t.add_argument("--nproc", type=int, default=1, help="data-parallel processes on this machine")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    add_options(t, TrainConfig, "training", entry.train_defaults if entry else None)
    if entry is not None:
        add_options(t, entry.options, f"{entry.name} options")
    t.set_defaults(fn=cmd_train)

    e = sub.add_parser("eval", help="evaluate a run on the test set", formatter_class=fmt)
    e.add_argument("run", metavar="RUN")
    e.add_argument("--json", action="store_true", help="print one JSON object")
    e.add_argument("--k", type=int, default=1000, help="importance samples per test image")
    e.add_argument("--n", type=int, default=None, help="evaluate only the first N test images")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument(
        "--samples",
        type=int,
        default=10_000,
        help="samples for fid/precision/recall/class_kl (MNIST models that sample; 0 = skip)",
    )
    e.add_argument(
        "--tasks", type=int, default=1000, help="test tasks for few-shot learners (maml, ...)"
    )
    e.add_argument(
        "--episodes", type=int, default=30, help="episodes per environment for agents (impala, ...)"
    )
    e.add_argument("--data-dir")
    e.set_defaults(fn=cmd_eval)

    s = sub.add_parser(
        "sample", help="write a grid of samples as PNG (agents: an episode as GIF)",
        formatter_class=fmt,
    )  # fmt: skip
    s.add_argument("run", metavar="RUN")
    s.add_argument("--n", type=int, default=64)
    s.add_argument("--out", required=True, help="file to write (PNG; GIF for agents)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE",
        help="a sampling option of the run's model, e.g. guidance=2 or sample_seconds=1 "
        "(WaveNet); options that change the network are refused",
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

    from genlab.agents.world_models.cli import add_parser as add_worldmodels

    add_worldmodels(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    model = (
        argv[1] if len(argv) >= 2 and argv[0] == "train" and not argv[1].startswith("-") else None
    )
    try:
        parser = build_parser(model)
    except GenlabError as e:  # an unknown model name
        print(f"genlab: error: {e}", file=sys.stderr)
        return 2
    ns = parser.parse_args(argv)
    try:
        return ns.fn(ns) or 0
    except GenlabError as e:
        print(f"genlab: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("genlab: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
