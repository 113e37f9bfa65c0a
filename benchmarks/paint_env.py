"""SPIRAL's painting environment on this machine: strokes per second with libmypaint and with the
NumPy renderer, and how closely the two agree.

    python benchmarks/paint_env.py [--episodes 50] [--programs 50]

Random agents (uniform actions, 20 strokes per episode, 64x64 canvas, 32x32 grid) play
`--episodes` episodes per renderer: strokes/s including the environment's bookkeeping and the
canvas read-back every step. Agreement: `--programs` random programs painted by both; IoU of the
pixels with visible ink (ink > 0.1), mean and minimum. One JSON line. Issue 10's bar: IoU >= 0.8.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from genlab.envs import mypaint
from genlab.envs.paint import PaintConfig, PaintEnv, ink, random_episode, render


def strokes_per_second(renderer: str, episodes: int) -> float:
    env = PaintEnv(PaintConfig(renderer=renderer))
    env.action_space.seed(0)
    t, strokes = time.perf_counter(), 0
    for episode in range(episodes):
        env.reset(seed=episode)
        done = False
        while not done:
            done = env.step(env.action_space.sample())[2]
            strokes += 1
    return round(strokes / (time.perf_counter() - t), 1)


def agreement(programs: int) -> dict:
    env = PaintEnv(PaintConfig(renderer="mypaint"))
    ious = []
    for seed in range(programs):
        obs = random_episode(env, seed)
        a, b = ink(obs["canvas"]) > 0.1, ink(render(env.program(), 64, "numpy")) > 0.1
        ious.append((a & b).sum() / max(1, (a | b).sum()))
    return {"iou_mean": round(float(np.mean(ious)), 3), "iou_min": round(float(np.min(ious)), 3)}


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--episodes", type=int, default=50)
    p.add_argument("--programs", type=int, default=50)
    args = p.parse_args()
    report: dict = {"benchmark": "paint_env"}
    report["numpy_strokes_per_s"] = strokes_per_second("numpy", args.episodes)
    if mypaint.available():
        report["mypaint_strokes_per_s"] = strokes_per_second("mypaint", args.episodes)
        report.update(agreement(args.programs))
    else:
        report["mypaint"] = f"missing: apt-get install {mypaint.PACKAGES}"
    report["date"] = time.strftime("%Y-%m-%d")
    print(json.dumps(report))


if __name__ == "__main__":
    main()
