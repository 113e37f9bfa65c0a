"""The NPI's baseline: its problems are the NPI's, as tokens, and its loss ignores padding."""

from __future__ import annotations

import numpy as np
import torch

from genlab.programs.seq2seq import EOS, PLUS, Seq2Seq, Seq2SeqConfig, example, pad_tokens


def test_examples_are_the_problems_as_tokens():
    rng = np.random.default_rng(0)
    for _ in range(100):
        tokens, answer = example("add", int(rng.integers(1, 6)), rng)
        plus = tokens.index(PLUS)
        a, b = (int("".join(map(str, part))) for part in (tokens[:plus], tokens[plus + 1 : -1]))
        assert int("".join(map(str, answer[:-1]))) == a + b and answer[-1] == EOS
        tokens, answer = example("sort", 5, rng)
        assert answer[:-1] == sorted(tokens[:-1])
        tokens, answer = example("max", 5, rng)
        assert answer == [max(tokens[:-1]), EOS]


def test_padding_does_not_count_and_greedy_answers_stop_at_eos():
    torch.manual_seed(0)
    model = Seq2Seq(Seq2SeqConfig(hidden=8, layers=1))
    (x, xm), (y, ym) = pad_tokens([[1, 2, EOS], [3, EOS]]), pad_tokens([[3, EOS], [3, 1, 4, EOS]])
    batch = {"x": x, "x_mask": xm, "y": y, "y_mask": ym}
    before = model.loss(batch)["loss"]
    batch["y"] = torch.where(ym, y, torch.full_like(y, 7))  # garbage where no token is
    torch.testing.assert_close(model.loss(batch)["loss"], before)
    out = model.answer([1, 2, EOS], max_len=4)
    assert len(out) <= 4 and EOS not in out
