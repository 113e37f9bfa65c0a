"""genlab's MNIST feature network, trained once (deterministically) and cached, and the
sample-quality report every image model that can sample gets from `genlab eval`."""

from __future__ import annotations

from pathlib import Path

import torch
from tqdm import tqdm

from genlab.data.images import ImageSplits, image_splits
from genlab.metrics.sample_quality import class_coverage, fid, precision_recall
from genlab.metrics.yardstick import cached_yardstick, yardstick_dir
from genlab.models.classifier import Classifier, ClassifierConfig
from genlab.tasks import training
from genlab.tasks.images import ENTRY, evaluate_classifier
from genlab.train.config import TrainConfig

FEATURE_NET_VERSION = 2  # v1 (global average pooling) reached only 99.22-99.23%
# The recipe: `genlab train classifier --data mnist --steps 4000 --lr 0.002 --schedule cosine
# --warmup-steps 200 --seed 0` gives the same network (same threads, same machine type).
FEATURE_NET_TRAIN = TrainConfig(
    steps=4000, lr=2e-3, schedule="cosine", warmup_steps=200, seed=0, log_every=100,
    checkpoint_every=1000,
)  # fmt: skip
MIN_ACCURACY = 0.993


def feature_net_dir() -> Path:
    return yardstick_dir(f"classifier-mnist-v{FEATURE_NET_VERSION}")


def feature_net(data_dir: str | Path | None = None) -> Classifier:
    """The cached MNIST classifier (eval mode), training it first if the cache has none."""

    entry = ENTRY["classifier"]
    data_dir = None if data_dir is None else str(data_dir)

    def train(run_dir: Path) -> None:
        spec = training.RunSpec(
            entry=entry,
            data="mnist",
            options=ClassifierConfig(),
            train=FEATURE_NET_TRAIN,
            run_dir=run_dir,
            data_dir=data_dir,
        )
        training.train(spec)

    def accuracy(model, options) -> float:
        return evaluate_classifier(model, options, image_splits("mnist", data_dir))["accuracy"]

    return cached_yardstick(
        feature_net_dir().name, "classifier", train,
        lambda run_dir: training.load(entry, run_dir)[:2], accuracy, MIN_ACCURACY,
    )  # fmt: skip


@torch.no_grad()
def features_and_classes(net: Classifier, x: torch.Tensor, batch_size: int = 1000):
    """(N, 1, 28, 28) in [0, 1] -> features (N, F), predicted classes (N,)."""
    feats = torch.cat([net.features(b) for b in x.split(batch_size)])
    return feats, net.head(feats).argmax(1)


@torch.no_grad()
def sample_quality(
    model,
    splits: ImageSplits,
    net: Classifier,
    n: int = 10_000,
    seed: int = 0,
    batch_size: int = 500,
) -> dict:
    """FID, precision, recall and class coverage of n samples against n real test images,
    all on genlab's MNIST classifier features; plus the real-test-vs-real-train FID for scale."""
    g = torch.Generator().manual_seed(seed)
    samples = []
    for start in tqdm(range(0, n, batch_size), desc="sampling", disable=None):
        samples.append(model.sample(min(batch_size, n - start), generator=g))
    fake = torch.cat(samples)
    real = splits.test_x[:n].float() / 255.0
    train = splits.train_x[:n].float() / 255.0
    f_fake, c_fake = features_and_classes(net, fake)
    f_real, _ = features_and_classes(net, real)
    f_train, _ = features_and_classes(net, train)
    precision, recall = precision_recall(f_real, f_fake)
    coverage = class_coverage(c_fake, net.cfg.n_classes)
    return {
        "fid": fid(f_real, f_fake),
        "precision": precision,
        "recall": recall,
        "class_kl": coverage["class_kl"],
        "classes_below_half": coverage["classes_below_half"],
        "fid_real_test_vs_train": fid(f_real, f_train),
        "quality_samples": n,
        "features": f"genlab MNIST classifier v{FEATURE_NET_VERSION} (not Inception)",
    }
