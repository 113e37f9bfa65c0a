"""The command line: help, one-line errors, and a few-step smoke run of every verb on real MNIST."""

from __future__ import annotations

import json
import signal
import time

import pytest
import torch

from contracts import genlab_process as cli
from genlab.cli import main
from genlab.train.logger import read_metrics
from genlab.train.state import read_checkpoint

TINY = ["--latent-dim", "2", "--channels", "4", "--hidden", "16", "--batch-size", "32", "--quiet"]


def run(*args: str) -> int:
    return main([str(a) for a in args])


@pytest.mark.parametrize(
    "verb", ["train", "eval", "sample", "latent", "runs", "data check", "studio"]
)
def test_every_verb_has_help_with_defaults(verb, capsys):
    with pytest.raises(SystemExit) as e:
        main([*verb.split(), "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "usage: genlab" in out
    if verb == "train":
        assert "--steps" in out and "--minutes" in out and "default" in out


def test_model_options_appear_in_model_help(capsys):
    with pytest.raises(SystemExit):
        main(["train", "vae", "--help"])
    out = capsys.readouterr().out
    assert "--latent-dim" in out and "(default: 32)" in out and "--likelihood" in out


@pytest.mark.parametrize(
    "argv, message",
    [
        (
            ["train", "nosuchmodel", "--steps", "1"],
            "unknown model 'nosuchmodel'; available: vae, ae",
        ),
        (["train", "spiral", "--steps", "1", "--env", "minatar:breakout"], "SPIRAL paints"),
        (
            ["train", "vae", "--data", "fsdd", "--steps", "1"],
            "model 'vae' trains on mnist, omniglot",
        ),
        (["train", "vae"], "give a budget"),
        (["train", "vae", "--steps", "1", "--likelihood", "poisson"], "likelihood must be one of"),
        (["eval", "/nonexistent/run"], "no run at '/nonexistent/run'"),
        (["sample", "/nonexistent/run", "--out", "x.png"], "no run at"),
    ],
)
def test_user_mistakes_are_one_line_errors(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and err.startswith("genlab: error:") and "Traceback" not in err
    assert len(err.splitlines()) == 1


def test_train_eval_sample_latent_runs_end_to_end(data_root, tmp_path, capsys):
    out = tmp_path / "vae"
    assert run("train", "vae", "--steps", 6, "--log-every", 2, "--out", out, *TINY) == 0
    printed = capsys.readouterr().out
    assert f"run: {out}" in printed and "pictures" in printed
    assert {p.name for p in (out / "pictures").iterdir()} >= {
        "samples.png", "reconstructions.png", "interpolation_linear.png",
        "interpolation_spherical.png", "latent_scatter.png",
    }  # fmt: skip
    assert any(p.name.startswith("attribute_") for p in (out / "pictures").iterdir())
    config = json.loads((out / "config.json").read_text())
    assert config["model_options"]["latent_dim"] == 2 and config["train"]["steps"] == 6

    assert run("eval", out, "--json", "--k", 4, "--n", 20, "--samples", 0) == 0
    result = json.loads(capsys.readouterr().out)
    assert {"nll_nats", "neg_elbo_nats", "kl_nats", "rec_nats"} <= set(result)
    assert result["nll_nats"] <= result["neg_elbo_nats"] and result["n"] == 20
    assert result["step"] == 6

    assert run("sample", out, "--n", 9, "--out", tmp_path / "s.png") == 0
    assert (tmp_path / "s.png").stat().st_size > 100
    assert run("runs", tmp_path) == 0
    table = capsys.readouterr().out
    assert str(out) in table and "nll_nats" in table


def test_training_again_on_the_same_out_resumes_to_the_new_budget(data_root, tmp_path, capsys):
    out = tmp_path / "vae"
    assert (
        run("train", "vae", "--steps", 7, "--log-every", 1, "--out", tmp_path / "ref", *TINY) == 0
    )
    assert run("train", "vae", "--steps", 4, "--log-every", 1, "--out", out, *TINY) == 0
    assert run("train", "vae", "--steps", 7, "--out", out, "--quiet") == 0
    assert read_checkpoint(out)["step"] == 7
    assert [r["step"] for r in read_metrics(out)] == list(range(1, 8))
    assert [r["loss"] for r in read_metrics(out)] == [
        r["loss"] for r in read_metrics(tmp_path / "ref")
    ]
    assert "resuming" in capsys.readouterr().err
    # Changing what the run is made of is refused, in one line.
    assert run("train", "vae", "--steps", 9, "--out", out, "--latent-dim", 8) == 2
    assert "has latent_dim=2; cannot resume with 8" in capsys.readouterr().err
    assert run("train", "vae", "--steps", 9, "--out", out, "--lr", 0.1) == 2
    assert "has lr=0.001; cannot resume with 0.1" in capsys.readouterr().err
    assert run("train", "ae", "--steps", 9, "--out", out) == 2
    assert "is a 'vae' run, not 'ae'" in capsys.readouterr().err


def test_init_from_fine_tunes_another_runs_weights(data_root, tmp_path, capsys):
    source, tuned = tmp_path / "source", tmp_path / "tuned"
    assert run("train", "vae", "--steps", 3, "--out", source, *TINY) == 0
    # lr 0: the one step changes nothing, so the run holds exactly the source's weights.
    argv = ["train", "vae", "--steps", 1, "--lr", 0, "--batch-size", 32, "--quiet"]
    assert run(*argv, "--init-from", source, "--out", tuned) == 0
    config = json.loads((tuned / "config.json").read_text())
    assert config["model_options"]["latent_dim"] == 2  # options come from the source run
    assert config["train"]["init_from"] == str(source)
    want, got = read_checkpoint(source)["model"], read_checkpoint(tuned)["model"]
    assert read_checkpoint(tuned)["step"] == 1
    assert all(torch.equal(want[k], got[k]) for k in want)
    # Without --init-from the same command starts from a fresh initialisation.
    assert run(*argv, *TINY[:6], "--out", tmp_path / "fresh") == 0
    fresh = read_checkpoint(tmp_path / "fresh")["model"]
    assert not all(torch.equal(want[k], fresh[k]) for k in want)
    capsys.readouterr()
    # Options that keep the weights' shapes may change; others are refused, naming them.
    changed = ["--likelihood", "continuous_bernoulli"]
    assert run(*argv, "--init-from", source, "--out", tmp_path / "cb", *changed) == 0
    got = read_checkpoint(tmp_path / "cb")["model"]
    assert all(torch.equal(want[k], got[k]) for k in want)
    capsys.readouterr()
    assert run(*argv, "--init-from", source, "--out", tmp_path / "x", "--channels", 8) == 2
    err = capsys.readouterr().err
    assert "weights do not fit this model (options that differ: channels=8 here, 4 there)" in err
    assert not (tmp_path / "x").exists()  # nothing half-made to trip over on the next try
    assert run("train", "ae", "--steps", 1, "--init-from", source, "--out", tmp_path / "y") == 2
    assert "is a 'vae' run, not 'ae'" in capsys.readouterr().err


def test_an_autoencoder_cannot_sample(data_root, tmp_path, capsys):
    out = tmp_path / "ae"
    assert run("train", "ae", "--steps", 2, "--out", out, *TINY) == 0
    assert run("sample", out, "--out", tmp_path / "x.png") == 2
    assert "cannot sample; try `genlab latent" in capsys.readouterr().err


def test_ctrl_c_saves_a_checkpoint_and_exits_quickly(data_root, tmp_path):
    out = tmp_path / "run"
    proc = cli("train", "ae", "--steps", 100_000, "--log-every", 1, "--out", out, *TINY)
    deadline = time.monotonic() + 60
    while len(read_metrics(out)) < 5:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "training did not start"
        time.sleep(0.2)
    t0 = time.monotonic()
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "interrupted at step" in stdout and "Traceback" not in stderr
    step = read_checkpoint(out)["step"]
    assert step >= 5 and read_metrics(out)[-1]["step"] == step
    assert time.monotonic() - t0 < 10
    assert not (out / "pictures" / "samples.png").exists()  # final pictures: finished runs only


def test_two_processes_match_one_with_the_same_global_batch(data_root, tmp_path):
    """`--nproc 2`: torch.distributed (gloo on 127.0.0.1) averaging gradients over two halves of
    each batch follows the same trajectory as one process on the whole batch."""
    args = [
        "train",
        "ae",
        "--steps",
        5,
        "--log-every",
        1,
        *TINY,
        "--threads",
        1,
        "--precision",
        "fp32",
    ]  # bfloat16 would round the two sums differently
    assert run(*args, "--out", tmp_path / "one") == 0
    assert run(*args, "--out", tmp_path / "two", "--nproc", 2) == 0
    one, two = read_checkpoint(tmp_path / "one"), read_checkpoint(tmp_path / "two")
    assert two["step"] == 5
    for k in one["model"]:
        assert torch.allclose(one["model"][k], two["model"][k], atol=1e-5), k
    assert json.loads((tmp_path / "two" / "config.json").read_text())["nproc"] == 2
    l1 = [r["loss"] for r in read_metrics(tmp_path / "one")]
    l2 = [r["loss"] for r in read_metrics(tmp_path / "two")]  # rank 0's half of the batch
    assert l1[0] != l2[0] and abs(l1[-1] - l2[-1]) / l1[-1] < 0.2


def test_data_check_prints_a_table_of_verified_datasets(data_root, capsys):
    assert run("data", "check") == 0
    out = capsys.readouterr().out
    for line in ("mnist", "omniglot", "fsdd"):
        row = next(r for r in out.splitlines() if r.startswith(line))
        assert " ok " in row
    assert "train 60000, test 10000" in out and "1623 characters" in out and "3000 clips" in out


def test_data_check_fails_on_a_corrupt_file(data_root, tmp_path, capsys):
    import shutil

    shutil.copytree(data_root / "mnist", tmp_path / "mnist")
    (tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz").write_bytes(b"not gzip")
    assert run("data", "check", "--data-dir", tmp_path, "--dataset", "mnist") == 2
    captured = capsys.readouterr()
    assert "BAD" in captured.out and "t10k-labels-idx1-ubyte.gz" in captured.out
