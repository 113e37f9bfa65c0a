"""Rollouts on disk (collected by `genlab worldmodels collect`), one folder per game under a
data root (`carracing/`, `doom/`, `pong/`): one file per episode, `episode_{i:05d}.npz`, written
atomically; every tenth episode is held out for testing.

    frames  (T+1, 64, 64, C) uint8 the observation before each action and the one after the last
                                   (CarRacing: C = 3, colour; Pong: C = 1, 0 or 255)
    actions (T, ...)               CarRacing (T, 3) float32 steer, gas, brake; Doom and Pong
                                   (T, 1) float32, the move in {-1, 0, 1} (Pong episodes
                                   collected before 2026-12-06: (T,) int64, ALE's actions)
    rewards (T,) float32           the reward that followed each action
    dones   (T,) bool              True on the last step if the episode terminated (not cut)
    label_* (T+1, ...) float32     optional per-frame facts read from the emulator (Pong: the
                                   ball's and paddles' positions), kept in `Episode.labels`
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from genlab.data.resolve import data_roots
from genlab.errors import DataError


@dataclass(frozen=True)
class Episode:
    frames: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    dones: np.ndarray
    labels: dict[str, np.ndarray] = field(default_factory=dict)


def episode_path(root: Path, i: int) -> Path:
    return Path(root) / f"episode_{i:05d}.npz"


def save_episode(episode: Episode, path: Path) -> None:
    """Atomically: to a temporary name, then renamed."""
    tmp = path.with_name(path.name + ".partial.npz")
    labels = {f"label_{k}": v for k, v in episode.labels.items()}
    np.savez_compressed(tmp, frames=episode.frames, actions=episode.actions,
                        rewards=episode.rewards, dones=episode.dones, **labels)  # fmt: skip
    os.replace(tmp, path)


def load_episode(path: Path) -> Episode:
    try:
        with np.load(path) as f:
            labels = {k[len("label_") :]: f[k] for k in f.files if k.startswith("label_")}
            return Episode(f["frames"], f["actions"], f["rewards"], f["dones"], labels)
    except (OSError, ValueError, KeyError) as e:
        raise DataError(f"cannot read rollout {path}: {e} (delete it and collect again)") from e


def is_test_episode(k: int, n: int) -> bool:
    """Held out for testing V and M: every tenth episode (with fewer than ten, the last)."""
    return k % 10 == 9 or (n < 10 and k == n - 1)


def episodes_root(game: str, data_dir: str | Path | None = None) -> Path:
    """`<root>/<game>` (carracing, pong) of the first data root (--data-dir, $GENLAB_DATA, cache)
    that holds collected episodes; the first candidate if none does (so errors name it)."""
    roots = [r / game for r in data_roots(data_dir)]
    return next((r for r in roots if r.is_dir() and any(r.glob("episode_*.npz"))), roots[0])


def episode_files(root: Path) -> list[Path]:
    """The collected episodes in `root`, in order; an error naming the folder if none."""
    files = sorted(Path(root).glob("episode_*[0-9].npz"))
    if not files:
        raise DataError(f"no rollouts in {root}: run `genlab worldmodels collect` first")
    return files
