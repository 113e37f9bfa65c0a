"""Measuring generated speech from its samples alone: loudness against real speech, where it
stops. (How often it is heard as its digit: `genlab.tasks.audio.digit_accuracy`.)"""

from __future__ import annotations

import torch


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
