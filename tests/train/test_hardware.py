"""Precision and thread choices from what the CPU offers and who else uses it (simulated)."""

from __future__ import annotations

import dataclasses
import json
import os

import pytest
import torch

from genlab.tasks.registry import MODELS
from genlab.tasks.training import RunSpec, resolved, train
from genlab.train import hardware
from genlab.train.config import TrainConfig
from genlab.train.hardware import CpuSample, choose_precision, fair_threads, others_busy


def test_cpu_flags_are_read_from_cpuinfo(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu sse avx2 avx512f avx512_bf16 amx_bf16\n\n"
                    "processor\t: 1\nflags\t\t: fpu\n")  # fmt: skip
    flags = hardware.cpu_flags(info)
    assert "avx512_bf16" in flags and hardware.has_amx(flags)
    assert not hardware.has_amx({"avx2", "avx512f"})  # AVX-512 alone emulates bf16
    assert not hardware.has_amx({"avx512f", "avx512_bf16"})  # measured slower than fp32
    assert hardware.has_amx({"amx_bf16", "amx_tile"})
    assert hardware.cpu_flags(tmp_path / "missing") == set()


@pytest.mark.parametrize(
    "requested,offered,amx,chosen",
    [
        ("auto", True, True, "bf16"),
        ("auto", True, False, "fp32"),
        ("auto", False, True, "fp32"),
        ("fp32", True, True, "fp32"),
        ("bf16", True, False, "bf16"),
    ],  # fmt: skip
)
def test_auto_is_bf16_only_where_checked_and_amx(requested, offered, amx, chosen):
    assert choose_precision(requested, offered, amx)[0] == chosen


def test_a_run_keeps_the_precision_auto_chose_and_says_why(capsys):
    cfg = TrainConfig(steps=1)
    assert cfg.precision == "auto"  # the default
    offers = next(e for e in MODELS.values() if e.bf16)
    lacks = next(e for e in MODELS.values() if not e.bf16)
    assert resolved(offers, cfg, amx=True).precision == "bf16"
    assert resolved(offers, cfg, amx=False).precision == "fp32"
    assert "no AMX" in capsys.readouterr().err
    assert resolved(lacks, cfg, amx=True).precision == "fp32"
    fixed = dataclasses.replace(cfg, precision="fp32")
    assert resolved(offers, fixed, amx=True) is fixed  # a choice given is left alone


def test_other_processes_share_is_the_machines_less_this_ones():
    a = CpuSample(at=0.0, busy=1000, own=300)
    b = CpuSample(at=2.0, busy=1000 + 400, own=300 + 200)  # 100 ticks/s: 4 core-s, 2 mine
    assert others_busy(a, b, ticks_per_s=100) == pytest.approx(1.0)
    assert others_busy(a, dataclasses.replace(b, busy=1100), 100) == 0.0  # never negative
    assert others_busy(a, a, 100) == 0.0


@pytest.mark.parametrize(
    "base,cpus,others,threads",
    [
        (2, 2, 0.0, 2),
        (2, 2, 0.3, 2),
        (2, 2, 0.6, 1),
        (2, 2, 1.0, 1),
        (2, 2, 3.0, 1),
        (8, 8, 2.2, 6),
        (1, 2, 0.0, 1),
        (4, 8, 0.0, 4),
    ],  # fmt: skip
)
def test_threads_are_the_cores_others_leave_free(base, cpus, others, threads):
    assert fair_threads(base, cpus, others) == threads


def test_the_governor_lowers_and_restores_threads_and_says_so(monkeypatch, capsys):
    clock = {"t": 0.0, "busy": 0, "own": 0}
    monkeypatch.setattr(hardware, "sample_cpu",
                        lambda: CpuSample(clock["t"], clock["busy"], clock["own"]))  # fmt: skip
    previous = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        governor = hardware.ThreadGovernor(base=2, every=10, cpus=2, clock=lambda: clock["t"])
        governor.ticks_per_s = 100
        clock.update(t=5.0, busy=1000, own=500)
        governor.tick()  # too soon to look
        assert torch.get_num_threads() == 2
        clock.update(t=10.0, busy=2000, own=1000)  # others used 1 core of 2 for 10 s
        governor.tick()
        assert torch.get_num_threads() == 1
        assert "other processes use 1.0 of 2 cores: training on 1 thread" in capsys.readouterr().err
        clock.update(t=20.0, busy=3000, own=2000)  # others gone
        governor.tick()
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(previous)


def test_the_counters_are_read_from_proc():
    sample = hardware.sample_cpu()
    assert sample.busy >= sample.own >= 0 and hardware.usable_cpus() >= 1


def test_config_json_keeps_the_precision_auto_chose(data_root, tmp_path, monkeypatch):
    monkeypatch.setattr(hardware, "has_amx", lambda flags=None: False)
    entry = next(e for e in MODELS.values() if e.bf16 and e.name == "vae")
    spec = RunSpec(entry=entry, data="mnist", options=entry.options(latent_dim=2, channels=4,
                   hidden=8), train=TrainConfig(steps=1, batch_size=4), run_dir=tmp_path)  # fmt: skip
    train(spec, progress=False)
    assert json.loads((tmp_path / "config.json").read_text())["train"]["precision"] == "fp32"


def fake_cpu(monkeypatch, others: float, own: float) -> None:
    """`sample_cpu` reports a quarter second in which other processes used `others` cores and
    this one `own` (in the kernel's own clock ticks)."""
    ticks = 0.25 * float(os.sysconf("SC_CLK_TCK"))
    feed = iter([CpuSample(0.0, 0, 0),
                 CpuSample(0.25, round((others + own) * ticks), round(own * ticks))])  # fmt: skip
    monkeypatch.setattr(hardware, "sample_cpu", lambda: next(feed))


@pytest.mark.parametrize("others,threads", [(1.0, 1), (0.0, 2)])
def test_an_evaluation_starts_on_the_cores_others_leave_free(monkeypatch, others, threads):
    fake_cpu(monkeypatch, others, own=0.4)
    monkeypatch.setattr(hardware, "usable_cpus", lambda: 2)
    previous = torch.get_num_threads()
    try:
        hardware.start_fair(2, "evaluating", sleep=lambda s: None)
        assert torch.get_num_threads() == threads
    finally:
        torch.set_num_threads(previous)


def test_eval_steps_down_beside_a_busy_machine_says_so_and_restores_threads(
    data_root, tmp_path, monkeypatch, capsys
):
    from genlab import workflow

    entry = MODELS["vae"]
    spec = RunSpec(entry=entry, data="mnist", options=entry.options(latent_dim=2, channels=4,
                   hidden=8), train=TrainConfig(steps=1, batch_size=4), run_dir=tmp_path)  # fmt: skip
    train(spec, progress=False)
    seen, real_load = [], workflow.load_run

    def load(run_dir):  # the run's entry, its evaluation noting the threads it runs on
        loaded, options, model, config = real_load(run_dir)
        spy = lambda *a, **kw: seen.append(torch.get_num_threads()) or loaded.evaluate(*a, **kw)  # noqa: E731
        return dataclasses.replace(loaded, evaluate=spy), options, model, config

    monkeypatch.setattr(workflow, "load_run", load)
    monkeypatch.setattr(hardware, "usable_cpus", lambda: 2)
    previous = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        fake_cpu(monkeypatch, others=1.2, own=0.0)
        workflow.evaluate(tmp_path, k=2, n=8, samples=0, write=False)
        said = capsys.readouterr().err
        assert "other processes use 1.2 of 2 cores: evaluating on 1 thread (was 2;" in said
        workflow.evaluate(tmp_path, k=2, n=8, samples=0, write=False, threads=2)  # wins
        assert seen == [1, 2] and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(previous)
