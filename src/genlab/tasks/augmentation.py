"""Learning with augmentation: a wide ResNet trained on a small labelled subset of MNIST with no
augmentation, the standard shift-and-rotate, one random PBA policy, or a PBA schedule
(`genlab.meta.pba`; `genlab tune pba` searches one). Its registry entry, data and evaluation.

The split (`genlab.data.images.labelled_splits`): `--train-images` of MNIST's training images to
train on, the next `--val-images` to validate on (what a search scores); the test split is
MNIST's own, reported once at the end. With `--data omniglot --n-classes 964` the classes are
the background alphabets' characters: the subsets come from drawers 1-15 of each (so a few
drawings per character), the test is drawers 16-20.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from genlab.data import augment, omniglot
from genlab.data.batches import InMemoryBatches
from genlab.data.images import LabelledSplits, labelled_splits
from genlab.errors import ConfigError
from genlab.meta import pba
from genlab.models.wide_resnet import WideResNet, WRNConfig
from genlab.nn.modes import recalibrate_batch_norm
from genlab.tasks.entry import ModelEntry
from genlab.viz.curves import save_figure, stairs_figure

# the datasets' classes: digits, and the background alphabets' characters
CLASSES = {"mnist": 10, "omniglot": omniglot.SETS["background"][1]}


def load_data(data: str, data_dir, options: WRNConfig) -> LabelledSplits:
    splits = labelled_splits(data, data_dir, options.train_images, options.val_images)
    classes = int(max(splits.train_y.max(), splits.val_y.max(), splits.test_y.max())) + 1
    if classes > options.n_classes:
        raise ConfigError(f"--n-classes {options.n_classes} is too few for {data}'s {classes} "
                          f"classes: give --n-classes {classes}")  # fmt: skip
    return splits


def read_schedule(path: str | Path) -> list[tuple[int, np.ndarray]]:
    """A schedule file: {"schedule": [{"step": S, "policy": {op: [[p, m], [p, m]]}}, ...]}."""
    try:
        rows = json.loads(Path(path).read_text())["schedule"]
        return sorted((int(r["step"]), pba.policy_from_json(r["policy"])) for r in rows)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ConfigError(f"--pba-schedule {path}: not a PBA schedule ({e})") from None


def schedule_json(schedule: list[tuple[int, np.ndarray]]) -> dict:
    return {"schedule": [{"step": s, "policy": pba.policy_json(p)} for s, p in schedule]}


def schedule_panels(schedule: list[tuple[int, np.ndarray]]) -> dict:
    """The schedule as PBA's paper draws it: per operation, the sum over its two slots of the
    probability (0..2) and of the magnitude (0..2), at each change: {panel: {op: (steps,
    values)}} for `stairs_figure`."""
    xs = [s for s, _ in schedule]
    return {
        title: {name: (xs, [float(p[i, :, k].sum()) / top for _, p in schedule])
                for i, name in enumerate(pba.NAMES)}
        for k, (title, top) in enumerate((("probability (sum of both slots)", pba.PROB_LEVELS),
                                          ("magnitude (sum of both slots)", pba.MAG_LEVELS)))
    }  # fmt: skip


def schedule_picture(schedule: list[tuple[int, np.ndarray]], steps: int, path: Path) -> Path:
    """`schedule_panels` drawn to `path` (PNG), each value held until the next change and the
    last until `steps`."""
    end = max([steps, *(s + 1 for s, _ in schedule)])
    return save_figure(stairs_figure(schedule_panels(schedule), "training step", end), path)


def augmentation(options: WRNConfig, seed: int):
    """(x, step, generator) -> augmented x, as `options.augment` says; a random or PBA policy
    is followed by the standard shift and rotation if `options.base_augment` is 'standard'."""
    if options.augment == "standard":
        return lambda x, step, g: augment.standard(x, g)
    if options.augment == "random":  # one random policy from the first step on
        schedule = [(0, pba.random_policy(np.random.default_rng(seed)))]
    elif options.augment == "pba":
        schedule = read_schedule(options.pba_schedule)
    else:
        return None
    then = augment.standard if options.base_augment == "standard" else lambda x, g: x
    return lambda x, step, g: then(pba.apply_policy(x, pba.policy_at(schedule, step), g), g)


class AugmentedBatches:
    """Shuffled [0, 1] training batches, augmented with draws seeded by (seed, step), so a
    resumed run sees the same batches."""

    def __init__(self, splits: LabelledSplits, batch_size: int, seed: int, augment_fn):
        self.base = InMemoryBatches({"x": splits.train_x, "y": splits.train_y}, batch_size, seed)
        self.seed, self.augment_fn = seed, augment_fn

    def batch(self, step: int) -> dict[str, torch.Tensor]:
        b = self.base.batch(step)
        x = b["x"].float() / 255
        if self.augment_fn is not None:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + step)
            x = self.augment_fn(x, step, g)
        return {"x": x, "y": b["y"]}


def train_batches(options: WRNConfig, splits: LabelledSplits, batch_size: int, seed: int, **_):
    return AugmentedBatches(splits, batch_size, seed, augmentation(options, seed))


BN_BATCH = 250  # training images per batch when re-estimating batch-norm statistics


def accuracy(model, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        logits = torch.cat([model(b.float() / 255) for b in x.split(1000)])
    return (logits.argmax(1) == y).float().mean().item()


def evaluate_wrn(
    model, options: WRNConfig, splits: LabelledSplits, n: int | None = None, **_
) -> dict:
    """Validation and test accuracy and error (%); `n` limits the images of each. With
    `eval_bn` 'clean' the batch norms' statistics are first re-estimated on the plain training
    images (every augmentation scored alike)."""
    if options.eval_bn == "clean":
        model = recalibrate_batch_norm(
            model, (x.float() / 255 for x in splits.train_x.split(BN_BATCH))
        )
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
        datasets=tuple(CLASSES), load_data=load_data, batches=train_batches,
        evaluate=evaluate_wrn,
        train_defaults={"lr": 2e-3, "batch_size": 64, "weight_decay": 5e-4},
    ),
)  # fmt: skip
