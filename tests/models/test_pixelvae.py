"""PixelVAE: the ELBO's parts, free bits, KL warm-up, importance weights, the CLI."""

from __future__ import annotations

import json

import pytest
import torch

from genlab.cli import main
from genlab.errors import ConfigError
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


@pytest.mark.parametrize("spatial_z", [True, False])
def test_decoder_sampling_given_z_is_the_same_every_way(spatial_z):
    vae = model(decoder_layers=3, spatial_z=spatial_z).eval()
    for p in vae.decoder.parameters():  # zero-initialised parts would hide a wrong row or column
        torch.nn.init.normal_(p, std=0.3)
    u = torch.rand(2, 28, 28, 2, generator=torch.Generator().manual_seed(0))
    z = vae.condition(torch.randn(2, 4, generator=torch.Generator().manual_seed(1)))
    assert z.shape == ((2, 4, 28, 28) if spatial_z else (2, 4))
    dec = vae.decoder
    naive = dec.sample_from_uniforms(u, z=z, method="naive")
    assert torch.equal(dec.sample_from_uniforms(u, z=z, method="window"), naive)
    assert torch.equal(dec.sample_from_uniforms(u, z=z, method="cached"), naive)
    assert 0 < naive.mean() < 1


def test_a_spatial_z_conditions_each_pixel_on_its_own_features():
    dec = model(decoder_layers=2).decoder.double()
    for p in dec.parameters():
        torch.nn.init.normal_(p, std=0.3)
    x = torch.bernoulli(torch.full((1, 1, 28, 28), 0.3)).double()
    z_map = torch.randn(1, 4, 28, 28, dtype=torch.float64, requires_grad=True)
    i, j = 10, 12
    (grad,) = torch.autograd.grad(dec(x, z=z_map)[0, 0, i, j], z_map)
    seen = grad[0].abs().sum(0) != 0  # (28, 28): which map pixels output (i, j) depends on
    order = torch.arange(28 * 28).reshape(28, 28)
    assert seen[i, j]  # its own features
    assert not (seen & (order > i * 28 + j)).any()  # none after it, so sampling may crop
    assert seen.sum() > 1 and not seen.all()  # a neighbourhood, not one bias for all pixels
    with pytest.raises(ConfigError, match="map"):
        dec(x, z=torch.randn(1, 4, dtype=torch.float64))
