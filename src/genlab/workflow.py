"""Library entry points behind the CLI verbs: train, evaluate, sample, latent pictures.

Each takes plain values (so `--nproc` can send them to worker processes) and returns results;
the CLI only parses arguments and prints.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from pathlib import Path

import torch

from genlab import __version__
from genlab.errors import ConfigError, GenlabError, RunError
from genlab.interfaces import LatentModel, NoiseGenerator
from genlab.metrics.features import feature_net, sample_quality
from genlab.models import image_tasks
from genlab.models.registry import MODELS, get_model
from genlab.runs import checkpoint_weights, load_run, read_config, write_config
from genlab.train import distributed as dist
from genlab.train.config import TrainConfig
from genlab.train.loop import FitResult, fit, laid_out_for
from genlab.train.state import CHECKPOINT, read_checkpoint


def resolved_config(model: str, data: str, options: object, train: TrainConfig, nproc: int) -> dict:
    return {
        "model": model,
        "data": data,
        "model_options": dataclasses.asdict(options),
        "train": dataclasses.asdict(train),
        "nproc": nproc,
        "genlab_version": __version__,
    }


def check_dataset(model: str, data: str) -> None:
    entry = get_model(model)
    if data not in entry.datasets:
        raise GenlabError(
            f"model '{model}' trains on {', '.join(entry.datasets)}, not '{data}' (use --data)"
        )


def check_precision(model: str, precision: str) -> None:
    if precision != "fp32" and not get_model(model).bf16:
        offered = ", ".join(name for name, entry in MODELS.items() if entry.bf16)
        raise ConfigError(f"--precision {precision} is not offered for '{model}' (only: {offered})")


def train(
    model: str,
    data: str,
    options: object,
    cfg: TrainConfig,
    run_dir: Path,
    data_dir: str | None = None,
    nproc: int = 1,
    progress: bool = True,
) -> FitResult:
    """Train (or resume) a run; in distributed workers this runs once per rank.

    Uses `cfg.threads` torch threads (default: cores / processes) while training, and restores
    the caller's setting afterwards.
    """
    dist.init_from_env()  # a no-op alone; joins the group under torchrun or --nproc
    check_dataset(model, data)
    check_precision(model, cfg.precision)
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(cfg.threads or max(1, (os.cpu_count() or 1) // dist.world_size()))
    try:
        return _train(get_model(model), data, options, cfg, run_dir, data_dir, nproc, progress)
    finally:
        torch.set_num_threads(previous_threads)


def _train(entry, data, options, cfg, run_dir, data_dir, nproc, progress) -> FitResult:
    model = entry.name
    dataset = entry.load_data(data, data_dir, options)
    torch.manual_seed(cfg.seed)
    net = entry.build(options)
    net = laid_out_for(net, cfg.precision)
    if cfg.init_from and not (run_dir / CHECKPOINT).is_file():  # a resumed run has its own
        init_weights(net, model, options, Path(cfg.init_from))  # refused: no run dir is left
    if dist.rank() == 0:
        write_config(run_dir, resolved_config(model, data, options, cfg, nproc))
    torch.manual_seed(cfg.seed + 7919 * dist.rank())  # each rank draws its own noise
    if cfg.batch_size % dist.world_size():
        raise GenlabError(
            f"--batch-size {cfg.batch_size} does not split over {dist.world_size()} processes"
        )
    cfg = frames_to_steps(entry, options, cfg)
    state = entry.make_state(net, cfg)
    hook = image_tasks.progress_grid if entry.can_sample else None
    batches = entry.batches(options, dataset, cfg.batch_size, cfg.seed, model=net)
    try:
        return fit(state, batches, cfg, run_dir, entry.make_step(cfg), progress, hook)
    finally:
        if hasattr(batches, "close"):
            batches.close()  # e.g. stop an agent's actor processes


def init_source(source: Path, model: str) -> dict:
    """The config of run `source`, checked to be a `model` run (for `--init-from`)."""
    config = read_config(source)
    if config["model"] != model:
        raise GenlabError(f"--init-from {source} is a '{config['model']}' run, not '{model}'")
    return config


def init_weights(net: torch.nn.Module, model: str, options: object, source: Path) -> None:
    """Load the weights of run `source` (EMA if kept) into `net`, a fresh `model` with `options`.

    Options that leave the weights' shapes alone (a crop length, a KL schedule) may differ from
    the source's. Options that add tensors (an input the source had not, e.g. WaveNet's
    position input) keep those tensors' fresh initialisation, and stderr names them. GenlabError
    when `source` is another model, or has tensors this model lacks or shapes differently,
    naming the options that differ.
    """
    config = init_source(source, model)
    try:
        result = net.load_state_dict(checkpoint_weights(read_checkpoint(source)), strict=False)
        if result.unexpected_keys:
            raise RuntimeError(f"unexpected {result.unexpected_keys}")
    except RuntimeError as e:  # tensors this model lacks, or shaped differently
        differ = ", ".join(
            f"{k}={v!r} here, {config['model_options'].get(k)!r} there"
            for k, v in dataclasses.asdict(options).items()
            if config["model_options"].get(k) != v
        )
        raise GenlabError(
            f"--init-from {source}: its weights do not fit this model (options that differ: "
            f"{differ or 'none'})"
        ) from e
    if result.missing_keys and dist.rank() == 0:
        print(
            f"--init-from {source}: new here, freshly initialised: "
            f"{', '.join(result.missing_keys)}",
            file=sys.stderr,
        )


def frames_to_steps(entry, options: object, cfg: TrainConfig) -> TrainConfig:
    """An agent's `--frames` budget as the equivalent number of training steps (rounded up)."""
    if cfg.frames is None:
        return cfg
    if entry.frames_per_step is None:
        raise GenlabError(f"model '{entry.name}' has no environment frames; use --steps")
    per_step = entry.frames_per_step(options, cfg)
    return dataclasses.replace(cfg, steps=-(-cfg.frames // per_step), frames=None)


def train_and_show(
    model: str,
    data: str,
    options: object,
    cfg: TrainConfig,
    run_dir: Path,
    data_dir: str | None = None,
    nproc: int = 1,
    progress: bool = True,
) -> tuple[FitResult | None, list[Path]]:
    """Train (across `nproc` local processes if > 1), then write the run's pictures.

    Returns rank 0's FitResult (None when it ran in worker processes) and the pictures written
    (none after an interruption, so Ctrl-C returns within seconds).
    """
    result = None
    if nproc > 1:
        dist.launch(nproc, train, model, data, options, cfg, run_dir, data_dir, nproc, progress)
    else:  # one process, or one rank of a torchrun launch
        result = train(
            model, data, options, cfg, run_dir, data_dir, dist.env_world_size(), progress
        )
        if dist.rank() != 0:
            return result, []
    return result, pictures(run_dir, data_dir)


def pictures(run_dir: Path, data_dir: str | None = None, seed: int = 0) -> list[Path]:
    """Samples (if the model can sample) and latent-space pictures into <run>/pictures/."""
    entry, options, model, config = load_run(run_dir)
    dataset = entry.load_data(config["data"], data_dir, options)
    out = Path(run_dir) / "pictures"
    if entry.pictures is not None:
        return entry.pictures(model, options, dataset, out, seed)
    written = []
    if entry.can_sample:
        written.append(image_tasks.sample_grid(model, 64, out / "samples.png", seed))
    if isinstance(model, LatentModel):
        written += image_tasks.latent_pictures(model, options, dataset, out, seed)
    elif isinstance(model, NoiseGenerator):
        written += image_tasks.noise_interpolations(model, out, seed)
    return written


def latent(run_dir: Path, data_dir: str | None = None, seed: int = 0) -> list[Path]:
    """The latent-space pictures of a model that has a latent space (`genlab latent`)."""
    entry, options, model, config = load_run(run_dir)
    if not isinstance(model, LatentModel):
        raise RunError(f"model '{config['model']}' has no latent space to show")
    dataset = entry.load_data(config["data"], data_dir, options)
    return image_tasks.latent_pictures(model, options, dataset, Path(run_dir) / "pictures", seed)


def evaluate(
    run_dir: Path,
    data_dir: str | None = None,
    k: int = 1000,
    n: int | None = None,
    seed: int = 0,
    samples: int = 10_000,
    tasks: int = 1000,
    episodes: int = 30,
) -> dict:
    """Evaluate a run on its dataset's test split; also writes <run>/eval.json.

    Models that can sample on MNIST also get FID, precision, recall and class coverage of
    `samples` samples on genlab's classifier features (0 skips them). Few-shot learners are
    tested on `tasks` tasks of the meta-test classes; agents play `episodes` episodes of each of
    their environments.
    """
    entry, options, model, config = load_run(run_dir)
    dataset = entry.load_data(config["data"], data_dir, options)
    quality = entry.can_sample and samples > 0 and config["data"] == "mnist"
    net = feature_net(data_dir) if quality else None  # may train it: outside no_grad
    with torch.no_grad():
        metrics = entry.evaluate(
            model, options, dataset, k=k, n=n, seed=seed, tasks=tasks, episodes=episodes
        )
        if net is not None:
            metrics.update(sample_quality(model, dataset, net, samples, seed))
    keys = ("model", "data", "step", "train_seconds")
    result = {**{k: config[k] for k in keys}, "split": "test", **metrics}
    (Path(run_dir) / "eval.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


def sample(
    run_dir: Path, n: int, out: Path, seed: int = 0, overrides: list[str] | None = None
) -> Path:
    """n samples of a run into `out`; `overrides` ['key=value'] set its sampling options."""
    entry, options, model, config = load_run(run_dir, overrides=overrides)
    if entry.sample is not None:  # e.g. an agent: a GIF of an episode
        with torch.no_grad():
            return entry.sample(model, options, n, Path(out), seed)
    if not entry.can_sample:
        hint = f"; try `genlab latent {run_dir}`" if isinstance(model, LatentModel) else ""
        raise RunError(f"model '{config['model']}' cannot sample{hint}")
    return image_tasks.sample_grid(model, n, Path(out), seed)


def saved_config(run_dir: Path) -> dict | None:
    """The config of an existing run at `run_dir`, or None when starting fresh."""
    return read_config(run_dir) if (Path(run_dir) / "config.json").is_file() else None
