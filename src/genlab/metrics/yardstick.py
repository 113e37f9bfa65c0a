"""Networks genlab trains once, checks, and caches, to measure other models with (the MNIST
feature network, the spoken-digit classifier). Only a network that passed its check is used.

The caller gives the training and loading (`genlab.tasks.training`), so this file knows no model.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from torch import nn

from genlab.data.resolve import cache_dir
from genlab.errors import GenlabError


def yardstick_dir(name: str) -> Path:
    return cache_dir() / "models" / name


def cached_yardstick(
    name: str,
    what: str,
    train: Callable[[Path], object],
    load: Callable[[Path], tuple[object, nn.Module]],
    score: Callable[[nn.Module, object], float],
    minimum: float,
) -> nn.Module:
    """The cached network `name` (eval mode). If the cache has none: `train(dir)` it into
    `name`.partial (resumable), `load(dir) -> (options, network)` it, require
    score(network, options) >= minimum (e.g. test accuracy), and only then rename it into place.
    `what` names the network in messages."""
    run_dir = yardstick_dir(name)
    if not (run_dir / "checkpoint.pt").is_file():
        print(f"training genlab's {what} yardstick once into {run_dir} ...", file=sys.stderr)
        staging = run_dir.with_name(run_dir.name + ".partial")
        train(staging)
        saved_options, net = load(staging)
        value = score(net, saved_options)
        if value < minimum:
            raise GenlabError(
                f"the {what} in {staging} scored {value:.4f}, below {minimum}; it would not be a "
                f"trustworthy yardstick (delete {staging} to train it again)"
            )
        staging.rename(run_dir)
    return load(run_dir)[1].eval()
