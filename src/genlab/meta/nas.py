"""Architecture search with a controller trained by REINFORCE (Zoph & Le 2017): "architectures
are strings", an LSTM writes them one decision at a time, and the validation accuracy of what it
wrote is its reward. ENAS (Pham et al. 2018) keeps the same controller and makes the reward
cheap: every child is a subgraph of one shared network (`genlab.models.supernet`).

The controller's policy over whole strings is pi(a) = prod_t softmax(W_t h_t)[a_t], with h_t the
LSTM's state after reading the embedding of a_{t-1} (a learned start vector at t = 0). Its
update is REINFORCE with an exponential-moving-average baseline b (Williams 1992):

    loss = -(1/N) sum_n (R_n - b) log pi(a_n),    b <- decay b + (1 - decay) mean_n R_n
"""

from __future__ import annotations

import torch
from torch import nn


class Controller(nn.Module):
    """An LSTM that writes a string of decisions; decision t has `sizes[t]` options, its own
    output layer and (but the last) its own embedding of the choice made, fed back at t + 1."""

    def __init__(self, sizes: list[int], hidden: int = 64):
        super().__init__()
        self.sizes = list(sizes)
        self.start = nn.Parameter(torch.zeros(hidden))
        self.lstm = nn.LSTMCell(hidden, hidden)
        self.heads = nn.ModuleList(nn.Linear(hidden, k) for k in self.sizes)
        self.embeddings = nn.ModuleList(nn.Embedding(k, hidden) for k in self.sizes[:-1])

    def forward(
        self, n: int, actions: torch.Tensor | None = None, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """n strings drawn from the policy, or the given `actions` (n, T) scored: (actions
        (n, T) long, log pi(actions) (n,), entropy of each step's choice summed (n,))."""
        x = self.start.expand(n, -1)  # (n, H)
        state = None
        chosen, log_prob, entropy = [], torch.zeros(n), torch.zeros(n)
        for t, head in enumerate(self.heads):
            state = self.lstm(x, state)
            logp = torch.log_softmax(head(state[0]), dim=-1)  # (n, sizes[t])
            if actions is None:
                a = torch.multinomial(logp.exp(), 1, generator=generator).squeeze(1)  # (n,)
            else:
                a = actions[:, t]
            chosen.append(a)
            log_prob = log_prob + logp.gather(1, a[:, None]).squeeze(1)
            entropy = entropy - (logp.exp() * logp).sum(-1)
            if t < len(self.embeddings):
                x = self.embeddings[t](a)  # (n, H)
        return torch.stack(chosen, 1), log_prob, entropy


def reinforce_loss(log_prob: torch.Tensor, reward: torch.Tensor, baseline: float) -> torch.Tensor:
    """-(1/N) sum_n (R_n - b) log pi(a_n): (N,), (N,) -> scalar. Its gradient is an unbiased
    estimate of -grad E[R] for any b that does not depend on the draws."""
    return -((reward - baseline).detach() * log_prob).mean()


def ema(baseline: float, value: float, decay: float) -> float:
    """The baseline after one more reward: decay b + (1 - decay) value."""
    return decay * baseline + (1 - decay) * value
