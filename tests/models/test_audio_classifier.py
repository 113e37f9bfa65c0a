"""The spoken-digit classifier's pieces: mel filters, log-mel, augmentation, the model's contract."""

from __future__ import annotations

import math
import shutil

import pytest
import torch

from genlab.data.audio import in_window, log_mel, mel_filterbank
from genlab.errors import GenlabError
from genlab.metrics.audio import quiet_fraction
from genlab.metrics.yardstick import cached_yardstick, yardstick_dir
from genlab.models.audio_classifier import AudioClassifier, AudioClassifierConfig, place_randomly
from genlab.tasks import training
from genlab.tasks.audio import AUDIO_CLASSIFIER, digit_accuracy
from genlab.train.config import TrainConfig


def test_mel_filters_are_triangles_that_tile_the_spectrum():
    fb = mel_filterbank(40, 256, 8000)  # (40, 129)
    assert fb.shape == (40, 129) and (fb >= 0).all()
    peaks = fb.argmax(1)
    assert (peaks[1:] > peaks[:-1]).all()  # centres rise with the band
    assert (fb.max(1).values > 0.5).all()  # every band catches at least one FFT bin
    inner = fb[:, peaks[0] + 1 : peaks[-1]].sum(0)  # between the first and last centres,
    assert torch.allclose(inner, torch.ones_like(inner), atol=1e-5)  # neighbours sum to 1


def test_log_mel_finds_a_tone_in_its_band():
    fb = mel_filterbank(40, 256, 8000)
    t = torch.arange(8000) / 8000
    m = log_mel(torch.sin(2 * math.pi * 1000 * t)[None], fb)  # (1, 40, 101)
    assert m.shape == (1, 40, 101)
    band = m[0].mean(1).argmax().item()
    assert fb[band, round(1000 / 4000 * 128)] > 0.3  # the loudest band covers 1 kHz


def test_random_placement_keeps_each_clip_whole_and_in_order():
    x = torch.zeros(3, 20)
    x[0, :5] = torch.arange(1.0, 6.0)
    x[1, :20] = torch.arange(1.0, 21.0)
    x[2, :1] = 7.0
    batch = {"x": x, "length": torch.tensor([5, 20, 1])}
    out = place_randomly(batch, torch.Generator().manual_seed(0))["x"]
    for row, n in enumerate([5, 20, 1]):
        nz = out[row][out[row] != 0]
        assert len(nz) == n
        ratio = nz / x[row, :n]  # one gain per clip, in [0.25, 1]
        assert torch.allclose(ratio, ratio[0].expand(n)) and 0.25 <= ratio[0] <= 1.0
        start = (out[row] != 0).nonzero()[0].item()
        assert (out[row, start : start + n] != 0).all()  # contiguous


def test_classifier_is_loudness_invariant_and_learns_a_batch():
    torch.manual_seed(0)
    net = AudioClassifier(AudioClassifierConfig(channels=4)).eval()
    audio = torch.randn(4, 8000) * 0.1
    assert net(audio).shape == (4, 10)
    assert torch.allclose(net(audio), net(audio * 0.3), atol=1e-3)
    net.train()
    batch = {"x": audio, "y": torch.tensor([0, 1, 2, 3])}
    opt = torch.optim.Adam(net.parameters(), 1e-2)
    first = net.loss(batch)["loss"].item()
    for _ in range(30):
        opt.zero_grad()
        net.loss(batch)["loss"].backward()
        opt.step()
    assert net.loss(batch)["loss"].item() < first / 2


def test_digit_accuracy_pads_clips_to_the_window_and_counts_per_digit():
    class ByLength(torch.nn.Module):  # "hears" digit = number of nonzero samples mod 10
        def forward(self, x):
            assert x.shape[1] == 8000
            return torch.nn.functional.one_hot((x != 0).sum(1) % 10, 10).float()

    clips = [torch.ones(3), torch.ones(12), torch.ones(9000), torch.ones(5)]
    result = digit_accuracy(ByLength(), clips, torch.tensor([3, 2, 0, 4]))
    assert result["predicted"] == [3, 2, 0, 5]  # 9000 samples are cut to their central 8000
    assert result["digit_accuracy"] == 0.75 and result["per_digit"] == {
        0: 1.0,
        2: 1.0,
        3: 1.0,
        4: 0.0,
    }


def test_quiet_fraction_counts_clips_20_db_below_real_speech_over_a_fixed_length():
    real = torch.ones(100)  # mean power 1
    clips = [
        torch.ones(50),  # as loud
        0.05 * torch.ones(50),  # power 0.0025: quiet
        torch.ones(10),  # 10 loud samples in 50: power 0.2, not quiet
        torch.cat([0.05 * torch.ones(50), torch.ones(50)]),  # loud only past the length: quiet
    ]
    assert quiet_fraction(clips, real, 50) == 0.5
    assert quiet_fraction(clips, real, 50, threshold=0.001) == 0.0


def test_a_yardstick_is_only_cached_after_passing_its_check(data_root):
    cfg = TrainConfig(steps=2, batch_size=8, log_every=1, checkpoint_every=2)
    options = AudioClassifierConfig(channels=2)

    def train(run_dir):
        training.train(training.RunSpec(entry=AUDIO_CLASSIFIER, data="fsdd", options=options,
                                        train=cfg, run_dir=run_dir))  # fmt: skip

    def load(run_dir):
        return training.load(AUDIO_CLASSIFIER, run_dir)[:2]

    with pytest.raises(GenlabError, match="scored 0.5000, below 0.9"):
        cached_yardstick("test-stick", "audio_classifier", train, load, lambda net, o: 0.5, 0.9)
    assert (yardstick_dir("test-stick").with_name("test-stick.partial") / "checkpoint.pt").is_file()
    assert not yardstick_dir("test-stick").exists()
    shutil.rmtree(yardstick_dir("test-stick").with_name("test-stick.partial"))
    net = cached_yardstick("test-stick", "audio_classifier", train, load, lambda net, o: 0.95, 0.9)
    assert isinstance(net, AudioClassifier) and not net.training
    assert (yardstick_dir("test-stick") / "checkpoint.pt").is_file()


def test_clips_are_fitted_to_the_window_the_classifier_was_trained_with():
    long, short = torch.arange(1.0, 9001.0), torch.ones(3)
    out, used = in_window([long, short], 8000)
    assert torch.equal(out[0], long[500:8500])  # the central 8000 samples
    assert used.tolist() == [8000, 3] and (out[1, 3:] == 0).all() and (out[1, :3] == 1).all()
