"""Tiny runs made once per session under one runs root (each on first use)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from genlab.cli import main
from studio_helpers import TINY, WORLD_MODEL


@pytest.fixture(scope="session")
def runs_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("studio-runs")


@pytest.fixture(scope="session")
def tiny_run(runs_root, data_root):
    """tiny_run("vae") -> the run's name under runs_root, trained on first use."""

    def make(name: str) -> str:
        if name == "worldmodel":
            return world_model()
        out = runs_root / name
        if not (out / "checkpoint.pt").is_file():
            shutil.rmtree(out, ignore_errors=True)
            assert main(["train", *TINY[name], "--quiet", "--out", str(out)]) == 0
        return name

    def world_model() -> str:
        """World Models' stages on 2 CarRacing episodes of 8 steps: V, then M ("wm/mdnrnn")."""
        root = runs_root / "wm"
        if not (root / "mdnrnn" / "checkpoint.pt").is_file():
            shutil.rmtree(root, ignore_errors=True)
            for stage in WORLD_MODEL:
                assert main(["worldmodels", stage[0], str(root), *stage[1:]]) == 0
        return "wm/mdnrnn"

    return make
