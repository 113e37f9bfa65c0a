"""Audio people can hear and see: 16-bit WAV files, and a matplotlib figure with one row per
clip holding its waveform (left) and log-magnitude spectrogram (right, time across, frequency
up), with axes in seconds and Hz."""

from __future__ import annotations

import io
import wave
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure

from genlab.data.fsdd import SAMPLE_RATE
from genlab.viz.curves import COLOURS, save_figure


def wav_bytes(audio: torch.Tensor, rate: int = SAMPLE_RATE) -> bytes:
    """Float audio (T,) in [-1, 1] -> a mono 16-bit WAV file's bytes."""
    pcm = (audio.clamp(-1, 1) * 32767).round().to(torch.int16).numpy()
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.astype("<i2").tobytes())
    return buf.getvalue()


def save_wav(audio: torch.Tensor, path: Path, rate: int = SAMPLE_RATE) -> Path:
    """`wav_bytes` as a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(wav_bytes(audio, rate))
    return path


def log_spectrogram(audio: torch.Tensor, n_fft: int = 256, hop: int = 64) -> torch.Tensor:
    """(T,) -> log(|STFT|^2 + 1e-8), (n_fft // 2 + 1, frames), Hann window."""
    spec = torch.stft(
        audio.float(), n_fft, hop, window=torch.hann_window(n_fft), return_complex=True
    )
    return torch.log(spec.abs().square() + 1e-8)


def audio_figure(clips: list[torch.Tensor], titles: list[str], rate: int = SAMPLE_RATE) -> Figure:
    """One row per clip (float, [-1, 1]): its waveform against time, and its log spectrogram
    (the top 12 nats of dynamic range) against time and frequency; the title above each row."""
    fig = Figure(figsize=(10.0, 1.9 * max(1, len(clips))), layout="constrained")
    axes = fig.subplots(max(1, len(clips)), 2, squeeze=False)
    for (wave_ax, spec_ax), clip, title in zip(axes, clips, titles, strict=False):
        a = clip.float().numpy()
        wave_ax.plot(np.arange(len(a)) / rate, a, color=COLOURS[0], lw=0.6)
        wave_ax.set(ylim=(-1, 1), title=title, xlabel="seconds", ylabel="amplitude")
        if len(a) > 256:
            spec = log_spectrogram(clip).numpy()
            seconds = len(a) / rate
            spec_ax.imshow(spec, origin="lower", aspect="auto", cmap="magma",
                           vmin=spec.max() - 12, vmax=spec.max(),
                           extent=(0, seconds, 0, rate / 2))  # fmt: skip
            spec_ax.set(xlabel="seconds", ylabel="Hz", title="log spectrogram")
        else:
            spec_ax.set_axis_off()
            spec_ax.set_title("too short for a spectrogram")
    return fig


def save_audio_picture(clips: list[torch.Tensor], titles: list[str], path: Path) -> Path:
    """`audio_figure` as a PNG."""
    return save_figure(audio_figure(clips, titles), path)
