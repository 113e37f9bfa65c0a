"""A private network with only loopback in it, for running Ray where nothing may leave the machine.

Ray probes addresses beyond loopback (to find the machine's own IP) even when told to use
127.0.0.1. genlab's tests and benchmarks must never send such traffic, so whatever starts Ray
runs inside a new user and network namespace (`unshare -rn`, no root needed) where only `lo` is
up: a probe fails at once with "network unreachable" instead of leaving the machine.

Each namespace also gets its own Ray folder (RAY_TMPDIR, a fresh folder under the system's temp
folder, left behind like Ray's own session folders). Ray joins whatever cluster the address file
in its folder names: with the shared /tmp/ray, one run killed before Ray could tidy up (a test
timed out on a loaded machine) left a stale file, and every later Ray start on the machine
failed with "When connecting to an existing cluster, num_cpus and num_gpus must not be provided".

And each gets a process namespace of its own (`--pid --fork --kill-child`, with its own /proc):
when the wrapper is killed (a test's timeout kills it), the kernel kills every process inside,
Ray's daemons included. Without it, a timed-out test left Ray's dashboard and runtime-env
agents running, on a CPU the next tests needed.

    python -m genlab.train.netns python benchmarks/impala_throughput.py --backend ray

`command(argv)` is that wrapper as a list; `inside()` tells a process it is already in one
(and so may start Ray); `unavailable()` says why this machine cannot make one (or None).
"""

from __future__ import annotations

import fcntl
import functools
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile

MARK = "GENLAB_PRIVATE_NETWORK"  # set to 1 inside
SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1


def inside() -> bool:
    return os.environ.get(MARK) == "1"


def command(argv: list[str]) -> list[str]:
    """`argv` run in a fresh user + network + process namespace with loopback up, Ray's usage
    statistics off and a Ray folder of its own; killing the returned command kills all inside."""
    return ["unshare", "--user", "--map-root-user", "--net", "--pid", "--fork", "--kill-child",
            "--mount-proc", sys.executable, "-m", "genlab.train.netns", "--inside", *argv]  # fmt: skip


@functools.cache
def unavailable() -> str | None:
    """Why this machine cannot make a private network (None when it can)."""
    if shutil.which("unshare") is None:
        return "no 'unshare' command (util-linux)"
    probe = subprocess.run(command([sys.executable, "-c", "pass"]), capture_output=True,
                           text=True, timeout=60)  # fmt: skip
    if probe.returncode:
        tail = (probe.stderr.strip().splitlines() or ["no message"])[-1]
        return f"this machine forbids user/network namespaces ({tail})"
    return None


def loopback_up() -> None:
    """Bring `lo` up (a new network namespace starts with it down), by ioctl: no `ip` needed."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        request = struct.pack("16sh22x", b"lo", 0)  # struct ifreq: name, flags, padding
        flags = struct.unpack("16sh22x", fcntl.ioctl(s, SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sh22x", b"lo", flags | IFF_UP))


def main(argv: list[str]) -> int:
    if not argv or argv == ["--help"] or argv == ["-h"]:
        print(__doc__.strip())
        return 0
    if argv[0] != "--inside":  # the outer call: re-run ourselves in the namespace
        reason = unavailable()
        if reason:
            print(f"error: cannot make a private network: {reason}", file=sys.stderr)
            return 1
        return subprocess.call(command(argv))
    loopback_up()
    os.environ[MARK] = "1"
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    os.environ.setdefault("RAY_TMPDIR", tempfile.mkdtemp(prefix="genlab-ray-"))
    os.execvp(argv[1], argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
