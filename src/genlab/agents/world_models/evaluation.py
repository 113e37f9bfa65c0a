"""Stage 5, `eval`: a searched controller in the real game, over tracks the search never used
(whole episodes, no early stop), as mean +- std return; and GIFs of a real episode and of a
dream that starts from the same first frame, decoded through V."""

from __future__ import annotations

import dataclasses
import json
import multiprocessing as mp
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from genlab.agents.world_models.agent import WorldModelPolicy
from genlab.agents.world_models.controller import LinearController
from genlab.agents.world_models.dream import DreamEnv
from genlab.agents.world_models.rollouts import play
from genlab.agents.world_models.search import SearchConfig, init_worker, play_job
from genlab.errors import RunError
from genlab.train.state import read_checkpoint
from genlab.viz.images import write_gif

EVAL_SEED = 900_000_000  # evaluation tracks: far from every track the search plays
CONTROLLERS = ("mean", "best")  # CMA-ES's final mean, or the best candidate it scored


def load_controller(run: Path, which: str = "mean") -> tuple[SearchConfig, np.ndarray, int]:
    """A `train-c` run's search config, controller parameters and generation."""
    path = Path(run) / "config.json"
    if not path.is_file():
        raise RunError(f"no controller search at {run} (missing {path})")
    if which not in CONTROLLERS:
        raise RunError(f"controller must be one of {CONTROLLERS}, not '{which}'")
    saved = json.loads(path.read_text())
    saved.setdefault("brake", "shift")  # searched before C's brake became the paper's clip
    fields = {f.name for f in dataclasses.fields(SearchConfig)}
    cfg = SearchConfig(**{k: v for k, v in saved.items() if k in fields})
    ck = read_checkpoint(run)
    params = (ck["mean"] if which == "mean" else ck["best_params"]).numpy()
    return cfg, params, int(ck["generation"])


def evaluate_controller(
    run: Path, episodes: int = 20, workers: int = 2, which: str = "mean", max_steps: int = 1000,
    progress: bool = True,
) -> dict:  # fmt: skip
    """Mean +- std return of the controller over `episodes` unseen tracks in the real game;
    also written to `run`/eval.json."""
    cfg, params, generation = load_controller(run, which)
    jobs = [(params, EVAL_SEED + i, False, cfg.tau, max_steps, 0, cfg.brake)
            for i in range(episodes)]  # fmt: skip
    t0 = time.monotonic()
    if workers > 1:
        with mp.get_context("spawn").Pool(
            workers, init_worker, (cfg.vae, cfg.mdnrnn, None)
        ) as pool:
            results = list(tqdm(pool.imap(play_job, jobs), total=episodes, desc="eval",
                                unit="episode", disable=not progress))  # fmt: skip
    else:
        init_worker(cfg.vae, cfg.mdnrnn, None)
        results = [play_job(j) for j in tqdm(jobs, desc="eval", unit="episode",
                                              disable=not progress)]  # fmt: skip
    returns = np.array([r for r, _ in results])
    steps = sum(n for _, n in results)
    seconds = time.monotonic() - t0
    report = {
        "mean_return": float(returns.mean()), "std_return": float(returns.std()),
        "returns": [round(float(r), 1) for r in returns], "episodes": episodes,
        "controller": which, "generation": generation, "memory": bool(cfg.mdnrnn),
        "brake": cfg.brake,
        "trained_in": f"dream (tau {cfg.tau})" if cfg.dream else "real game",
        "env_steps": steps, "steps_per_second": round(steps / seconds, 1),
        "seconds": round(seconds, 1),
    }  # fmt: skip
    (Path(run) / "eval.json").write_text(json.dumps(report, indent=2))
    return report


@torch.no_grad()
def episode_gifs(
    run: Path, which: str = "mean", max_steps: int = 1000, every: int = 2
) -> list[Path]:
    """`run`/pictures/real.gif: one unseen track (V's 64x64 view, every `every`-th frame); and,
    with M, dream.gif: the dream from that episode's first frame at the search's tau, decoded
    through V."""
    from genlab.runs import load_run

    cfg, params, _ = load_controller(run, which)
    vae = load_run(Path(cfg.vae))[2]
    m = load_run(Path(cfg.mdnrnn))[2] if cfg.mdnrnn else None
    policy = WorldModelPolicy(vae, m, params, cfg.brake)
    episode = play(EVAL_SEED, max_steps, policy)
    out = Path(run) / "pictures"
    written = [write_gif(list(episode.frames[::every]), out / "real.gif")]
    if m is not None:
        env = DreamEnv(m, policy.latents[0][None], cfg.tau, max_steps)
        controller = LinearController(params, m.cfg.latent_dim, m.cfg.hidden, brake=cfg.brake)
        obs, _ = env.reset(seed=0)
        latents, done = [obs[: m.cfg.latent_dim]], False
        while not done:
            obs, _, terminated, truncated, _ = env.step(controller(obs))
            latents.append(obs[: m.cfg.latent_dim])
            done = terminated or truncated
        images = vae.mean_image(torch.from_numpy(np.stack(latents[::every])))  # (T, 3, 64, 64)
        frames = (images.permute(0, 2, 3, 1) * 255).round().byte().numpy()
        written.append(write_gif(list(frames), out / "dream.gif"))
    return written
