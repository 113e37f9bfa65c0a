"""The linear probe's table (stratified draws, intervals, the supervised baseline) on made-up
images, and `genlab probe` on a few-step CPC run on MNIST."""

from __future__ import annotations

import json

import pytest
import torch

from genlab.cli import main
from genlab.data.images import ImageSplits
from genlab.models.cpc import CPC, CPCConfig
from genlab.tasks import representation
from genlab.tasks.representation import (
    Labelled,
    label_counts,
    omniglot_characters,
    pixels,
    probe,
    supervised_trainer,
)


def two_bars(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """16x16 uint8 images in noise: class 0 a bright horizontal band, class 1 a faint one."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(2).repeat(n // 2)
    x = torch.randint(0, 60, (n, 1, 16, 16), generator=g, dtype=torch.uint8)
    x[y == 0, :, 6:10] = 250
    x[y == 1, :, 6:10] = 120
    return x, y


def splits() -> ImageSplits:
    (tx, ty), (vx, vy) = two_bars(40, 0), two_bars(20, 1)
    return ImageSplits(tx, ty, vx, vy, ("bright", "faint"))


def test_label_counts_parse_and_refuse_nonsense():
    assert label_counts("1,5,all") == [1, 5, None]
    with pytest.raises(ValueError):
        label_counts("0,5")


def test_probe_rows_draws_and_repeatability():
    data = splits()
    noise = lambda x: torch.randn(len(x), 3, generator=torch.Generator().manual_seed(len(x)))  # noqa: E731
    table = probe({"pixels": pixels, "noise": noise}, data, [1, 3, None], draws=4, l2=1e-2)
    assert table["labels_per_class"] == ["1", "3", "all"]
    assert len(table["rows"]["pixels"]["1"]["draws"]) == 4
    assert len(table["rows"]["pixels"]["all"]["draws"]) == 1
    assert table["rows"]["pixels"]["all"]["accuracy"] == 100.0
    assert table["rows"]["noise"]["all"]["accuracy"] < 90  # the probe reads the features given
    again = probe({"pixels": pixels, "noise": noise}, data, [1, 3, None], draws=4, l2=1e-2)
    assert again["rows"] == table["rows"]
    other = probe({"pixels": pixels}, data, [1], draws=4, l2=1e-2, seed=1)
    assert other["rows"]["pixels"]["1"]["draws"] != table["rows"]["pixels"]["1"]["draws"]


def test_supervised_baseline_trains_the_same_network_on_the_labels_alone():
    options = CPCConfig(channels=4, code_dim=8, context_dim=8, image_size=16, patch=4, stride=2)
    train = supervised_trainer(CPC, options, n_classes=2, steps=100, lr=3e-3)
    x, y = two_bars(10, 2)
    scores = train(x, y)
    test_x, test_y = two_bars(20, 3)
    assert (scores(test_x).argmax(1) == test_y).all()
    table = probe({}, splits(), [5], draws=2, l2=1e-2, supervised=train)
    assert table["rows"]["supervised"]["5"]["accuracy"] == 100.0


def test_probe_of_a_cpc_run_through_the_cli(tmp_path, data_root, capsys):
    run = tmp_path / "cpc"
    assert main(["train", "cpc", "--steps", "3", "--channels", "4", "--code-dim", "8",
                 "--context-dim", "8", "--batch-size", "8", "--quiet", "--out", str(run)]) == 0  # fmt: skip
    assert main(["eval", str(run), "--n", "100"]) == 0
    capsys.readouterr()
    assert main(["probe", str(run), "--labels", "1,2", "--draws", "2", "--n", "100",
                 "--json"]) == 0  # fmt: skip
    result = json.loads(capsys.readouterr().out)["tasks"]["digit"]
    assert set(result["rows"]) == {"run", "pixels", "untrained"}
    assert result["test_examples"] == 100 and result["labels_per_class"] == ["1", "2"]
    saved = json.loads((run / "eval.json").read_text())
    assert "acc_2" in saved and saved["probe"]["tasks"]["digit"] == result  # eval kept
    assert (run / "pictures" / "label_efficiency.png").stat().st_size > 0
    assert main(["probe", str(run), "--labels", "1", "--draws", "1", "--n", "100",
                 "--set", "probe_regions=1", "--mlp", "--json"]) == 0  # fmt: skip
    again = json.loads(capsys.readouterr().out)
    assert again["overrides"] == ["probe_regions=1"] and again["mlp"]
    assert set(again["tasks"]["digit"]["rows"]) == {"run", "run+mlp", "pixels", "untrained"}
    assert main(["probe", str(run), "--set", "code_dim=4"]) == 2  # that one has weights
    assert "would change the network" in capsys.readouterr().err
    assert main(["eval", str(run), "--n", "50"]) == 0  # a later evaluation keeps the probe
    saved = json.loads((run / "eval.json").read_text())
    assert saved["n"] == 50 and saved["probe"]["overrides"] == ["probe_regions=1"]


def test_probe_mistakes_are_one_line(tmp_path, data_root, capsys):
    cls = tmp_path / "cls"
    assert main(["train", "classifier", "--steps", "1", "--quiet", "--out", str(cls)]) == 0
    capsys.readouterr()
    assert main(["probe", str(cls)]) == 2
    err = capsys.readouterr().err
    assert "model 'classifier' has no representation to probe" in err
    with pytest.raises(SystemExit):
        main(["probe", str(cls), "--labels", "0"])
    err = capsys.readouterr().err
    assert "labels per class as positive integers" in err and len(err.strip().splitlines()) == 1


def test_speech_probe_of_a_cpc_audio_run_reads_digits_and_speakers(tmp_path, data_root, capsys):
    run = tmp_path / "cpc_audio"
    # `cpc --data fsdd` is the speech model, with its own options (--crop)
    assert main(["train", "cpc", "--data", "fsdd", "--steps", "2", "--channels", "8",
                 "--code-dim", "8", "--context-dim", "8", "--crop", "800", "--batch-size", "4",
                 "--quiet", "--out", str(run)]) == 0  # fmt: skip
    assert json.loads((run / "config.json").read_text())["model"] == "cpc_audio"
    capsys.readouterr()
    assert main(["probe", str(run), "--labels", "2,all", "--draws", "2", "--json"]) == 0
    tasks = json.loads(capsys.readouterr().out)["tasks"]
    assert set(tasks) == {"digit", "speaker"}
    for task, classes in (("digit", 10), ("speaker", 6)):
        table = tasks[task]
        assert table["classes"] == classes and table["test_examples"] == 300
        assert set(table["rows"]) == {"run", "log_mel", "untrained"}
        assert len(table["rows"]["log_mel"]["2"]["draws"]) == 2
    # every training label: log-mel statistics name the speaker far above chance (1 in 6)
    assert tasks["speaker"]["rows"]["log_mel"]["all"]["accuracy"] > 60
    assert (run / "pictures" / "label_efficiency_speaker.png").is_file()


def test_omniglot_probe_labels_held_out_drawers_of_unseen_characters(
    tmp_path, data_root, capsys, monkeypatch
):
    task = omniglot_characters()
    assert int(task.train_y.max()) + 1 == 659
    assert torch.equal(task.train_y.bincount(), torch.full((659,), 15))
    assert torch.equal(task.test_y.bincount(), torch.full((659,), 5))
    # the probe itself on the first 30 characters (659 classes take minutes to fit)
    few = Labelled(*(t[y < 30] for t, y in ((task.train_x, task.train_y),
                     (task.train_y, task.train_y), (task.test_x, task.test_y),
                     (task.test_y, task.test_y))))  # fmt: skip
    monkeypatch.setattr(representation, "omniglot_characters", lambda data_dir=None: few)
    run = tmp_path / "rot"
    assert main(["train", "rotnet", "--data", "omniglot", "--steps", "2", "--channels", "4",
                 "--code-dim", "8", "--quiet", "--out", str(run)]) == 0  # fmt: skip
    capsys.readouterr()
    assert main(["probe", str(run), "--labels", "1,15", "--draws", "2", "--json"]) == 0
    table = json.loads(capsys.readouterr().out)["tasks"]["character"]
    assert table["classes"] == 30 and table["test_examples"] == 150
    assert table["rows"]["pixels"]["15"]["accuracy"] > 100 / 30 * 3  # well above chance


@pytest.mark.parametrize(("model", "data", "flags", "task"), [
    ("wgan_gp", "mnist", ["--channels", "4", "--latent-dim", "4"], "digit"),
    ("maml", "omniglot", ["--channels", "4", "--batch-size", "2"], "character"),
])  # fmt: skip
def test_a_critic_and_a_meta_learned_trunk_are_probed_too(
    model, data, flags, task, tmp_path, data_root, capsys, monkeypatch
):
    few = omniglot_characters()
    few = Labelled(few.train_x[few.train_y < 10], few.train_y[few.train_y < 10],
                   few.test_x[few.test_y < 10], few.test_y[few.test_y < 10])  # fmt: skip
    monkeypatch.setattr(representation, "omniglot_characters", lambda data_dir=None: few)
    run = tmp_path / model
    assert main(["train", model, "--data", data, "--steps", "2", *flags, "--quiet",
                 "--out", str(run)]) == 0  # fmt: skip
    capsys.readouterr()
    assert main(["probe", str(run), "--labels", "2", "--draws", "2", "--n", "200", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["tasks"][task]["rows"]
    assert set(rows) == {"run", "pixels", "untrained"}
