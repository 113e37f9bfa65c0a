"""Faults a run survives: two trainers on one directory, weights that diverge between saves, a
writer killed mid-save, a torn metrics line, an attempt that kept no checkpoint, broken runs
beside healthy ones, and C kernels that cannot be built or trusted."""

from __future__ import annotations

import json
import os
import stat
import time

import pytest
import torch
from test_loop import Noisy, data

from contracts import genlab_process
from genlab.cli import main
from genlab.errors import NonFiniteError, RunError
from genlab.nn import kernels
from genlab.train.config import TrainConfig
from genlab.train.logger import read_metrics
from genlab.train.loop import fit, make_state
from genlab.train.runs import LOCK, exclusive, summarize
from genlab.train.state import read_checkpoint

TINY = [
    "--latent-dim",
    "2",
    "--channels",
    "4",
    "--hidden",
    "16",
    "--batch-size",
    "8",
    "--quiet",
    "--log-every",
    "1",
]


def test_a_second_holder_of_a_run_is_refused_with_the_first_ones_pid(tmp_path):
    refused = pytest.raises(RunError, match=f"being trained by process {os.getpid()}")
    with exclusive(tmp_path / "run"), refused, exclusive(tmp_path / "run"):
        pass
    with exclusive(tmp_path / "run"):  # released when the block ended
        pass


def test_a_second_trainer_on_the_same_out_is_refused_while_the_first_runs(
    data_root, tmp_path, capsys
):
    run = tmp_path / "run"
    first = genlab_process("train", "vae", "--minutes", "1", "--out", run, *TINY)
    try:
        deadline = time.monotonic() + 60
        while not (run / "metrics.jsonl").is_file() and time.monotonic() < deadline:
            time.sleep(0.2)  # the lock is taken before training starts
        assert (run / LOCK).read_text().strip() == str(first.pid)
        assert main(["train", "vae", "--steps", "3", "--out", str(run), *TINY]) == 2
        assert f"being trained by process {first.pid}" in capsys.readouterr().err
    finally:
        first.send_signal(2)  # Ctrl-C: it saves and stops
        first.communicate(timeout=60)
    assert main(["train", "vae", "--steps", "3", "--out", str(run), *TINY]) != 2  # free again


def test_diverged_weights_are_never_saved_and_eval_prints_standard_json(
    data_root, tmp_path, capsys
):
    run = tmp_path / "run"
    code = main(["train", "vae", "--steps", "30", "--lr", "1e9", "--checkpoint-every", "1",
                 "--out", str(run), *TINY])  # fmt: skip
    lines = capsys.readouterr().err.strip().splitlines()
    err = [line for line in lines if not line.startswith("genlab: precision")]  # a note
    assert code == 2 and len(err) == 1 and "last good checkpoint" in err[0], lines
    ckpt = read_checkpoint(run)
    assert all(torch.isfinite(v).all() for v in ckpt["model"].values())
    assert main(["eval", str(run), "--k", "2", "--n", "8", "--samples", "0", "--json"]) == 0
    printed = capsys.readouterr().out

    def refuse(constant: str):
        raise AssertionError(f"non-standard JSON constant {constant}")

    result = json.loads(printed, parse_constant=refuse)
    assert result["step"] == ckpt["step"]
    json.loads((run / "eval.json").read_text(), parse_constant=refuse)


def test_weights_that_turn_infinite_between_logged_steps_stop_the_save(tmp_path):
    cfg = TrainConfig(steps=10, log_every=100, checkpoint_every=2)  # no loss is looked at
    torch.manual_seed(0)
    state = make_state(Noisy(), cfg)

    def step(state, batch):
        with torch.no_grad():
            if state.step == 3:
                state.model.net[0].weight.fill_(float("inf"))
        return {"loss": torch.tensor(1.0)}

    with pytest.raises(NonFiniteError, match=r"step 4: model.net.0.weight is not finite"):
        fit(state, data(), cfg, tmp_path, step, progress=False)
    assert read_checkpoint(tmp_path)["step"] == 2


def test_temp_files_of_a_killed_save_are_swept_and_the_run_resumes(data_root, tmp_path):
    run = tmp_path / "run"
    assert main(["train", "vae", "--steps", "2", "--out", str(run), *TINY]) == 0
    for i in range(3):  # what `kill -9` during torch.save leaves behind
        (run / f".checkpoint.pt.killed{i}.tmp").write_bytes(os.urandom(1000))
    assert main(["train", "vae", "--steps", "4", "--out", str(run), *TINY]) == 0
    assert not list(run.glob(".*.tmp"))
    assert read_checkpoint(run)["step"] == 4
    assert [r["step"] for r in read_metrics(run)] == [1, 2, 3, 4]


def test_a_torn_metrics_line_is_dropped_with_a_warning(data_root, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "vae", "--steps", "2", "--out", str(run), *TINY]) == 0
    with open(run / "metrics.jsonl", "a") as f:
        f.write('{"step": 3, "loss": 1')  # killed mid-write
    assert [r["step"] for r in read_metrics(run)] == [1, 2]
    assert "torn last line" in capsys.readouterr().err
    assert main(["train", "vae", "--steps", "3", "--out", str(run), *TINY]) == 0
    assert [r["step"] for r in read_metrics(run)] == [1, 2, 3]


def test_an_attempt_that_kept_no_checkpoint_is_not_logged_twice(tmp_path):
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps({"step": s, "loss": 1.0}) + "\n"
                                                    for s in range(1, 4)))  # fmt: skip
    (tmp_path / "tb").mkdir()
    (tmp_path / "tb" / "events.old").write_text("x")
    cfg = TrainConfig(steps=3, log_every=1, checkpoint_every=10)
    torch.manual_seed(0)
    fit(make_state(Noisy(), cfg), data(), cfg, tmp_path, progress=False)
    assert [r["step"] for r in read_metrics(tmp_path)] == [1, 2, 3]
    assert not (tmp_path / "tb" / "events.old").exists()


def test_genlab_runs_lists_healthy_runs_and_marks_broken_ones(data_root, tmp_path, capsys):
    for name in ("good", "bad-config", "bad-eval", "torn"):
        assert main(["train", "vae", "--steps", "1", "--out", str(tmp_path / name), *TINY]) == 0
    (tmp_path / "bad-config" / "config.json").write_text("{")
    (tmp_path / "bad-eval" / "eval.json").write_text("[1,")
    (tmp_path / "torn" / "metrics.jsonl").write_text('zz\n{"step": 1}\n')
    (tmp_path / "controller").mkdir()
    (tmp_path / "controller" / "config.json").write_text('{"stage": "train-c", "vae": "v"}')
    capsys.readouterr()
    assert main(["runs", str(tmp_path)]) == 0
    out = capsys.readouterr().out.splitlines()
    rows = {line.split()[0].rsplit("/", 1)[-1]: line for line in out[1:]}
    assert set(rows) == {"good", "bad-config", "bad-eval", "torn", "controller"}
    assert rows["good"].rstrip().endswith("ok") and "vae" in rows["good"]
    assert "controller (CMA-ES)" in rows["controller"]
    for name in ("bad-config", "bad-eval", "torn"):
        assert "broken:" in rows[name], rows[name]
    assert summarize(tmp_path / "bad-config")["status"].startswith("broken: ")


@pytest.fixture
def kernel_cache(tmp_path, monkeypatch):
    """A private kernel cache, and no kernel loaded or compiler found yet in this process."""
    monkeypatch.setenv("GENLAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("GENLAB_NO_KERNELS", raising=False)
    kernels.load.cache_clear()
    kernels._compiler.cache_clear()
    yield tmp_path / "cache" / "kernels"
    kernels.load.cache_clear()
    kernels._compiler.cache_clear()


def test_a_compiler_that_fails_falls_back_with_one_warning(kernel_cache, monkeypatch, capsys):
    monkeypatch.setenv("CC", "/bin/false")
    assert kernels.load("iaf_forward") is None
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "iaf_forward is not used" in err[0] and "2.3x slower" in err[0]


def test_no_compiler_falls_back_with_one_warning(kernel_cache, monkeypatch, capsys):
    monkeypatch.setenv("CC", "no-such-compiler")
    assert kernels.load("wavenet_generate") is None
    assert "no C compiler" in capsys.readouterr().err


def test_a_planted_or_damaged_library_is_rebuilt_not_loaded(kernel_cache, capsys):
    if kernels.load("iaf_forward") is None:
        pytest.skip("no working C compiler here")
    (lib,) = kernel_cache.glob("iaf_forward-*.so")
    good = lib.read_bytes()
    planted = lib.with_name("planted")
    planted.write_bytes(b"\x7fELF planted")
    planted.replace(lib)  # a new file (the loaded one is mapped), its SHA-256 not the recorded
    kernels.load.cache_clear()
    assert kernels.load("iaf_forward") is not None
    assert lib.read_bytes() == good  # rebuilt from source, the same bytes
    assert capsys.readouterr().err == ""


def test_a_cache_folder_others_may_write_is_refused(kernel_cache, capsys):
    kernel_cache.mkdir(parents=True)
    kernel_cache.chmod(kernel_cache.stat().st_mode | stat.S_IWOTH)
    assert kernels.load("iaf_forward") is None
    assert "writable by others" in capsys.readouterr().err


def test_eval_prints_its_result_before_a_failed_write_and_says_so(data_root, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "vae", "--steps", "1", "--out", str(run), *TINY]) == 0
    (run / "eval.json").mkdir()  # the result cannot be written there
    capsys.readouterr()
    assert main(["eval", str(run), "--k", "1", "--n", "4", "--samples", "0", "--json"]) == 2
    out, err = capsys.readouterr()
    assert json.loads(out)["step"] == 1  # computed and shown, not lost
    assert "the result above was not saved" in err and str(run / "eval.json") in err


def test_kill_9_at_random_moments_then_resume(data_root, tmp_path):
    """A trainer saving every step, killed with SIGKILL three times at random moments (some
    mid-save), resumes each time from a readable checkpoint; no temporary file survives."""
    run = tmp_path / "run"
    rng = torch.Generator().manual_seed(0)
    for _ in range(3):
        p = genlab_process("train", "vae", "--steps", 100000, "--checkpoint-every", 1, "--out",
                           run, *TINY)  # fmt: skip
        deadline = time.monotonic() + 60
        while not (run / "checkpoint.pt").is_file() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5 + torch.rand(1, generator=rng).item())
        p.kill()
        p.communicate(timeout=30)
        assert read_checkpoint(run)["step"] >= 1
    before = read_checkpoint(run)["step"]
    assert main(["train", "vae", "--steps", str(before + 2), "--out", str(run), *TINY]) == 0
    assert read_checkpoint(run)["step"] == before + 2
    assert not list(run.glob(".*.tmp"))
    steps = [r["step"] for r in read_metrics(run)]
    assert steps == sorted(set(steps)) and steps[-1] == before + 2
