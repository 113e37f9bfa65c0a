"""The wide ResNet's data and augmentation: disjoint subsets, seeded augmented batches, PBA
schedules from files, and a short run through the CLI with a schedule."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from genlab.cli import main
from genlab.data import augment
from genlab.errors import ConfigError
from genlab.meta import pba
from genlab.models.wide_resnet import WideResNet, WRNConfig
from genlab.tasks.augmentation import (
    AugmentedBatches,
    augmentation,
    load_data,
    read_schedule,
    schedule_json,
    schedule_panels,
    schedule_picture,
)


def test_subsets_are_disjoint_and_sized(data_root):
    splits = load_data("mnist", None, WRNConfig(train_images=300, val_images=200))
    assert len(splits.train_x) == 300 and len(splits.val_x) == 200 and len(splits.test_x) == 10000
    train = {bytes(x.numpy()) for x in splits.train_x}
    assert not train & {bytes(x.numpy()) for x in splits.val_x}
    again = load_data("mnist", None, WRNConfig(train_images=300, val_images=200))
    assert torch.equal(again.train_x, splits.train_x)  # the same subset every time
    with pytest.raises(ConfigError, match="need more than the 60000 training images"):
        load_data("mnist", None, WRNConfig(train_images=59000, val_images=5000))


def test_omniglot_splits_are_background_characters_by_drawer(data_root):
    from genlab.data import omniglot
    from genlab.data.images import omniglot_characters

    d = omniglot.load(None)
    full = omniglot_characters(None)
    # drawers 1-15 of each of the 964 background characters to train on, 16-20 to test
    assert len(full.train_x) == 964 * 15 and len(full.test_x) == 964 * 5
    assert torch.equal(torch.bincount(full.test_y), torch.full((964,), 5))
    # an image's label is its character: the first character's first test drawing is drawer 16
    first = d["images"][d["background"] & (d["character"] == d["character"][d["background"]].min())]
    assert torch.equal(full.test_x[full.test_y == 0][0, 0], first[15])
    splits = load_data("omniglot", None, WRNConfig(train_images=2000, val_images=1000,
                                                    n_classes=964))  # fmt: skip
    assert len(splits.train_x) == 2000 and len(splits.val_x) == 1000
    assert torch.equal(splits.test_y, full.test_y)
    with pytest.raises(ConfigError, match="--n-classes 10 is too few for omniglot's 964 classes"):
        load_data("omniglot", None, WRNConfig(train_images=2000, val_images=1000))


def test_schedules_round_trip_and_bad_files_are_one_line(tmp_path):
    rng = np.random.default_rng(0)
    schedule = [(0, pba.random_policy(rng)), (500, pba.random_policy(rng))]
    path = tmp_path / "schedule.json"
    path.write_text(json.dumps(schedule_json(schedule)))
    back = read_schedule(path)
    assert [s for s, _ in back] == [0, 500]
    assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(back, schedule, strict=True))
    path.write_text('{"schedule": [{"step": 0, "policy": {"blur": [[1, 1]]}}]}')
    with pytest.raises(ConfigError, match="schedule.json: not a PBA schedule .*blur"):
        read_schedule(path)
    with pytest.raises(ConfigError, match="go together"):
        WRNConfig(augment="pba")


def test_the_schedule_picture_sums_each_operations_slots_at_each_change(tmp_path):
    later = pba.empty_policy()
    rotate = pba.NAMES.index("rotate")
    later[rotate] = [[5, 9], [10, 0]]  # probabilities 0.5 and 1.0, magnitudes 1.0 and 0.0
    panels = schedule_panels([(0, pba.empty_policy()), (40, later)])
    probability, magnitude = panels.values()
    assert probability["rotate"] == ([0, 40], [0.0, 1.5]) and magnitude["rotate"] == (
        [0, 40],
        [0.0, 1.0],
    )
    assert all(ys == [0.0, 0.0] for name, (_, ys) in probability.items() if name != "rotate")
    path = schedule_picture([(0, pba.empty_policy()), (40, later)], 100, tmp_path / "s.png")
    assert path.stat().st_size > 1000


def test_augmented_batches_are_seeded_by_step_and_follow_the_schedule(data_root, tmp_path):
    splits = load_data("mnist", None, WRNConfig(train_images=256, val_images=10))
    invert = pba.empty_policy()
    invert[pba.NAMES.index("invert")] = [(pba.PROB_LEVELS, 0), (0, 0)]
    path = tmp_path / "s.json"
    path.write_text(json.dumps(schedule_json([(3, invert)])))
    options = WRNConfig(augment="pba", pba_schedule=str(path))
    batches = AugmentedBatches(splits, 64, 0, augmentation(options, 0))
    plain = AugmentedBatches(splits, 64, 0, None)
    assert torch.equal(batches.batch(2)["x"], plain.batch(2)["x"])  # before the schedule starts
    later, base = batches.batch(3)["x"], plain.batch(3)["x"]
    inverted = torch.isclose(later, 1 - base).all((1, 2, 3))
    assert 0.6 < inverted.float().mean() < 0.95  # PBA applies 0 operations one time in 5
    assert torch.equal(batches.batch(3)["x"], later)  # seeded by step: a resume sees the same


def test_a_policy_on_the_standard_base_is_the_policy_then_the_shift_and_rotation(tmp_path):
    x = torch.rand(16, 1, 28, 28)
    invert = pba.empty_policy()
    invert[pba.NAMES.index("invert")] = [(pba.PROB_LEVELS, 0), (0, 0)]
    path = tmp_path / "s.json"
    path.write_text(json.dumps(schedule_json([(0, invert)])))
    alone = augmentation(WRNConfig(augment="pba", pba_schedule=str(path)), 0)
    based = augmentation(
        WRNConfig(augment="pba", pba_schedule=str(path), base_augment="standard"), 0
    )
    g = torch.Generator().manual_seed(5)
    expected = augment.standard(pba.apply_policy(x, invert, g), g)  # the same draws, in order
    got = based(x, 0, torch.Generator().manual_seed(5))
    assert torch.equal(got, expected)
    assert not torch.equal(got, alone(x, 0, torch.Generator().manual_seed(5)))
    with pytest.raises(ConfigError, match="--base-augment standard goes under a policy"):
        WRNConfig(augment="none", base_augment="standard")
    with pytest.raises(ConfigError, match="base_augment must be one of none, standard"):
        WRNConfig(augment="random", base_augment="crop")
    with pytest.raises(ConfigError, match="eval_bn must be one of clean, running, got 'train'"):
        WRNConfig(eval_bn="train")


def test_wide_resnet_shapes_and_depth_rule():
    net = WideResNet(WRNConfig(depth=16, widen=1))
    assert net(torch.rand(3, 1, 28, 28)).shape == (3, 10)
    assert sum(isinstance(m, torch.nn.Conv2d) for m in net.modules()) == 1 + 6 * 2 + 2
    with pytest.raises(ConfigError, match="depth must be 6n \\+ 4"):
        WRNConfig(depth=12)


def test_a_short_run_with_a_schedule_through_the_cli(data_root, tmp_path, capsys):
    rng = np.random.default_rng(1)
    path = tmp_path / "schedule.json"
    path.write_text(json.dumps(schedule_json([(0, pba.random_policy(rng))])))
    out = tmp_path / "run"
    assert main(["train", "wrn", "--widen", "1", "--train-images", "256", "--val-images", "100",
                 "--augment", "pba", "--pba-schedule", str(path), "--steps", "3",
                 "--batch-size", "32", "--out", str(out), "--quiet"]) == 0  # fmt: skip
    capsys.readouterr()
    assert main(["eval", str(out), "--n", "200", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert 0 <= result["test_error"] <= 100 and result["train_images"] == 256
