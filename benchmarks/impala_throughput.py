"""Environment frames per second *including learning*, for each backend and network.

    python benchmarks/impala_throughput.py [--seconds 20] [--skip-atari] [--precisions fp32]
    python benchmarks/impala_throughput.py --backend ray [--seconds 20] [--skip-atari]

Each row builds the agent, its trajectory source and the training loop's own gradient step
(`genlab.train.loop.gradient_step`, clip 40), warms up for 5 learner steps (actor start-up is not
counted), then counts the frames the learner consumed in `--seconds`. Rows: IMPALA inline (one
process), IMPALA local (1 actor process + the learner: one core each on a 2-core machine), A2C,
on MinAtar Breakout (batch 32 x unroll 20); then the Atari nets (Nature CNN, IMPALA ResNet) on
atari:Breakout inline (batch 8 x unroll 20). Each row once per `--precisions` (the learner's
forward in float32, or bf16 with channels-last weights as `genlab train` runs it; the actors
always play in float32). One JSON line.
Bar (issue 4): >= 10,000 frames/s on MinAtar Breakout with learning (local backend).

`--backend ray` (issue 41; re-runs itself in a private network with only loopback, as every
Ray benchmark must) instead compares the local and Ray backends with 1 and 2 actors on MinAtar
Breakout (batch 32) and Atari Breakout (Nature CNN, batch 16), the batch split over the actors;
it adds each environment's actor-only frames/s (one actor, one thread, no learner) and
learner-only batches/s (the gradient step on a fixed batch, both cores), from which
docs/distributed.md sizes actors to one learner. Bar: Ray >= 0.7x local frames/s.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import torch

from common import in_private_network
from genlab.agents.impala.acting import Actor, empty_trajectory
from genlab.agents.impala.agent import ImpalaAgent
from genlab.agents.impala.backends import task_slots
from genlab.agents.impala.config import A2CConfig, ImpalaConfig
from genlab.agents.impala.sources import make_source
from genlab.envs.vector import EnvBatch
from genlab.train.config import TrainConfig
from genlab.train.loop import gradient_step, laid_out_for, make_state

WARMUP_STEPS = 5


def frames_per_second(
    cfg: ImpalaConfig, batch: int, seconds: float, threads: int, precision: str = "fp32"
) -> dict:
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    agent = laid_out_for(ImpalaAgent(cfg), precision)
    state = make_state(agent, TrainConfig(lr=6e-4, batch_size=batch, steps=1))
    step_fn = gradient_step(40.0, precision)
    source = make_source(agent.net, cfg, agent.channels, batch, seed=0)
    try:
        for i in range(WARMUP_STEPS):
            step_fn(state, source.batch(i))
        t0, i = time.perf_counter(), WARMUP_STEPS
        while time.perf_counter() - t0 < seconds:
            trajectory = source.batch(i)
            step_fn(state, trajectory)
            i += 1
        elapsed = time.perf_counter() - t0
    finally:
        source.close()
    frames = (i - WARMUP_STEPS) * cfg.unroll * batch
    return {"frames_per_s": round(frames / elapsed), "learner_steps": i - WARMUP_STEPS,
            "learner_batches_per_s": round((i - WARMUP_STEPS) / elapsed, 1),
            "policy_lag": round(float(trajectory.stats["policy_lag"]), 2)}  # fmt: skip


def actor_only(cfg: ImpalaConfig, envs: int, seconds: float) -> float:
    """Frames/s one actor plays (one thread, its own weights, no learner)."""
    torch.set_num_threads(1)
    agent = ImpalaAgent(cfg)
    batch = EnvBatch(cfg.tasks, task_slots(len(cfg.tasks), 0, envs), 0, agent.channels)
    actor, out = (
        Actor(agent.net, batch, cfg.unroll, 0),
        empty_trajectory(agent.net, cfg.unroll, envs),
    )
    actor.fill(out)
    t0, n = time.perf_counter(), 0
    while time.perf_counter() - t0 < seconds:
        actor.fill(out)
        n += 1
    batch.close()
    return round(n * cfg.unroll * envs / (time.perf_counter() - t0))


def learner_only(cfg: ImpalaConfig, batch: int, seconds: float, threads: int) -> float:
    """Learner steps/s on one fixed batch (no actors)."""
    torch.set_num_threads(threads)
    agent = ImpalaAgent(cfg)
    state = make_state(agent, TrainConfig(lr=6e-4, batch_size=batch, steps=1))
    step_fn = gradient_step(40.0, "fp32")
    source = make_source(agent.net, cfg, agent.channels, batch, seed=0)  # inline
    trajectory = source.batch(0)
    source.close()
    step_fn(state, trajectory)
    t0, n = time.perf_counter(), 0
    while time.perf_counter() - t0 < seconds:
        step_fn(state, trajectory)
        n += 1
    return round(n / (time.perf_counter() - t0), 1)


def backends_report(seconds: float, skip_atari: bool) -> dict:
    """Local against Ray, 1 and 2 actors; actor-only and learner-only rates (issue 41)."""
    cores = os.cpu_count() or 1
    report: dict = {"benchmark": "impala_throughput", "backend": "ray"}
    settings = {"minatar:breakout": 32} if skip_atari else {"minatar:breakout": 32,
                                                            "atari:Breakout": 16}  # fmt: skip
    for env, batch in settings.items():
        torso = "nature" if env.startswith("atari") else "auto"
        rows: dict = {}
        for actors in (1, 2):
            for backend in ("local", "ray"):
                cfg = ImpalaConfig(env=env, torso=torso, backend=backend, actors=actors,
                                   envs_per_actor=batch // actors)  # fmt: skip
                rows[f"{backend}_{actors}_actor"] = frames_per_second(cfg, batch, seconds, cores)
            rows[f"ray_over_local_{actors}_actor"] = round(
                rows[f"ray_{actors}_actor"]["frames_per_s"]
                / rows[f"local_{actors}_actor"]["frames_per_s"], 3)  # fmt: skip
        plain = ImpalaConfig(env=env, torso=torso)
        rows["actor_only_frames_per_s"] = actor_only(plain, batch, seconds)
        rows["learner_only_batches_per_s"] = learner_only(plain, batch, seconds, cores)
        rows["learner_only_frames_per_s"] = round(
            rows["learner_only_batches_per_s"] * batch * plain.unroll
        )
        report[env] = rows
    report.update(cores=cores, batch_unroll=20, date=time.strftime("%Y-%m-%d"))
    return report


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--seconds", type=float, default=20.0, help="timed seconds per row")
    p.add_argument("--skip-atari", action="store_true")
    p.add_argument("--precisions", default="fp32", help="comma-separated: fp32, bf16")
    p.add_argument(
        "--backend",
        default="local",
        choices=("local", "ray"),
        help="ray: compare the local and Ray backends (in a private network)",
    )
    args = p.parse_args()
    if args.backend == "ray":
        in_private_network()
        print(json.dumps(backends_report(args.seconds, args.skip_atari)))
        return
    precisions = args.precisions.split(",")
    cores = os.cpu_count() or 1
    env = "minatar:breakout"
    rows = {
        "impala_inline": (ImpalaConfig(env=env), cores),
        "impala_local_1_actor": (
            ImpalaConfig(env=env, backend="local", actors=1, envs_per_actor=32),
            1,
        ),
        "a2c_inline": (A2CConfig(env=env), cores),
    }
    report: dict = {"benchmark": "impala_throughput", env: {}}
    suffix = {p: "" if precisions == ["fp32"] else f"_{p}" for p in precisions}
    for name, (cfg, threads) in rows.items():
        for precision in precisions:
            report[env][name + suffix[precision]] = frames_per_second(
                cfg, 32, args.seconds, threads, precision
            )
    if not args.skip_atari:
        report["atari:Breakout"] = {
            f"impala_inline_{torso}{suffix[precision]}": frames_per_second(
                ImpalaConfig(env="atari:Breakout", torso=torso), 8, args.seconds, cores, precision
            )
            for torso in ("nature", "resnet")
            for precision in precisions
        }
    report.update(cores=cores, date=time.strftime("%Y-%m-%d"))
    print(json.dumps(report))


if __name__ == "__main__":
    main()
