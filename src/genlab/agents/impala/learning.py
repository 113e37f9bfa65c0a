"""The learner's losses on a batch of trajectories (`genlab.agents.trajectory`).

Both recompute the policy and values for o_0..o_T with the current weights, from the stored
core state, then: IMPALA corrects for the actors' lag with V-trace; A2C (on-policy) uses n-step
returns / GAE. Loss = policy gradient + value_weight * 0.5 (target - V)^2 - entropy_weight * H,
each averaged over the T x B steps.
"""

from __future__ import annotations

import torch

from genlab.agents.impala.config import A2CConfig, ImpalaConfig
from genlab.agents.impala.networks import AgentNet
from genlab.agents.returns import fold_truncation, gae, vtrace
from genlab.agents.trajectory import Trajectory


def _recompute(net: AgentNet, batch: Trajectory):
    features, _ = net.core(batch.obs, batch.first, batch.core_state)  # (T+1, B, F)
    T, B = batch.reward.shape
    values = net.values(features).float()  # (T+1, B); float32 even under bf16 autocast
    logp, entropy = net.heads.evaluate(
        features[:T].reshape(T * B, -1), batch.action.reshape(T * B, -1)
    )
    return values, logp.reshape(T, B), entropy.reshape(T, B)


def _targets_inputs(batch: Trajectory, cfg: ImpalaConfig):
    rewards = batch.reward.clamp(-1, 1) if cfg.clip_rewards else batch.reward
    discounts = cfg.gamma * (~batch.terminated).float()
    return fold_truncation(rewards, discounts, batch.truncated, batch.final_value, cfg.gamma)


def actor_critic_loss(
    net: AgentNet, batch: Trajectory, cfg: ImpalaConfig
) -> dict[str, torch.Tensor]:
    """IMPALA's V-trace loss, or A2C's when `cfg` is an A2CConfig."""
    values, logp, entropy = _recompute(net, batch)
    rewards, discounts = _targets_inputs(batch, cfg)
    v, bootstrap = values[:-1], values[-1].detach()
    if isinstance(cfg, A2CConfig):
        targets, advantages = gae(rewards, v.detach(), discounts, bootstrap, cfg.gae_lambda)
    else:
        log_rhos = logp.detach() - batch.behaviour_logp
        targets, advantages = vtrace(
            log_rhos, discounts, rewards, v.detach(), bootstrap,
            cfg.rho_bar, cfg.c_bar, cfg.pg_rho_bar, cfg.vtrace_lambda,
        )  # fmt: skip
    pg_loss = -(advantages * logp).mean()
    value_loss = 0.5 * (targets - v).square().mean()
    ent = entropy.mean()
    metrics = {
        "loss": pg_loss + cfg.value_weight * value_loss - cfg.entropy_weight * ent,
        "pg_loss": pg_loss,
        "value_loss": value_loss,
        "entropy": ent,
    }
    if not isinstance(cfg, A2CConfig):
        metrics["rho_mean"] = log_rhos.exp().mean()
    return metrics
