"""Iterative training (issue 36 A; Ha & Schmidhuber 2018, section 5): a searched controller
plays the real game, with random stretches, and its episodes join M's data."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from genlab.agents.world_models.agent import WorldModelPolicy
from genlab.agents.world_models.dream import memory_features, reads_of_m
from genlab.agents.world_models.games import DOOM
from genlab.agents.world_models.iteration import ExploringPolicy, explore_mask, record
from genlab.agents.world_models.mdnrnn import MDNRNN, MDNRNNConfig
from genlab.agents.world_models.vision import v_input
from genlab.data.episodes import load_episode
from genlab.errors import ConfigError
from genlab.models.vae import VAE, VAEConfig


def tiny_v_and_m():
    torch.manual_seed(0)
    vae = VAE(VAEConfig(latent_dim=4, channels=4, hidden=16, image_size=64, image_channels=3))
    m = MDNRNN(MDNRNNConfig(latent_dim=4, hidden=8, mixtures=2, action_dim=1))
    return vae.eval(), m.eval()


def test_the_explore_mask_gives_the_random_policy_about_that_share_in_held_stretches():
    rng = np.random.default_rng(0)
    assert not explore_mask(rng, 500, 0.0).any() and explore_mask(rng, 500, 1.0).all()
    mask = explore_mask(rng, 20_000, 0.3)
    assert 0.27 < mask.mean() < 0.33
    runs = np.diff(np.flatnonzero(np.diff(mask.astype(int))))
    assert runs.mean() > 3  # stretches, not single steps: 1..8 steps per hold, holds merge
    with pytest.raises(ConfigError, match="--explore must be a probability"):
        explore_mask(rng, 10, 1.5)


def test_m_is_fed_the_move_made_not_the_move_c_would_have_made():
    vae, m = tiny_v_and_m()
    size = (4 + reads_of_m(m, DOOM)) * 1 + 1
    params = np.zeros(size)
    params[-1] = 5.0  # a bias alone: C always says right (+1)
    frames = np.random.default_rng(1).integers(0, 256, (3, 64, 64, 3), dtype=np.uint8)
    random = np.array([[-1.0], [-1.0], [-1.0]], np.float32)
    policy = ExploringPolicy(WorldModelPolicy(vae, m, params, game=DOOM), random,
                             np.array([False, True, False]))  # fmt: skip
    made = [policy(f) for f in frames]
    assert [float(a[0]) for a in made] == [1.0, -1.0, 1.0]
    with torch.no_grad():  # M's state after the three moves made, by hand
        z = vae.encode(v_input(frames))[0][:, None]  # (3, 1, Z)
        state = None
        for t in range(3):
            _, _, state = m(
                z[t : t + 1].transpose(0, 1), torch.from_numpy(made[t])[None, None], state
            )
    assert np.allclose(policy.policy.memory, memory_features(state, True)[0].numpy(), atol=1e-6)


def test_a_recorded_episode_is_c_s_or_the_random_policy_s_as_the_mask_says(tmp_path):
    pytest.importorskip("vizdoom")
    from genlab.agents.world_models.doom import random_moves

    vae, m = tiny_v_and_m()
    still = np.zeros((4 + reads_of_m(m, DOOM)) + 1)  # tanh(0) = 0: C stays
    ret, n = record(vae, m, still, 7, 60, "clip", DOOM, 0.0, tmp_path / "a.npz")
    ep = load_episode(tmp_path / "a.npz")
    assert len(ep.actions) == n and ep.rewards.sum() == ret and not ep.actions.any()
    record(vae, m, still, 7, 60, "clip", DOOM, 1.0, tmp_path / "b.npz")
    ep = load_episode(tmp_path / "b.npz")
    expected = random_moves(np.random.default_rng(7), 60)[: len(ep.actions)]
    assert np.array_equal(ep.actions, expected) and ep.frames.shape[1:] == (64, 64, 3)
