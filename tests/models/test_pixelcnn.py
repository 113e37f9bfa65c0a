"""PixelCNN family: causality for every pixel, the blind spot and its absence, masks with channel
groups, the row window for sampling, likelihoods."""

from __future__ import annotations

import json

import pytest
import torch

from genlab.cli import main
from genlab.errors import ConfigError
from genlab.models.pixelcnn import PixelCNN, PixelCNNConfig
from genlab.nn.masked import raster_mask

H = W = 6


def net(**kw) -> PixelCNN:
    torch.manual_seed(0)
    return PixelCNN(PixelCNNConfig(**{"channels": 8, "layers": 4, **kw})).double()


def dependencies(model: PixelCNN, i: int, j: int) -> torch.Tensor:
    """(H, W) bool: which input pixels output (i, j) has a nonzero gradient for."""
    x = torch.rand(1, 1, H, W, dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(model(x)[0, :, i, j].sum(), x)
    return grad[0, 0] != 0


def earlier(i: int, j: int) -> torch.Tensor:
    idx = torch.arange(H * W).reshape(H, W)
    return idx < i * W + j


@pytest.mark.parametrize("kind,kernel", [("pixelcnn", 3), ("gated", 3), ("gated", 5)])
def test_no_output_sees_its_own_pixel_or_later_ones(kind, kernel):
    model = net(kind=kind, kernel=kernel)
    for i in range(H):
        for j in range(W):
            seen = dependencies(model, i, j)
            assert not (seen & ~earlier(i, j)).any(), (i, j)


def test_gated_pixelcnn_has_no_blind_spot_and_pixelcnn_has_one():
    # Receptive fields wider than the 6x6 image: 6 layers of kernel 3, or 3 of kernel 5.
    for gated in (net(kind="gated", layers=6), net(kind="gated", layers=3, kernel=5)):
        for i in range(H):
            for j in range(W):
                assert torch.equal(dependencies(gated, i, j), earlier(i, j)), (i, j)
    plain = net(kind="pixelcnn", layers=6)
    missed = earlier(3, 1) & ~dependencies(plain, 3, 1)
    assert missed.any()  # pixels above and to the right are never seen: the blind spot
    assert missed[:3, 3:].any()


@pytest.mark.parametrize("kind,kernel", [("pixelcnn", 3), ("gated", 3), ("gated", 5)])
def test_receptive_rows_bound_the_dependencies(kind, kernel):
    model = net(kind=kind, layers=2, kernel=kernel)
    R = model.cfg.receptive_rows
    reach = []  # for each output row, how many rows up its last pixel sees
    for i in range(H):
        rows = dependencies(model, i, W - 1).any(1).nonzero().flatten()
        reach.append(i - int(rows.min()) if rows.numel() else 0)
    assert max(reach) == R  # never further than R, and the bound is tight


def test_channel_groups_order_the_centre_pixel():
    m = raster_mask(6, 3, 3, "A", groups=3)  # out groups of 2 channels, in groups of 1
    centre = m[:, :, 1, 1]
    assert centre.tolist() == [[0, 0, 0], [0, 0, 0], [1, 0, 0], [1, 0, 0], [1, 1, 0], [1, 1, 0]]
    b = raster_mask(6, 3, 3, "B", groups=3)[:, :, 1, 1]
    assert b[0].tolist() == [1, 0, 0] and b[5].tolist() == [1, 1, 1]
    assert (m[:, :, 2] == 0).all() and (m[:, :, 1, 2] == 0).all() and (m[:, :, 0] == 1).all()


@pytest.mark.parametrize(
    "output,kernel",
    [("bernoulli", 3), ("softmax", 3), ("logistic_mixture", 3), ("bernoulli", 5)],
)
def test_window_and_cached_sampling_equal_naive_and_likelihoods_are_normalised(output, kernel):
    # Three layers of kernel 3 reach 4 rows up, so on 6 rows the lower rows' windows start below
    # the top; kernel 5 reaches further, and its horizontal stacks see two columns per layer.
    model = net(kind="gated", layers=3, kernel=kernel, output=output, mixtures=2,
                conditional=True).float()  # fmt: skip
    u = torch.rand(2, H, W, 2, generator=torch.Generator().manual_seed(0))
    y = torch.tensor([3, 7])
    naive = model.sample_from_uniforms(u, y, temperature=0.9, method="naive")
    window = model.sample_from_uniforms(u, y, temperature=0.9, method="window")
    cached = model.sample_from_uniforms(u, y, temperature=0.9)  # auto: cached for gated
    assert torch.equal(window, naive) and torch.equal(cached, naive)
    assert naive.std() > 0  # not a blank image that any sampler would reproduce
    if output == "bernoulli":
        assert set(window.unique().tolist()) <= {0.0, 1.0}
        x = torch.zeros(1, 1, 1, 1)  # a one-pixel image: p(0) + p(1) = 1
        total = sum(model.log_prob(x + v, y[:1]).exp() for v in (0.0, 1.0))
    else:
        codes = torch.arange(256).view(256, 1, 1, 1)  # one-pixel images of every value
        total = model.log_prob(codes, y[:1].expand(256)).exp().sum()
    assert total.item() == pytest.approx(1.0, abs=1e-4)


def test_conditioning_matters_and_is_required():
    model = net(conditional=True).float()
    x = torch.bernoulli(torch.full((2, 1, 8, 8), 0.3))
    assert (model(x, torch.tensor([0, 0])) - model(x, torch.tensor([5, 5]))).abs().max() > 1e-4
    with pytest.raises(ConfigError, match="labels"):
        model(x)
    with pytest.raises(ConfigError, match="kernel"):
        PixelCNNConfig(kernel=4)


def test_loss_reaches_every_parameter():
    model = net(kind="gated", conditional=True).float()
    batch = {"x": torch.bernoulli(torch.full((3, 1, 8, 8), 0.3)), "y": torch.tensor([1, 2, 3])}
    out = model.loss(batch)
    out["loss"].backward()
    assert out["nll_nats"].item() == pytest.approx(out["loss"].item() * 64, rel=1e-5)
    assert not [n for n, p in model.named_parameters() if p.grad is None or not p.grad.any()]


CLI_CASES = [("gated_pixelcnn", "bernoulli", "fp32"), ("pixelcnn", "softmax", "fp32"),
             ("gated_pixelcnn", "bernoulli", "bf16")]  # fmt: skip


@pytest.mark.parametrize("model,output,precision", CLI_CASES)
def test_pixelcnn_trains_evaluates_and_samples_from_the_cli(model, output, precision, data_root,
                                                           tmp_path, capsys):  # fmt: skip
    out = tmp_path / model
    args = ["train", model, "--steps", "2", "--batch-size", "8", "--channels", "4", "--layers",
            "1", "--output", output, "--out", str(out), "--quiet", "--precision", precision]  # fmt: skip
    assert main(args) == 0
    assert (out / "pictures" / "samples.png").is_file()
    capsys.readouterr()
    assert main(["eval", str(out), "--json", "--n", "20", "--samples", "0"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["n"] == 20 and result["nll_nats"] > 0
    assert ("bits_per_dim" in result) == (output != "bernoulli")
    assert main(["sample", str(out), "--n", "4", "--out", str(tmp_path / "s.png")]) == 0
