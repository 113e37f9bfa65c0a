"""The speech models: what every FSDD audio model does around its network (data, crops, test
NLL, samples as sound), genlab's spoken-digit classifier (a cached yardstick), and their
registry entries (`ENTRIES`).

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
from genlab.data.audio import (
    ClipSet,
    CropBatches,
    fixed_length,
    in_window,
    mulaw_decode,
    mulaw_encode,
)
from genlab.data.batches import InMemoryBatches
from genlab.errors import ConfigError, RunError
from genlab.metrics.audio import energy_ratio, quiet_fraction
from genlab.metrics.yardstick import cached_yardstick
from genlab.models.audio_classifier import (
    WINDOW,
    AudioClassifier,
    AudioClassifierConfig,
    place_randomly,
)
from genlab.models.linear_ar import LinearAR, LinearARConfig
from genlab.models.parallel_wavenet import ParallelWaveNet, ParallelWaveNetConfig
from genlab.models.wavenet import WaveNet, WaveNetConfig
from genlab.nn.modes import eval_mode
from genlab.tasks import training
from genlab.tasks.entry import ModelEntry
from genlab.train.config import TrainConfig
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
        lp = model.step_log_probs(model(x, clips.speaker[rows], clips.digit[rows]), x)  # (n, T)
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


# --- genlab's spoken-digit classifier: a yardstick -------------------------------------------
DIGIT_CLASSIFIER_VERSION = 1
# The recipe: `genlab train audio_classifier --steps 1500 --lr 0.002 --schedule cosine
# --warmup-steps 100 --seed 0`.
DIGIT_CLASSIFIER_TRAIN = TrainConfig(
    steps=1500, lr=2e-3, batch_size=64, schedule="cosine", warmup_steps=100, seed=0,
    log_every=50, checkpoint_every=500,
)  # fmt: skip
MIN_ACCURACY = 0.95  # issue 7's bar for the yardstick, on the FSDD test split


def digit_classifier(data_dir: str | Path | None = None) -> AudioClassifier:
    """The cached spoken-digit classifier (eval mode), training it first if the cache has none."""
    data_dir = None if data_dir is None else str(data_dir)

    def train(run_dir: Path) -> None:
        spec = training.RunSpec(entry=AUDIO_CLASSIFIER, data="fsdd",
                                options=AudioClassifierConfig(), train=DIGIT_CLASSIFIER_TRAIN,
                                run_dir=run_dir, data_dir=data_dir)  # fmt: skip
        training.train(spec)

    def accuracy(model, options) -> float:
        return evaluate_audio_classifier(model, options, load_data("fsdd", data_dir, options))[
            "accuracy"
        ]

    return cached_yardstick(
        f"audio_classifier-fsdd-v{DIGIT_CLASSIFIER_VERSION}", "audio_classifier", train,
        lambda run_dir: training.load(AUDIO_CLASSIFIER, run_dir)[:2], accuracy, MIN_ACCURACY,
    )  # fmt: skip


@torch.no_grad()
def digit_accuracy(classifier: AudioClassifier, clips: list[torch.Tensor], digits: torch.Tensor):
    """Fraction of float clips the classifier hears as `digits` (K,), and per digit; clips are
    fitted to the classifier's window exactly as its training clips were."""
    predicted = torch.cat([classifier(b).argmax(1) for b in in_window(clips, WINDOW)[0].split(256)])
    right = predicted == digits
    per_digit = {int(d): right[digits == d].float().mean().item() for d in digits.unique()}
    return {"digit_accuracy": right.float().mean().item(), "per_digit": per_digit,
            "predicted": predicted.tolist()}  # fmt: skip


# --- Parallel WaveNet: a student given its teacher and its classifier ------------------------------
def load_teacher(path: str) -> WaveNet:
    """The frozen WaveNet of run directory `path`."""
    if not path:
        raise ConfigError(
            "parallel_wavenet needs --teacher RUN, a trained `genlab train wavenet` run"
        )
    if not (Path(path) / "config.json").is_file():
        raise ConfigError(f"teacher run '{path}' not found (no {Path(path) / 'config.json'})")
    try:
        return training.load(WAVENET, Path(path))[1]
    except RunError as e:
        raise ConfigError(f"the teacher must be a wavenet run: {e}") from None


def build_student(options: ParallelWaveNetConfig) -> ParallelWaveNet:
    """A student of the teacher run `options.teacher`; the digit classifier (the perceptual
    loss's judge) is loaded from genlab's cache the first time the loss needs it."""
    return ParallelWaveNet(options, load_teacher(options.teacher), classifier=digit_classifier)


def evaluate_student(model: ParallelWaveNet, options, data, n: int | None = None, seed: int = 1,
                     **_) -> dict:  # fmt: skip
    """`genlab eval` of a student: n (default 100) conditioned clips scored by its teacher
    (`score_generated`)."""
    return score_generated(model, options, model.teacher, data, n or 100, seed)


# --- the registry's audio entries ----------------------------------------------------------------
_SPEECH = {"log_every": 20, "checkpoint_every": 200}
AUDIO_CLASSIFIER = ModelEntry(
    name="audio_classifier", summary="spoken-digit classifier (log-mel CNN); the yardstick for "
    "speech", options=AudioClassifierConfig, build=AudioClassifier, datasets=("fsdd",),
    load_data=load_data, batches=classifier_batches, evaluate=evaluate_audio_classifier,
    train_defaults={"lr": 2e-3, "batch_size": 64, "log_every": 20},
)  # fmt: skip
WAVENET = ModelEntry(
    name="wavenet", summary="WaveNet on 8-bit mu-law speech (FSDD), cached fast generation",
    options=WaveNetConfig, build=WaveNet, datasets=("fsdd",), load_data=load_data,
    batches=train_batches, evaluate=evaluate_nll, bf16=True,
    train_defaults={"lr": 1e-3, "batch_size": 8, "grad_clip": 1.0, **_SPEECH},
    pictures=audio_pictures, sample=sample_audio,
)  # fmt: skip
ENTRIES = (
    AUDIO_CLASSIFIER,
    WAVENET,
    ModelEntry(
        name="parallel_wavenet", summary="Parallel WaveNet: an IAF student distilled from a "
        "WaveNet teacher", options=ParallelWaveNetConfig, build=build_student,
        datasets=("fsdd",), load_data=load_data, batches=train_batches,
        evaluate=evaluate_student,
        train_defaults={"lr": 1e-3, "batch_size": 4, "grad_clip": 1.0, **_SPEECH},
        pictures=audio_pictures, sample=sample_audio,
    ),
    ModelEntry(
        name="linear_ar", summary="linear autoregressive predictor: the baseline WaveNet must "
        "beat (FSDD)", options=LinearARConfig, build=LinearAR, datasets=("fsdd",),
        load_data=load_data, batches=train_batches, evaluate=evaluate_nll,
        train_defaults={"lr": 1e-3, "batch_size": 8, **_SPEECH},
    ),
)  # fmt: skip
