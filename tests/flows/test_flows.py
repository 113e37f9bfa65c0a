"""Flow contracts on every building block: exact inverse, log-dets that cancel and equal the
autograd Jacobian's, ActNorm's saved initialisation, and a density that integrates to one."""

from __future__ import annotations

import io
import math

import pytest
import torch

from genlab.flows.base import Compose, Flow, Invert
from genlab.flows.layers import (
    ActNorm,
    AffineCoupling,
    CouplingNet,
    InvConv1x1,
    InvConv1x1LU,
    Logit,
    MaskedAffineCoupling,
    Squeeze,
    channel_mask,
    checkerboard_mask,
)
from genlab.flows.multiscale import MultiScale, level_shapes
from genlab.metrics.likelihood import dequantized_log_prob


def randomise(module: torch.nn.Module, scale: float = 0.3) -> torch.nn.Module:
    """Give zero-initialised layers random weights, so couplings are not the identity."""
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return module


def coupling(c: int, additive: bool = False, embedding: int = 0) -> AffineCoupling:
    out = c - c // 2 if additive else 2 * (c - c // 2)
    return AffineCoupling(CouplingNet(c // 2, out, 8, embedding), additive, embedding)


def actnorm(c: int) -> ActNorm:
    a = ActNorm(c)
    a(torch.randn(16, c, 4, 4) * 3 + 1)  # data-dependent initialisation
    return a


TRANSFORMS = {
    "actnorm": lambda: actnorm(4),
    "invconv": lambda: InvConv1x1(4),
    "invconv_lu": lambda: InvConv1x1LU(4),
    "affine_coupling": lambda: coupling(4),
    "affine_coupling_odd": lambda: coupling(3),
    "additive_coupling": lambda: coupling(4, additive=True),
    "coupling_with_step_embedding": lambda: coupling(4, embedding=3),
    "checkerboard": lambda: MaskedAffineCoupling(CouplingNet(4, 8, 8), checkerboard_mask(4, 4, 1)),
    "channel_mask": lambda: MaskedAffineCoupling(CouplingNet(4, 8, 8), channel_mask(4)),
    "squeeze": Squeeze,
    "compose": lambda: Compose(actnorm(4), InvConv1x1LU(4), coupling(4), Squeeze()),
    "invert": lambda: Invert(coupling(4)),
    "logit": lambda: Logit(0.05),
}


def data(name: str, *shape: int) -> torch.Tensor:
    """Test input in the transform's domain: [0, 1) for the logit, anything for the rest."""
    g = torch.rand if name == "logit" else torch.randn
    return g(*shape, dtype=torch.float64)


def make(name: str) -> torch.nn.Module:
    torch.manual_seed(1)
    return randomise(TRANSFORMS[name]()).double().eval()


@pytest.mark.parametrize("name", TRANSFORMS)
def test_inverse_undoes_forward_and_logdets_cancel(name):
    t = make(name)
    c = 3 if name.endswith("odd") else 4
    x = data(name, 5, c, 4, 4)
    z, ld_fwd = t(x)
    back, ld_inv = t.inverse(z)
    assert ld_fwd.shape == (5,)
    assert torch.allclose(back, x, atol=1e-10)
    assert torch.allclose(ld_fwd + ld_inv, torch.zeros(5, dtype=torch.float64), atol=1e-10)
    if name not in ("squeeze",):
        assert not torch.allclose(z.reshape(x.shape), x)  # it does something


@pytest.mark.parametrize("name", TRANSFORMS)
def test_logdet_equals_the_autograd_jacobian(name):
    t = make(name)
    c = 3 if name.endswith("odd") else 4
    x = data(name, 2, c, 4, 4)
    _, logdet = t(x)
    for b in range(2):

        def f(v, b=b):
            return t(v.reshape(1, *x.shape[1:]))[0].flatten()

        jac = torch.autograd.functional.jacobian(f, x[b].flatten())  # (D, D)
        assert torch.allclose(torch.linalg.slogdet(jac)[1], logdet[b], atol=1e-8)


def test_actnorm_initialises_from_data_and_the_state_survives_saving():
    a = ActNorm(3)
    x = torch.randn(64, 3, 5, 5) * torch.tensor([1.0, 4.0, 0.1])[None, :, None, None] + 2.0
    y, _ = a(x)
    assert torch.allclose(y.mean((0, 2, 3)), torch.zeros(3), atol=1e-5)
    assert torch.allclose(y.std((0, 2, 3)), torch.ones(3), atol=1e-3)
    buf = io.BytesIO()
    torch.save(a.state_dict(), buf)
    fresh = ActNorm(3)
    fresh.load_state_dict(torch.load(io.BytesIO(buf.getvalue()), weights_only=True))
    assert fresh.initialized.item() == 1
    assert torch.equal(fresh(x * 5)[0], a(x * 5)[0])  # not re-initialised on new data
    assert ActNorm(3).eval()(x)[0].equal(x)  # eval mode never initialises


def test_a_flow_density_integrates_to_the_mass_its_samples_put_there():
    """A random 2-D flow (points as 2-channel 1x1 images): the integral of p(x) over a grid
    equals the fraction of the flow's own samples that land in it (and is most of the mass)."""
    torch.manual_seed(3)
    transform = Compose(actnorm2d(), coupling(2), InvConv1x1LU(2), coupling(2), InvConv1x1(2))
    flow = Flow(randomise(transform, 0.1).double().eval(), (2, 1, 1))
    ticks = torch.linspace(-8, 8, 401, dtype=torch.float64)
    grid = torch.cartesian_prod(ticks, ticks)[:, :, None, None]  # (N, 2, 1, 1)
    with torch.no_grad():
        integral = (flow.log_prob(grid).exp().sum() * (ticks[1] - ticks[0]) ** 2).item()
        samples = flow.sample(40_000, generator=torch.Generator().manual_seed(5)).flatten(1)
    inside = (samples.abs() <= 8).all(1).double().mean().item()
    assert integral == pytest.approx(inside, abs=0.01)
    assert integral > 0.9


def actnorm2d() -> ActNorm:
    a = ActNorm(2)
    a(torch.randn(100, 2, 1, 1) * 2)
    return a


def test_flow_samples_invert_to_their_noise_and_temperature_shrinks_them():
    torch.manual_seed(0)
    flow = Flow(Compose(actnorm(4), coupling(4), Squeeze()), (4, 4, 4), (16, 2, 2)).eval()
    x = flow.sample(3, generator=torch.Generator().manual_seed(1))
    assert x.shape == (3, 4, 4, 4)
    z = torch.randn(3, 16, 2, 2, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(flow.encode(x), z, atol=1e-5)
    cold = flow.sample(200, temperature=0.1, generator=torch.Generator().manual_seed(2))
    hot = flow.sample(200, temperature=1.0, generator=torch.Generator().manual_seed(2))
    assert cold.std() < hot.std()
    assert math.isfinite(flow.log_prob(x).sum().item())


def glow_like(event_shape=(1, 8, 8), levels=2) -> MultiScale:
    shapes = level_shapes(event_shape, levels)
    steps = [Compose(actnorm(c), InvConv1x1LU(c), coupling(c)) for c, _, _ in shapes]
    return MultiScale(event_shape, steps)


def test_multiscale_shapes_and_odd_sizes():
    assert level_shapes((1, 28, 28), 2) == [(4, 14, 14), (8, 7, 7)]
    with pytest.raises(ValueError, match="7x7"):
        level_shapes((1, 28, 28), 3)


def test_multiscale_is_an_exact_bijection_with_the_right_logdet():
    torch.manual_seed(2)
    ms = randomise(glow_like()).double().eval()
    x = torch.randn(3, 1, 8, 8, dtype=torch.float64)
    z, ld = ms(x)
    assert z.shape == (3, 64)
    back, ld_inv = ms.inverse(z)
    assert torch.allclose(back, x, atol=1e-10)
    assert torch.allclose(ld + ld_inv, torch.zeros(3, dtype=torch.float64), atol=1e-10)
    jac = torch.autograd.functional.jacobian(lambda v: ms(v.reshape(1, 1, 8, 8))[0][0],
                                             x[0].flatten())  # fmt: skip
    assert torch.allclose(torch.linalg.slogdet(jac)[1], ld[0], atol=1e-8)
    flow = Flow(ms, (1, 8, 8), (64,))
    assert flow.sample(2).shape == (2, 1, 8, 8)


def test_dequantization_accounting_matches_a_discrete_model():
    """A density that is uniform on each 8-bit level's cell scores exactly the discrete model it
    came from: P(x) = p(cell) / 256^D, so the bound is tight; uniform noise gives 8 bits/dim."""
    D = 3
    uniform = torch.zeros(4)  # log-density of U[0, 1)^D
    nats = -dequantized_log_prob(uniform, D, 256.0)
    assert torch.allclose(nats / (D * math.log(2)), torch.full((4,), 8.0, dtype=nats.dtype))
    # A density on [0, 256)^D (scale 1) that is 1/256^D: the same 8 bits/dim, no scale term.
    same = dequantized_log_prob(torch.full((4,), -D * math.log(256.0)), D, 1.0)
    assert torch.allclose(same, -nats)
