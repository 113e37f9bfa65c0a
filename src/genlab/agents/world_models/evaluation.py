"""Stage 5, `eval`: a searched controller in the real game, over tracks the search never used
(whole episodes, no early stop), as mean +- std return; and GIFs of a real episode and of a
dream that starts from the same first frame, decoded through V."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from genlab.agents.world_models.agent import WorldModelPolicy
from genlab.agents.world_models.controller import LinearController
from genlab.agents.world_models.dream import DreamEnv
from genlab.agents.world_models.mdnrnn import MDNRNN
from genlab.agents.world_models.rollouts import play
from genlab.agents.world_models.search import Players, SearchConfig
from genlab.viz.images import write_gif

EVAL_SEED = 900_000_000  # evaluation tracks: far from every track the search plays


def evaluate_controller(
    cfg: SearchConfig, params: np.ndarray, vae: nn.Module, m: MDNRNN | None,
    episodes: int = 20, workers: int = 2, max_steps: int = 1000, progress: bool = True,
) -> dict:  # fmt: skip
    """Mean +- std return of controller `params` (searched with `cfg`) for V and M over
    `episodes` unseen tracks in the real game."""
    jobs = [(params, EVAL_SEED + i, False, cfg.tau, max_steps, 0, cfg.brake)
            for i in range(episodes)]  # fmt: skip
    t0 = time.monotonic()
    players = Players(vae, m, None, workers)
    try:
        results = list(tqdm(players.map(jobs), total=episodes, desc="eval", unit="episode",
                            disable=not progress))  # fmt: skip
    finally:
        players.close()
    returns = np.array([r for r, _ in results])
    steps = sum(n for _, n in results)
    seconds = time.monotonic() - t0
    report = {
        "mean_return": float(returns.mean()), "std_return": float(returns.std()),
        "returns": [round(float(r), 1) for r in returns], "episodes": episodes,
        "memory": m is not None,
        "brake": cfg.brake,
        "trained_in": f"dream (tau {cfg.tau})" if cfg.dream else "real game",
        "env_steps": steps, "steps_per_second": round(steps / seconds, 1),
        "seconds": round(seconds, 1),
    }  # fmt: skip
    return report


@torch.no_grad()
def episode_gifs(
    cfg: SearchConfig, params: np.ndarray, vae: nn.Module, m: MDNRNN | None, out: Path,
    max_steps: int = 1000, every: int = 2,
) -> list[Path]:  # fmt: skip
    """`out`/real.gif: one unseen track (V's 64x64 view, every `every`-th frame); and, with M,
    dream.gif: the dream from that episode's first frame at the search's tau, decoded through
    V."""
    policy = WorldModelPolicy(vae, m, params, cfg.brake)
    episode = play(EVAL_SEED, max_steps, policy)
    out = Path(out)
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
