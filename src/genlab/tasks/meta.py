"""Few-shot learners (MAML, FOMAML, Reptile, SNAIL) on Omniglot as an application: their data,
their registry entries, and a trained learner as a live classifier of new drawings."""

from __future__ import annotations

from pathlib import Path

from genlab.errors import ConfigError
from genlab.meta import learners as meta
from genlab.meta.live import FewShotClassifier
from genlab.meta.snail import SNAIL, SNAILConfig, evaluate_snail
from genlab.meta.tasks import FewShotData, TaskSampler, fewshot_data
from genlab.tasks import training
from genlab.tasks.entry import ModelEntry, default_step
from genlab.train.loop import make_state
from genlab.train.runs import read_config


def load_data(data: str, data_dir: str | None, options) -> FewShotData:
    if data != "omniglot":
        raise ConfigError(f"few-shot learning runs on omniglot, not '{data}'")
    return fewshot_data(options.split, data_dir=data_dir)


def train_batches(options, data: FewShotData, batch_size: int, seed: int, **_):
    """`--batch-size` is the number of tasks per meta-batch."""
    return TaskSampler(data.train, options.ways, options.shots, options.queries, batch_size, seed)


def few_shot_classifier(run_dir: str | Path, steps: int | None = None) -> FewShotClassifier:
    """The learner of run `run_dir` as a classifier that adapts to drawings given at run time."""
    name = read_config(Path(run_dir))["model"]
    if name not in ENTRY:
        raise ConfigError(f"{run_dir} is a '{name}' run, not a few-shot learner")
    return FewShotClassifier(training.load(ENTRY[name], Path(run_dir))[1], steps)


_MAML = {"lr": 1e-3, "batch_size": 32}  # Adam; --batch-size counts tasks
ENTRIES = tuple(
    ModelEntry(
        name=name, summary=summary, options=options, build=meta.MetaLearner,
        datasets=("omniglot",), load_data=load_data, batches=train_batches,
        evaluate=meta.evaluate_fewshot, make_state=state, make_step=default_step,
        train_defaults={"log_every": 100, **defaults}, pictures=meta.task_pictures,
    )
    for name, options, summary, state, defaults in (
        ("maml", meta.MetaConfig, "MAML (second order) few-shot learner", make_state, _MAML),
        ("fomaml", meta.FOMAMLConfig, "first-order MAML few-shot learner", make_state, _MAML),
        ("reptile", meta.ReptileConfig, "Reptile few-shot learner", meta.make_reptile_state,
         {"lr": 1.0, "batch_size": 5}),  # outer SGD step 1.0, 5 tasks (Nichol et al.)
    )
) + (
    ModelEntry(
        name="snail", summary="SNAIL few-shot learner (temporal convolutions and causal "
        "attention over the labelled drawings)", options=SNAILConfig, build=SNAIL,
        datasets=("omniglot",), load_data=load_data, batches=train_batches,
        evaluate=evaluate_snail, train_defaults={"log_every": 100, "lr": 1e-3, "batch_size": 32},
        pictures=meta.task_pictures,
    ),
)  # fmt: skip
ENTRY = {e.name: e for e in ENTRIES}
