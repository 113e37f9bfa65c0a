"""Find dataset files: `--data-dir`, then `$GENLAB_DATA`, then the user cache, then download.

A dataset is a folder `<root>/<name>/` holding the files its `Source` lists. The first root that
holds *every* file wins; a root holding only some of them is never used (partial data is never
used silently) but is named in the error. Downloads go into the cache root, stream into a
temporary file while hashing, and are renamed into place only when a published checksum matches.

Checksums are strings "sha256:<hex>" or "md5:<hex>"; a file is accepted when any one matches
(for example the upstream md5 of an archive and the sha256 of a repacked copy).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from genlab.errors import DataError

ENV_DATA = "GENLAB_DATA"
ENV_CACHE = "GENLAB_CACHE"
ENV_MIRROR = (
    "GENLAB_MIRROR"  # base URL tried before the official sources: <mirror>/<dataset>/<path>
)
ENV_OFFLINE = "GENLAB_OFFLINE"


@dataclass(frozen=True)
class RemoteFile:
    path: str  # relative to the dataset folder, e.g. "recordings/0_jackson_0.wav"
    checksums: tuple[str, ...]  # "sha256:<hex>" / "md5:<hex>"; any match accepts the file


@dataclass(frozen=True)
class Source:
    name: str  # folder name under a data root
    files: tuple[RemoteFile, ...]
    base_urls: tuple[str, ...]  # official sources; file URL = base + path


def cache_dir() -> Path:
    """The user cache: `$GENLAB_CACHE`, else `$XDG_CACHE_HOME/genlab`, else `~/.cache/genlab`."""
    if os.environ.get(ENV_CACHE):
        return Path(os.environ[ENV_CACHE]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "genlab"


def data_roots(data_dir: str | Path | None = None) -> list[Path]:
    """Roots in the order they are searched; a `data_dir` given but missing is a DataError."""
    roots = []
    if data_dir is not None:
        if not Path(data_dir).expanduser().is_dir():
            raise DataError(f"--data-dir {data_dir} is not a folder (it should hold a folder per "
                            "dataset: DIR/mnist/, DIR/omniglot/, DIR/fsdd/)")  # fmt: skip
        roots.append(Path(data_dir).expanduser())
    if os.environ.get(ENV_DATA):
        roots.append(Path(os.environ[ENV_DATA]).expanduser())
    roots.append(cache_dir() / "data")
    return roots


def file_digest(path: Path, algorithm: str) -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def verify(path: Path, checksums: tuple[str, ...]) -> None:
    """Raise DataError naming the file and the expected checksum unless one of them matches."""
    if not path.is_file():
        raise DataError(f"missing data file {path}")
    actual = {}
    for spec in checksums:
        algorithm, expected = spec.split(":", 1)
        if algorithm not in actual:
            actual[algorithm] = file_digest(path, algorithm)
        if actual[algorithm] == expected:
            return
    got = ", ".join(f"{a}:{d}" for a, d in actual.items())
    raise DataError(
        f"corrupt or truncated data file {path} ({path.stat().st_size} bytes): expected "
        f"{' or '.join(checksums)}, got {got}. Delete it and run again to re-download, "
        "or replace it with a good copy."
    )


def resolve(
    source: Source, data_dir: str | Path | None = None, download: bool | None = None
) -> Path:
    """Return the folder holding every file of `source`, downloading into the cache if needed.

    Files are not hashed here (that would cost every run); `genlab.data.cache` hashes them
    whenever it decodes, and `genlab data check` hashes on demand.
    """
    roots = data_roots(data_dir)
    partial, fullest, most = [], roots[-1] / source.name, 0
    for root in roots:
        folder = root / source.name
        present = [f for f in source.files if (folder / f.path).is_file()]
        if len(present) == len(source.files):
            return folder
        if present:
            partial.append(f"{folder} has {len(present)} of {len(source.files)} files")
        if len(present) > most:
            fullest, most = folder, len(present)
    if download is None:
        download = os.environ.get(ENV_OFFLINE, "") not in ("1", "true", "yes")
    target = roots[-1] / source.name
    if download:
        errors = fetch_missing(source, target)
        if not errors:
            return target
    else:
        errors = ["downloads are off (GENLAB_OFFLINE is set)"]
    # Name what is missing where the most files are (not files another folder already has).
    where = target if download and target.is_dir() and not most else fullest
    missing = [f.path for f in source.files if not (where / f.path).is_file()]
    shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
    raise DataError(
        f"dataset '{source.name}' not found: missing {shown}. Searched "
        f"{', '.join(str(r / source.name) for r in roots)}"
        + (f" ({'; '.join(partial)})" if partial else "")
        + f". Download failed: {errors[0]}. Put the files in {target}/, "
        f"or pass --data-dir DIR (or set {ENV_DATA}=DIR) with them in DIR/{source.name}/."
    )


def fetch_missing(source: Source, folder: Path) -> list[str]:
    """Download every missing file of `source` into `folder`; return error strings (empty = ok)."""
    todo = [f for f in source.files if not (folder / f.path).is_file()]
    bases = list(source.base_urls)
    if os.environ.get(ENV_MIRROR):
        bases.insert(0, os.environ[ENV_MIRROR].rstrip("/") + f"/{source.name}/")
    errors: list[str] = []
    bar = tqdm(todo, desc=f"download {source.name}", unit="file", disable=len(todo) < 2)
    for remote in bar:
        last = None
        for base in bases:
            try:
                download_file(base + remote.path, folder / remote.path, remote.checksums)
                last = None
                break
            except (OSError, urllib.error.URLError, DataError) as e:
                last = f"{base + remote.path}: {e}"
        if last is not None:
            errors.append(last)
            if len(errors) >= 3:  # offline: fail fast instead of trying thousands of files
                break
    return errors


def download_file(url: str, dest: Path, checksums: tuple[str, ...], timeout: float = 30.0) -> None:
    """Stream `url` into a temp file beside `dest`, verify, then rename. Never leaves a partial file."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
            for chunk in iter(lambda: resp.read(1 << 20), b""):
                out.write(chunk)
        verify(tmp, checksums)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
