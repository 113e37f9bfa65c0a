"""An actor: a copy of the agent network playing a batch of environments, writing unrolls of T
steps into trajectory tensors. The same code runs inline (in the learner's process) and in actor
processes (writing into shared memory).

The trajectory's layout: `genlab.agents.trajectory`.
"""

from __future__ import annotations

import numpy as np
import torch

from genlab.agents.impala.networks import AgentNet
from genlab.agents.trajectory import Trajectory
from genlab.envs.vector import EnvBatch, Episode


def empty_trajectory(net: AgentNet, unroll: int, envs: int, final_obs: bool = False) -> Trajectory:
    """A zeroed trajectory of `unroll` steps of `envs` environments for `net`'s observations
    and action heads (`final_obs`: keep ended episodes' last observations)."""
    spec = net.spec
    obs_dtype = torch.uint8 if spec.obs_dtype == "uint8" else torch.float32
    return Trajectory.zeros(spec.obs_shape, obs_dtype, len(spec.action_sizes),
                            net.initial_state(envs), unroll, final_obs)  # fmt: skip


class Actor:
    """Plays `envs` with `net` (its weights are whatever the caller last loaded into it)."""

    def __init__(self, net: AgentNet, envs: EnvBatch, unroll: int, seed: int):
        self.net, self.envs, self.unroll = net, envs, unroll
        self.generator = torch.Generator().manual_seed(seed)
        self.obs = torch.from_numpy(envs.reset())
        self.first = torch.ones(len(envs), dtype=torch.bool)
        self.state = net.initial_state(len(envs))

    @torch.no_grad()
    def fill(self, out: Trajectory, version: int = 0) -> list[Episode]:
        """Play T steps of every environment into `out` (from `empty_trajectory`); returns the
        episodes that finished."""
        out.core_state.copy_(self.state)
        out.task.copy_(torch.from_numpy(self.envs.task))
        out.version.fill_(version)
        out.final_value.zero_()
        finished: list[Episode] = []
        for t in range(self.unroll):
            out.obs[t] = self.obs
            out.first[t] = self.first
            features, state = self.net.core(self.obs[None], self.first[None], self.state)
            actions, logp = self.net.heads.sample(features[0], self.generator)
            step = self.envs.step(actions.numpy())
            out.action[t] = actions
            out.behaviour_logp[t] = logp
            out.reward[t] = torch.from_numpy(step.reward)
            out.terminated[t] = torch.from_numpy(step.terminated)
            out.truncated[t] = torch.from_numpy(step.truncated)
            if out.final_obs is not None:
                for i, o in step.final_obs.items():
                    out.final_obs[t, i] = torch.from_numpy(o)
            rows = [i for i in step.final_obs if step.truncated[i]]
            if rows:  # value of each truncated episode's last observation
                final = torch.from_numpy(np.stack([step.final_obs[i] for i in rows]))
                feats, _ = self.net.core(final[None], torch.zeros(1, len(rows), dtype=torch.bool),
                                         state[rows])  # fmt: skip
                out.final_value[t, rows] = self.net.values(feats[0])
            self.obs = torch.from_numpy(step.obs)
            self.first = torch.from_numpy(step.terminated | step.truncated)
            self.state = state
            finished += step.episodes
        out.obs[self.unroll] = self.obs
        out.first[self.unroll] = self.first
        return finished
