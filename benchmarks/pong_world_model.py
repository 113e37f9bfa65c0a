"""Does a world model's V see Pong's ball? The world-model talk: the VAE that models CarRacing "no
longer sees the ball" on Pong, and a PixelCNN decoder makes the latents carry "there is an
obstacle at X, Y". Issue 36 part B, at equal training time per model.

    python benchmarks/pong_world_model.py [--dir runs/bench-pong] [--episodes 60]
                                          [--models v,vae,pixelvae] [--minutes 20] [--threads 1]
                                          [--n 2000] [--k 10]

Collects `--episodes` random-policy Pong episodes into DIR/data/pong (`genlab worldmodels
collect --env atari:Pong`; binary 64x64 frames, every tenth episode held out), then trains, each
for `--minutes` into DIR/MODEL (an existing run is reused, not retrained: delete it to redo):
- v: genlab's World Models V as on CarRacing (squared error, i.e. a Gaussian of std 1/sqrt 2,
  z of 32), on the Pong frames;
- vae: the same VAE with a Bernoulli decoder (the frames are binary);
- pixelvae: a VAE whose decoder is a Gated PixelCNN (4 layers of 16 channels, batch 16)
  conditioned on z decoded to a 64x64 map; pixelvae_free_bits: the same with free bits (0.5
  nats per latent dimension), not in the default list.
Each is evaluated with `genlab eval RUN --n N --k K` on the first N held-out frames: how often
the reconstruction keeps the ball within 2 pixels (frames where it is in the open field), how
often it draws one where the frame has none, whether it keeps the opponent's paddle, and the
R^2 of a linear probe from z to the ball's (x, y) (5 contiguous folds). Prints one JSON line and
draws DIR/reconstructions.png (held-out frames with the ball; a row per model under the truth).
Bars (issue 36 B): the plain VAE keeps the ball in < 30% of reconstructions, the PixelCNN-decoder
model in >= 80% with probe R^2 >= 0.9 (the plain VAE's lower).

Then, for each model in `--controllers` (e.g. v,pixelvae_free_bits), the rest of the world
model on its z at equal compute: in DIR/world-MODEL (V linked in as `vae`, the episodes as
`data`), M (`genlab worldmodels train-m`, --m-minutes), then C searched by CMA-ES in the real
game (--c-minutes, population --popsize, one 1,000-step game per candidate, ranked by return
and, among equal returns, by the game's length: genlab.agents.world_models.search.fitness) and
scored over --eval-episodes unseen games of up to --eval-steps steps (a whole game: the first
to 21 points).
Each model's line goes to DIR/world-MODEL.json (kept: delete it to redo). The episodes must store
moves, (T, 1), as collected since 2026-12-06: a DIR collected before holds ALE's actions.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from common import evaluation, train_unless_done
from genlab.agents.world_models import pong
from genlab.agents.world_models.evaluation import baseline_returns
from genlab.agents.world_models.games import PONG, collect
from genlab.agents.world_models.search import SearchConfig
from genlab.cli import main as genlab
from genlab.data.images import image_splits
from genlab.tasks.registry import get_model
from genlab.tasks.runs import load_run
from genlab.tasks.world_models import evaluate_controller_run, search_controller
from genlab.train.state import read_checkpoint
from genlab.viz.images import save_grid

MODELS = {
    "v": ("vae", {"image_size": 64, "image_channels": 1, "likelihood": "gaussian",
                  "gaussian_std": 0.7071, "latent_dim": 32}, {"batch_size": 32}),
    "vae": ("vae", {"image_size": 64, "image_channels": 1, "latent_dim": 32}, {}),
    # a 64x64 PixelCNN decoder is costly on a CPU (default width and batch 64: 8.9 s a step on
    # 2 cores without AMX), so half the width and a quarter of the batch
    "pixelvae": ("pixelvae", {"image_size": 64, "latent_dim": 32, "decoder_channels": 16},
                 {"batch_size": 16}),
    # the same with free bits (0.5 nats per latent dimension): the remedy for a decoder that
    # models the frames without z
    "pixelvae_free_bits": ("pixelvae", {"image_size": 64, "latent_dim": 32,
                                        "decoder_channels": 16, "free_bits": 0.5},
                           {"batch_size": 16}),
}  # fmt: skip
KEPT = ("objects", "nll_nats", "kl_nats", "active_units", "step", "train_seconds")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--dir", default="runs/bench-pong")
    p.add_argument("--episodes", type=int, default=60)
    p.add_argument("--models", default="v,vae,pixelvae")
    p.add_argument("--minutes", type=float, default=20.0, help="training time per model")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--n", type=int, default=2000, help="held-out frames evaluated")
    p.add_argument("--k", type=int, default=10, help="importance samples for the NLL")
    p.add_argument("--controllers", default="", help="models to build M and C on (see above)")
    p.add_argument("--m-minutes", type=float, default=10.0)
    p.add_argument("--c-minutes", type=float, default=20.0)
    p.add_argument("--popsize", type=int, default=16)
    p.add_argument("--eval-episodes", type=int, default=20)
    p.add_argument("--eval-steps", type=int, default=5000)
    p.add_argument("--baselines", action="store_true",
                   help="also score a paddle that never moves and random moves on those games")  # fmt: skip
    a = p.parse_args()
    root, data = Path(a.dir), Path(a.dir) / "data"
    t0 = time.monotonic()
    collected = collect(data / "pong", a.episodes, workers=2, env="atari:Pong", progress=False)
    out = {"collect": collected, "models": {}}
    models = [m for m in a.models.split(",") if m]
    for name in models:
        model, options, train = MODELS[name]
        entry = get_model(model)
        train_unless_done(model, "pong", entry.options(**options), root / name, data_dir=str(data),
                          minutes=a.minutes, threads=a.threads, **train)  # fmt: skip
        result = evaluation(root / name, data_dir=str(data), n=a.n, k=a.k, threads=a.threads)
        out["models"][name] = {k: result[k] for k in KEPT if k in result}
    if models:
        draw(root, data, models)
    for name in filter(None, a.controllers.split(",")):
        out.setdefault("controllers", {})[name] = world_model(root, name, a)
    if a.baselines:
        out["baselines"] = baselines(a.eval_episodes, a.eval_steps)
    out.update(minutes_per_model=a.minutes, threads=a.threads,
               wall_minutes=round((time.monotonic() - t0) / 60, 1))  # fmt: skip
    print(json.dumps(out))


def world_model(root: Path, name: str, a) -> dict:
    """M and C on the z of model run DIR/`name`, as the module's docstring says; its result."""
    done = root / f"world-{name}.json"
    if done.is_file():
        return json.loads(done.read_text())
    if not (root / name / "checkpoint.pt").is_file():
        raise SystemExit(f"no trained {root / name}: train it first (--models {name})")
    world = root / f"world-{name}"
    world.mkdir(exist_ok=True)
    for link, target in (("vae", Path("..") / name), ("data", Path("..") / "data")):
        if not (world / link).exists():
            (world / link).symlink_to(target)
    train_m = ["worldmodels", "train-m", str(world), "--minutes", str(a.m_minutes), "--quiet",
               "--threads", str(a.threads)]  # fmt: skip
    if not (world / "mdnrnn" / "checkpoint.pt").is_file() and genlab(train_m) != 0:
        raise SystemExit(f"train-m failed on {world}")
    m_minutes = float(read_checkpoint(world / "mdnrnn")["seconds"]) / 60  # its training time
    cfg = SearchConfig(vae=str(world / "vae"), mdnrnn=str(world / "mdnrnn"), game="pong",
                       popsize=a.popsize, minutes=a.c_minutes, workers=1)  # fmt: skip
    t1 = time.monotonic()
    search = search_controller(cfg, world / "controller", str(world / "data"), progress=False)
    c_minutes = (time.monotonic() - t1) / 60
    scored = evaluate_controller_run(world / "controller", a.eval_episodes, workers=1,
                                     max_steps=a.eval_steps, progress=False, gifs=False)  # fmt: skip
    result = {"m": json.loads((world / "mdnrnn" / "metrics.jsonl").read_text().splitlines()[-1]),
              "m_minutes": round(m_minutes, 1), "search": search,
              "c_minutes": round(c_minutes, 1),
              **{k: scored[k] for k in ("mean_return", "std_return", "returns", "episodes",
                                         "env_steps")}}  # fmt: skip
    done.write_text(json.dumps(result))
    return result


def baselines(episodes: int, max_steps: int) -> dict:
    """A paddle that never moves and a uniformly random move every step, on the controllers'
    evaluation games (the same seeds)."""
    still = baseline_returns(PONG, episodes, max_steps, lambda i: lambda frame: 0.0)
    return {"still": still, "random": baseline_returns(PONG, episodes, max_steps)}


@torch.no_grad()
def draw(root: Path, data: Path, models: list[str], n: int = 12) -> Path:
    """Held-out frames with the ball in the open field, evenly spread, and each model's
    reconstruction of them (greedy: each pixel its more likely value given z and, for the PixelCNN
    decoder, the pixels before it)."""
    splits = image_splits("pong", data)
    with_ball = pong.in_open_field(splits.test_labels, 2 + 2).nonzero()[:, 0]  # as eval
    picked = with_ball[torch.linspace(0, len(with_ball) - 1, n).long()]
    x = splits.test_x[picked].float() / 255  # (n, 1, 64, 64), binary
    rows = [x]
    for name in models:
        _, _, model, _ = load_run(root / name)
        rows.append(model.mean_image(model.encode(x)[0]).float())
    return save_grid(torch.cat(rows), root / "reconstructions.png", nrow=n)


if __name__ == "__main__":
    main()
