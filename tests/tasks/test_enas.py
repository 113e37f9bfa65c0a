"""ENAS's search through the one training loop: the controller learns from rewards, the run
repeats under its seed, and evaluation names an architecture that `--arch` takes back."""

from __future__ import annotations

import torch

from genlab.cli import main
from genlab.meta.nas import ENASConfig
from genlab.tasks import training
from genlab.tasks.registry import MODELS
from genlab.train.config import TrainConfig
from genlab.train.logger import read_metrics
from genlab.train.state import read_checkpoint

TINY = ENASConfig(cells=2, channels=4, controller_every=2, controller_samples=3, val_batch=32,
                  train_images=64, val_images=64)  # fmt: skip


def search(run_dir, steps=4):
    cfg = TrainConfig(steps=steps, batch_size=16, log_every=1, checkpoint_every=steps, threads=1,
                      precision="fp32")  # fmt: skip
    spec = training.RunSpec(entry=MODELS["enas"], data="mnist", options=TINY, train=cfg,
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
