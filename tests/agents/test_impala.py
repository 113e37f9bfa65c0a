"""IMPALA and A2C: environments, networks, actors, losses, backends (including a killed actor and
Ctrl-C), and short end-to-end runs through the CLI."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces
from gymnasium.utils.env_checker import check_env

from contracts import check_bf16_metrics_near_fp32, genlab_process
from genlab.agents.impala.acting import Actor, empty_trajectory
from genlab.agents.impala.agent import ImpalaAgent
from genlab.agents.impala.backends import InlineSource, LocalSource, flat_weights
from genlab.agents.impala.config import A2CConfig, ImpalaConfig
from genlab.agents.impala.evaluation import evaluate_agent
from genlab.agents.impala.learning import actor_critic_loss
from genlab.agents.impala.networks import ActionHeads, AgentNet
from genlab.cli import main
from genlab.envs.minatar import MinAtarEnv
from genlab.envs.registry import env_spec, make_env
from genlab.envs.vector import EnvBatch
from genlab.errors import ConfigError
from genlab.train.logger import read_metrics
from genlab.train.state import read_checkpoint


class PickTwo(gym.Env):
    """A one-step toy task with a dict action: reward 1 when y == (x + 1) % 4, whatever x is."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 15}

    def __init__(self, render_mode=None):
        self.observation_space = spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.action_space = spaces.Dict({"x": spaces.Discrete(3), "y": spaces.Discrete(4)})
        self.render_mode = render_mode

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(2, np.float32), {}

    def step(self, action):
        reward = float(action["y"] == (action["x"] + 1) % 4)
        return np.zeros(2, np.float32), reward, True, False, {}

    def render(self):
        return np.zeros((8, 8, 3), np.uint8)


class Idle(PickTwo):
    """Never terminates: only the time limit ends an episode. Reward 1 per step."""

    def step(self, action):
        return np.ones(2, np.float32), 1.0, False, False, {}


gym.register("GenlabTest/PickTwo-v0", entry_point=PickTwo)
gym.register("GenlabTest/Idle-v0", entry_point=Idle, max_episode_steps=3)


def test_environments_pass_the_gymnasium_checker_and_names_are_checked():
    check_env(MinAtarEnv("breakout"), skip_render_check=True)
    padded = make_env("minatar:breakout", channels=7)
    assert padded.reset(seed=0)[0].shape == (7, 10, 10)
    # EnvBatch seeds slot i with seed * 10_007 + i: a large --seed must not crash MinAtar
    big = MinAtarEnv("breakout")
    assert np.array_equal(big.reset(seed=2**40 + 5)[0], big.reset(seed=5)[0])
    check_env(PickTwo(), skip_render_check=True)
    spec = env_spec("gym:GenlabTest/PickTwo-v0", make_env("gym:GenlabTest/PickTwo-v0"))
    assert spec.action_sizes == (3, 4) and spec.action_names == ("x", "y")
    with pytest.raises(ConfigError, match="FAMILY:NAME"):
        make_env("breakout")
    with pytest.raises(ValueError, match="unknown MinAtar game 'pong'"):
        make_env("minatar:pong")


def test_atari_preprocessing_stacks_four_84x84_frames():
    env = make_env("atari:Breakout")
    obs, _ = env.reset(seed=0)
    assert obs.shape == (4, 84, 84) and obs.dtype == np.uint8
    obs2, *_ = env.step(1)  # FIRE
    assert (obs2[:3] == obs[1:]).all()  # the stack shifts by one frame per step
    assert isinstance(env, gym.wrappers.TimeLimit) and env._max_episode_steps == 27_000
    spec = env_spec("atari:Breakout", env)
    assert spec.obs_scale == pytest.approx(1 / 255) and spec.normalised(30.5) == pytest.approx(1)
    for torso in ("nature", "resnet"):
        net = AgentNet(spec, torso)
        feats, _ = net.core(torch.from_numpy(obs)[None, None], torch.ones(1, 1, dtype=torch.bool),
                            net.initial_state(1))  # fmt: skip
        assert feats.shape == (1, 1, 512 if torso == "nature" else 256)


def test_autoregressive_heads_define_one_normalised_joint_distribution():
    torch.manual_seed(0)
    heads = ActionHeads(5, (3, 4))
    h = torch.randn(2, 5)
    grid = torch.cartesian_prod(torch.arange(3), torch.arange(4))  # all 12 joint actions
    logp, entropy = heads.evaluate(h[:1].expand(12, 5), grid)
    assert logp.exp().sum().item() == pytest.approx(1.0, abs=1e-5)
    joint_entropy = -(logp.exp() * logp).sum()
    # each row's entropy is H(x) + H(y | x); its mean under p(x) is the joint entropy
    px = logp.exp().reshape(3, 4).sum(1)
    assert (px * entropy.reshape(3, 4)[:, 0]).sum().item() == pytest.approx(
        joint_entropy.item(), abs=1e-5
    )
    actions, sampled_logp = heads.sample(h, torch.Generator().manual_seed(1))
    torch.testing.assert_close(sampled_logp, heads.evaluate(h, actions)[0])
    # head y sees x: its distribution changes with x
    by_x = logp.reshape(3, 4) - px.log()[:, None]
    assert not torch.allclose(by_x[0], by_x[1])


def test_lstm_core_matches_stepping_and_resets_where_episodes_start():
    spec = env_spec("minatar:breakout", make_env("minatar:breakout"))
    torch.manual_seed(0)
    net = AgentNet(spec, lstm=16)
    T, B = 6, 3
    obs = (torch.rand(T, B, 4, 10, 10) < 0.2).to(torch.uint8)
    first = torch.zeros(T, B, dtype=torch.bool)
    first[3, 1] = True
    state0 = torch.randn(B, 2, 16)
    feats, state = net.core(obs, first, state0)
    s, stepped = state0, []
    for t in range(T):
        f, s = net.core(obs[t : t + 1], first[t : t + 1], s)
        stepped.append(f[0])
    torch.testing.assert_close(feats, torch.stack(stepped))
    torch.testing.assert_close(state, s)
    starts = torch.tensor([[True], [False], [False]])
    fresh, _ = net.core(obs[3:, 1:2], starts, net.initial_state(1))
    torch.testing.assert_close(feats[3:, 1:2], fresh)


def inline_batch(cfg: ImpalaConfig, batch: int, steps: int = 1) -> tuple[ImpalaAgent, list]:
    torch.manual_seed(0)
    agent = ImpalaAgent(cfg)
    source = InlineSource(agent.net, cfg, agent.channels, batch, seed=0)
    batches = [source.batch(i) for i in range(steps)]
    source.close()
    return agent, batches


def test_inline_trajectories_are_consecutive_and_on_policy():
    cfg = ImpalaConfig(env="minatar:breakout", unroll=7, lstm=8)
    agent, (a, b) = inline_batch(cfg, batch=3, steps=2)
    assert a.obs.shape == (8, 3, 4, 10, 10) and a.action.shape == (7, 3, 1)
    assert torch.equal(a.obs[-1], b.obs[0]) and torch.equal(a.first[-1], b.first[0])
    assert a.first[0].all()  # the first unroll starts every episode
    # a new episode starts right after each end
    ended = a.terminated | a.truncated
    assert torch.equal(a.first[1:], ended)
    # the learner's recomputation gives the behaviour log-probs back: importance weights of 1
    with torch.no_grad():
        metrics = actor_critic_loss(agent.net, a, cfg)
    assert metrics["rho_mean"].item() == pytest.approx(1.0, abs=1e-5)
    assert b.stats["frames"].item() == 2 * 7 * 3


def test_on_policy_impala_loss_equals_a2c_loss():
    """With no policy lag V-trace (lambda 1) is n-step returns: IMPALA reduces to A2C."""
    cfg = ImpalaConfig(env="minatar:breakout", unroll=10)
    agent, (batch,) = inline_batch(cfg, batch=4)
    impala = actor_critic_loss(agent.net, batch, cfg)
    a2c = actor_critic_loss(agent.net, batch, A2CConfig(env="minatar:breakout", unroll=10))
    for k in ("loss", "pg_loss", "value_loss", "entropy"):
        torch.testing.assert_close(impala[k], a2c[k], rtol=1e-5, atol=1e-6)
    lagged = dataclasses.replace(batch, behaviour_logp=batch.behaviour_logp + 0.3)  # rho < 1
    assert not torch.allclose(actor_critic_loss(agent.net, lagged, cfg)["loss"], impala["loss"])


def test_time_limits_truncate_with_the_value_of_the_last_observation():
    cfg = ImpalaConfig(env="gym:GenlabTest/Idle-v0", unroll=7)
    agent, (batch,) = inline_batch(cfg, batch=2)
    assert not batch.terminated.any()
    truncated = batch.truncated[:, 0]
    assert truncated.tolist() == [False, False, True, False, False, True, False]
    final = agent.net.values(agent.net.core(torch.ones(1, 1, 2), torch.zeros(1, 1, dtype=torch.bool),
                                            agent.net.initial_state(1))[0])  # fmt: skip
    torch.testing.assert_close(batch.final_value[2], final.expand(1, 2)[0], rtol=1e-5, atol=1e-6)
    assert (batch.final_value[~batch.truncated] == 0).all()


def test_multitask_batches_carry_task_ids_and_returns_per_task():
    cfg = ImpalaConfig(env="minatar:breakout,minatar:space_invaders", unroll=50)
    agent, batches = inline_batch(cfg, batch=4, steps=8)
    assert agent.channels == 6 and batches[0].obs.shape[2:] == (6, 10, 10)
    assert batches[0].task.tolist() == [0, 1, 0, 1]
    last = batches[-1]
    assert {"return/minatar:breakout", "return/minatar:space_invaders"} <= set(last.stats)
    result = evaluate_agent(agent, cfg, None, episodes=2)
    assert set(result["tasks"]) == {"minatar:breakout", "minatar:space_invaders"}
    assert result["episodes"] == 2


def test_local_backend_restarts_a_killed_actor_and_stops_cleanly():
    cfg = ImpalaConfig(env="minatar:breakout", backend="local", actors=2, envs_per_actor=2,
                       unroll=5)  # fmt: skip
    torch.manual_seed(0)
    agent = ImpalaAgent(cfg)
    source = LocalSource(agent.net, cfg, agent.channels, batch_size=4, seed=0)
    try:
        for step in range(3):
            batch = source.batch(step)
            assert batch.obs.shape == (6, 4, 4, 10, 10)
        busiest = max(range(2), key=lambda i: source.delivered[i])
        victim = source.pids[busiest]
        os.kill(victim, signal.SIGKILL)
        # batches take milliseconds; the kernel may take longer to close the dead actor's pipe
        step, deadline = 3, time.monotonic() + 20
        while source.restarts == 0 and time.monotonic() < deadline:
            batch = source.batch(step)
            step += 1
        for later in range(step, step + 6):  # training goes on after the restart
            batch = source.batch(later)
            assert batch.action.shape == (5, 4, 1)
        assert source.restarts >= 1 and source.pids[busiest] != victim
        assert batch.stats["actor_restarts"].item() >= 1
        assert 0 <= batch.stats["policy_lag"].item() < 20, batch.stats["policy_lag"]
        pids = source.pids
    finally:
        source.close()
    assert not [pid for pid in pids if running(pid)]


def children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def running(pid: int) -> bool:
    """Alive and not a zombie (an exited child whose parent is gone and that init has not yet
    reaped is no longer running)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_ctrl_c_stops_learner_and_actors_within_seconds(tmp_path):
    out = tmp_path / "run"
    proc = genlab_process(
        "train", "impala", "--backend", "local", "--actors", "2", "--envs-per-actor", "2",
        "--batch-size", "4", "--unroll", "5", "--minutes", "5", "--log-every", "1",
        "--threads", "1", "--quiet", "--out", out,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while len(read_metrics(out)) < 3:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "training did not start"
        time.sleep(0.2)
    actors = children(proc.pid)
    assert len(actors) >= 2
    t0 = time.monotonic()
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130, stderr
    assert time.monotonic() - t0 < 10 and "Traceback" not in stderr
    time.sleep(0.5)
    assert not [pid for pid in actors if running(pid)], "orphaned processes"
    assert read_checkpoint(out)["step"] == read_metrics(out)[-1]["step"]


def run(*args) -> int:
    return main([str(a) for a in args])


def test_train_eval_sample_resume_through_the_cli(tmp_path, capsys):
    out = tmp_path / "cartpole"
    common = ["--env", "gym:CartPole-v1", "--batch-size", 16, "--unroll", 16, "--lr", 3e-3,
              "--log-every", 10, "--quiet", "--out", out, "--threads", 1]  # fmt: skip
    assert run("train", "a2c", "--frames", 80 * 16 * 16, *common) == 0
    assert read_checkpoint(out)["step"] == 80
    assert run("train", "a2c", "--steps", 160, *common) == 0  # resumes to the new budget
    rows = read_metrics(out)
    assert rows[-1]["step"] == 160 and rows[-1]["frames"] == 160 * 16 * 16
    assert "optimizers" in read_checkpoint(out)
    assert rows[-1]["return"] > 2 * rows[0]["return"]  # random play lasts ~22 steps
    assert (out / "pictures" / "episode-gym-CartPole-v1.gif").is_file()
    capsys.readouterr()
    assert run("eval", out, "--episodes", 4, "--json") == 0
    result = json.loads(capsys.readouterr().out)
    assert result["episodes"] == 4 and result["mean_return"] > 40 and result["std_return"] >= 0
    assert run("sample", out, "--out", tmp_path / "ep.gif") == 0
    assert (tmp_path / "ep.gif").stat().st_size > 0


def test_dict_actions_train_end_to_end(tmp_path):
    out = tmp_path / "pick"
    assert run("train", "impala", "--env", "gym:GenlabTest/PickTwo-v0", "--steps", 60,
               "--batch-size", 16, "--unroll", 4, "--lr", 1e-2, "--log-every", 1,
               "--quiet", "--out", out, "--threads", 1) == 0  # fmt: skip
    rows = read_metrics(out)
    assert rows[0]["return"] < 0.5 and rows[-1]["return"] > 0.8  # chance is 1/4


def test_agent_option_errors_are_clear():
    with pytest.raises(ConfigError, match="A2C is synchronous"):
        A2CConfig(backend="local")
    with pytest.raises(ConfigError, match="cannot play both"):
        ImpalaAgent(ImpalaConfig(env="minatar:breakout,gym:CartPole-v1"))
    cfg = ImpalaConfig(backend="local", envs_per_actor=3)
    with pytest.raises(ConfigError, match="multiple of --envs-per-actor 3"):
        LocalSource(ImpalaAgent(cfg).net, cfg, None, batch_size=4, seed=0)


def test_actor_buffers_match_the_documented_layout():
    cfg = ImpalaConfig(env="gym:GenlabTest/PickTwo-v0", unroll=3)
    agent = ImpalaAgent(cfg)
    buffers = empty_trajectory(agent.net, 3, 2)
    actor = Actor(agent.net, EnvBatch(cfg.tasks, [0, 0], seed=0), 3, seed=0)
    episodes = actor.fill(buffers)
    assert len(episodes) == 6 and all(e.length == 1 for e in episodes)  # one-step episodes
    assert buffers.terminated.all() and buffers.action.shape == (3, 2, 2)


def test_trajectories_can_keep_each_ended_episodes_last_observation(monkeypatch):
    # Painting episodes end after 2 strokes; the stroke-count plane of the last observation is
    # 255 (done), while o_{t+1} there is already the next episode's first (plane 0).
    from genlab.envs import paint_tasks
    from genlab.envs.paint import PaintConfig

    monkeypatch.setattr(paint_tasks, "DEFAULT", PaintConfig(renderer="numpy", episode_length=2))
    cfg = ImpalaConfig(env="paint:mnist", unroll=4)
    object.__setattr__(cfg, "keep_final_obs", True)  # what a learner needing it sets
    agent, (batch,) = inline_batch(cfg, batch=2)
    assert batch.final_obs.shape == (4, 2, 3, 64, 64)  # canvas, stroke count, pen
    ended = batch.terminated
    assert ended[:, 0].tolist() == [False, True, False, True]
    assert (batch.final_obs[ended][:, 1] == 255).all()  # the episode's end, not the next start
    assert (batch.obs[1:][ended][:, 1] == 0).all()
    with torch.no_grad():  # the loss ignores the extra field
        assert torch.isfinite(actor_critic_loss(agent.net, batch, cfg)["loss"])


def test_the_weights_broadcast_to_actors_are_the_same_in_any_memory_layout():
    """bf16 training lays convolution weights out channels-last; the learner still sends the
    actors every weight in order, and an actor's contiguous copy loads them back."""
    torch.manual_seed(0)
    learner = ImpalaAgent(ImpalaConfig()).net
    expected = torch.cat([p.detach().flatten() for p in learner.parameters()])
    learner.to(memory_format=torch.channels_last)
    assert any(not p.is_contiguous() for p in learner.parameters())
    assert torch.equal(flat_weights(learner), expected)
    actor = ImpalaAgent(ImpalaConfig()).net
    torch.nn.utils.vector_to_parameters(flat_weights(learner), actor.parameters())
    assert all(torch.equal(a, b) for a, b in zip(actor.parameters(), learner.parameters(),
                                                 strict=True))  # fmt: skip


@pytest.mark.parametrize("config", [ImpalaConfig, A2CConfig])
@pytest.mark.parametrize("lstm", [0, 32])
def test_under_bf16_the_learner_s_losses_stay_float32_and_near_float32(config, lstm):
    """IMPALA's and A2C's bf16 path (measured 1.3-1.7x per learner step on 2 threads): the
    torso's convolutions run in bfloat16; values, log-probabilities and every loss come out
    float32 and close to their float32 values, on a real MinAtar batch. Measured: within 0.9%
    with the default feed-forward core; with an LSTM core the policy loss, a small mean of
    signed terms, moves by up to 6.4% of itself (the absolute term covers it)."""
    torch.manual_seed(0)
    cfg = config(lstm=lstm)
    agent = ImpalaAgent(cfg)
    source = InlineSource(agent.net, cfg, agent.channels, 4, seed=0)
    batch = source.batch(0)
    source.close()
    check_bf16_metrics_near_fp32(agent, lambda: agent.loss(batch), rel=0.03, atol=2e-3)
