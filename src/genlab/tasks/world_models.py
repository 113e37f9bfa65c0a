"""World Models (Ha & Schmidhuber 2018) on CarRacing, Doom Take Cover or Pong as an application:
V is genlab's VAE run (on Pong a PixelVAE may stand in), M the `mdnrnn` run trained on V's
encodings of the collected episodes, C a CMA-ES search run. This file loads those runs and hands
the modules to `genlab.agents.world_models`. The game is V's data (`carracing`, `doom`, `pong`);
M and C follow V.

    DIR/data/<game>/      collect   episodes of a random policy (one npz each); or of a
                                    searched controller (`collect_with_controller`)
    DIR/vae/              train-v   genlab's VAE on the frames (a `genlab train vae` run)
    DIR/mdnrnn/           train-m   M on V's latents (a `genlab train mdnrnn` run)
    DIR/controller*/      train-c   C by CMA-ES: controller, controller-dream, controller-vc
                          eval      mean +- std return on unseen tracks, GIFs
"""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from genlab.agents.world_models import evaluation, iteration, search
from genlab.agents.world_models.agent import n_params
from genlab.agents.world_models.controller import OUTPUTS
from genlab.agents.world_models.dream import check_dream
from genlab.agents.world_models.games import GAMES, Game, episode_seed, game_of_data
from genlab.agents.world_models.mdnrnn import MDNRNN, MDNRNNConfig
from genlab.agents.world_models.sequences import LatentEpisodes, SequenceBatches, encode_episodes
from genlab.agents.world_models.vision import reconstruction_check
from genlab.data.episodes import episode_files, episode_path, episodes_root
from genlab.data.files import atomic_write_json, read_json
from genlab.errors import ConfigError, DataError, RunError
from genlab.tasks import training
from genlab.tasks.entry import ModelEntry
from genlab.tasks.images import ENTRY as IMAGE_ENTRY
from genlab.train import cluster
from genlab.train.logger import read_metrics
from genlab.train.loop import fit
from genlab.train.runs import exclusive, read_config
from genlab.train.state import CHECKPOINT, read_checkpoint

# The paper's V: squared error (a gaussian of fixed std 1/sqrt(2)) plus the KL. With genlab's
# learned per-pixel std, V drew every frame as the mean frame after 8.4 minutes (3,594 steps of
# 32) in one run of 2026-11-23 and saw the road after 6 in others (see agents/world_models/
# vision.py). Batch 32, not genlab's 128: at equal minutes on 2 cores, 128 still drew the mean
# frame after 15 minutes.
# z has the game's size (the paper's: 32 for CarRacing, 64 for Doom): `v_options`.
V_OPTIONS = ["--image-size", "64", "--likelihood", "gaussian", "--gaussian-std", "0.7071",
             "--batch-size", "32"]  # fmt: skip
V_CHECK = "v_check.json"  # written into V's run by check_v_run
CONTROLLERS = ("mean", "best")  # CMA-ES's final mean, or the best candidate it scored
WORLDS = tuple(g.folder for g in GAMES.values())  # every game has the whole pipeline
V_MODELS = ("vae", "pixelvae")  # what V may be: a run whose encoder gives z


def v_options(game: Game) -> list[str]:
    """`genlab train vae` options of the game's V (the paper's recipe and size). Doom's V also
    has the paper's KL tolerance (0.5 nats per dimension): without it, on 2026-12-06, V drew
    every Doom frame as the mean frame after 15 minutes (1,691 steps, KL 2.5 nats), the room
    changing too little between frames for the squared error to pay for z."""
    tolerance = ["--kl-tolerance", "0.5"] if game.folder == "doom" else []
    size = ["--image-channels", str(game.channels), "--latent-dim", str(game.latent_dim)]
    return [*V_OPTIONS, *size, *tolerance]


def m_options(game: Game) -> list[str]:
    """`genlab train mdnrnn` options of the game's M (the paper's size, the game's actions)."""
    return ["--latent-dim", str(game.latent_dim), "--hidden", str(game.hidden),
            "--action-dim", str(OUTPUTS[game.output])]  # fmt: skip


def load_v(vae_run: str | Path) -> tuple[torch.nn.Module, dict]:
    """V of run `vae_run` (a vae trained on a `WORLDS` game's frames, or on Pong's a pixelvae:
    its encoder is V, its PixelCNN decoder only trained it) and its config."""
    if not vae_run or not (Path(vae_run) / "config.json").is_file():
        raise ConfigError(f"M needs --vae RUN, a trained `genlab train vae --data carracing` (or "
                          f"doom, pong) run; '{vae_run}' is not one")  # fmt: skip
    saved = read_config(Path(vae_run))
    if saved["model"] not in V_MODELS or saved["data"] not in WORLDS:
        raise ConfigError(f"'{vae_run}' is a {saved['model']} on {saved['data']}, not a "
                          f"{' or '.join(V_MODELS)} on {', '.join(WORLDS)}")  # fmt: skip
    _, vae, config = training.load(IMAGE_ENTRY[saved["model"]], Path(vae_run))
    return vae, config


def game_of_v(vae_run: str | Path) -> Game:
    """The game whose frames the V of run `vae_run` was trained on."""
    if not (Path(vae_run) / "config.json").is_file():
        raise ConfigError(f"no V at {vae_run}: train it first (`genlab worldmodels train-v`)")
    return game_of_data(read_config(Path(vae_run))["data"])


def load_m(m_run: str | Path) -> MDNRNN:
    return training.load(MDNRNN_ENTRY, Path(m_run))[1]


# --- M: `genlab train mdnrnn` --------------------------------------------------------------------
def load_latents(vae_run: str, data_dir: str | None, progress: bool = True) -> LatentEpisodes:
    """The collected episodes encoded by the V of run `vae_run` (cached in that run as
    `latents-step{N}.pt`, rebuilt when V trains on or the episodes change; episodes added after
    the cached ones, as iterative training adds them, are encoded alone)."""
    vae, config = load_v(vae_run)
    files = episode_files(episodes_root(config["data"], data_dir))
    names = [f.name for f in files]
    cache = Path(vae_run) / f"latents-step{config['step']}.pt"
    latents = None
    if cache.is_file():
        saved = torch.load(cache, weights_only=True)
        if saved["files"] == names:
            return LatentEpisodes(**saved["latents"])
        if names[: len(saved["files"])] == saved["files"]:
            latents = LatentEpisodes(**saved["latents"])
    if latents is None:
        latents = encode_episodes(vae, files, progress=progress)
    else:
        latents = latents.joined(encode_episodes(vae, files[len(latents) :], progress=progress))
    tmp = cache.with_name(cache.name + ".partial")
    torch.save({"files": [f.name for f in files], "latents": latents.__dict__}, tmp)
    os.replace(tmp, cache)
    return latents


def load_memory_data(
    data: str, data_dir: str | None, options
) -> tuple[LatentEpisodes, LatentEpisodes]:
    """(train, test) encoded episodes for M: V's game's."""
    game = game_of_v(options.vae)  # a ConfigError unless V's data is a world-model game's
    if data != game.folder:
        raise ConfigError(f"M trains on the episodes V saw ({game.folder}), "
                          f"not '{data}'")  # fmt: skip
    latents = load_latents(options.vae, data_dir)
    if latents.actions.shape[1] != options.action_dim:
        raise ConfigError(f"the episodes' actions have {latents.actions.shape[1]} values; set "
                          f"--action-dim {latents.actions.shape[1]} (got {options.action_dim})")  # fmt: skip
    if latents.mu.shape[1] != options.latent_dim:
        raise ConfigError(f"V's latents have {latents.mu.shape[1]} dimensions; set --latent-dim "
                          f"{latents.mu.shape[1]} (got {options.latent_dim})")  # fmt: skip
    return latents.split()


def memory_batches(options, data, batch_size: int, seed: int, **_) -> SequenceBatches:
    return SequenceBatches(data[0], options.seq_len, batch_size, seed)


@torch.no_grad()
def evaluate_memory(model, options, data, n: int | None = None, seed: int = 0, **_) -> dict:
    """M on the held-out episodes, each whole, z drawn from V's posterior with a fixed seed:
    z NLL (nats per step), reward squared error and done cross-entropy, averaged over steps;
    and `deaths` (episodes that ended before their cut) beside `deaths_expected`, the sum of
    M's done probabilities over every step. A dream dies as often as the game only if the two
    agree: an M that saw deaths too rarely while training expected 0.21 per Doom death."""
    test: LatentEpisodes = data[1]
    k = len(test) if n is None else min(n, len(test))
    if k == 0:
        raise DataError("no held-out episodes to evaluate M on")
    g = torch.Generator().manual_seed(seed)
    totals, steps, deaths, expected = {}, 0, 0.0, 0.0
    for e in range(k):
        one = test.select([i == e for i in range(len(test))])
        T = int(one.offsets[-1])
        z = one.mu + torch.randn(one.mu.shape, generator=g) * torch.exp(0.5 * one.logvar)
        batch = {"z": z[None], "a": one.actions[None], "r": one.rewards[None],
                 "d": one.dones[None], "mask": torch.ones(1, T, dtype=torch.bool)}  # fmt: skip
        for name, v in model.loss(batch).items():
            totals[name] = totals.get(name, 0.0) + float(v) * T
        out, _, _ = model(batch["z"][:, :-1], batch["a"])
        deaths, expected = (
            deaths + float(one.dones.sum()),
            expected + float(out["done"].sigmoid().sum()),
        )
        steps += T
    return {**{name: v / steps for name, v in totals.items()}, "episodes": k, "steps": steps,
            "deaths": int(deaths), "deaths_expected": round(expected, 2)}  # fmt: skip


def no_pictures(model, options, data, out: Path, seed: int = 0) -> list[Path]:
    """M has nothing to draw on its own (the controller's GIFs show its dreams)."""
    return []


MDNRNN_ENTRY = ModelEntry(
    name="mdnrnn", summary="World Models' M: an LSTM with a mixture density head over V's next "
    "latent", options=MDNRNNConfig, build=MDNRNN, datasets=WORLDS,
    load_data=load_memory_data, batches=memory_batches, evaluate=evaluate_memory,
    train_defaults={"lr": 1e-3, "batch_size": 32, "grad_clip": 1.0, "log_every": 20},
    pictures=no_pictures,
)  # fmt: skip
ENTRIES = (MDNRNN_ENTRY,)


# --- V's check after train-v ----------------------------------------------------------------------
def check_v_run(root: Path) -> dict:
    """Does the V in root/vae see? Its reconstruction of held-out frames (episodes in
    root/data/<its game>) against their mean frame; also written to root/vae/v_check.json."""
    vae, config = load_v(Path(root) / "vae")
    check = reconstruction_check(vae, Path(root) / "data" / config["data"])
    atomic_write_json(Path(root) / "vae" / V_CHECK, check, indent=None)
    return check


# --- C: the CMA-ES search and its evaluation -------------------------------------------------------
def controller_dir(root: Path, dream: bool, memory: bool) -> Path:
    return Path(root) / ("controller" + ("-dream" if dream else "") + ("" if memory else "-vc"))


def make_players(cfg: search.SearchConfig, vae, m, initial_z):
    """Who plays the candidates: local worker processes, or Ray actors (`--backend ray`)."""
    if cfg.backend == "ray":
        cluster.ray_module()  # without Ray: one line saying how to install it
        # Here, not at the top: the module imports Ray, which is optional.
        from genlab.agents.world_models.ray_players import RayPlayers

        return RayPlayers(vae, m, initial_z, cfg.workers, cfg.address, cfg.game)
    return search.Players(vae, m, initial_z, cfg.workers, cfg.game)


def search_controller(
    cfg: search.SearchConfig, out: Path, data_dir: str | None = None, progress: bool = True
) -> dict:
    """Run (or resume) the search into run directory `out` on the shared training loop;
    returns the last generation's metrics."""
    with exclusive(out) as out:  # one search per directory; stale temp files swept
        if (out / CHECKPOINT).is_file() and (out / "config.json").is_file():
            was = read_json(out / "config.json", RunError).get("brake", "shift")
            if was != cfg.brake:
                raise ConfigError(f"{out} was searched with brake '{was}'; resume it with "
                                  f"--brake {was} or search into a fresh directory")  # fmt: skip
        vae, _ = load_v(cfg.vae)
        game = game_of_v(cfg.vae)
        if cfg.game != game.folder:
            raise ConfigError(
                f"the search is set for {cfg.game} but V ({cfg.vae}) saw {game.folder}"
            )
        m = load_m(cfg.mdnrnn) if cfg.mdnrnn else None
        initial_z = None
        if cfg.dream:
            initial_z = load_latents(cfg.vae, data_dir, progress).first_latents().numpy()
            check_dream(m, initial_z, cfg.tau, game=game)
        atomic_write_json(out / "config.json", {"stage": "train-c", **dataclasses.asdict(cfg)})
        state = search.SearchState(cfg, n_params(vae, m, game))
        players = make_players(cfg, vae, m, initial_z)
        try:
            result = fit(state, search.Tracks(cfg), cfg.loop_config(), out,
                         search.search_step(cfg, players), progress)  # fmt: skip
        finally:
            players.close()
    rows = read_metrics(out)
    last = {k: v for k, v in rows[-1].items() if k != "step"} if rows else {}
    return {"generation": result.step, **last}


def load_controller(run: Path, which: str = "mean") -> tuple[search.SearchConfig, np.ndarray, int]:
    """A `train-c` run's search config, controller parameters and generation."""
    path = Path(run) / "config.json"
    if not path.is_file():
        raise RunError(f"no controller search at {run} (missing {path})")
    if which not in CONTROLLERS:
        raise RunError(f"controller must be one of {CONTROLLERS}, not '{which}'")
    saved = read_json(path, RunError)
    saved.setdefault("brake", "shift")  # searched before C's brake became the paper's clip
    fields = {f.name for f in dataclasses.fields(search.SearchConfig)}
    try:
        cfg = search.SearchConfig(**{k: v for k, v in saved.items() if k in fields})
    except TypeError as e:
        raise RunError(f"{path} is not a controller search's config ({e})") from None
    ck = read_checkpoint(run)
    try:
        params = (ck["mean"] if which == "mean" else ck["best_params"]).numpy()
        return cfg, params, int(ck["generation"])
    except (KeyError, AttributeError) as e:
        raise RunError(
            f"{run / CHECKPOINT} is not a controller search's checkpoint ({e})"
        ) from None


def collect_with_controller(
    run: Path, data_root: Path, episodes: int, workers: int = 2, explore: float = 0.25,
    max_steps: int | None = None, seed: int = 0, progress: bool = True, env: str | None = None,
) -> dict:  # fmt: skip
    """Iterative training's collection (`iteration`): episodes 0 .. episodes-1 of the folder of
    the controller's game in `data_root` that are missing (those there are kept), each played
    by the controller of search run `run` (its final mean, with its V and M) with random
    stretches of probability `explore`, game `games.episode_seed(seed, i)` for episode i, cut
    at `max_steps` (None: the game's limit). `env`, if given, must be the controller's game.
    Returns the counts, speed and the episodes' mean return."""
    cfg, params, generation = load_controller(run, "mean")
    game = game_of_data(cfg.game)
    if env is not None and env != game.env:
        raise ConfigError(f"--env {env}: the controller in {run} plays {game.env}")
    iteration.check_explore(explore)  # before the workers start
    vae, _ = load_v(cfg.vae)
    m = load_m(cfg.mdnrnn) if cfg.mdnrnn else None
    data = Path(data_root) / game.folder
    data.mkdir(parents=True, exist_ok=True)
    todo = [i for i in range(episodes) if not episode_path(data, i).is_file()]
    max_steps = max_steps or game.max_steps
    jobs = [("record", params, episode_seed(seed, i), max_steps, cfg.brake, explore,
             str(episode_path(data, i))) for i in todo]  # fmt: skip
    t0 = time.monotonic()
    players = search.Players(vae, m, None, workers, cfg.game)
    try:
        results = list(tqdm(players.map(jobs), total=len(jobs), desc="collect", unit="episode",
                            disable=not progress))  # fmt: skip
    finally:
        players.close()
    seconds, steps = time.monotonic() - t0, sum(n for _, n in results)
    return {"episodes": episodes, "new_episodes": len(todo), "new_steps": steps,
            "seconds": round(seconds, 1),
            "steps_per_second": round(steps / seconds, 1) if seconds > 0 else None,
            "controller": str(run), "generation": generation, "explore": explore,
            "mean_return": float(np.mean([r for r, _ in results])) if results else None,
            "game": game.folder}  # fmt: skip


def evaluate_controller_run(
    run: Path, episodes: int = 20, workers: int = 2, which: str = "mean",
    max_steps: int | None = None, progress: bool = True, gifs: bool = True,
    data_dir: str | None = None,
) -> dict:  # fmt: skip
    """The controller of search run `run` over `episodes` unseen tracks or games (mean +- std
    return; episodes cut at `max_steps`, None: the game's limit), written to `run`/eval.json,
    and (`gifs`) its GIFs in `run`/pictures ("gifs")."""
    cfg, params, generation = load_controller(run, which)
    max_steps = max_steps or game_of_data(cfg.game).max_steps
    vae, _ = load_v(cfg.vae)
    m = load_m(cfg.mdnrnn) if cfg.mdnrnn else None
    initial_z = None
    if cfg.dream and m is not None:  # the dream's score beside the game's
        initial_z = load_latents(cfg.vae, data_dir, progress).first_latents().numpy()
    report = evaluation.evaluate_controller(cfg, params, vae, m, episodes, workers, max_steps,
                                            progress, initial_z)  # fmt: skip
    report = {**report, "controller": which, "generation": generation}
    atomic_write_json(Path(run) / "eval.json", report)
    if not gifs:
        return report
    written = evaluation.episode_gifs(cfg, params, vae, m, Path(run) / "pictures", max_steps)
    return {**report, "gifs": [str(p) for p in written]}
