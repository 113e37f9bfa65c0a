"""`genlab tune`: every trial a genlab run, a killed job resumed at the point it had asked for,
a failed trial recorded (and seen as the worst value so far) while the job goes on, and one-line
errors for a space or metric that cannot work."""

from __future__ import annotations

import json

import pytest

from genlab.cli import main
from genlab.tuning import Dimension, history, parse_space, running_best

TRAIN = ["--", "--steps", "2", "--batch-size", "8", "--threads", "1", "--latent-dim", "2",
         "--precision", "fp32", "--quiet"]  # fmt: skip
EVAL = ["--eval-n", "10", "--eval-k", "2"]


def tune(out, *flags: str) -> int:
    return main(["tune", "vae", "--metric", "nll_nats", "--out", str(out), "--quiet", *EVAL,
                 *flags, *TRAIN])  # fmt: skip


def test_each_trial_is_a_run_and_a_killed_job_resumes_at_its_saved_point(tmp_path, capsys):
    out = tmp_path / "job"
    assert tune(out, "--space", "lr=1e-4:1e-2:log", "--optimizer", "random", "--trials", "2") == 0
    assert "2 trials, 0 failed" in capsys.readouterr().out
    first = json.loads((out / "trial-001" / "trial.json").read_text())
    assert first["status"] == "ok" and 1e-4 <= first["params"]["lr"] <= 1e-2
    assert (out / "trial-001" / "eval.json").is_file()  # a normal run
    kept = (out / "trial-000" / "trial.json").stat().st_mtime_ns
    (out / "trial-001" / "trial.json").unlink()  # killed after asking, before its result
    (out / "trial-001" / "proposal.json").write_text(json.dumps({"x": [0.25]}))  # not random's
    assert tune(out, "--space", "lr=1e-4:1e-2:log", "--optimizer", "random", "--trials", "3") == 0
    again = json.loads((out / "trial-001" / "trial.json").read_text())
    assert again["x"] == [0.25] and again["params"]["lr"] == pytest.approx(10**-3.5)
    assert (out / "trial-000" / "trial.json").stat().st_mtime_ns == kept
    report = json.loads((out / "report.json").read_text())
    assert len(report["trials"]) == 3
    assert report["best"] == sorted(report["best"], reverse=True)  # a running minimum


def test_a_failed_trial_is_recorded_and_the_job_goes_on(tmp_path, capsys):
    out = tmp_path / "job"  # a learning rate of 1e8 makes the loss non-finite
    assert tune(out, "--space", "lr=1e7:1e8:log", "--optimizer", "optuna", "--trials", "2") == 0
    records = [json.loads((out / f"trial-00{i}" / "trial.json").read_text()) for i in (0, 1)]
    assert [r["status"] for r in records] == ["failed", "failed"]
    assert "NonFiniteError" in records[0]["error"] and len(records[0]["error"].splitlines()) == 1
    assert "2 trials, 2 failed" in capsys.readouterr().out
    xs, ys = history(records, maximise=False, dim=1)
    assert len(ys) == 0  # nothing succeeded: nothing to show a searcher


def test_a_failed_trial_counts_as_the_worst_value_so_far():
    records = [{"x": [0.0], "status": "ok", "value": 3.0}, {"x": [0.1], "status": "failed"},
               {"x": [0.2], "status": "ok", "value": 5.0}]  # fmt: skip
    xs, ys = history(records, maximise=False, dim=1)
    assert ys.tolist() == [3.0, 3.0, 5.0] and xs.shape == (3, 1)
    assert history(records, maximise=True, dim=1)[1].tolist() == [-3.0, -3.0, -5.0]
    assert running_best(records, maximise=False) == [3.0, 3.0, 3.0]
    assert running_best(records, maximise=True) == [3.0, 3.0, 5.0]


def test_the_neural_optimiser_tunes_with_a_network_of_the_spaces_dimension(tmp_path, capsys):
    net = tmp_path / "net"
    assert main(["train", "neural_bo", "--dim", "1", "--hidden", "8", "--horizon", "3",
                 "--steps", "1", "--out", str(net), "--quiet"]) == 0  # fmt: skip
    out = tmp_path / "job"
    assert tune(out, "--space", "lr=1e-4:1e-2:log", "--optimizer", "neural_bo", "--neural-bo",
                str(net), "--trials", "2") == 0  # fmt: skip
    assert "2 trials, 0 failed" in capsys.readouterr().out
    assert tune(tmp_path / "two", "--space", "lr=1e-4:1e-2:log,beta=0.5:2", "--optimizer",
                "neural_bo", "--neural-bo", str(net)) == 2  # fmt: skip
    assert "--dim 2" in capsys.readouterr().err


@pytest.mark.parametrize("space, message", [
    ("depth=1:3", "'depth' is not an option of `genlab train vae`"),
    ("lr=1e-2:1e-4:log", "LOW < HIGH"),
    ("lr=0:1:log", "LOW > 0"),
    ("lr=1e-4:1e-2:cubic", "NAME=LOW:HIGH"),
    ("lr=a:b", "not a number"),
])  # fmt: skip
def test_a_space_that_cannot_work_is_a_one_line_error(space, message):
    from genlab.errors import ConfigError

    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace("|", r"\|")):
        parse_space(space, "vae")


def test_a_metric_eval_does_not_report_stops_the_job_naming_those_it_does(tmp_path, capsys):
    out = tmp_path / "job"
    assert main(["tune", "vae", "--metric", "accuracy", "--out", str(out), "--quiet", *EVAL,
                 "--space", "lr=1e-4:1e-2:log", "--trials", "2", "--optimizer", "random",
                 *TRAIN]) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert "--metric accuracy" in err and "nll_nats" in err and len(err.splitlines()) == 1


def test_dimensions_map_the_unit_interval_onto_their_scale():
    assert Dimension("lr", 1e-4, 1e-2, "log").value(0.5) == pytest.approx(1e-3)
    assert Dimension("latent_dim", 2, 32, "int").value(1.0) == 32
    assert Dimension("beta", 0.5, 2.0).value(-3.0) == 0.5  # clipped into the cube
