"""Small C kernels for loops that are all per-call overhead in Python (e.g. WaveNet's sample-by-
sample generation). Each is compiled on first use with the system C compiler into genlab's
cache and loaded with ctypes; callers that get None use their (slower, equal) PyTorch path.

What is loaded is what genlab built: a library's file name is a hash of its source, the
compiler (path and version), the flags and this CPU's features, and beside it lies the SHA-256
of the library as built, checked before every load (a mismatch is rebuilt). A cache folder that
another user owns, or that others may write to, is refused. Any failure (no compiler, a failed
compile, a refused folder, a library that does not load) falls back to PyTorch with one
warning line saying why and how much slower; GENLAB_NO_KERNELS=1 chooses PyTorch silently.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from functools import cache
from importlib import resources
from pathlib import Path

from genlab.data.files import atomic_write_text
from genlab.data.resolve import cache_dir

FLAGS = ["-O3", "-march=native", "-fPIC", "-shared", "-std=c99"]
THREADED = ["-fopenmp"]  # for kernels with `#pragma omp`; dropped if the compiler lacks OpenMP
# How much slower each kernel's PyTorch path is (benchmarks/README.md and docs/results.md).
SLOWER = {
    "wavenet_generate": "about 40x slower (1,194 against 47,896 samples/s, one stream)",
    "iaf_forward": "about 2.3x slower (206,000 against 477,000 samples/s, one thread)",
}


class KernelUnavailable(Exception):
    """Why a kernel cannot be used here (the warning says it)."""


def _cpu_features() -> bytes:
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return b""
    return next((ln for ln in lines if ln.startswith("flags")), "").encode()


def sha256_file(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@cache
def _compiler() -> tuple[str, bytes]:
    """The C compiler's path and its identity (path and version line) for the cache key."""
    name = os.environ.get("CC", "cc")
    path = shutil.which(name)
    if path is None:
        raise KernelUnavailable(f"no C compiler ('{name}' not found)")
    try:
        done = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise KernelUnavailable(f"the C compiler {path} does not run ({e})") from None
    version = (done.stdout or done.stderr).splitlines()[:1]
    return path, f"{path}\n{version}".encode()


def kernel_dir() -> Path:
    """The kernels' cache folder, refused if another user owns it or others may write to it
    (they could plant a library there)."""
    folder = cache_dir() / "kernels"
    folder.mkdir(parents=True, exist_ok=True)
    st = folder.stat()
    if st.st_uid != os.getuid() or st.st_mode & (stat.S_IWOTH | stat.S_IWGRP):
        raise KernelUnavailable(f"{folder} is writable by others or not yours")
    return folder


@cache
def load(name: str) -> ctypes.CDLL | None:
    """Kernel `name` (src/genlab/nn/kernels/NAME.c) as a loaded library, or None (with one
    warning line on stderr) where it cannot be built or trusted here."""
    if os.environ.get("GENLAB_NO_KERNELS"):
        return None
    try:
        return _load(name)
    except KernelUnavailable as e:
        slower = SLOWER.get(name, "slower")
        print(f"warning: genlab's C kernel {name} is not used: {e}; the PyTorch path is "
              f"{slower}", file=sys.stderr)  # fmt: skip
        return None


def _load(name: str) -> ctypes.CDLL:
    compiler, identity = _compiler()
    folder = kernel_dir()
    source = resources.files("genlab.nn.kernels").joinpath(f"{name}.c").read_bytes()
    variants = [FLAGS + THREADED, FLAGS] if b"#pragma omp" in source else [FLAGS]
    error = ""
    for flags in variants:
        key_parts = source + " ".join(flags).encode() + identity + _cpu_features()
        lib = folder / f"{name}-{hashlib.sha256(key_parts).hexdigest()[:16]}.so"
        recorded = lib.with_suffix(".so.sha256")
        trusted = (
            lib.is_file()
            and recorded.is_file()
            and (recorded.read_text().strip() == sha256_file(lib))
        )
        if not trusted:
            error = _compile(compiler, name, source, flags, lib)
            if error:
                continue  # the next variant may build (a compiler without OpenMP)
        try:
            return ctypes.CDLL(str(lib))
        except OSError as e:
            raise KernelUnavailable(f"{lib} does not load ({e})") from None
    raise KernelUnavailable(f"compiling {name}.c failed: {error}")


def _compile(compiler: str, name: str, source: bytes, flags: list[str], lib: Path) -> str:
    """Build `source` into `lib` and record its SHA-256 beside it; the compiler's last error
    line if it failed ("" on success)."""
    with tempfile.TemporaryDirectory() as tmp:
        src, out = Path(tmp) / f"{name}.c", Path(tmp) / f"{name}.so"
        src.write_bytes(source)
        try:
            done = subprocess.run([compiler, *flags, str(src), "-o", str(out), "-lm"],
                                  capture_output=True, text=True, timeout=300)  # fmt: skip
        except (OSError, subprocess.TimeoutExpired) as e:
            return str(e)
        if done.returncode != 0 or not out.is_file():
            lines = (done.stderr or done.stdout).strip().splitlines()
            return lines[-1] if lines else f"{compiler} exited with {done.returncode}"
        digest = sha256_file(out)
        os.replace(out, lib)  # atomic: another process never loads half a file
        atomic_write_text(lib.with_suffix(".so.sha256"), digest + "\n")
    return ""
