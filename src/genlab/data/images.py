"""Image datasets as uint8 tensors (N, C, H, W), and how models see them.

`image_splits('mnist' | 'omniglot' | 'carracing' | 'doom' | 'pong')` gives train/test images and
labels. MNIST and Omniglot are (N, 1, 28, 28). For Omniglot, train = the background set, test =
the evaluation set, label = alphabet id. CarRacing and Doom frames (N, 3, 64, 64) and Pong frames
(N, 1, 64, 64) are the World Models rollouts collected into `<data root>/carracing/`, `doom/` and
`pong/` by
`genlab worldmodels collect`; every tenth episode (the last, with fewer than ten) is test, the
label is the episode number, and the episodes' per-frame facts (Pong: where the ball is) come
as `test_labels`.
`labelled_splits(name, data_dir, train_images, val_images)`: a small labelled training set and a
validation set carved from the training split (what a search scores), and the test split; for
Omniglot the labels are characters and the splits are drawers (`omniglot_characters`).
`representation(kind)` turns a uint8 batch into what a model trains on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from genlab.data import mnist, omniglot
from genlab.data.batches import Transform
from genlab.data.episodes import episode_files, episodes_root, is_test_episode, load_episode
from genlab.errors import ConfigError, DataError

ROLLOUT_DATASETS = ("carracing", "doom", "pong")
IMAGE_DATASETS = ("mnist", "omniglot", *ROLLOUT_DATASETS)
REPRESENTATIONS = ("binary_dynamic", "float", "uint8", "dequantized")


@dataclass(frozen=True)
class ImageSplits:
    train_x: torch.Tensor  # (N, C, H, W) uint8; MNIST/Omniglot: 0 = background, 255 = ink
    train_y: torch.Tensor  # (N,) int64
    test_x: torch.Tensor
    test_y: torch.Tensor
    label_names: tuple[str, ...]
    labels_are_classes: bool = True  # False: labels only say where an image came from
    test_labels: dict[str, torch.Tensor] = field(default_factory=dict)  # name -> (N_test, ...)


def image_splits(name: str, data_dir: str | Path | None = None) -> ImageSplits:
    if name == "mnist":
        tx, ty = mnist.load("train", data_dir)
        vx, vy = mnist.load("test", data_dir)
        return ImageSplits(tx, ty, vx, vy, tuple(str(d) for d in range(10)))
    if name == "omniglot":
        d = omniglot.load(data_dir)
        bg = d["background"]
        x = d["images"].unsqueeze(1)
        return ImageSplits(
            x[bg], d["alphabet"][bg], x[~bg], d["alphabet"][~bg], tuple(d["alphabet_names"])
        )
    if name in ROLLOUT_DATASETS:
        return rollout_frames(name, data_dir)
    raise DataError(f"unknown image dataset '{name}'; choose from {', '.join(IMAGE_DATASETS)}")


OMNIGLOT_TEST_DRAWERS = 5  # of each character's 20 drawers, the last 5 are a character test


def omniglot_characters(data_dir: str | Path | None = None, background: bool = True) -> ImageSplits:
    """Omniglot as character classification: the characters of the background alphabets (964;
    `background=False`: the evaluation alphabets' 659), label = character (0..963), drawers
    1-15 of each to train, 16-20 to test."""
    d = omniglot.load(data_dir)
    keep = d["background"] if background else ~d["background"]
    x, drawer = d["images"][keep].unsqueeze(1), d["drawer"][keep]  # (N, 1, 28, 28) uint8
    y = d["character"][keep].unique(return_inverse=True)[1]
    test = drawer >= omniglot.DRAWERS - OMNIGLOT_TEST_DRAWERS
    names = tuple(str(c) for c in d["character"][keep].unique().tolist())
    return ImageSplits(x[~test], y[~test], x[test], y[test], names)


SUBSET_SEED = 20190516  # the fixed permutation behind every train/validation subset


@dataclass(frozen=True)
class LabelledSplits:
    train_x: torch.Tensor  # (N, C, H, W) uint8
    train_y: torch.Tensor  # (N,) int64
    val_x: torch.Tensor
    val_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor


def labelled_splits(
    name: str, data_dir: str | Path | None, train_images: int, val_images: int
) -> LabelledSplits:
    """A fixed seeded permutation of the training split gives `train_images` (0: all but the
    validation images) to train on and the next `val_images` to validate on; the test split is
    the dataset's own. Omniglot's labels here are its background characters
    (`omniglot_characters`), so a few drawings of each are trained on."""
    full = omniglot_characters(data_dir) if name == "omniglot" else image_splits(name, data_dir)
    n_all = len(full.train_x)
    n_train = train_images or n_all - val_images
    if n_train + val_images > n_all or n_train < 1:
        raise ConfigError(f"--train-images {train_images} and --val-images {val_images} need "
                          f"more than the {n_all} training images")  # fmt: skip
    perm = torch.randperm(n_all, generator=torch.Generator().manual_seed(SUBSET_SEED))
    train, val = perm[:n_train], perm[n_train : n_train + val_images]
    return LabelledSplits(full.train_x[train], full.train_y[train], full.train_x[val],
                          full.train_y[val], full.test_x, full.test_y)  # fmt: skip


def rollout_frames(game: str, data_dir: str | Path | None = None) -> ImageSplits:
    """Every frame of the collected episodes of `game` (carracing, doom, pong), from the first data
    root holding any; the held-out episodes' per-frame labels as `test_labels`."""
    root = episodes_root(game, data_dir)
    files = episode_files(root)
    if len(files) < 2:
        raise DataError(f"{root} holds one episode; a train/test split needs at least two")
    frames, labels, test, facts = [], [], [], []
    for k, path in enumerate(files):
        episode = load_episode(path)
        f = torch.from_numpy(episode.frames).permute(0, 3, 1, 2)  # (T + 1, C, 64, 64)
        frames.append(f)
        labels.append(torch.full((len(f),), k))
        held_out = is_test_episode(k, len(files))
        test.append(torch.full((len(f),), held_out))
        if held_out:
            facts.append({n: torch.from_numpy(v) for n, v in episode.labels.items()})
    x, y, is_test = torch.cat(frames), torch.cat(labels), torch.cat(test)
    names = tuple(f"episode {k}" for k in range(len(files)))
    test_labels = {n: torch.cat([f[n] for f in facts]) for n in facts[0]}
    return ImageSplits(x[~is_test], y[~is_test], x[is_test], y[is_test], names, False,
                       test_labels)  # fmt: skip


def random_shift(x: torch.Tensor, max_shift: int, g: torch.Generator) -> torch.Tensor:
    """Translate each image by its own random (dy, dx) in [-max_shift, max_shift], zero-filled.

    x: (B, C, H, W) -> (B, C, H, W); one gather for the whole batch, no per-image Python loop.
    """
    if max_shift == 0:
        return x
    b, c, h, w = x.shape
    s = max_shift
    padded = torch.nn.functional.pad(x, (s, s, s, s))  # (B, C, H + 2s, W + 2s)
    dy, dx = torch.randint(0, 2 * s + 1, (2, b, 1), generator=g)  # offsets into the padding
    rows = (torch.arange(h) + dy)[:, None, :, None]  # (B, 1, H, 1)
    cols = (torch.arange(w) + dx)[:, None, None, :]  # (B, 1, 1, W)
    return padded[
        torch.arange(b)[:, None, None, None], torch.arange(c)[None, :, None, None], rows, cols
    ]


def representation(kind: str, max_shift: int = 0) -> Transform:
    """Batch transform on {"x": uint8, ...}: dynamic binarization, [0, 1] floats, raw uint8, or
    uniformly dequantized [0, 1) floats, after an optional random translation of up to
    `max_shift` pixels (training augmentation)."""
    if kind not in REPRESENTATIONS:
        raise ValueError(f"unknown representation '{kind}'; choose from {REPRESENTATIONS}")

    def transform(batch: dict[str, torch.Tensor], g: torch.Generator) -> dict[str, torch.Tensor]:
        x = random_shift(batch["x"], max_shift, g)
        if kind == "binary_dynamic":
            x = mnist.binarize(x, g)
        elif kind == "float":
            x = x.float() / 255.0
        elif kind == "dequantized":
            x = dequantize(x, g)
        return {**batch, "x": x}

    return transform


def dequantize(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """uint8 images -> (x + u) / 256 in [0, 1), u ~ U[0, 1) per pixel: the uniform dequantization
    that density models of 8-bit data train on (see metrics.likelihood.dequantized_log_prob)."""
    return (x.float() + torch.rand(x.shape, generator=g)) / 256.0


def static_binarization(x: torch.Tensor, seed: int) -> torch.Tensor:
    """One fixed Bernoulli(x/255) draw of a whole split (a standard fixed test set)."""
    return mnist.binarize(x, torch.Generator().manual_seed(seed))
