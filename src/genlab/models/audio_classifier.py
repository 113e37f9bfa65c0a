"""A spoken-digit classifier on log-mel spectrograms: genlab's yardstick for generated speech
(is a sample conditioned on digit d heard as d?) and Parallel WaveNet's perceptual loss.

    audio (B, 8000) float in [-1, 1], 1 s at 8 kHz
      -> log mel power (B, 1, 40, 101), normalised per clip (so loudness does not matter)
      -> 3 x [conv 3x3, batch norm, ReLU] with max-pool 2 after the first two
      -> average over time (the 10 mel rows stay apart: formants are where digits differ)
      -> linear -> 10 logits
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from genlab.data.audio import log_mel, mel_filterbank
from genlab.train.config import doc

WINDOW = 8000  # samples a clip is padded or cut to (1 s at 8 kHz)
N_FFT = 256


@dataclass(frozen=True)
class AudioClassifierConfig:
    channels: int = doc("channels of the first conv block (doubled in the next two)", default=16)
    n_mels: int = doc("mel bands", default=40)
    dropout: float = doc("dropout before the last layer", default=0.3)
    augment: bool = doc("train on randomly placed, randomly scaled clips", default=True)


class AudioClassifier(nn.Module):
    def __init__(self, cfg: AudioClassifierConfig):
        super().__init__()
        self.cfg = cfg
        self.register_buffer("filters", mel_filterbank(cfg.n_mels, N_FFT, 8000), persistent=False)
        c = cfg.channels
        self.body = nn.Sequential(
            nn.Conv2d(1, c, 3, padding=1), nn.BatchNorm2d(c), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(c, 2 * c, 3, padding=1), nn.BatchNorm2d(2 * c), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(2 * c, 4 * c, 3, padding=1), nn.BatchNorm2d(4 * c), nn.ReLU(),
            nn.AdaptiveAvgPool2d((cfg.n_mels // 4, 1)), nn.Flatten(),  # (B, 4c * n_mels / 4)
        )  # fmt: skip
        self.head = nn.Sequential(nn.Dropout(cfg.dropout), nn.Linear(4 * c * (cfg.n_mels // 4), 10))

    def spectrogram(self, audio: torch.Tensor) -> torch.Tensor:
        """(B, T) -> (B, 1, n_mels, frames), zero mean and unit variance per clip."""
        m = log_mel(audio, self.filters, N_FFT)
        m = (m - m.mean((1, 2), keepdim=True)) / (m.std((1, 2), keepdim=True) + 1e-5)
        return m[:, None]

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        """Float audio (B, T) (T = 8000 as trained) -> digit logits (B, 10)."""
        return self.head(self.body(self.spectrogram(audio)))

    def loss(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        logits = self(batch["x"])
        return {
            "loss": F.cross_entropy(logits, batch["y"]),
            "accuracy": (logits.argmax(1) == batch["y"]).float().mean(),
        }


def place_randomly(batch: dict[str, torch.Tensor], g: torch.Generator) -> dict[str, torch.Tensor]:
    """Augmentation: move each clip to a random start within the window (it stays whole) and
    scale it by a random gain in [0.25, 1]. x (B, W) starts at 0 with its length in "length"."""
    x, length = batch["x"], batch["length"]
    B, W = x.shape
    shift = (torch.rand(B, generator=g) * (W - length + 1)).long()  # (B,)
    idx = torch.arange(W) - shift[:, None]  # (B, W): where each output sample comes from
    valid = (idx >= 0) & (idx < length[:, None])
    moved = torch.where(valid, x.gather(1, idx.clamp(0, W - 1)), 0.0)
    gain = 0.25 + 0.75 * torch.rand(B, 1, generator=g)
    return {**batch, "x": moved * gain}
