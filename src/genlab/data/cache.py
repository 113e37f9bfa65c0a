"""Decode a dataset once into uint8 tensors, cached on disk, so later runs start in milliseconds.

The cache file records a fingerprint of the source files (relative path, size, mtime). A cache
whose fingerprint no longer matches is rebuilt, and every rebuild verifies the source checksums
first, so a file corrupted after caching is caught on the next run.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch

from genlab.data.resolve import Source, cache_dir, verify

CACHE_VERSION = 1  # bump when a decoder changes what it produces


def fingerprint(folder: Path, source: Source) -> list[list]:
    out = []
    for f in source.files:
        st = (folder / f.path).stat()
        out.append([f.path, st.st_size, st.st_mtime_ns])
    return out


def verify_all(folder: Path, source: Source) -> None:
    for f in source.files:
        verify(folder / f.path, f.checksums)


def load_decoded(
    source: Source, folder: Path, decode: Callable[[Path], dict], tag: str = ""
) -> dict:
    """Return `decode(folder)` from the on-disk cache, decoding (after verifying) when stale."""
    path = cache_dir() / "decoded" / f"{source.name}{tag}-v{CACHE_VERSION}.pt"
    fp = fingerprint(folder, source)
    if path.is_file():
        try:
            cached = torch.load(path, weights_only=True)
            if cached.get("fingerprint") == fp:
                return cached["data"]
        except Exception:  # an unreadable cache is only a cache: rebuild it below
            pass
    verify_all(folder, source)
    data = decode(folder)
    atomic_torch_save({"fingerprint": fp, "data": data}, path)
    return data


def atomic_torch_save(obj: object, path: Path) -> None:
    """torch.save to a temp file in the same folder, fsync, then rename over `path`.

    A process killed at any point leaves either the old file or the new one, never a torn one.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
