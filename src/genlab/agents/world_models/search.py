"""Stage 4, `train-c`: C's parameters searched by CMA-ES (Hansen 2016; the `cma` package), each
candidate scored by its mean return over a few episodes played in parallel worker processes,
in the real CarRacing or in the dream (M at temperature tau).

Every candidate of a generation plays the same tracks (a fair comparison); the tracks change
every generation. The run directory holds config.json, metrics.jsonl (one line per generation)
and checkpoint.pt (genlab's atomic format: the search distribution's mean and step size, the
best candidate so far and the generation). Resuming restarts CMA-ES from the saved mean and step
size with a fresh covariance (its adaptation is not saved: the format stores tensors only).
"""

from __future__ import annotations

import dataclasses
import json
import multiprocessing as mp
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from genlab.agents.world_models.agent import dream_return, n_params, real_return
from genlab.agents.world_models.controller import BRAKES
from genlab.agents.world_models.dream import check_dream
from genlab.data.cache import atomic_torch_save
from genlab.errors import ConfigError
from genlab.train.logger import MetricsLogger
from genlab.train.state import CHECKPOINT, read_checkpoint

TRACK_SEED_STRIDE = 1_000_003


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
    workers: int = 2
    max_steps: int = 1000
    patience: int = 100  # real game: stop an episode after this many steps without reward
    seed: int = 0
    brake: str = "clip"  # C's brake: "clip" (the paper's) or "shift" (see controller.py)

    def __post_init__(self) -> None:
        if self.generations is None and self.minutes is None:
            raise ConfigError("give the search a budget: generations and/or minutes")
        if self.dream and not self.mdnrnn:
            raise ConfigError("the dream is made of M: pass the M run (--mdnrnn)")
        if self.popsize < 2 or self.rollouts < 1 or self.workers < 1:
            raise ConfigError("popsize must be >= 2, rollouts and workers >= 1")
        if self.brake not in BRAKES:
            raise ConfigError(f"brake must be one of {BRAKES}, not '{self.brake}'")


WORKER: dict = {}


def init_worker(vae_run: str, m_run: str, initial_z: np.ndarray | None) -> None:
    """Load V and M once per worker process (one torch thread each)."""
    from genlab.runs import load_run

    torch.set_num_threads(1)
    WORKER["vae"] = load_run(Path(vae_run))[2]
    WORKER["m"] = load_run(Path(m_run))[2] if m_run else None
    WORKER["initial_z"] = initial_z


def play_job(job: tuple) -> tuple[float, int]:
    params, seed, dream, tau, max_steps, patience, brake = job
    if dream:
        return dream_return(WORKER["m"], WORKER["initial_z"], params, seed, tau, max_steps, brake)
    return real_return(WORKER["vae"], WORKER["m"], params, seed, max_steps, patience, brake)


def track_seeds(cfg: SearchConfig, generation: int) -> list[int]:
    """The tracks every candidate of `generation` plays."""
    base = cfg.seed * TRACK_SEED_STRIDE + generation * cfg.rollouts
    return [base + j for j in range(cfg.rollouts)]


def search(cfg: SearchConfig, out: Path, data_dir: str | None = None, progress: bool = True):
    """Run (or resume) the search into run directory `out`; returns the last generation's
    metrics."""
    import cma

    from genlab.agents.world_models.sequences import load_latents
    from genlab.runs import load_run

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if (out / CHECKPOINT).is_file() and (out / "config.json").is_file():
        was = json.loads((out / "config.json").read_text()).get("brake", "shift")
        if was != cfg.brake:
            raise ConfigError(f"{out} was searched with brake '{was}'; resume it with --brake "
                              f"{was} or search into a fresh directory")  # fmt: skip
    (out / "config.json").write_text(json.dumps({"stage": "train-c", **dataclasses.asdict(cfg)},
                                                indent=2))  # fmt: skip
    vae = load_run(Path(cfg.vae))[2]
    m = load_run(Path(cfg.mdnrnn))[2] if cfg.mdnrnn else None
    size = n_params(vae, m)
    initial_z = (
        load_latents(cfg.vae, data_dir, progress).first_latents().numpy() if cfg.dream else None
    )
    if cfg.dream:
        check_dream(m, initial_z, cfg.tau)
    generation, mean, sigma = 0, np.zeros(size), cfg.sigma0
    best = {"return": -np.inf, "params": np.zeros(size)}
    if (out / CHECKPOINT).is_file():
        ck = read_checkpoint(out)
        generation, mean, sigma = int(ck["generation"]), ck["mean"].numpy(), float(ck["sigma"])
        best = {"return": float(ck["best_return"]), "params": ck["best_params"].numpy()}
        if len(mean) != size:
            raise ConfigError(f"{out} holds a controller of {len(mean)} parameters; this V and M "
                              f"need {size}")  # fmt: skip
    es = cma.CMAEvolutionStrategy(mean, sigma, {"popsize": cfg.popsize, "seed": cfg.seed + generation + 1,
                                                "verbose": -9})  # fmt: skip
    logger = MetricsLogger(out)
    pool = None
    if cfg.workers > 1:
        pool = mp.get_context("spawn").Pool(cfg.workers, init_worker,
                                            (cfg.vae, cfg.mdnrnn, initial_z))  # fmt: skip
    else:
        init_worker(cfg.vae, cfg.mdnrnn, initial_z)
    run_map = pool.imap if pool is not None else map
    t0, row = time.monotonic(), {}
    bar = tqdm(desc="CMA-ES", unit="generation", disable=not progress, total=cfg.generations)
    try:
        while (cfg.generations is None or generation < cfg.generations) and (
            cfg.minutes is None or time.monotonic() - t0 < 60 * cfg.minutes
        ):
            t1 = time.monotonic()
            candidates = es.ask()
            seeds = track_seeds(cfg, generation)
            jobs = [(c, s, cfg.dream, cfg.tau, cfg.max_steps, cfg.patience, cfg.brake)
                    for c in candidates for s in seeds]  # fmt: skip
            results = np.array(list(run_map(play_job, jobs)))  # (P * R, 2)
            returns = results[:, 0].reshape(len(candidates), cfg.rollouts).mean(1)
            es.tell(candidates, (-returns).tolist())
            generation += 1
            if returns.max() > best["return"]:
                best = {
                    "return": float(returns.max()),
                    "params": np.asarray(candidates[returns.argmax()]),
                }
            seconds = time.monotonic() - t1
            row = {"mean_return": float(returns.mean()), "max_return": float(returns.max()),
                   "min_return": float(returns.min()), "sigma": float(es.sigma),
                   "best_return": best["return"], "env_steps": int(results[:, 1].sum()),
                   "steps_per_second": float(results[:, 1].sum() / seconds)}  # fmt: skip
            logger.log(generation, row)
            atomic_torch_save({"generation": generation, "mean": torch.from_numpy(es.mean.copy()),
                               "sigma": float(es.sigma), "best_return": best["return"],
                               "best_params": torch.from_numpy(best["params"].copy())},
                              out / CHECKPOINT)  # fmt: skip
            bar.update()
            bar.set_postfix(mean=f"{row['mean_return']:.1f}", best=f"{best['return']:.1f}")
    finally:
        bar.close()
        logger.close()
        if pool is not None:
            pool.terminate()
    return {"generation": generation, **row}
