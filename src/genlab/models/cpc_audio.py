"""Contrastive predictive coding on raw speech (van den Oord et al. 2018, section 3.1), at 8 kHz.

A strided 1-D convolutional encoder turns the waveform into one code z_t per 10 ms (80
samples); a GRU over the codes gives a context c_t that has heard only codes up to t; for
k = 1..K, a linear map W_k c_t must pick the true z_{t+k} among every frame code in the batch
(InfoNCE, `genlab.nn.contrastive`). The representation a probe reads is the clip's average
code and context over its real frames.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from genlab.data.audio import mulaw_decode
from genlab.errors import ConfigError
from genlab.nn.contrastive import info_nce_over_offsets
from genlab.train.config import doc

# (kernel, stride) of the encoder's convolutions: strides 5 * 4 * 2 * 2 = 80 samples = 10 ms;
# padding (kernel - stride) / 2 makes exactly T / 80 frames. Code t hears samples up to 80 t + 151.
LAYERS = ((9, 5), (8, 4), (4, 2), (4, 2))
HOP = 80


@dataclass(frozen=True)
class AudioCPCConfig:
    crop: int = doc("samples per training crop (8 kHz; a multiple of 80)", default=4000)
    channels: int = doc("channels of the encoder's convolutions", default=256)
    code_dim: int = doc("size of a frame's code z", default=256)
    context_dim: int = doc("GRU units of the context network", default=256)
    steps_ahead: int = doc("frames (of 10 ms) ahead to predict, k = 1..K", default=6)

    def __post_init__(self) -> None:
        if self.crop % HOP or self.crop // HOP <= self.steps_ahead:
            raise ConfigError(f"--crop {self.crop} must be a multiple of {HOP} samples and longer "
                              f"than --steps-ahead {self.steps_ahead} frames")  # fmt: skip
        if self.steps_ahead < 1:
            raise ConfigError(f"--steps-ahead must be >= 1, got {self.steps_ahead}")


def frame_mask(sample_mask: torch.Tensor) -> torch.Tensor:
    """(B, T) bool per sample -> (B, T // 80) bool per frame: every sample of the frame real."""
    b, t = sample_mask.shape
    return sample_mask[:, : t - t % HOP].view(b, -1, HOP).all(2)


class AudioEncoder(nn.Module):
    """(B, T) waveform in [-1, 1] -> (B, D, T // 80) frame codes."""

    def __init__(self, cfg: AudioCPCConfig):
        super().__init__()
        self.convs = nn.ModuleList()
        c_in = 1
        for i, (k, s) in enumerate(LAYERS):
            c_out = cfg.code_dim if i == len(LAYERS) - 1 else cfg.channels
            self.convs.append(nn.Conv1d(c_in, c_out, k, s, padding=(k - s) // 2))
            c_in = c_out

    def forward(self, wave: torch.Tensor, frames: torch.Tensor | None = None) -> torch.Tensor:
        """With `frames` (B,), each clip is cut to that many whole frames and every layer sees
        zeros past it, as it would if the clip were encoded alone."""
        h = wave[:, None, : wave.shape[1] - wave.shape[1] % HOP]  # (B, 1, T)
        hop = 1
        for i, (conv, (_, s)) in enumerate(zip(self.convs, LAYERS, strict=True)):
            if frames is not None:
                h = h * (torch.arange(h.shape[2]) < frames[:, None] * HOP // hop)[:, None]
            h = conv(h)
            hop *= s
            h = torch.relu(h) if i < len(LAYERS) - 1 else h
        return h


class AudioCPC(nn.Module):
    def __init__(self, cfg: AudioCPCConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = AudioEncoder(cfg)
        self.gru = nn.GRU(cfg.code_dim, cfg.context_dim, batch_first=True)
        self.predict = nn.ModuleList(
            nn.Linear(cfg.context_dim, cfg.code_dim) for _ in range(cfg.steps_ahead)
        )

    def codes_and_contexts(
        self, wave: torch.Tensor, frames: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T) -> z (B, F, D), c (B, F, H) for the F = T // 80 frames; c_t sees z_{<=t}.
        `frames`: see `AudioEncoder.forward`."""
        z = self.encoder(wave, frames).transpose(1, 2)  # (B, F, D)
        c, _ = self.gru(z.float())
        return z, c

    def loss(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Mean InfoNCE over k = 1..K and every context whose target frame is real speech
        (crops past a clip's end are padded); candidates = every frame code in the batch."""
        z, c = self.codes_and_contexts(mulaw_decode(batch["x"]))
        b, f, d = z.shape
        real = frame_mask(batch["mask"])  # (B, F)
        candidates = z.reshape(-1, d)  # (B F, D), index b * F + t
        index = torch.arange(b * f, device=z.device).view(b, f)
        predicted = {}
        for k in range(1, self.cfg.steps_ahead + 1):
            keep = real[:, k:]  # (B, F - k): the target z_{t+k} is real
            predicted[k] = (self.predict[k - 1](c[:, : f - k])[keep], index[:, k:][keep])
        return info_nce_over_offsets(predicted, candidates)

    def embed_clips(self, wave: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(B, T) zero-padded waveforms and their lengths (B,) -> (B, D + H): each clip's code
        and context averaged over its whole frames (at least one), in float32; the same for a
        clip alone as in a batch with longer ones."""
        frames = (lengths // HOP).clamp(min=1)  # (B,) whole frames of each clip
        z, c = self.codes_and_contexts(wave, frames)
        real = (torch.arange(z.shape[1])[None] < frames[:, None]).float()[..., None]  # (B, F, 1)
        mean = lambda v: (v.float() * real).sum(1) / real.sum(1)  # noqa: E731
        return torch.cat([mean(z), mean(c)], 1)
