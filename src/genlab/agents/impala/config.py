"""IMPALA and A2C options. The defaults are the CPU setting for MinAtar; the papers' Atari
setting is in each docstring and in the README."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

from genlab.agents.impala.networks import TORSOS
from genlab.errors import ConfigError
from genlab.train.config import doc

BACKENDS = ("inline", "local")


@dataclass(frozen=True)
class ImpalaConfig:
    """IMPALA. Espeholt et al.'s Atari setting: --env atari:Breakout --torso resnet --lstm 256
    --unroll 20 --batch-size 32 --actors 48, RMSProp lr 6e-4 (here Adam: --lr 6e-4), entropy
    0.01, baseline 0.5, gamma 0.99, reward clipping to [-1, 1], gradient norm clip 40. genlab's
    default learning rate is 2e-3, the MinAtar CPU setting (see the README)."""

    env: str = doc(
        "environment(s), comma-separated for multi-task: minatar:GAME, atari:Game, gym:ID",
        default="minatar:breakout",
    )
    backend: str = doc("'inline' (one process) or 'local' (actor processes)", default="inline")
    actors: int = doc("actor processes (local backend)", default=1)
    envs_per_actor: int = doc(
        "environments each actor steps together (local backend; the batch is a multiple)",
        default=16,
    )
    unroll: int = doc("steps per trajectory (T)", default=20)
    torso: str = doc(f"network torso: one of {', '.join(TORSOS)}", default="auto")
    lstm: int = doc("LSTM core width (0 = feed-forward)", default=0)
    spatial_channels: int = doc("channels of the painting location heads' decoders",
                                default=32)  # fmt: skip
    gamma: float = doc("discount", default=0.99)
    entropy_weight: float = doc("entropy bonus weight", default=0.01)
    value_weight: float = doc("value loss weight", default=0.5)
    clip_rewards: bool = doc("clip rewards to [-1, 1] for learning", default=True)
    rho_bar: float = doc("V-trace rho clipping threshold", default=1.0)
    c_bar: float = doc("V-trace trace-cutting threshold", default=1.0)
    pg_rho_bar: float = doc("V-trace policy-gradient rho clipping", default=1.0)
    vtrace_lambda: float = doc("V-trace lambda", default=1.0)

    ALGORITHM: ClassVar[str] = "vtrace"

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ConfigError(f"backend must be one of {', '.join(BACKENDS)}, got '{self.backend}'")
        if self.torso not in TORSOS:
            raise ConfigError(f"torso must be one of {', '.join(TORSOS)}, got '{self.torso}'")
        for name in ("actors", "envs_per_actor", "unroll", "spatial_channels"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("rho_bar", "c_bar", "pg_rho_bar"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be > 0 (inf = no clipping)")
        if not 0 <= self.gamma <= 1 or not math.isfinite(self.gamma):
            raise ConfigError(f"gamma must be in [0, 1], got {self.gamma}")

    @property
    def tasks(self) -> list[str]:
        return [name.strip() for name in self.env.split(",") if name.strip()]


@dataclass(frozen=True)
class A2CConfig(ImpalaConfig):
    """Batched synchronous advantage actor-critic (Mnih et al. 2016, synchronous variant): the
    same harness and networks, acting with the learner's current weights (inline backend only),
    n-step bootstrapped returns as targets (GAE with lambda 1), no importance weights."""

    gae_lambda: float = doc("GAE lambda (1 = n-step returns)", default=1.0)

    ALGORITHM: ClassVar[str] = "a2c"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.backend != "inline":
            raise ConfigError(
                "A2C is synchronous: it acts with the learner's weights (backend inline)"
            )
