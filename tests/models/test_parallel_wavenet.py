"""Parallel WaveNet: the IAF student's algebra (inverse, log-det, causality, density), the
closed-form distillation KL, the power loss, the teacher as a differentiable scorer, and the CLI."""

from __future__ import annotations

import json
import math

import pytest
import torch

from genlab.cli import main
from genlab.errors import ConfigError
from genlab.flows.iaf import IAF, IAFStep, NativeIAF, logistic_log_prob
from genlab.models.audio_classifier import AudioClassifier, AudioClassifierConfig
from genlab.models.parallel_wavenet import (
    ParallelWaveNet,
    ParallelWaveNetConfig,
    categorical_kl,
    logistic_code_log_probs,
    power_loss,
)
from genlab.models.wavenet import WaveNet, WaveNetConfig
from genlab.nn import kernels
from genlab.tasks import audio as audio_tasks
from genlab.tasks.runs import load_run

TEACHER = {"channels": 8, "gate_channels": 8, "skip_channels": 8, "stacks": 1, "layers": 3}
STUDENT = {"flows": 2, "layers": 3, "channels": 4, "gate_channels": 4, "crop": 300}


def tiny_iaf(cond_dim: int = 0, dtype=torch.float64) -> IAF:
    torch.manual_seed(0)
    flow = IAF([IAFStep(4, 4, [1, 2, 4], cond_dim, -0.3) for _ in range(3)]).to(dtype)
    for p in flow.parameters():  # the zero-initialised heads would hide every bug
        torch.nn.init.normal_(p, std=0.3)
    return flow


def tiny_student(classifier=None, **kw) -> ParallelWaveNet:
    torch.manual_seed(0)
    teacher = WaveNet(WaveNetConfig(**TEACHER, output=kw.pop("output", "softmax")))
    return ParallelWaveNet(ParallelWaveNetConfig(**{**STUDENT, **kw}), teacher, classifier)


# --- the IAF -----------------------------------------------------------------------------------
def test_iaf_forward_inverts_the_sampling_direction_and_logdets_cancel():
    flow = tiny_iaf(cond_dim=3)
    z = torch.randn(2, 20, dtype=torch.float64)
    g = torch.randn(2, 3, dtype=torch.float64)
    x, ld_inverse = flow.inverse(z, g)
    z_back, ld_forward = flow(x, g)
    assert torch.allclose(z_back, z, atol=1e-6)
    assert torch.allclose(ld_forward + ld_inverse, torch.zeros(2, dtype=torch.float64), atol=1e-6)


def test_iaf_logdet_equals_slogdet_of_the_autograd_jacobian():
    flow = tiny_iaf()
    z = torch.randn(1, 12, dtype=torch.float64)
    jac = torch.autograd.functional.jacobian(lambda v: flow.inverse(v[None])[0][0], z[0])
    sign, logabsdet = torch.linalg.slogdet(jac)
    assert sign == 1  # every scale is positive
    assert flow.inverse(z)[1].item() == pytest.approx(logabsdet.item(), abs=1e-8)
    assert torch.allclose(jac, jac.tril())  # x_t depends on z_<=t only


def test_per_step_logistic_is_exact_and_sees_only_the_past():
    flow = tiny_iaf()
    z = torch.randn(1, 16, dtype=torch.float64, requires_grad=True)
    x, mean, log_scale = flow.sample(z)
    assert torch.allclose(x, z * log_scale.exp() + mean)
    for t in (0, 5, 15):
        (grad,) = torch.autograd.grad(mean[0, t] + log_scale[0, t], z, retain_graph=True)
        assert grad[0, t:].abs().max() == 0  # nothing from z_t onwards
        if t > 0:
            assert grad[0, :t].abs().max() > 0


def test_iaf_density_of_one_step_is_the_logistic_formula():
    # With T = 1 nothing precedes x_0: the flow is a logistic with the heads' biases.
    flow = tiny_iaf()
    x = torch.linspace(-3, 3, 7, dtype=torch.float64)[:, None]
    _, mean, log_scale = flow.sample(torch.zeros(7, 1, dtype=torch.float64))
    expected = logistic_log_prob((x - mean) / log_scale.exp()) - log_scale
    assert torch.allclose(flow.log_prob(x), expected[:, 0], atol=1e-10)
    grid = torch.linspace(-40, 40, 8001, dtype=torch.float64)[:, None]  # integrates to one
    mass = flow.log_prob(grid).exp().sum() * (grid[1, 0] - grid[0, 0])
    assert mass.item() == pytest.approx(1.0, abs=1e-4)


# --- the losses ---------------------------------------------------------------------------------
def test_binned_logistic_is_normalised_and_matches_cdf_differences():
    mean = torch.tensor([[-0.9, 0.0, 0.37]], dtype=torch.float64)
    log_scale = torch.tensor([[-3.0, -1.0, -5.0]], dtype=torch.float64)
    log_p = logistic_code_log_probs(mean, log_scale)  # (1, 3, 256)
    assert torch.allclose(log_p.exp().sum(-1), torch.ones(1, 3, dtype=torch.float64))
    edges = torch.cat([torch.tensor([-math.inf]), (2 * torch.arange(255) + 1) / 255 - 1,
                       torch.tensor([math.inf])]).double()  # fmt: skip
    cdf = torch.sigmoid((edges - mean[..., None]) / log_scale.exp()[..., None])
    assert torch.allclose(log_p.exp(), cdf[..., 1:] - cdf[..., :-1], atol=1e-9)


def test_categorical_kl_matches_torch_distributions():
    log_p = torch.randn(4, 7).log_softmax(-1)
    log_q = torch.randn(4, 7).log_softmax(-1)
    expected = torch.distributions.kl_divergence(
        torch.distributions.Categorical(logits=log_p), torch.distributions.Categorical(logits=log_q)
    )
    assert torch.allclose(categorical_kl(log_p, log_q), expected, atol=1e-6)
    assert categorical_kl(log_p, log_p).abs().max() < 1e-6


def test_power_loss_sees_a_whisper_and_not_the_timing():
    torch.manual_seed(0)
    real = torch.randn(2, 2000) * 0.3
    assert power_loss(real, real) == 0
    assert power_loss(real.roll(700, 1), real) < 0.05  # average power ignores when things happen
    whisper = power_loss(0.1 * real, real)  # power scales by 0.01: log difference ln 0.01
    assert whisper.item() == pytest.approx(math.log(0.01) ** 2, rel=1e-3)


# --- the teacher as a scorer ------------------------------------------------------------------
@pytest.mark.parametrize("output", ["softmax", "logistic_mixture"])
def test_teacher_code_log_probs_agree_with_its_log_prob(output):
    torch.manual_seed(0)
    net = WaveNet(WaveNetConfig(**TEACHER, output=output, mixtures=3, speaker=False, digit=False))
    x = torch.randint(0, 256, (2, 30))
    out = net(x)
    all_codes = net.code_log_probs(out)  # (2, 30, 256)
    assert torch.allclose(all_codes.gather(-1, x[..., None])[..., 0], net.step_log_probs(out, x),
                          atol=1e-5)  # fmt: skip
    assert torch.allclose(all_codes.logsumexp(-1), torch.zeros(2, 30), atol=1e-4)


def test_a_teacher_with_a_position_input_scores_from_the_clips_start():
    torch.manual_seed(0)
    teacher = WaveNet(WaveNetConfig(**TEACHER, position_every=4, position_buckets=3))
    torch.nn.init.normal_(teacher.position.weight)  # zero at the start; a trained one's is not
    net = ParallelWaveNet(ParallelWaveNetConfig(**STUDENT), teacher)
    x = torch.randint(0, 256, (2, 20))
    spk, dig = torch.tensor([0, 1]), torch.tensor([2, 3])
    y = 2 * x.float() / 255 - 1  # the codes' continuous values: embedded exactly
    got = net.teacher_log_probs(y, spk, dig)
    assert torch.allclose(got, teacher.code_log_probs(teacher(x, spk, dig)), atol=1e-5)


def test_a_guided_teacher_scores_with_the_guidance_formula():
    torch.manual_seed(0)
    config = WaveNetConfig(**TEACHER, position_every=4, position_buckets=3, digit_dropout=0.2)
    teacher = WaveNet(config)
    torch.nn.init.normal_(teacher.position.weight)
    net = ParallelWaveNet(ParallelWaveNetConfig(**STUDENT, teacher_guidance=2.0), teacher)
    x = torch.randint(0, 256, (2, 20))
    spk, dig = torch.tensor([0, 1]), torch.tensor([2, 3])
    with_digit, free = teacher(x, spk, dig), teacher(x, spk, torch.tensor([-1, -1]))
    want = (free + 2.0 * (with_digit - free)).log_softmax(1).transpose(1, 2)  # (B, T, 256)
    got = net.teacher_log_probs(2 * x.float() / 255 - 1, spk, dig)
    assert torch.allclose(got, want, atol=1e-5)
    assert not torch.allclose(got, teacher.code_log_probs(with_digit), atol=1e-3)
    guided = ParallelWaveNetConfig(**STUDENT, teacher_guidance=2.0)
    mixture = WaveNet(WaveNetConfig(**TEACHER, output="logistic_mixture", digit_dropout=0.2))
    with pytest.raises(ConfigError, match="teacher_guidance 2.0: guidance needs output=softmax"):
        ParallelWaveNet(guided, mixture)
    with pytest.raises(ConfigError, match="teacher_guidance 2.0: .*trained with digit_dropout"):
        ParallelWaveNet(guided, WaveNet(WaveNetConfig(**TEACHER)))


def test_continuous_embedding_is_exact_forward_and_interpolates_backward():
    torch.manual_seed(0)
    net = WaveNet(WaveNetConfig(**TEACHER, speaker=False, digit=False))
    codes = torch.tensor([[3, 128, 254]])
    y = (2 * codes.double() / 255 - 1 + 0.3 / 255).float().requires_grad_(True)  # 0.15 of a step
    e = net.embed_continuous(y)  # (1, C, 3)
    assert torch.allclose(e, net.embed(codes).transpose(1, 2), atol=1e-6)  # the codes' rows
    w = torch.randn_like(e)
    (grad,) = torch.autograd.grad((e * w).sum(), y)
    table = net.embed.weight
    slope = ((table[codes + 1] - table[codes]) * w.transpose(1, 2)).sum(-1) * 255 / 2
    assert torch.allclose(grad, slope, atol=1e-4)


# --- the student's loss -----------------------------------------------------------------------
def batch_of(n: int = 3, T: int = 300) -> dict[str, torch.Tensor]:
    torch.manual_seed(1)
    mask = torch.ones(n, T, dtype=torch.bool)
    mask[0, 200:] = False
    return {"x": torch.randint(100, 156, (n, T)), "mask": mask,
            "speaker": torch.tensor([0, 1, 5])[:n], "digit": torch.tensor([3, 9, 0])[:n]}  # fmt: skip


def test_loss_terms_switch_off_and_only_the_student_learns():
    classifier = AudioClassifier(AudioClassifierConfig(channels=4)).eval()
    weights = {"kl_weight": 1.1, "contrastive_weight": 0.3, "power_weight": 0.7,
               "perceptual_weight": 0.2}  # all different, so a swapped weight shows  # fmt: skip
    net = tiny_student(lambda: classifier, **weights).train()
    for step in net.student.steps:  # past the zero-initialised heads, so every weight gets a say
        torch.nn.init.normal_(step.head.weight, std=0.1)
    out = net.loss(batch_of())
    assert {"kl", "kl_wrong_digit", "power", "perceptual", "energy_ratio"} <= out.keys()
    expected = (1.1 * out["kl"] - 0.3 * out["kl_wrong_digit"] + 0.7 * out["power"]
                + 0.2 * out["perceptual"])  # fmt: skip
    assert out["loss"].item() == pytest.approx(expected.item(), rel=1e-5)
    out["loss"].backward()
    assert all(p.grad is None for p in net.teacher.parameters())
    assert all(p.grad is None for p in classifier.parameters())
    student = [p for name, p in net.named_parameters() if not name.startswith("teacher.")]
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in student)
    assert not net.teacher.training and net.training
    only_power = tiny_student(kl_weight=0, contrastive_weight=0, perceptual_weight=0)
    assert set(only_power.loss(batch_of())) == {"loss", "power", "energy_ratio",
                                                "student_entropy"}  # fmt: skip


def test_distillation_moves_the_student_towards_the_teacher():
    net = tiny_student(power_weight=0, perceptual_weight=0, contrastive_weight=0)
    opt = torch.optim.Adam(net.student.parameters(), 3e-3)
    batch = batch_of()
    torch.manual_seed(0)
    kls = []
    for _ in range(60):
        out = net.loss(batch)
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        kls.append(out["kl"].item())
    assert sum(kls[-10:]) / 10 < 0.7 * sum(kls[:10]) / 10


def test_contrastive_and_perceptual_losses_need_a_digit_teacher():
    teacher = WaveNet(WaveNetConfig(**TEACHER, digit=False))
    with pytest.raises(ConfigError, match="contrastive"):
        ParallelWaveNet(ParallelWaveNetConfig(**STUDENT), teacher)
    with pytest.raises(ConfigError, match="perceptual"):
        ParallelWaveNet(ParallelWaveNetConfig(**STUDENT, contrastive_weight=0), teacher)
    with pytest.raises(ConfigError, match="teacher run 'nowhere' not found"):
        audio_tasks.build_student(ParallelWaveNetConfig(**STUDENT, teacher="nowhere"))


def test_generation_is_parallel_and_follows_the_noise():
    net = tiny_student().eval()
    for step in net.student.steps:  # zero heads would ignore the past: nothing to test
        torch.nn.init.normal_(step.head.weight, std=0.3)
    u = torch.rand(2, 300, 2)
    spk, dig = torch.tensor([0, 3]), torch.tensor([1, 7])
    codes = net.generate(u, spk, dig)
    assert codes.shape == (2, 300) and codes.dtype == torch.long
    assert torch.equal(codes, net.generate(u, spk, dig))  # deterministic given the uniforms
    u2 = u.clone()
    u2[:, 150:, 0] = torch.rand(2, 150)
    changed = net.generate(u2, spk, dig) != codes
    assert not changed[:, :150].any()  # causal: later noise never changes earlier audio
    assert changed[:, 151:].any(dim=1).all()  # and does change what comes after


# --- the CLI ---------------------------------------------------------------------------------
TEACHER_CLI = ["--channels", "4", "--gate-channels", "4", "--skip-channels", "8", "--stacks", "1",
               "--layers", "3", "--crop", "200", "--batch-size", "4", "--sample-seconds", "0.05",
               "--quiet"]  # fmt: skip


def test_parallel_wavenet_trains_evaluates_and_samples_from_the_cli(
    data_root, tmp_path, capsys, monkeypatch
):
    classifier = AudioClassifier(AudioClassifierConfig(channels=4)).eval()
    monkeypatch.setattr(audio_tasks, "digit_classifier", lambda: classifier)
    teacher = tmp_path / "teacher"
    assert main(["train", "wavenet", "--steps", "2", "--out", str(teacher), *TEACHER_CLI]) == 0
    student = tmp_path / "student"
    assert main(["train", "parallel_wavenet", "--teacher", str(teacher), "--steps", "3",
                 "--flows", "2", "--layers", "3", "--channels", "4", "--gate-channels", "4",
                 "--crop", "300", "--sample-seconds", "0.05", "--out", str(student),
                 "--quiet"]) == 0  # fmt: skip
    assert (student / "pictures" / "samples" / "sample_9.wav").is_file()
    capsys.readouterr()
    assert main(["eval", str(student), "--json", "--n", "10"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert 0 < result["teacher_nll_bits_per_sample"] < 20 and result["n"] == 10
    assert 0 <= result["digit_accuracy"] <= 1 and result["energy_ratio"] > 0
    assert main(["sample", str(student), "--n", "2", "--out", str(tmp_path / "s")]) == 0
    assert (tmp_path / "s" / "sample_1.wav").is_file()

    class HearsThree(torch.nn.Module):  # a second classifier, as benchmarks' --judge
        def forward(self, x):
            return torch.nn.functional.one_hot(torch.full((len(x),), 3), 10).float()

    _, options, model, _ = load_run(student)
    splits = audio_tasks.load_data("fsdd", str(data_root), options)
    scores = audio_tasks.score_generated(model, options, model.teacher, splits, 10,
                                         judge=HearsThree())  # fmt: skip
    assert scores["judge_digit_accuracy"] == pytest.approx(0.1)  # digits 0-9, one of each


@pytest.mark.parametrize("conditional", [True, False])
def test_native_kernel_generates_what_pytorch_does(conditional):
    if kernels.load("iaf_forward") is None:
        pytest.skip("no C compiler")
    torch.manual_seed(0)
    teacher = WaveNet(WaveNetConfig(**TEACHER, speaker=conditional, digit=conditional))
    cfg = {**STUDENT, "channels": 16, "gate_channels": 16}  # the kernel's specialised width
    if not conditional:
        cfg.update(contrastive_weight=0.0, perceptual_weight=0.0)
    net = ParallelWaveNet(ParallelWaveNetConfig(**cfg), teacher).eval()
    for p in net.student.parameters():  # past the zero-initialised heads
        torch.nn.init.normal_(p, std=0.2)
    z = torch.randn(3, 501)  # not a multiple of the kernel's time block
    spk, dig = (torch.tensor([0, 2, 5]), torch.tensor([7, 1, 3])) if conditional else (None, None)
    g = net.condition(spk, dig)
    reference = net.sample(z, spk, dig)[0]
    native = torch.stack([net.native_student().sample(z[b], None if g is None else g[b])
                          for b in range(3)])  # fmt: skip
    assert torch.allclose(native, reference, atol=1e-4, rtol=1e-4)
    u = torch.rand(3, 501, 2)
    codes = net.generate(u, spk, dig, method="native")
    assert (codes == net.generate(u, spk, dig, method="torch")).float().mean() > 0.99
    first = net.native_student()
    with torch.no_grad():
        net.student.steps[0].head.bias.add_(0.1)  # a weight update repacks the kernel's copy
    assert net.native_student() is not first


def test_native_kernel_handles_any_width():
    if kernels.load("iaf_forward") is None:
        pytest.skip("no C compiler")
    flow = tiny_iaf(cond_dim=3, dtype=torch.float32)  # 4 channels: the kernel's generic path
    z, g = torch.randn(1, 77), torch.randn(1, 3)
    native = NativeIAF(flow, threads=1).sample(z[0], g[0])
    assert torch.allclose(native, flow.sample(z, g)[0][0], atol=1e-4, rtol=1e-4)
