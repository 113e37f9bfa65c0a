"""Environments by name: "minatar:breakout", "atari:Breakout", "gym:CartPole-v1",
"paint:mnist-target-l2" (SPIRAL's canvas, `genlab.envs.paint_tasks`), "vizdoom:TakeCover"
(`genlab.envs.vizdoom`).

Every environment has a discrete (or dict-of-discrete) action space and an observation that is a
vector (float32) or an image stack (uint8, channels first). `EnvSpec` tells an agent what it
needs to build its network; `make_env` builds one instance, with a time limit (truncation, not
termination) so no episode runs forever.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from genlab.envs.atari import AtariEnv
from genlab.envs.minatar import MinAtarEnv
from genlab.envs.paint_tasks import PaintTask
from genlab.envs.vizdoom import VizDoomEnv
from genlab.errors import ConfigError

# Published reference scores for normalising Atari returns: (random, human), Mnih et al. 2015.
ATARI_RANDOM_HUMAN = {
    "Asterix": (210.0, 8503.3),
    "BeamRider": (363.9, 16926.5),
    "Breakout": (1.7, 30.5),
    "Enduro": (0.0, 860.5),
    "MsPacman": (307.3, 6951.6),
    "Pong": (-20.7, 14.6),
    "Qbert": (163.9, 13455.0),
    "Seaquest": (68.4, 42054.7),
    "SpaceInvaders": (148.0, 1668.7),
}
# agent steps before truncation (VizDoom: the World Models paper's limit for Take Cover)
MAX_STEPS = {"minatar": 10_000, "atari": 27_000, "paint": 1_000, "vizdoom": 2_100}
FAMILIES = ("minatar", "atari", "gym", "paint", "vizdoom")


@dataclass(frozen=True)
class EnvSpec:
    name: str  # as given, e.g. "minatar:breakout"
    family: str  # one of FAMILIES
    obs_shape: tuple[int, ...]
    obs_dtype: str  # "uint8" or "float32"
    obs_scale: float  # the network multiplies observations by this (1/255 for Atari pixels)
    action_sizes: tuple[int, ...]  # one entry per action head; a Discrete space has one
    action_names: tuple[str, ...]  # () for a plain Discrete space, else the dict's keys in order

    @property
    def reference_scores(self) -> tuple[float, float] | None:
        """(random, human) returns where published, for human-normalised scores."""
        return (
            ATARI_RANDOM_HUMAN.get(self.name.split(":", 1)[1]) if self.family == "atari" else None
        )

    def normalised(self, ret: float) -> float | None:
        ref = self.reference_scores
        return None if ref is None else (ret - ref[0]) / (ref[1] - ref[0])


def _split(name: str) -> tuple[str, str]:
    family, sep, game = name.partition(":")
    if not sep or family not in FAMILIES or not game:
        raise ConfigError(
            f"environment '{name}' should be FAMILY:NAME with FAMILY one of {', '.join(FAMILIES)} "
            "(e.g. minatar:breakout, atari:Breakout, gym:CartPole-v1)"
        )
    return family, game


def make_env(name: str, channels: int | None = None, max_steps: int | None = None) -> gym.Env:
    """One environment. `channels` pads MinAtar observations to a shared shape, for several games
    played by one agent (they then also share the full action set); `max_steps` overrides the
    family's time limit. An unknown name is a ConfigError listing what exists (or what is close)."""
    try:
        return _make(name, channels, max_steps)
    except gym.error.Error:  # unknown id, version or namespace; a missing ROM
        raise ConfigError(f"no environment '{name}': {unknown_hint(name)}") from None


def unknown_hint(name: str) -> str:
    """What exists near `name` in its family (gymnasium's registry, ALE's games)."""
    family, game = _split(name)
    if family == "atari":
        games = sorted(
            {i.split("/")[1].split("-")[0] for i in gym.registry if i.startswith("ALE/")}
        )
        pool = games
    else:
        pool = sorted(i for i in gym.registry if not i.startswith("ALE/"))
    close = difflib.get_close_matches(game, pool, n=5, cutoff=0.5)
    if close:
        return f"did you mean {', '.join(close)}?"
    return f"{len(pool)} exist, e.g. {', '.join(pool[:8])}" if pool else "none are installed"


def _make(name: str, channels: int | None = None, max_steps: int | None = None) -> gym.Env:
    family, game = _split(name)
    if family == "minatar":
        env: gym.Env = MinAtarEnv(game, channels, full_action_set=channels is not None)
    elif family == "atari":
        env = AtariEnv(game)
    elif family == "paint":  # episodes end by themselves after episode_length strokes
        env = PaintTask(game)
    elif family == "vizdoom":
        env = VizDoomEnv(game)
    else:  # gymnasium's own registry; its TimeLimit comes with the spec
        limit = {"max_episode_steps": max_steps} if max_steps else {}
        return gym.make(game, render_mode="rgb_array", **limit)
    env = gym.wrappers.TimeLimit(env, max_steps or MAX_STEPS[family])
    return env


def env_spec(name: str, env: gym.Env) -> EnvSpec:
    family, _ = _split(name)
    obs, act = env.observation_space, env.action_space
    if not isinstance(obs, spaces.Box):
        raise ConfigError(f"{name}: observations must be a Box, got {obs}")
    if isinstance(act, spaces.Discrete):
        sizes, names = (int(act.n),), ()
    elif isinstance(act, spaces.Dict) and all(isinstance(s, spaces.Discrete) for s in act.values()):
        names = tuple(act.keys())
        sizes = tuple(int(act[k].n) for k in names)
    else:
        raise ConfigError(f"{name}: actions must be Discrete or a Dict of Discrete, got {act}")
    image = obs.dtype == np.uint8
    scale = 1 / 255 if family in ("atari", "paint", "vizdoom") else 1.0
    return EnvSpec(name, family, tuple(obs.shape), "uint8" if image else "float32", scale,
                   sizes, names)  # fmt: skip


def specs(names: list[str]) -> tuple[list[EnvSpec], int | None]:
    """The specs of several environments that one agent will play, and the MinAtar channel
    count that makes their observations share a shape (None if no padding is needed)."""
    channels = None
    if len(names) > 1 and all(_split(n)[0] == "minatar" for n in names):
        channels = max(make_env(n).observation_space.shape[0] for n in names)
    out = []
    for n in names:
        env = make_env(n, channels)
        out.append(env_spec(n, env))
        env.close()
    first = out[0]
    for s in out[1:]:
        if (s.obs_shape, s.action_sizes) != (first.obs_shape, first.action_sizes):
            raise ConfigError(
                f"one agent cannot play both {first.name} (observations {first.obs_shape}, "
                f"actions {first.action_sizes}) and {s.name} ({s.obs_shape}, {s.action_sizes})"
            )
    return out, channels
