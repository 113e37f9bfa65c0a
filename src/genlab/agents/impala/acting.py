"""An actor: a copy of the agent network playing a batch of environments, writing unrolls of T
steps into trajectory tensors. The same code runs inline (in the learner's process) and in actor
processes (writing into shared memory).

A trajectory (time-major; E environments; H action heads):
    obs (T+1, E, ...)      o_0 .. o_T (o_T only bootstraps; it is o_0 of the next unroll)
    first (T+1, E) bool    o_t starts an episode (the LSTM state is zeroed there)
    action (T, E, H) long  a_t, taken at o_t
    behaviour_logp (T, E)  log mu(a_t | o_t) under the actor's weights
    reward (T, E)          r_t, received after a_t
    terminated (T, E)      the episode ended at t (no value after it)
    truncated (T, E)       a time limit cut it at t (the value of its last observation, computed
                           by the actor, is in final_value (T, E))
    final_obs (T, E, ...)  optional (`final_obs=True`): where an episode ended at t, its last
                           observation (o_{t+1} is already the next episode's first), for
                           rewards computed by the learner (SPIRAL's critic judges it)
    core_state (E, ...)    the LSTM state before o_0
    task (E,) long         which environment of a multi-task run
    version () long        the learner step whose weights the actor used
"""

from __future__ import annotations

import numpy as np
import torch

from genlab.agents.impala.networks import AgentNet
from genlab.envs.vector import EnvBatch, Episode


def trajectory_buffers(
    net: AgentNet, unroll: int, envs: int, final_obs: bool = False
) -> dict[str, torch.Tensor]:
    """Zeroed tensors of a trajectory's shapes (see the module docstring)."""
    spec, T, E = net.spec, unroll, envs
    obs_dtype = torch.uint8 if spec.obs_dtype == "uint8" else torch.float32
    extra = {"final_obs": torch.zeros(T, E, *spec.obs_shape, dtype=obs_dtype)} if final_obs else {}
    return {
        **extra,
        "obs": torch.zeros(T + 1, E, *spec.obs_shape, dtype=obs_dtype),
        "first": torch.zeros(T + 1, E, dtype=torch.bool),
        "action": torch.zeros(T, E, len(spec.action_sizes), dtype=torch.long),
        "behaviour_logp": torch.zeros(T, E),
        "reward": torch.zeros(T, E),
        "terminated": torch.zeros(T, E, dtype=torch.bool),
        "truncated": torch.zeros(T, E, dtype=torch.bool),
        "final_value": torch.zeros(T, E),
        "core_state": net.initial_state(E),
        "task": torch.zeros(E, dtype=torch.long),
        "version": torch.zeros((), dtype=torch.long),
    }


class Actor:
    """Plays `envs` with `net` (its weights are whatever the caller last loaded into it)."""

    def __init__(self, net: AgentNet, envs: EnvBatch, unroll: int, seed: int):
        self.net, self.envs, self.unroll = net, envs, unroll
        self.generator = torch.Generator().manual_seed(seed)
        self.obs = torch.from_numpy(envs.reset())
        self.first = torch.ones(len(envs), dtype=torch.bool)
        self.state = net.initial_state(len(envs))

    @torch.no_grad()
    def fill(self, out: dict[str, torch.Tensor], version: int = 0) -> list[Episode]:
        """Play T steps of every environment into `out` (from `trajectory_buffers`); returns the
        episodes that finished."""
        out["core_state"].copy_(self.state)
        out["task"].copy_(torch.from_numpy(self.envs.task))
        out["version"].fill_(version)
        out["final_value"].zero_()
        finished: list[Episode] = []
        for t in range(self.unroll):
            out["obs"][t] = self.obs
            out["first"][t] = self.first
            features, state = self.net.core(self.obs[None], self.first[None], self.state)
            actions, logp = self.net.heads.sample(features[0], self.generator)
            step = self.envs.step(actions.numpy())
            out["action"][t] = actions
            out["behaviour_logp"][t] = logp
            out["reward"][t] = torch.from_numpy(step.reward)
            out["terminated"][t] = torch.from_numpy(step.terminated)
            out["truncated"][t] = torch.from_numpy(step.truncated)
            if "final_obs" in out:
                for i, o in step.final_obs.items():
                    out["final_obs"][t, i] = torch.from_numpy(o)
            rows = [i for i in step.final_obs if step.truncated[i]]
            if rows:  # value of each truncated episode's last observation
                final = torch.from_numpy(np.stack([step.final_obs[i] for i in rows]))
                feats, _ = self.net.core(final[None], torch.zeros(1, len(rows), dtype=torch.bool),
                                         state[rows])  # fmt: skip
                out["final_value"][t, rows] = self.net.values(feats[0])
            self.obs = torch.from_numpy(step.obs)
            self.first = torch.from_numpy(step.terminated | step.truncated)
            self.state = state
            finished += step.episodes
        out["obs"][self.unroll] = self.obs
        out["first"][self.unroll] = self.first
        return finished
