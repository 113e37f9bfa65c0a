"""SNAIL as a few-shot learner: the sequence layout, queries read alone, the model contracts,
and the CLI from training to evaluation and the live classifier."""

from __future__ import annotations

import json

import torch

from contracts import (
    check_loss_finite_and_gradients_reach_every_parameter,
    check_seeded_runs_identical,
)
from genlab.cli import main
from genlab.meta.snail import SNAIL, SNAILConfig, task_steps

SMALL = SNAILConfig(ways=3, shots=2, channels=4, tc_filters=4)


def tasks(t: int = 2, queries: int = 2, seed: int = 0) -> dict:
    """t tasks of 3 ways, 2 shots, `queries` queries per class on random 28x28 images."""
    g = torch.Generator().manual_seed(seed)
    return {
        "support_x": torch.rand(t, 6, 1, 28, 28, generator=g),
        "support_y": torch.arange(3).repeat_interleave(2).expand(t, 6),
        "query_x": torch.rand(t, 3 * queries, 1, 28, 28, generator=g),
        "query_y": torch.arange(3).repeat_interleave(queries).expand(t, 3 * queries),
    }


def test_each_query_follows_the_labelled_support_set():
    support, query = torch.randn(2, 4, 5), torch.randn(2, 3, 5)
    labels = torch.tensor([[0, 1, 2, 0], [2, 2, 1, 0]])
    labelled, unlabelled = task_steps(support, labels, query, ways=3)
    assert labelled.shape == (2, 4, 8) and unlabelled.shape == (2, 3, 8)
    torch.testing.assert_close(labelled[..., :5], support)
    assert torch.equal(labelled[..., 5:].argmax(-1), labels)
    assert torch.equal(labelled[..., 5:].sum(-1), torch.ones(2, 4))
    torch.testing.assert_close(unlabelled[..., :5], query)
    assert torch.equal(unlabelled[..., 5:], torch.zeros(2, 3, 3))  # the query's label is not given


def test_query_logits_read_each_query_s_own_sequence():
    torch.manual_seed(0)
    model = SNAIL(SMALL).double().eval()
    b = {k: v.double() if v.is_floating_point() else v for k, v in tasks(queries=3).items()}
    with torch.no_grad():
        fast = model.query_logits(b["support_x"], b["support_y"], b["query_x"])  # (2, 9, 3)
        e = model.embed(torch.cat([b["support_x"], b["query_x"]], 1).flatten(0, 1)).view(2, 15, -1)
        labelled, unlabelled = task_steps(e[:, :6], b["support_y"], e[:, 6:], ways=3)
        for m in range(9):  # the query's whole sequence: support steps, then the query
            seq = torch.cat([labelled, unlabelled[:, m : m + 1]], 1)  # (2, 7, D + 3)
            torch.testing.assert_close(fast[:, m], model.out(model.blocks(seq))[:, -1])


def test_contracts():
    check_loss_finite_and_gradients_reach_every_parameter(SNAIL(SMALL), tasks())
    check_seeded_runs_identical(lambda: SNAIL(SMALL), tasks())


def test_a_query_is_read_alone():
    torch.manual_seed(0)
    model = SNAIL(SMALL).eval()
    b = tasks()
    with torch.no_grad():
        a = model.query_logits(b["support_x"], b["support_y"], b["query_x"])
        other = b["query_x"].clone()
        other[:, 1:] = torch.rand_like(other[:, 1:])
        c = model.query_logits(b["support_x"], b["support_y"], other)
        torch.testing.assert_close(a[:, 0], c[:, 0])  # query 0 does not see the others
        relabelled = model.query_logits(b["support_x"], b["support_y"].flip(1), b["query_x"])
    assert not torch.allclose(a, relabelled)  # it reads the support labels


def test_snail_trains_evaluates_and_classifies_new_drawings(tmp_path, data_root, capsys):
    run = tmp_path / "snail"
    assert main(["train", "snail", "--steps", "2", "--batch-size", "2", "--ways", "3",
                 "--channels", "4", "--tc-filters", "4", "--quiet", "--out", str(run)]) == 0  # fmt: skip
    assert (run / "pictures" / "task_0.png").is_file()
    capsys.readouterr()
    assert main(["eval", str(run), "--tasks", "20", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["algorithm"] == "snail" and result["tasks"] == 20 and result["ways"] == 3
    assert 0 <= result["accuracy"] <= 1 and result["query_per_class"] == 15
    from genlab.tasks.meta import few_shot_classifier

    drawn = [torch.rand(40, 40).numpy() for _ in range(3)]
    probs = few_shot_classifier(run).fit(drawn, [0, 1, 2]).predict_proba(drawn[:2])
    assert probs.shape == (2, 3)
    torch.testing.assert_close(probs.sum(-1), torch.ones(2))
