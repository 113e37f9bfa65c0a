"""Glow and RealNVP on 28x28 MNIST: exact reconstruction, sharing modes, the CLI."""

from __future__ import annotations

import json
import math

import pytest
import torch

from genlab.cli import main
from genlab.errors import ConfigError
from genlab.models.flow_models import GlowConfig, ImageFlow, RealNVPConfig, as_image

TINY = {"levels": 2, "depth": 2, "hidden": 8}


def glow(**kw) -> ImageFlow:
    torch.manual_seed(0)
    return ImageFlow(GlowConfig(**{**TINY, **kw}))


def jiggle(model: ImageFlow) -> ImageFlow:
    with torch.no_grad():  # leave the identity initialisation of the couplings
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model


@pytest.mark.parametrize(
    "model",
    [
        lambda: glow(),
        lambda: glow(coupling="additive", lu=False),
        lambda: glow(share_coupling="all", step_embedding=4),
        lambda: ImageFlow(RealNVPConfig(**TINY)),
        lambda: glow(logit=0.05),
        lambda: ImageFlow(RealNVPConfig(**TINY, logit=1e-6)),
    ],  # fmt: skip
    ids=[
        "glow",
        "glow_additive_plain",
        "glow_shared_embedded",
        "realnvp",
        "glow_logit",
        "realnvp_logit",
    ],  # fmt: skip
)
def test_encode_then_decode_returns_the_image(model):
    net = jiggle(model()).double()
    net.train()
    x = torch.rand(4, 1, 28, 28, dtype=torch.float64)
    net.log_prob(x)  # ActNorm's data-dependent initialisation
    net.eval()
    z = net.encode(x)
    assert z.shape == (4, 784)
    assert torch.allclose(net.decode(z), x, atol=1e-8)
    bpd = net.bits_per_dim(x)
    assert bpd.shape == (4,) and torch.isfinite(bpd).all()


def test_untrained_flow_scores_near_the_uniform_bound():
    """At initialisation (couplings are identities, ActNorm standardises the batch) the bound is a
    Gaussian fit per channel: finite and within a few bits of uniform noise's 8 bits/dim."""
    net = glow()
    x = torch.rand(16, 1, 28, 28)
    bpd = net.loss({"x": x})["bits_per_dim"].item()
    assert 5.0 < bpd < 9.5


def count(model: ImageFlow) -> int:
    return sum(p.numel() for p in model.parameters())


def test_sharing_shrinks_the_parameter_count_as_designed():
    none, per_level, shared = (glow(depth=4, hidden=16, share_coupling=m)
                               for m in ("none", "per_level", "all"))  # fmt: skip
    nets = lambda m: {id(mod) for mod in m.modules() if type(mod).__name__ == "CouplingNet"}  # noqa: E731
    assert (len(nets(none)), len(nets(per_level)), len(nets(shared))) == (8, 2, 1)
    assert count(none) > count(per_level) > count(shared)
    embedded = glow(depth=4, hidden=16, share_coupling="all", step_embedding=4)
    batch = {"x": torch.rand(8, 1, 28, 28)}
    embedded.loss(batch)["loss"].backward()  # the step embeddings get gradients too
    missing = [n for n, p in embedded.named_parameters() if p.grad is None]
    assert not missing


def test_bad_options_are_config_errors():
    with pytest.raises(ConfigError, match="share_coupling"):
        GlowConfig(share_coupling="some")
    with pytest.raises(ValueError, match="7x7"):
        GlowConfig(levels=3)
    with pytest.raises(ConfigError, match="logit"):
        RealNVPConfig(logit=0.5)


def test_glow_trains_evaluates_and_samples_from_the_cli(data_root, tmp_path, capsys):
    out = tmp_path / "glow"
    args = ["train", "glow", "--steps", "3", "--batch-size", "16", "--depth", "1",
            "--hidden", "8", "--out", str(out), "--quiet"]  # fmt: skip
    assert main(args) == 0
    names = {p.name for p in (out / "pictures").iterdir()}
    assert {"samples_T0.7.png", "reconstructions.png", "interpolation_linear.png"} <= names
    capsys.readouterr()
    assert main(["eval", str(out), "--json", "--n", "50", "--samples", "0"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["n"] == 50 and 0 < result["bits_per_dim"] < 12
    assert result["nll_nats"] == pytest.approx(result["bits_per_dim"] * 784 * math.log(2))
    assert main(["sample", str(out), "--n", "4", "--out", str(tmp_path / "s.png")]) == 0


def test_overflowing_samples_become_clamped_pixels_not_nan():
    x = torch.tensor([float("nan"), float("inf"), -float("inf"), 0.25, 1e10, -3.0])
    assert as_image(x).tolist() == [0.0, 1.0, 0.0, 0.25, 1.0, 0.0]
