"""The baseline WaveNet must beat: a linear autoregressive predictor (linear prediction, as in
speech codecs) with the same receptive field, scored in the same units.

The mean and log-scale of one logistic are linear functions of the previous `order` samples'
mu-law levels in [-1, 1]; its mass is binned onto the 256 codes exactly like WaveNet's mixture
output. Unconditional: speaker and digit are accepted and ignored.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from genlab.data.audio import MU
from genlab.models.wavenet import WaveNetConfig, crop_nll
from genlab.nn.causal import CausalConv1d
from genlab.nn.likelihoods import discretized_logistic_mixture_log_prob
from genlab.train.config import doc

DEFAULT_ORDER = WaveNetConfig().receptive_field


@dataclass(frozen=True)
class LinearARConfig:
    order: int = doc("past samples the prediction sees (the default WaveNet's receptive field)",
                     default=DEFAULT_ORDER)  # fmt: skip
    crop: int = doc("training crop length in samples (8 kHz)", default=4000)
    holdout_speaker: str = doc("leave this FSDD speaker out of training", default="")


class LinearAR(nn.Module):
    def __init__(self, cfg: LinearARConfig):
        super().__init__()
        self.cfg = cfg
        self.conv = CausalConv1d(1, 2, cfg.order)  # -> mean, log-scale
        nn.init.zeros_(self.conv.weight)
        with torch.no_grad():
            self.conv.bias.copy_(torch.tensor([0.0, -2.0]))

    def forward(self, x: torch.Tensor, speaker=None, digit=None, offset=None) -> torch.Tensor:
        """Codes x (B, T) -> (B, 3, T): a one-component mixture (logit 0, mean, log-scale). It
        is unconditional: speaker, digit and offset (a crop's start) are ignored."""
        level = 2 * x.float() / MU - 1  # (B, T) in [-1, 1]
        past = F.pad(level, (1, -1))[:, None]  # (B, 1, T): position t holds x[t-1]
        mean_scale = self.conv(past)  # (B, 2, T), sees x[t - order] .. x[t - 1]
        return torch.cat([torch.zeros_like(mean_scale[:, :1]), mean_scale], 1)

    def log_prob(self, x: torch.Tensor, speaker=None, digit=None) -> torch.Tensor:
        """log p(x) of whole clips of codes x (B, T) from their first sample: (B,) nats, exact
        (speaker and digit are ignored)."""
        return self.step_log_probs(self(x), x).sum(1)

    def step_log_probs(self, outputs: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, T), codes (B, T) -> log p(x[t] | x[<t]) (B, T) nats."""
        return discretized_logistic_mixture_log_prob(outputs.transpose(1, 2), x, MU + 1)

    def loss(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return crop_nll(self, batch)
