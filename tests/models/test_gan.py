"""GANs: the gradient penalty against a per-sample loop, the WGAN clip, gradients reaching every
parameter, a reusable critic, and a smoke run through the shared loop and the CLI."""

from __future__ import annotations

import json

import pytest
import torch

from genlab.cli import main
from genlab.data.batches import InMemoryBatches
from genlab.models.gan import (
    GAN,
    DCGANConfig,
    WGANConfig,
    WGANGPConfig,
    critic_loss,
    gan_step,
    generator_loss,
    gradient_penalty,
    make_gan_state,
)
from genlab.train.config import TrainConfig
from genlab.train.logger import read_metrics
from genlab.train.loop import fit

CONFIGS = [DCGANConfig, WGANConfig, WGANGPConfig]
TINY = dict(latent_dim=8, channels=4)


def images(n: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(seed))


def test_gradient_penalty_equals_a_per_sample_loop():
    torch.manual_seed(0)
    critic = GAN(WGANGPConfig(**TINY)).critic
    real, fake, alpha = images(5, 1), images(5, 2), torch.rand(5)
    naive = []
    for b in range(5):
        x_hat = (alpha[b] * real[b : b + 1] + (1 - alpha[b]) * fake[b : b + 1]).requires_grad_(True)
        (g,) = torch.autograd.grad(critic(x_hat).sum(), x_hat)
        naive.append((g.flatten().norm() - 1) ** 2)
    assert gradient_penalty(critic, real, fake, alpha).item() == pytest.approx(
        torch.stack(naive).mean().item(), rel=1e-5
    )


def test_critic_scores_each_image_on_its_own():
    torch.manual_seed(0)
    critic = GAN(WGANGPConfig(**TINY)).critic
    x = images(6)
    together = critic(x)
    assert together.shape == (6,)
    alone = torch.cat([critic(x[i : i + 1]) for i in range(6)])
    assert torch.allclose(together, alone, atol=1e-6)


@pytest.mark.parametrize("cls", CONFIGS)
@pytest.mark.parametrize("conditional", [False, True])
def test_losses_reach_every_parameter(cls, conditional):
    torch.manual_seed(0)
    model = GAN(cls(**TINY, conditional=conditional))
    y = torch.arange(4) % 10 if conditional else None
    real = images(4)
    fake = model.generate(torch.randn(4, 8), y)
    d = critic_loss(model, real, fake.detach(), y)
    d["d_loss"].backward()
    for name, p in model.critic.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    model.zero_grad()
    generator_loss(model, model.generate(torch.randn(4, 8), y), y).backward()
    for name, p in model.generator.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_dcgan_loss_is_the_binary_cross_entropy():
    model = GAN(DCGANConfig(**TINY))
    real, fake = images(3, 1), images(3, 2)
    d_real, d_fake = model.critic(real), model.critic(fake)
    expected = -(torch.sigmoid(d_real).log().mean() + (1 - torch.sigmoid(d_fake)).log().mean())
    assert critic_loss(model, real, fake)["d_loss"].item() == pytest.approx(
        expected.item(), rel=1e-5
    )
    g_expected = -torch.sigmoid(d_fake).log().mean()  # non-saturating
    assert generator_loss(model, fake).item() == pytest.approx(g_expected.item(), rel=1e-5)


def run_steps(cls, steps, tmp_path, **kw):
    torch.manual_seed(0)
    model = GAN(cls(**TINY, **kw))
    cfg = TrainConfig(steps=steps, batch_size=20, lr=1e-3, log_every=1, schedule="cosine")
    x = images(200)
    batches = InMemoryBatches({"x": x, "y": torch.arange(200) % 10}, 20)
    state = make_gan_state(model, cfg)
    return fit(state, batches, cfg, tmp_path, gan_step(cfg), progress=False), state


def test_wgan_weight_clip_holds_after_every_step(tmp_path):
    torch.manual_seed(0)
    model = GAN(WGANConfig(**TINY, clip=0.01))
    cfg = TrainConfig(steps=4, batch_size=20, lr=0.1)
    state = make_gan_state(model, cfg)
    step = gan_step(cfg)
    batches = InMemoryBatches({"x": images(100)}, 20)
    for s in range(4):
        step(state, batches.batch(s))
        state.step += 1
        for p in model.critic.parameters():
            assert p.abs().max() <= 0.01 + 1e-7


def test_schedules_count_generator_steps_not_critic_updates(tmp_path):
    _, state = run_steps(WGANGPConfig, 6, tmp_path, n_critic=2)
    for sched in state.schedulers.values():
        assert sched.last_epoch == 6
    assert state.optimizers["critic"].param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)


def test_seeded_gan_training_repeats(tmp_path):
    run_steps(WGANGPConfig, 3, tmp_path / "a", n_critic=2)
    run_steps(WGANGPConfig, 3, tmp_path / "b", n_critic=2)
    a, b = read_metrics(tmp_path / "a"), read_metrics(tmp_path / "b")
    assert a == b and {"g_loss", "d_loss", "gp", "wasserstein"} <= set(a[0])


def test_conditional_sampling_cycles_classes():
    model = GAN(WGANGPConfig(**TINY, conditional=True)).eval()
    g = torch.Generator().manual_seed(0)
    x = model.sample(12, generator=g)
    assert x.shape == (12, 1, 28, 28) and x.min() >= 0 and x.max() <= 1
    chosen = model.sample(
        12, generator=torch.Generator().manual_seed(0), y=torch.zeros(12, dtype=torch.long)
    )
    assert not torch.equal(x, chosen)


def test_cli_trains_and_evaluates_a_gan(data_root, tmp_path, capsys):
    out = tmp_path / "gan"
    args = ["train", "wgan_gp", "--steps", "3", "--batch-size", "40", "--latent-dim", "8"]
    assert main([*args, "--channels", "4", "--out", str(out), "--quiet", "--conditional"]) == 0
    assert (out / "pictures" / "samples.png").is_file()
    config = json.loads((out / "config.json").read_text())
    assert config["model_options"]["conditional"] is True
    # the model's CPU defaults, not TrainConfig's: lr 4e-4, EMA 0.998, 2 critic updates
    assert config["train"]["lr"] == 4e-4 and config["train"]["ema_decay"] == 0.998
    assert config["model_options"]["n_critic"] == 2
    capsys.readouterr()
    assert main(["eval", str(out), "--json", "--samples", "0"]) == 0
    assert json.loads(capsys.readouterr().out)["likelihood"].startswith("none")


def test_progress_grids_do_not_disturb_training_and_resume_is_exact(data_root, tmp_path):
    """Sample grids at every checkpoint use eval mode and their own RNG: a run with them, cut
    in two and resumed, logs exactly the losses of an uninterrupted run."""
    tiny = ["--latent-dim", "8", "--channels", "4", "--batch-size", "20", "--quiet"]
    common = ["train", "dcgan", "--log-every", "1", "--checkpoint-every", "2", *tiny]
    assert main([*common, "--steps", "6", "--out", str(tmp_path / "ref")]) == 0
    assert main([*common, "--steps", "3", "--out", str(tmp_path / "cut")]) == 0
    assert main([*common, "--steps", "6", "--out", str(tmp_path / "cut")]) == 0
    assert read_metrics(tmp_path / "cut") == read_metrics(tmp_path / "ref")
    grids = sorted(p.name for p in (tmp_path / "ref" / "pictures" / "progress").iterdir())
    assert grids == ["step_0000002.png", "step_0000004.png", "step_0000006.png"]
    assert (tmp_path / "ref" / "pictures" / "interpolation_spherical.png").is_file()
