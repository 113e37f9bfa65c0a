"""SPIRAL on MNIST: conditional reconstruction (critic reward against L2 reward at equal compute),
unconditional sample quality, and generalisation from Omniglot, against simple baselines.

    python benchmarks/spiral.py [--minutes 60] [--test 200] [--samples 1000] [--out runs/bench-spiral]
                                [--parts reconstruction,unconditional,omniglot] [--threads N]
                                [--rewards critic,l2] [--shaping] [--reuse] [--set KEY=VALUE]

reconstruction: `genlab train spiral --env paint:mnist-target` (critic) and
    `--env paint:mnist-target-l2 --reward l2`, `--minutes` each; each repaints `--test` held-out
    MNIST test digits; per-pixel MSE of the 28x28 ink against the digit, beside a blank canvas,
    the mean training digit and a random-stroke agent. Bar (issue 10): MSE <= 50% of the
    mean-image baseline within 2 hours, with sampled strokes (as trained); `mse_greedy` is the
    same agent taking each head's likeliest choice. `--rewards` picks which of the two to train.
--shaping: every agent trained rewards each stroke by the rise in its canvas' score (same best
    policy, denser credit; `SpiralConfig.shaping`); run directories get a "-shaped" suffix.
--set KEY=VALUE: a `SpiralConfig` option for every agent trained (e.g. torso=paint_half,
    spatial_channels=16); run directories get a "-KEY=VALUE" suffix.
--reuse: an agent already in `--out` that trained the full `--minutes` is loaded, not retrained.
unconditional: `--env paint:mnist` (critic); fid, precision, recall and class coverage of
    `--samples` finished canvases on genlab's MNIST features, beside a random-stroke agent.
omniglot: a conditional agent trained on Omniglot (critic) repaints the same MNIST digits and
    procedurally drawn smileys; its MSE beside the MNIST-trained critic agent's (the one in
    `--out` if it trained for the full `--minutes`, as after the reconstruction part; else
    trained here). The parts can run in separate processes on one `--out`.
Pictures: OUT/reconstruction.png (targets, random strokes, each agent's repaintings) and
OUT/unconditional.png (MNIST, the agent's canvases, random strokes). One JSON line.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from common import parse_set, train_for_minutes
from genlab.agents.spiral import SpiralConfig, canvas_ink, paint_episode
from genlab.data.images import image_splits
from genlab.envs.paint import random_episode
from genlab.envs.paint_tasks import PaintTask
from genlab.tasks.runs import load_run
from genlab.train.state import CHECKPOINT
from genlab.viz.images import save_labelled_rows

SHOWN = 12  # canvases per row in the pictures


class RandomPainter:
    """Uniform random strokes: the baseline agent."""

    def paint(self, env: PaintTask, seed: int) -> np.ndarray:
        return random_episode(env, seed)


def final_ink(obs_or_frame) -> torch.Tensor:
    """A task observation (C, 64, 64) or rendered canvas (64, 64, 3) -> ink (1, 28, 28)."""
    planes = torch.as_tensor(np.asarray(obs_or_frame))
    if planes.shape[-1] == 3:  # an RGB canvas
        planes = planes.float().mean(-1).round().byte()[None]
    return canvas_ink(planes[None])[0]


def repaint(agent, task: str, targets: np.ndarray, seed: int = 0, greedy: bool = False
            ) -> torch.Tensor:  # fmt: skip
    """Each target (N, 28, 28) ink uint8 painted once -> the canvases' ink (N, 1, 28, 28).
    `greedy`: the agent takes each head's likeliest choice instead of sampling."""
    out = []
    g = torch.Generator().manual_seed(seed)
    for i, target in enumerate(targets):
        env = PaintTask(task, targets=target[None])
        if isinstance(agent, RandomPainter):
            out.append(final_ink(agent.paint(env, seed + i)))
        else:
            frames, _ = paint_episode(agent, env, seed + i, g, greedy)
            out.append(final_ink(frames[-1]))
    return torch.stack(out)


def ink(digits: np.ndarray) -> torch.Tensor:
    """The first SHOWN digits (N, 28, 28) uint8 ink -> (SHOWN, 1, 28, 28) in [0, 1]."""
    return torch.from_numpy(digits[:SHOWN, None]).float() / 255


def paper(rows: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Ink images as they look on paper: black on white."""
    return {name: 1 - images for name, images in rows.items()}


def mse(canvases: torch.Tensor, targets: np.ndarray) -> float:
    return float((canvases[:, 0] - torch.from_numpy(targets).float() / 255).square().mean())


def smileys(n: int, seed: int = 0) -> np.ndarray:
    """n line drawings of smiling faces (28x28 ink), randomly placed and sized."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        img = Image.new("L", (28, 28), 0)
        d = ImageDraw.Draw(img)
        r, cx, cy = rng.uniform(8, 12), rng.uniform(12, 16), rng.uniform(12, 16)
        d.ellipse((cx - r, cy - r, cx + r, cy + r), outline=255, width=2)
        for dx in (-r / 2.5, r / 2.5):
            d.ellipse((cx + dx - 1, cy - r / 3 - 1, cx + dx + 1, cy - r / 3 + 1), fill=255)
        d.arc((cx - r / 2, cy - r / 4, cx + r / 2, cy + r / 2), 20, 160, fill=255, width=2)
        out.append(np.asarray(img))
    return np.stack(out)


def trained(env: str, minutes: float, out: Path, threads, reward: str = "critic", reuse=False,
            overrides: dict | None = None):  # fmt: skip
    """An agent trained `minutes` on `env` in `out` (+ "-shaped" with shaping, + "-KEY=VALUE"
    per other option in `overrides`) -> (agent, facts). With `reuse`, an agent already there
    that trained for the full budget is loaded instead."""
    overrides = overrides or {}
    suffix = "-shaped" if overrides.get("shaping") else ""
    suffix += "".join(f"-{k}={v}" for k, v in sorted(overrides.items()) if k != "shaping")
    out = out.with_name(out.name + suffix)
    options = SpiralConfig(**{**overrides, "env": env, "reward": reward})
    if reuse and (out / CHECKPOINT).is_file():
        _, kept, agent, config = load_run(out)
        if kept != options:
            raise SystemExit(f"{out} holds an agent trained with other options; move it away")
        if config["train_seconds"] >= 0.99 * 60 * minutes:
            return agent, {"steps": config["step"], "reused": True,
                           "train_minutes": round(config["train_seconds"] / 60, 1)}  # fmt: skip
    result = train_for_minutes("spiral", "env", options, minutes, out, threads)
    return load_run(out)[2].eval(), {"steps": result.step,
                                     "train_minutes": round(result.seconds / 60, 1)}  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--minutes", type=float, default=60.0, help="training budget per agent")
    p.add_argument("--test", type=int, default=200, help="held-out digits to repaint")
    p.add_argument("--samples", type=int, default=1000, help="unconditional canvases scored")
    p.add_argument("--parts", default="reconstruction,unconditional,omniglot")
    p.add_argument("--out", default="runs/bench-spiral")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--rewards", default="critic,l2", help="reconstruction agents to train")
    p.add_argument("--shaping", action="store_true", help="reward every stroke's rise in score")
    p.add_argument("--reuse", action="store_true", help="load agents that trained the full budget")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a SpiralConfig option for every agent trained")  # fmt: skip
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    parts, out = set(args.parts.split(",")), Path(args.out)
    mnist = image_splits("mnist")
    test = mnist.test_x[: args.test, 0].numpy()
    blank = np.zeros_like(test, dtype=np.float32)
    mean_digit = mnist.train_x.float().mean(0)[0].numpy() / 255
    overrides = parse_set(args.set, SpiralConfig)
    if {"env", "reward"} & overrides.keys():
        raise SystemExit("--set env/reward: each part chooses its own (see --parts, --rewards)")
    if args.shaping:
        overrides["shaping"] = True
    report: dict = {"benchmark": "spiral", "minutes_per_agent": args.minutes, "test": args.test,
                    "shaping": args.shaping, "options": overrides}  # fmt: skip
    random_canvases = repaint(RandomPainter(), "mnist-target", test)
    baselines = {
        "blank": float(np.mean((blank - test / 255) ** 2)),
        "mean_digit": float(np.mean((mean_digit[None] - test / 255) ** 2)),
        "random_strokes": mse(random_canvases, test),
    }
    shown = {"target": ink(test), "random strokes": random_canvases[:SHOWN]}
    report["baselines_mse"] = {k: round(v, 5) for k, v in baselines.items()}
    if "reconstruction" in parts:
        rows = {}
        for name, env, reward in (("critic", "paint:mnist-target", "critic"),
                                  ("l2", "paint:mnist-target-l2", "l2")):  # fmt: skip
            if name not in args.rewards.split(","):
                continue
            agent, info = trained(env, args.minutes, out / f"mnist-{name}", args.threads, reward,
                                  args.reuse, overrides)  # fmt: skip
            canvases = repaint(agent, env.split(":", 1)[1], test)
            greedy = repaint(agent, env.split(":", 1)[1], test, greedy=True)
            rows[name] = {**info, "mse": round(mse(canvases, test), 5),
                          "mse_greedy": round(mse(greedy, test), 5)}  # fmt: skip
            rows[name]["vs_mean_digit"] = round(rows[name]["mse"] / baselines["mean_digit"], 3)
            shown[f"{name} reward"] = canvases[:SHOWN]
        report["reconstruction"] = rows
        report["pictures"] = [str(save_labelled_rows(paper(shown), out / "reconstruction.png"))]
        report["bar_met"] = min(r["vs_mean_digit"] for r in rows.values()) <= 0.5
    if "omniglot" in parts:
        agent, info = trained("paint:omniglot-target", args.minutes, out / "omniglot", args.threads,
                              reuse=args.reuse, overrides=overrides)  # fmt: skip
        mnist_agent, mnist_info = trained("paint:mnist-target", args.minutes, out / "mnist-critic",
                                          args.threads, reuse=True, overrides=overrides)  # fmt: skip
        faces = smileys(args.test)

        def score(painter, targets):
            return round(mse(repaint(painter, "mnist-target", targets), targets), 5)

        report["generalisation"] = {
            "omniglot_agent": {**info, "mnist_mse": score(agent, test),
                               "smiley_mse": score(agent, faces)},
            "mnist_agent": {**mnist_info, "mnist_mse": score(mnist_agent, test),
                            "smiley_mse": score(mnist_agent, faces)},
            "smiley_baselines_mse": {"blank": round(float(np.mean((faces / 255) ** 2)), 5),
                                     "random_strokes": score(RandomPainter(), faces)},
        }  # fmt: skip
    if "unconditional" in parts:
        from genlab.tasks.features import feature_net, sample_quality

        agent, info = trained("paint:mnist", args.minutes, out / "unconditional", args.threads,
                              reuse=args.reuse, overrides=overrides)  # fmt: skip

        class Painter:  # what sample_quality draws from
            def __init__(self, agent):
                self.agent = agent

            def sample(self, n: int, generator=None) -> torch.Tensor:
                seed = int(torch.randint(1 << 30, (1,), generator=generator))
                env = PaintTask("mnist")
                if isinstance(self.agent, RandomPainter):
                    return torch.stack([final_ink(self.agent.paint(env, seed + i))
                                        for i in range(n)])  # fmt: skip
                g = torch.Generator().manual_seed(seed)
                return torch.stack([final_ink(paint_episode(self.agent, env, seed + i, g)[0][-1])
                                    for i in range(n)])  # fmt: skip

        net = feature_net()
        report["unconditional"] = {
            "agent": {**info, **sample_quality(Painter(agent), mnist, net, args.samples)},
            "random_strokes": sample_quality(Painter(RandomPainter()), mnist, net, args.samples),
        }
        g = torch.Generator().manual_seed(0)
        rows = {"MNIST": ink(test), "agent": Painter(agent).sample(SHOWN, g),
                "random strokes": Painter(RandomPainter()).sample(SHOWN, g)}  # fmt: skip
        report.setdefault("pictures", []).append(
            str(save_labelled_rows(paper(rows), out / "unconditional.png"))
        )
    report.update(threads=torch.get_num_threads(), date=time.strftime("%Y-%m-%d"))
    print(json.dumps(report))


if __name__ == "__main__":
    main()
