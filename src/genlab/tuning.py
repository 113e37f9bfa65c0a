"""`genlab tune`: search a few hyper-parameters of a genlab training with a black-box searcher
(`genlab.meta.searchers`: the neural optimiser, BoTorch, Optuna or random search), every trial
a normal genlab run.

    OUT/tune.json          the job: model, space, searcher, metric, fixed options
    OUT/trial-007/         a run (`genlab eval OUT/trial-007` works on it), and in it
        proposal.json      the point asked for, written before training starts
        trial.json         its result: the metric, or why it failed

Resumable: a killed job, run again, keeps every finished trial, resumes an unfinished one at its
saved point (the training resumes from its checkpoint) and asks for the rest. A trial that fails
is recorded and the job goes on; a searcher then sees it as the worst value so far.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from genlab import workflow
from genlab.data.files import atomic_write_json, read_json
from genlab.errors import ConfigError
from genlab.meta.neural_bo import Proposer
from genlab.meta.searchers import query_seed, searcher
from genlab.tasks.registry import get_model
from genlab.tasks.runs import load_run
from genlab.train.config import TrainConfig

SCALES = ("linear", "log", "int", "logint")


@dataclass(frozen=True)
class Dimension:
    """One hyper-parameter: a genlab train option between low and high on `scale`."""

    name: str
    low: float
    high: float
    scale: str = "linear"

    def value(self, u: float) -> float | int:
        """u in [0, 1] -> the option's value."""
        u = min(max(u, 0.0), 1.0)
        if self.scale in ("log", "logint"):
            v = math.exp(math.log(self.low) + u * (math.log(self.high) - math.log(self.low)))
        else:
            v = self.low + u * (self.high - self.low)
        return round(v) if self.scale.endswith("int") else v


def parse_space(text: str, model: str) -> list[Dimension]:
    """'lr=1e-4:1e-2:log,beta=0.5:2,latent_dim=2:32:int' -> Dimensions, each an option of
    `genlab train MODEL` (a model option or a training one)."""
    entry, dims = get_model(model), []
    names = {f.name for cls in (entry.options, TrainConfig) for f in dataclasses.fields(cls)}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, bounds = part.partition("=")
        name = name.strip().lstrip("-").replace("-", "_")
        pieces = bounds.split(":")
        if name not in names:
            raise ConfigError(f"--space: '{name}' is not an option of `genlab train {model}`")
        if len(pieces) not in (2, 3) or (len(pieces) == 3 and pieces[2] not in SCALES):
            raise ConfigError(f"--space: '{part}' should read NAME=LOW:HIGH[:{'|'.join(SCALES)}]")
        try:
            low, high = float(pieces[0]), float(pieces[1])
        except ValueError:
            raise ConfigError(f"--space: '{part}' has a bound that is not a number") from None
        scale = pieces[2] if len(pieces) == 3 else "linear"
        if not low < high or ("log" in scale and low <= 0):
            raise ConfigError(f"--space: '{part}' needs LOW < HIGH (and LOW > 0 on a log scale)")
        dims.append(Dimension(name, low, high, scale))
    if not dims:
        raise ConfigError("--space names no option, e.g. --space lr=1e-4:1e-2:log")
    return dims


@dataclass(frozen=True)
class TuneJob:
    model: str
    space: str
    optimizer: str
    trials: int
    metric: str
    maximise: bool = False
    seed: int = 0
    data: str | None = None
    model_options: dict = dataclasses.field(default_factory=dict)  # fixed for every trial
    train_options: dict = dataclasses.field(default_factory=dict)
    neural_bo: str | None = None  # a neural_bo run trained for len(space) dimensions
    evaluation: dict = dataclasses.field(default_factory=dict)  # `genlab eval` options: n, k, ...


def tune(job: TuneJob, out: Path, progress: bool = True) -> dict:
    """Run (or resume) the trials of `job` in `out`; returns the report (also OUT/report.json):
    every trial's point, options and metric, and the best metric found after each trial."""
    dims = parse_space(job.space, job.model)
    model = load_proposer(job.neural_bo) if job.optimizer == "neural_bo" else None
    ask = searcher(job.optimizer, len(dims), model)
    out.mkdir(parents=True, exist_ok=True)
    saved = out / "tune.json"
    if saved.is_file() and read_json(saved) != {**dataclasses.asdict(job), "trials": None}:
        raise ConfigError(f"{out} holds another tuning job (see {saved}); choose a new --out")
    atomic_write_json(saved, {**dataclasses.asdict(job), "trials": None})
    bar = tqdm(range(job.trials), desc=f"tune {job.model} ({job.optimizer})",
               disable=not progress, unit="trial")  # fmt: skip
    records: list[dict] = []
    for i in bar:
        run = out / f"trial-{i:03d}"
        done = run / "trial.json"
        records.append(read_json(done) if done.is_file()
                       else run_trial(job, dims, ask, run, i, records))  # fmt: skip
        best = running_best(records, job.maximise)[-1]
        if best is not None:
            bar.set_postfix({job.metric: f"{best:.4g}"})
    report = summary(out, job)
    atomic_write_json(out / "report.json", report)
    return report


def run_trial(job: TuneJob, dims: list[Dimension], ask, run: Path, i: int,
              earlier: list[dict]) -> dict:  # fmt: skip
    """Train and evaluate trial i at the point asked for given the `earlier` trials' records
    (or at the one saved before a kill); its record, also written to RUN/trial.json."""
    proposal = run / "proposal.json"
    if proposal.is_file():
        x = read_json(proposal)["x"]
    else:
        xs, ys = history(earlier, job.maximise, len(dims))
        x = ask(xs, ys, query_seed(job.seed, i)).tolist()
        run.mkdir(parents=True, exist_ok=True)
        atomic_write_json(proposal, {"x": x})
    params = {d.name: d.value(u) for d, u in zip(dims, x, strict=True)}
    entry = get_model(job.model)
    model_names = {f.name for f in dataclasses.fields(entry.options)}
    record: dict = {"trial": i, "x": x, "params": params}
    try:
        spec = workflow.run_spec(
            job.model, data=job.data, out=run,
            model_options={**job.model_options, **{k: v for k, v in params.items()
                                                   if k in model_names}},
            train_options={**job.train_options, **{k: v for k, v in params.items()
                                                   if k not in model_names}},
        )  # fmt: skip
        result, _ = workflow.train(spec, progress=False, draw=False)
        if result is not None and result.status == "interrupted":
            raise KeyboardInterrupt
        metrics = workflow.evaluate(run, **{"samples": 0, **job.evaluation})
        if job.metric not in metrics:
            numbers = ", ".join(k for k, v in metrics.items() if isinstance(v, float))
            raise ConfigError(f"--metric {job.metric}: `genlab eval` of {job.model} reports "
                              f"{numbers}")  # fmt: skip
        record.update(status="ok", value=float(metrics[job.metric]))
    except ConfigError:
        raise  # the job's own mistake: every trial would fail alike
    except Exception as e:  # noqa: BLE001 -- a failed trial is a result, recorded
        record.update(status="failed", error=f"{type(e).__name__}: {str(e).splitlines()[0]}")
    atomic_write_json(run / "trial.json", record)
    return record


def trials(out: Path) -> list[dict]:
    """The finished trials' records, in order."""
    return [read_json(p) for p in sorted(out.glob("trial-*/trial.json"))]


def history(records: list[dict], maximise: bool, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The searcher's view of trials' records: points (t, d) and values to minimise (t,); a
    failed trial counts as the worst value so far (left out while none has succeeded)."""
    xs, ys, worst = [], [], None
    for record in records:
        if record["status"] == "ok":
            y = -record["value"] if maximise else record["value"]
            worst = y if worst is None else max(worst, y)
        elif worst is None:
            continue
        else:
            y = worst
        xs.append(record["x"])
        ys.append(y)
    return torch.tensor(xs, dtype=torch.float32).view(-1, dim), torch.tensor(ys)


def running_best(records: list[dict], maximise: bool) -> list[float | None]:
    """The best metric after each trial (None until one has succeeded)."""
    best, current = [], None
    for value in (r.get("value") for r in records):
        if value is not None:
            current = value if current is None else (max if maximise else min)(current, value)
        best.append(current)
    return best


def summary(out: Path, job: TuneJob) -> dict:
    done = trials(out)
    best = running_best(done, job.maximise)
    final = best[-1] if best else None
    winner = next((r for r in done if final is not None and r.get("value") == final), None)
    return {"model": job.model, "optimizer": job.optimizer, "metric": job.metric,
            "trials": done, "failed": sum(r["status"] == "failed" for r in done),
            "best": best, "best_trial": winner}  # fmt: skip


def load_proposer(run: str | None) -> Proposer:
    if not run:
        raise ConfigError("--optimizer neural_bo needs --neural-bo RUN (genlab train neural_bo)")
    entry, _, model, _ = load_run(Path(run))
    if entry.name != "neural_bo":
        raise ConfigError(f"--neural-bo {run} is a '{entry.name}' run, not a neural_bo one")
    return model
