"""WaveNet: mu-law, crops, causality and receptive field, the mixture likelihood, cached == naive."""

from __future__ import annotations

import json
import math
import wave

import numpy as np
import pytest
import torch

from genlab.cli import main
from genlab.data import fsdd
from genlab.data.audio import (
    SILENCE,
    ClipSet,
    mulaw_compress,
    mulaw_decode,
    mulaw_encode,
    mulaw_expand,
    random_crops,
)
from genlab.errors import ConfigError, DataError
from genlab.metrics.audio import sound_end
from genlab.models.adaptation import adapt_speaker, with_mean_embedding
from genlab.models.linear_ar import LinearAR, LinearARConfig
from genlab.models.wavenet import CachedGenerator, NativeGenerator, WaveNet, WaveNetConfig
from genlab.nn import kernels
from genlab.nn.likelihoods import (
    discretized_logistic_mixture_log_prob,
    discretized_logistic_mixture_sample,
)
from genlab.tasks.audio import load_data
from genlab.train.state import read_checkpoint
from genlab.viz.audio import log_spectrogram, save_audio_picture, save_wav

TINY = {"channels": 8, "gate_channels": 8, "skip_channels": 8, "stacks": 2, "layers": 3}


def tiny(**kw) -> WaveNet:
    torch.manual_seed(0)
    net = WaveNet(WaveNetConfig(**{**TINY, **kw}))
    if net.position is not None:  # it starts at zero (no input); give it a trained net's values
        torch.nn.init.normal_(net.position.weight)
    return net


# --- mu-law ----------------------------------------------------------------------------------
def test_mulaw_round_trips():
    codes = torch.arange(256)
    assert torch.equal(mulaw_encode(mulaw_decode(codes)), codes)
    x = torch.linspace(-1, 1, 10001, dtype=torch.float64)
    assert torch.allclose(mulaw_expand(mulaw_compress(x)), x, atol=1e-12)
    # Decoding lands within half a level of the input, measured on the compressed scale.
    err = (mulaw_compress(mulaw_decode(mulaw_encode(x)).double()) - mulaw_compress(x)).abs()
    assert err.max() <= 1 / 255 + 1e-6
    assert mulaw_encode(torch.tensor([0.0])).item() == SILENCE
    assert mulaw_encode(torch.tensor([-1.0, 1.0])).tolist() == [0, 255]


def test_mulaw_formula_and_errors():
    x = torch.tensor([0.5], dtype=torch.float64)
    assert mulaw_compress(x).item() == pytest.approx(math.log(1 + 255 * 0.5) / math.log(256))
    with pytest.raises(DataError, match="max"):
        mulaw_encode(torch.tensor([1.5]))
    with pytest.raises(DataError):
        mulaw_encode(torch.tensor([float("nan")]))


def test_random_crops_are_slices_of_clips():
    clips = [torch.arange(100), torch.arange(1000, 1005), torch.arange(2000, 2040)]
    codes = torch.cat(clips)
    offsets = torch.tensor([0, 100, 105, 145])
    crops, mask, which, start = random_crops(codes, offsets, 20, 64,
                                             torch.Generator().manual_seed(1))  # fmt: skip
    assert crops.shape == mask.shape == (64, 20) and which.shape == start.shape == (64,)
    assert set(which.tolist()) == {0, 1, 2}
    for row, k in enumerate(which.tolist()):
        real = crops[row][mask[row]]
        clip = clips[k]
        assert len(real) == min(20, len(clip))
        assert int(real[0]) - int(clip[0]) == start[row]
        assert torch.equal(real, clip[start[row] : start[row] + len(real)])  # a contiguous slice
        assert (crops[row][~mask[row]] == SILENCE).all()
    again = random_crops(codes, offsets, 20, 64, torch.Generator().manual_seed(1))
    assert torch.equal(again[0], crops)


def test_random_crops_count_a_tail_of_silence_after_each_clip():
    clips = [torch.arange(100), torch.arange(1000, 1005)]
    codes, offsets = torch.cat(clips), torch.tensor([0, 100, 105])
    crops, mask, which, _ = random_crops(codes, offsets, 20, 256,
                                         torch.Generator().manual_seed(2), tail=8)  # fmt: skip
    reached_tail = 0
    for row, k in enumerate(which.tolist()):
        real = crops[row][mask[row]]
        from_clip = real[real != SILENCE]
        start = int(from_clip[0]) - int(clips[k][0])
        assert torch.equal(from_clip, clips[k][start : start + len(from_clip)])
        assert torch.equal(real[: len(from_clip)], from_clip)  # the clip, then only silence
        silent = len(real) - len(from_clip)
        assert silent <= 8 and (silent == 0 or start + len(from_clip) == len(clips[k]))
        reached_tail += silent > 0
        if k == 1:  # shorter than the crop: the whole clip, its 8 counted samples, then padding
            assert mask[row].tolist() == [True] * 13 + [False] * 7
    assert reached_tail > 0
    with pytest.raises(DataError, match="tail"):
        random_crops(codes, offsets, 20, 4, torch.Generator(), tail=-1)


# --- causality and receptive field -----------------------------------------------------------
def test_receptive_field_formula():
    cfg = WaveNetConfig(stacks=2, layers=10)
    assert cfg.receptive_field == 2 * (2**10 - 1) + 2


@pytest.mark.parametrize("output", ["softmax", "logistic_mixture"])
def test_output_sees_exactly_the_receptive_field_before_it(output):
    net = tiny(output=output, speaker=False, digit=False).double()
    R = net.cfg.receptive_field  # 2 * 7 + 2 = 16
    T = 40
    e = torch.randn(1, net.cfg.channels, T, dtype=torch.float64, requires_grad=True)
    out = net.from_embedding(e, None)
    for t in range(T):
        (grad,) = torch.autograd.grad(out[0, :, t].sum(), e, retain_graph=True)
        seen = grad.abs().sum(1)[0] > 0  # (T,) which inputs output t depends on
        expected = torch.zeros(T, dtype=torch.bool)
        expected[max(0, t - R) : t] = True
        assert torch.equal(seen, expected), f"output {t} sees {seen.nonzero().flatten().tolist()}"


# --- conditioning -----------------------------------------------------------------------------
def test_conditioning_changes_the_distribution_and_is_required():
    net = tiny()
    x = torch.randint(256, (2, 30))
    spk = torch.tensor([0, 0])
    a = net(x, spk, torch.tensor([1, 1]))
    b = net(x, spk, torch.tensor([7, 7]))
    assert (a - b).abs().max() > 1e-4
    with pytest.raises(ConfigError, match="digit"):
        net(x, spk, None)
    with pytest.raises(ConfigError, match="output"):
        WaveNetConfig(output="gaussian")


# --- the discretized logistic mixture --------------------------------------------------------
def test_mixture_is_normalised_and_matches_the_cdf_formula():
    torch.manual_seed(0)
    params = torch.randn(3, 9, dtype=torch.float64)  # 3 mixtures of M = 3
    params[:, 6:] -= 2.0  # narrow enough that the tails matter
    codes = torch.arange(256)
    lp = discretized_logistic_mixture_log_prob(params[:, None, :].expand(3, 256, 9), codes)
    assert torch.allclose(lp.exp().sum(1), torch.ones(3, dtype=torch.float64), atol=1e-9)
    # Naive: sum_m pi_m (sigmoid(upper) - sigmoid(lower)), tails to -inf and +inf.
    pi = torch.softmax(params[:, :3], -1)
    mean, s = params[:, 3:6], params[:, 6:].exp()
    centre = 2 * codes.double() / 255 - 1
    upper = torch.where(codes == 255, torch.tensor(math.inf), centre + 1 / 255)
    lower = torch.where(codes == 0, torch.tensor(-math.inf), centre - 1 / 255)
    cdf = lambda v: torch.sigmoid((v[None, :, None] - mean[:, None]) / s[:, None])  # noqa: E731
    naive = ((cdf(upper) - cdf(lower)) * pi[:, None]).sum(-1)
    assert torch.allclose(lp.exp(), naive, atol=1e-12)


def test_mixture_samples_follow_its_probabilities():
    params = torch.tensor([0.0, 1.0, -0.5, 0.4, -1.5, -2.5])  # M = 2
    n = 40_000
    u = torch.rand(n, 2, generator=torch.Generator().manual_seed(3))
    codes = discretized_logistic_mixture_sample(params.expand(n, 6), u)
    freq = torch.bincount(codes, minlength=256).double() / n
    probs = discretized_logistic_mixture_log_prob(params.expand(256, 6), torch.arange(256)).exp()
    assert (freq - probs.double()).abs().max() < 0.01
    assert 0.5 * (freq - probs.double()).abs().sum() < 0.04  # total variation


# --- training and generation -----------------------------------------------------------------
def test_loss_is_finite_and_reaches_every_parameter():
    net = tiny(output="logistic_mixture", mixtures=3)
    batch = {
        "x": torch.randint(256, (2, 50)),
        "mask": torch.ones(2, 50, dtype=torch.bool),
        "speaker": torch.tensor([0, 5]),
        "digit": torch.tensor([3, 9]),
    }
    out = net.loss(batch)
    assert torch.isfinite(out["loss"])
    assert out["bits_per_sample"].item() == pytest.approx(out["loss"].item() / math.log(2))
    out["loss"].backward()
    missing = [n for n, p in net.named_parameters() if p.grad is None or not p.grad.abs().sum()]
    assert not missing


def test_untrained_softmax_loss_is_near_uniform():
    net = tiny(speaker=False, digit=False)
    x = torch.randint(256, (4, 64))
    nats = net.loss({"x": x, "mask": torch.ones_like(x, dtype=torch.bool)})["loss"]
    assert abs(nats.item() - math.log(256)) < 0.5


@pytest.mark.parametrize("output", ["softmax", "logistic_mixture"])
def test_cached_step_equals_the_full_forward_pass(output):
    net = tiny(output=output, mixtures=2).double()
    x = torch.randint(256, (3, 45))
    spk, dig = torch.tensor([0, 1, 2]), torch.tensor([4, 5, 6])
    with torch.no_grad():
        full = net(x, spk, dig)  # (B, O, T)
        gen = CachedGenerator(net, 3, spk, dig)
        steps = [gen.step(t, None if t == 0 else x[:, t - 1]) for t in range(45)]
    assert torch.allclose(torch.stack(steps, -1), full, atol=1e-10)


@pytest.mark.parametrize(
    "output,conditional", [("softmax", True), ("logistic_mixture", True), ("softmax", False)]
)
def test_cached_generation_equals_naive_recomputation(output, conditional):
    net = tiny(output=output, mixtures=2, speaker=conditional, digit=conditional)
    u = torch.rand(2, 60, 2, generator=torch.Generator().manual_seed(0))  # T > receptive field
    spk, dig = (torch.tensor([1, 3]), torch.tensor([2, 8])) if conditional else (None, None)
    naive = net.generate_naive(u, spk, dig, temperature=0.9)
    cached = net.generate(u, spk, dig, temperature=0.9, method="cached")
    assert torch.equal(naive, cached)
    assert torch.equal(net.generate(u, spk, dig, temperature=0.9), cached)  # native if possible
    assert len(set(cached.flatten().tolist())) > 5  # not stuck on one code


# --- data, pictures and the CLI --------------------------------------------------------------
def test_clipset_pads_selects_and_encodes():
    pcm = [
        torch.tensor([0, 32767, -32768], dtype=torch.int16),
        torch.tensor([0], dtype=torch.int16),
    ]
    clips = ClipSet.from_pcm(pcm, torch.tensor([2, 4]), torch.tensor([7, 1]))
    assert clips.clip(0).tolist() == [SILENCE, 255, 0] and len(clips) == 2
    x, mask = clips.padded([1, 0])
    assert x.tolist() == [[SILENCE, SILENCE, SILENCE], [SILENCE, 255, 0]]
    assert mask.tolist() == [[True, False, False], [True, True, True]]
    only = clips.select(torch.tensor([False, True]))
    assert only.speaker.tolist() == [4] and only.clip(0).tolist() == [SILENCE]


def test_wav_and_picture_are_written(tmp_path):
    t = torch.arange(4000) / 8000
    tone = 0.5 * torch.sin(2 * math.pi * 440 * t)
    path = save_wav(tone, tmp_path / "tone.wav")
    with wave.open(str(path)) as w:
        assert (w.getframerate(), w.getnframes(), w.getsampwidth()) == (8000, 4000, 2)
    back = torch.from_numpy(np.frombuffer(path.read_bytes()[44:], dtype="<i2").copy())
    assert (back.float() / 32767 - tone).abs().max() < 1e-4
    spec = log_spectrogram(tone)  # the tone's energy sits in the 440 Hz bin (256-point FFT)
    assert spec.mean(1).argmax().item() == round(440 / 8000 * 256)
    png = save_audio_picture([tone, tone[:100]], ["tone", "short"], tmp_path / "a.png")
    assert png.stat().st_size > 500


def wav_frames(path) -> bytes:
    with wave.open(str(path)) as w:
        return w.readframes(w.getnframes())


CLI_TINY = ["--channels", "4", "--gate-channels", "4", "--skip-channels", "8", "--stacks", "1",
            "--layers", "3", "--crop", "200", "--batch-size", "4", "--sample-seconds", "0.05",
            "--quiet"]  # fmt: skip


def test_wavenet_trains_evaluates_and_samples_from_the_cli(data_root, tmp_path, capsys):
    out = tmp_path / "wn"
    argv = ["train", "wavenet", "--steps", "4", "--digit-dropout", "0.2", "--out", str(out)]
    assert main([*argv, *CLI_TINY]) == 0
    assert (out / "pictures" / "samples" / "sample_9.wav").is_file()
    assert (out / "pictures" / "real.png").is_file()
    capsys.readouterr()
    assert main(["eval", str(out), "--json", "--n", "12"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["test_utterances"] == 12
    assert result["nll_bits_per_sample"] == pytest.approx(
        result["nll_nats_per_sample"] / math.log(2)
    )
    assert 3.0 < result["nll_bits_per_sample"] < 8.5  # 8 = uniform over 256 codes
    assert main(["sample", str(out), "--n", "2", "--out", str(tmp_path / "s")]) == 0
    assert {p.name for p in (tmp_path / "s").iterdir()} == {"sample_0.wav", "sample_1.wav",
                                                            "samples.png"}  # fmt: skip
    # sampling options can be set; the guided clips differ from the plain ones (same seed)
    argv = ["sample", str(out), "--n", "2", "--set", "sample_seconds=0.1"]
    assert main([*argv, "--out", str(tmp_path / "p")]) == 0
    assert main([*argv, "--set", "guidance=3", "--out", str(tmp_path / "g")]) == 0
    plain, guided = (wav_frames(tmp_path / d / "sample_1.wav") for d in "pg")
    assert len(plain) == len(guided) == 2 * 800  # 0.1 s of 16-bit samples
    assert plain != guided
    capsys.readouterr()
    assert main(["sample", str(out), "--set", "channels=8", "--out", str(tmp_path / "x")]) == 2
    assert "channels would change the network" in capsys.readouterr().err


def test_holdout_speaker_leaves_the_training_data(data_root):
    splits = load_data("fsdd", None, WaveNetConfig(holdout_speaker="theo"))
    theo = fsdd.SPEAKERS.index("theo")
    assert theo not in splits.train.speaker.tolist() and theo not in splits.test.speaker.tolist()
    assert set(splits.heldout_train.speaker.tolist()) == {theo} and len(splits.heldout_test) == 50
    assert len(splits.train) == 5 * 450 and len(splits.test) == 5 * 50
    with pytest.raises(ConfigError, match="holdout_speaker"):
        load_data("fsdd", None, WaveNetConfig(holdout_speaker="nobody"))


def test_linear_baseline_sees_exactly_its_order_and_scores_like_wavenet():
    torch.manual_seed(0)
    net = LinearAR(LinearARConfig(order=5))
    torch.nn.init.normal_(net.conv.weight)
    x = torch.randint(256, (1, 20))
    base = net(x)
    for j in range(20):
        y = x.clone()
        y[0, j] = (y[0, j] + 100) % 256
        changed = ((net(y) - base).abs().sum(1)[0] > 0).nonzero().flatten().tolist()
        assert changed == list(range(j + 1, min(j + 6, 20))), j
    lp = net.step_log_probs(base, x)
    assert lp.shape == (1, 20) and (lp < 0).all()
    batch = {"x": x, "mask": torch.ones_like(x, dtype=torch.bool)}
    assert net.loss(batch)["loss"].item() == pytest.approx(-lp.mean().item())
    assert LinearARConfig().order == WaveNetConfig().receptive_field


@pytest.mark.parametrize(
    "output,conditional", [("softmax", True), ("logistic_mixture", True), ("softmax", False)]
)
def test_native_kernel_equals_the_pytorch_generator(output, conditional):
    if kernels.load("wavenet_generate") is None:
        pytest.skip("no C compiler")
    net = tiny(output=output, mixtures=2, speaker=conditional, digit=conditional)
    u = torch.rand(3, 70, 2, generator=torch.Generator().manual_seed(4))
    spk, dig = (torch.tensor([0, 2, 4]), torch.tensor([9, 1, 5])) if conditional else (None, None)
    with torch.no_grad():
        x = torch.randint(256, (3, 70))
        full = net(x, spk, dig).transpose(1, 2)  # (B, T, O): teacher-forced outputs
        native = NativeGenerator(net, spk, dig)
        _, forced = native.run(u, forced=x, keep_outputs=True, chunk=7)
        assert torch.allclose(forced, full, atol=1e-4)
        codes, _ = native.run(u, temperature=0.9, chunk=16)  # chunks carry the queues over
        assert torch.equal(codes, net.generate(u, spk, dig, temperature=0.9, method="cached"))


def test_speaker_adaptation_changes_only_what_its_mode_allows():
    net = tiny()
    clips = ClipSet.from_clips([torch.randint(100, 140, (300,)) for _ in range(3)],
                               torch.full((3,), 4), torch.tensor([1, 2, 3]))  # fmt: skip
    x, mask = clips.padded([0, 1, 2])
    batch = {"x": x, "mask": mask, "speaker": clips.speaker, "digit": clips.digit}

    def nll(m):
        with torch.no_grad():
            return m.loss(batch)["loss"].item()

    start = with_mean_embedding(net, 4)
    others = net.speaker.weight[[0, 1, 2, 3, 5]]
    assert torch.allclose(start.speaker.weight[4], others.mean(0))
    emb = adapt_speaker(net, clips, 4, "embedding", steps=30, lr=0.05, batch_size=3, crop=100)
    changed = [n for n, p in emb.named_parameters() if not torch.equal(p, start.get_parameter(n))]
    assert changed == ["speaker.weight"]
    assert torch.equal(emb.speaker.weight[[0, 1, 2, 3, 5]], others)  # other speakers intact
    assert nll(emb) < nll(start)
    full = adapt_speaker(net, clips, 4, "all", steps=30, lr=0.01, batch_size=3, crop=100)
    assert nll(full) < nll(emb)
    assert torch.equal(net.speaker.weight[4], tiny().speaker.weight[4])  # the base is untouched
    with pytest.raises(ConfigError, match="speaker 2"):
        adapt_speaker(net, clips, 2, "all", steps=1)


def test_gated_activation_is_tanh_times_sigmoid():
    from genlab.nn.gates import gated_activation

    z = torch.randn(3, 8, 50, dtype=torch.float64) * 4
    reference = torch.tanh(z[:, :4]) * torch.sigmoid(z[:, 4:])
    assert torch.allclose(gated_activation(z, 4), reference, atol=1e-12)
    z.requires_grad_(True)
    (g1,) = torch.autograd.grad(gated_activation(z, 4).sum(), z)
    (g2,) = torch.autograd.grad((torch.tanh(z[:, :4]) * torch.sigmoid(z[:, 4:])).sum(), z)
    assert torch.allclose(g1, g2, atol=1e-12)


def test_sound_end_finds_the_last_loud_frame_by_brute_force():
    g = torch.Generator().manual_seed(3)
    audio = torch.zeros(4, 800)
    audio[0, 100:250] = 0.5 * torch.randn(150, generator=g)  # loud until frame 3 (240-320)
    audio[1] = 0.001 * torch.randn(800, generator=g)  # below the threshold throughout
    audio[2, 790] = 1.0  # one click in the last frame
    audio[3, :] = 0.2
    got = sound_end(audio, rate=8000).tolist()
    want = []
    for clip in audio:
        loud = [k for k in range(10) if clip[80 * k : 80 * k + 80].square().mean().sqrt() > 0.01]
        want.append((max(loud) + 1) * 80 / 8000 if loud else 0.0)
    assert got == pytest.approx(want) and want == pytest.approx([0.04, 0.0, 0.1, 0.1])


@pytest.mark.parametrize("conditional", [True, False])
def test_position_input_agrees_across_forward_naive_cached_and_native(conditional):
    # buckets of 8 samples, the last (5th) shared from sample 32 on: T = 60 crosses them all
    net = tiny(position_every=8, position_buckets=5, speaker=conditional, digit=conditional)
    spk, dig = (torch.tensor([1, 3]), torch.tensor([2, 8])) if conditional else (None, None)
    x = torch.randint(256, (2, 60))
    with torch.no_grad():
        full = net(x, spk, dig)  # (B, O, T) from the clips' start
        assert not torch.allclose(full, net(x, spk, dig, torch.tensor([16, 16])))
        gen = CachedGenerator(net, 2, spk, dig)
        steps = torch.stack([gen.step(t, None if t == 0 else x[:, t - 1]) for t in range(60)], -1)
    assert torch.allclose(steps, full, atol=1e-5)
    u = torch.rand(2, 60, 2, generator=torch.Generator().manual_seed(0))
    naive = net.generate_naive(u, spk, dig)  # windows passed with their offsets
    assert torch.equal(net.generate(u, spk, dig, method="cached"), naive)
    if kernels.load("wavenet_generate") is not None:
        native = NativeGenerator(net, spk, dig)
        _, forced = native.run(u, forced=x, keep_outputs=True, chunk=7)  # chunks straddle buckets
        assert torch.allclose(forced, full.transpose(1, 2), atol=1e-4)
        assert torch.equal(native.run(u, chunk=16)[0], naive)


def test_position_input_reads_the_crops_offsets_in_training():
    net = tiny(position_every=8, position_buckets=5)
    batch = {"x": torch.randint(256, (2, 30)), "mask": torch.ones(2, 30, dtype=torch.bool),
             "speaker": torch.tensor([0, 5]), "digit": torch.tensor([3, 9])}  # fmt: skip
    at_start = net.loss({**batch, "offset": torch.tensor([0, 0])})["loss"]
    assert net.loss(batch)["loss"].item() == pytest.approx(at_start.item())  # default: 0
    later = net.loss({**batch, "offset": torch.tensor([24, 40])})["loss"]
    assert later.item() != pytest.approx(at_start.item())
    later.backward()
    assert net.position.weight.grad[3:].abs().sum() > 0 and not net.position.weight.grad[:3].any()


def test_a_position_input_can_be_added_to_a_trained_run(data_root, tmp_path, capsys):
    source, tuned = tmp_path / "source", tmp_path / "tuned"
    assert main(["train", "wavenet", "--steps", "2", "--out", str(source), *CLI_TINY]) == 0
    capsys.readouterr()
    # lr 0: the one step changes nothing, so the run holds the source's weights plus the new
    # position table, which starts at zero: the fine-tuned net begins as the source net.
    argv = ["train", "wavenet", "--steps", "1", "--lr", "0", "--init-from", str(source)]
    assert main([*argv, "--position-every", "50", "--out", str(tuned), *CLI_TINY]) == 0
    assert "freshly initialised: position.weight" in capsys.readouterr().err
    want, got = read_checkpoint(source)["model"], read_checkpoint(tuned)["model"]
    assert set(got) - set(want) == {"position.weight"} and not got["position.weight"].any()
    assert all(torch.equal(want[k], got[k]) for k in want)
    # The other way round, the source's position table would be dropped: refused.
    argv = ["train", "wavenet", "--steps", "1", "--init-from", str(tuned), "--out"]
    assert main([*argv, str(tmp_path / "x"), "--position-every", "0", *CLI_TINY]) == 2
    assert "options that differ: position_every=0 here, 50 there" in capsys.readouterr().err


# --- classifier-free guidance ----------------------------------------------------------------
def test_a_hidden_digit_is_the_speaker_alone():
    net = tiny()
    spk, dig = torch.tensor([0, 3, 5]), torch.tensor([7, -1, -1])
    g = net.condition(spk, dig)
    assert torch.equal(g[0], net.speaker.weight[0] + net.digit.weight[7])
    assert torch.equal(g[1:], net.speaker.weight[[3, 5]])


def test_digit_dropout_hides_the_digit_of_some_training_crops_only():
    net = tiny(digit_dropout=0.5)
    x, spk, dig = torch.randint(256, (8, 40)), torch.arange(8) % 6, torch.arange(8)
    torch.manual_seed(1)
    hide = torch.rand(8) < 0.5  # the draw `forward` makes next from the same seed
    assert 0 < hide.sum() < 8
    torch.manual_seed(1)
    trained = net.train()(x, spk, dig)
    with torch.no_grad():
        net.eval()
        with_digit, without = net(x, spk, dig), net(x, spk, torch.full_like(dig, -1))
        assert torch.equal(net(x, spk, dig), with_digit)  # no hiding outside training
    expected = torch.where(hide[:, None, None], without, with_digit)
    assert torch.allclose(trained, expected, atol=1e-6)
    assert not torch.allclose(with_digit, without)


@pytest.mark.parametrize("position", [0, 8])
def test_guided_generation_agrees_across_naive_cached_and_native(position):
    net = tiny(position_every=position, position_buckets=5)
    spk, dig = torch.tensor([1, 4]), torch.tensor([3, 6])
    u = torch.rand(2, 50, 2, generator=torch.Generator().manual_seed(2))
    naive = net.generate_naive(u, spk, dig, guidance=2.5)
    # the reference step by step: each guided logit from two plain forward passes
    x = torch.zeros(2, 50, dtype=torch.long)
    with torch.no_grad():
        for t in range(50):
            with_digit = net(x[:, : t + 1], spk, dig)[:, :, -1]
            free = net(x[:, : t + 1], spk, torch.full_like(dig, -1))[:, :, -1]
            x[:, t] = net.draw(free + 2.5 * (with_digit - free), u[:, t])
    assert torch.equal(naive, x)
    assert not torch.equal(naive, net.generate_naive(u, spk, dig))  # guidance changes the draws
    assert torch.equal(net.generate(u, spk, dig, method="cached", guidance=2.5), naive)
    configured = tiny(position_every=position, position_buckets=5, digit_dropout=0.1, guidance=2.5)
    assert torch.equal(configured.generate(u, spk, dig), naive)  # the config's scale by default
    if kernels.load("wavenet_generate") is not None:
        native = NativeGenerator(net, spk, dig, guidance=2.5)
        assert torch.equal(native.run(u, chunk=7)[0], naive)
        assert torch.equal(net.generate(u, spk, dig, method="native", guidance=1.0),
                           net.generate_naive(u, spk, dig))  # fmt: skip


def test_guidance_is_refused_where_it_has_no_meaning():
    u = torch.rand(1, 5, 2)
    with pytest.raises(ConfigError, match="output=softmax"):
        tiny(output="logistic_mixture").generate(u, torch.tensor([0]), torch.tensor([1]),
                                                 guidance=2.0)  # fmt: skip
    with pytest.raises(ConfigError, match="digit ids"):
        tiny().generate(u, torch.tensor([0]), None, guidance=2.0)
    with pytest.raises(ConfigError, match="digit-conditioned"):
        WaveNetConfig(digit=False, guidance=2.0)
    with pytest.raises(ConfigError, match="digit_dropout"):
        WaveNetConfig(digit_dropout=1.0)
    with pytest.raises(ConfigError, match="trained with digit_dropout"):
        WaveNetConfig(guidance=1.5)
    with pytest.raises(ConfigError, match="output=softmax"):
        WaveNetConfig(guidance=1.5, digit_dropout=0.1, output="logistic_mixture")
    WaveNetConfig(guidance=1.5, digit_dropout=0.1)  # accepted
