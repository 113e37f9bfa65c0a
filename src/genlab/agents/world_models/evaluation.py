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
from genlab.agents.world_models.dream import DreamEnv, dream_scores, reads_of_m
from genlab.agents.world_models.games import Game, game_of_data
from genlab.agents.world_models.mdnrnn import MDNRNN
from genlab.agents.world_models.search import Players, SearchConfig
from genlab.viz.images import write_gif

EVAL_SEED = 900_000_000  # evaluation tracks: far from every track the search plays


def baseline_returns(game: Game, episodes: int, max_steps: int, policy_for=None) -> dict:
    """A policy without V or M (a paper's random baseline, a still paddle) on the games the
    controllers are evaluated on, EVAL_SEED + i: mean +- std return and each game's.
    `policy_for(i)` gives game i's policy (frame -> action); None plays the game's own random
    policy, drawn from the game's seed."""
    returns = []
    for i in range(episodes):
        policy = None if policy_for is None else policy_for(i)
        returns.append(float(game.play(EVAL_SEED + i, max_steps, policy).rewards.sum()))
    return {"mean_return": float(np.mean(returns)), "std_return": float(np.std(returns)),
            "returns": returns, "episodes": episodes}  # fmt: skip


def evaluate_controller(
    cfg: SearchConfig, params: np.ndarray, vae: nn.Module, m: MDNRNN | None,
    episodes: int = 20, workers: int = 2, max_steps: int = 1000, progress: bool = True,
    initial_z: np.ndarray | None = None,
) -> dict:  # fmt: skip
    """Mean +- std return of controller `params` (searched with `cfg`) for V and M over
    `episodes` unseen tracks or games in the real game; for a controller searched in the dream
    (given `initial_z`, where dreams start), also its mean return over as many unseen dreams
    at the search's tau: the paper's gap between what M promises and the game gives."""
    jobs = [("real", params, EVAL_SEED + i, max_steps, 0, cfg.brake) for i in range(episodes)]
    t0 = time.monotonic()
    players = Players(vae, m, None, workers, cfg.game)
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
    if cfg.dream and m is not None and initial_z is not None:
        game = game_of_data(cfg.game)
        controller = LinearController(params, m.cfg.latent_dim, reads_of_m(m, game), cfg.brake,
                                      game.output)  # fmt: skip
        seeds = [EVAL_SEED + i for i in range(episodes)]
        dreamed, _ = dream_scores(m, initial_z, [controller], seeds, cfg.tau, max_steps, game)
        report.update(dream_mean_return=float(dreamed.mean()),
                      dream_std_return=float(dreamed.std()))  # fmt: skip
    return report


@torch.no_grad()
def episode_gifs(
    cfg: SearchConfig, params: np.ndarray, vae: nn.Module, m: MDNRNN | None, out: Path,
    max_steps: int = 1000, every: int = 2,
) -> list[Path]:  # fmt: skip
    """`out`/real.gif: one unseen track or game (V's 64x64 view, every `every`-th frame); and,
    with M, dream.gif: that real episode (left) beside the dream from its first frame at the
    search's tau (right), decoded through V."""
    game = game_of_data(cfg.game)
    policy = WorldModelPolicy(vae, m, params, cfg.brake, game)
    episode = game.play(EVAL_SEED, max_steps, policy)
    out = Path(out)
    written = [write_gif(list(episode.frames[::every]), out / "real.gif")]
    if m is not None:
        env = DreamEnv(m, policy.latents[0][None], cfg.tau, max_steps, game)
        controller = LinearController(params, m.cfg.latent_dim, reads_of_m(m, game), cfg.brake,
                                      game.output)  # fmt: skip
        obs, _ = env.reset(seed=0)
        latents, done = [obs[: m.cfg.latent_dim]], False
        while not done:
            obs, _, terminated, truncated, _ = env.step(controller(obs))
            latents.append(obs[: m.cfg.latent_dim])
            done = terminated or truncated
        images = vae.mean_image(torch.from_numpy(np.stack(latents[::every])))  # (T, 3, 64, 64)
        frames = (images.permute(0, 2, 3, 1) * 255).round().byte().numpy()
        written.append(write_gif(beside(episode.frames[::every], frames), out / "dream.gif"))
    return written


def beside(left: np.ndarray, right: np.ndarray, gap: int = 2) -> list[np.ndarray]:
    """Two clips (T1, H, W, C) and (T2, H, W, C) uint8 -> max(T1, T2) frames (H, 2W + gap, C),
    left beside right with a white gap; the shorter clip holds its last frame (the episode
    that ended first stays on screen)."""
    n = max(len(left), len(right))
    pad = np.full((*left.shape[1:2], gap, left.shape[3]), 255, np.uint8)  # (H, gap, C)
    return [np.concatenate([left[min(t, len(left) - 1)], pad, right[min(t, len(right) - 1)]], 1)
            for t in range(n)]  # fmt: skip
