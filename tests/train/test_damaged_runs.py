"""Property: whatever is done to one file of a run (truncated, overwritten with random bytes,
some bytes flipped, emptied), every verb either works or fails with one clean line."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from genlab.cli import main

TINY = ["--latent-dim", "2", "--channels", "4", "--hidden", "16", "--batch-size", "8", "--quiet"]
FILES = ("config.json", "checkpoint.pt", "metrics.jsonl", "eval.json")
VERBS = {
    "eval": ["eval", "RUN", "--k", "1", "--n", "4", "--samples", "0", "--json"],
    "sample": ["sample", "RUN", "--n", "2", "--out", "OUT/s.png"],
    "latent": ["latent", "RUN"],
    "runs": ["runs", "RUN"],
    "train": ["train", "vae", "--steps", "3", "--out", "RUN", *TINY],
}


@pytest.fixture(scope="module")
def pristine(data_root, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("pristine") / "run"
    assert main(["train", "vae", "--steps", "2", "--out", str(run), *TINY]) == 0
    assert main(["eval", str(run), "--k", "1", "--n", "4", "--samples", "0"]) == 0
    return run


def damage(data: bytes, how: str, where: float, noise: bytes) -> bytes:
    cut = int(len(data) * where)
    if how == "truncate":
        return data[:cut]
    if how == "replace":
        return noise
    if how == "flip":
        spot = min(cut, len(data) - 1)
        return data[:spot] + bytes([data[spot] ^ 0xFF]) + data[spot + 1 :] if data else noise
    return b""  # "empty"


@pytest.mark.parametrize("verb", list(VERBS))
@settings(max_examples=12, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(
    name=st.sampled_from(FILES),
    how=st.sampled_from(["truncate", "replace", "flip", "empty"]),
    where=st.floats(0, 1),
    noise=st.binary(max_size=200),
)
def test_every_verb_works_or_fails_cleanly_on_a_damaged_file(
    verb, name, how, where, noise, pristine, tmp_path, capsys
):
    work = tmp_path / f"case-{name}-{how}"
    shutil.rmtree(work, ignore_errors=True)
    run = work / "run"
    shutil.copytree(pristine, run)
    path = run / name
    path.write_bytes(damage(path.read_bytes(), how, where, noise))
    argv = [a.replace("RUN", str(run)).replace("OUT", str(work)) for a in VERBS[verb]]
    capsys.readouterr()
    try:
        code = main(argv)
    except SystemExit as e:
        code = e.code
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip() and not ln.startswith("warning:")]
    if code != 0:
        assert "Traceback" not in err and 1 <= len(lines) <= 3, err
