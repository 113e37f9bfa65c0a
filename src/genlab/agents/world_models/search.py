"""Stage 4, `train-c`: C's parameters searched by CMA-ES (Hansen 2016; the `cma` package), each
candidate scored by its mean return over a few episodes played in parallel worker processes,
in the real game or in the dream (M at temperature tau). In the real game a job is one
episode of one candidate; in the dream a job is a share of the candidates, each worker
stepping all their dreams together through M (`dream.dream_scores`).

The search is a state and a step that the shared training loop runs (`genlab.train.loop.fit`),
so budgets, checkpoints, logging, Ctrl-C and resume work as for every model: one loop step is
one generation, and the loop's "batch" for generation g is the tracks its candidates play.

Every candidate of a generation plays the same tracks (a fair comparison); the tracks change
every generation. The checkpoint holds the search distribution's mean and step size, the best
candidate so far and the generation. Resuming restarts CMA-ES from the saved mean and step size
with a fresh covariance (its adaptation is not saved: the format stores tensors only).
"""

from __future__ import annotations

import multiprocessing as mp
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from genlab.agents.world_models import iteration
from genlab.agents.world_models.agent import real_return
from genlab.agents.world_models.controller import BRAKES, LinearController
from genlab.agents.world_models.dream import dream_scores, reads_of_m
from genlab.agents.world_models.games import game_of_data
from genlab.agents.world_models.mdnrnn import MDNRNN
from genlab.errors import ConfigError
from genlab.train.config import TrainConfig

TRACK_SEED_STRIDE = 1_000_003
BACKENDS = ("local", "ray")


@dataclass(frozen=True)
class SearchConfig:
    vae: str  # the V run
    mdnrnn: str = ""  # the M run; "" searches V+C (the paper's ablation without memory)
    dream: bool = False  # score candidates inside M instead of the real game
    tau: float = 1.15  # M's temperature in the dream (the paper's best for Doom)
    popsize: int = 16
    rollouts: int = 1  # episodes (tracks) per candidate
    sigma0: float = 0.1
    generations: int | None = None
    minutes: float | None = None
    workers: int = 2  # processes playing candidates (Ray actors with backend "ray")
    backend: str = "local"  # "local" worker processes, or "ray" actors (the distributed extra)
    address: str = ""  # backend ray: the cluster to join ("auto", HOST:PORT; "" starts one)
    max_steps: int | None = None  # an episode's limit (None: the game's, games.Game.max_steps)
    patience: int = 100  # real game: stop an episode after this many steps without reward
    seed: int = 0
    brake: str = "clip"  # C's brake: "clip" (the paper's) or "shift" (see controller.py)
    game: str = "carracing"  # the game's data folder (games.Game.folder), V's --data

    def __post_init__(self) -> None:
        game = game_of_data(self.game)  # a ConfigError naming the games otherwise
        if self.max_steps is None:  # frozen: set through object.__setattr__, as dataclasses do
            object.__setattr__(self, "max_steps", game.max_steps)
        if self.generations is None and self.minutes is None:
            raise ConfigError("give the search a budget: generations and/or minutes")
        if self.dream and not self.mdnrnn:
            raise ConfigError("the dream is made of M: pass the M run (--mdnrnn)")
        if self.popsize < 2 or self.rollouts < 1 or self.workers < 1:
            raise ConfigError("popsize must be >= 2, rollouts and workers >= 1")
        if self.backend not in BACKENDS:
            raise ConfigError(f"backend must be one of {', '.join(BACKENDS)}, not "
                              f"'{self.backend}'")  # fmt: skip
        if self.address and self.backend != "ray":
            raise ConfigError("--address joins a Ray cluster: it needs --backend ray")
        if self.brake not in BRAKES:
            raise ConfigError(f"brake must be one of {BRAKES}, not '{self.brake}'")

    def loop_config(self) -> TrainConfig:
        """The loop's budget and cadence: a generation per step, each logged and saved."""
        return TrainConfig(steps=self.generations, minutes=self.minutes, seed=self.seed,
                           log_every=1, checkpoint_every=1)  # fmt: skip


# --- playing candidates, in worker processes -------------------------------------------------
WORKER: dict = {}


def init_worker(
    vae: nn.Module, m: MDNRNN | None, initial_z: np.ndarray | None, game: str = "carracing"
) -> None:
    """Keep V, M and the game (given, pickled into each worker) for the jobs; one torch thread
    each."""
    torch.set_num_threads(1)
    WORKER.update(vae=vae.eval(), m=None if m is None else m.eval(), initial_z=initial_z,
                  game=game_of_data(game))  # fmt: skip


def play_job(job: tuple):
    """("real", params, seed, max_steps, patience, brake) -> (return, steps) of one episode;
    ("dream", [params, ...], seeds, tau, max_steps, brake) -> ((p, R) returns, steps);
    ("record", params, seed, max_steps, brake, explore, path) -> (return, steps) of an episode
    stored at path (`iteration.record`)."""
    game, m = WORKER["game"], WORKER["m"]
    if job[0] == "record":
        _, params, seed, max_steps, brake, explore, path = job
        return iteration.record(WORKER["vae"], m, params, seed, max_steps, brake, game, explore,
                                Path(path))  # fmt: skip
    if job[0] == "dream":
        _, candidates, seeds, tau, max_steps, brake = job
        controllers = [LinearController(c, m.cfg.latent_dim, reads_of_m(m, game), brake,
                                        game.output) for c in candidates]  # fmt: skip
        return dream_scores(m, WORKER["initial_z"], controllers, seeds, tau, max_steps, game)
    _, params, seed, max_steps, patience, brake = job
    return real_return(WORKER["vae"], m, params, seed, max_steps, patience, brake, game)


class Players:
    """Plays jobs with V and M: in `workers` spawned processes, or here when `workers` is 1.
    `close()` stops the processes."""

    def __init__(
        self, vae: nn.Module, m: MDNRNN | None, initial_z, workers: int, game: str = "carracing"
    ):
        self.pool, self.workers = None, workers
        if workers > 1:
            ctx = mp.get_context("spawn")
            self.pool = ctx.Pool(workers, init_worker, (vae, m, initial_z, game))
        else:
            init_worker(vae, m, initial_z, game)

    def map(self, jobs: list[tuple]):
        """Each job's result (`play_job`), in order, as they finish."""
        return self.pool.imap(play_job, jobs) if self.pool is not None else map(play_job, jobs)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.terminate()


# --- the search as the loop's state, batches and step ------------------------------------------
def track_seeds(cfg: SearchConfig, generation: int) -> list[int]:
    """The tracks every candidate of `generation` plays."""
    base = cfg.seed * TRACK_SEED_STRIDE + generation * cfg.rollouts
    return [base + j for j in range(cfg.rollouts)]


class Tracks:
    """The loop's BatchSource: generation g's batch is the seeds of the tracks it plays."""

    def __init__(self, cfg: SearchConfig):
        self.cfg = cfg

    def batch(self, step: int) -> dict[str, torch.Tensor]:
        return {"seeds": torch.tensor(track_seeds(self.cfg, step))}


class SearchState:
    """What the loop saves of a search: the generation (the loop's step), the CMA-ES mean and
    step size, and the best candidate so far. Reads checkpoints from before the loop ran the
    search too (they had no "step" or "seconds")."""

    def __init__(self, cfg: SearchConfig, size: int):
        self.cfg, self.size = cfg, size
        self.step, self.seconds = 0, 0.0
        self.best_return, self.best_params = -np.inf, np.zeros(size)
        self.es = self._strategy(np.zeros(size), cfg.sigma0)

    def _strategy(self, mean: np.ndarray, sigma: float):
        # Here, not at the top: cma is optional (the `rl` extra) and its import takes 1.3 s
        # (scipy.stats, matplotlib), which every `genlab` command would otherwise pay.
        import cma

        options = {"popsize": self.cfg.popsize, "seed": self.cfg.seed + self.step + 1,
                   "verbose": -9}  # fmt: skip
        return cma.CMAEvolutionStrategy(mean, sigma, options)

    def prepare(self) -> None:
        """Nothing to synchronise: the search runs in one process (its workers play)."""

    def state_dict(self) -> dict:
        return {"step": self.step, "seconds": self.seconds, "generation": self.step,
                "mean": torch.from_numpy(self.es.mean.copy()), "sigma": float(self.es.sigma),
                "best_return": self.best_return,
                "best_params": torch.from_numpy(np.asarray(self.best_params).copy())}  # fmt: skip

    def load_state_dict(self, sd: dict) -> None:
        mean = sd["mean"].numpy()
        if len(mean) != self.size:
            raise ConfigError(f"the saved search holds a controller of {len(mean)} parameters; "
                              f"this V and M need {self.size}")  # fmt: skip
        self.step, self.seconds = int(sd["generation"]), float(sd.get("seconds", 0.0))
        self.best_return, self.best_params = float(sd["best_return"]), sd["best_params"].numpy()
        self.es = self._strategy(mean, float(sd["sigma"]))


def play_generation(
    cfg: SearchConfig, players: Players, candidates: list, seeds: list[int]
) -> tuple[np.ndarray, np.ndarray | None, int]:
    """Every candidate on every seed: (P, R) returns, (P, R) episode lengths (None in the dream,
    whose batches count steps only) and the (real or dream) steps played. The dream's jobs are
    the candidates in `cfg.workers` shares, so a generation's dreams depend on the seed and the
    worker count only, on either backend."""
    if cfg.dream:
        shares = np.array_split(np.arange(len(candidates)), min(cfg.workers, len(candidates)))
        jobs = [("dream", [candidates[i] for i in share], seeds, cfg.tau, cfg.max_steps,
                 cfg.brake) for share in shares]  # fmt: skip
        results = list(players.map(jobs))
        return np.concatenate([r for r, _ in results]), None, sum(n for _, n in results)
    jobs = [("real", c, s, cfg.max_steps, cfg.patience, cfg.brake)
            for c in candidates for s in seeds]  # fmt: skip
    results = np.array(list(players.map(jobs)))  # (P * R, 2)
    shape = (len(candidates), len(seeds))
    lengths = results[:, 1].reshape(shape)
    return results[:, 0].reshape(shape), lengths, int(lengths.sum())


def fitness(
    returns: np.ndarray, lengths: np.ndarray | None, max_steps: int, ties_by_length: bool
) -> np.ndarray:
    """What CMA-ES ranks candidates by: (P, R) returns and lengths -> (P,). Their mean return;
    with `ties_by_length` (and lengths), plus the mean length / (R * (max_steps + 1)): less
    than 1 / R, the smallest gap between two mean returns of a game that pays whole points
    (Pong), so length only orders candidates of equal return."""
    score = returns.mean(1)
    if not ties_by_length or lengths is None:
        return score
    return score + lengths.mean(1) / (returns.shape[1] * (max_steps + 1))


def search_step(cfg: SearchConfig, players: Players):
    """One generation: ask CMA-ES for candidates, play each on the batch's tracks, tell it their
    `fitness`; returns the generation's metrics (with the mean episode length in the real game)."""

    ties_by_length = game_of_data(cfg.game).ties_by_length

    def step(state: SearchState, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        t0 = time.monotonic()
        candidates = state.es.ask()
        played, lengths, steps = play_generation(cfg, players, candidates,
                                                 batch["seeds"].tolist())  # fmt: skip
        returns = played.mean(1)  # (P,)
        score = fitness(played, lengths, cfg.max_steps, ties_by_length)
        state.es.tell(candidates, (-score).tolist())
        if returns.max() > state.best_return:
            state.best_return = float(returns.max())
            state.best_params = np.asarray(candidates[returns.argmax()])
        return {"mean_return": float(returns.mean()), "max_return": float(returns.max()),
                "min_return": float(returns.min()), "sigma": float(state.es.sigma),
                "best_return": state.best_return, "env_steps": float(steps),
                "steps_per_second": float(steps / (time.monotonic() - t0)),
                **({} if lengths is None else {"mean_length": float(lengths.mean())})}  # fmt: skip

    return step
