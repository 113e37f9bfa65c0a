"""Environment frames per second *including learning*, for each backend and network.

    python benchmarks/impala_throughput.py [--seconds 20] [--skip-atari]

Each row builds the agent, its trajectory source and the training loop's own gradient step
(`genlab.train.loop.gradient_step`, clip 40), warms up for 5 learner steps (actor start-up is not
counted), then counts the frames the learner consumed in `--seconds`. Rows: IMPALA inline (one
process), IMPALA local (1 actor process + the learner: one core each on a 2-core machine), A2C,
on MinAtar Breakout (batch 32 x unroll 20); then the Atari nets (Nature CNN, IMPALA ResNet) on
atari:Breakout inline (batch 8 x unroll 20). One JSON line.
Bar (issue 4): >= 10,000 frames/s on MinAtar Breakout with learning (local backend).
"""

from __future__ import annotations

import argparse
import json
import os
import time

import torch

from genlab.agents.impala.agent import ImpalaAgent
from genlab.agents.impala.backends import make_source
from genlab.agents.impala.config import A2CConfig, ImpalaConfig
from genlab.train.config import TrainConfig
from genlab.train.loop import gradient_step, make_state

WARMUP_STEPS = 5


def frames_per_second(cfg: ImpalaConfig, batch: int, seconds: float, threads: int) -> dict:
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    agent = ImpalaAgent(cfg)
    state = make_state(agent, TrainConfig(lr=6e-4, batch_size=batch, steps=1))
    step_fn = gradient_step(40.0)
    source = make_source(agent.net, cfg, agent.channels, batch, seed=0)
    try:
        for i in range(WARMUP_STEPS):
            step_fn(state, source.batch(i))
        t0, i = time.perf_counter(), WARMUP_STEPS
        while time.perf_counter() - t0 < seconds:
            metrics = step_fn(state, source.batch(i))
            i += 1
        elapsed = time.perf_counter() - t0
    finally:
        source.close()
    frames = (i - WARMUP_STEPS) * cfg.unroll * batch
    return {"frames_per_s": round(frames / elapsed), "learner_steps": i - WARMUP_STEPS,
            "policy_lag": round(float(metrics["policy_lag"]), 2)}  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--seconds", type=float, default=20.0, help="timed seconds per row")
    p.add_argument("--skip-atari", action="store_true")
    args = p.parse_args()
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
    for name, (cfg, threads) in rows.items():
        report[env][name] = frames_per_second(cfg, 32, args.seconds, threads)
    if not args.skip_atari:
        report["atari:Breakout"] = {
            f"impala_inline_{torso}": frames_per_second(
                ImpalaConfig(env="atari:Breakout", torso=torso), 8, args.seconds, cores
            )
            for torso in ("nature", "resnet")
        }
    report.update(cores=cores, date=time.strftime("%Y-%m-%d"))
    print(json.dumps(report))


if __name__ == "__main__":
    main()
