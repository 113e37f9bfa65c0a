"""What a trained agent scores, and what it looks like playing: returns over whole episodes
(sampling its actions, as it was trained) and GIFs of episodes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from genlab.agents.impala.agent import ImpalaAgent
from genlab.agents.impala.config import ImpalaConfig
from genlab.envs.vector import EnvBatch
from genlab.errors import ConfigError
from genlab.viz.images import write_gif

EVAL_SEED = 4242
GIF_MAX_STEPS = 1500


@torch.no_grad()
def play(
    model: ImpalaAgent, task: int, n: int, seed: int, frames: bool = False
) -> tuple[list[float], list[list[np.ndarray]]]:
    """Play the first episode of `n` environments of task `task` to its end (all in lock-step);
    returns their returns and, if `frames`, each episode's rendered RGB frames."""
    cfg, net = model.cfg, model.net
    envs = EnvBatch(cfg.tasks, [task] * n, EVAL_SEED + seed, model.channels)
    g = torch.Generator().manual_seed(seed)
    obs, first = torch.from_numpy(envs.reset()), torch.ones(n, dtype=torch.bool)
    state = net.initial_state(n)
    returns: list[float | None] = [None] * n
    pictures = [[e.render()] for e in envs.envs] if frames else []
    while any(r is None for r in returns):
        features, state = net.core(obs[None], first[None], state)
        actions, _ = net.heads.sample(features[0], g)
        step = envs.step(actions.numpy())
        for e in step.episodes:
            if returns[e.slot] is None:
                returns[e.slot] = e.ret
        if frames:
            for i, env in enumerate(envs.envs):
                if returns[i] is None and len(pictures[i]) < GIF_MAX_STEPS:
                    pictures[i].append(env.render())
        obs = torch.from_numpy(step.obs)
        first = torch.from_numpy(step.terminated | step.truncated)
    envs.close()
    return returns, pictures  # type: ignore[return-value]


def evaluate_agent(
    model: ImpalaAgent, options: ImpalaConfig, data, episodes: int = 30, seed: int = 0, **_
) -> dict:
    """Mean and standard deviation of the return over `episodes` episodes of each task (and
    human-normalised scores where published reference scores exist)."""
    model.eval()
    out: dict = {"episodes": episodes}
    per_task = {}
    all_returns = []
    for i, spec in enumerate(model.specs):
        returns, _ = play(model, i, episodes, seed)
        all_returns += returns
        r = np.asarray(returns)
        row = {"mean_return": float(r.mean()), "std_return": float(r.std())}
        if (norm := spec.normalised(row["mean_return"])) is not None:
            row["human_normalised"] = norm
        per_task[spec.name] = row
    r = np.asarray(all_returns)
    out.update(mean_return=float(r.mean()), std_return=float(r.std()))
    if len(model.specs) > 1:
        out["tasks"] = per_task
    else:
        out.update({k: v for k, v in per_task[model.specs[0].name].items() if "return" not in k})
    return out


def episode_gifs(model: ImpalaAgent, options: ImpalaConfig, data, out: Path, seed: int = 0) -> list:
    """pictures/episode-<task>.gif: one episode of each task (at most GIF_MAX_STEPS steps)."""
    return [
        _episode_gif(model, i, Path(out) / f"episode-{spec.name.replace(':', '-')}.gif", seed)
        for i, spec in enumerate(model.specs)
    ]


def _episode_gif(model: ImpalaAgent, task: int, path: Path, seed: int) -> Path:
    _, pictures = play(model, task, 1, seed, frames=True)
    return write_gif(pictures[0], path)


def sample_gif(model: ImpalaAgent, options: ImpalaConfig, n: int, out: Path, seed: int = 0) -> Path:
    """`genlab sample RUN --out FILE.gif`: one episode of the first task."""
    if Path(out).suffix.lower() != ".gif" or Path(out).is_dir():
        raise ConfigError(f"--out {out}: an agent's episode is written as a GIF, e.g. episode.gif")
    return _episode_gif(model, 0, Path(out), seed)
