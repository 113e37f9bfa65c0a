"""The architecture-search controller: its policy is a distribution over whole strings, scoring
agrees with sampling, and REINFORCE's estimate matches the exact gradient of the expected reward
on a space small enough to enumerate."""

from __future__ import annotations

import itertools
import math

import torch

from genlab.meta.nas import ENAS, Controller, ENASConfig, ema, reinforce_loss, uniform_strings

SIZES = [3, 2, 2]  # 12 strings


def every_string() -> torch.Tensor:
    return torch.tensor(list(itertools.product(*[range(k) for k in SIZES])))  # (12, 3)


def test_the_policy_sums_to_one_over_every_string_and_scores_as_a_loop_does():
    torch.manual_seed(0)
    controller = Controller(SIZES, hidden=8)
    strings = every_string()
    _, log_prob, _ = controller(len(strings), actions=strings)
    torch.testing.assert_close(log_prob.exp().sum(), torch.tensor(1.0))
    # naive: one string at a time, each step's softmax written out
    for s, lp in zip(strings, log_prob, strict=True):
        x, state, total = controller.start[None], None, 0.0
        for t, a in enumerate(s.tolist()):
            state = controller.lstm(x, state)
            logits = controller.heads[t](state[0])[0]
            total += math.log(logits.exp()[a].item() / logits.exp().sum().item())
            if t < len(SIZES) - 1:
                x = controller.embeddings[t](torch.tensor([a]))
        assert abs(total - lp.item()) < 1e-5


def test_sampled_strings_are_scored_as_they_were_drawn():
    torch.manual_seed(0)
    controller = Controller(SIZES, hidden=8)
    drawn, log_prob, entropy = controller(64, generator=torch.Generator().manual_seed(3))
    again, rescored, entropy_again = controller(64, actions=drawn)
    assert torch.equal(drawn, again)
    torch.testing.assert_close(rescored, log_prob)
    torch.testing.assert_close(entropy_again, entropy)
    assert (entropy > 0).all() and (entropy <= sum(math.log(k) for k in SIZES) + 1e-6).all()


def test_reinforce_estimates_the_exact_gradient_of_the_expected_reward():
    """Exact: grad of sum_a pi(a) R(a) over all 12 strings. Estimate: the mean of REINFORCE's
    gradient over many draws, with a baseline (which must not bias it)."""
    torch.manual_seed(0)
    controller = Controller(SIZES, hidden=8)
    reward_of = torch.linspace(0.0, 1.0, 12)[torch.randperm(12)]  # a reward per string

    def index(strings):  # (N, 3) -> (N,): the string's row in every_string()
        return (strings[:, 0] * 2 + strings[:, 1]) * 2 + strings[:, 2]

    strings = every_string()
    _, log_prob, _ = controller(len(strings), actions=strings)
    exact = torch.autograd.grad((log_prob.exp() * reward_of).sum(), list(controller.parameters()))
    drawn, log_prob, _ = controller(200_000, generator=torch.Generator().manual_seed(5))
    loss = reinforce_loss(log_prob, reward_of[index(drawn)], baseline=0.4)
    estimate = torch.autograd.grad(-loss, list(controller.parameters()))
    exact, estimate = (
        torch.cat([g.flatten() for g in exact]),
        torch.cat([g.flatten() for g in estimate]),
    )
    assert torch.linalg.vector_norm(estimate - exact) < 0.05 * torch.linalg.vector_norm(exact)


def test_the_baseline_is_an_exponential_moving_average():
    b = 0.0
    for r in [1.0, 1.0, 0.0]:
        b = ema(b, r, decay=0.9)
    assert abs(b - (0.9 * (0.9 * 0.1 + 0.1) + 0.0)) < 1e-12


def test_uniform_strings_draw_every_option_of_every_decision_equally():
    drawn = uniform_strings(SIZES, 30_000, torch.Generator().manual_seed(0))  # (N, 3)
    assert drawn.shape == (30_000, 3)
    for t, k in enumerate(SIZES):
        counts = torch.bincount(drawn[:, t], minlength=k)
        assert len(counts) == k and (counts - 30_000 / k).abs().max() < 0.03 * 30_000 / k


def test_a_search_keeps_the_best_child_it_scored():
    search = ENAS(ENASConfig(cells=2, channels=4, search="random"))
    assert float(search.best_reward) == -1.0
    search.keep_best(torch.tensor([[0, 1, 0], [2, 0, 1]]), torch.tensor([0.3, 0.7]))
    search.keep_best(torch.tensor([[3, 1, 1], [1, 1, 1]]), torch.tensor([0.6, 0.5]))  # worse
    assert search.best_arch.tolist() == [2, 0, 1] and abs(float(search.best_reward) - 0.7) < 1e-6
    search.keep_best(torch.tensor([[3, 0, 0]]), torch.tensor([0.9]))
    assert search.best_arch.tolist() == [3, 0, 0] and int(search.children_trained) == 5
