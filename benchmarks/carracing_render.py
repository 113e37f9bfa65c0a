"""CarRacing-v3 steps per second on this machine, with gymnasium's road drawing and with genlab's
(genlab/agents/world_models/road.py: the same pixels), and the share of a step each spends on
drawing the road.

    python benchmarks/carracing_render.py [--episodes 3] [--steps 300]

One process, brownian actions (the collection policy), `--episodes` tracks of `--steps` steps
each, the same tracks and actions both ways; the observations are compared as they come and
must be identical. Every World Models stage that plays the real game (collect, the CMA-ES
search, evaluation) steps this environment once per frame. One JSON line.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from genlab.agents.world_models.road import draw_road_fast
from genlab.agents.world_models.rollouts import ENV_ID, brownian_actions


def main() -> None:
    import gymnasium as gym

    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--episodes", type=int, default=3)
    p.add_argument("--steps", type=int, default=300)
    args = p.parse_args()
    seconds = {"gymnasium": 0.0, "genlab": 0.0}
    road = {"gymnasium": 0.0, "genlab": 0.0}
    for seed in range(args.episodes):
        envs = {"gymnasium": gym.make(ENV_ID), "genlab": gym.make(ENV_ID)}
        draw_road_fast(envs["genlab"])
        for name, env in envs.items():  # time the road drawing inside each step
            base, draw = env.unwrapped, env.unwrapped._render_road

            def timed(*a, draw=draw, name=name):
                t = time.perf_counter()
                draw(*a)
                road[name] += time.perf_counter() - t

            env.reset(seed=seed)
            base._render_road = timed
        for action in brownian_actions(np.random.default_rng(seed), args.steps):
            obs = {}
            for name, env in envs.items():
                t = time.perf_counter()
                obs[name] = env.step(action)[0]
                seconds[name] += time.perf_counter() - t
            if not np.array_equal(obs["gymnasium"], obs["genlab"]):
                raise SystemExit(f"track {seed}: the two drawings differ; genlab's road is wrong")
    steps = args.episodes * args.steps
    report = {"benchmark": "carracing_render", "steps": steps}
    for name in seconds:
        report[f"{name}_steps_per_s"] = round(steps / seconds[name], 1)
        report[f"{name}_road_share"] = round(road[name] / seconds[name], 2)
    report["speedup"] = round(seconds["gymnasium"] / seconds["genlab"], 2)
    report["date"] = time.strftime("%Y-%m-%d")
    print(json.dumps(report))


if __name__ == "__main__":
    main()
