"""The module the registry builds for `impala` and `a2c`: the agent network plus its loss, so the
shared training loop's default gradient step trains it like any model."""

from __future__ import annotations

import torch
from torch import nn

from genlab.agents.impala.config import ImpalaConfig
from genlab.agents.impala.learning import actor_critic_loss
from genlab.agents.impala.networks import AgentNet
from genlab.agents.trajectory import Trajectory
from genlab.envs.registry import specs


class ImpalaAgent(nn.Module):
    def __init__(self, cfg: ImpalaConfig):
        super().__init__()
        self.cfg = cfg
        self.specs, self.channels = specs(cfg.tasks)
        self.net = AgentNet(self.specs[0], cfg.torso, cfg.lstm, cfg.spatial_channels)

    def loss(self, batch: Trajectory) -> dict[str, torch.Tensor]:
        """A batch of trajectories -> the loss and its parts (the batch's stats are the loop's
        to log)."""
        return actor_critic_loss(self.net, batch, self.cfg)
