"""The games World Models is built for, and stage 1, `collect`, their random-policy episodes.

A `Game` says what each stage needs of its environment: where its episodes live (DIR/data/
`folder`, also V's `--data` name), how one is played, the paper's sizes of V and M for it, what
C emits, what C reads of M, and what the dream pays:

    CarRacing  V z 32, M 256 units; C (steer, gas, brake) on [z, h]; the dream pays M's reward
    Take Cover V z 64, M 512 units; C (left, stay, right) on [z, h, c]; the dream pays 1 per
               step until M's done head says the agent died (the paper's section 4)
    Pong       V z 32 (binary 64x64 frames, one channel), M 256 units; C (down, stay, up) on
               [z, h]; V may be a PixelVAE (a PixelCNN decoder: the world-model talk's test)

Episode i of a collection is played with seed `seed * 100_003 + i` (`episode_seed`), so any
episode can be replayed exactly. Workers are separate processes (the games are single-threaded).
"""

from __future__ import annotations

import multiprocessing as mp
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from genlab.agents.world_models import doom, pong, rollouts
from genlab.data.episodes import Episode, episode_path, save_episode
from genlab.errors import ConfigError


@dataclass(frozen=True)
class Game:
    env: str  # the --env name
    folder: str  # DIR/data/<folder>; V's --data
    play: Callable[..., Episode]  # (seed, max_steps[, policy, patience]) -> Episode
    max_steps: int  # an episode's limit
    output: str = ""  # what C emits (controller.OUTPUTS); "" for a game without a controller
    latent_dim: int = 32  # V's z (the paper's)
    hidden: int = 256  # M's LSTM units (the paper's)
    cell_state: bool = False  # C reads M's cell state c beside h
    survival: bool = False  # the dream pays 1 per step alive instead of M's reward head
    channels: int = 3  # the frames' colour channels
    # CMA-ES ranks candidates of equal return by how long their episodes lasted (search.fitness)
    ties_by_length: bool = False
    # the random policy's actions, (rng, steps) -> (steps, A) float32: its exploration when a
    # controller collects episodes (`iteration.record`)
    random_actions: Callable[[np.random.Generator, int], np.ndarray] = rollouts.brownian_actions


CARRACING = Game("gym:CarRacing-v3", "carracing", rollouts.play, 1000, output="car")
DOOM = Game(doom.ENV, "doom", doom.play, doom.MAX_STEPS, output="doom", latent_dim=64,
            hidden=512, cell_state=True, survival=True, random_actions=doom.random_moves)  # fmt: skip
# Pong's return is sparse: at first every candidate loses 21-0 (a flat landscape for CMA-ES),
# but one that returns the ball makes the game last longer
PONG = Game("atari:Pong", "pong", pong.play, 1000, output="pong", channels=1,
            ties_by_length=True, random_actions=pong.random_moves)  # fmt: skip
GAMES = {g.env: g for g in (CARRACING, DOOM, PONG)}  # by --env name


def game(env: str) -> Game:
    """The game of an --env name; a ConfigError listing them otherwise."""
    if env not in GAMES:
        raise ConfigError(f"--env {env}: world models are built for {', '.join(GAMES)}")
    return GAMES[env]


def game_of_data(folder: str) -> Game:
    """The game whose episodes are in data folder `folder` (V's --data)."""
    found = [g for g in GAMES.values() if g.folder == folder]
    if not found:
        names = ", ".join(g.folder for g in GAMES.values())
        raise ConfigError(f"'{folder}' is not a world-model game's data ({names})")
    return found[0]


def episode_seed(seed: int, i: int) -> int:
    """The game seed of episode i of a collection drawn with `seed` (a random policy's or a
    controller's): distinct for every episode of a data folder."""
    return seed * 100_003 + i


def _collect_one(args: tuple[str, int, int, int, str]) -> int:
    root, i, seed, max_steps, env = args
    episode = GAMES[env].play(episode_seed(seed, i), max_steps)
    save_episode(episode, episode_path(Path(root), i))
    return len(episode.actions)


def collect(
    root: Path, episodes: int, workers: int = 2, max_steps: int | None = None, seed: int = 0,
    progress: bool = True, env: str = "gym:CarRacing-v3",
) -> dict:  # fmt: skip
    """Episodes 0 .. episodes-1 of `env` (a `GAMES` name) into `root` (those already there are
    kept), `workers` processes at a time, each cut at `max_steps` (None: the game's limit).
    Returns {"episodes", "new_episodes", "new_steps", "seconds", "steps_per_second"}."""
    max_steps = max_steps or game(env).max_steps
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    todo = [(str(root), i, seed, max_steps, env) for i in range(episodes)
            if not episode_path(root, i).is_file()]  # fmt: skip
    t0 = time.monotonic()
    steps = 0
    with tqdm(total=len(todo), desc="collect", unit="episode", disable=not progress) as bar:
        if workers <= 1:
            for job in todo:
                steps += _collect_one(job)
                bar.update()
        else:
            with mp.get_context("spawn").Pool(workers) as pool:
                for n in pool.imap_unordered(_collect_one, todo, chunksize=4):
                    steps += n
                    bar.update()
    seconds = time.monotonic() - t0
    return {"episodes": episodes, "new_episodes": len(todo), "new_steps": steps,
            "seconds": round(seconds, 1),
            "steps_per_second": round(steps / seconds, 1) if seconds > 0 else None}  # fmt: skip
