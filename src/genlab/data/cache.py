"""Decode a dataset once into uint8 tensors, cached on disk, so later runs start in milliseconds.

The cache file records a fingerprint of the source files (relative path, size, mtime). A cache
whose fingerprint no longer matches is rebuilt, and every rebuild verifies the source checksums
first. A fingerprint can match a corrupted file (its mtime restored), so the source checksums
are also verified once per process before a cache is used (about 40 ms for MNIST).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from genlab.data.files import atomic_torch_save
from genlab.data.resolve import Source, cache_dir, verify

CACHE_VERSION = 1  # bump when a decoder changes what it produces


def fingerprint(folder: Path, source: Source) -> list[list]:
    out = []
    for f in source.files:
        st = (folder / f.path).stat()
        out.append([f.path, st.st_size, st.st_mtime_ns])
    return out


_VERIFIED: set[str] = set()  # (folder, dataset, fingerprint) checked in this process


def verify_all(folder: Path, source: Source) -> None:
    """Each file of `source` in `folder` against its checksum (DataError naming a bad one),
    once per process for the files as they are (again if one's size or mtime changes)."""
    key = repr((str(Path(folder).resolve()), source.name, fingerprint(folder, source)))
    if key in _VERIFIED:
        return
    for f in source.files:
        verify(folder / f.path, f.checksums)
    _VERIFIED.add(key)


def load_decoded(
    source: Source, folder: Path, decode: Callable[[Path], dict], tag: str = ""
) -> dict:
    """Return `decode(folder)` from the on-disk cache, decoding (after verifying) when stale."""
    path = cache_dir() / "decoded" / f"{source.name}{tag}-v{CACHE_VERSION}.pt"
    fp = fingerprint(folder, source)
    verify_all(folder, source)  # before the cache too: a fingerprint can match a bad file
    if path.is_file():
        try:
            cached = torch.load(path, weights_only=True)
            if cached.get("fingerprint") == fp:
                return cached["data"]
        except Exception:  # an unreadable cache is only a cache: rebuild it below
            pass
    data = decode(folder)
    atomic_torch_save({"fingerprint": fp, "data": data}, path)
    return data
