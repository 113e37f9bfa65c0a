"""`genlab worldmodels train-c --backend ray`: each generation's candidates played by Ray actors
on any machine of a Ray cluster, instead of a local worker pool.

Each actor holds V and M (sent once, through the object store) and plays one job at a time with
one torch thread, exactly as a local worker does, so a job's return depends only on the
candidate and its track seed: the search is the same on either backend for the same seed.
"""

from __future__ import annotations

import ray
from ray.util import ActorPool
from torch import nn

from genlab.agents.world_models.mdnrnn import MDNRNN
from genlab.agents.world_models.search import init_worker, play_job
from genlab.train import cluster


class PlayerActor:
    def __init__(self, models: tuple) -> None:
        init_worker(*models)

    def play(self, job: tuple):
        return play_job(job)


class RayPlayers:
    """`workers` Ray actors playing jobs (the interface of `search.Players`)."""

    def __init__(
        self, vae: nn.Module, m: MDNRNN | None, initial_z, workers: int, address: str,
        game: str = "carracing",
    ):  # fmt: skip
        self.leave = cluster.connect(address, cpus=workers)
        try:
            cluster.require_cpus(workers, "--workers")
            models = ray.put((vae, m, initial_z, game))
            remote = ray.remote(num_cpus=1)(PlayerActor)
            self.actors = [remote.remote(models) for _ in range(workers)]
            self.pool = ActorPool(self.actors)
        except BaseException:
            self.leave()
            raise

    def map(self, jobs: list[tuple]):
        """Each job's result (`search.play_job`), in order."""
        return self.pool.map(lambda actor, job: actor.play.remote(job), jobs)

    def close(self) -> None:
        cluster.stop(self.actors, self.leave)
