"""VAE and autoencoder: the model contract, and every likelihood term against a naive reference."""

from __future__ import annotations

import math

import pytest
import torch

from contracts import (
    check_loss_finite_and_gradients_reach_every_parameter,
    check_sample,
    check_seeded_runs_identical,
)
from genlab.errors import ConfigError
from genlab.metrics.likelihood import (
    gaussian_kl_standard_normal,
    importance_sampled_nll,
    iwae_bound,
    nats_to_bits_per_dim,
)
from genlab.models.vae import VAE, AutoEncoder, VAEConfig
from genlab.nn.likelihoods import (
    bernoulli_log_prob,
    continuous_bernoulli_log_norm,
    gaussian_log_prob,
)

SMALL = dict(latent_dim=4, channels=4, hidden=16)


def binary_batch(n=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"x": torch.rand(n, 1, 28, 28, generator=g).round()}


@pytest.mark.parametrize("likelihood", ["bernoulli", "continuous_bernoulli", "gaussian"])
@pytest.mark.parametrize("cls", [VAE, AutoEncoder])
def test_contract(cls, likelihood):
    torch.manual_seed(0)
    cfg = VAEConfig(**SMALL, likelihood=likelihood)
    batch = binary_batch() if likelihood == "bernoulli" else {"x": binary_batch()["x"] * 0.8 + 0.1}
    check_loss_finite_and_gradients_reach_every_parameter(cls(cfg), batch)
    check_seeded_runs_identical(lambda: cls(cfg), batch)


def test_vae_samples_are_images_in_unit_interval():
    model = VAE(VAEConfig(**SMALL))
    check_sample(model, 5, (1, 28, 28))
    x = model.sample(5)
    assert x.min() >= 0.0 and x.max() <= 1.0


def test_loss_terms_add_up_and_beta_weights_kl():
    torch.manual_seed(0)
    model = VAE(VAEConfig(**SMALL, beta=4.0))
    torch.manual_seed(1)
    m = model.loss(binary_batch())
    assert m["neg_elbo"].item() == pytest.approx((m["rec"] + m["kl"]).item(), rel=1e-6)
    assert m["loss"].item() == pytest.approx((m["rec"] + 4.0 * m["kl"]).item(), rel=1e-6)


def test_kl_tolerance_counts_each_example_s_kl_as_at_least_its_floor():
    """The World Models paper's V: max(KL, tolerance * Z) per example, so the first nats of z
    are free (no gradient pulls q towards the prior below the floor)."""
    cfg = dict(SMALL, likelihood="gaussian", gaussian_std=0.7071)
    torch.manual_seed(0)
    model = VAE(VAEConfig(**cfg, kl_tolerance=0.5))
    batch = {"x": torch.rand(6, 1, 28, 28)}
    torch.manual_seed(1)
    m = model.loss(batch)
    mu, logvar = model.encode(batch["x"])
    kl = gaussian_kl_standard_normal(mu, logvar)  # (B,)
    floor = 0.5 * model.cfg.latent_dim
    counted = torch.tensor([max(float(k), floor) for k in kl])
    assert m["loss"].item() == pytest.approx((m["rec"] + counted.mean()).item(), rel=1e-5)
    assert m["kl"].item() == pytest.approx(kl.mean().item(), rel=1e-5)  # reported as it is
    free = VAE(VAEConfig(**cfg, kl_tolerance=1e3))  # every example's KL below its floor
    free.load_state_dict(model.state_dict())

    def grads(term: str) -> list[torch.Tensor]:
        free.zero_grad()
        torch.manual_seed(2)  # the same z draw for both
        free.loss(batch)[term].backward()
        return [p.grad.clone() for p in free.parameters()]

    assert all(torch.allclose(a, b) for a, b in zip(grads("loss"), grads("rec"), strict=True))
    with pytest.raises(ConfigError, match="kl_tolerance"):
        VAEConfig(**SMALL, kl_tolerance=-1.0)


def test_analytic_kl_matches_monte_carlo():
    torch.manual_seed(0)
    mu, logvar = torch.randn(3, 5), torch.randn(3, 5) * 0.5
    q = torch.distributions.Normal(mu, (0.5 * logvar).exp())
    z = q.sample((200_000,))
    p = torch.distributions.Normal(0.0, 1.0)
    mc = (q.log_prob(z) - p.log_prob(z)).sum(-1).mean(0)
    assert torch.allclose(gaussian_kl_standard_normal(mu, logvar), mc, atol=0.03)


def test_pixel_likelihoods_match_torch_distributions():
    torch.manual_seed(0)
    logits, x = torch.randn(2, 1, 4, 4), torch.rand(2, 1, 4, 4).round()
    ref = torch.distributions.Bernoulli(logits=logits).log_prob(x).flatten(1).sum(1)
    assert torch.allclose(bernoulli_log_prob(logits, x), ref, atol=1e-5)
    mean, log_std, y = torch.rand(2, 1, 4, 4), torch.randn(1, 1, 4, 4) * 0.3, torch.rand(2, 1, 4, 4)
    ref = torch.distributions.Normal(mean, log_std.exp()).log_prob(y).flatten(1).sum(1)
    assert torch.allclose(gaussian_log_prob(mean, log_std, y), ref, atol=1e-5)


def test_continuous_bernoulli_normalizer_integrates_density_to_one():
    logits = torch.tensor([-4.0, -1.0, -0.01, 0.0, 0.003, 0.5, 3.0])
    lam = torch.sigmoid(logits).double()
    x = torch.linspace(0, 1, 200_001, dtype=torch.float64).unsqueeze(1)
    unnormalized = lam**x * (1 - lam) ** (1 - x)
    integral = torch.trapezoid(unnormalized, x.squeeze(1), dim=0)  # = 1 / C(lambda)
    assert torch.allclose(
        continuous_bernoulli_log_norm(logits).double(), -integral.log(), atol=1e-4
    )


def test_iwae_bound_formula_and_jensen():
    log_w = torch.randn(50, 7) * 3
    naive = torch.tensor([math.log(sum(math.exp(v) for v in col) / 50) for col in log_w.T.tolist()])
    assert torch.allclose(iwae_bound(log_w), naive, atol=1e-4)
    assert (iwae_bound(log_w) >= log_w.mean(0)).all()
    assert torch.allclose(iwae_bound(log_w[:1]), log_w[0])  # K = 1 is the ELBO sample


def test_iwae_never_worse_than_elbo_and_streaming_equals_one_shot():
    torch.manual_seed(0)
    model = VAE(VAEConfig(**SMALL)).eval()
    x = binary_batch(12)["x"]
    torch.manual_seed(5)
    est = importance_sampled_nll(model.log_weights, x, k=40, batch_size=5, max_images=5 * 7)
    assert (est["nll"] <= est["neg_elbo"] + 1e-4).all()  # example by example


def test_streaming_over_chunks_equals_the_formula_on_all_weights():
    torch.manual_seed(0)
    log_w_all, log_px_all = torch.randn(40, 12) * 20, torch.randn(40, 12)
    taken = {}  # rows of the (K, N) tables already handed out, per batch

    def fixed_log_weights(xb, kc):  # xb holds example indices
        cols = xb.long()
        start = taken.get(int(cols[0]), 0)
        taken[int(cols[0])] = start + kc
        return log_w_all[start : start + kc, cols], log_px_all[start : start + kc, cols]

    x = torch.arange(12.0)
    est = importance_sampled_nll(fixed_log_weights, x, k=40, batch_size=5, max_images=5 * 7)
    assert torch.allclose(est["nll"], -iwae_bound(log_w_all), atol=1e-4)
    assert torch.allclose(est["neg_elbo"], -log_w_all.mean(0), atol=1e-4)
    assert torch.allclose(est["rec"], -log_px_all.mean(0), atol=1e-5)


def test_iwae_converges_to_exact_marginal_likelihood_in_one_dimension():
    """With a 1-d latent, log p(x) = log ∫ p(x|z) p(z) dz is computed on a fine grid."""
    torch.manual_seed(0)
    model = VAE(VAEConfig(latent_dim=1, channels=2, hidden=8)).eval()
    x = binary_batch(2)["x"]
    z = torch.linspace(-8, 8, 8001).unsqueeze(1)
    with torch.no_grad():
        logits = model.decoder(z)
        exact = []
        for xi in x:
            log_joint = bernoulli_log_prob(logits, xi.expand_as(logits)) - 0.5 * (
                z.squeeze(1) ** 2 + math.log(2 * math.pi)
            )
            exact.append(torch.logsumexp(log_joint, 0) + math.log(16 / 8000))
    exact = -torch.stack(exact)
    torch.manual_seed(1)
    est = importance_sampled_nll(model.log_weights, x, k=20_000)
    assert torch.allclose(est["nll"], exact, atol=0.05)
    assert (est["neg_elbo"] > exact).all()


def test_bits_per_dim_conversion():
    assert nats_to_bits_per_dim(784 * math.log(2), 784) == pytest.approx(1.0)


def test_models_satisfy_the_protocols():
    from genlab.interfaces import GenerativeModel, LatentModel

    vae, ae = VAE(VAEConfig(**SMALL)), AutoEncoder(VAEConfig(**SMALL))
    assert isinstance(vae, GenerativeModel) and isinstance(vae, LatentModel)
    assert isinstance(ae, LatentModel)


def test_a_fixed_gaussian_std_makes_the_reconstruction_term_the_papers_squared_error():
    torch.manual_seed(0)
    vae = VAE(VAEConfig(**SMALL, likelihood="gaussian", gaussian_std=math.sqrt(0.5)))
    assert not any("log_std" in k for k in vae.state_dict())  # the std is the config's
    learned = VAE(VAEConfig(**SMALL, likelihood="gaussian")).state_dict()
    with pytest.raises(RuntimeError, match="log_std"):  # a learned-std checkpoint is refused
        vae.load_state_dict(learned)
    logits, x = torch.randn(3, 1, 28, 28), torch.rand(3, 1, 28, 28)
    sse = ((torch.sigmoid(logits) - x) ** 2).flatten(1).sum(1)  # (B,)
    const = 784 * 0.5 * math.log(math.pi)  # -log N(x; mu, 1/2) = (x - mu)^2 + log(pi)/2
    assert torch.allclose(-vae.log_px(logits, x), sse + const, atol=1e-3)
    with pytest.raises(ConfigError, match="gaussian_std -1"):
        VAEConfig(likelihood="gaussian", gaussian_std=-1.0)
    with pytest.raises(ConfigError, match="likelihood 'bernoulli'"):
        VAEConfig(gaussian_std=0.5)


def test_the_mnist_layout_is_unchanged_so_old_checkpoints_load():
    shapes = {
        k: tuple(v.shape) for k, v in VAE(VAEConfig(likelihood="gaussian")).state_dict().items()
    }
    assert shapes == {
        "log_std": (1, 1, 28, 28),
        "decoder.net.0.weight": (512, 32), "decoder.net.0.bias": (512,),
        "decoder.net.2.weight": (3136, 512), "decoder.net.2.bias": (3136,),
        "decoder.net.5.weight": (64, 32, 4, 4), "decoder.net.5.bias": (32,),
        "decoder.net.7.weight": (32, 1, 4, 4), "decoder.net.7.bias": (1,),
        "encoder.net.0.weight": (32, 1, 4, 4), "encoder.net.0.bias": (32,),
        "encoder.net.2.weight": (64, 32, 4, 4), "encoder.net.2.bias": (64,),
        "encoder.net.5.weight": (512, 3136), "encoder.net.5.bias": (512,),
        "encoder.net.7.weight": (64, 512), "encoder.net.7.bias": (64,),
    }  # fmt: skip


def test_a_64x64_colour_vae_is_the_world_models_v():
    torch.manual_seed(0)
    vae = VAE(VAEConfig(image_size=64, image_channels=3, likelihood="gaussian"))
    convs = [m for m in vae.encoder.net if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [32, 64, 128, 256]  # 64 -> 32 -> 16 -> 8 -> 4
    x = torch.rand(5, 3, 64, 64)
    mu, logvar = vae.encode(x)
    assert mu.shape == logvar.shape == (5, 32)
    assert vae.mean_image(mu).shape == (5, 3, 64, 64) and vae.sample(2).shape == (2, 3, 64, 64)
    out = vae.loss({"x": x})
    assert torch.isfinite(out["loss"]) and out["loss"].item() == pytest.approx(
        (out["rec"] + out["kl"]).item(), rel=1e-5
    )
    with pytest.raises(ConfigError, match="image_size 6"):
        VAEConfig(image_size=6)


def test_the_posterior_logvar_is_clamped_in_value_but_not_in_gradient():
    from genlab.nn.conv import gaussian_posterior

    h = torch.tensor([[0.5, -1.0, 3.0, 20.0, -30.0, 0.0]], requires_grad=True)  # mu 3, logvar 3
    mu, logvar = gaussian_posterior(h)
    assert mu.tolist() == [[0.5, -1.0, 3.0]] and logvar.tolist() == [[8.0, -12.0, 0.0]]
    gaussian_kl_standard_normal(mu, logvar).sum().backward()
    # d KL / d logvar = (exp(logvar) - 1) / 2 at the clamped value: nonzero where a clamp gives 0
    expected = [(math.exp(8.0) - 1) / 2, (math.exp(-12.0) - 1) / 2, 0.0]
    assert torch.allclose(h.grad[0, 3:], torch.tensor(expected), rtol=1e-5)
