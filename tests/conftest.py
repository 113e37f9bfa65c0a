"""Test set-up: an isolated genlab cache per session, one torch thread, real data when present."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from genlab.train import netns

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
PRIVATE_TEST_TIMEOUT_S = 120


def pytest_configure(config) -> None:
    torch.set_num_threads(1)
    # Started in the background by a shell without job control (`.ci/run &`), this process
    # inherits SIGINT ignored, and so would the trainings the studio tests start and Stop
    # with SIGINT: one stopped while still starting ran on until killed. Answer it as usual.
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
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


# --- tests that start Ray run in a private network ------------------------------------------------
def pytest_pyfunc_call(pyfuncitem):
    """A test marked `private_network` runs in a fresh network namespace with only loopback
    (`genlab.train.netns`): outside one, this hook runs that single test there in a child
    pytest and reports its outcome here. Ray probes outside addresses even when told not to."""
    if pyfuncitem.get_closest_marker("private_network") is None or netns.inside():
        return None
    reason = netns.unavailable()
    if reason:
        pytest.skip(f"needs a private network namespace: {reason}")
    root = Path(pyfuncitem.config.rootpath)
    child = subprocess.run(
        netns.command([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider",
                       "--no-header", pyfuncitem.nodeid]),
        cwd=root, capture_output=True, text=True, timeout=PRIVATE_TEST_TIMEOUT_S,
    )  # fmt: skip
    out = child.stdout + child.stderr
    if child.returncode:
        pytest.fail(f"in the private network:\n{out[-6000:]}", pytrace=False)
    skipped = re.search(r"SKIPPED \[\d+\] [^:]+:\d+: (.*)", out)
    if skipped:
        pytest.skip(skipped.group(1))
    return True


@pytest.fixture
def ray_here(request):
    """`ray`, for a test that starts it. Ray may start only inside a private network: a test
    that asks for it must be marked `private_network` (the hook above then runs its body in
    one; outside, this fixture gives None and the body does not run here)."""
    if request.node.get_closest_marker("private_network") is None:
        pytest.fail("a test that starts Ray must be marked private_network")
    if not netns.inside():
        return None
    return pytest.importorskip("ray", reason="the distributed extra (ray) is not installed")
