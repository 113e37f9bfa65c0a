"""`genlab data check`: which datasets are present, whether their checksums hold, what they contain."""

from __future__ import annotations

from pathlib import Path

from genlab.data import fsdd, mnist, omniglot
from genlab.data.cache import verify_all
from genlab.data.resolve import data_roots
from genlab.errors import DataError

SOURCES = {"mnist": mnist.SOURCE, "omniglot": omniglot.SOURCE, "fsdd": fsdd.SOURCE}


def _counts(name: str, data_dir) -> str:
    if name == "mnist":
        x, y = mnist.load("train", data_dir)
        tx, _ = mnist.load("test", data_dir)
        return f"train {len(x)}, test {len(tx)}, {tuple(x.shape[1:])}"
    if name == "omniglot":
        d = omniglot.load(data_dir)
        return f"{len(d['images'])} images, {len(set(d['character'].tolist()))} characters"
    d = fsdd.load(None, data_dir)
    return f"{len(d['clips'])} clips, {int((d['index'] < 5).sum())} test"


def check_all(data_dir: str | Path | None = None, only: str | None = None) -> list[dict]:
    rows = []
    for name, source in SOURCES.items():
        if only and name != only:
            continue
        row = {
            "dataset": name,
            "files": f"0/{len(source.files)}",
            "checksums": "missing",
            "counts": "-",
            "where": "not found",
        }
        for root in data_roots(data_dir):
            folder = root / name
            present = sum((folder / f.path).is_file() for f in source.files)
            if present:
                row.update(files=f"{present}/{len(source.files)}", where=str(folder))
            if present == len(source.files):
                try:
                    verify_all(folder, source)
                    row.update(checksums="ok", counts=_counts(name, data_dir))
                except DataError as e:
                    row.update(checksums="BAD", counts=str(e)[:200])
                break
            if present:
                row["checksums"] = "partial"
                break
        rows.append(row)
    return rows
