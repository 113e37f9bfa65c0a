"""M, the memory: an LSTM over (z_t, a_t) whose output predicts the next latent z_{t+1} as a
mixture of Gaussians per latent dimension (a mixture density network, Bishop 1994; Graves 2013),
plus the reward r_{t+1} and whether the episode ends (Ha & Schmidhuber 2018, section 2.2).

    z (B, T, Z), a (B, T, A) -> LSTM (hidden H) -> h (B, T, H)
      -> per dimension of z: K mixture logits, means, log std devs   (B, T, Z, K) each
      -> reward (B, T) and done logit (B, T)

All log-likelihoods are nats per time step (summed over the Z dimensions). Temperature tau
sharpens or flattens sampling: mixture logits / tau and std devs * sqrt(tau), as in the paper.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from genlab.errors import ConfigError
from genlab.train.config import doc

LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


@dataclass(frozen=True)
class MDNRNNConfig:
    latent_dim: int = doc("size of z (V's latent)", default=32)
    action_dim: int = doc("size of an action (CarRacing: steer, gas, brake)", default=3)
    hidden: int = doc("LSTM hidden units", default=256)
    mixtures: int = doc("Gaussians per latent dimension", default=5)
    reward_weight: float = doc("weight of the reward head's squared error", default=1.0)
    done_weight: float = doc("weight of the done head's cross-entropy", default=1.0)
    vae: str = doc("the V run (`genlab train vae --data carracing`) whose latents M models",
                   default="")  # fmt: skip
    seq_len: int = doc("training window, in steps", default=100)

    def __post_init__(self) -> None:
        if min(self.latent_dim, self.action_dim, self.hidden, self.mixtures) < 1:
            raise ConfigError("latent_dim, action_dim, hidden and mixtures must be >= 1")


def mdn_log_prob(
    logit_pi: torch.Tensor, mu: torch.Tensor, log_sigma: torch.Tensor, z: torch.Tensor
) -> torch.Tensor:
    """log p(z) under independent per-dimension Gaussian mixtures.

    logit_pi, mu, log_sigma (..., Z, K); z (..., Z) -> (...) nats, summed over Z."""
    zk = z[..., None]  # (..., Z, 1)
    log_normal = -0.5 * ((zk - mu) * torch.exp(-log_sigma)).square() - log_sigma - LOG_SQRT_2PI
    return torch.logsumexp(F.log_softmax(logit_pi, -1) + log_normal, -1).sum(-1)


def mdn_sample(
    logit_pi: torch.Tensor,
    mu: torch.Tensor,
    log_sigma: torch.Tensor,
    tau: float = 1.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """One draw per dimension at temperature tau: (..., Z, K) each -> (..., Z)."""
    if tau <= 0:
        raise ConfigError(f"temperature tau must be > 0, got {tau}")
    probs = torch.softmax(logit_pi / tau, -1)
    k = torch.multinomial(probs.reshape(-1, probs.shape[-1]), 1, generator=generator)
    k = k.view(*probs.shape[:-1], 1)
    mean = mu.gather(-1, k)[..., 0]
    std = torch.exp(log_sigma.gather(-1, k)[..., 0]) * math.sqrt(tau)
    return mean + std * torch.randn(mean.shape, generator=generator)


class MDNRNN(nn.Module):
    def __init__(self, cfg: MDNRNNConfig):
        super().__init__()
        self.cfg = cfg
        z, k = cfg.latent_dim, cfg.mixtures
        self.lstm = nn.LSTM(z + cfg.action_dim, cfg.hidden, batch_first=True)
        self.mdn = nn.Linear(cfg.hidden, 3 * z * k)
        self.reward = nn.Linear(cfg.hidden, 1)
        self.done = nn.Linear(cfg.hidden, 1)
        with torch.no_grad():  # prior: an episode ends about once in 1,000 steps, not at each
            self.done.bias.fill_(-math.log(999.0))  # (an untrained M dreamed 1-step episodes)

    def heads(self, h: torch.Tensor) -> dict[str, torch.Tensor]:
        """LSTM outputs h (..., H) -> mixture parameters (..., Z, K) each, reward and done logit
        (...)."""
        logit_pi, mu, log_sigma = self.mdn(h).view(*h.shape[:-1], self.cfg.latent_dim,
                                                   3 * self.cfg.mixtures).chunk(3, -1)  # fmt: skip
        return {"logit_pi": logit_pi, "mu": mu, "log_sigma": log_sigma.clamp(-7.0, 5.0),
                "reward": self.reward(h)[..., 0], "done": self.done(h)[..., 0]}  # fmt: skip

    def forward(
        self,
        z: torch.Tensor,
        a: torch.Tensor,
        state: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """z (B, T, Z), a (B, T, A), LSTM state or None -> heads for step t + 1 (see `heads`),
        LSTM outputs h (B, T, H), and the final state."""
        h, state = self.lstm(torch.cat([z, a], -1), state)
        return self.heads(h), h, state

    def loss(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Sequences z (B, T+1, Z), actions a (B, T, A), rewards r (B, T), dones d (B, T) float,
        mask (B, T) bool (False on padding): predict z[:, 1:], r and d from z[:, :-1] and a.
        "z_nll" is nats per step; "loss" adds the weighted reward and done terms."""
        z, a, mask = batch["z"], batch["a"], batch["mask"].float()
        out, _, _ = self.forward(z[:, :-1], a)
        steps = mask.sum().clamp(min=1)
        z_nll = -(mdn_log_prob(out["logit_pi"], out["mu"], out["log_sigma"], z[:, 1:]) * mask)
        reward_se = (out["reward"] - batch["r"]).square() * mask
        done_ce = F.binary_cross_entropy_with_logits(out["done"], batch["d"], reduction="none")
        terms = {"z_nll": z_nll.sum() / steps, "reward_mse": reward_se.sum() / steps,
                 "done_bce": (done_ce * mask).sum() / steps}  # fmt: skip
        loss = (terms["z_nll"] + self.cfg.reward_weight * terms["reward_mse"]
                + self.cfg.done_weight * terms["done_bce"])  # fmt: skip
        return {"loss": loss, **terms}
