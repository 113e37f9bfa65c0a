"""Files that are never seen half-written, and read with errors that name them.

Every write goes to a temporary file in the same folder (`.NAME.*.tmp`), is flushed to disk,
then renamed over NAME: a reader sees the old file or the new one, and a process killed at any
point leaves the old file intact. A killed writer's temporary files are swept by the next writer
that holds the folder's lock (`genlab.train.runs.exclusive`).
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

import torch

from genlab.errors import GenlabError


def _atomic_write(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_torch_save(obj: object, path: Path) -> None:
    """torch.save `obj` to `path` atomically."""
    _atomic_write(path, lambda f: torch.save(obj, f))


def atomic_write_text(path: Path, text: str) -> None:
    _atomic_write(path, lambda f: f.write(text.encode()))


def json_safe(value):
    """`value` with every non-finite float (NaN, inf) replaced by None, so it is standard JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def to_json(value, indent: int | None = None) -> str:
    """Standard JSON (never NaN or Infinity: those become null)."""
    return json.dumps(json_safe(value), indent=indent, allow_nan=False)


def atomic_write_json(path: Path, value, indent: int | None = 2) -> None:
    atomic_write_text(path, to_json(value, indent) + "\n")


def read_json(path: Path, error: type[GenlabError] = GenlabError) -> dict:
    """A JSON object from `path`; `error` naming the file and what is wrong with it otherwise."""
    path = Path(path)
    try:
        value = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise error(f"{path} is missing") from None
    except (OSError, UnicodeDecodeError) as e:
        raise error(f"cannot read {path}: {e}") from None
    except json.JSONDecodeError as e:
        raise error(f"{path} is not valid JSON (line {e.lineno}: {e.msg})") from None
    if not isinstance(value, dict):
        raise error(f"{path} should hold a JSON object, not {type(value).__name__}")
    return value


def sweep_temp_files(folder: Path) -> list[Path]:
    """Delete the temporary files (`.NAME.*.tmp`) killed writers left in `folder`. Only call it
    while holding the folder's lock: then no live writer owns one."""
    swept = sorted(Path(folder).glob(".*.tmp"))
    for p in swept:
        p.unlink(missing_ok=True)
    return swept
