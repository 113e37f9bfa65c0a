"""Environment frames per second *including learning*, for each backend and network.

    python benchmarks/impala_throughput.py [--seconds 20] [--skip-atari] [--precisions fp32]

Each row builds the agent, its trajectory source and the training loop's own gradient step
(`genlab.train.loop.gradient_step`, clip 40), warms up for 5 learner steps (actor start-up is not
counted), then counts the frames the learner consumed in `--seconds`. Rows: IMPALA inline (one
process), IMPALA local (1 actor process + the learner: one core each on a 2-core machine), A2C,
on MinAtar Breakout (batch 32 x unroll 20); then the Atari nets (Nature CNN, IMPALA ResNet) on
atari:Breakout inline (batch 8 x unroll 20). Each row once per `--precisions` (the learner's
forward in float32, or bf16 with channels-last weights as `genlab train` runs it; the actors
always play in float32). One JSON line.
Bar (issue 4): >= 10,000 frames/s on MinAtar Breakout with learning (local backend).
"""

from __future__ import annotations

import argparse
import json
import os
import time

import torch

from genlab.agents.impala.agent import ImpalaAgent
from genlab.agents.impala.config import A2CConfig, ImpalaConfig
from genlab.agents.impala.sources import make_source
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
            "policy_lag": round(float(trajectory.stats["policy_lag"]), 2)}  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--seconds", type=float, default=20.0, help="timed seconds per row")
    p.add_argument("--skip-atari", action="store_true")
    p.add_argument("--precisions", default="fp32", help="comma-separated: fp32, bf16")
    args = p.parse_args()
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
