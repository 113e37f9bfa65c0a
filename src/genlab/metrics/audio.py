"""Measuring generated speech: genlab's spoken-digit classifier (trained once, checked, cached)
and the rate at which digit-conditioned samples are heard as their digit."""

from __future__ import annotations

from pathlib import Path

import torch

from genlab.data.audio import in_window
from genlab.metrics.yardstick import cached_yardstick
from genlab.models.audio_classifier import WINDOW, AudioClassifier, AudioClassifierConfig
from genlab.train.config import TrainConfig

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
    from genlab.models.audio_tasks import evaluate_audio_classifier, load_data

    def accuracy(model, options) -> float:
        data = load_data("fsdd", None if data_dir is None else str(data_dir), options)
        return evaluate_audio_classifier(model, options, data)["accuracy"]

    return cached_yardstick(
        f"audio_classifier-fsdd-v{DIGIT_CLASSIFIER_VERSION}", "audio_classifier", "fsdd",
        AudioClassifierConfig(), DIGIT_CLASSIFIER_TRAIN, accuracy, MIN_ACCURACY, data_dir,
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


def quiet_fraction(clips: list[torch.Tensor], real: torch.Tensor, length: int,
                   threshold: float = 0.01) -> float:  # fmt: skip
    """Fraction of float clips whose mean power over their first `length` samples (zero past
    a clip's end) is below `threshold` times the mean power of `real` (any shape); 0.01: 20 dB
    quieter. One loud clip can hide many whispered ones in `energy_ratio`; not here."""
    reference = real.square().mean().clamp(min=1e-12)
    power = torch.stack([c[:length].square().sum() / length for c in clips])
    return (power < threshold * reference).float().mean().item()


def energy_ratio(audio: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """Mean power of `audio` over that of `real` (any shapes): 1 = as loud; a whisper is far
    below 1."""
    return audio.square().mean() / real.square().mean().clamp(min=1e-12)


def sound_end(audio: torch.Tensor, rate: int, threshold: float = 0.01, frame: int = 80):
    """Float clips (K, T) -> seconds (K,) to the end of the last `frame`-sample frame whose RMS
    exceeds `threshold` of full scale (0 for a silent clip): where each clip stops sounding."""
    K, T = audio.shape
    frames = audio[:, : T - T % frame].reshape(K, -1, frame)  # (K, F, frame)
    loud = frames.square().mean(-1).sqrt() > threshold  # (K, F)
    last = torch.where(loud, torch.arange(1, loud.shape[1] + 1), 0).amax(1)  # (K,) frames
    return last * frame / rate
