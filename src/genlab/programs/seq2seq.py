"""The baseline the NPI is compared with: a sequence-to-sequence LSTM trained on the same
problems' inputs and answers, without traces. It reads the input tokens and writes the answer
token by token (teacher forcing in training, greedy at test).

    addition  "1 2 3 + 4 5 EOS" -> "1 6 8 EOS"     sorting  "3 1 2 EOS" -> "1 2 3 EOS"
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from genlab.errors import ConfigError
from genlab.programs.teachers import number, task_list
from genlab.train.config import doc

PLUS, EOS, BOS = 10, 11, 12
VOCAB = 13


@dataclass(frozen=True)
class Seq2SeqConfig:
    tasks: str = doc("tasks learned together: add, sort, max (comma-separated)", default="add")
    hidden: int = doc("LSTM width (encoder and decoder)", default=128)
    layers: int = doc("LSTM layers", default=2)
    max_digits: int = doc("training numbers have 1 to this many digits (add)", default=10)
    max_items: int = doc("training arrays have 2 to this many digits (sort, max)", default=8)

    def __post_init__(self) -> None:
        task_list(self.tasks)  # ConfigError naming an unknown task
        if min(self.hidden, self.layers) < 1 or self.max_digits < 1 or self.max_items < 2:
            raise ConfigError("hidden and layers >= 1, max_digits >= 1, max_items >= 2")

    @property
    def task_list(self) -> list[str]:
        return task_list(self.tasks)


def example(task: str, size: int, rng: np.random.Generator) -> tuple[list[int], list[int]]:
    """A random problem of `size` (digits per number, or items) as (input, answer) tokens."""
    if task == "add":
        a, b = number(size, rng), number(size, rng)
        return [*map(int, str(a)), PLUS, *map(int, str(b)), EOS], [*map(int, str(a + b)), EOS]
    items = rng.integers(0, 10, size).tolist()
    answer = sorted(items) if task == "sort" else [max(items)]
    return [*items, EOS], [*answer, EOS]


def pad_tokens(rows: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Token lists -> (B, L) long padded with EOS, and (B, L) bool of real tokens."""
    L = max(len(r) for r in rows)
    out = torch.full((len(rows), L), EOS, dtype=torch.long)
    mask = torch.zeros(len(rows), L, dtype=torch.bool)
    for i, r in enumerate(rows):
        out[i, : len(r)], mask[i, : len(r)] = torch.tensor(r), True
    return out, mask


class Seq2Seq(nn.Module):
    def __init__(self, cfg: Seq2SeqConfig):
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(VOCAB, cfg.hidden)
        self.encoder = nn.LSTM(cfg.hidden, cfg.hidden, cfg.layers, batch_first=True)
        self.decoder = nn.LSTM(cfg.hidden, cfg.hidden, cfg.layers, batch_first=True)
        self.out = nn.Linear(cfg.hidden, VOCAB)

    def encode(self, x: torch.Tensor, x_mask: torch.Tensor):
        """Inputs (B, L) -> the encoder state after each row's last real token."""
        packed = nn.utils.rnn.pack_padded_sequence(self.embed(x), x_mask.sum(1), batch_first=True,
                                                   enforce_sorted=False)  # fmt: skip
        _, state = self.encoder(packed)
        return state

    def loss(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Cross-entropy of each answer token given the input and the answer so far (nats per
        token), and the fraction of answers exactly right under teacher forcing."""
        state = self.encode(batch["x"], batch["x_mask"])
        y, y_mask = batch["y"], batch["y_mask"]
        previous = torch.cat([torch.full_like(y[:, :1], BOS), y[:, :-1]], 1)
        h, _ = self.decoder(self.embed(previous), state)
        logits = self.out(h)  # (B, L, V)
        loss = F.cross_entropy(logits[y_mask], y[y_mask])
        with torch.no_grad():
            right = ((logits.argmax(-1) == y) | ~y_mask).all(1).float().mean()
        return {"loss": loss, "answer_accuracy": right}

    @torch.no_grad()
    def answer(self, tokens: list[int], max_len: int) -> list[int]:
        """Greedy decoding of one input's answer (at most `max_len` tokens, EOS excluded)."""
        x, mask = pad_tokens([tokens])
        state = self.encode(x, mask)
        token, out = torch.tensor([[BOS]]), []
        for _ in range(max_len):
            h, state = self.decoder(self.embed(token), state)
            token = self.out(h).argmax(-1)
            if int(token) == EOS:
                break
            out.append(int(token))
        return out
