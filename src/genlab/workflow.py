"""Library entry points behind the CLI verbs: train, evaluate, sample, latent pictures, and the
World Models pipeline's stages. The CLI parses and prints; everything it does is here.

    spec = run_spec("vae", model_options={"latent_dim": 2}, train_options={"steps": 100})
    result, pictures = train(spec)
    metrics = evaluate(spec.run_dir, k=100)
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
from pathlib import Path

import torch

from genlab.agents.world_models import games
from genlab.data.files import atomic_write_json, json_safe
from genlab.errors import ConfigError, GenlabError, RunError
from genlab.interfaces import LatentModel
from genlab.tasks import representation, world_models
from genlab.tasks.features import feature_net, sample_quality
from genlab.tasks.images import latent_pictures
from genlab.tasks.registry import MODELS, get_model
from genlab.tasks.runs import load_run
from genlab.tasks.training import RunSpec, init_source
from genlab.tasks.training import train as train_run
from genlab.train import distributed as dist
from genlab.train import hardware
from genlab.train.config import TrainConfig
from genlab.train.loop import FitResult
from genlab.train.runs import new_run_dir, read_config

# On resume, the budget comes from the command line alone; these other training options may be
# changed (else they keep the run's values); the rest must match the saved run.
BUDGET = {"steps", "minutes", "frames"}
PER_CALL = BUDGET | {"profile"}  # what one invocation does, not kept for the next
RESUMABLE = PER_CALL | {"checkpoint_every", "log_every", "threads", "compile"}
MAX_SAMPLES = 10_000  # `genlab sample --n`: more is better drawn in several calls
SECTIONS = ("probe",)  # eval.json keys written by other verbs than `genlab eval`


def run_spec(
    model: str,
    *,
    data: str | None = None,
    out: str | Path | None = None,
    data_dir: str | None = None,
    nproc: int = 1,
    model_options: dict | None = None,
    train_options: dict | None = None,
) -> RunSpec:
    """The one place options become a run: a fresh run from the entry's defaults, the options
    given and `--init-from`'s config; or, when `out` holds a run, that run resumed (given
    options must match it, except the budget and RESUMABLE ones)."""
    entry = get_model(model)
    model_given, train_given = model_options or {}, train_options or {}
    if dist.env_world_size() > 1 and not out:
        raise GenlabError("under torchrun, pass --out so every process uses the same run directory")
    run_dir = Path(out) if out else new_run_dir(model, data or entry.datasets[0])
    saved = read_config(run_dir) if (run_dir / "config.json").is_file() else None
    if saved is None:
        init = train_given.get("init_from")
        source = init_source(Path(init), model) if init else {}
        data = data or source.get("data") or entry.datasets[0]
        options = entry.options(**{**source.get("model_options", {}), **model_given})
        cfg = TrainConfig(**{**entry.train_defaults, **train_given})
    else:
        if saved["model"] != model:
            raise GenlabError(f"{run_dir} is a '{saved['model']}' run, not '{model}'")
        if data and data != saved["data"]:
            raise GenlabError(f"{run_dir} was trained on '{saved['data']}', not '{data}'")
        data = saved["data"]
        deployment = getattr(entry.options, "DEPLOYMENT", ())  # how it runs, not what it learns
        for k, v in model_given.items():
            if saved["model_options"][k] != v and k not in deployment:
                raise GenlabError(
                    f"{run_dir} has {k}={saved['model_options'][k]}; cannot resume with {v}"
                )
        for k, v in train_given.items():
            if k in RESUMABLE or (k == "precision" and v == "auto"):
                continue  # auto: the choice made when the run began stands
            had = saved["train"].get(k, TrainConfig.__dataclass_fields__[k].default)
            if had != v:
                raise GenlabError(f"{run_dir} has {k}={had}; cannot resume with {v}")
        moved = {k: v for k, v in model_given.items() if k in deployment}
        options = entry.options(**{**saved["model_options"], **moved})
        kept = {k: v for k, v in saved["train"].items() if k not in PER_CALL}
        given = {k: v for k, v in train_given.items() if (k, v) != ("precision", "auto")}
        cfg = TrainConfig(**{**kept, **given})
    if cfg.steps is None and cfg.minutes is None and cfg.frames is None:
        raise GenlabError(
            "give a budget: --steps N (total), --minutes M or, for agents, --frames N"
        )
    check_precision(model, cfg.precision)
    check_compile(model, cfg.compile)
    return RunSpec(entry=entry, data=data, options=options, train=cfg, run_dir=run_dir,
                   data_dir=data_dir, nproc=nproc, resume=saved is not None)  # fmt: skip


def check_compile(model: str, compile: bool) -> None:
    if compile and not get_model(model).can_compile:
        offered = ", ".join(n for n, e in MODELS.items() if e.can_compile)
        raise ConfigError(f"--compile is not offered for '{model}' (only: {offered})")


def check_precision(model: str, precision: str) -> None:
    if precision == "bf16" and not get_model(model).bf16:
        offered = ", ".join(name for name, entry in MODELS.items() if entry.bf16)
        raise ConfigError(f"--precision {precision} is not offered for '{model}' (only: {offered})")


def train(
    spec: RunSpec, progress: bool = True, draw: bool = True
) -> tuple[FitResult | None, list[Path]]:
    """Train (across `spec.nproc` local processes if > 1), then write the run's pictures
    (unless not `draw`: a tuning trial).

    Returns rank 0's FitResult (None when it ran in worker processes) and the pictures written
    (none after an interruption, so Ctrl-C returns within seconds).
    """
    result = None
    if spec.nproc > 1:
        dist.launch(spec.nproc, train_run, spec, progress)
    else:  # one process, or one rank of a torchrun launch
        result = train_run(dataclasses.replace(spec, nproc=dist.env_world_size()), progress)
        if dist.rank() != 0:
            return result, []
    if result is not None and result.status == "interrupted":
        return result, []
    return result, pictures(spec.run_dir, spec.data_dir) if draw else []


def pictures(run_dir: Path, data_dir: str | None = None, seed: int = 0) -> list[Path]:
    """The model's pictures (samples, latent space, episodes, ...) into <run>/pictures/."""
    entry, options, model, config = load_run(run_dir)
    if entry.pictures is None:
        return []
    dataset = entry.load_data(config["data"], data_dir, options)
    return entry.pictures(model, options, dataset, Path(run_dir) / "pictures", seed)


def latent(run_dir: Path, data_dir: str | None = None, seed: int = 0) -> list[Path]:
    """The latent-space pictures of a model that has a latent space (`genlab latent`)."""
    entry, options, model, config = load_run(run_dir)
    if not isinstance(model, LatentModel):
        raise RunError(f"model '{config['model']}' has no latent space to show")
    dataset = entry.load_data(config["data"], data_dir, options)
    return latent_pictures(model, options, dataset, Path(run_dir) / "pictures", seed)


def evaluate(
    run_dir: Path,
    data_dir: str | None = None,
    k: int = 1000,
    n: int | None = None,
    seed: int = 0,
    samples: int = 10_000,
    tasks: int = 1000,
    episodes: int = 30,
    write: bool = True,
    threads: int | None = None,
) -> dict:
    """Evaluate a run on its dataset's test split; also writes <run>/eval.json (`write`; see
    `write_eval`). On `threads` torch threads; by default on the cores other processes leave
    free (looked at for a quarter second first; a line says so when that is fewer than all).

    Models that can sample on MNIST also get FID, precision, recall and class coverage of
    `samples` samples on genlab's classifier features (0 skips them). Few-shot learners are
    tested on `tasks` tasks of the meta-test classes; agents play `episodes` episodes of each of
    their environments.
    """
    for name, value, least in (("k", k, 1), ("n", n or 1, 1), ("samples", samples, 0),
                               ("tasks", tasks, 1), ("episodes", episodes, 1),
                               ("threads", threads or 1, 1)):  # fmt: skip
        if value < least:
            raise ConfigError(f"--{name} must be >= {least}, got {value}")
    entry, options, model, config = load_run(run_dir)
    dataset = entry.load_data(config["data"], data_dir, options)
    quality = entry.can_sample and samples > 0 and config["data"] == "mnist"
    with threads_for(threads, "evaluating"):
        net = feature_net(data_dir) if quality else None  # may train it: outside no_grad
        with torch.no_grad():
            metrics = entry.evaluate(
                model, options, dataset, k=k, n=n, seed=seed, tasks=tasks, episodes=episodes
            )
            if net is not None:
                metrics.update(sample_quality(model, dataset, net, samples, seed))
    keys = ("model", "data", "step", "train_seconds")
    result = json_safe({**{k: config[k] for k in keys}, "split": "test", **metrics})
    if write:
        write_eval(run_dir, result)
    return result


@contextlib.contextmanager
def threads_for(threads: int | None, doing: str):
    """Run the block on `threads` torch threads, or by default on the cores other processes
    leave free (a line says so when that is fewer than all; beside a training, both on both
    cores ran evaluation at 0.58x of alone and the training at 0.43x); restored after."""
    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    else:
        hardware.start_fair(previous, doing)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def write_eval(run_dir: Path, result: dict, section: str | None = None) -> Path:
    """<run>/eval.json, atomically; RunError saying why if the run cannot be written to (the
    CLI prints the result first, so nothing computed is lost). `genlab eval`'s result replaces
    everything but the other verbs' `SECTIONS`; a `section` ("probe") replaces only itself."""
    path = Path(run_dir) / "eval.json"
    earlier = read_json_or_empty(path)
    if section is None:
        value = {**{k: earlier[k] for k in SECTIONS if k in earlier}, **result}
    else:
        value = {**earlier, section: result}
    try:
        atomic_write_json(path, value)
    except OSError as e:
        raise RunError(f"the result above was not saved: cannot write {path}: "
                       f"{e.strerror or e}") from None  # fmt: skip
    return path


def probe(
    run_dir: Path,
    counts: list[int | None],
    draws: int = 5,
    l2: float = 1e-2,
    n: int | None = None,
    supervised_steps: int = 0,
    data_dir: str | None = None,
    seed: int = 0,
    threads: int | None = None,
    write: bool = True,
    overrides: list[str] | None = None,
    supervised_up_to: int = 100,
    mlp: bool = False,
) -> dict:
    """The linear probe of a run's representation on its dataset's labels (MNIST: digits;
    Omniglot: evaluation-set characters by held-out drawers; FSDD: digits and speakers), with
    `counts` labels per class (None: all), beside the raw input and the same network freshly
    initialised; with `supervised_steps`, also that network trained on the labels alone
    (images); with `mlp`, also a one-hidden-layer probe of the run's features. Accuracies in %
    with 95% intervals over `draws` label draws. Adds "probe" to <run>/eval.json and draws
    <run>/pictures/label_efficiency*.png (`write`). `overrides` ['key=value'] set weight-free
    model options (CPC's probe_regions); see `representation.probe_run`."""
    for name, value, least in (("draws", draws, 1), ("n", n or 1, 1),
                               ("supervised-steps", supervised_steps, 0)):  # fmt: skip
        if value < least:
            raise ConfigError(f"--{name} must be >= {least}, got {value}")
    if l2 < 0:
        raise ConfigError(f"--l2 must be >= 0, got {l2}")
    settings = representation.ProbeSettings(tuple(counts), draws, l2, seed, n, supervised_steps,
                                            supervised_up_to, mlp)  # fmt: skip
    entry, options, model, config = load_run(run_dir, overrides=overrides)
    with threads_for(threads, "probing"):  # probe_run loads the labelled data it reads
        tables = representation.probe_run(entry, options, model, config["data"], settings,
                                          data_dir)  # fmt: skip
    keys = ("model", "data", "step", "train_seconds")
    result = json_safe({**{k: config[k] for k in keys}, "tasks": tables, "draws": draws, "l2": l2,
                        "supervised_steps": supervised_steps, "overrides": overrides or [],
                        "supervised_up_to": supervised_up_to, "mlp": mlp})  # fmt: skip
    if write:
        write_eval(run_dir, result, section="probe")
        for task, table in tables.items():
            title = f"{task}s from a linear probe of {config['model']} on {config['data']}"
            name = "label_efficiency" + ("" if task == "digit" else f"_{task}") + ".png"
            representation.label_efficiency_picture(table, Path(run_dir) / "pictures" / name,
                                                    title)  # fmt: skip
    return result


def read_json_or_empty(path: Path) -> dict:
    """A JSON object from `path`, or {} when there is none (a damaged file is set aside by
    being overwritten: eval.json is derived, never the only copy of anything)."""
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def sample(
    run_dir: Path, n: int, out: Path, seed: int = 0, overrides: list[str] | None = None
) -> Path:
    """n samples of a run into `out`; `overrides` ['key=value'] set its sampling options."""
    if not 1 <= n <= MAX_SAMPLES:
        raise ConfigError(f"--n must be between 1 and {MAX_SAMPLES:,}, got {n}")
    entry, options, model, config = load_run(run_dir, overrides=overrides)
    if entry.sample is None:
        hint = f"; try `genlab latent {run_dir}`" if isinstance(model, LatentModel) else ""
        raise RunError(f"model '{config['model']}' cannot sample{hint}")
    try:
        with torch.no_grad():
            return entry.sample(model, options, n, Path(out), seed)
    except OSError as e:
        raise RunError(f"cannot write the samples to {out}: {e.strerror or e}") from None


# --- World Models on CarRacing, Doom or Pong, stage by stage (`genlab worldmodels`) ------------------
def worldmodels_train_options(stage: str, root: Path, env: str = "gym:CarRacing-v3") -> list[str]:
    """The `genlab train` arguments of stage train-v (V of game `env`, the paper's recipe) or
    train-m (M on V's encodings, of V's game): model, data, run directory and the stage's fixed
    options."""
    root = Path(root)
    if stage == "train-v":
        game = games.game(env)
    elif stage == "train-m":
        game = world_models.game_of_v(root / "vae")
    else:
        raise ConfigError(f"'{stage}' is not a training stage (train-v, train-m)")
    data = ["--data", game.folder, "--data-dir", str(root / "data")]
    if stage == "train-v":
        return ["vae", *data, *world_models.v_options(game), "--out", str(root / "vae")]
    return ["mdnrnn", *data, *world_models.m_options(game), "--vae", str(root / "vae"),
            "--out", str(root / "mdnrnn")]  # fmt: skip


def check_v(root: Path) -> dict:
    """After train-v: does V see the road? (`world_models.check_v_run`)"""
    return world_models.check_v_run(Path(root))


def search_controller(
    root: Path, *, dream: bool = False, memory: bool = True, **search_options
) -> tuple[dict, Path]:
    """Stage train-c: C by CMA-ES on the pipeline's V (and M), in the real game or the dream;
    returns the last generation's metrics and the controller's directory."""
    root = Path(root)
    cfg = world_models.search.SearchConfig(
        vae=str(root / "vae"), mdnrnn=str(root / "mdnrnn") if memory else "", dream=dream,
        game=world_models.game_of_v(root / "vae").folder, **search_options,
    )  # fmt: skip
    out = world_models.controller_dir(root, dream, memory)
    return world_models.search_controller(cfg, out, str(root / "data")), out


def evaluate_controller(root: Path, controller: str, **options) -> dict:
    """Stage eval: the controller in DIR/`controller` on unseen tracks or games, and its GIFs."""
    return world_models.evaluate_controller_run(
        Path(root) / controller, data_dir=str(Path(root) / "data"), **options
    )


def collect(
    root: Path, env: str | None = None, controller: str | None = None, explore: float = 0.25,
    **options,
) -> dict:  # fmt: skip
    """Stage collect: random-policy episodes of `env` (default CarRacing) into DIR/data/<its
    game> (carracing, doom, pong); or, given `controller` (a search directory in DIR), that
    controller's episodes with random stretches (`explore`), into its game's folder: iterative
    training's data for M (`world_models.collect_with_controller`)."""
    root = Path(root)
    if controller is None:
        env = env or games.CARRACING.env
        return games.collect(root / "data" / games.game(env).folder, env=env, **options)
    return world_models.collect_with_controller(
        root / controller, root / "data", explore=explore, env=env, **options
    )


def is_main_process() -> bool:
    """Alone, or rank 0 of a launch: the process that prints."""
    return dist.env_world_size() == 1 or os.environ.get("RANK") == "0"
