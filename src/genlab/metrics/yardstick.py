"""Networks genlab trains once, checks, and caches, to measure other models with (the MNIST
feature network, the spoken-digit classifier). Only a network that passed its check is used."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from torch import nn

from genlab.data.resolve import cache_dir
from genlab.errors import GenlabError
from genlab.train.config import TrainConfig


def yardstick_dir(name: str) -> Path:
    return cache_dir() / "models" / name


def cached_yardstick(
    name: str,
    model: str,
    data: str,
    options: object,
    cfg: TrainConfig,
    score: Callable[[nn.Module, object], float],
    minimum: float,
    data_dir: str | Path | None = None,
) -> nn.Module:
    """The cached network `name` (eval mode). If the cache has none: train `model` on `data` into
    `name`.partial (resumable), require score(model, options) >= minimum (e.g. test accuracy),
    and only then rename it into place."""
    from genlab.runs import load_run
    from genlab.workflow import train

    run_dir = yardstick_dir(name)
    if not (run_dir / "checkpoint.pt").is_file():
        print(f"training genlab's {model} yardstick once into {run_dir} ...", file=sys.stderr)
        staging = run_dir.with_name(run_dir.name + ".partial")
        train(model, data, options, cfg, staging, None if data_dir is None else str(data_dir))
        _, saved_options, net, _ = load_run(staging)
        value = score(net, saved_options)
        if value < minimum:
            raise GenlabError(
                f"the {model} in {staging} scored {value:.4f}, below {minimum}; it would not be a "
                f"trustworthy yardstick (delete {staging} to train it again)"
            )
        staging.rename(run_dir)
    model_net = load_run(run_dir)[2]
    return model_net.eval()
