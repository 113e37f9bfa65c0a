"""What every FSDD audio model does around its network: data, crops, test NLL, samples as sound.

The upstream split (indices 0-4 of each speaker and digit are test). Options may hold out one
speaker (`holdout_speaker`): its clips leave both splits and are kept apart for adaptation.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

from genlab.data import fsdd
from genlab.data.audio import ClipSet, fixed_length, mulaw_decode, mulaw_encode, random_crops
from genlab.data.batches import InMemoryBatches, seeded
from genlab.errors import ConfigError
from genlab.metrics.audio import digit_accuracy, digit_classifier, energy_ratio, quiet_fraction
from genlab.models.audio_classifier import WINDOW, place_randomly
from genlab.models.image_tasks import eval_mode
from genlab.viz.audio import save_audio_picture, save_wav


@dataclass(frozen=True)
class AudioSplits:
    train: ClipSet
    test: ClipSet
    heldout_train: ClipSet | None = None  # the held-out speaker's clips, for adaptation
    heldout_test: ClipSet | None = None


def load_data(data: str, data_dir: str | None, options: object) -> AudioSplits:
    """FSDD as mu-law codes; `options.holdout_speaker` (a name, or "") leaves that speaker out."""
    if data != "fsdd":
        raise ConfigError(f"audio models train on fsdd, not '{data}'")
    name = getattr(options, "holdout_speaker", "")
    if name and name not in fsdd.SPEAKERS:
        raise ConfigError(f"holdout_speaker '{name}' is not one of {', '.join(fsdd.SPEAKERS)}")
    d = fsdd.load(None, data_dir)  # once: both splits come from the same decoded cache
    clips = ClipSet.from_pcm(d["clips"], d["speaker"], d["digit"])
    test = d["index"] < len(fsdd.TEST_INDICES)
    held = clips.speaker == (fsdd.SPEAKERS.index(name) if name else -1)
    return AudioSplits(
        clips.select(~test & ~held), clips.select(test & ~held),
        clips.select(~test & held) if name else None, clips.select(test & held) if name else None,
    )  # fmt: skip


class CropBatches:
    """The loop's BatchSource: `batch_size` random crops of `crop` samples (each clip followed by
    `tail` samples of silence that count, see `random_crops`), with the clips' speaker and
    digit and where in its clip each crop starts ("offset"); a pure function of (seed, step)."""

    def __init__(self, clips: ClipSet, crop: int, batch_size: int, seed: int, tail: int = 0):
        self.clips, self.crop, self.batch_size, self.seed = clips, crop, batch_size, seed
        self.tail = tail

    def batch(self, step: int) -> dict[str, torch.Tensor]:
        g = seeded(self.seed, step)
        x, mask, which, offset = random_crops(self.clips.codes, self.clips.offsets, self.crop,
                                              self.batch_size, g, self.tail)  # fmt: skip
        return {"x": x, "mask": mask, "speaker": self.clips.speaker[which],
                "digit": self.clips.digit[which], "offset": offset}  # fmt: skip


def train_batches(options, data: AudioSplits, batch_size: int, seed: int, **_) -> CropBatches:
    return CropBatches(data.train, options.crop, batch_size, seed,
                       getattr(options, "tail_silence", 0))  # fmt: skip


def clip_nll(model, clips: ClipSet, batch_clips: int = 16, progress=None) -> torch.Tensor:
    """Each clip's total NLL in nats, (K,), from the start of the clip (nothing before it),
    scoring clips of similar length together."""
    order = torch.argsort(clips.offsets[1:] - clips.offsets[:-1]).tolist()
    out = torch.zeros(len(clips), dtype=torch.float64)
    for i in range(0, len(order), batch_clips):
        rows = order[i : i + batch_clips]
        x, mask = clips.padded(rows)
        lp = model.log_prob(model(x, clips.speaker[rows], clips.digit[rows]), x)  # (n, T)
        out[rows] = -(lp * mask).sum(1).double()
        if progress is not None:
            progress(len(rows))
    return out


def evaluate_nll(model, options, data: AudioSplits, n: int | None = None, **_) -> dict:
    """Test NLL over the full test utterances, per sample, in bits and nats."""
    test = data.test if n is None else data.test.select(torch.arange(len(data.test)) < n)
    t0 = time.monotonic()
    with eval_mode(model), tqdm(total=len(test), desc="test NLL", unit="clip", disable=None) as bar:
        nats = clip_nll(model, test, progress=bar.update)
    samples = int(test.offsets[-1])
    per_sample = nats.sum().item() / samples
    return {
        "nll_nats_per_sample": per_sample,
        "nll_bits_per_sample": per_sample / math.log(2),
        "test_utterances": len(test),
        "test_samples": samples,
        "eval_seconds": round(time.monotonic() - t0, 1),
    }


def conditioning(model, n: int) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """Speaker and digit ids for n samples of `model` (None where it has no such embedding
    table): digits 0, 1, ..., 9, 0, ...; speakers cycling."""
    spk = torch.arange(n) % len(fsdd.SPEAKERS) if model.speaker is not None else None
    dig = torch.arange(n) % 10 if model.digit is not None else None
    return spk, dig


def generate_clips(
    model, options, n: int, seed: int, temperature: float = 1.0
) -> tuple[list[torch.Tensor], list[str]]:
    """n generated clips of `options.sample_seconds` (float, [-1, 1]) with titles naming their
    conditioning."""
    T = max(1, int(options.sample_seconds * fsdd.SAMPLE_RATE))
    spk, dig = conditioning(model, n)
    u = torch.rand(n, T, 2, generator=torch.Generator().manual_seed(seed))
    with eval_mode(model), tqdm(total=n * T, desc="generate", unit="sample", disable=None) as bar:
        codes = model.generate(u, spk, dig, temperature, progress=lambda k: bar.update(n * k))
    titles = []
    for i in range(n):
        parts = [] if spk is None else [f"speaker {fsdd.SPEAKERS[spk[i]]}"]
        titles.append(", ".join(parts + ([] if dig is None else [f"digit {int(dig[i])}"])))
    return [mulaw_decode(c) for c in codes], [t or "unconditional" for t in titles]


def score_generated(model, options, teacher, data: AudioSplits, n: int, seed: int = 1,
                    judge: nn.Module | None = None) -> dict:  # fmt: skip
    """n clips from `model` (digits 0-9 cycling, speakers cycling, `options.sample_seconds`
    each) measured four ways: the `teacher` WaveNet's NLL of them (bits and nats per sample;
    the model itself if it is a WaveNet),
    how often genlab's spoken-digit classifier hears their digit (if digit-conditioned), their
    mean power over that of the real test speech (a whisper is far below 1) and the fraction of
    clips 20 dB quieter than it (and of the real test utterances, cut alike), and generation
    throughput for the batch of n (samples/s). `judge`: a second spoken-digit classifier (e.g.
    trained with another seed) whose rate is reported as "judge_digit_accuracy": a model
    trained against genlab's classifier (Parallel WaveNet's perceptual loss) never saw it."""
    t0 = time.monotonic()
    clips, _ = generate_clips(model, options, n, seed)
    seconds = time.monotonic() - t0
    spk, dig = conditioning(model, n)
    zeros = torch.zeros(n, dtype=torch.long)
    codes = ClipSet.from_clips([mulaw_encode(c) for c in clips], zeros if spk is None else spk,
                               zeros if dig is None else dig)  # fmt: skip
    with eval_mode(teacher), torch.no_grad():
        nats = clip_nll(teacher, codes).sum().item() / int(codes.offsets[-1])
    real_clips = [mulaw_decode(data.test.clip(k)) for k in range(len(data.test))]
    real = torch.cat(real_clips)
    out = {
        "teacher_nll_bits_per_sample": nats / math.log(2),
        "teacher_nll_nats_per_sample": nats,
        "energy_ratio": energy_ratio(torch.cat(clips), real).item(),
        "quiet_clip_fraction": quiet_fraction(clips, real, len(clips[0])),
        "real_quiet_clip_fraction": quiet_fraction(real_clips, real, len(clips[0])),
        "samples_per_second": n * len(clips[0]) / seconds,
        "n": n,
    }
    if dig is not None:
        heard = digit_accuracy(digit_classifier(), clips, dig)
        out["digit_accuracy"] = heard["digit_accuracy"]
        out["per_digit"] = heard["per_digit"]
        if judge is not None:
            with eval_mode(judge):
                out["judge_digit_accuracy"] = digit_accuracy(judge, clips, dig)["digit_accuracy"]
    return out


def write_samples(clips: list[torch.Tensor], titles: list[str], out: Path) -> Path:
    """WAVs `out`/sample_{i}.wav and one picture `out`/samples.png; returns the picture."""
    out = Path(out)
    for i, c in enumerate(clips):
        save_wav(c, out / f"sample_{i}.wav")
    return save_audio_picture(clips, titles, out / "samples.png")


def sample_audio(model, options, n: int, out: Path, seed: int = 0) -> Path:
    """`genlab sample RUN --n N --out DIR`: N generated clips as WAVs plus their picture."""
    return write_samples(*generate_clips(model, options, n, seed), Path(out))


def audio_pictures(model, options, data: AudioSplits, out: Path, seed: int = 0) -> list[Path]:
    """After training: ten generated clips (digits 0-9) beside four real test clips."""
    out = Path(out)
    real = [mulaw_decode(data.test.clip(k)) for k in range(4)]
    titles = [f"real: speaker {fsdd.SPEAKERS[data.test.speaker[k]]}, digit "
              f"{int(data.test.digit[k])}" for k in range(4)]  # fmt: skip
    return [
        save_audio_picture(real, titles, out / "real.png"),
        write_samples(*generate_clips(model, options, 10, seed), out / "samples"),
    ]


# --- the spoken-digit classifier -------------------------------------------------------------
def classifier_batches(options, data: AudioSplits, batch_size: int, seed: int, **_):
    """Whole training clips in a 1 s window, randomly placed and scaled if `options.augment`."""
    x, length = fixed_length(data.train, WINDOW)
    transform = place_randomly if options.augment else None
    tensors = {"x": x, "y": data.train.digit, "length": length}
    return InMemoryBatches(tensors, batch_size, seed, transform)


def evaluate_audio_classifier(model, options, data: AudioSplits, n: int | None = None, **_):
    """Digit accuracy on the test clips, overall and per speaker."""
    x, _ = fixed_length(data.test, WINDOW)
    y, spk = data.test.digit, data.test.speaker
    if n is not None:
        x, y, spk = x[:n], y[:n], spk[:n]
    with eval_mode(model):
        right = torch.cat([model(b).argmax(1) for b in x.split(256)]) == y
    per_speaker = {fsdd.SPEAKERS[s]: right[spk == s].float().mean().item()
                   for s in spk.unique().tolist()}  # fmt: skip
    return {"accuracy": right.float().mean().item(), "n": len(y), "per_speaker": per_speaker}
