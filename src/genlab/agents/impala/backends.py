"""How trajectories reach the learner. Each backend is the training loop's BatchSource:
`batch(step)` returns B unrolls as one `Trajectory` (environments side by side), with scalars
in its `stats` (recent episode returns per task, frames, policy lag) that the loop logs. The
learner never knows which backend fed it; the distributed one, `RaySource` (`ray_backend.py`),
is a third class with the same two methods, `batch` and `close`; `sources.make_source` picks one.

- `InlineSource`: one process; the learner's own network acts (no policy lag), deterministic
  under a seed. Used by tests and by A2C.
- `LocalSource`: actor processes, each stepping its own batch of environments, writing into
  preallocated shared-memory slots; slot numbers travel over one pipe per actor (a killed actor
  breaks only its own pipe). Weights go back through a shared double buffer with a version
  counter (a seqlock: no lock a dying process could leave held). Dead actors are restarted;
  Ctrl-C reaches only the learner, which stops the actors on `close`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections import deque
from multiprocessing.connection import wait

import torch
import torch.multiprocessing as mp
from torch.nn.utils import vector_to_parameters

from genlab.agents.impala.acting import Actor, empty_trajectory
from genlab.agents.impala.config import ImpalaConfig
from genlab.agents.impala.networks import AgentNet
from genlab.agents.trajectory import Trajectory, concatenate
from genlab.envs.vector import EnvBatch, Episode
from genlab.errors import ConfigError, GenlabError

SLOTS_PER_ACTOR = 2
ACTOR_TIMEOUT_S = 120.0


def flat_weights(net: torch.nn.Module) -> torch.Tensor:
    """The parameters as one vector, in `parameters()` order, whatever their memory layout
    (bf16 training lays convolution weights out channels-last, which `parameters_to_vector`'s
    views refuse)."""
    return torch.cat([p.detach().reshape(-1) for p in net.parameters()])


def keeps_final_obs(cfg: ImpalaConfig) -> bool:
    """Whether trajectories carry each ended episode's last observation (a learner that computes
    rewards from it sets `keep_final_obs`)."""
    return bool(getattr(cfg, "keep_final_obs", False))


class EpisodeStats:
    """Returns of the last `window` finished episodes of each task."""

    def __init__(self, tasks: list[str], window: int = 100):
        self.tasks = tasks
        self.recent = [deque(maxlen=window) for _ in tasks]
        self.episodes = 0

    def add(self, finished: list[Episode]) -> None:
        for e in finished:
            self.recent[e.task].append(e.ret)
            self.episodes += 1

    def metrics(self) -> dict[str, torch.Tensor]:
        out = {"episodes": torch.tensor(float(self.episodes))}
        means = []
        for name, rets in zip(self.tasks, self.recent, strict=True):
            if rets:
                means.append(sum(rets) / len(rets))
                if len(self.tasks) > 1:
                    out[f"return/{name}"] = torch.tensor(means[-1])
        if len(means) == len(self.tasks):  # every task has finished an episode
            out["return"] = torch.tensor(sum(means) / len(means))
        return out


def check_whole_batches(batch_size: int, envs_per_actor: int) -> None:
    """Each actor delivers whole batches of its environments: the batch must be a multiple."""
    if batch_size % envs_per_actor:
        raise ConfigError(f"--batch-size {batch_size} must be a multiple of --envs-per-actor "
                          f"{envs_per_actor} (each actor delivers whole batches of its "
                          "environments)")  # fmt: skip


def learner_threads(actors: int) -> None:
    """Each actor on this machine uses one core; the learner gets the rest (oversubscribing the
    cores costs about a third of the frames on 2 cores). The caller restores its thread count."""
    cores = os.cpu_count() or 1
    torch.set_num_threads(max(1, min(torch.get_num_threads(), cores - actors)))


def task_slots(n_tasks: int, first: int, count: int) -> list[int]:
    """Environments first..first+count-1 of the whole run play tasks round-robin."""
    return [(first + i) % n_tasks for i in range(count)]


class InlineSource:
    def __init__(self, net: AgentNet, cfg: ImpalaConfig, channels: int | None, batch_size: int,
                 seed: int):  # fmt: skip
        self.cfg, self.batch_size = cfg, batch_size
        envs = EnvBatch(cfg.tasks, task_slots(len(cfg.tasks), 0, batch_size), seed, channels)
        self.actor = Actor(net, envs, cfg.unroll, seed)
        self.stats = EpisodeStats(cfg.tasks)

    def batch(self, step: int) -> Trajectory:
        out = empty_trajectory(self.actor.net, self.cfg.unroll, self.batch_size,
                               keeps_final_obs(self.cfg))  # fmt: skip
        self.stats.add(self.actor.fill(out, version=step))
        frames = (step + 1) * self.cfg.unroll * self.batch_size
        out.stats = {**self.stats.metrics(), "frames": torch.tensor(float(frames)),
                     "policy_lag": torch.tensor(0.0)}  # fmt: skip
        return out

    def close(self) -> None:
        self.actor.envs.close()


def _actor_main(index, cfg, spec, channels, seed, conn, slots, params, version) -> None:
    """An actor process: fill the slots the learner sends, with the latest published weights."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the learner's to handle
    torch.set_num_threads(1)
    net = AgentNet(spec, cfg.torso, cfg.lstm, cfg.spatial_channels)
    net.requires_grad_(False)
    E = cfg.envs_per_actor
    envs = EnvBatch(cfg.tasks, task_slots(len(cfg.tasks), index * E, E), seed, channels)
    actor = Actor(net, envs, cfg.unroll, seed)
    used = -1
    try:
        while True:
            slot = conn.recv()
            if slot is None:
                break
            for _ in range(10):  # seqlock read: retry if the learner published meanwhile
                v = int(version[0])
                if v != used:
                    vector_to_parameters(params[v % 2], net.parameters())
                if int(version[0]) == v:
                    break
            used = v
            finished = actor.fill(slots[slot], version=v)
            conn.send((slot, finished))
    except (EOFError, BrokenPipeError, KeyboardInterrupt):
        pass  # the learner is gone or stopping
    finally:
        envs.close()


class LocalSource:
    def __init__(self, net: AgentNet, cfg: ImpalaConfig, channels: int | None, batch_size: int,
                 seed: int):  # fmt: skip
        E = cfg.envs_per_actor
        check_whole_batches(batch_size, E)
        self.net, self.cfg, self.channels, self.seed = net, cfg, channels, seed
        learner_threads(cfg.actors)
        self.per_batch = batch_size // E  # slots per learner batch
        self.ctx = mp.get_context("spawn")
        n_slots = cfg.actors * SLOTS_PER_ACTOR
        self.slots = [empty_trajectory(net, cfg.unroll, E, keeps_final_obs(cfg)).share_memory_()
                      for _ in range(n_slots)]  # fmt: skip
        n_params = sum(p.numel() for p in net.parameters())
        self.params = torch.zeros(2, n_params).share_memory_()
        self.version = torch.zeros(1, dtype=torch.long).share_memory_()
        self.stats = EpisodeStats(cfg.tasks)
        self.ready: deque[tuple[int, int]] = deque()  # (actor, slot) filled, oldest first
        self.outstanding: list[set[int]] = [set() for _ in range(cfg.actors)]
        self.procs: list = [None] * cfg.actors
        self.conns: list = [None] * cfg.actors
        self.delivered = [0] * cfg.actors  # trajectories from each actor's current process
        self.restarts = 0
        self._publish(0)
        for i in range(cfg.actors):
            self._start(i)
            for s in range(i * SLOTS_PER_ACTOR, (i + 1) * SLOTS_PER_ACTOR):
                self._send(i, s)

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    def _start(self, i: int) -> None:
        learner_end, actor_end = self.ctx.Pipe()
        seed = self.seed * 1000 + i + 7919 * self.restarts
        p = self.ctx.Process(
            target=_actor_main,
            args=(
                i,
                self.cfg,
                self.net.spec,
                self.channels,
                seed,
                actor_end,
                self.slots,
                self.params,
                self.version,
            ),  # fmt: skip
            daemon=True,
            name=f"genlab-actor-{i}",
        )
        p.start()
        actor_end.close()
        self.procs[i], self.conns[i] = p, learner_end

    def _send(self, i: int, slot: int) -> None:
        self.outstanding[i].add(slot)
        with contextlib.suppress(BrokenPipeError, OSError):  # a dead actor is restarted later
            self.conns[i].send(slot)

    def _restart(self, i: int) -> None:
        """Replace a dead actor; the slots it was filling are handed to its successor. An actor
        that fails (exits with an error) before delivering anything is a bug or a broken
        set-up, not bad luck: stop rather than restart it forever."""
        self.conns[i].close()
        self.procs[i].join(timeout=1)
        if not self.delivered[i] and (self.procs[i].exitcode or 0) > 0:
            raise GenlabError(
                f"actor {i} exited (code {self.procs[i].exitcode}) before producing a "
                "trajectory; its error is printed above"
            )
        self.delivered[i] = 0
        self.restarts += 1
        self._start(i)
        for slot in sorted(self.outstanding[i]):
            self.conns[i].send(slot)

    def _publish(self, step: int) -> None:
        """Weights for learner step `step` into the buffer the actors are not reading."""
        with torch.no_grad():
            self.params[step % 2].copy_(flat_weights(self.net))
        self.version[0] = step

    def _collect(self) -> None:
        by_conn = {c: i for i, c in enumerate(self.conns)}
        for conn in wait(list(by_conn), timeout=1.0):
            i = by_conn[conn]
            try:
                slot, finished = conn.recv()
            except (EOFError, OSError):
                self._restart(i)
                continue
            self.outstanding[i].discard(slot)
            self.delivered[i] += 1
            self.ready.append((i, slot))
            self.stats.add(finished)
        for i, p in enumerate(self.procs):
            if p.exitcode is not None and self.outstanding[i]:
                self._restart(i)

    def batch(self, step: int) -> Trajectory:
        self._publish(step)
        deadline = time.monotonic() + ACTOR_TIMEOUT_S
        while len(self.ready) < self.per_batch:
            self._collect()
            if time.monotonic() > deadline:
                raise GenlabError(f"no trajectories from the actors for {ACTOR_TIMEOUT_S:.0f} s")
        taken = [self.ready.popleft() for _ in range(self.per_batch)]
        parts = [self.slots[s] for _, s in taken]
        lag = sum(step - int(p.version) for p in parts) / len(parts)
        frames = (step + 1) * self.cfg.unroll * self.per_batch * self.cfg.envs_per_actor
        out = concatenate(parts, {**self.stats.metrics(), "frames": torch.tensor(float(frames)),
                                  "policy_lag": torch.tensor(float(lag)),
                                  "actor_restarts": torch.tensor(float(self.restarts))})  # fmt: skip
        for i, s in taken:  # the copies above are made: the actors may refill these slots
            self._send(i, s)
        return out

    def close(self) -> None:
        """Stop every actor within a few seconds, whatever state it is in."""
        for c in self.conns:
            with contextlib.suppress(BrokenPipeError, OSError):
                c.send(None)
        deadline = time.monotonic() + 3.0
        for p in self.procs:
            p.join(timeout=max(0.0, deadline - time.monotonic()))
        for p in self.procs:
            if p.is_alive():
                p.kill()
                p.join(timeout=1)
        for c in self.conns:
            c.close()
