"""Test set-up: an isolated genlab cache per session, one torch thread, real data when present."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def pytest_configure(config) -> None:
    torch.set_num_threads(1)
    if not os.environ.get("GENLAB_DATA") and SHARED_DATA.is_dir():
        os.environ["GENLAB_DATA"] = str(SHARED_DATA)
    if os.environ.get("GENLAB_DATA"):  # absolute, so tests that change directory still find it
        os.environ["GENLAB_DATA"] = str(Path(os.environ["GENLAB_DATA"]).resolve())


@pytest.fixture(scope="session", autouse=True)
def isolated_cache(tmp_path_factory) -> Path:
    """Decoded datasets are cached once per test session, outside the user's cache."""
    cache = tmp_path_factory.mktemp("genlab-cache")
    os.environ["GENLAB_CACHE"] = str(cache)
    os.environ["GENLAB_OFFLINE"] = "1"  # tests never reach outside loopback
    return cache


@pytest.fixture(scope="session")
def data_root() -> Path:
    root = os.environ.get("GENLAB_DATA")
    if not root or not (Path(root) / "mnist").is_dir():
        pytest.skip("real datasets not found: set GENLAB_DATA (CI points it at ../shared/data)")
    return Path(root)
