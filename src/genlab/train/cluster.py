"""Ray, the engine genlab's agents and searches scale out on (`--backend ray`, the `distributed`
extra). This module is the one place genlab starts, joins and leaves a Ray cluster.

- `connect("")` starts a local one-machine cluster (the driver's own, stopped when it leaves).
- `connect("auto")` joins the cluster `ray start` runs on this machine; `connect("HOST:PORT")`
  joins the head at that address (its GCS port, 6379 by default). Leaving it stops nothing but
  genlab's own actors.

Ray's usage statistics are always off. Ray still probes an outside address to learn this
machine's IP; tests and benchmarks therefore start it only in a private network
(`genlab.train.netns`).
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from types import ModuleType

from genlab.errors import ConfigError

INSTALL = "pip install -c constraints.txt 'genlab[distributed]'"
PROBE_TIMEOUT_S = 5.0
# Results up to this size ride in the reply instead of the object store: an IMPALA unroll of 32
# MinAtar environments (0.3 MB) then costs its actor 15.5 ms instead of 17 (13.6 of it playing).
INLINE_BYTES = 4 << 20


def ray_module() -> ModuleType:
    """`ray`, or a one-line error saying how to install it."""
    try:
        # Here, not at the top: ray is optional (the `distributed` extra) and takes 0.3 s.
        import ray
    except ImportError:
        raise ConfigError(f"the ray backend needs Ray: {INSTALL}") from None
    return ray


def check_address(address: str) -> None:
    """A HOST:PORT that accepts connections, else a one-line error (Ray itself would retry it for
    minutes)."""
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ConfigError(f"--address must be 'auto' or HOST:PORT (a Ray head's GCS port), "
                          f"not '{address}'")  # fmt: skip
    try:
        socket.create_connection((host, int(port)), timeout=PROBE_TIMEOUT_S).close()
    except OSError as e:
        raise ConfigError(f"--address {address}: no Ray head answers there ({e.strerror or e}); "
                          "start one with `ray start --head`") from None  # fmt: skip


def connect(address: str = "", cpus: int | None = None) -> Callable[[], None]:
    """Start (address "") or join a Ray cluster; returns the function that leaves it again:
    it stops a cluster this call started, disconnects from one it joined, and does nothing
    when this process was already connected (a caller's cluster is the caller's to leave).
    `cpus`: the local cluster's CPUs (default: this machine's)."""
    ray = ray_module()
    if ray.is_initialized():
        return lambda: None
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    quiet = {"logging_level": logging.WARNING, "include_dashboard": False}
    if not address:
        ray.init(num_cpus=cpus or os.cpu_count() or 1, _node_ip_address="127.0.0.1",
                 _system_config={"max_direct_call_object_size": INLINE_BYTES}, **quiet)  # fmt: skip
        return ray.shutdown
    if address != "auto":
        check_address(address)
    try:
        ray.init(address=address, **quiet)
    except ConnectionError as e:
        raise ConfigError(f"--address {address}: {str(e).splitlines()[0]}") from None
    return ray.shutdown


def require_cpus(n: int, option: str) -> None:
    """One CPU per actor: a one-line error when the cluster has fewer than `n`."""
    have = float(ray_module().cluster_resources().get("CPU", 0.0))
    if n > have:
        raise ConfigError(f"{option} {n} need {n} CPUs; the Ray cluster has {have:g}")


def stop(actors: list, leave: Callable[[], None]) -> None:
    """Kill `actors` (Ray restarts none of them), then leave the cluster (`connect`'s leave)."""
    try:
        for actor in actors:
            ray_module().kill(actor, no_restart=True)
    finally:
        leave()
