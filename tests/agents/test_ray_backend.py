"""IMPALA and A2C on Ray (`--backend ray`): a two-node cluster on loopback, a killed actor,
Ctrl-C, resume and a bad --address. Every test that starts Ray is marked `private_network`:
it runs in a network namespace with only loopback (tests/conftest.py)."""

from __future__ import annotations

import os
import signal
import sys
import time

import pytest
import torch

from contracts import genlab_process
from genlab.agents.impala.agent import ImpalaAgent
from genlab.agents.impala.config import A2CConfig, ImpalaConfig
from genlab.agents.impala.sources import make_source
from genlab.cli import main
from genlab.errors import ConfigError
from genlab.train.logger import read_metrics
from genlab.train.state import read_checkpoint

private_network = pytest.mark.private_network


def run(*args) -> int:
    return main([str(a) for a in args])


def descendants(pid: int) -> list[int]:
    """Every process below `pid` (Ray's raylet, its workers and their children)."""
    parents = {}
    for stat in os.scandir("/proc"):
        if stat.name.isdigit():
            try:
                with open(f"/proc/{stat.name}/stat") as f:
                    parents[int(stat.name)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
    out, frontier = [], [pid]
    while frontier:
        p = frontier.pop()
        kids = [c for c, parent in parents.items() if parent == p]
        out += kids
        frontier += kids
    return out


def running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@private_network
def test_impala_learns_on_a_two_node_cluster(ray_here, tmp_path):
    """The head has no CPU for actors, so both actors run on the other node; the learner joins
    with --address as it would a real cluster's head."""
    cluster_utils = pytest.importorskip("ray.cluster_utils")
    cluster = cluster_utils.Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    cluster.add_node(num_cpus=2)
    try:
        cluster.wait_for_nodes()
        out = tmp_path / "cartpole"
        assert run("train", "impala", "--backend", "ray", "--address", cluster.address,
                   "--actors", 2, "--envs-per-actor", 8, "--env", "gym:CartPole-v1",
                   "--batch-size", 16, "--unroll", 16, "--lr", 3e-3, "--steps", 150,
                   "--log-every", 10, "--quiet", "--out", out, "--threads", 1) == 0  # fmt: skip
        rows = read_metrics(out)
        # random play lasts ~22 steps (its 100-episode mean varies by ~1); 150 steps reached
        # 31-44 in four runs (the actors' timing varies)
        assert rows[0]["return"] < 25 and rows[-1]["return"] > 27
        assert 0 < rows[-1]["policy_lag"] < 10 and rows[-1]["actor_restarts"] == 0
        assert rows[-1]["frames"] == 150 * 16 * 16
        assert not ray_here.is_initialized()  # the learner left; the cluster goes on
        many = ImpalaConfig(env="gym:CartPole-v1", backend="ray", address=cluster.address,
                            actors=3, envs_per_actor=8)  # fmt: skip
        agent = ImpalaAgent(many)
        with pytest.raises(ConfigError, match="--actors 3 need 3 CPUs; the Ray cluster has 2"):
            make_source(agent.net, many, agent.channels, 16, seed=0)
        assert not ray_here.is_initialized()
    finally:
        cluster.shutdown()


@private_network
def test_killed_actor_is_restarted_and_training_goes_on(ray_here):
    cfg = ImpalaConfig(env="minatar:breakout", backend="ray", actors=2, envs_per_actor=2,
                       unroll=5)  # fmt: skip
    torch.manual_seed(0)
    agent = ImpalaAgent(cfg)
    source = make_source(agent.net, cfg, agent.channels, batch_size=4, seed=0)
    try:
        for step in range(3):
            assert source.batch(step).obs.shape == (6, 4, 4, 10, 10)
        before = source.pids()
        os.kill(before[0], signal.SIGKILL)
        step, deadline = 3, time.monotonic() + 30
        while source.restarts == 0:
            assert time.monotonic() < deadline, "the dead actor was never noticed"
            batch = source.batch(step)
            step += 1
        for later in range(step, step + 5):  # training goes on with the restarted actor
            batch = source.batch(later)
        after = source.pids()
        assert after[0] != before[0] and after[1] == before[1]
        assert batch.stats["actor_restarts"].item() == 1
        assert 0 <= batch.stats["policy_lag"].item() < 10
    finally:
        source.close()
    assert not ray_here.is_initialized()  # the source started the cluster, so it stopped it
    time.sleep(1)
    assert not [p for p in after if running(p)]


@private_network
def test_a2c_on_ray_acts_with_the_current_weights(ray_here):
    cfg = A2CConfig(env="minatar:breakout", backend="ray", actors=2, envs_per_actor=2, unroll=4)
    agent = ImpalaAgent(cfg)
    source = make_source(agent.net, cfg, agent.channels, batch_size=8, seed=0)
    try:
        for step in range(4):
            batch = source.batch(step)
            assert int(batch.version) == step and batch.stats["policy_lag"].item() == 0
            assert batch.obs.shape[1] == 8
    finally:
        source.close()


SHAPE = ["--envs-per-actor", "2", "--batch-size", "4", "--unroll", "5", "--log-every", "1",
         "--threads", "1", "--quiet"]  # fmt: skip
RUN = ["--backend", "ray", "--actors", "2", *SHAPE]


@private_network
def test_ctrl_c_saves_and_leaves_no_ray_process(ray_here, tmp_path):
    out = tmp_path / "run"
    proc = genlab_process("train", "impala", *RUN, "--minutes", "5", "--out", out,
                          start_new_session=True)  # fmt: skip
    deadline = time.monotonic() + 60
    while len(read_metrics(out)) < 3:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "training did not start"
        time.sleep(0.2)
    ray_processes = descendants(proc.pid)
    assert len(ray_processes) >= 4  # GCS, raylet, two actors at least
    t0 = time.monotonic()
    os.killpg(proc.pid, signal.SIGINT)  # as a terminal's Ctrl-C: the whole process group
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr[-3000:]
    assert time.monotonic() - t0 < 20 and "Traceback" not in stderr, stderr[-3000:]
    deadline = time.monotonic() + 10
    while [p for p in ray_processes if running(p)] and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not [p for p in ray_processes if running(p)], "Ray processes left behind"
    assert read_checkpoint(out)["step"] == read_metrics(out)[-1]["step"]


@private_network
def test_the_same_command_resumes_and_backends_may_change(ray_here, tmp_path, capsys):
    """As with the local backend: a finished or stopped run continues from its checkpoint to
    the new budget; how trajectories travel (backend, actors) may change on resume, both ways.
    (One Ray run: each starts a cluster, about ten seconds here.)"""
    out = tmp_path / "run"
    inline = ["--backend", "inline", *SHAPE]
    assert run("train", "impala", *inline, "--steps", 4, "--out", out) == 0
    assert run("train", "impala", *RUN, "--steps", 8, "--out", out) == 0
    steps = [r["step"] for r in read_metrics(out)]
    assert steps == list(range(1, 9)) and read_checkpoint(out)["step"] == 8
    assert run("train", "impala", *inline, "--steps", 10, "--out", out) == 0
    assert read_checkpoint(out)["step"] == 10
    assert run("train", "impala", *inline, "--unroll", 7, "--steps", 12, "--out", out) != 0
    assert "has unroll=5; cannot resume with 7" in capsys.readouterr().err


def test_a_bad_address_is_one_line():
    pytest.importorskip("ray", reason="the distributed extra (ray) is not installed")
    cfg = ImpalaConfig(env="minatar:breakout", backend="ray", address="127.0.0.1:1")
    agent = ImpalaAgent(cfg)
    t0 = time.monotonic()
    with pytest.raises(ConfigError, match=r"--address 127.0.0.1:1: no Ray head answers"):
        make_source(agent.net, cfg, agent.channels, 16, seed=0)
    assert time.monotonic() - t0 < 10
    bad = ImpalaConfig(env="minatar:breakout", backend="ray", address="head-node")
    with pytest.raises(ConfigError, match="--address must be 'auto' or HOST:PORT"):
        make_source(agent.net, bad, agent.channels, 16, seed=0)
    with pytest.raises(ConfigError, match="needs --backend ray"):
        ImpalaConfig(backend="local", address="auto")


@private_network
def test_address_auto_without_a_cluster_is_one_line(ray_here):
    cfg = ImpalaConfig(env="minatar:breakout", backend="ray", address="auto")
    agent = ImpalaAgent(cfg)
    with pytest.raises(ConfigError, match="--address auto: Could not find any running Ray"):
        make_source(agent.net, cfg, agent.channels, 16, seed=0)


def test_without_ray_the_error_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # as if the distributed extra were missing
    cfg = ImpalaConfig(env="minatar:breakout", backend="ray")
    agent = ImpalaAgent(cfg)
    with pytest.raises(ConfigError, match=r"needs Ray: pip install .*genlab\[distributed\]"):
        make_source(agent.net, cfg, agent.channels, 16, seed=0)
