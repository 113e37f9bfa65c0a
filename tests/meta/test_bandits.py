"""Meta-RL: bandit baselines against hand-computed values, the task families, and the RL² agent
end to end. (GAE's test is in tests/agents/test_returns.py.)"""

from __future__ import annotations

import functools
import json
import math

import pytest
import torch
import torch.nn.functional as F

from genlab.cli import main
from genlab.errors import ConfigError
from genlab.meta import bandits as B
from genlab.meta.episodes import Bandits, Harlow
from genlab.meta.rl2 import RL2Agent, RL2Config


def test_gittins_index_matches_hand_computed_values():
    table = B.gittins_table(6)
    for s in range(6):
        for f in range(6 - s):  # one pull left (s + f <= 5): the index is the posterior mean
            assert table[1, s, f].item() == pytest.approx((s + 1) / (s + f + 2), abs=1e-9)
    # two pulls left from the prior: 5/6 + lambda/2 = 2 lambda  =>  lambda = 5/9
    assert table[2, 0, 0].item() == pytest.approx(5 / 9, abs=1e-6)
    assert (table[2:, 0, 0] >= 0.5).all()  # exploring an unknown arm is worth a premium
    assert (table[2:, 0, 0].diff() > 0).all()  # ... that grows with the horizon


def naive_gittins(h: int, s: int, f: int) -> float:
    """The index of one state by bisection on lambda, each lambda's calibration recursion run
    state by state."""

    def worth(lam: float) -> bool:  # is pulling the arm at least as good as retiring now?
        @functools.cache
        def w(h: int, s: int, f: int) -> float:
            if h == 0:
                return 0.0
            p = (s + 1) / (s + f + 2)
            return max(lam * h, p * (1 + w(h - 1, s + 1, f)) + (1 - p) * w(h - 1, s, f + 1))

        p = (s + 1) / (s + f + 2)
        return p * (1 + w(h - 1, s + 1, f)) + (1 - p) * w(h - 1, s, f + 1) >= lam * h

    lo, hi = 0.0, 1.0
    for _ in range(40):
        lo, hi = ((lo + hi) / 2, hi) if worth((lo + hi) / 2) else (lo, (lo + hi) / 2)
    return lo


def test_gittins_index_matches_bisection_at_every_state_an_episode_reaches():
    n = 9
    table = B.gittins_table(n)
    for h in range(1, n + 1):
        for s in range(n - h + 1):
            for f in range(n - h + 1 - s):
                assert table[h, s, f].item() == pytest.approx(naive_gittins(h, s, f), abs=2e-3)


def test_bayes_optimal_value_by_hand_and_no_baseline_beats_it():
    assert B.bayes_optimal_value(2, 2) == pytest.approx(13 / 12)  # 1/2 + 1/2 * 2/3 + 1/2 * 1/2
    assert B.bayes_optimal_value(1, 7) == pytest.approx(3.5)
    best = B.bayes_optimal_value(3, 6)
    fam = Bandits(arms=3, pulls=6)
    batch = fam.sample(40_000, torch.Generator().manual_seed(0))
    totals = {
        name: B.run_policy(make(6), fam, batch, torch.Generator().manual_seed(1))
        for name, make in B.BASELINES.items()
    }
    for name, t in totals.items():
        stderr = t.std().item() / len(t) ** 0.5
        assert t.mean().item() < best + 4 * stderr, name
    assert totals["gittins"].mean().item() == pytest.approx(best, rel=0.01)
    assert totals["random"].mean().item() == pytest.approx(3.0, abs=0.05)


def test_ucb1_tries_every_arm_once_first_and_thompson_gamma_has_the_right_mean():
    g = torch.Generator().manual_seed(0)
    fam = Bandits(arms=4, pulls=10)
    batch = fam.sample(50, g)
    s, f = torch.zeros(50, 4), torch.zeros(50, 4)
    for t in range(4):
        a = B.ucb1(10 - t, s, f, g)
        assert (s + f)[torch.arange(50), a].eq(0).all()
        r = fam.reward(batch, t, a)
        s[torch.arange(50), a] += r
        f[torch.arange(50), a] += 1 - r
    assert (s + f).eq(1).all()
    shape = torch.full((20_000,), 3.0)
    assert B._gamma(shape, g).mean().item() == pytest.approx(3.0, rel=0.03)


def test_bandit_and_harlow_episodes_pay_what_they_should():
    fam = Bandits(arms=3, pulls=4)
    batch = fam.sample(5, torch.Generator().manual_seed(0))
    a = torch.tensor([0, 1, 2, 0, 1])
    expect = (batch["u"][:, 2] < batch["probs"][torch.arange(5), a]).float()
    torch.testing.assert_close(fam.reward(batch, 2, a), expect)
    h = Harlow(trials=3, object_dim=2)
    batch = h.sample(4, torch.Generator().manual_seed(0))
    batch["swap"][:, 0] = torch.tensor([False, True, False, True])
    obs = h.observe(batch, 0)  # (4, 4): [left object, right object]
    rewarded = batch["objects"][:, 0]
    torch.testing.assert_close(obs[0, :2], rewarded[0])  # not swapped: rewarded on the left
    torch.testing.assert_close(obs[1, 2:], rewarded[1])  # swapped: on the right
    assert h.reward(batch, 0, torch.tensor([0, 1, 1, 0])).tolist() == [1.0, 1.0, 0.0, 0.0]


@pytest.mark.parametrize("core", ["gru", "snail", "snail --snail-filters 4"])
def test_rl2_trains_and_evaluates_beside_the_baselines(core, tmp_path, capsys):
    out = tmp_path / "rl2"  # eval rebuilds the agent from the run's options (a narrow SNAIL too)
    assert main(["train", "rl2", "--pulls", "10", "--arms", "3", "--hidden", "16",
                 "--core", *core.split(), "--steps", "3", "--batch-size", "8", "--quiet",
                 "--out", str(out)]) == 0  # fmt: skip
    assert (out / "pictures" / "choices.png").is_file()
    capsys.readouterr()
    assert main(["eval", str(out), "--tasks", "200", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result["baselines"]) == {*B.BASELINES, "ucb1_tuned", "epsilon_greedy_tuned"}
    assert all(result["tuned"][name] in grid for name, (_, grid) in B.TUNED.items())
    assert result["pulls"] == 10 and result["arms"] == 3 and result["tasks"] == 200
    assert 0.0 <= result["reward"] <= 10.0
    assert result["fraction_of_gittins"] == pytest.approx(
        result["reward"] / result["baselines"]["gittins"]
    )


def test_a_snail_core_learns_from_the_episode_it_played():
    from contracts import check_loss_finite_and_gradients_reach_every_parameter

    torch.manual_seed(0)
    agent = RL2Agent(RL2Config(arms=3, pulls=12, core="snail"))
    batch = agent.cfg.family().sample(4, torch.Generator().manual_seed(1))
    check_loss_finite_and_gradients_reach_every_parameter(agent, batch)
    torch.manual_seed(2)
    played = agent.rollout(batch, greedy=True)
    assert played["log_probs"].shape == (12, 4)
    with torch.no_grad():  # the episode read step by step gives the one-pass log-probabilities
        core, prev_a, prev_r, logps = agent.core_step(4), torch.zeros(4, 3), torch.zeros(4, 1), []
        fam = agent.cfg.family()
        for t in range(12):
            x = torch.cat([fam.observe(batch, t), prev_a, prev_r,
                           torch.full((4, 1), 1.0 - t / 12)], 1)  # fmt: skip
            logp = F.log_softmax(agent.policy(core(x)), -1)
            a = played["actions"][t]
            logps.append(logp.gather(1, a[:, None]).squeeze(1))
            prev_a, prev_r = F.one_hot(a, 3).float(), played["rewards"][t][:, None]
    torch.testing.assert_close(torch.stack(logps), played["log_probs"].detach())


def test_snail_filters_set_the_width_of_each_dense_layer_and_must_be_positive():
    def width(filters: int) -> int:
        return RL2Agent(
            RL2Config(arms=3, pulls=12, core="snail", snail_filters=filters)
        ).snail.out_channels

    # inputs: the previous pull one-hot (3), its reward, the episode left (no observation) = 5;
    # two TC blocks of ceil(log2 12) = 4 dense layers each; attention adds its values, 32
    assert width(32) == 5 + 2 * 4 * 32 + 32
    assert width(8) == 5 + 2 * 4 * 8 + 32
    with pytest.raises(ConfigError, match="snail_filters must be at least 1, got 0"):
        RL2Config(core="snail", snail_filters=0)


def test_tuning_picks_the_best_value_on_the_tuning_episodes_alone():
    fam = Bandits(arms=3, pulls=30)
    tuning = fam.sample(400, torch.Generator().manual_seed(0))
    grid = (0.0, 0.1, 0.5)
    best, means = B.tune(B.epsilon_greedy, grid, fam, tuning, seed=7)
    for eps in grid:  # each value was scored on the same episodes with the same randomness
        again = B.run_policy(B.epsilon_greedy(eps), fam, tuning, torch.Generator().manual_seed(7))
        assert means[eps] == pytest.approx(again.mean().item())
    assert means[best] == max(means.values())
    assert means[0.5] < means[0.1]  # exploring half the time over 30 pulls costs reward


def test_ucb_scores_mean_plus_c_root_log_t_over_n_and_a_small_c_exploits():
    g = torch.Generator().manual_seed(3)
    s = torch.randint(0, 5, (200, 4), generator=g).float()
    f = torch.randint(1, 5, (200, 4), generator=g).float()  # every arm tried at least once
    for c in (2**0.5, 0.2):
        picked, checked = B.ucb(c)(10, s, f, g).tolist(), 0
        for row in range(200):  # Auer et al.'s score, written out arm by arm
            t = float((s[row] + f[row]).sum())
            scores = [float(s[row, i] / (s[row, i] + f[row, i]))
                      + c * math.sqrt(math.log(t) / float(s[row, i] + f[row, i]))
                      for i in range(4)]  # fmt: skip
            top, second = sorted(scores)[-1], sorted(scores)[-2]
            if top - second > 1e-6:  # a tie is broken at random: nothing to compare
                assert picked[row] == scores.index(top)
                checked += 1
        assert checked > 150
    fam = Bandits(arms=4, pulls=40)
    batch = fam.sample(300, torch.Generator().manual_seed(1))
    run = lambda policy: B.run_policy(policy, fam, batch, torch.Generator().manual_seed(2))  # noqa: E731
    assert run(B.ucb(0.2)).mean() > run(B.ucb1).mean()  # UCB1 over-explores short episodes
