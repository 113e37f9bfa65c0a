"""World Models: the MDN likelihood and sampler, M's masked loss, C's size and actions, and the
dream as a valid, seeded gymnasium.Env."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from genlab.agents.world_models.controller import LinearController, controller_size
from genlab.agents.world_models.dream import DreamEnv
from genlab.agents.world_models.mdnrnn import MDNRNN, MDNRNNConfig, mdn_log_prob, mdn_sample
from genlab.errors import ConfigError

gym = pytest.importorskip("gymnasium")

SMALL = MDNRNNConfig(latent_dim=4, hidden=16, mixtures=3)


def mixture(shape=(2, 5, 4, 3)):
    torch.manual_seed(0)
    return torch.randn(shape), torch.randn(shape), 0.3 * torch.randn(shape)


def test_mdn_log_prob_matches_torch_distributions():
    logit_pi, mu, log_sigma = mixture()
    z = torch.randn(2, 5, 4)
    reference = (
        torch.distributions.MixtureSameFamily(
            torch.distributions.Categorical(logits=logit_pi),
            torch.distributions.Normal(mu, log_sigma.exp()),
        )
        .log_prob(z)
        .sum(-1)
    )  # independent dimensions
    assert torch.allclose(mdn_log_prob(logit_pi, mu, log_sigma, z), reference, atol=1e-5)


def test_mdn_samples_follow_the_mixture_and_temperature_sharpens_them():
    logit_pi = torch.tensor([[0.0, 1.0]])  # one dimension, two components
    mu, log_sigma = torch.tensor([[-3.0, 2.0]]), torch.log(torch.tensor([[0.5, 1.0]]))
    g = torch.Generator().manual_seed(0)
    n = 40000
    draws = mdn_sample(logit_pi.expand(n, 1, 2), mu.expand(n, 1, 2), log_sigma.expand(n, 1, 2),
                       1.0, g)[:, 0]  # fmt: skip
    pi = torch.softmax(logit_pi[0], -1)
    mean = (pi * mu[0]).sum()
    var = (pi * (log_sigma[0].exp().square() + mu[0].square())).sum() - mean.square()
    assert draws.mean().item() == pytest.approx(mean.item(), abs=0.05)
    assert draws.var().item() == pytest.approx(var.item(), rel=0.05)
    cold = mdn_sample(logit_pi.expand(n, 1, 2), mu.expand(n, 1, 2), log_sigma.expand(n, 1, 2),
                      0.05, g)[:, 0]  # fmt: skip
    assert (cold > 0).float().mean() > 0.99  # almost always the heavier component
    assert cold[cold > 0].std() < 0.3  # std * sqrt(tau)
    with pytest.raises(ConfigError, match="tau"):
        mdn_sample(logit_pi, mu, log_sigma, 0.0)


def sequences(B=3, T=6):
    torch.manual_seed(1)
    mask = torch.ones(B, T, dtype=torch.bool)
    mask[0, 4:] = False
    return {"z": torch.randn(B, T + 1, 4), "a": torch.rand(B, T, 3), "r": torch.randn(B, T),
            "d": torch.zeros(B, T), "mask": mask}  # fmt: skip


def test_m_loss_ignores_padding_and_adds_its_terms():
    torch.manual_seed(0)
    m = MDNRNN(SMALL)
    batch = sequences()
    out = m.loss(batch)
    assert out["loss"].item() == pytest.approx(
        (out["z_nll"] + out["reward_mse"] + out["done_bce"]).item(), rel=1e-5
    )
    padded = {k: v.clone() for k, v in batch.items()}
    padded["z"][0, 5:] += 100.0  # targets and inputs past the mask
    padded["r"][0, 4:] = 1e3
    assert m.loss(padded)["loss"].item() == pytest.approx(out["loss"].item(), rel=1e-6)
    out["loss"].backward()
    assert all(p.grad is not None for p in m.parameters())


def test_controller_size_formula_and_action_ranges():
    assert controller_size(32, 256, 3) == 867  # the paper's count
    rng = np.random.default_rng(0)
    c = LinearController(rng.normal(size=controller_size(4, 16)) * 3, 4, 16)
    for _ in range(20):
        a = c(rng.normal(size=20).astype(np.float32))
        assert (
            a.dtype == np.float32 and -1 <= a[0] <= 1 and (a[1:] >= 0).all() and (a[1:] <= 1).all()
        )
    zero = LinearController(np.zeros(controller_size(4, 16)), 4, 16)
    assert zero(np.ones(20, np.float32)).tolist() == [0.0, 0.5, 0.5]
    with pytest.raises(ConfigError, match="867"):
        LinearController(np.zeros(10), 32, 256)


def dream(tau=1.0, max_steps=50) -> DreamEnv:
    torch.manual_seed(0)
    m = MDNRNN(SMALL)
    with torch.no_grad():
        m.done.bias.fill_(-4.0)  # episodes end now and then, not at once
    return DreamEnv(m, np.random.default_rng(0).normal(size=(5, 4)), tau, max_steps)


def test_dream_is_a_valid_gymnasium_env():
    from gymnasium.utils.env_checker import check_env

    check_env(dream(), skip_render_check=True)


def test_dream_is_deterministic_under_a_seed_and_tau_matters():
    def rollout(env, seed):
        obs, _ = env.reset(seed=seed)
        trace, rewards = [obs], []
        for t in range(30):
            obs, r, term, trunc, _ = env.step(np.array([np.sin(t), 0.5, 0.0], np.float32))
            trace.append(obs)
            rewards.append(r)
            if term or trunc:
                break
        return np.stack(trace), rewards

    a, ra = rollout(dream(), 3)
    b, rb = rollout(dream(), 3)
    assert np.array_equal(a, b) and ra == rb
    c, _ = rollout(dream(), 4)
    assert not np.array_equal(a[: len(c)], c[: len(a)])
    cold, _ = rollout(dream(tau=0.01), 3)
    assert not np.array_equal(a[1:3], cold[1:3])
    env = dream(max_steps=5)
    with torch.no_grad():
        env.m.done.bias.fill_(-30.0)  # never ends by itself: only the step limit cuts it
    env.reset(seed=0)
    ends = [env.step(env.action_space.sample())[2:4] for _ in range(5)]
    assert ends == [(False, False)] * 4 + [(False, True)]
    with pytest.raises(ConfigError, match="initial_z"):
        DreamEnv(MDNRNN(SMALL), np.zeros((3, 7)))
