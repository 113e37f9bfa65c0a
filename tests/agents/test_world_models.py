"""World Models: the MDN likelihood and sampler, M's masked loss, C's size and actions, and the
dream as a valid, seeded gymnasium.Env."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from genlab.agents.world_models.controller import LinearController, controller_size
from genlab.agents.world_models.dream import DreamEnv
from genlab.agents.world_models.mdnrnn import MDNRNN, MDNRNNConfig, mdn_log_prob, mdn_sample
from genlab.agents.world_models.sequences import LatentEpisodes, SequenceBatches
from genlab.errors import ConfigError, DataError
from genlab.tasks.world_models import evaluate_memory, load_controller

gym = pytest.importorskip("gymnasium")

SMALL = MDNRNNConfig(latent_dim=4, hidden=16, mixtures=3)


def mixture(shape=(2, 5, 4, 3)):
    torch.manual_seed(0)
    return torch.randn(shape), torch.randn(shape), 0.3 * torch.randn(shape)


def test_mdn_log_prob_matches_torch_distributions():
    logit_pi, mu, log_sigma = mixture()
    z = torch.randn(2, 5, 4)
    reference = (
        torch.distributions.MixtureSameFamily(
            torch.distributions.Categorical(logits=logit_pi),
            torch.distributions.Normal(mu, log_sigma.exp()),
        )
        .log_prob(z)
        .sum(-1)
    )  # independent dimensions
    assert torch.allclose(mdn_log_prob(logit_pi, mu, log_sigma, z), reference, atol=1e-5)


def test_mdn_samples_follow_the_mixture_and_temperature_sharpens_them():
    logit_pi = torch.tensor([[0.0, 1.0]])  # one dimension, two components
    mu, log_sigma = torch.tensor([[-3.0, 2.0]]), torch.log(torch.tensor([[0.5, 1.0]]))
    g = torch.Generator().manual_seed(0)
    n = 40000
    draws = mdn_sample(logit_pi.expand(n, 1, 2), mu.expand(n, 1, 2), log_sigma.expand(n, 1, 2),
                       1.0, g)[:, 0]  # fmt: skip
    pi = torch.softmax(logit_pi[0], -1)
    mean = (pi * mu[0]).sum()
    var = (pi * (log_sigma[0].exp().square() + mu[0].square())).sum() - mean.square()
    assert draws.mean().item() == pytest.approx(mean.item(), abs=0.05)
    assert draws.var().item() == pytest.approx(var.item(), rel=0.05)
    cold = mdn_sample(logit_pi.expand(n, 1, 2), mu.expand(n, 1, 2), log_sigma.expand(n, 1, 2),
                      0.05, g)[:, 0]  # fmt: skip
    assert (cold > 0).float().mean() > 0.99  # almost always the heavier component
    assert cold[cold > 0].std() < 0.3  # std * sqrt(tau)
    with pytest.raises(ConfigError, match="tau"):
        mdn_sample(logit_pi, mu, log_sigma, 0.0)


def sequences(B=3, T=6):
    torch.manual_seed(1)
    mask = torch.ones(B, T, dtype=torch.bool)
    mask[0, 4:] = False
    return {"z": torch.randn(B, T + 1, 4), "a": torch.rand(B, T, 3), "r": torch.randn(B, T),
            "d": torch.zeros(B, T), "mask": mask}  # fmt: skip


def test_m_loss_ignores_padding_and_adds_its_terms():
    torch.manual_seed(0)
    m = MDNRNN(SMALL)
    batch = sequences()
    out = m.loss(batch)
    assert out["loss"].item() == pytest.approx(
        (out["z_nll"] + out["reward_mse"] + out["done_bce"]).item(), rel=1e-5
    )
    padded = {k: v.clone() for k, v in batch.items()}
    padded["z"][0, 5:] += 100.0  # targets and inputs past the mask
    padded["r"][0, 4:] = 1e3
    assert m.loss(padded)["loss"].item() == pytest.approx(out["loss"].item(), rel=1e-6)
    out["loss"].backward()
    assert all(p.grad is not None for p in m.parameters())


def test_controller_size_formula_and_action_ranges():
    assert controller_size(32, 256, 3) == 867  # the paper's count
    rng = np.random.default_rng(0)
    c = LinearController(rng.normal(size=controller_size(4, 16)) * 3, 4, 16)
    for _ in range(20):
        a = c(rng.normal(size=20).astype(np.float32))
        assert (
            a.dtype == np.float32 and -1 <= a[0] <= 1 and (a[1:] >= 0).all() and (a[1:] <= 1).all()
        )
    zero = LinearController(np.zeros(controller_size(4, 16)), 4, 16)
    assert zero(np.ones(20, np.float32)).tolist() == [0.0, 0.5, 0.0]  # drives off, no brake
    shifted = LinearController(np.zeros(controller_size(4, 16)), 4, 16, brake="shift")
    assert shifted(np.ones(20, np.float32)).tolist() == [0.0, 0.5, 0.5]
    with pytest.raises(ConfigError, match="brake"):
        LinearController(np.zeros(controller_size(4, 16)), 4, 16, brake="half")


def test_brakes_follow_their_formulas_one_action_at_a_time():
    rng = np.random.default_rng(1)
    params = rng.normal(size=controller_size(4, 16))
    w, b = params[:60].reshape(3, 20), params[60:]
    for brake, squash in (
        ("clip", lambda u: min(max(u, 0.0), 1.0)),
        ("shift", lambda u: (u + 1) / 2),
    ):
        c = LinearController(params, 4, 16, brake=brake)
        for _ in range(10):
            x = rng.normal(size=20).astype(np.float32)
            u = [
                float(np.tanh(sum(w[i, j] * float(x[j]) for j in range(20)) + b[i]))
                for i in range(3)
            ]
            assert c(x) == pytest.approx([u[0], (u[1] + 1) / 2, squash(u[2])], abs=1e-6)
    with pytest.raises(ConfigError, match="867"):
        LinearController(np.zeros(10), 32, 256)


def dream(tau=1.0, max_steps=50) -> DreamEnv:
    torch.manual_seed(0)
    m = MDNRNN(SMALL)
    with torch.no_grad():
        m.done.bias.fill_(-4.0)  # episodes end now and then, not at once
    return DreamEnv(m, np.random.default_rng(0).normal(size=(5, 4)), tau, max_steps)


def test_baselines_play_the_controllers_evaluation_games_each_with_its_own_policy():
    from genlab.agents.world_models.evaluation import EVAL_SEED, baseline_returns
    from genlab.agents.world_models.games import PONG
    from genlab.data.episodes import Episode

    played = []

    def play(seed, max_steps, policy=None):  # a game that pays its seed's last digit
        played.append((seed, max_steps, policy))
        return Episode(np.zeros((2, 1)), np.zeros((1, 1)), np.array([seed % 10], np.float32),
                       np.zeros(1, bool))  # fmt: skip

    game = dataclasses.replace(PONG, play=play)
    report = baseline_returns(game, 3, 7, policy_for=lambda i: f"policy {i}")
    assert played == [(EVAL_SEED + i, 7, f"policy {i}") for i in range(3)]
    assert report["returns"] == [0.0, 1.0, 2.0] and report["mean_return"] == 1.0
    assert report["std_return"] == pytest.approx(np.std([0, 1, 2]))
    baseline_returns(game, 1, 7)
    assert played[-1][2] is None  # the game's own random policy


def test_fitness_orders_by_return_then_on_ties_by_length_as_a_sort_would():
    from genlab.agents.world_models.search import fitness

    rng = np.random.default_rng(0)
    max_steps, P, R = 50, 40, 3
    returns = rng.integers(-3, 2, (P, R)).astype(float)  # whole points, many ties
    lengths = rng.integers(1, max_steps + 1, (P, R)).astype(float)
    np.testing.assert_array_equal(fitness(returns, lengths, max_steps, False), returns.mean(1))
    score = fitness(returns, lengths, max_steps, True)
    keys = sorted(range(P), key=lambda p: (returns[p].sum(), lengths[p].sum()))  # exact sums
    ranked = [(returns[p].sum(), lengths[p].sum()) for p in np.argsort(score, kind="stable")]
    assert ranked == [(returns[p].sum(), lengths[p].sum()) for p in keys]
    assert len({r for r, _ in ranked}) > 1 and len(set(ranked)) < P  # ties in both were drawn


def test_dream_is_a_valid_gymnasium_env():
    from gymnasium.utils.env_checker import check_env

    check_env(dream(), skip_render_check=True)


def test_a_dream_that_ends_at_once_is_refused_before_a_search():
    from genlab.agents.world_models.dream import check_dream

    env = dream()
    check_dream(MDNRNN(SMALL), env.initial_z, 1.0)  # untrained, at its done prior: dreams last
    with torch.no_grad():
        env.m.done.bias.fill_(4.0)  # p(done) 0.98 at every step, as the CarRacing M did
    with pytest.raises(ConfigError, match=r"ends its dreams at once.*first step is 0\.9"):
        check_dream(env.m, env.initial_z, 1.0)


def test_dream_is_deterministic_under_a_seed_and_tau_matters():
    def rollout(env, seed):
        obs, _ = env.reset(seed=seed)
        trace, rewards = [obs], []
        for t in range(30):
            obs, r, term, trunc, _ = env.step(np.array([np.sin(t), 0.5, 0.0], np.float32))
            trace.append(obs)
            rewards.append(r)
            if term or trunc:
                break
        return np.stack(trace), rewards

    a, ra = rollout(dream(), 3)
    b, rb = rollout(dream(), 3)
    assert np.array_equal(a, b) and ra == rb
    c, _ = rollout(dream(), 4)
    assert not np.array_equal(a[: len(c)], c[: len(a)])
    cold, _ = rollout(dream(tau=0.01), 3)
    assert not np.array_equal(a[1:3], cold[1:3])
    env = dream(max_steps=5)
    with torch.no_grad():
        env.m.done.bias.fill_(-30.0)  # never ends by itself: only the step limit cuts it
    env.reset(seed=0)
    ends = [env.step(env.action_space.sample())[2:4] for _ in range(5)]
    assert ends == [(False, False)] * 4 + [(False, True)]
    with pytest.raises(ConfigError, match="initial_z"):
        DreamEnv(MDNRNN(SMALL), np.zeros((3, 7)))


# --- data: rollouts and M's windows ------------------------------------------------------------
def test_a_collected_episode_is_complete_replayable_and_atomic(tmp_path):
    from genlab.agents.world_models.games import collect
    from genlab.agents.world_models.rollouts import play
    from genlab.data.episodes import episode_files, load_episode

    report = collect(tmp_path, 2, workers=1, max_steps=15, seed=3, progress=False)
    assert report["new_episodes"] == 2 and report["new_steps"] == 30
    files = episode_files(tmp_path)
    assert [f.name for f in files] == ["episode_00000.npz", "episode_00001.npz"]
    ep = load_episode(files[1])
    assert ep.frames.shape == (16, 64, 64, 3) and ep.frames.dtype == np.uint8  # T + 1 frames
    assert ep.actions.shape == (15, 3) and ep.rewards.shape == (15,) and not ep.dones.any()
    assert (ep.actions[:, 0] >= -1).all() and (ep.actions[:, 1:] >= 0).all()
    again = play(3 * 100_003 + 1, 15)
    assert np.array_equal(again.frames, ep.frames) and np.array_equal(again.actions, ep.actions)
    assert (
        collect(tmp_path, 2, workers=1, max_steps=15, seed=3, progress=False)["new_episodes"] == 0
    )
    files[0].write_bytes(b"not a zip")
    with pytest.raises(DataError, match="episode_00000"):
        load_episode(files[0])


def test_fast_road_drawing_gives_gymnasium_s_own_pixels():
    """Whole observations, bit for bit: through the opening zoom, tiles recoloured as the car
    visits them, and a new track on a second reset of the same env."""
    from genlab.agents.world_models.road import draw_road_fast
    from genlab.agents.world_models.rollouts import ENV_ID, brownian_actions

    theirs, ours = gym.make(ENV_ID), gym.make(ENV_ID)
    draw_road_fast(ours)
    for seed in (5, 11):
        a, _ = theirs.reset(seed=seed)
        b, _ = ours.reset(seed=seed)
        assert np.array_equal(a, b)
        for t, action in enumerate(brownian_actions(np.random.default_rng(seed), 40)):
            (a, ra, *_), (b, rb, *_) = theirs.step(action), ours.step(action)
            assert np.array_equal(a, b), f"seed {seed} step {t}: {(a != b).sum()} values differ"
            assert ra == rb
    assert ours.unwrapped._road_corners.shape == (len(ours.unwrapped.road_poly), 4, 2)
    with pytest.raises(TypeError, match="CarRacing"):
        draw_road_fast(gym.make("CartPole-v1"))


def test_road_corners_go_to_the_screen_as_pygame_moves_them_one_by_one():
    from pygame.math import Vector2

    from genlab.agents.world_models.road import on_screen, to_screen

    corners = np.random.default_rng(0).uniform(-300, 300, (50, 4, 2))
    zoom, shift = 16.2, (512.3, 180.7)
    for angle in (0.0, 0.3, -2.9, math.pi / 2, 7.0):
        loop = [[(v.x * zoom + shift[0], v.y * zoom + shift[1])
                 for v in (Vector2(tuple(c)).rotate_rad(angle) for c in poly)]
                for poly in corners]  # fmt: skip
        assert np.array_equal(to_screen(corners, zoom, shift, angle), np.array(loop))
    far = np.full((1, 4, 2), 5000.0)
    near = far.copy()
    near[0, 2] = (10.0, 10.0)  # one corner on screen is enough
    assert on_screen(np.concatenate([far, near])).tolist() == [False, True]


def synthetic_latents(lengths=(5, 3, 8)) -> LatentEpisodes:
    """Frame rows carry their own (episode, frame) in mu, with ~zero variance, so a batch's z
    says exactly which frames it came from."""
    mu, actions = [], []
    for k, T in enumerate(lengths):
        mu += [[k, f] for f in range(T + 1)]
        actions += [[k, t, 0] for t in range(T)]
    steps = sum(lengths)
    offsets = torch.tensor([0, *np.cumsum(lengths)])
    return LatentEpisodes(torch.tensor(mu).float(), torch.full((len(mu), 2), -40.0),
                          torch.tensor(actions).float(), torch.arange(steps).float(),
                          torch.zeros(steps), offsets)  # fmt: skip


def test_windows_pair_each_step_with_its_frame_and_the_next():
    data = synthetic_latents()
    b = SequenceBatches(data, 4, 64, seed=0).batch(7)
    z, a, mask = b["z"], b["a"], b["mask"]
    assert z.shape == (64, 5, 2) and a.shape == (64, 4, 3) and mask.shape == (64, 4)
    for i in range(64):
        for t in range(4):
            if not mask[i, t]:
                continue
            episode, step = a[i, t, 0], a[i, t, 1]
            assert torch.allclose(z[i, t], torch.tensor([episode, step]), atol=1e-4)
            assert torch.allclose(z[i, t + 1], torch.tensor([episode, step + 1]), atol=1e-4)
    assert not mask.all() and mask[:, 0].all()  # the 3-step episode cannot fill a window
    assert torch.equal(b["z"], SequenceBatches(data, 4, 64, seed=0).batch(7)["z"])


def test_a_share_of_windows_starts_where_dreams_start():
    data = synthetic_latents((40, 40, 40))
    first_frame = [SequenceBatches(data, 4, 400, seed=0, from_start=share).batch(3)["z"][:, 0, 1]
                   for share in (0.0, 0.25, 1.0)]  # fmt: skip
    at_start = [float((f.round() == 0).float().mean()) for f in first_frame]
    assert at_start[0] < 0.1 and 0.2 < at_start[1] < 0.4 and at_start[2] == 1.0
    with pytest.raises(ConfigError, match="from_start"):
        SequenceBatches(data, 4, 8, seed=0, from_start=1.5)


def test_every_step_of_an_episode_is_seen_about_equally_often_its_last_too():
    # The last step is where a Doom episode's death is: windows kept inside the episode
    # showed it once in T - L + 1 windows, and M learned deaths a fifth as often as they are.
    data = synthetic_latents((60,))
    b = SequenceBatches(data, 10, 4000, seed=0, from_start=0.0).batch(0)
    seen = torch.bincount(b["a"][..., 1][b["mask"]].long(), minlength=60).float()
    assert seen[9:].min() > 0.8 * seen[9:].mean()  # steps any window can start before
    assert seen[59] > 0.8 * seen[9:].mean()


def test_ms_evaluation_sets_the_deaths_it_expects_beside_those_that_happened():
    data = synthetic_latents((5, 3, 8))
    dones = torch.zeros(16)
    dones[[4, 15]] = 1.0  # episodes 0 and 2 end in a death, episode 1 is cut
    data = dataclasses.replace(data, dones=dones)
    m = MDNRNN(MDNRNNConfig(latent_dim=2, action_dim=3, hidden=8, mixtures=2)).eval()
    with torch.no_grad():  # p(done) 0.1 at every step, whatever M has seen
        m.done.weight.zero_()
        m.done.bias.fill_(math.log(0.1 / 0.9))
    scores = evaluate_memory(m, m.cfg, (data, data))
    assert scores["deaths"] == 2 and scores["steps"] == 16
    assert scores["deaths_expected"] == pytest.approx(1.6, abs=0.01)  # 0.1 x 16 steps


def test_split_and_first_latents_keep_episodes_whole():
    data = synthetic_latents((5, 3, 8, 2))
    train, test = data.split()  # fewer than ten episodes: the last one is test
    assert len(train) == 3 and len(test) == 1 and test.offsets.tolist() == [0, 2]
    assert test.mu[:, 0].tolist() == [3, 3, 3] and test.actions[:, 0].tolist() == [3, 3]
    assert data.first_latents().tolist() == [[0, 0], [1, 0], [2, 0], [3, 0]]


def test_the_pipeline_runs_stage_by_stage_from_the_cli(tmp_path, capsys):
    from genlab.cli import main

    d = str(tmp_path)
    tiny = ["--workers", "1", "--max-steps", "12"]
    assert main(["worldmodels", "collect", d, "--episodes", "3", *tiny]) == 0
    v, m = tmp_path / "vae", tmp_path / "mdnrnn"
    assert main(["worldmodels", "train-v", d, "--steps", "3", "--batch-size", "8", "--quiet"]) == 0
    assert (v / "pictures" / "reconstructions.png").is_file()
    assert json.loads((v / "v_check.json").read_text())["frames"] == 13  # the held-out episode
    assert "cannot see the road" in capsys.readouterr().err  # 3 steps: V draws the mean frame
    assert main(["worldmodels", "train-m", d, "--steps", "3", "--batch-size", "4", "--seq-len",
                 "8", "--hidden", "16", "--quiet"]) == 0  # fmt: skip
    assert len(list(v.glob("latents-step3.pt"))) == 1  # encoded once, cached in V's run
    assert "encode" not in capsys.readouterr().err  # no progress bar off a terminal
    assert main(["eval", str(m), "--data-dir", str(tmp_path / "data"), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["episodes"] == 1 and result["steps"] == 12 and math.isfinite(result["z_nll"])
    search = ["--popsize", "3", *tiny]
    assert main(["worldmodels", "train-c", d, "--generations", "2", *search]) == 0
    assert main(["worldmodels", "train-c", d, "--dream", "--generations", "1", *search]) == 0
    assert main(["worldmodels", "train-c", d, "--no-memory", "--generations", "1", *search]) == 0
    log = [json.loads(line) for line in (tmp_path / "controller" / "metrics.jsonl").open()]
    assert [row["step"] for row in log] == [1, 2] and log[1]["env_steps"] == 3 * 12
    capsys.readouterr()
    assert main(["worldmodels", "eval", d, "--episodes", "2", *tiny]) == 0
    report = json.loads(capsys.readouterr().out.splitlines()[0])
    assert len(report["returns"]) == 2 and report["memory"] and report["generation"] == 2
    assert report["brake"] == "clip"
    assert main(["worldmodels", "train-c", d, "--generations", "3", "--brake", "shift",
                 *search]) == 2  # fmt: skip
    assert "searched with brake 'clip'" in capsys.readouterr().err  # resumed alike or not at all
    config = tmp_path / "controller" / "config.json"
    legacy = {k: v for k, v in json.loads(config.read_text()).items() if k != "brake"}
    config.write_text(json.dumps(legacy))  # a search from before the brake was a choice
    assert load_controller(tmp_path / "controller")[0].brake == "shift"
    assert {Path(p).name for p in report["gifs"]} == {"real.gif", "dream.gif"}
    assert main(["worldmodels", "eval", d, "--controller", "controller-vc", "--episodes", "1",
                 *tiny]) == 0  # fmt: skip
    assert not json.loads(capsys.readouterr().out.splitlines()[0])["memory"]
    assert main(["train", "mdnrnn", "--data", "carracing", "--data-dir", str(tmp_path / "data"),
                 "--vae", str(v), "--latent-dim", "8", "--steps", "1",
                 "--out", str(tmp_path / "bad")]) == 2  # fmt: skip
    assert "set --latent-dim 32" in capsys.readouterr().err


def test_mse_against_the_mean_frame_matches_a_loop():
    from genlab.agents.world_models.vision import mse_against_mean_frame

    torch.manual_seed(1)
    frames, recon = torch.rand(5, 3, 4, 4), torch.rand(5, 3, 4, 4)
    mean = sum(frames[i] for i in range(5)) / 5
    v = sum(((recon[i] - frames[i]) ** 2).sum() for i in range(5)) / frames.numel()
    m = sum(((mean - frames[i]) ** 2).sum() for i in range(5)) / frames.numel()
    got = mse_against_mean_frame(frames, recon)
    assert got["v_mse"] == pytest.approx(v.item()) and got["mean_frame_mse"] == pytest.approx(
        m.item()
    )
    assert got["ratio"] == pytest.approx(v.item() / m.item())
    with pytest.raises(ValueError, match=r"\(5, 3, 4, 4\)"):
        mse_against_mean_frame(frames, recon[:4])


class _StubV:
    """encode/mean_image of a V that either copies each frame or draws the average frame."""

    def __init__(self, blind: bool, mean_frame: torch.Tensor):
        self.blind, self.mean_frame = blind, mean_frame

    def encode(self, x):
        return x, torch.zeros_like(x)

    def mean_image(self, z):
        return self.mean_frame.expand_as(z) if self.blind else z


def test_a_v_that_draws_the_mean_frame_is_called_blind_and_one_that_sees_is_not(tmp_path):
    from genlab.agents.world_models.vision import reconstruction_check
    from genlab.data.episodes import Episode, episode_path, save_episode

    rng = np.random.default_rng(0)
    held_out = []
    for k in range(10):  # episode 9 is the held-out one
        frames = rng.integers(0, 256, size=(7, 64, 64, 3), dtype=np.uint8)
        save_episode(Episode(frames, np.zeros((6, 3), np.float32), np.zeros(6, np.float32),
                             np.zeros(6, bool)), episode_path(tmp_path, k))  # fmt: skip
        held_out = frames
    mean = torch.from_numpy(held_out).permute(0, 3, 1, 2).float().mean(0, keepdim=True) / 255
    seeing = reconstruction_check(_StubV(False, mean), tmp_path, frames=5)
    blind = reconstruction_check(_StubV(True, mean), tmp_path, frames=7)
    assert seeing["frames"] == 5 and seeing["v_mse"] == 0 and not seeing["blind"]
    assert blind["frames"] == 7 and blind["ratio"] == pytest.approx(1.0) and blind["blind"]
    for k in range(10, 20):  # a second held-out episode (19): frames come from both
        save_episode(Episode(np.full((7, 64, 64, 3), k, np.uint8), np.zeros((6, 3), np.float32),
                             np.zeros(6, np.float32), np.zeros(6, bool)),
                     episode_path(tmp_path, k))  # fmt: skip
    both = reconstruction_check(_StubV(True, mean), tmp_path, frames=10)
    assert both["frames"] == 10 and both["ratio"] > 1.3  # 1.0 from episode 9 alone; 19 is flat


def test_v_input_is_channels_first_in_the_unit_interval():
    from genlab.agents.world_models.vision import v_input

    frames = np.random.default_rng(0).integers(0, 256, size=(2, 4, 5, 3), dtype=np.uint8)
    x = v_input(frames)
    assert x.shape == (2, 3, 4, 5) and x.dtype == torch.float32
    for t, c, i, j in np.ndindex(2, 3, 4, 5):
        assert x[t, c, i, j].item() == pytest.approx(frames[t, i, j, c] / 255)
    assert torch.equal(v_input(frames[1]), x[1])
