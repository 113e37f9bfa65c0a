"""Omniglot few-shot tasks: named class splits, rotations as new classes, a seeded task sampler.

The standard protocol (Santoro et al. 2016, Vinyals et al. 2016, Finn et al. 2017): 1,200
characters meta-train, the other 423 meta-test, and each rotation by 0/90/180/270 degrees is a
class of its own (4,800 training and 1,692 test classes of 20 drawings each). A split is a file
in `genlab/data/splits/` whose sha256 is pinned here, so every result names exactly the classes it
used; add a published split by adding its file and hash to `SPLITS`.

A task is N classes ("ways") drawn without replacement from one side of the split, K support
("shots") and Q query drawings per class drawn without replacement from the 20 drawers; labels
0..N-1 are the order in which the classes were drawn. Batches are built with index tensors.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import torch

from genlab.data import omniglot
from genlab.data.batches import seeded
from genlab.errors import ConfigError, DataError

N_CHARACTERS, N_DRAWERS = 1623, 20
SPLITS = {  # name -> sha256 of genlab/data/splits/omniglot-<name>.json
    "random1200-seed1": "9534b19938493e816472c6893eff8032fe7f45490f5a7b285ffe5b23980c46e2",
    "lake-background": "f1442931ef6d5c85c6e23c0bb620e73abfada7a828b3de95e2503cead13e221f",
}


def make_random_split(n_train: int = 1200, seed: int = 1) -> dict:
    """The file behind `random<n_train>-seed<seed>`: numpy's default_rng(seed) permutes the 1,623
    character ids; the first n_train are meta-train. Kept so the file can be regenerated."""
    perm = np.random.default_rng(seed).permutation(N_CHARACTERS)
    return {
        "name": f"random{n_train}-seed{seed}",
        "how": f"numpy.random.default_rng({seed}).permutation(1623); first {n_train} train",
        "train": sorted(int(c) for c in perm[:n_train]),
        "test": sorted(int(c) for c in perm[n_train:]),
    }


def make_lake_split() -> dict:
    """Lake et al.'s own split: the 30 background alphabets (964 characters) vs the 20 evaluation
    alphabets (659); the global character ids of the background set come first."""
    return {
        "name": "lake-background",
        "how": "images_background.zip characters train, images_evaluation.zip test",
        "train": list(range(964)),
        "test": list(range(964, N_CHARACTERS)),
    }


def split_bytes(split: dict) -> bytes:
    return (json.dumps(split) + "\n").encode()


def load_split(name: str) -> dict:
    """{'train': [character ids], 'test': [...]} of a named split, checked against its sha256."""
    if name not in SPLITS:
        raise ConfigError(f"unknown omniglot split '{name}'; known: {', '.join(SPLITS)}")
    path = resources.files("genlab.data") / "splits" / f"omniglot-{name}.json"
    raw = path.read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    if digest != SPLITS[name]:
        raise DataError(f"{path}: sha256 {digest} does not match the pinned {SPLITS[name]}")
    split = json.loads(raw)
    train, test = set(split["train"]), set(split["test"])
    if train & test or len(train | test) != N_CHARACTERS:
        raise DataError(f"{path}: train and test must partition the {N_CHARACTERS} characters")
    return split


def with_rotations(chars: torch.Tensor) -> torch.Tensor:
    """(C, D, H, W) -> (4C, D, H, W): class 4c + r is character c rotated by r * 90 degrees."""
    rotated = [torch.rot90(chars, r, dims=(-2, -1)) for r in range(4)]  # 4 x (C, D, H, W)
    return torch.stack(rotated, dim=1).flatten(0, 1)


@dataclass(frozen=True)
class FewShotData:
    """Meta-train and meta-test classes: uint8 (classes, 20 drawers, 28, 28), ink = 255."""

    train: torch.Tensor
    test: torch.Tensor
    split: str


def fewshot_data(
    split: str = "random1200-seed1", rotations: bool = True, data_dir: str | Path | None = None
) -> FewShotData:
    s = load_split(split)
    chars = omniglot.by_character(data_dir)  # (1623, 20, 28, 28)
    rot = with_rotations if rotations else (lambda t: t)
    return FewShotData(rot(chars[s["train"]]), rot(chars[s["test"]]), split)


class TaskSampler:
    """`batch(step)` -> a meta-batch of `tasks` N-way K-shot tasks, a pure function of (seed, step).

    support_x (T, N*K, 1, 28, 28) float in [0, 1], support_y (T, N*K) int64 in 0..N-1 (class-major:
    K shots of class 0, then class 1, ...), query_x (T, N*Q, 1, 28, 28), query_y (T, N*Q).
    """

    def __init__(
        self, classes: torch.Tensor, ways: int, shots: int, queries: int, tasks: int, seed: int
    ):
        n_classes, n_drawers = classes.shape[:2]
        if ways > n_classes:
            raise ConfigError(f"{ways}-way tasks need {ways} classes; only {n_classes} available")
        if shots + queries > n_drawers:
            raise ConfigError(
                f"{shots} shots + {queries} queries exceed the {n_drawers} drawings per class"
            )
        self.classes, self.ways, self.shots, self.queries = classes, ways, shots, queries
        self.tasks, self.seed = tasks, seed

    def batch(self, step: int) -> dict[str, torch.Tensor]:
        g = seeded(self.seed, step)
        t, n, k, q = self.tasks, self.ways, self.shots, self.queries
        n_classes, n_drawers = self.classes.shape[:2]
        cls = torch.rand(t, n_classes, generator=g).argsort(1)[:, :n]  # (T, N) distinct per task
        drawers = torch.rand(t, n, n_drawers, generator=g).argsort(2)[..., : k + q]  # (T, N, K+Q)
        x = self.classes[cls[..., None], drawers]  # (T, N, K+Q, 28, 28) uint8
        x = x.unsqueeze(3).float() / 255.0  # (T, N, K+Q, 1, 28, 28)
        y = torch.arange(n).view(1, n, 1).expand(t, n, k + q)
        return {
            "support_x": x[:, :, :k].flatten(1, 2),
            "support_y": y[:, :, :k].flatten(1, 2),
            "query_x": x[:, :, k:].flatten(1, 2),
            "query_y": y[:, :, k:].flatten(1, 2),
        }
