"""`genlab tune pba`: PBA's explore as Tune's custom explore, and a tiny population on Ray
Tune's PBT scheduler (in a private network: it starts Ray)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from genlab import population
from genlab.cli import main, parse
from genlab.errors import ConfigError
from genlab.meta import pba
from genlab.tasks.augmentation import read_schedule


def test_explore_policy_is_pbas_explore_seeded_by_the_config():
    policy = pba.random_policy(np.random.default_rng(0))
    config = {"policy": policy.tolist(), "explore_seed": 0.25, "search": {}}
    a = population.explore_policy(dict(config))["policy"]
    b = population.explore_policy(dict(config))["policy"]
    assert a == b and a != policy.tolist()
    expected = pba.explore(policy, np.random.default_rng(int(0.25 * 2**31)))
    assert np.array_equal(np.asarray(a), expected)
    with pytest.raises(ConfigError, match="--population must be >= 2"):
        population.PBAConfig(population=1)
    with pytest.raises(ConfigError, match="base_augment must be one of none, standard"):
        population.PBAConfig(base_augment="flip")
    with pytest.raises(ConfigError, match="depth must be 6n"):  # before Ray starts a member
        population.PBAConfig(depth=12)
    with pytest.raises(ConfigError, match="--data 'cifar10': choose from mnist, omniglot"):
        population.PBAConfig(data="cifar10")
    characters = population.PBAConfig(data="omniglot", base_augment="standard")
    assert characters.wrn_options(Path("s.json"))["n_classes"] == 964  # members fit the data
    # what the search prints to retrain with its schedule: the members' data, model and base
    ns = parse(characters.retrain_command(Path("s.json")).split()[1:])
    assert (ns.data, ns.n_classes, ns.base_augment, ns.augment) == (
        "omniglot",
        964,
        "standard",
        "pba",
    )


def report(stdout: str) -> dict:
    """The summary line `genlab tune pba` prints (Ray Tune prints its own lines too)."""
    (line,) = [x for x in stdout.splitlines() if x.startswith('{"population"')]
    return json.loads(line)


@pytest.mark.private_network
def test_a_tiny_population_learns_a_schedule_and_resumes(ray_here, data_root, tmp_path, capsys):
    out = tmp_path / "pba"
    args = ["tune", "pba", "--population", "2", "--interval", "2", "--rounds", "2",
            "--train-images", "64", "--val-images", "32", "--widen", "1", "--batch-size", "16",
            "--out", str(out), "--quiet"]  # fmt: skip
    assert main(args) == 0
    summary = report(capsys.readouterr().out)
    assert summary["population"] == 2 and summary["steps"] == 4 and summary["failed_members"] == 0
    assert 0 <= summary["best_val_accuracy"] <= 1 and summary["cpu_hours"] > 0
    schedule = read_schedule(out / "schedule.json")
    assert schedule[0][0] == 0 and schedule[0][1].sum() == 0  # PBA starts from no augmentation
    assert [s for s, _ in schedule] == sorted({s for s, _ in schedule}) and len(schedule) == 2
    assert (out / "schedule.png").stat().st_size > 1000  # the schedule drawn
    runs = list((out / "pba").glob("*/run"))
    seeds = [json.loads((r / "config.json").read_text())["train"]["seed"] for r in runs]
    assert sorted(seeds) == [0, 1]  # each member its own seed, kept through exploits
    assert len(runs) == 2 and all((r / "checkpoint.pt").is_file() for r in runs)
    trained = {r: (r / "checkpoint.pt").stat().st_mtime_ns for r in runs}
    assert main(args) == 0  # run again: the finished search is reported, not redone
    assert report(capsys.readouterr().out) == summary
    assert {r: (r / "checkpoint.pt").stat().st_mtime_ns for r in runs} == trained
    assert main([*args[:3], "3", *args[4:]]) == 2  # other settings in the same directory
    assert "holds a PBA search with other settings" in capsys.readouterr().err


def test_a_finished_search_answers_from_its_summary_without_starting_ray(tmp_path, monkeypatch):
    cfg = population.PBAConfig(population=2, interval=2, rounds=2)
    summary = {"population": 2, "steps": 4, "best_val_accuracy": 0.5}
    (tmp_path / "pba.json").write_text(json.dumps(dataclasses.asdict(cfg)))
    (tmp_path / "search.json").write_text(json.dumps(summary))

    def no_ray(*args, **kwargs):
        raise AssertionError("a finished search started Ray")

    monkeypatch.setattr(population.cluster, "ray_module", no_ray)
    monkeypatch.setattr(population.cluster, "connect", no_ray)
    assert population.search(cfg, tmp_path) == summary
    with pytest.raises(ConfigError, match="holds a PBA search with other settings"):
        population.search(dataclasses.replace(cfg, rounds=3), tmp_path)
    (tmp_path / "search.json").unlink()  # unfinished: the search goes on, on Ray
    with pytest.raises(AssertionError, match="started Ray"):
        population.search(cfg, tmp_path)
