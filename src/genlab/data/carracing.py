"""CarRacing rollouts on disk (collected by `genlab worldmodels collect`): one file per episode,
`episode_{i:05d}.npz`, written atomically; every tenth episode is held out for testing.

    frames  (T+1, 64, 64, 3) uint8 the observation before each action and the one after the last
    actions (T, 3) float32         steer in [-1, 1], gas and brake in [0, 1]
    rewards (T,) float32           the reward that followed each action
    dones   (T,) bool              True on the last step if the episode terminated (not cut)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
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


def episode_path(root: Path, i: int) -> Path:
    return Path(root) / f"episode_{i:05d}.npz"


def save_episode(episode: Episode, path: Path) -> None:
    """Atomically: to a temporary name, then renamed."""
    tmp = path.with_name(path.name + ".partial.npz")
    np.savez_compressed(tmp, frames=episode.frames, actions=episode.actions,
                        rewards=episode.rewards, dones=episode.dones)  # fmt: skip
    os.replace(tmp, path)


def load_episode(path: Path) -> Episode:
    try:
        with np.load(path) as f:
            return Episode(f["frames"], f["actions"], f["rewards"], f["dones"])
    except (OSError, ValueError, KeyError) as e:
        raise DataError(f"cannot read rollout {path}: {e} (delete it and collect again)") from e


def is_test_episode(k: int, n: int) -> bool:
    """Held out for testing V and M: every tenth episode (with fewer than ten, the last)."""
    return k % 10 == 9 or (n < 10 and k == n - 1)


def carracing_root(data_dir: str | Path | None = None) -> Path:
    """`<root>/carracing` of the first data root (--data-dir, $GENLAB_DATA, cache) that holds
    collected episodes; the first candidate if none does (so errors name it)."""
    roots = [r / "carracing" for r in data_roots(data_dir)]
    return next((r for r in roots if r.is_dir() and any(r.glob("episode_*.npz"))), roots[0])


def episode_files(root: Path) -> list[Path]:
    """The collected episodes in `root`, in order; an error naming the folder if none."""
    files = sorted(Path(root).glob("episode_*[0-9].npz"))
    if not files:
        raise DataError(f"no CarRacing rollouts in {root}: run `genlab worldmodels collect` first")
    return files
