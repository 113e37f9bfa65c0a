"""Small C kernels for loops that are all per-call overhead in Python (e.g. WaveNet's sample-by-
sample generation). Each is compiled on first use with the system C compiler into genlab's
cache, keyed by its source and this CPU's features, and loaded with ctypes. Without a compiler
`load` returns None and callers use their (slower, equal) PyTorch path."""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import tempfile
from functools import cache
from importlib import resources
from pathlib import Path

from genlab.data.resolve import cache_dir

FLAGS = ["-O3", "-march=native", "-fPIC", "-shared", "-std=c99"]
THREADED = ["-fopenmp"]  # for kernels with `#pragma omp`; dropped if the compiler lacks OpenMP


def _cpu_features() -> bytes:
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return b""
    return next((ln for ln in lines if ln.startswith("flags")), "").encode()


@cache
def load(name: str) -> ctypes.CDLL | None:
    """Kernel `name` (src/genlab/nn/kernels/NAME.c) as a loaded library, or None if there is no
    C compiler (set GENLAB_NO_KERNELS=1 to force the PyTorch path)."""
    if os.environ.get("GENLAB_NO_KERNELS"):
        return None
    compiler = shutil.which(os.environ.get("CC", "cc"))
    if compiler is None:
        return None
    source = resources.files("genlab.nn.kernels").joinpath(f"{name}.c").read_bytes()
    variants = [FLAGS + THREADED, FLAGS] if b"#pragma omp" in source else [FLAGS]
    for flags in variants:
        key = hashlib.sha256(source + " ".join(flags).encode() + _cpu_features()).hexdigest()[:16]
        lib = cache_dir() / "kernels" / f"{name}-{key}.so"
        if lib.is_file() or _compile(
            compiler, name, source, flags, lib, last=flags is variants[-1]
        ):
            return ctypes.CDLL(str(lib))
    raise AssertionError("unreachable: compiling the last variant raises on failure")


def _compile(
    compiler: str, name: str, source: bytes, flags: list[str], lib: Path, last: bool
) -> bool:
    """Compile `source` into `lib`; False if it failed and another variant may be tried."""
    lib.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        src, out = Path(tmp) / f"{name}.c", Path(tmp) / f"{name}.so"
        src.write_bytes(source)
        done = subprocess.run([compiler, *flags, str(src), "-o", str(out), "-lm"],
                              capture_output=True, text=True)  # fmt: skip
        if done.returncode != 0:
            if not last:
                return False
            raise RuntimeError(f"compiling {name}.c failed:\n{done.stderr[-2000:]}")
        os.replace(out, lib)  # atomic: another process never loads half a file
    return True
