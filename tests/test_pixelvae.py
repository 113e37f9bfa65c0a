"""PixelVAE: the ELBO's parts, free bits, KL warm-up, importance weights, the CLI."""

from __future__ import annotations

import json

import pytest
import torch

from genlab.cli import main
from genlab.models.pixelvae import PixelVAE, PixelVAEConfig

TINY = {"latent_dim": 4, "channels": 4, "hidden": 16, "decoder_channels": 4, "decoder_layers": 2}


def model(**kw) -> PixelVAE:
    torch.manual_seed(0)
    return PixelVAE(PixelVAEConfig(**{**TINY, **kw}))


def batch(n: int = 6) -> dict[str, torch.Tensor]:
    return {"x": torch.bernoulli(torch.full((n, 1, 28, 28), 0.2))}


def test_elbo_parts_add_up_and_reach_every_parameter():
    net = model()
    out = net.loss(batch())
    assert out["neg_elbo"].item() == pytest.approx((out["rec"] + out["kl"]).item(), rel=1e-5)
    assert out["loss"].item() == pytest.approx(out["neg_elbo"].item(), rel=1e-5)  # no floor
    out["loss"].backward()
    assert not [n for n, p in net.named_parameters() if p.grad is None]


def test_free_bits_floor_the_kl_term_and_warmup_ramps_its_weight():
    torch.manual_seed(1)
    b = batch()
    free = model(free_bits=5.0)
    out = free.loss(b)  # at initialisation each dimension's KL is far below 5 nats
    assert out["loss"].item() == pytest.approx(out["rec"].item() + 5.0 * 4, rel=1e-4)
    warm = model(kl_warmup_steps=4).train()
    weights = [warm.loss(b)["kl_weight"].item() for _ in range(6)]
    assert weights == [0.0, 0.25, 0.5, 0.75, 1.0, 1.0]
    warm.eval()
    warm.loss(b)
    assert int(warm.steps_seen) == 6  # evaluation does not advance the ramp
    assert "steps_seen" in warm.state_dict()


def test_importance_weights_bound_the_likelihood_from_below():
    net = model().eval()
    x = batch(3)["x"]
    log_w, log_px = net.log_weights(x, 16)
    assert log_w.shape == log_px.shape == (16, 3)
    iwae = torch.logsumexp(log_w, 0) - torch.log(torch.tensor(16.0))
    assert (iwae >= log_w.mean(0) - 1e-4).all()  # Jensen: IWAE >= ELBO estimate


def test_pixelvae_trains_and_evaluates_from_the_cli(data_root, tmp_path, capsys):
    out = tmp_path / "pvae"
    args = ["train", "pixelvae", "--steps", "2", "--batch-size", "8", "--latent-dim", "2",
            "--channels", "4", "--hidden", "16", "--decoder-channels", "4", "--decoder-layers",
            "1", "--out", str(out), "--quiet"]  # fmt: skip
    assert main(args) == 0
    capsys.readouterr()
    assert main(["eval", str(out), "--json", "--n", "10", "--k", "4", "--samples", "0"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["nll_nats"] <= result["neg_elbo_nats"] + 1e-3
    assert 0 <= result["active_units"] <= 2


def test_decoder_sampling_given_z_is_the_same_every_way():
    dec = model(decoder_layers=3).decoder.eval()
    for p in dec.parameters():  # zero-initialised parts would hide a wrong row or column
        torch.nn.init.normal_(p, std=0.3)
    u = torch.rand(2, 28, 28, 2, generator=torch.Generator().manual_seed(0))
    z = torch.randn(2, 4, generator=torch.Generator().manual_seed(1))
    naive = dec.sample_from_uniforms(u, z=z, method="naive")
    assert torch.equal(dec.sample_from_uniforms(u, z=z, method="cached"), naive)
    assert 0 < naive.mean() < 1
