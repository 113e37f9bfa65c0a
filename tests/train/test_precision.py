"""`--precision bf16`: convolutions in bfloat16, weights and loss in float32, offered only where
checked."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from genlab import workflow
from genlab.errors import ConfigError
from genlab.models import pixelcnn, vae, wavenet
from genlab.models.cpc import CPC, CPCConfig, RotNet, RotNetConfig
from genlab.models.cpc_audio import AudioCPC, AudioCPCConfig
from genlab.models.flow_models import GlowConfig, ImageFlow, RealNVPConfig
from genlab.models.gan import GAN, critic_loss, gan_step, generator_loss
from genlab.models.pixelcnn import GatedPixelCNNConfig, PixelCNN, PixelCNNConfig
from genlab.models.pixelvae import PixelVAE, PixelVAEConfig
from genlab.models.vae import VAE, AutoEncoder, VAEConfig
from genlab.models.wavenet import WaveNet, WaveNetConfig
from genlab.tasks.entry import default_step
from genlab.tasks.registry import MODELS
from genlab.train.config import TrainConfig
from genlab.train.loop import autocast, gradient_step, make_state
from genlab.train.state import TrainState

WAVENET = {"channels": 8, "gate_channels": 8, "skip_channels": 8, "stacks": 1, "layers": 3}


def small(name: str, output: str) -> tuple[nn.Module, dict[str, torch.Tensor]]:
    """A small net of each model that offers bf16, with this output distribution (flows: this
    coupling), and a batch for it."""
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    if name in ("glow", "realnvp"):
        x = torch.randint(256, (4, 1, 28, 28), generator=g) / 256.0
        flow = {"levels": 2, "depth": 8, "hidden": 16, "logit": 0.05}  # the default depth
        options = GlowConfig(**flow, coupling=output) if name == "glow" else RealNVPConfig(**flow)
        net = ImageFlow(options)
        for p in net.parameters():  # trained-like: couplings that are not the identity
            p.data.add_(0.02 * torch.randn(p.shape, generator=g))
        return net, {"x": x}
    if name in ("pixelcnn", "gated_pixelcnn"):
        options = PixelCNNConfig if name == "pixelcnn" else GatedPixelCNNConfig
        x = torch.randint(256, (4, 1, 8, 8), generator=g)
        x = (x > 127).float() if output == "bernoulli" else x
        return PixelCNN(options(channels=8, layers=2, output=output)), {"x": x}
    if name == "wavenet":
        x = torch.randint(256, (2, 40), generator=g)
        batch = {"x": x, "mask": torch.ones_like(x, dtype=torch.bool),
                 "speaker": torch.tensor([0, 1]), "digit": torch.tensor([3, 7])}  # fmt: skip
        return WaveNet(WaveNetConfig(**WAVENET, output=output)), batch
    if name in ("vae", "ae", "pixelvae"):
        x = (torch.rand(4, 1, 28, 28, generator=g) > 0.5).float()
        if name == "pixelvae":
            return PixelVAE(PixelVAEConfig(latent_dim=4, channels=8, hidden=32, decoder_channels=8,
                                           decoder_layers=2)), {"x": x}  # fmt: skip
        options = VAEConfig(latent_dim=4, channels=8, hidden=32, likelihood=output)
        return (VAE if name == "vae" else AutoEncoder)(options), {"x": x}
    if name in ("cpc", "rotnet"):
        x = torch.rand(4, 1, 28, 28, generator=g)
        small_patches = {"channels": 8, "code_dim": 16}
        if name == "rotnet":
            return RotNet(RotNetConfig(**small_patches)), {"x": x}
        return CPC(CPCConfig(**small_patches, context_dim=16)), {"x": x}
    if name == "cpc_audio":
        x = torch.randint(256, (2, 800), generator=g)
        batch = {"x": x, "mask": torch.ones_like(x, dtype=torch.bool)}
        return AudioCPC(AudioCPCConfig(crop=800, channels=16, code_dim=16, context_dim=16)), batch
    raise AssertionError(f"no small '{name}' here: add one for the model that now offers bf16")


OFFERED = [name for name, entry in MODELS.items() if entry.bf16]
GANS = ("dcgan", "wgan", "wgan_gp")  # their own step: checked below
OWN_TEST = ("impala", "a2c", "spiral")  # tests/agents/test_impala.py, test_spiral.py
OUTPUTS = {"pixelcnn": pixelcnn.OUTPUTS, "gated_pixelcnn": pixelcnn.OUTPUTS,
           "wavenet": wavenet.OUTPUTS, "glow": ("affine", "additive"), "realnvp": ("affine",),
           "vae": vae.LIKELIHOODS, "ae": ("bernoulli",), "pixelvae": ("bernoulli",),
           "cpc": ("infonce",), "rotnet": ("rotation",), "cpc_audio": ("infonce",)}  # fmt: skip
CASES = [(name, output) for name in OFFERED if name not in GANS + OWN_TEST
         for output in OUTPUTS[name]]  # fmt: skip


def test_the_models_that_offer_bf16_are_the_ones_checked_here():
    assert set(OFFERED) == {"pixelcnn", "gated_pixelcnn", "wavenet", "glow", "realnvp", "vae",
                            "ae", "pixelvae", "cpc", "rotnet", "cpc_audio", *GANS,
                            *OWN_TEST}  # fmt: skip
    for name in OFFERED:  # autocast wraps the default step's forward, and the GANs' own
        assert MODELS[name].make_step in (default_step, gan_step) or name == "spiral"


@pytest.mark.parametrize("name,output", CASES)
def test_bf16_loss_is_float32_and_near_the_float32_loss(name, output):
    net, batch = small(name, output)
    torch.manual_seed(1)  # the same noise in both passes (a VAE's reparameterisation)
    full = net.loss(batch)["loss"]
    convs_in = []
    for m in net.modules():
        if isinstance(m, nn.Conv1d | nn.Conv2d):
            m.register_forward_hook(lambda mod, inp, out: convs_in.append(out.dtype))
    torch.manual_seed(1)
    with autocast("bf16"):
        half = net.loss(batch)["loss"]
    assert torch.bfloat16 in convs_in  # the convolutions did run in bfloat16
    assert half.dtype == torch.float32
    assert abs(half.item() - full.item()) < TOLERANCE.get(output, 2e-4) * abs(full.item())


# Relative |bf16 - fp32| loss, measured: flows, PixelCNNs, WaveNet, both CPCs <= 3.3e-5; VAE,
# AE, PixelVAE and RotNet <= 8.7e-5; the continuous Bernoulli's normaliser, steep near logit 0
# where a fresh decoder's logits are, 8.3e-3.
TOLERANCE = {"continuous_bernoulli": 2e-2}


@pytest.mark.parametrize("name", GANS)
def test_a_gan_under_bf16_scores_in_float32_near_float32(name):
    torch.manual_seed(0)
    net = GAN(MODELS[name].options(channels=8, latent_dim=8))
    real = (torch.rand(4, 1, 28, 28) > 0.5).float()
    z = torch.randn(4, 8)
    values = []
    for precision in ("fp32", "bf16"):
        torch.manual_seed(2)  # the same interpolation for the gradient penalty
        with autocast(precision):
            fake = net.generate(z)
            d = critic_loss(net, real, fake)
            values.append((fake, d, generator_loss(net, fake)))
    (fake32, d32, g32), (fake16, d16, g16) = values
    assert fake16.dtype == d16["d_loss"].dtype == g16.dtype == torch.float32
    assert (fake16 - fake32).abs().max() < 0.02  # pixels in [0, 1]
    for k in d32:
        assert abs(d16[k].item() - d32[k].item()) < 0.05 * abs(d32[k].item()) + 1e-3, k
    assert abs(g16.item() - g32.item()) < 0.05 * abs(g32.item()) + 1e-3


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 1))
        self.seen: list[torch.dtype] = []

    def loss(self, batch):
        out = self.net(batch["x"])
        self.seen.append(out.dtype)
        err = (out.float().squeeze(1) - batch["y"]).square().mean()
        return {"loss": err}


@pytest.mark.parametrize("precision,dtype", [("fp32", torch.float32), ("bf16", torch.bfloat16)])
def test_gradient_step_runs_the_forward_at_the_precision_and_keeps_weights_float32(
    precision, dtype
):
    torch.manual_seed(0)
    model = Tiny()
    x = torch.randn(64, 4)
    batch = {"x": x, "y": x.sum(1).sin()}
    state: TrainState = make_state(model, TrainConfig(lr=1e-2))
    step = gradient_step(precision=precision)
    losses = [step(state, batch)["loss"].item() for _ in range(60)]
    assert set(model.seen) == {dtype}
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert all(v.dtype == torch.float32 for s in state.optimizers["main"].state.values()
               for v in s.values() if v.is_floating_point())  # fmt: skip
    assert losses[-1] < 0.5 * losses[0]


def test_bf16_is_refused_for_a_model_not_checked_with_it(tmp_path):
    with pytest.raises(ConfigError, match=r"--precision bf16 is not offered for 'mdnrnn'.*glow"):
        workflow.run_spec(
            "mdnrnn", out=tmp_path / "run", train_options={"steps": 1, "precision": "bf16"}
        )
    assert not (tmp_path / "run").exists()


def test_an_unknown_precision_is_refused():
    with pytest.raises(ConfigError, match="auto, fp32, bf16, got 'fp16'"):
        TrainConfig(precision="fp16")


@pytest.mark.parametrize(
    "name,coupling", [("glow", "affine"), ("glow", "additive"), ("realnvp", "affine")]
)
def test_a_flow_under_bf16_stays_float32_and_invertible(name, coupling):
    """Only the coupling networks run in bfloat16: the stream and its 1x1 mixes stay float32, so
    the inverse undoes the forward (up to a rounding of a coupling's bfloat16 output, which may
    differ between the two passes by memory layout) and the log-dets cancel."""
    net, batch = small(name, coupling)
    x = batch["x"] - net.center
    with autocast("bf16"):
        z, logdet = net.flow.transform(x)
        back, inv_logdet = net.flow.transform.inverse(z)
        half = net.bits_per_dim(batch["x"])
    assert z.dtype == logdet.dtype == torch.float32
    assert (back - x).abs().max() < 1e-3  # a bfloat16 stream: ~1e-2
    assert (logdet + inv_logdet).abs().max() < 1e-5 * logdet.abs().max()  # measured: <= 1.6e-6
    # Each image's bits/dim, as float32 gives it. Log-dets summed in bfloat16 (a coupling's
    # output not widened) move it by 7.5e-4 or more here; with the sums in float32, 6e-5 at most.
    assert (half - net.bits_per_dim(batch["x"])).abs().max() < 2e-4


@pytest.mark.parametrize("output", wavenet.OUTPUTS)
def test_crop_nll_scores_bfloat16_outputs_in_float32(output):
    """A WaveNet's bf16 outputs are widened before the likelihood: the loss equals the float32
    likelihood of the same (rounded) outputs."""
    net, batch = small("wavenet", output)
    with torch.no_grad():
        rounded = net(batch["x"], batch["speaker"], batch["digit"]).bfloat16()

    class Rounded(nn.Module):  # the net as bf16 autocast would leave its outputs
        def forward(self, *args):
            return rounded

        step_log_probs = net.step_log_probs

    exact = -net.step_log_probs(rounded.float(), batch["x"]).mean()
    assert torch.allclose(wavenet.crop_nll(Rounded(), batch)["loss"], exact, rtol=1e-6)


def test_compiled_and_eager_steps_give_the_same_losses(capsys):
    x = torch.randn(64, 4, generator=torch.Generator().manual_seed(1))
    batch = {"x": x, "y": x.sum(1).sin()}
    runs = []
    for compile in (False, True):
        torch.manual_seed(0)
        model = Tiny()
        state: TrainState = make_state(model, TrainConfig(lr=1e-2))
        step = gradient_step(compile=compile)
        runs.append([step(state, batch)["loss"].item() for _ in range(5)])
    assert runs[1] == pytest.approx(runs[0], rel=1e-5)
    assert "compiled the loss's forward in" in capsys.readouterr().err


def test_compile_is_refused_for_a_model_with_its_own_step(tmp_path):
    refused = r"--compile is not offered for 'wgan_gp' \(only: .*vae.*l2l_optimizer"
    with pytest.raises(ConfigError, match=refused):
        workflow.run_spec(
            "wgan_gp", out=tmp_path / "run", train_options={"steps": 1, "compile": True}
        )
