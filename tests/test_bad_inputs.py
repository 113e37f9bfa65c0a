"""Mistakes a new user makes, each answered by one clean line: a non-zero exit, no traceback, at
most a few lines naming the problem, and the run directory still usable afterwards.

Every case runs `genlab` in-process on a copy of one small trained VAE run (`RUN` in the
arguments) or on fresh paths. `setup(run, tmp)` spoils what the case needs spoiled first.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from genlab.cli import main

TINY = ["--latent-dim", "2", "--channels", "4", "--hidden", "16", "--batch-size", "8", "--quiet"]


def write(name: str, data: bytes) -> Callable[[Path, Path], None]:
    return lambda run, tmp: (run / name).write_bytes(data)


def truncate(name: str, keep: float) -> Callable[[Path, Path], None]:
    def spoil(run: Path, tmp: Path) -> None:
        data = (run / name).read_bytes()
        (run / name).write_bytes(data[: int(len(data) * keep)])

    return spoil


def checkpoint_edit(edit: Callable[[dict], None]) -> Callable[[Path, Path], None]:
    def spoil(run: Path, tmp: Path) -> None:
        ckpt = torch.load(run / "checkpoint.pt", weights_only=True)
        edit(ckpt)
        torch.save(ckpt, run / "checkpoint.pt")

    return spoil


def config_edit(edit: Callable[[dict], None]) -> Callable[[Path, Path], None]:
    def spoil(run: Path, tmp: Path) -> None:
        config = json.loads((run / "config.json").read_text())
        edit(config)
        (run / "config.json").write_text(json.dumps(config))

    return spoil


def nothing(run: Path, tmp: Path) -> None:
    pass


TRAIN = ["train", "vae", "--steps", "3", "--out", "RUN", *TINY]
# (id, argv, setup, run still usable afterwards)
CASES = [
    # training options out of range or not numbers: refused before anything is written
    ("lr-nan", [*TRAIN, "--lr", "nan"], nothing, True),
    ("lr-negative", [*TRAIN, "--lr", "-1"], nothing, True),
    ("lr-inf", [*TRAIN, "--lr", "inf"], nothing, True),
    ("lr-word", [*TRAIN, "--lr", "fast"], nothing, True),
    ("ema-decay-1.5", [*TRAIN, "--ema-decay", "1.5"], nothing, True),
    ("ema-decay-0", [*TRAIN, "--ema-decay", "0"], nothing, True),
    ("grad-clip-negative", [*TRAIN, "--grad-clip", "-1"], nothing, True),
    ("grad-clip-0", [*TRAIN, "--grad-clip", "0"], nothing, True),
    ("steps-0", ["train", "vae", "--steps", "0", "--out", "RUN", *TINY], nothing, True),
    ("steps-negative", ["train", "vae", "--steps", "-5", "--out", "RUN", *TINY], nothing, True),
    ("minutes-0", ["train", "vae", "--minutes", "0", "--out", "RUN", *TINY], nothing, True),
    ("minutes-negative", ["train", "vae", "--minutes", "-1", "--out", "RUN", *TINY], nothing, True),
    ("no-budget", ["train", "vae", "--out", "RUN", *TINY], nothing, True),
    ("steps-and-frames", [*TRAIN, "--frames", "100"], nothing, True),
    ("threads-negative", [*TRAIN, "--threads", "-1"], nothing, True),
    ("threads-0", [*TRAIN, "--threads", "0"], nothing, True),
    ("batch-size-0", ["train", "vae", "--steps", "3", "--out", "RUN", "--batch-size", "0"],
     nothing, True),
    ("weight-decay-negative", [*TRAIN, "--weight-decay", "-0.1"], nothing, True),
    ("warmup-negative", [*TRAIN, "--warmup-steps", "-3"], nothing, True),
    ("seed-negative", [*TRAIN, "--seed", "-1"], nothing, True),
    ("checkpoint-every-0", [*TRAIN, "--checkpoint-every", "0"], nothing, True),
    ("log-every-0", [*TRAIN, "--log-every", "0"], nothing, True),
    ("schedule-unknown", [*TRAIN, "--schedule", "linear"], nothing, True),
    ("precision-fp16", [*TRAIN, "--precision", "fp16"], nothing, True),
    ("precision-bf16-classifier", ["train", "classifier", "--steps", "3", "--out", "RUN",
                                   "--precision", "bf16"], nothing, True),  # fmt: skip
    ("compile-gan", ["train", "dcgan", "--steps", "3", "--out", "RUN", "--compile"], nothing,
     True),  # fmt: skip
    ("nproc-0", [*TRAIN, "--nproc", "0"], nothing, True),
    # model options
    ("latent-dim-word", ["train", "vae", "--steps", "3", "--out", "RUN", "--latent-dim", "two"],
     nothing, True),
    ("likelihood-unknown", [*TRAIN, "--likelihood", "poisson"], nothing, True),
    ("model-option-nan", ["train", "vae", "--steps", "3", "--out", "RUN", "--gaussian-std", "nan"],
     nothing, True),
    ("resume-other-option", ["train", "vae", "--steps", "4", "--out", "RUN", "--latent-dim", "3"],
     nothing, True),
    ("resume-other-model", ["train", "ae", "--steps", "4", "--out", "RUN"], nothing, True),
    ("resume-other-data", [*TRAIN, "--data", "omniglot"], nothing, True),
    ("unknown-model", ["train", "vea", "--steps", "3"], nothing, True),
    ("unknown-flag", [*TRAIN, "--latent-dims", "3"], nothing, True),
    ("unknown-dataset", ["train", "vae", "--steps", "3", "--data", "cifar", "--out", "NEW"],
     nothing, True),
    ("init-from-missing", ["train", "vae", "--steps", "3", "--out", "NEW", "--init-from",
                           "NOWHERE"], nothing, True),
    ("init-from-another-model", ["train", "ae", "--steps", "3", "--out", "NEW", "--init-from",
                                 "RUN"], nothing, True),
    # where the run goes
    ("out-is-a-file", ["train", "vae", "--steps", "3", "--out", "FILE", *TINY], nothing, True),
    ("out-under-a-file", ["train", "vae", "--steps", "3", "--out", "FILE/run", *TINY], nothing,
     True),
    ("out-under-proc", ["train", "vae", "--steps", "3", "--out", "/proc/genlab-run", *TINY],
     nothing, True),
    # agents' environments
    ("env-minatar-unknown", ["train", "impala", "--env", "minatar:nonexistent", "--steps", "1",
                             "--out", "NEW"], nothing, True),
    ("env-gym-unknown", ["train", "impala", "--env", "gym:NotAnEnv-v0", "--steps", "1", "--out",
                         "NEW"], nothing, True),
    ("env-atari-unknown", ["train", "impala", "--env", "atari:NotAGame", "--steps", "1", "--out",
                           "NEW"], nothing, True),
    ("env-family-unknown", ["train", "impala", "--env", "pong", "--steps", "1", "--out", "NEW"],
     nothing, True),
    ("frames-for-a-vae", ["train", "vae", "--frames", "100", "--out", "NEW", *TINY], nothing, True),
    # eval
    ("eval-k-0", ["eval", "RUN", "--k", "0"], nothing, True),
    ("eval-n-0", ["eval", "RUN", "--n", "0"], nothing, True),
    ("eval-n-negative", ["eval", "RUN", "--n", "-3"], nothing, True),
    ("eval-samples-negative", ["eval", "RUN", "--samples", "-1"], nothing, True),
    ("eval-tasks-0", ["eval", "RUN", "--tasks", "0"], nothing, True),
    ("eval-episodes-0", ["eval", "RUN", "--episodes", "0"], nothing, True),
    ("eval-no-run", ["eval", "NEW"], nothing, True),
    ("eval-a-file", ["eval", "FILE"], nothing, True),
    ("eval-cannot-write", ["eval", "RUN", "--k", "1", "--n", "4", "--samples", "0"],
     lambda run, tmp: (run / "eval.json").mkdir(), False),
    # sample and latent
    ("sample-n-0", ["sample", "RUN", "--n", "0", "--out", "NEW.png"], nothing, True),
    ("sample-n-negative", ["sample", "RUN", "--n", "-1", "--out", "NEW.png"], nothing, True),
    ("sample-n-huge", ["sample", "RUN", "--n", str(10**12), "--out", "NEW.png"], nothing, True),
    ("sample-out-folder", ["sample", "RUN", "--n", "4", "--out", "DIR/"], nothing, True),
    ("sample-out-no-suffix", ["sample", "RUN", "--n", "4", "--out", "NEW"], nothing, True),
    ("sample-set-unknown", ["sample", "RUN", "--out", "NEW.png", "--set", "colour=red"], nothing,
     True),
    ("sample-set-malformed", ["sample", "RUN", "--out", "NEW.png", "--set", "guidance"], nothing,
     True),
    ("sample-set-changes-weights", ["sample", "RUN", "--out", "NEW.png", "--set",
                                    "latent_dim=3"], nothing, True),
    ("sample-an-autoencoder", ["sample", "AE", "--out", "NEW.png"], nothing, True),
    ("latent-no-run", ["latent", "NEW"], nothing, True),
    # spoiled run files: each verb names the file
    ("config-not-json", ["eval", "RUN"], write("config.json", b"{not json"), False),
    ("config-empty", ["sample", "RUN", "--out", "NEW.png"], write("config.json", b""), False),
    ("config-a-list", ["eval", "RUN"], write("config.json", b"[1, 2]"), False),
    ("config-no-model", ["eval", "RUN"], config_edit(lambda c: c.pop("model")), False),
    ("config-unknown-model", ["eval", "RUN"], config_edit(lambda c: c.update(model="vea")),
     False),
    ("config-bad-option", ["eval", "RUN"],
     config_edit(lambda c: c["model_options"].update(latent_dim="two")), False),
    ("config-unknown-option", ["sample", "RUN", "--out", "NEW.png"],
     config_edit(lambda c: c["model_options"].update(colour=1)), False),
    ("checkpoint-empty", ["eval", "RUN"], write("checkpoint.pt", b""), False),
    ("checkpoint-truncated", ["sample", "RUN", "--out", "NEW.png"],
     truncate("checkpoint.pt", 0.5), False),
    ("checkpoint-garbage", ["eval", "RUN"], write("checkpoint.pt", b"\x80\x02not a pickle"),
     False),
    ("checkpoint-resume-truncated", TRAIN, truncate("checkpoint.pt", 0.3), False),
    ("checkpoint-wrong-shape", ["eval", "RUN"],
     checkpoint_edit(lambda c: c["model"].update({k: v[:1] for k, v in c["model"].items()})),
     False),
    ("checkpoint-missing-weights", ["sample", "RUN", "--out", "NEW.png"],
     checkpoint_edit(lambda c: c["model"].clear()), False),
    ("checkpoint-no-step", ["eval", "RUN"], checkpoint_edit(lambda c: c.pop("step")), False),
    ("checkpoint-resume-no-optimizer", TRAIN, checkpoint_edit(lambda c: c.pop("optimizers")),
     False),
    ("metrics-bad-middle-line", TRAIN, write("metrics.jsonl", b'{"step": 1}\nzzz\n{"step": 2}\n'),
     False),
    # data and worldmodels
    ("data-check-unknown", ["data", "check", "--dataset", "cifar"], nothing, True),
    ("data-dir-missing", ["train", "vae", "--steps", "1", "--out", "NEW", "--data-dir",
                          "NOWHERE", *TINY], nothing, True),
    ("worldmodels-no-stage", ["worldmodels"], nothing, True),
    ("worldmodels-eval-nothing", ["worldmodels", "eval", "NEW"], nothing, True),
    ("worldmodels-train-c-no-budget", ["worldmodels", "train-c", "NEW"], nothing, True),
    ("worldmodels-train-m-no-v", ["worldmodels", "train-m", "NEW", "--steps", "1"], nothing, True),
    ("worldmodels-popsize-1", ["worldmodels", "train-c", "NEW", "--popsize", "1",
                               "--generations", "1"], nothing, True),
    ("worldmodels-collect-0", ["worldmodels", "collect", "NEW", "--episodes", "0"], nothing,
     True),
]  # fmt: skip


@pytest.fixture(scope="module")
def trained(data_root, tmp_path_factory) -> dict[str, Path]:
    """A 2-step VAE run and a 1-step autoencoder run, made once."""
    root = tmp_path_factory.mktemp("trained")
    assert main(["train", "vae", "--steps", "2", "--out", str(root / "vae"), *TINY]) == 0
    assert main(["train", "ae", "--steps", "1", "--out", str(root / "ae"), *TINY]) == 0
    return {"vae": root / "vae", "ae": root / "ae"}


def run_cli(argv: list[str], capsys) -> tuple[int, str]:
    """Exit code and stderr of `genlab argv`; any exception escaping is the failure looked for."""
    try:
        code = main(argv)
    except SystemExit as e:  # argparse's own exit
        code = e.code
    return code, capsys.readouterr().err


def test_there_are_enough_cases():
    assert len(CASES) >= 60 and len({c[0] for c in CASES}) == len(CASES)


@pytest.mark.parametrize(("argv", "setup", "usable"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])  # fmt: skip
def test_a_bad_input_gets_one_clean_line(argv, setup, usable, trained, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(trained["vae"], run)
    (tmp_path / "afile").write_text("not a folder\n")
    places = {"RUN": run, "NEW": tmp_path / "new", "FILE": tmp_path / "afile",
              "DIR": tmp_path, "AE": trained["ae"], "NOWHERE": tmp_path / "nowhere"}  # fmt: skip
    args = []
    for a in argv:
        for name, path in places.items():
            if a == name or a.startswith(name + "/") or a.startswith(name + "."):
                a = str(path) + a[len(name) :]
        args.append(a)
    setup(run, tmp_path)
    before = sorted(p.name for p in run.iterdir())
    capsys.readouterr()
    code, err = run_cli(args, capsys)
    assert code not in (0, None), f"exit {code} for {args}"
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert 1 <= len(lines) <= 3, err
    assert len(lines[-1]) < 600, lines[-1]
    if usable:  # nothing written that spoils the run: it evaluates and trains on
        assert sorted(p.name for p in run.iterdir()) == before
        assert main(["eval", str(run), "--k", "1", "--n", "4", "--samples", "0"]) == 0
        assert main(["train", "vae", "--steps", "3", "--out", str(run), *TINY]) == 0
    assert not (tmp_path / "new").exists() or any((tmp_path / "new").iterdir())
