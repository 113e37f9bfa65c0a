"""World Models on Doom Take Cover (issue 36 A): the environment, its episodes, C's moves, the
batched dream the search plays, and the pipeline from the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from genlab.agents.world_models.controller import LinearController, controller_size, three_way
from genlab.agents.world_models.dream import DreamEnv, dream_scores, memory_features
from genlab.agents.world_models.games import CARRACING, DOOM
from genlab.agents.world_models.mdnrnn import MDNRNN, MDNRNNConfig
from genlab.errors import ConfigError

pytest.importorskip("vizdoom")


# --- the environment and its episodes -----------------------------------------------------------
def test_take_cover_pays_one_per_step_until_the_agent_dies_and_repeats_under_a_seed():
    from genlab.envs.registry import env_spec, make_env

    env = make_env("vizdoom:TakeCover")
    spec = env_spec("vizdoom:TakeCover", env)
    assert spec.obs_shape == (3, 64, 64) and spec.action_sizes == (3,) and spec.family == "vizdoom"

    def episode(seed):
        obs, _ = env.reset(seed=seed)
        frames, rewards, rng, done = [obs], [], np.random.default_rng(0), False
        while not done:
            obs, r, terminated, truncated, _ = env.step(int(rng.integers(3)))
            frames.append(obs)
            rewards.append(r)
            done = terminated or truncated
        return np.stack(frames), rewards, terminated

    a, ra, died = episode(4)
    assert died and set(ra) == {1.0} and 20 < len(ra) < 2100  # random play dies early
    b, rb, _ = episode(4)
    assert np.array_equal(a, b) and ra == rb
    c, _, _ = episode(5)
    assert len(c) != len(a) or not np.array_equal(a, c)
    with pytest.raises(ConfigError, match="known scenarios are TakeCover"):
        make_env("vizdoom:Basic")


def test_a_doom_episode_is_stored_as_the_car_s_and_replays():
    from genlab.agents.world_models.doom import play, random_moves

    moves = random_moves(np.random.default_rng(1), 200)
    assert set(np.unique(moves)) <= {-1.0, 0.0, 1.0} and moves.shape == (200, 1)
    runs = [len(r) for r in np.split(moves[:, 0], np.flatnonzero(np.diff(moves[:, 0])) + 1)]
    assert np.mean(runs) > 2  # moves are held, not redrawn every step
    ep = play(11, max_steps=2100)
    T = len(ep.actions)
    assert ep.frames.shape == (T + 1, 64, 64, 3) and ep.frames.dtype == np.uint8
    assert ep.actions.shape == (T, 1) and ep.rewards.sum() == T and ep.dones.tolist()[-1]
    assert not ep.dones[:-1].any()
    again = play(11, max_steps=2100)
    assert np.array_equal(again.frames, ep.frames) and np.array_equal(again.actions, ep.actions)
    cut = play(11, max_steps=10)
    assert len(cut.actions) == 10 and not cut.dones.any()  # cut, not died
    stay = play(11, max_steps=2100, policy=lambda frame: np.zeros(1, np.float32))
    assert (stay.actions == 0).all() and len(stay.actions) != T


def test_no_vizdoom_process_outlives_a_collection_or_its_workers(tmp_path):
    """Each game is a vizdoom process that ignores SIGTERM and outlives its owner unless
    closed: a pool that finished, one that was terminated, and this process's own game. Only
    games started here count (others may run beside the tests): orphans (parent 1) and this
    process's children that are new since the test began."""
    import multiprocessing as mp
    import os
    import subprocess

    from genlab.agents.world_models import doom
    from genlab.agents.world_models.games import collect

    def games() -> dict[int, int]:  # vizdoom pid -> parent pid
        ps = subprocess.run(["ps", "-eo", "pid=,ppid=,args="], capture_output=True, text=True)
        rows = [line.split(None, 2) for line in ps.stdout.splitlines()]
        return {int(r[0]): int(r[1]) for r in rows if len(r) == 3 and "vizdoom/vizdoom " in r[2]}

    before = set(games())

    def ours() -> dict[int, int]:
        return {p: pp for p, pp in games().items()
                if p not in before and pp in (1, os.getpid())}  # fmt: skip

    collect(tmp_path, 2, workers=2, max_steps=5, env="vizdoom:TakeCover", progress=False)
    assert ours() == {}
    pool = mp.get_context("spawn").Pool(2)
    assert list(pool.map(_five_steps, [1, 2])) == [5, 5]
    pool.terminate()
    pool.join()
    assert ours() == {}
    doom.play(3, max_steps=5)
    assert list(ours().values()) == [os.getpid()]  # this process's own game, while it lives
    doom.close_games()
    assert ours() == {}


def test_a_worker_whose_main_thread_cannot_take_sigterm_still_closes_its_game_and_ends():
    """Pool.terminate() while a worker's main thread cannot run Python's handler (blocked in a
    C call that a signal does not wake, here made certain by masking SIGTERM in that thread):
    the watcher thread closes the game and ends the worker, instead of Pool.terminate()
    waiting for it forever and the game outliving it."""
    import multiprocessing as mp
    import signal
    import subprocess

    ctx = mp.get_context("spawn")
    ready = ctx.Event()
    worker = ctx.Process(target=_game_then_deaf_to_sigterm, args=(ready,))
    worker.start()
    try:
        assert ready.wait(60), "the worker never started its game"
        game = subprocess.run(["pgrep", "-P", str(worker.pid), "-f", "vizdoom/vizdoom "],
                              capture_output=True, text=True).stdout.split()  # fmt: skip
        assert len(game) == 1
        worker.terminate()  # SIGTERM, as Pool.terminate() sends
        worker.join(20)
        assert worker.exitcode == 128 + signal.SIGTERM  # the watcher's exit, not a hang
        assert subprocess.run(["ps", "-p", game[0], "-o", "stat="], capture_output=True,
                              text=True).stdout.strip() in ("", "Z")  # fmt: skip
    finally:
        if worker.is_alive():
            worker.kill()


def _game_then_deaf_to_sigterm(ready) -> None:
    import signal
    import time

    from genlab.agents.world_models.doom import environment

    environment(5)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})  # the main thread never takes it
    ready.set()
    time.sleep(60)


def _five_steps(seed: int) -> int:
    from genlab.agents.world_models.doom import play

    return len(play(seed, max_steps=5).actions)


# --- C's moves --------------------------------------------------------------------------------
def test_doom_controller_quantises_tanh_into_left_stay_right_as_the_paper():
    u = np.array([-0.9, -0.34, -0.33, 0.0, 0.33, 0.34, 0.99])
    assert three_way(u).tolist() == [-1, -1, 0, 0, 0, 1, 1]
    rng = np.random.default_rng(2)
    params = rng.normal(size=controller_size(3, 8, 1))
    c = LinearController(params, 3, 8, output="doom")
    x = rng.normal(size=(5, 11)).astype(np.float32)
    naive = [three_way(np.tanh(params[:11] @ row + params[11])) for row in x]
    assert c(x)[:, 0].tolist() == naive  # a batch of observations, row by row
    with pytest.raises(ConfigError, match="12"):
        LinearController(np.zeros(867), 3, 8, output="doom")
    with pytest.raises(ConfigError, match="car, doom"):
        LinearController(params, 3, 8, output="boat")


# --- the dream, batched -------------------------------------------------------------------------
def near_deterministic_m(cfg: MDNRNNConfig, done_bias: float) -> MDNRNN:
    """An M whose draws are (almost) its means: one mixture, std e^-7; done fixed by the bias."""
    torch.manual_seed(0)
    m = MDNRNN(cfg)
    with torch.no_grad():
        K = cfg.mixtures  # each dimension's outputs: K logits, K means, K log std devs
        rows = torch.arange(3 * K * cfg.latent_dim).view(cfg.latent_dim, 3 * K)[:, 2 * K :]
        m.mdn.weight[rows.flatten()] = 0.0
        m.mdn.bias[rows.flatten()] = -7.0
        m.done.weight.zero_()
        m.done.bias.fill_(done_bias)
    return m


def test_batched_dreams_equal_dreams_played_one_at_a_time():
    cfg = MDNRNNConfig(latent_dim=4, hidden=8, mixtures=1)
    m = near_deterministic_m(cfg, -30.0)  # never ends: only the step limit does
    z0 = np.random.default_rng(0).normal(size=(6, 4))
    rng = np.random.default_rng(3)
    controllers = [LinearController(rng.normal(size=controller_size(4, 8)), 4, 8) for _ in range(3)]
    seeds = [10, 11]
    returns, steps = dream_scores(m, z0, controllers, seeds, 1e-4, 15, CARRACING)
    assert returns.shape == (3, 2) and steps == 3 * 2 * 15
    for p, c in enumerate(controllers):
        for r, seed in enumerate(seeds):
            env = DreamEnv(m, z0, 1e-4, 15, CARRACING)
            env.reset(seed=0)
            start = np.random.default_rng(seed).integers(len(z0))
            env.z = torch.from_numpy(z0[start].astype(np.float32))[None]
            obs, total, done = env._observation(), 0.0, False
            while not done:
                obs, reward, terminated, truncated, _ = env.step(c(obs))
                total, done = total + reward, terminated or truncated
            assert returns[p, r] == pytest.approx(total, abs=1e-3)


def test_doom_dreams_pay_the_time_alive_and_stop_counting_the_dead():
    cfg = MDNRNNConfig(latent_dim=4, hidden=8, mixtures=2, action_dim=1)
    z0 = np.zeros((2, 4))
    still = [LinearController(np.zeros(controller_size(4, 16, 1)), 4, 16, output="doom")] * 2
    never = near_deterministic_m(cfg, -30.0)
    returns, steps = dream_scores(never, z0, still, [0, 1, 2], 1.0, 25, DOOM)
    assert (returns == 25).all() and steps == 2 * 3 * 25
    at_once = near_deterministic_m(cfg, 30.0)
    assert (dream_scores(at_once, z0, still, [0], 1.0, 25, DOOM)[0] == 1).all()
    coin = near_deterministic_m(cfg, 0.0)  # p(death) 1/2 a step
    returns, steps = dream_scores(coin, z0, still * 20, [0, 1], 1.0, 25, DOOM)
    assert returns.sum() == steps and 1.5 < returns.mean() < 2.5  # geometric, mean 2
    with pytest.raises(ConfigError, match="1 action values"):
        dream_scores(MDNRNN(MDNRNNConfig(latent_dim=4, hidden=8)), z0, still, [0], 1.0, 5, DOOM)


def test_the_doom_dream_shows_c_its_cell_state_too():
    cfg = MDNRNNConfig(latent_dim=4, hidden=8, mixtures=2, action_dim=1)
    env = DreamEnv(MDNRNN(cfg), np.zeros((1, 4)), 1.0, 10, DOOM)
    env.reset(seed=0)
    obs, *_ = env.step(np.ones(1, np.float32))
    h, c = env.state
    assert obs.shape == (4 + 16,) and env.observation_space.shape == (20,)
    assert np.allclose(obs[4:], memory_features(env.state, True)[0].numpy())
    assert np.allclose(obs[4:12], h[0, 0].numpy()) and np.allclose(obs[12:], c[0, 0].numpy())


def test_the_dream_gif_holds_the_real_episode_beside_the_dream():
    from genlab.agents.world_models.evaluation import beside

    left = np.arange(3 * 2 * 2 * 3, dtype=np.uint8).reshape(3, 2, 2, 3)
    right = 200 + np.arange(2 * 2 * 2 * 3, dtype=np.uint8).reshape(2, 2, 2, 3)
    frames = beside(left, right, gap=1)
    assert len(frames) == 3 and frames[0].shape == (2, 5, 3)
    for t in range(3):
        assert np.array_equal(frames[t][:, :2], left[t]) and (frames[t][:, 2] == 255).all()
        assert np.array_equal(frames[t][:, 3:], right[min(t, 1)])  # the dream ended: held


# --- the pipeline, stage by stage -------------------------------------------------------------------
def test_the_doom_pipeline_runs_stage_by_stage_from_the_cli(tmp_path, capsys, monkeypatch):
    from genlab.cli import main

    d, tiny = str(tmp_path), ["--workers", "1", "--max-steps", "30"]
    doom = ["--env", "vizdoom:TakeCover"]
    assert main(["worldmodels", "collect", *doom, d, "--episodes", "3", *tiny]) == 0
    assert main(["worldmodels", "train-v", *doom, d, "--steps", "2", "--batch-size", "8",
                 "--quiet"]) == 0  # fmt: skip
    v = json.loads((tmp_path / "vae" / "config.json").read_text())
    assert v["data"] == "doom" and v["model_options"]["latent_dim"] == 64  # the paper's z
    assert main(["worldmodels", "train-m", d, "--steps", "2", "--batch-size", "4", "--seq-len",
                 "8", "--hidden", "16", "--quiet"]) == 0  # fmt: skip
    m = json.loads((tmp_path / "mdnrnn" / "config.json").read_text())["model_options"]
    assert m["action_dim"] == 1 and m["latent_dim"] == 64
    capsys.readouterr()
    search = ["--popsize", "3", "--generations", "2", *tiny]
    assert main(["worldmodels", "train-c", d, "--dream", *search]) == 0
    rows = [json.loads(r) for r in (tmp_path / "controller-dream" / "metrics.jsonl").open()]
    assert all(r["max_return"] <= 30 for r in rows)  # 1 per step alive, cut at 30
    config = json.loads((tmp_path / "controller-dream" / "config.json").read_text())
    assert config["game"] == "doom" and config["max_steps"] == 30
    capsys.readouterr()
    assert main(["worldmodels", "eval", d, "--controller", "controller-dream", "--episodes",
                 "2", *tiny]) == 0  # fmt: skip
    report = json.loads(capsys.readouterr().out.splitlines()[0])
    assert len(report["returns"]) == 2 and all(1 <= r <= 30 for r in report["returns"])
    assert report["trained_in"] == "dream (tau 1.15)" and "dream_mean_return" in report
    # iterative training: the controller plays the missing episodes 3 and 4 for M
    assert main(["worldmodels", "collect", d, "--controller", "controller-dream", "--episodes",
                 "5", "--explore", "0.5", *tiny]) == 0  # fmt: skip
    report = json.loads(capsys.readouterr().out.splitlines()[0])
    assert report["new_episodes"] == 2 and report["game"] == "doom"
    assert sorted(p.name for p in (tmp_path / "data" / "doom").glob("episode_*.npz"))[-1] == (
        "episode_00004.npz")  # fmt: skip
    import genlab.tasks.world_models as tasks_wm

    encoded, encode = [], tasks_wm.encode_episodes

    def counting(vae, files, **kw):
        encoded.append(len(files))
        return encode(vae, files, **kw)

    monkeypatch.setattr(tasks_wm, "encode_episodes", counting)
    assert main(["worldmodels", "train-m", d, "--steps", "4", "--batch-size", "4", "--seq-len",
                 "8", "--hidden", "16", "--quiet"]) == 0  # M resumes on the five  # fmt: skip
    # V's encodings for M: the two new episodes encoded and added to the cached three
    from genlab.agents.world_models.sequences import encode_episodes
    from genlab.data.episodes import episode_files
    from genlab.tasks.world_models import load_v

    (cache,) = (tmp_path / "vae").glob("latents-step*.pt")
    saved = torch.load(cache, weights_only=True)
    whole = encode_episodes(load_v(tmp_path / "vae")[0], episode_files(tmp_path / "data" / "doom"))
    assert encoded == [2]  # only the new episodes went through V
    assert len(saved["files"]) == 5 and torch.equal(saved["latents"]["offsets"], whole.offsets)
    assert torch.allclose(saved["latents"]["mu"], whole.mu, atol=1e-5)
    assert main(["worldmodels", "collect", d, "--controller", "controller-dream", "--env",
                 "gym:CarRacing-v3", "--episodes", "6", *tiny]) == 2  # fmt: skip
    assert "plays vizdoom:TakeCover" in capsys.readouterr().err
    assert main(["worldmodels", "collect", d, "--controller", "controller-dream", "--explore",
                 "1.5", "--episodes", "6", *tiny]) == 2  # fmt: skip
    assert "--explore must be a probability in [0, 1], got 1.5" in capsys.readouterr().err
    assert not (tmp_path / "data" / "doom" / "episode_00005.npz").exists()
