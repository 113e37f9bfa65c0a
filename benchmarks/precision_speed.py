"""How much faster is a training step with `--precision bf16` than in float32?

    python benchmarks/precision_speed.py [--models glow,gated_pixelcnn,wavenet] [--steps 5]
        [--threads N] [--precisions fp32,bf16] [--batch-size N] [--set key=value ...]

For each model, at its default options and training batch size (or those given), times `--steps`
gradient steps (after 2 warm-up steps) on random inputs of the right shapes, in float32 and in
bfloat16 (laid out as `genlab train` lays them out), two rounds each, keeping each precision's
faster round. One JSON line: seconds per step per model and precision, the speed-up where both
were timed, and images (or crops) per second. The inputs are random, so the losses mean
nothing; only the time is measured. With one model, `--set` changes its options, so a run's
size can be chosen by what a step costs (a wider network, a bigger kernel, a bigger batch).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time

import torch

from common import parse_set
from genlab.agents.impala.acting import empty_trajectory
from genlab.agents.trajectory import Trajectory
from genlab.tasks.registry import get_model
from genlab.train.config import TrainConfig
from genlab.train.loop import laid_out_for


def random_trajectory(agent, options: object, envs: int) -> Trajectory:
    """`envs` unrolls of random observations and actions for an agent's learner, every episode
    ending at the last step (so SPIRAL's critic has finished canvases to judge)."""
    g = torch.Generator().manual_seed(0)
    keep = getattr(options, "keep_final_obs", False)
    batch = empty_trajectory(agent.net, options.unroll, envs, final_obs=keep)
    high = 256 if batch.obs.dtype == torch.uint8 else 2
    batch.obs.copy_(torch.randint(high, batch.obs.shape, generator=g))
    for i, n in enumerate(agent.net.spec.action_sizes):
        batch.action[..., i] = torch.randint(n, batch.action.shape[:2], generator=g)
    batch.first[0] = True
    batch.terminated[-1] = True
    if batch.final_obs is not None:
        batch.final_obs.copy_(torch.randint(high, batch.final_obs.shape, generator=g))
    batch.reward.copy_(torch.rand(batch.reward.shape, generator=g))
    return batch


def random_batch(model: str, options: object, batch_size: int, net=None):
    side = getattr(options, "image_size", 28)  # `--set image_size=64` for Pong-sized frames
    if model in ("vae", "ae", "pixelvae", "dcgan", "wgan", "wgan_gp"):
        channels = getattr(options, "image_channels", 1)
        return {"x": torch.randint(2, (batch_size, channels, side, side)).float(),
                "y": torch.randint(10, (batch_size,))}  # fmt: skip
    if model in ("glow", "realnvp"):
        return {"x": torch.randint(256, (batch_size, 1, 28, 28)) / 256.0}
    if model in ("pixelcnn", "gated_pixelcnn"):
        return {"x": torch.randint(2, (batch_size, 1, 28, 28)).float()}
    if model in ("cpc", "rotnet"):
        return {"x": torch.rand(batch_size, 1, side, side)}
    if model in ("wavenet", "cpc_audio"):
        x = torch.randint(256, (batch_size, options.crop))
        return {"x": x, "mask": torch.ones_like(x, dtype=torch.bool),
                "speaker": torch.zeros(batch_size, dtype=torch.long),
                "digit": torch.zeros(batch_size, dtype=torch.long)}  # fmt: skip
    if model in ("impala", "a2c", "spiral"):
        return random_trajectory(net, options, batch_size)
    raise SystemExit(f"no random batch for '{model}'")


def seconds_per_step(
    model: str,
    precision: str,
    steps: int,
    overrides: dict,
    batch_size: int,
    compile: bool = False,
    channels_last: bool | None = None,
    prepare=None,
) -> float:
    """Seconds per gradient step of `model` with its options changed by `overrides` (after two
    warm-up steps, which include compiling with `compile`), its weights laid out as `genlab
    train` lays them out, or channels-last or not as `channels_last` says; `prepare(net)`, if
    given, changes the built network first (another way of running it)."""
    entry = get_model(model)
    options = entry.options(**overrides)
    cfg = TrainConfig(**{**entry.train_defaults, "precision": precision, "batch_size": batch_size})
    torch.manual_seed(0)
    net = laid_out_for(entry.build(options), precision)
    if prepare is not None:
        prepare(net)
    if channels_last is not None:
        layout = torch.channels_last if channels_last else torch.contiguous_format
        net = net.to(memory_format=layout)
    state = entry.make_state(net, cfg)
    step = entry.make_step(dataclasses.replace(cfg, compile=compile))
    batch = random_batch(model, options, cfg.batch_size, net)
    for _ in range(2):
        step(state, batch)
    start = time.perf_counter()
    for _ in range(steps):
        step(state, batch)
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="glow,gated_pixelcnn,wavenet")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--precisions", default="fp32,bf16", help="comma-separated")
    parser.add_argument("--batch-size", type=int, default=None, help="default: the model's")
    parser.add_argument("--set", action="append", default=[], help="model option key=value")
    args = parser.parse_args()
    models, precisions = args.models.split(","), args.precisions.split(",")
    if args.set and len(models) != 1:
        raise SystemExit("--set changes one model's options: give a single --models")
    if args.threads:
        torch.set_num_threads(args.threads)
    result: dict[str, object] = {}
    for model in models:
        entry = get_model(model)
        overrides = parse_set(args.set, entry.options)
        batch = args.batch_size or TrainConfig(**entry.train_defaults).batch_size
        best = {p: min(seconds_per_step(model, p, args.steps, overrides, batch)
                       for _ in range(2)) for p in precisions}  # fmt: skip
        row: dict[str, object] = {**overrides, "batch_size": batch}
        row.update({f"{p}_step_s": round(s, 4) for p, s in best.items()})
        if {"fp32", "bf16"} <= best.keys():
            row["speedup"] = round(best["fp32"] / best["bf16"], 2)
        row["examples_per_s"] = {p: round(batch / s, 1) for p, s in best.items()}
        result[model] = row
    result["threads"] = torch.get_num_threads()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
