"""The searches through the one training loop: ENAS's controller learns from rewards, the run
repeats under its seed, and evaluation names an architecture that `--arch` takes back; NAS and
random search train every child from scratch and keep the best they scored."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from genlab.cli import main
from genlab.meta.nas import ENASConfig
from genlab.models.supernet import SuperNet
from genlab.tasks import training
from genlab.tasks.architecture import accuracy, architecture_pictures, train_child
from genlab.tasks.registry import MODELS
from genlab.train.config import TrainConfig
from genlab.train.logger import read_metrics
from genlab.train.state import read_checkpoint

TINY = ENASConfig(cells=2, channels=4, controller_every=2, controller_samples=3, val_batch=32,
                  train_images=64, val_images=64)  # fmt: skip


def search(run_dir, steps=4, options=TINY):
    cfg = TrainConfig(steps=steps, batch_size=16, log_every=1, checkpoint_every=steps, threads=1,
                      precision="fp32")  # fmt: skip
    spec = training.RunSpec(entry=MODELS["enas"], data="mnist", options=options, train=cfg,
                            run_dir=run_dir)  # fmt: skip
    return training.train(spec, progress=False)


def test_a_search_trains_the_controller_every_few_steps_and_repeats(data_root, tmp_path):
    search(tmp_path / "a")
    rows = read_metrics(tmp_path / "a")
    assert ["reward" in r for r in rows] == [False, True, False, True]
    assert all(0 <= r["reward"] <= 1 for r in rows if "reward" in r)
    torch.manual_seed(0)
    initial = MODELS["enas"].build(TINY).state_dict()
    trained = read_checkpoint(tmp_path / "a")["model"]
    moved = [k for k in initial if k.startswith("controller.") and not torch.equal(initial[k],
                                                                                  trained[k])]  # fmt: skip
    assert moved and bool(trained["rewarded"]) and 0 < float(trained["baseline"]) <= 1
    search(tmp_path / "b")
    assert read_metrics(tmp_path / "b") == rows


def test_evaluation_names_an_architecture_that_arch_trains_alone(data_root, tmp_path, capsys):
    search(tmp_path / "s", steps=2)
    _, model, _ = training.load(MODELS["enas"], tmp_path / "s")
    splits = MODELS["enas"].load_data("mnist", None, TINY)
    result = MODELS["enas"].evaluate(model, TINY, splits, n=50, seed=0, candidates=4)
    assert result["candidates"] == 4 and 0 <= result["val_accuracy"] <= 1
    child = ENASConfig(cells=2, channels=4, arch=result["arch"])
    assert child.space.describe(child.fixed_arch) == result["description"]
    assert result["parameters_of_the_child"] < sum(p.numel() for p in model.net.parameters())
    assert main(["train", "enas", "--cells", "2", "--arch", "1,7,0", "--steps", "1",
                 "--out", str(tmp_path / "bad")]) == 2  # fmt: skip
    assert "--arch 1,7,0: architecture decision 1 must be in 0..3" in capsys.readouterr().err


@pytest.mark.parametrize("kind", ["nas", "random"])
def test_searches_from_scratch_keep_the_best_child_they_scored(data_root, tmp_path, kind):
    options = dataclasses.replace(TINY, search=kind, child_steps=3)
    search(tmp_path / "a", steps=3, options=options)
    rows = read_metrics(tmp_path / "a")
    assert [r["children"] for r in rows] == [3, 6, 9]
    best = [r["best_reward"] for r in rows]
    assert best == sorted(best) and best[-1] >= max(r["reward"] for r in rows)
    _, model, _ = training.load(MODELS["enas"], tmp_path / "a")
    assert (model.controller is None) == (kind == "random") and model.net is None
    result = MODELS["enas"].evaluate(model, options, None)
    assert result["children"] == 9 and result["best_reward"] == best[-1]
    assert ENASConfig(cells=2, channels=4, arch=result["arch"]).fixed_arch is not None
    [picture] = architecture_pictures(model, options, None, tmp_path / "pictures", seed=0)
    assert picture.name == "architecture.png" and picture.stat().st_size > 1000
    if kind == "nas":  # the controller learned from the children's scores
        torch.manual_seed(0)
        initial = MODELS["enas"].build(options).state_dict()
        assert not torch.equal(initial["controller.start"], model.controller.start.detach())
    search(tmp_path / "b", steps=3, options=options)
    assert read_metrics(tmp_path / "b") == rows


def test_a_child_trained_from_scratch_learns_and_repeats_under_its_generator(data_root):
    splits = MODELS["enas"].load_data("mnist", None, TINY)
    cfg = TrainConfig(batch_size=32, lr=3e-3, threads=1)
    space, arch = dataclasses.replace(TINY, channels=16).space, [0, 0, 1]

    def trained(seed):
        return train_child(space, arch, splits.train_x, splits.train_y, cfg, 80,
                           torch.Generator().manual_seed(seed))  # fmt: skip

    net = trained(0)
    assert set(net.state_dict()) == set(SuperNet(space, arch).state_dict())
    with torch.no_grad():
        fit = accuracy(net(splits.train_x.float() / 255, arch), splits.train_y)
    assert fit > 0.5  # 64 training images, 10 classes: chance is 0.1
    again, other = trained(0), trained(1)
    assert all(torch.equal(a, b) for a, b in zip(net.parameters(), again.parameters(), strict=True))
    assert not torch.equal(net.head.weight, other.head.weight)


def test_arch_with_a_search_is_one_line(tmp_path, capsys):
    assert main(["train", "enas", "--arch", "0", "--cells", "1", "--search", "nas", "--steps", "1",
                 "--out", str(tmp_path / "x")]) == 2  # fmt: skip
    assert "--arch trains one architecture; it takes no --search nas" in capsys.readouterr().err
