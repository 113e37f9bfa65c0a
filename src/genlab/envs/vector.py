"""A batch of environments stepped in lock-step on NumPy arrays, resetting each one as its
episode ends (so the batch never waits), and reporting finished episodes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
from gymnasium import spaces

from genlab.envs.registry import make_env


class Episode(NamedTuple):
    slot: int  # which environment of the batch
    task: int  # index into the batch's task names
    ret: float  # undiscounted, unclipped return
    length: int  # agent steps


@dataclass
class Step:
    obs: np.ndarray  # (E, ...) the next observation; a new episode's first where one ended
    reward: np.ndarray  # (E,) float32
    terminated: np.ndarray  # (E,) bool: a true end (no value after it)
    truncated: np.ndarray  # (E,) bool: cut by a time limit (the return goes on in principle)
    final_obs: dict[int, np.ndarray] = field(default_factory=dict)  # ended env -> its last obs
    episodes: list[Episode] = field(default_factory=list)  # those that ended at this step


class EnvBatch:
    """`tasks[i]` names the environment of slot i (several names: multi-task). Slot i is seeded
    with seed * 10_007 + i on its first reset, so a batch replays exactly under the same seed."""

    def __init__(self, tasks: list[str], slots: list[int], seed: int, channels: int | None = None):
        self.names = tasks
        self.task = np.asarray(slots, np.int64)  # (E,) index into `tasks`
        self.envs = [make_env(tasks[t], channels) for t in slots]
        self.seed = seed
        self.returns = np.zeros(len(slots))
        self.lengths = np.zeros(len(slots), np.int64)
        space = self.envs[0].action_space
        # a Dict space's actions go to the environment as {name: int}, a Discrete one's as int
        self.action_names = tuple(space.keys()) if isinstance(space, spaces.Dict) else ()

    def __len__(self) -> int:
        return len(self.envs)

    def reset(self) -> np.ndarray:
        return np.stack(
            [env.reset(seed=self.seed * 10_007 + i)[0] for i, env in enumerate(self.envs)]
        )

    def _env_action(self, a: np.ndarray):
        return (
            {k: int(v) for k, v in zip(self.action_names, a, strict=True)}
            if self.action_names
            else int(a[0])
        )

    def step(self, actions: np.ndarray) -> Step:
        """actions (E, H) int: one entry per action head."""
        n = len(self.envs)
        out = Step([], np.zeros(n, np.float32), np.zeros(n, bool), np.zeros(n, bool))
        obs = []
        for i, env in enumerate(self.envs):
            o, r, term, trunc, _ = env.step(self._env_action(actions[i]))
            out.reward[i], out.terminated[i], out.truncated[i] = r, term, trunc and not term
            self.returns[i] += r
            self.lengths[i] += 1
            if term or trunc:
                out.final_obs[i] = o
                out.episodes.append(
                    Episode(i, int(self.task[i]), float(self.returns[i]), int(self.lengths[i]))
                )
                self.returns[i], self.lengths[i] = 0.0, 0
                o, _ = env.reset()
            obs.append(o)
        out.obs = np.stack(obs)
        return out

    def close(self) -> None:
        for env in self.envs:
            env.close()
