"""Data-parallel training with PyTorch's own engine (torch.distributed, gloo backend, CPU).

Launch with `genlab train ... --nproc N` (spawns N local processes) or with `torchrun`; both set
RANK / WORLD_SIZE / MASTER_ADDR / MASTER_PORT. Each rank computes the loss on its shard of the
global batch and gradients are averaged, so N processes follow the same trajectory as one
process with the same global batch (up to float summation order).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable

import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def env_world_size() -> int:
    """The number of processes a launcher (torchrun, --nproc) announced in the environment."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def init_from_env() -> None:
    """Join the process group described by the environment, if there is one with > 1 process."""
    if env_world_size() > 1 and not is_distributed():
        dist.init_process_group("gloo")


def shutdown() -> None:
    if is_distributed():
        dist.destroy_process_group()


def shard(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """This rank's contiguous slice of a global batch (every tensor's first dimension)."""
    n, r = world_size(), rank()
    if n == 1:
        return batch
    out = {}
    for k, v in batch.items():
        if v.shape[0] % n:
            raise ValueError(f"batch '{k}' of size {v.shape[0]} does not split over {n} processes")
        per = v.shape[0] // n
        out[k] = v[r * per : (r + 1) * per]
    return out


def max_over_ranks(values: list[float]) -> list[float]:
    """Each number's maximum over ranks, in one collective: a flag true on any rank is true on
    all (so all ranks stop at the same step), and every rank gets the slowest clock."""
    if not is_distributed():
        return [float(v) for v in values]
    t = torch.tensor(values, dtype=torch.float64)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return t.tolist()


def sum_over_ranks(value: torch.Tensor) -> torch.Tensor:
    """The sum of a scalar over ranks (a NaN anywhere makes it NaN everywhere)."""
    if not is_distributed():
        return value
    t = value.detach().clone().reshape(1)
    dist.all_reduce(t)
    return t[0]


def average_gradients(params: list[torch.nn.Parameter]) -> None:
    """All-reduce gradients as one flat buffer and divide by the world size (no-op alone)."""
    if not is_distributed():
        return
    grads = [p.grad for p in params if p.grad is not None]
    flat = torch.cat([g.flatten() for g in grads])
    dist.all_reduce(flat)
    flat /= world_size()
    offset = 0
    for g in grads:
        g.copy_(flat[offset : offset + g.numel()].view_as(g))
        offset += g.numel()


def broadcast_parameters(module: torch.nn.Module) -> None:
    """Make every rank start from rank 0's weights."""
    if is_distributed():
        for t in list(module.parameters()) + list(module.buffers()):
            dist.broadcast(t.data, src=0)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(local_rank: int, nproc: int, port: int, fn: Callable, args: tuple) -> None:
    os.environ.update(
        RANK=str(local_rank),
        LOCAL_RANK=str(local_rank),
        WORLD_SIZE=str(nproc),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
    )
    init_from_env()
    try:
        fn(*args)
        # Leave together: a rank that tears gloo down while the other (or the store on rank 0)
        # is already gone can abort ("terminate called without an active exception"). Only on
        # success: after a failure the other rank may never arrive.
        dist.barrier()
    finally:
        shutdown()


def launch(nproc: int, fn: Callable, *args) -> None:
    """Run `fn(*args)` in `nproc` local processes on 127.0.0.1; re-raises a worker's failure."""
    mp.start_processes(
        _worker, args=(nproc, free_port(), fn, args), nprocs=nproc, start_method="spawn"
    )
