"""Random tabular MDPs (Duan et al. 2016) and their baselines: the family's rules, finite-horizon
planning against brute force, and the baselines in the order they must come."""

from __future__ import annotations

import itertools

import pytest
import torch

from genlab.meta.episodes import TabularMDPs
from genlab.meta.tabular import finite_horizon_q, play


def test_episodes_restart_and_move_as_the_transitions_say():
    fam = TabularMDPs(states=3, actions=2, horizon=4, episodes=2)
    batch = fam.sample(5000, torch.Generator().manual_seed(0))
    p = batch["transitions"]
    assert torch.allclose(p.sum(-1), torch.ones(5000, 3, 2))
    obs = fam.observe(batch, 0)
    assert torch.equal(obs[:, :3].argmax(1), batch["starts"][:, 0]) and obs[:, 3].eq(1).all()
    start = batch["state"].clone()
    r = fam.reward(batch, 0, torch.zeros(5000, dtype=torch.long))
    rows = torch.arange(5000)
    torch.testing.assert_close(r, batch["means"][rows, start, 0] + batch["noise"][:, 0])
    moved = torch.nn.functional.one_hot(batch["state"], 3).float().mean(0)
    expected = p[rows, start, 0].mean(0)  # next-state frequencies follow the transitions
    torch.testing.assert_close(moved, expected, atol=0.02, rtol=0)
    assert fam.observe(batch, 1)[:, 3].eq(0).all()
    fam.observe(batch, 4)  # the second episode starts where its own start says
    assert torch.equal(batch["state"], batch["starts"][:, 1])


def test_finite_horizon_q_matches_brute_force_over_action_sequences():
    g = torch.Generator().manual_seed(1)
    flat = torch.rand(1, 2, 2, 2, generator=g, dtype=torch.float64)
    p, r = flat / flat.sum(-1, keepdim=True), torch.randn(1, 2, 2, generator=g, dtype=torch.float64)
    q = finite_horizon_q(p, r, 3)

    def value(state: int, steps: int) -> float:  # optimal expected reward, by enumeration
        if steps == 0:
            return 0.0
        return max(float(r[0, state, a]) + sum(float(p[0, state, a, n]) * value(n, steps - 1)
                                               for n in range(2)) for a in range(2))  # fmt: skip

    for h, s, a in itertools.product(range(3), range(2), range(2)):
        expected = float(r[0, s, a]) + sum(float(p[0, s, a, n]) * value(n, 3 - h - 1)
                                           for n in range(2))  # fmt: skip
        assert float(q[h, 0, s, a]) == pytest.approx(expected)


def test_baselines_come_in_order_and_replay_the_same_trials():
    fam = TabularMDPs(states=5, actions=3, horizon=5, episodes=10)
    batch = fam.sample(400, torch.Generator().manual_seed(2))
    totals = {k: play(k, fam, batch).mean().item() for k in ("random", "psrl", "optimal")}
    assert totals["random"] < totals["psrl"] < totals["optimal"]
    assert totals["random"] == pytest.approx(50 * 1.0, abs=2.0)  # mean rewards ~ N(1, 1)
    assert play("psrl", fam, batch).mean().item() == totals["psrl"]  # seeded: the same again
    with pytest.raises(ValueError, match="unknown planner 'ucrl'"):
        play("ucrl", fam, batch)


def test_rl2_trains_on_mdps_and_is_scored_beside_the_baselines(tmp_path, capsys):
    import json

    from genlab.cli import main

    out = tmp_path / "mdp"
    assert main(["train", "rl2_mdp", "--states", "4", "--actions", "2", "--horizon", "3",
                 "--episodes", "2", "--core", "snail", "--steps", "2", "--batch-size", "4",
                 "--quiet", "--out", str(out)]) == 0  # fmt: skip
    assert (out / "pictures" / "choices.png").is_file()
    capsys.readouterr()
    assert main(["eval", str(out), "--tasks", "100", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result["baselines"]) == {"random", "greedy", "psrl", "optimal"}
    assert result["episodes"] == 2 and result["horizon"] == 3 and result["tasks"] == 100
    assert result["reward"] < result["baselines"]["optimal"]  # a 2-step agent cannot beat it
