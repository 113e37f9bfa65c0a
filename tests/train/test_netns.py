"""The private network Ray runs in for tests and benchmarks: only loopback, and it works."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from genlab.train import netns

PROBE = """
import json, os, socket
server = socket.create_server(("127.0.0.1", 0))
client = socket.create_connection(server.getsockname(), timeout=5)
peer, _ = server.accept()
client.sendall(b"ping")
print(json.dumps({"interfaces": [name for _, name in socket.if_nameindex()],
                  "echo": peer.recv(4).decode(), "mark": os.environ.get("GENLAB_PRIVATE_NETWORK"),
                  "usage_stats": os.environ.get("RAY_USAGE_STATS_ENABLED"),
                  "ray_dir": os.environ.get("RAY_TMPDIR")}))
"""


@pytest.fixture
def namespaces():
    reason = netns.unavailable()
    if reason:
        pytest.skip(reason)


def test_a_private_network_has_only_a_working_loopback(namespaces):
    out = subprocess.run(netns.command([sys.executable, "-c", PROBE]), capture_output=True,
                         text=True, timeout=60, check=True)  # fmt: skip
    seen = json.loads(out.stdout)
    ray_dir = seen.pop("ray_dir")
    assert seen == {"interfaces": ["lo"], "echo": "ping", "mark": "1", "usage_stats": "0"}
    assert not netns.inside()  # this process is not in one
    assert Path(ray_dir).is_dir() and Path(ray_dir).parent == Path(tempfile.gettempdir())


def test_each_private_network_has_a_ray_folder_of_its_own(namespaces, monkeypatch):
    """So a stale `ray_current_cluster` left by a killed run (it names a cluster that is gone)
    cannot make a later Ray start try to join it."""
    monkeypatch.delenv("RAY_TMPDIR", raising=False)
    show = [sys.executable, "-c", "import os; print(os.environ['RAY_TMPDIR'])"]
    folders = [subprocess.run(netns.command(show), capture_output=True, text=True, timeout=60,
                              check=True).stdout.strip() for _ in range(2)]  # fmt: skip
    assert folders[0] != folders[1]
    assert all(Path(f).is_dir() and not (Path(f) / "ray_current_cluster").exists()
               for f in folders)  # fmt: skip


def test_the_wrapper_passes_the_exit_code_through(namespaces):
    wrapper = [sys.executable, "-m", "genlab.train.netns"]
    assert subprocess.run([*wrapper, sys.executable, "-c", "raise SystemExit(3)"]).returncode == 3
    usage = subprocess.run([*wrapper, "--help"], capture_output=True, text=True)
    assert usage.returncode == 0 and "unshare -rn" in usage.stdout


def test_killing_the_wrapper_kills_what_ran_inside_even_when_detached(namespaces):
    """A test killed by its timeout must not leave Ray's daemons behind (they run in sessions
    of their own, as this sleep does)."""
    seconds = f"300.{os.getpid()}"  # a sleep no other process runs, to find it from outside
    inner = (
        "import subprocess, time; "
        f"subprocess.Popen(['sleep', '{seconds}'], start_new_session=True); time.sleep(300)"
    )
    wrapper = subprocess.Popen(netns.command([sys.executable, "-c", inner]))
    try:
        sleeps = _wait_for(lambda: _pids_running(["sleep", seconds]))
        assert len(sleeps) == 1, "the process inside did not start"
    finally:
        wrapper.kill()
        wrapper.wait(timeout=10)
    assert _wait_for(lambda: not _pids_running(["sleep", seconds])), "it outlived the wrapper"


def _pids_running(argv: list[str]) -> list[int]:
    """Pids of the processes whose command line is `argv`."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and (entry / "cmdline").read_bytes().split(b"\0")[:-1] == [
                a.encode() for a in argv
            ]:
                found.append(int(entry.name))
        except OSError:  # it ended while we looked
            pass
    return found


def _wait_for(condition, seconds: float = 30.0):
    """condition()'s first true value within `seconds`, else its last value."""
    deadline = time.monotonic() + seconds
    while not (value := condition()) and time.monotonic() < deadline:
        time.sleep(0.1)
    return value
