"""Self-supervised representations (CPC and rotation prediction on images: their registry
entries and pretext evaluation) and the linear probe that `genlab probe` runs on any model's
representation: logistic regression on frozen features from a few labels per class, beside raw
pixels, the same network untrained, and the same network trained on those labels alone.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path

import torch
from tqdm import tqdm

from genlab.data import augment
from genlab.data.images import ImageSplits
from genlab.metrics.probe import probe_accuracy, stratified_draw
from genlab.metrics.stats import mean_ci95
from genlab.models.cpc import CPC, CPCConfig, RotNet, RotNetConfig
from genlab.tasks.entry import ModelEntry
from genlab.tasks.images import load_images, model_input, train_batches
from genlab.viz.curves import save_curves

PROBE_SEED = 4242  # the stochastic binarization/dequantization of probed images, drawn once
Features = Callable[[torch.Tensor], torch.Tensor]  # uint8 images (N, C, H, W) -> (N, D)


def evaluate_pretext(model, options, splits: ImageSplits, n: int | None = None, **_) -> dict:
    """The pretext task on test images: the mean of each loss() metric over batches of 250
    (CPC: InfoNCE in nats and how often the true patch scored highest, per offset k;
    rotation prediction: cross-entropy and accuracy)."""
    x = splits.test_x[:n].float() / 255.0
    sums: dict[str, float] = {}
    for b in x.split(250):
        for k, v in model.loss({"x": b}).items():
            sums[k] = sums.get(k, 0.0) + v.item() * len(b)
    return {**{k: v / len(x) for k, v in sums.items()}, "n": len(x)}


def embedder(model, options, batch_size: int = 500) -> Features:
    """A model's frozen representation, `model.embed`, of uint8 images in its own input
    representation, in batches, without gradients."""

    @torch.no_grad()
    def features(x: torch.Tensor) -> torch.Tensor:
        inputs, _ = model_input(options, x, PROBE_SEED)
        return torch.cat([model.embed(b).float() for b in inputs.split(batch_size)])

    return features


def pixels(x: torch.Tensor) -> torch.Tensor:
    """The baseline representation: the image itself, (N, C H W) in [0, 1]."""
    return x.flatten(1).float() / 255.0


def label_counts(text: str) -> list[int | None]:
    """'1,5,10,all' -> [1, 5, 10, None] (None: every training label)."""
    counts = [None if t.strip() == "all" else int(t) for t in text.split(",")]
    if any(c is not None and c < 1 for c in counts):
        raise ValueError(f"labels per class must be >= 1 or 'all', got '{text}'")
    return counts


def probe(
    representations: dict[str, Features], splits: ImageSplits, counts: list[int | None],
    draws: int, l2: float, seed: int = 0, n_test: int | None = None,
    supervised: Callable[[torch.Tensor, torch.Tensor], Features] | None = None,
) -> dict:  # fmt: skip
    """Linear-probe test accuracy of each representation with `counts` labels per class
    (`draws` stratified draws each; one when every label is used), and, with `supervised`
    ((x, y) -> trained features+head's class scores), the network trained on the same labels.

    Returns {"rows": {name: {count: {"accuracy", "ci95", "draws"}}}, ...}, accuracies in %."""
    test_x, test_y = splits.test_x[:n_test], splits.test_y[:n_test]
    n_classes = int(max(splits.train_y.max(), test_y.max())) + 1
    plan = {c: [stratified_draw(splits.train_y, c, seed * 1000 + d) for d in range(draws)]
            if c else [torch.arange(len(splits.train_y))] for c in counts}  # fmt: skip
    needed = torch.cat([i for idx in plan.values() for i in idx]).unique()  # sorted
    where = torch.full((len(splits.train_y),), -1, dtype=torch.long)
    where[needed] = torch.arange(len(needed))
    rows: dict[str, dict] = {}
    t0 = time.monotonic()
    for name, features in representations.items():
        train_f, test_f = features(splits.train_x[needed]), features(test_x)
        rows[name] = {}
        for c, draw_list in tqdm(plan.items(), desc=f"probe {name}", disable=None):
            accs = [100 * probe_accuracy(train_f[where[i]], splits.train_y[i], test_f, test_y,
                                         n_classes, l2) for i in draw_list]  # fmt: skip
            rows[name][count_key(c)] = summary(accs)
    if supervised is not None:
        rows["supervised"] = {}
        for c, draw_list in plan.items():
            accs = []
            for i in tqdm(draw_list, desc=f"supervised, {count_key(c)} labels", disable=None):
                scores = supervised(splits.train_x[i], splits.train_y[i])
                accs.append(100 * (scores(test_x).argmax(1) == test_y).double().mean().item())
            rows["supervised"][count_key(c)] = summary(accs)
    return {"labels_per_class": [count_key(c) for c in counts], "draws": draws, "l2": l2,
            "test_images": len(test_y), "train_images": len(splits.train_y),
            "classes": n_classes, "rows": rows,
            "seconds": round(time.monotonic() - t0, 1)}  # fmt: skip


def label_efficiency_picture(result: dict, out: Path) -> Path:
    """Accuracy against labels per class (log scale; "all" at the mean class size), one line
    per representation: <out>/label_efficiency.png."""
    per_class = {k: math.log10(int(k) if k != "all" else result["train_images"] / result["classes"])
                 for k in result["labels_per_class"]}  # fmt: skip
    series = {name: ([per_class[k] for k in row], [row[k]["accuracy"] for k in row])
              for name, row in result["rows"].items()}  # fmt: skip
    title = f"linear probe of {result['model']} on {result['data']} ({result['draws']} draws)"
    return save_curves(series, out / "label_efficiency.png", "log10 labels per class",
                       "test accuracy %", title)  # fmt: skip


def count_key(c: int | None) -> str:
    return "all" if c is None else str(c)


def summary(accs: list[float]) -> dict:
    """Mean accuracy, the half-width of its 95% interval (None for one draw), the draws."""
    mean, half = mean_ci95(torch.tensor(accs))
    return {"accuracy": mean, "ci95": half if len(accs) > 1 else None, "draws": accs}


def supervised_trainer(build, options, n_classes: int, steps: int, lr: float = 1e-3,
                       seed: int = 0):  # fmt: skip
    """(x, y) -> class scores of the probed network's architecture, freshly initialised with a
    linear head on `embed`, trained `steps` Adam steps on those labels alone (batches of up to
    64, shifted and rotated as `augment.standard`)."""

    def train(x: torch.Tensor, y: torch.Tensor) -> Features:
        torch.manual_seed(seed)
        net = build(options)
        inputs, _ = model_input(options, x, PROBE_SEED)
        head = torch.nn.Linear(net.embed(inputs[:1]).shape[1], n_classes)
        params = [*net.parameters(), *head.parameters()]
        opt = torch.optim.AdamW(params, lr, weight_decay=5e-4)
        g = torch.Generator().manual_seed(seed)
        for _ in range(steps):
            idx = torch.randint(len(inputs), (min(64, len(inputs)),), generator=g)
            loss = torch.nn.functional.cross_entropy(
                head(net.embed(augment.standard(inputs[idx], g))), y[idx]
            )
            opt.zero_grad()
            loss.backward()
            opt.step()
        features = embedder(net, options)
        return lambda images: head(features(images)).detach()

    return train


ENTRIES = (
    ModelEntry(
        name="cpc", summary="contrastive predictive coding on image patches (a representation "
        "for `genlab probe`)", options=CPCConfig, build=CPC, datasets=("mnist", "omniglot"),
        load_data=load_images, batches=train_batches, evaluate=evaluate_pretext,
        train_defaults={"lr": 1e-3, "batch_size": 64},
    ),
    ModelEntry(
        name="rotnet", summary="rotation prediction, on CPC's patch encoder (a representation "
        "for `genlab probe`)", options=RotNetConfig, build=RotNet,
        datasets=("mnist", "omniglot"), load_data=load_images, batches=train_batches,
        evaluate=evaluate_pretext, train_defaults={"lr": 1e-3, "batch_size": 64},
    ),
)  # fmt: skip
