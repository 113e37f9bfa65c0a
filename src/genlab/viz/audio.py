"""Audio people can hear and see: 16-bit WAV files, and a PNG with one row per clip holding its
waveform (left) and log-magnitude spectrogram (right, time across, frequency up)."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from genlab.data.fsdd import SAMPLE_RATE
from genlab.viz.images import PALETTE


def save_wav(audio: torch.Tensor, path: Path, rate: int = SAMPLE_RATE) -> Path:
    """Float audio (T,) in [-1, 1] -> a mono 16-bit WAV file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pcm = (audio.clamp(-1, 1) * 32767).round().to(torch.int16).numpy()
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.astype("<i2").tobytes())
    return path


def log_spectrogram(audio: torch.Tensor, n_fft: int = 256, hop: int = 64) -> torch.Tensor:
    """(T,) -> log(|STFT|^2 + 1e-8), (n_fft // 2 + 1, frames), Hann window."""
    spec = torch.stft(
        audio.float(), n_fft, hop, window=torch.hann_window(n_fft), return_complex=True
    )
    return torch.log(spec.abs().square() + 1e-8)


def _heat(values: np.ndarray) -> np.ndarray:
    """(H, W) in [0, 1] -> (H, W, 3) uint8: black -> genlab blue -> white."""
    blue = np.array(PALETTE[0], dtype=np.float32)
    v = values[..., None]
    low = 2 * v * blue
    high = blue + (2 * v - 1) * (255 - blue)
    return np.where(v < 0.5, low, high).clip(0, 255).astype(np.uint8)


def save_audio_picture(
    clips: list[torch.Tensor], titles: list[str], path: Path, width: int = 360, height: int = 80
) -> Path:
    """Float clips in [-1, 1] -> PNG, one row per clip: title, waveform, spectrogram."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    row_h, pad = height + 16, 6
    img = Image.new("RGB", (2 * width + 3 * pad, len(clips) * row_h + pad), "white")
    draw = ImageDraw.Draw(img)
    for i, (clip, title) in enumerate(zip(clips, titles, strict=True)):
        top = i * row_h + pad
        draw.text((pad, top), title, fill=(0, 0, 0))
        y0 = top + 14
        draw.rectangle([pad, y0, pad + width, y0 + height], outline=(200, 200, 200))
        a = clip.float().numpy()
        if len(a):  # min/max per pixel column, the usual waveform drawing
            cols = np.array_split(a, width) if len(a) >= width else [a[[j]] for j in range(len(a))]
            for x, col in enumerate(cols):
                lo, hi = float(col.min()), float(col.max())
                mid = y0 + height / 2
                draw.line([(pad + x, mid - hi * height / 2), (pad + x, mid - lo * height / 2)],
                          fill=PALETTE[0])  # fmt: skip
        if len(a) > 256:
            s = log_spectrogram(clip).numpy()
            s = (s - s.max() + 12).clip(0, None) / 12  # the top 12 nats of dynamic range
            tile = Image.fromarray(_heat(s[::-1])).resize((width, height), Image.BILINEAR)
            img.paste(tile, (2 * pad + width, y0))
    img.save(path)
    return path
