"""Audio as the autoregressive models see it: 8-bit mu-law codes (ITU-T G.711's companding curve,
continuous form, mu = 255), and random training crops.

    float in [-1, 1]  --mulaw_encode-->  long in [0, 255]  --mulaw_decode-->  float in [-1, 1]

Code 128 is the quantisation bin that holds silence (0.0 decodes to ~0.0078 / 255 of full scale).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from genlab.data.batches import seeded
from genlab.errors import DataError

MU = 255
SILENCE = 128  # the code of 0.0


def int16_to_float(x: torch.Tensor) -> torch.Tensor:
    """int16 PCM (...) -> float32 in [-1, 1)."""
    return x.float() / 32768.0


def mulaw_compress(x: torch.Tensor, mu: int = MU) -> torch.Tensor:
    """f(x) = sign(x) ln(1 + mu |x|) / ln(1 + mu), float in [-1, 1] -> float in [-1, 1]."""
    return torch.sign(x) * torch.log1p(mu * x.abs()) / math.log1p(mu)


def mulaw_expand(y: torch.Tensor, mu: int = MU) -> torch.Tensor:
    """The inverse of `mulaw_compress`: x = sign(y) ((1 + mu)^|y| - 1) / mu."""
    return torch.sign(y) * torch.expm1(y.abs() * math.log1p(mu)) / mu


def mulaw_encode(x: torch.Tensor, mu: int = MU) -> torch.Tensor:
    """Float audio in [-1, 1] (any shape) -> long codes in [0, mu]: compress, then round onto mu + 1
    evenly spaced levels. Values outside [-1, 1] are an error (clip them deliberately first)."""
    if x.numel() and (x.abs().max() > 1.0 or not torch.isfinite(x).all()):
        raise DataError(f"mu-law input must be finite and in [-1, 1]; max |x| = {x.abs().max()}")
    y = mulaw_compress(x, mu)
    return torch.round((y + 1) / 2 * mu).long()


def mulaw_decode(q: torch.Tensor, mu: int = MU) -> torch.Tensor:
    """Long codes in [0, mu] -> float audio in [-1, 1] at the centre of each code's level."""
    return mulaw_expand(2 * q.float() / mu - 1, mu)


def random_crops(
    codes: torch.Tensor,
    offsets: torch.Tensor,
    length: int,
    n: int,
    generator: torch.Generator,
    tail: int = 0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """n crops of `length` samples from clips chosen uniformly (with replacement), built as one
    index tensor. Clip k is codes[offsets[k]:offsets[k + 1]]; codes (N,) any integer dtype.

    Each clip is followed by `tail` samples of code SILENCE that count as real (the way a
    recording goes quiet after the speaker stops; FSDD's clips are trimmed at the word's end):
    crops slide over clip + tail. Past that, crops are padded with SILENCE and masked. Returns
    the crops (n, length) long, a mask (n, length) bool that is True on real samples (clip or
    tail), the chosen clips (n,) long and where in them each crop starts (n,) long.
    """
    if length < 1:
        raise DataError(f"crop length must be >= 1, got {length}")
    if tail < 0:
        raise DataError(f"tail of silence must be >= 0 samples, got {tail}")
    which = torch.randint(len(offsets) - 1, (n,), generator=generator)  # (n,)
    start, end = offsets[which], offsets[which + 1]
    slack = (end + tail - start - length).clamp(min=0)  # (n,) how far the crop can slide
    start = start + (torch.rand(n, generator=generator) * (slack + 1)).long().clamp(max=slack)
    idx = start[:, None] + torch.arange(length)  # (n, length)
    inside = idx < end[:, None]
    crops = torch.where(inside, codes[idx.clamp(max=len(codes) - 1)].long(), SILENCE)
    return crops, idx < end[:, None] + tail, which, start - offsets[which]


def _concatenate(
    clips: list[torch.Tensor], dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor]:
    """Clips -> (all samples (N,), offsets (K + 1,) long)."""
    lengths = torch.tensor([len(c) for c in clips], dtype=torch.long)
    offsets = torch.cat([torch.zeros(1, dtype=torch.long), lengths.cumsum(0)])
    return (torch.cat(clips) if clips else torch.zeros(0, dtype=dtype)), offsets


@dataclass(frozen=True)
class ClipSet:
    """Variable-length clips as mu-law codes, concatenated: clip k is codes[offsets[k]:offsets[k+1]]
    with labels speaker[k], digit[k]."""

    codes: torch.Tensor  # (N,) uint8
    offsets: torch.Tensor  # (K + 1,) long
    speaker: torch.Tensor  # (K,) long
    digit: torch.Tensor  # (K,) long

    def __len__(self) -> int:
        return len(self.speaker)

    def clip(self, k: int) -> torch.Tensor:
        """Clip k's codes (T,) long."""
        return self.codes[self.offsets[k] : self.offsets[k + 1]].long()

    def select(self, keep: torch.Tensor) -> ClipSet:
        """The clips where `keep` (K,) bool is True."""
        rows = keep.nonzero().flatten().tolist()
        return ClipSet.from_clips(
            [self.clip(k) for k in rows], self.speaker[keep], self.digit[keep]
        )

    @staticmethod
    def from_clips(
        clips: list[torch.Tensor], speaker: torch.Tensor, digit: torch.Tensor
    ) -> ClipSet:
        """Clips of codes (each (T_k,)) -> a ClipSet."""
        flat, offsets = _concatenate(clips, torch.uint8)
        return ClipSet(flat.to(torch.uint8), offsets, speaker.long(), digit.long())

    @staticmethod
    def from_pcm(clips: list[torch.Tensor], speaker: torch.Tensor, digit: torch.Tensor) -> ClipSet:
        """int16 PCM clips -> their mu-law codes (encoded in one pass over all samples)."""
        flat, offsets = _concatenate(clips, torch.int16)
        codes = mulaw_encode(int16_to_float(flat)).to(torch.uint8)
        return ClipSet(codes, offsets, speaker.long(), digit.long())

    def padded(self, rows: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """Clips `rows` padded with SILENCE to the longest: codes (n, T) long, mask (n, T) bool."""
        clips = [self.clip(k) for k in rows]
        T = max(len(c) for c in clips)
        x = torch.full((len(rows), T), SILENCE, dtype=torch.long)
        mask = torch.zeros(len(rows), T, dtype=torch.bool)
        for i, c in enumerate(clips):
            x[i, : len(c)], mask[i, : len(c)] = c, True
        return x, mask


def mel_filterbank(n_mels: int, n_fft: int, rate: int) -> torch.Tensor:
    """Triangular filters evenly spaced on the mel scale m = 2595 log10(1 + f / 700), from 0 Hz to
    rate / 2: (n_mels, n_fft // 2 + 1), each row peaking at 1."""

    def to_mel(f):
        return 2595 * torch.log10(1 + f / 700)

    def to_hz(m):
        return 700 * (10 ** (m / 2595) - 1)

    edges = to_hz(torch.linspace(0, float(to_mel(torch.tensor(rate / 2))), n_mels + 2))
    freqs = torch.linspace(0, rate / 2, n_fft // 2 + 1)  # (F,)
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]  # (n_mels, 1) each
    rising = (freqs - lo) / (mid - lo)
    falling = (hi - freqs) / (hi - mid)
    return torch.minimum(rising, falling).clamp(min=0)


def power_spectrum(audio: torch.Tensor, n_fft: int = 256, hop: int = 80) -> torch.Tensor:
    """Float audio (B, T) -> |STFT|^2 with a Hann window, (B, n_fft // 2 + 1, T // hop + 1);
    smooth everywhere (re^2 + im^2), so losses can backpropagate through it."""
    spec = torch.stft(audio, n_fft, hop, window=torch.hann_window(n_fft, device=audio.device),
                      return_complex=True)  # fmt: skip
    return torch.view_as_real(spec).square().sum(-1)


def log_mel(audio: torch.Tensor, filters: torch.Tensor, n_fft: int = 256, hop: int = 80):
    """Float audio (B, T) -> log mel power (B, n_mels, frames), frames = T // hop + 1;
    differentiable (the perceptual loss of Parallel WaveNet backpropagates through it)."""
    return torch.log(filters @ power_spectrum(audio, n_fft, hop) + 1e-6)


def in_window(audio: list[torch.Tensor], length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Float clips in a window of `length` samples each: shorter clips start at 0 and are
    zero-padded, longer ones are cut to their central `length`. Returns (K, length) float and
    the lengths used (K,) long."""
    out = torch.zeros(len(audio), length)
    used = torch.zeros(len(audio), dtype=torch.long)
    for k, a in enumerate(audio):
        if len(a) > length:
            start = (len(a) - length) // 2
            a = a[start : start + length]
        out[k, : len(a)], used[k] = a, len(a)
    return out, used


def fixed_length(clips: ClipSet, length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """`in_window` of every clip of a ClipSet, decoded from mu-law."""
    return in_window([mulaw_decode(clips.clip(k)) for k in range(len(clips))], length)


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
