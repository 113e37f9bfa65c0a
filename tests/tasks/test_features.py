"""The classifier, its features, and the sample-quality report of `genlab eval`.

The real feature network takes minutes to train (its >= 99.3% accuracy is checked when it is
built, see genlab.tasks.features); here a small one trained for a few hundred steps stands in.
"""

from __future__ import annotations

import json
import math

import pytest
import torch

from contracts import check_loss_finite_and_gradients_reach_every_parameter
from genlab.cli import main
from genlab.data.images import image_splits
from genlab.metrics.sample_quality import fid, precision_recall
from genlab.models.classifier import Classifier, ClassifierConfig
from genlab.tasks.features import feature_net, feature_net_dir, features_and_classes

SMALL_NET = ["--channels", "8", "--features", "32", "--batch-size", "64", "--quiet"]


@pytest.fixture(scope="module")
def small_net(data_root):
    """A small classifier trained briefly, installed where genlab looks for its feature net."""
    args = [
        "train",
        "classifier",
        "--steps",
        "300",
        "--lr",
        "0.003",
        "--out",
        str(feature_net_dir()),
    ]
    assert main([*args, *SMALL_NET]) == 0
    return feature_net()


def test_classifier_contract():
    torch.manual_seed(0)
    model = Classifier(ClassifierConfig(channels=4, features=8))
    batch = {"x": torch.rand(6, 1, 28, 28), "y": torch.arange(6)}
    check_loss_finite_and_gradients_reach_every_parameter(model, batch)


def test_small_net_learns_digits(small_net):
    splits = image_splits("mnist")
    _, predicted = features_and_classes(small_net, splits.test_x[:2000].float() / 255)
    assert (predicted == splits.test_y[:2000]).float().mean() > 0.9


def test_fid_is_small_for_real_data_and_grows_with_noise(small_net):
    splits = image_splits("mnist")
    real = splits.test_x[:2000].float() / 255
    train = splits.train_x[:2000].float() / 255
    f_real, _ = features_and_classes(small_net, real)
    g = torch.Generator().manual_seed(0)
    values = []
    for sigma in (0.0, 0.1, 0.2, 0.4):
        noisy = (train + sigma * torch.randn(train.shape, generator=g)).clamp(0, 1)
        values.append(fid(f_real, features_and_classes(small_net, noisy)[0]))
    assert values == sorted(values), values
    assert values[0] < 0.1 * values[-1]


def test_precision_recall_real_vs_real_and_single_class(small_net):
    splits = image_splits("mnist")
    f_test, _ = features_and_classes(small_net, splits.test_x[:2000].float() / 255)
    f_train, _ = features_and_classes(small_net, splits.train_x[:2000].float() / 255)
    p, r = precision_recall(f_test, f_train)
    assert p > 0.8 and r > 0.8
    ones = splits.train_x[splits.train_y == 1][:2000].float() / 255
    f_ones, _ = features_and_classes(small_net, ones)
    p1, r1 = precision_recall(f_test, f_ones)
    assert r1 < 0.3 and p1 > 0.5  # one class: real-looking, but most of the data is missed


def test_eval_reports_sample_quality_for_a_vae(small_net, tmp_path, capsys):
    out = tmp_path / "vae"
    tiny = ["--latent-dim", "2", "--channels", "4", "--hidden", "16", "--quiet"]
    assert main(["train", "vae", "--steps", "30", "--out", str(out), *tiny]) == 0
    capsys.readouterr()
    assert main(["eval", str(out), "--json", "--k", "2", "--n", "50", "--samples", "500"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["fid"] > result["fid_real_test_vs_train"] >= 0
    assert 0 <= result["precision"] <= 1 and 0 <= result["recall"] <= 1
    assert 0 <= result["class_kl"] <= math.log(10)
    assert result["quality_samples"] == 500 and "not Inception" in result["features"]
