"""`--backend ray`: the actors are Ray actors, on any machine of a Ray cluster.

Each actor plays its own `--envs-per-actor` environments and returns whole unrolls as NumPy
arrays; they reach the learner through Ray (in the reply itself up to Ray's inline size, which
a cluster genlab starts raises to 4 MiB, else through the object store).
Every `--broadcast-every` learner steps the learner puts its weights in the object store once;
each request passes the latest version and its reference (an actor on the learner's machine maps
the weights from shared memory; one elsewhere fetches each version once) and an actor loads them
only when the version changed. Each actor keeps two requests in flight, so it plays while the learner
learns (policy lag about 2 steps, as the local backend's). An on-policy learner (A2C) instead
waits for a whole batch played with its current weights.

An actor whose process dies is restarted by Ray (`max_restarts`); its requests in flight fail
and are sent again to the new one, and training goes on. An actor that dies before it delivered
anything is a bug or a broken set-up, not bad luck: the learner stops with its error.
"""

from __future__ import annotations

import os
import time
import warnings
from collections import deque

import numpy as np
import ray
import torch
from ray.exceptions import ActorUnavailableError, RayActorError, RayTaskError
from torch.nn.utils import vector_to_parameters

from genlab.agents.impala.acting import Actor, empty_trajectory
from genlab.agents.impala.backends import (
    ACTOR_TIMEOUT_S,
    SLOTS_PER_ACTOR,
    EpisodeStats,
    check_whole_batches,
    flat_weights,
    keeps_final_obs,
    learner_threads,
    task_slots,
)
from genlab.agents.impala.config import ImpalaConfig
from genlab.agents.impala.networks import AgentNet
from genlab.agents.trajectory import Trajectory, concatenate
from genlab.envs.registry import EnvSpec
from genlab.envs.vector import EnvBatch, Episode
from genlab.errors import GenlabError
from genlab.train import cluster

MAX_RESTARTS = 100  # per actor, over a run
RETRY_S = 0.2  # between requests to an actor that is restarting


def reconstructed() -> bool:
    """Whether this actor is a restart (Ray's own property warns about an API it uses)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return bool(ray.get_runtime_context().was_current_actor_reconstructed)


def from_arrays(arrays: dict[str, np.ndarray]) -> Trajectory:
    """A trajectory viewing an actor's result (read-only arrays: `concatenate` copies them before
    anything could write)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "The given NumPy array is not writable")
        return Trajectory(**{k: torch.from_numpy(v) for k, v in arrays.items()})


class RayActor:
    """One actor: a CPU copy of the agent network and its environments (one torch thread)."""

    def __init__(self, index: int, cfg: ImpalaConfig, spec: EnvSpec, channels: int | None,
                 seed: int):  # fmt: skip
        torch.set_num_threads(1)
        if reconstructed():
            seed += 7919 * os.getpid()  # a restart must not replay its first episodes
        self.net = AgentNet(spec, cfg.torso, cfg.lstm, cfg.spatial_channels)
        self.net.requires_grad_(False)
        E = cfg.envs_per_actor
        envs = EnvBatch(cfg.tasks, task_slots(len(cfg.tasks), index * E, E), seed, channels)
        self.actor = Actor(self.net, envs, cfg.unroll, seed)
        self.out = empty_trajectory(self.net, cfg.unroll, E, keeps_final_obs(cfg))
        self.version = -1

    def pid(self) -> int:
        return os.getpid()

    def fill(
        self, version: int, weights: np.ndarray
    ) -> tuple[dict[str, np.ndarray], list[Episode]]:
        """An unroll of every environment with the weights of learner step `version` (Ray maps
        them from the object store: loaded into the network only when newer), as
        NumPy arrays: Ray copies those straight into its buffers (torch tensors are pickled,
        which cost a third more per request)."""
        if version != self.version:
            flat = torch.tensor(weights)  # a copy: the object store's is read-only
            vector_to_parameters(flat, self.net.parameters())
            self.version = version
        finished = self.actor.fill(self.out, version)
        return {k: v.numpy() for k, v in self.out.tensors().items()}, finished


class RaySource:
    def __init__(self, net: AgentNet, cfg: ImpalaConfig, channels: int | None, batch_size: int,
                 seed: int):  # fmt: skip
        check_whole_batches(batch_size, cfg.envs_per_actor)
        self.net, self.cfg = net, cfg
        self.per_batch = batch_size // cfg.envs_per_actor  # actor results per learner batch
        self.leave = cluster.connect(cfg.address, cpus=max(os.cpu_count() or 1, cfg.actors))
        try:
            cluster.require_cpus(cfg.actors, "--actors")
            if not cfg.address:  # the actors share this machine with the learner
                learner_threads(cfg.actors)
            remote = ray.remote(num_cpus=1, max_restarts=MAX_RESTARTS, max_task_retries=0)
            self.actors = [remote(RayActor).remote(i, cfg, net.spec, channels, seed * 1000 + i)
                           for i in range(cfg.actors)]  # fmt: skip
        except BaseException:
            self.leave()
            raise
        self.stats = EpisodeStats(cfg.tasks)
        self.pending: dict = {}  # object ref -> (actor, incarnation it was sent to)
        self.ready: deque[tuple[int, Trajectory]] = deque()
        self.incarnation = [0] * cfg.actors
        self.delivered = [0] * cfg.actors  # results from each actor's current incarnation
        self.restarts = 0
        self._publish(0)
        if not cfg.ON_POLICY:
            for i in range(cfg.actors):
                for _ in range(SLOTS_PER_ACTOR):
                    self._send(i)

    def pids(self) -> list[int]:
        """Each actor's process id (waiting out an actor that is restarting)."""
        deadline = time.monotonic() + ACTOR_TIMEOUT_S
        while True:
            try:
                return ray.get([a.pid.remote() for a in self.actors])
            except ActorUnavailableError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(RETRY_S)

    def _publish(self, step: int) -> None:
        with torch.no_grad():
            self.weights = ray.put(flat_weights(self.net).numpy())
        self.version = step

    def _send(self, i: int) -> None:
        ref = self.actors[i].fill.remote(self.version, self.weights)
        self.pending[ref] = (i, self.incarnation[i])

    def _collect(self) -> None:
        done, _ = ray.wait(list(self.pending), num_returns=1, timeout=1.0)
        for ref in done:
            i, incarnation = self.pending.pop(ref)
            try:
                arrays, finished = ray.get(ref)
            except RayTaskError as e:  # the actor's own code raised: a bug, not bad luck
                raise GenlabError(f"actor {i} failed: {str(e).strip().splitlines()[-1]}") from e
            except RayActorError as e:
                self._lost(i, incarnation, e)
                continue
            self.delivered[i] += 1
            self.ready.append((i, from_arrays(arrays)))
            self.stats.add(finished)

    def _lost(self, i: int, incarnation: int, error: RayActorError) -> None:
        """A request to actor i failed because its process is gone; Ray restarts it. Count the
        death once (each request in flight reports it, as "died" or "unavailable") and send the
        request again, to the new process. An actor that dies before delivering anything stops
        training; one merely unavailable then is still restarting."""
        restarting = isinstance(error, ActorUnavailableError)
        if incarnation == self.incarnation[i]:
            if not self.delivered[i] and not restarting:
                raise GenlabError(f"actor {i} died before producing a trajectory: "
                                  f"{str(error).strip().splitlines()[0]}")  # fmt: skip
            if self.delivered[i]:
                self.incarnation[i] += 1
                self.delivered[i] = 0
                self.restarts += 1
        if restarting:
            time.sleep(RETRY_S)
        self._send(i)

    def batch(self, step: int) -> Trajectory:
        if self.cfg.ON_POLICY or step - self.version >= self.cfg.broadcast_every:
            self._publish(step)
        if self.cfg.ON_POLICY:  # one request per slot of the batch, all with these weights
            for k in range(self.per_batch):
                self._send(k % self.cfg.actors)
        deadline = time.monotonic() + ACTOR_TIMEOUT_S
        while len(self.ready) < self.per_batch:
            self._collect()
            if time.monotonic() > deadline:
                raise GenlabError(
                    f"no trajectories from the Ray actors for {ACTOR_TIMEOUT_S:.0f} s"
                )
        taken = [self.ready.popleft() for _ in range(self.per_batch)]
        parts = [t for _, t in taken]
        lag = sum(step - int(p.version) for p in parts) / len(parts)
        frames = (step + 1) * self.cfg.unroll * self.per_batch * self.cfg.envs_per_actor
        out = concatenate(parts, {**self.stats.metrics(), "frames": torch.tensor(float(frames)),
                                  "policy_lag": torch.tensor(float(lag)),
                                  "actor_restarts": torch.tensor(float(self.restarts))})  # fmt: skip
        if not self.cfg.ON_POLICY:
            for i, _ in taken:  # the actor that delivered gets the next request
                self._send(i)
        return out

    def close(self) -> None:
        """Stop every actor (no restart) and leave the cluster."""
        cluster.stop(self.actors, self.leave)
