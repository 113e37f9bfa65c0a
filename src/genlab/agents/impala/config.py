"""IMPALA and A2C options. The defaults are the CPU setting for MinAtar; the papers' Atari
setting is in each docstring and in the README."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

from genlab.agents.impala.networks import TORSOS
from genlab.errors import ConfigError
from genlab.train.config import doc

BACKENDS = ("inline", "local", "ray")


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
    backend: str = doc(
        "'inline' (one process), 'local' (actor processes) or 'ray' (Ray actors, "
        "on any machine of a Ray cluster; the distributed extra)",
        default="inline",
    )
    actors: int = doc("actor processes (local and ray backends)", default=1)
    envs_per_actor: int = doc(
        "environments each actor steps together (local and ray backends; the batch is a multiple)",
        default=16,
    )
    address: str = doc(
        "ray backend: the cluster to join, 'auto' (the one `ray start` runs "
        "here) or HOST:PORT of its head; empty starts a local one",
        default="",
    )
    broadcast_every: int = doc("ray backend: learner steps between weight broadcasts",
                               default=1)  # fmt: skip
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
    ON_POLICY: ClassVar[bool] = False  # actors must act with the learner's current weights
    # How trajectories travel, not what is learned: a run may resume with other values.
    DEPLOYMENT: ClassVar[tuple[str, ...]] = ("backend", "actors", "address", "broadcast_every")

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ConfigError(f"backend must be one of {', '.join(BACKENDS)}, got '{self.backend}'")
        if self.torso not in TORSOS:
            raise ConfigError(f"torso must be one of {', '.join(TORSOS)}, got '{self.torso}'")
        if self.address and self.backend != "ray":
            raise ConfigError(f"--address joins a Ray cluster: it needs --backend ray, not "
                              f"'{self.backend}'")  # fmt: skip
        for name in ("actors", "envs_per_actor", "unroll", "spatial_channels", "broadcast_every"):
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
    same harness and networks, acting with the learner's current weights (inline, or ray with the
    weights sent every step and each batch waited for), n-step bootstrapped returns as targets
    (GAE with lambda 1), no importance weights."""

    gae_lambda: float = doc("GAE lambda (1 = n-step returns)", default=1.0)

    ALGORITHM: ClassVar[str] = "a2c"
    ON_POLICY: ClassVar[bool] = True

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.backend == "local":
            raise ConfigError("A2C is synchronous: it acts with the learner's weights "
                              "(backend inline or ray)")  # fmt: skip
        if self.broadcast_every != 1:
            raise ConfigError("A2C acts with the learner's current weights: --broadcast-every 1")
