"""Free Spoken Digit Dataset: 3,000 mono 16-bit 8 kHz WAV recordings, `{digit}_{speaker}_{index}.wav`.

Six speakers x ten digits x 50 takes. The upstream split: indices 0-4 are test, 5-49 train.
Audio is variable-length, so it is cached as one int16 tensor of all samples plus offsets.
"""

from __future__ import annotations

import wave
from importlib import resources
from pathlib import Path

import numpy as np
import torch

from genlab.data.cache import load_decoded
from genlab.data.resolve import RemoteFile, Source, resolve
from genlab.errors import DataError

SAMPLE_RATE = 8_000
SPEAKERS = ("george", "jackson", "lucas", "nicolas", "theo", "yweweler")
TEST_INDICES = range(0, 5)


def _manifest() -> tuple[RemoteFile, ...]:
    text = resources.files("genlab.data").joinpath("manifests/fsdd_recordings.sha256").read_text()
    files = []
    for line in text.splitlines():
        digest, name = line.split()
        files.append(RemoteFile(f"recordings/{name}", (f"sha256:{digest}",)))
    return tuple(sorted(files, key=lambda f: f.path))


SOURCE = Source(
    name="fsdd",
    files=_manifest(),
    base_urls=("https://raw.githubusercontent.com/Jakobovski/free-spoken-digit-dataset/v1.0.10/",),
)


def read_wav(path: Path) -> np.ndarray:
    """Mono 16-bit 8 kHz WAV -> int16 (T,). Anything else is an error naming the file."""
    try:
        with wave.open(str(path), "rb") as w:
            fmt = (w.getnchannels(), w.getsampwidth(), w.getframerate())
            frames = w.readframes(w.getnframes())
    except (wave.Error, EOFError) as e:
        raise DataError(f"{path}: unreadable WAV ({e})") from e
    if fmt != (1, 2, SAMPLE_RATE):
        raise DataError(f"{path}: (channels, bytes/sample, rate) = {fmt}, expected (1, 2, 8000)")
    return np.frombuffer(frames, dtype="<i2")


def _decode(folder: Path) -> dict:
    audio, lengths, digit, speaker, index = [], [], [], [], []
    for f in SOURCE.files:
        d, s, i = Path(f.path).stem.split("_")
        a = read_wav(folder / f.path)
        audio.append(a)
        lengths.append(len(a))
        digit.append(int(d))
        speaker.append(SPEAKERS.index(s))
        index.append(int(i))
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    return {
        "audio": torch.from_numpy(np.concatenate(audio).copy()),  # (sum T,) int16
        "offsets": torch.from_numpy(offsets),  # (3001,) int64; clip k is audio[o[k]:o[k+1]]
        "digit": torch.tensor(digit),
        "speaker": torch.tensor(speaker),
        "index": torch.tensor(index),
    }


def load(split: str | None = None, data_dir: str | Path | None = None) -> dict:
    """Recordings of a split ('train', 'test' or None for all) as a dict with a list of clips.

    Returns {"clips": list of int16 (T,), "digit", "speaker", "index": int64 (N,)}.
    """
    data = load_decoded(SOURCE, resolve(SOURCE, data_dir), _decode)
    if split not in (None, "train", "test"):
        raise DataError(f"FSDD has splits 'train' and 'test', not '{split}'")
    is_test = data["index"] < len(TEST_INDICES)
    keep = torch.ones_like(is_test) if split is None else is_test if split == "test" else ~is_test
    o = data["offsets"]
    rows = keep.nonzero().flatten().tolist()
    return {
        "clips": [data["audio"][o[k] : o[k + 1]] for k in rows],
        "digit": data["digit"][keep],
        "speaker": data["speaker"][keep],
        "index": data["index"][keep],
    }
