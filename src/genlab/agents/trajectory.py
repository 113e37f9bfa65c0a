"""A batch of unrolls, time-major: what actors write and learners read.

T steps of E environments (H action heads):

    obs (T+1, E, ...)      o_0 .. o_T (o_T only bootstraps; it is o_0 of the next unroll)
    first (T+1, E) bool    o_t starts an episode (the LSTM state is zeroed there)
    action (T, E, H) long  a_t, taken at o_t
    behaviour_logp (T, E)  log mu(a_t | o_t) under the actor's weights
    reward (T, E)          r_t, received after a_t
    terminated (T, E) bool the episode ended at t (no value after it)
    truncated (T, E) bool  a time limit cut it at t (the value of its last observation, computed
                           by the actor, is in final_value (T, E))
    final_value (T, E)
    core_state (E, ...)    the LSTM state before o_0
    task (E,) long         which environment of a multi-task run
    version () long        the learner step whose weights the actor used
    final_obs (T, E, ...)  optional: where an episode ended at t, its last observation (o_{t+1}
                           is already the next episode's first), for rewards computed by the
                           learner (SPIRAL's critic judges it); None when not kept

`stats` holds scalars about how the batch was made (recent episode returns per task, frames,
policy lag): the training loop logs them beside the step's metrics; no loss reads them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import torch

# Fields with a time axis first and environments second; concatenated along environments.
TIME_MAJOR = ("obs", "first", "action", "behaviour_logp", "reward", "terminated", "truncated",
              "final_value", "final_obs")  # fmt: skip


@dataclass
class Trajectory:
    obs: torch.Tensor
    first: torch.Tensor
    action: torch.Tensor
    behaviour_logp: torch.Tensor
    reward: torch.Tensor
    terminated: torch.Tensor
    truncated: torch.Tensor
    final_value: torch.Tensor
    core_state: torch.Tensor
    task: torch.Tensor
    version: torch.Tensor
    final_obs: torch.Tensor | None = None
    stats: dict[str, torch.Tensor] = field(default_factory=dict)

    @classmethod
    def zeros(
        cls,
        obs_shape: tuple[int, ...],
        obs_dtype: torch.dtype,
        heads: int,
        core_state: torch.Tensor,
        unroll: int,
        final_obs: bool = False,
    ) -> Trajectory:
        """Zeroed tensors for `unroll` steps of as many environments as `core_state` (E, ...)
        has rows; `final_obs` keeps ended episodes' last observations."""
        T, E = unroll, core_state.shape[0]
        return cls(
            obs=torch.zeros(T + 1, E, *obs_shape, dtype=obs_dtype),
            first=torch.zeros(T + 1, E, dtype=torch.bool),
            action=torch.zeros(T, E, heads, dtype=torch.long),
            behaviour_logp=torch.zeros(T, E),
            reward=torch.zeros(T, E),
            terminated=torch.zeros(T, E, dtype=torch.bool),
            truncated=torch.zeros(T, E, dtype=torch.bool),
            final_value=torch.zeros(T, E),
            core_state=torch.zeros_like(core_state),
            task=torch.zeros(E, dtype=torch.long),
            version=torch.zeros((), dtype=torch.long),
            final_obs=torch.zeros(T, E, *obs_shape, dtype=obs_dtype) if final_obs else None,
        )

    def tensors(self) -> dict[str, torch.Tensor]:
        """Every tensor field by name (None and `stats` left out)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if isinstance(getattr(self, f.name), torch.Tensor)}  # fmt: skip

    def share_memory_(self) -> Trajectory:
        """Move every tensor to shared memory (actor processes write into it); in place."""
        for t in self.tensors().values():
            t.share_memory_()
        return self

    @property
    def unroll(self) -> int:
        return self.reward.shape[0]

    @property
    def envs(self) -> int:
        return self.reward.shape[1]


def concatenate(parts: list[Trajectory], stats: dict[str, torch.Tensor]) -> Trajectory:
    """Several trajectories of the same unroll side by side (environments concatenated), with
    `stats`; `version` becomes the oldest part's."""
    first = parts[0]
    joined = {
        k: None if getattr(first, k) is None else torch.cat([getattr(p, k) for p in parts], 1)
        for k in TIME_MAJOR
    }
    return Trajectory(
        **joined,
        core_state=torch.cat([p.core_state for p in parts]),
        task=torch.cat([p.task for p in parts]),
        version=torch.stack([p.version for p in parts]).min(),
        stats=stats,
    )
