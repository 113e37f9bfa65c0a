"""Learning with augmentation: a wide ResNet trained on a small labelled subset of MNIST with no
augmentation, the standard shift-and-rotate, one random PBA policy, or a PBA schedule
(`genlab.meta.pba`; the population search that learns one is not built yet). Its registry
entry, data and evaluation.

The split: a fixed seeded permutation of MNIST's training images gives `--train-images` to
train on and the next `--val-images` to validate on (what a search scores); the test split is
MNIST's own, reported once at the end.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from genlab.data import augment
from genlab.data.batches import InMemoryBatches
from genlab.data.images import image_splits
from genlab.errors import ConfigError
from genlab.meta import pba
from genlab.models.wide_resnet import WideResNet, WRNConfig
from genlab.tasks.entry import ModelEntry

SUBSET_SEED = 20190516  # the fixed permutation behind every train/validation subset


@dataclass(frozen=True)
class Splits:
    train_x: torch.Tensor  # (N, 1, 28, 28) uint8
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor


def load_data(data: str, data_dir, options: WRNConfig) -> Splits:
    full = image_splits(data, data_dir)
    n_all = len(full.train_x)
    n_train = options.train_images or n_all - options.val_images
    if n_train + options.val_images > n_all or n_train < 1:
        raise ConfigError(f"--train-images {options.train_images} and --val-images "
                          f"{options.val_images} need more than the {n_all} training images")  # fmt: skip
    perm = torch.randperm(n_all, generator=torch.Generator().manual_seed(SUBSET_SEED))
    train, val = perm[:n_train], perm[n_train : n_train + options.val_images]
    return Splits(full.train_x[train], full.train_y[train], full.train_x[val],
                  full.train_y[val], full.test_x, full.test_y)  # fmt: skip


def read_schedule(path: str | Path) -> list[tuple[int, np.ndarray]]:
    """A schedule file: {"schedule": [{"step": S, "policy": {op: [[p, m], [p, m]]}}, ...]}."""
    try:
        rows = json.loads(Path(path).read_text())["schedule"]
        return sorted((int(r["step"]), pba.policy_from_json(r["policy"])) for r in rows)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ConfigError(f"--pba-schedule {path}: not a PBA schedule ({e})") from None


def schedule_json(schedule: list[tuple[int, np.ndarray]]) -> dict:
    return {"schedule": [{"step": s, "policy": pba.policy_json(p)} for s, p in schedule]}


def augmentation(options: WRNConfig, seed: int):
    """(x, step, generator) -> augmented x, as `options.augment` says."""
    if options.augment == "standard":
        return lambda x, step, g: augment.standard(x, g)
    if options.augment == "random":
        policy = pba.random_policy(np.random.default_rng(seed))
        return lambda x, step, g: pba.apply_policy(x, policy, g)
    if options.augment == "pba":
        schedule = read_schedule(options.pba_schedule)
        return lambda x, step, g: pba.apply_policy(x, pba.policy_at(schedule, step), g)
    return None


class AugmentedBatches:
    """Shuffled [0, 1] training batches, augmented with draws seeded by (seed, step), so a
    resumed run sees the same batches."""

    def __init__(self, splits: Splits, batch_size: int, seed: int, augment_fn):
        self.base = InMemoryBatches({"x": splits.train_x, "y": splits.train_y}, batch_size, seed)
        self.seed, self.augment_fn = seed, augment_fn

    def batch(self, step: int) -> dict[str, torch.Tensor]:
        b = self.base.batch(step)
        x = b["x"].float() / 255
        if self.augment_fn is not None:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + step)
            x = self.augment_fn(x, step, g)
        return {"x": x, "y": b["y"]}


def train_batches(options: WRNConfig, splits: Splits, batch_size: int, seed: int, **_):
    return AugmentedBatches(splits, batch_size, seed, augmentation(options, seed))


def accuracy(model, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        logits = torch.cat([model(b.float() / 255) for b in x.split(1000)])
    return (logits.argmax(1) == y).float().mean().item()


def evaluate_wrn(model, options: WRNConfig, splits: Splits, n: int | None = None, **_) -> dict:
    """Validation and test accuracy and error (%); `n` limits the images of each."""
    val = accuracy(model, splits.val_x[:n], splits.val_y[:n])
    test_x, test_y = splits.test_x[:n], splits.test_y[:n]
    test = accuracy(model, test_x, test_y)
    return {"val_accuracy": val, "val_error": 100 * (1 - val), "test_accuracy": test,
            "test_error": 100 * (1 - test), "n": len(test_y),
            "train_images": len(splits.train_x)}  # fmt: skip


ENTRIES = (
    ModelEntry(
        name="wrn", summary="wide ResNet on a small labelled subset, with a PBA augmentation "
        "schedule or a baseline augmentation", options=WRNConfig, build=WideResNet,
        datasets=("mnist",), load_data=load_data, batches=train_batches, evaluate=evaluate_wrn,
        train_defaults={"lr": 2e-3, "batch_size": 64, "weight_decay": 5e-4},
    ),
)  # fmt: skip
