"""`genlab tune pba`: population-based augmentation (Ho et al. 2019) on Ray Tune's
population-based training scheduler.

A population of `wrn` trainings (genlab runs, on the shared loop) starts with no augmentation,
member k from training seed `seed + k`, as PBT's members start apart (until 2026-12-06 they
shared one seed and were twins until explored).
Every `interval` training steps each member reports its validation accuracy; Ray Tune's PBT
then lets the bottom quarter copy a top quarter member's weights and schedule (exploit) and
perturb its policy with PBA's explore (`genlab.meta.pba.explore`). What the search learns is the
best member's schedule: its policy over training time, including the policies it inherited.

    OUT/pba/               Ray Tune's experiment (resumable: run the same command again;
                           once OUT/search.json is written, that answers without Ray)
      .../run/             each member's genlab run (`genlab eval` works on it)
        schedule.json      the schedule it trained with so far
    OUT/schedule.json      the best member's schedule (`genlab train wrn --augment pba
                           --pba-schedule OUT/schedule.json`)
    OUT/schedule.png       that schedule drawn: each operation's probability and magnitude
    OUT/search.json        the search: population, steps, best validation accuracy, CPU-hours

Ray may not start here except in a private network (`genlab.train.netns`): tests and
benchmarks run this inside one.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from genlab import workflow
from genlab.data.files import atomic_write_json, read_json
from genlab.errors import ConfigError, GenlabError
from genlab.meta import pba
from genlab.models.wide_resnet import WRNConfig
from genlab.tasks.augmentation import CLASSES, read_schedule, schedule_json, schedule_picture
from genlab.train import cluster
from genlab.train.config import doc
from genlab.train.runs import read_config
from genlab.train.state import CHECKPOINT, read_checkpoint

SCHEDULE = "schedule.json"
SCHEDULE_PICTURE = "schedule.png"


@dataclass(frozen=True)
class PBAConfig:
    data: str = doc("what the members learn: 'mnist' (digits) or 'omniglot' (the background "
                    "alphabets' 964 characters, a few drawings of each)", default="mnist")  # fmt: skip
    population: int = doc("members trained side by side (time-shared over the CPUs)",
                          default=8)  # fmt: skip
    interval: int = doc("training steps between exploit-and-explore rounds", default=100)
    rounds: int = doc("rounds: each member trains interval x rounds steps", default=20)
    train_images: int = doc("labelled training images (the wrn option)", default=1000)
    val_images: int = doc("validation images that score the members", default=5000)
    depth: int = doc("the wide ResNet's depth (6n + 4)", default=10)
    widen: int = doc("the wide ResNet's width multiplier", default=2)
    batch_size: int = doc("training batch size", default=64)
    lr: float = doc("learning rate", default=2e-3)
    base_augment: str = doc("'standard': each member's policy runs on top of the shift and "
                            "rotation, as PBA's on top of crop and flip; 'none': alone",
                            default="none")  # fmt: skip
    seed: int = doc("member k's training seed is seed + k (members start apart, as in PBT)",
                    default=0)  # fmt: skip
    cpus_per_member: float = doc("CPUs Ray reserves for each member", default=1.0)
    address: str = doc("a Ray cluster to join, 'auto' or HOST:PORT; empty starts a local one",
                       default="")  # fmt: skip

    def __post_init__(self) -> None:
        if self.data not in CLASSES:
            raise ConfigError(f"--data {self.data!r}: choose from {', '.join(CLASSES)}")
        if self.population < 2:
            raise ConfigError(f"--population must be >= 2 (one member cannot learn from "
                              f"another), got {self.population}")  # fmt: skip
        for name in ("interval", "rounds", "batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be >= 1")
        WRNConfig(**self.wrn_options(Path(SCHEDULE)))  # the members' model, checked before Ray

    def wrn_options(self, schedule: Path) -> dict:
        return {"depth": self.depth, "widen": self.widen, "train_images": self.train_images,
                "val_images": self.val_images, "augment": "pba",
                "pba_schedule": str(schedule), "base_augment": self.base_augment,
                "n_classes": CLASSES[self.data]}  # fmt: skip

    def retrain_command(self, schedule: Path) -> str:
        """The `genlab train wrn` that trains a fresh model with the searched schedule."""
        return (f"genlab train wrn --data {self.data} --n-classes {CLASSES[self.data]} "
                f"--train-images {self.train_images} --val-images {self.val_images} "
                f"--depth {self.depth} --widen "
                f"{self.widen} --augment pba --base-augment {self.base_augment} "
                f"--pba-schedule {schedule}")  # fmt: skip


def explore_policy(config: dict) -> dict:
    """Tune's custom explore: PBA's explore on the copied policy, seeded by the config's
    `explore_seed` (which Tune redraws at every exploit)."""
    rng = np.random.default_rng(int(config["explore_seed"] * 2**31))
    config["policy"] = pba.explore(np.asarray(config["policy"]), rng).tolist()
    return config


def member(config: dict) -> None:
    """One member: train its run `interval` steps at a time with its current policy appended to
    the schedule it holds, report validation accuracy, and checkpoint the run's weights and
    schedule (what an exploiting member copies)."""
    # Here, not at the top: ray is optional (the distributed extra).
    from ray import tune

    cfg = PBAConfig(**config["search"])
    run = Path(tune.get_context().get_trial_dir()) / "run"
    run.mkdir(parents=True, exist_ok=True)
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:  # resumed, or exploiting: take the checkpoint's weights
        with checkpoint.as_directory() as saved:
            for name in (CHECKPOINT, SCHEDULE):
                shutil.copyfile(Path(saved) / name, run / name)
    # The checkpoint is read once; each round then adds its interval.
    step = int(read_checkpoint(run)["step"]) if (run / CHECKPOINT).is_file() else 0
    # The run keeps the seed it began with: an exploit copies the donor's config, its `member`
    # too, but only the donor's weights and schedule come into this run.
    begun = (run / "config.json").is_file()
    seed = read_config(run)["train"]["seed"] if begun else cfg.seed + config["member"]
    while True:
        held = read_schedule(run / SCHEDULE) if (run / SCHEDULE).is_file() else []
        schedule = [(s, p) for s, p in held if s < step] + [(step, np.asarray(config["policy"]))]
        atomic_write_json(run / SCHEDULE, schedule_json(schedule))
        spec = workflow.run_spec(
            "wrn", data=cfg.data, out=run, model_options=cfg.wrn_options(run / SCHEDULE),
            train_options={"steps": step + cfg.interval, "batch_size": cfg.batch_size,
                           "lr": cfg.lr, "seed": seed, "threads": 1,
                           "checkpoint_every": cfg.interval},
        )  # fmt: skip
        workflow.train(spec, progress=False, draw=False)
        scores = workflow.evaluate(run, n=cfg.val_images, write=False, threads=1)
        with tempfile.TemporaryDirectory() as keep:
            for name in (CHECKPOINT, SCHEDULE):
                shutil.copyfile(run / name, Path(keep) / name)
            step += cfg.interval
            tune.report({"val_accuracy": scores["val_accuracy"], "step": step},
                        checkpoint=tune.Checkpoint.from_directory(keep))  # fmt: skip


def search(cfg: PBAConfig, out: Path, progress: bool = True) -> dict:
    """Run (or resume) the population search into `out`; returns the search's summary (a
    finished search's at once, without Ray)."""
    out = Path(out).resolve()
    job = out / "pba.json"
    if job.is_file() and read_json(job, ConfigError) != asdict(cfg):
        raise ConfigError(f"{out} holds a PBA search with other settings ({job}); search into a "
                          "fresh directory")  # fmt: skip
    if job.is_file() and (out / "search.json").is_file():  # written last: the search finished
        return read_json(out / "search.json", GenlabError)
    cluster.ray_module()  # without Ray: one line saying how to install it
    # Here, not at the top: Ray Tune is optional (the distributed extra) and slow to import.
    from ray import tune
    from ray.tune.schedulers import PopulationBasedTraining  # optional too, as above

    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(job, asdict(cfg))
    leave = cluster.connect(cfg.address)
    try:
        scheduler = PopulationBasedTraining(
            time_attr="training_iteration", metric="val_accuracy", mode="max",
            perturbation_interval=1, quantile_fraction=0.25, resample_probability=1.0,
            hyperparam_mutations={"explore_seed": tune.uniform(0, 1)},
            custom_explore_fn=explore_policy, synch=True,
        )  # fmt: skip
        trainable = tune.with_resources(member, {"cpu": cfg.cpus_per_member})
        experiment = out / "pba"
        if tune.Tuner.can_restore(str(experiment)):
            tuner = tune.Tuner.restore(str(experiment), trainable, resume_unfinished=True)
        else:
            tuner = tune.Tuner(
                trainable,
                param_space={"policy": pba.empty_policy().tolist(), "search": asdict(cfg),
                             "explore_seed": tune.uniform(0, 1),
                             "member": tune.grid_search(list(range(cfg.population)))},
                tune_config=tune.TuneConfig(scheduler=scheduler, num_samples=1,
                                            reuse_actors=False),
                run_config=tune.RunConfig(name="pba", storage_path=str(out),
                                          stop={"training_iteration": cfg.rounds},
                                          verbose=1 if progress else 0),
            )  # fmt: skip
        results = tuner.fit()
    finally:
        leave()
    return summarise(cfg, results, out)


def summarise(cfg: PBAConfig, results, out: Path) -> dict:
    """The best member's schedule into OUT/schedule.json, and OUT/search.json."""
    scored = [r for r in results if r.error is None and "val_accuracy" in (r.metrics or {})]
    if not scored:
        errors = [str(r.error).strip().splitlines()[-1] for r in results if r.error is not None]
        raise GenlabError(f"no member of the population finished a round"
                          f"{': ' + errors[0] if errors else ''}")  # fmt: skip
    best = results.get_best_result(metric="val_accuracy", mode="max", scope="last")
    with best.checkpoint.as_directory() as saved:
        schedule = json.loads((Path(saved) / SCHEDULE).read_text())
    atomic_write_json(out / SCHEDULE, schedule)
    schedule_picture(read_schedule(out / SCHEDULE), cfg.interval * cfg.rounds,
                     out / SCHEDULE_PICTURE)  # fmt: skip
    seconds = sum(float(r.metrics.get("time_total_s", 0.0)) for r in results)
    summary = {"population": cfg.population, "steps": cfg.interval * cfg.rounds,
               "best_val_accuracy": float(best.metrics["val_accuracy"]),
               "changes": len(schedule["schedule"]),
               "cpu_hours": round(seconds * cfg.cpus_per_member / 3600, 3),
               "failed_members": sum(r.error is not None for r in results)}  # fmt: skip
    atomic_write_json(out / "search.json", summary)
    return summary
