"""`genlab worldmodels train-c --backend ray`: the same CMA-ES search as the local worker pool,
generation for generation, for the same seed (run in a private network: it starts Ray)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from genlab.agents.world_models.controller import controller_size
from genlab.agents.world_models.mdnrnn import MDNRNN, MDNRNNConfig
from genlab.agents.world_models.search import (
    Players,
    SearchConfig,
    SearchState,
    Tracks,
    search_step,
)
from genlab.errors import ConfigError
from genlab.tasks.world_models import make_players

SMALL = MDNRNNConfig(latent_dim=4, hidden=16, mixtures=3)


def search(cfg: SearchConfig, players, generations: int) -> list[dict]:
    state = SearchState(cfg, controller_size(SMALL.latent_dim, SMALL.hidden))
    step, tracks = search_step(cfg, players), Tracks(cfg)
    rows = []
    try:
        for g in range(generations):
            metrics = step(state, tracks.batch(g))
            state.step += 1
            rows.append({k: v for k, v in metrics.items() if k != "steps_per_second"})
    finally:
        players.close()
    return rows + [{"mean": state.es.mean.tolist(), "best": state.best_params.tolist()}]


@pytest.mark.private_network
def test_a_dream_search_on_ray_equals_the_local_one(ray_here):
    torch.manual_seed(0)
    m = MDNRNN(SMALL)
    with torch.no_grad():
        m.done.bias.fill_(-3.0)  # dreams end now and then
    initial_z = np.random.default_rng(0).normal(size=(5, 4))
    options = dict(vae="unused", mdnrnn="unused", dream=True, tau=1.0, popsize=4, rollouts=2,
                   generations=3, workers=2, max_steps=30, seed=7)  # fmt: skip
    local_cfg = SearchConfig(**options)
    ray_cfg = SearchConfig(**options, backend="ray")
    local = search(local_cfg, Players(nn.Identity(), m, initial_z, 2), 3)
    on_ray = search(ray_cfg, make_players(ray_cfg, nn.Identity(), m, initial_z), 3)
    assert on_ray == local
    assert local[0]["env_steps"] > 4 * 2  # the candidates played
    assert not ray_here.is_initialized()  # the search started Ray, so it stopped it


def test_search_backend_options_are_checked():
    with pytest.raises(ConfigError, match="backend must be one of local, ray"):
        SearchConfig(vae="v", generations=1, backend="dask")
    with pytest.raises(ConfigError, match="needs --backend ray"):
        SearchConfig(vae="v", generations=1, address="auto")
