"""Running a `RunSpec`: build the model, load its data, hand both to the one training loop; and
loading a trained run back, given its registry entry.

    spec = RunSpec(entry=..., data="mnist", options=VAEConfig(), train=TrainConfig(steps=100),
                   run_dir=Path("runs/vae"))
    result = train(spec)                  # resumes when spec.run_dir holds a checkpoint
    options, model, config = load(entry, Path("runs/vae"))

Nothing here looks a model up by name: the caller passes the entry (`genlab.tasks.registry`
knows them all), so the families' own yardsticks can train and load runs too.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from genlab import __version__
from genlab.errors import GenlabError, RunError
from genlab.tasks.entry import ModelEntry
from genlab.train import distributed as dist
from genlab.train import hardware
from genlab.train.config import TrainConfig, check_finite_fields, check_types, parse_overrides
from genlab.train.loop import FitResult, fit, laid_out_for
from genlab.train.runs import checkpoint_weights, exclusive, read_config, write_config
from genlab.train.state import CHECKPOINT, read_checkpoint


@dataclass(frozen=True, kw_only=True)
class RunSpec:
    """One training run, fully resolved: what `genlab train` does, as a value."""

    entry: ModelEntry
    data: str  # one of entry.datasets
    options: object  # an instance of entry.options
    train: TrainConfig
    run_dir: Path
    data_dir: str | None = None  # where the datasets are (else $GENLAB_DATA, the cache)
    nproc: int = 1  # data-parallel processes
    resume: bool = False  # run_dir holds this run already: continue it

    def __post_init__(self) -> None:
        check_types(self.options)
        check_finite_fields(self.options)  # TrainConfig checks its own
        if self.data not in self.entry.datasets:
            raise GenlabError(
                f"model '{self.entry.name}' trains on {', '.join(self.entry.datasets)}, "
                f"not '{self.data}' (use --data)"
            )

    def config(self) -> dict:
        """The resolved config written as <run>/config.json."""
        return {
            "model": self.entry.name,
            "data": self.data,
            "model_options": dataclasses.asdict(self.options),
            "train": dataclasses.asdict(self.train),
            "nproc": self.nproc,
            "genlab_version": __version__,
        }


def train(spec: RunSpec, progress: bool = True) -> FitResult:
    """Train (or resume) a run; in distributed workers this runs once per rank.

    Uses `spec.train.threads` torch threads (default: cores / processes) while training, and
    restores the caller's setting afterwards.
    """
    dist.init_from_env()  # a no-op alone; joins the group under torchrun or --nproc
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(spec.train.threads or max(1, (os.cpu_count() or 1) // dist.world_size()))
    try:
        return _train(spec, progress)
    finally:
        torch.set_num_threads(previous_threads)


def _train(spec: RunSpec, progress: bool) -> FitResult:
    """Lock the run directory (rank 0), build everything, and only then write config.json and
    hand over to the loop: a run whose options, data or model fail leaves no config behind."""
    spec = dataclasses.replace(spec, train=resolved(spec.entry, spec.train))  # kept as chosen
    entry, cfg, run_dir = spec.entry, spec.train, Path(spec.run_dir)
    with contextlib.ExitStack() as stack:
        if dist.rank() == 0:
            stack.enter_context(exclusive(run_dir))  # a second trainer is refused here
        dataset = entry.load_data(spec.data, spec.data_dir, spec.options)
        torch.manual_seed(cfg.seed)
        net = laid_out_for(entry.build(spec.options), cfg.precision)
        if cfg.init_from and not (run_dir / CHECKPOINT).is_file():  # a resumed run has its own
            init_weights(net, entry.name, spec.options, Path(cfg.init_from))
        torch.manual_seed(cfg.seed + 7919 * dist.rank())  # each rank draws its own noise
        if cfg.batch_size % dist.world_size():
            raise GenlabError(
                f"--batch-size {cfg.batch_size} does not split over {dist.world_size()} processes"
            )
        cfg = frames_to_steps(entry, spec.options, cfg)
        state = entry.make_state(net, cfg)
        batches = entry.batches(spec.options, dataset, cfg.batch_size, cfg.seed, model=net)
        if hasattr(batches, "close"):
            stack.callback(batches.close)  # e.g. stop an agent's actor processes
        if dist.rank() == 0:
            write_config(run_dir, spec.config())
        return fit(state, batches, cfg, run_dir, entry.make_step(cfg), progress,
                   entry.on_checkpoint)  # fmt: skip


def resolved(entry: ModelEntry, cfg: TrainConfig, amx: bool | None = None) -> TrainConfig:
    """`cfg` with `--precision auto` made a choice (`amx`: has this CPU AMX, bf16 that pays? None:
    look), printed on rank 0 and kept in config.json."""
    if cfg.precision != "auto":
        return cfg
    amx = hardware.has_amx() if amx is None else amx
    precision, why = hardware.choose_precision("auto", entry.bf16, amx)
    if dist.rank() == 0:
        hint = "; --precision fp32|bf16 to choose" if entry.bf16 else ""
        print(f"genlab: precision {precision} ({why}{hint})", file=sys.stderr)
    return dataclasses.replace(cfg, precision=precision)


def frames_to_steps(entry: ModelEntry, options: object, cfg: TrainConfig) -> TrainConfig:
    """An agent's `--frames` budget as the equivalent number of training steps (rounded up)."""
    if cfg.frames is None:
        return cfg
    if entry.frames_per_step is None:
        raise GenlabError(f"model '{entry.name}' has no environment frames; use --steps")
    per_step = entry.frames_per_step(options, cfg)
    return dataclasses.replace(cfg, steps=-(-cfg.frames // per_step), frames=None)


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


def load(
    entry: ModelEntry, run_dir: Path, use_ema: bool = True, overrides: list[str] | None = None
) -> tuple[object, torch.nn.Module, dict]:
    """Rebuild the `entry` model of `run_dir` from its config.json and load its weights (the EMA
    weights if kept). `overrides` ['key=value', ...] replace model options that leave the
    network as it is (sampling options such as WaveNet's `guidance`); RunError if they change
    its weights, or if the run is another model's.

    Returns (model options, model in eval mode, config dict with "step" and "train_seconds").
    """
    config = read_config(run_dir)
    if config["model"] != entry.name:
        raise RunError(f"'{run_dir}' is a {config['model']} run, not a {entry.name} run")
    given = parse_overrides(overrides or [], entry.options)
    options = options_from(entry, {**config["model_options"], **given}, Path(run_dir))
    model = entry.build(options)
    ckpt = read_checkpoint(run_dir)
    try:
        model.load_state_dict(checkpoint_weights(ckpt, use_ema))
        config = {
            **config,
            "step": int(ckpt["step"]),
            "train_seconds": round(float(ckpt["seconds"]), 1),
        }
    except (RuntimeError, KeyError, TypeError, AttributeError) as e:
        if overrides and isinstance(e, RuntimeError):
            raise RunError(
                f"{', '.join(given)} would change the network of {run_dir}; "
                "only options that leave its weights as they are can be set here"
            ) from None
        detail = f"no {e}" if isinstance(e, KeyError) else str(e).strip().splitlines()[0][:300]
        raise RunError(f"checkpoint {Path(run_dir) / CHECKPOINT} does not fit the "
                       f"{entry.name} its config.json describes ({detail})") from None  # fmt: skip
    return options, model.eval(), config


def options_from(entry: ModelEntry, values: dict, run_dir: Path) -> object:
    """`entry.options(**values)` from a run's config.json, a RunError naming the file if a
    field is unknown or of the wrong type."""
    where = Path(run_dir) / "config.json"
    try:
        options = entry.options(**values)
    except TypeError as e:
        raise RunError(f"{where}: model_options do not fit {entry.name} ({e})") from None
    except GenlabError as e:
        raise RunError(f"{where}: {e}") from None
    check_types(options, where)
    return options
