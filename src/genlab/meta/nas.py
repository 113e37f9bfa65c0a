"""Architecture search with a controller trained by REINFORCE (Zoph & Le 2017): "architectures
are strings", an LSTM writes them one decision at a time, and the validation accuracy of what it
wrote is its reward. ENAS (Pham et al. 2018) keeps the same controller and makes the reward
cheap: every child is a subgraph of one shared network (`genlab.models.supernet`). Three searches
over one space (`ENASConfig.search`): 'enas' (shared weights), 'nas' (each child trained from
scratch, as Zoph & Le) and 'random' (strings drawn uniformly, each trained from scratch).

The controller's policy over whole strings is pi(a) = prod_t softmax(W_t h_t)[a_t], with h_t the
LSTM's state after reading the embedding of a_{t-1} (a learned start vector at t = 0). Its
update is REINFORCE with an exponential-moving-average baseline b (Williams 1992):

    loss = -(1/N) sum_n (R_n - b) log pi(a_n),    b <- decay b + (1 - decay) mean_n R_n
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from genlab.errors import ConfigError
from genlab.models.supernet import SearchSpace, SuperNet
from genlab.train.config import doc


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


def uniform_strings(sizes: list[int], n: int, generator: torch.Generator) -> torch.Tensor:
    """n strings, each decision uniform over its options: (n, len(sizes)) long."""
    return torch.stack([torch.randint(k, (n,), generator=generator) for k in sizes], 1)


def ema(baseline: float, value: float, decay: float) -> float:
    """The baseline after one more reward: decay b + (1 - decay) value."""
    return decay * baseline + (1 - decay) * value


SEARCHES = ("enas", "nas", "random")


@dataclass(frozen=True)
class ENASConfig:
    search: str = doc("enas: one shared network and a controller; nas: a controller whose every "
                      "child is trained from scratch for --child-steps; random: uniform strings, "
                      "each trained from scratch", default="enas")  # fmt: skip
    cells: int = doc("cells after the stem, each choosing an operation and its skips", default=4)
    channels: int = doc("channels of the stem and every cell", default=32)
    arch: str = doc("a fixed architecture, its decisions comma-separated (as `genlab eval` of a "
                    "search prints it): that child alone, trained from scratch; empty: ENAS's "
                    "search, one shared network and a controller", default="")  # fmt: skip
    controller_hidden: int = doc("the controller LSTM's units", default=64)
    controller_every: int = doc("shared-weight steps between controller updates", default=10)
    controller_samples: int = doc("architectures per controller update, each scored on one "
                                  "validation batch", default=8)  # fmt: skip
    controller_lr: float = doc("the controller's Adam learning rate (ENAS: 3.5e-4)",
                               default=3.5e-4)  # fmt: skip
    entropy_weight: float = doc("weight of the policy's entropy in the controller's loss "
                                "(ENAS: 1e-4)", default=1e-4)  # fmt: skip
    baseline_decay: float = doc("decay of the rewards' moving average (ENAS: 0.99)", default=0.95)
    child_steps: int = doc("nas and random: steps each child trains from scratch (Adam at the "
                           "run's --lr, batches of --batch-size)", default=300)  # fmt: skip
    val_batch: int = doc("validation images that score one architecture", default=128)
    train_images: int = doc("training images: a seeded subset of the training split (0 = all)",
                            default=1000)  # fmt: skip
    val_images: int = doc("validation images, from the rest of the training split", default=5000)
    n_classes: int = doc("number of classes", default=10)

    def __post_init__(self) -> None:
        for name in ("controller_every", "controller_samples", "child_steps", "val_batch",
                     "val_images"):  # fmt: skip
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.search not in SEARCHES:
            raise ConfigError(f"--search must be one of {', '.join(SEARCHES)}, got '{self.search}'")
        if self.arch and self.search != "enas":
            raise ConfigError(f"--arch trains one architecture; it takes no --search {self.search}")
        self.fixed_arch  # noqa: B018 -- a bad --arch fails here, naming its fault

    @property
    def space(self) -> SearchSpace:
        return SearchSpace(self.cells, self.channels, self.n_classes)

    @property
    def fixed_arch(self) -> list[int] | None:
        if not self.arch:
            return None
        try:
            arch = [int(a) for a in self.arch.split(",")]
        except ValueError:
            raise ConfigError(
                f"--arch must be integers separated by commas, got '{self.arch}'"
            ) from None
        try:
            self.space.parse(arch)
        except ConfigError as e:
            raise ConfigError(f"--arch {self.arch}: {e}") from None
        return arch


class ENAS(nn.Module):
    """A search and what it keeps. 'enas': the shared network (`net`) and the controller; 'nas':
    the controller alone; 'random': nothing to train; a fixed `arch`: that child alone (`net`).
    `baseline` is the rewards' moving average (`rewarded`: since the first). The searches that
    train children from scratch keep the best child scored so far (`best_arch`, its score
    `best_reward`, -1 before any) and count the children they trained (`children_trained`)."""

    def __init__(self, cfg: ENASConfig):
        super().__init__()
        self.cfg = cfg
        self.net = None
        if cfg.search == "enas":
            self.net = SuperNet(cfg.space, cfg.fixed_arch)
        self.controller = None
        if cfg.fixed_arch is None and cfg.search != "random":
            self.controller = Controller(cfg.space.decision_sizes, cfg.controller_hidden)
        self.register_buffer("baseline", torch.tensor(0.0))
        self.register_buffer("rewarded", torch.tensor(False))
        self.register_buffer(
            "best_arch", torch.zeros(len(cfg.space.decision_sizes), dtype=torch.long)
        )
        self.register_buffer("best_reward", torch.tensor(-1.0))
        self.register_buffer("children_trained", torch.tensor(0))

    def child(self, generator: torch.Generator) -> list[int]:
        """The architecture to train next: the fixed one, or one the controller draws."""
        if self.controller is None:
            return self.cfg.fixed_arch
        with torch.no_grad():
            return self.controller(1, generator=generator)[0][0].tolist()

    def draw(self, n: int, generator: torch.Generator):
        """n strings to score, (n, T) long, and their log-probabilities and entropies under the
        controller (None for random search)."""
        if self.controller is None:
            return uniform_strings(self.cfg.space.decision_sizes, n, generator), None, None
        return self.controller(n, generator=generator)

    def keep_best(self, archs: torch.Tensor, reward: torch.Tensor) -> None:
        """Remember the best-scored of these children if it beats the best so far."""
        self.children_trained += len(archs)
        i = int(reward.argmax())
        if reward[i] > self.best_reward:
            self.best_reward.fill_(float(reward[i]))
            self.best_arch.copy_(archs[i])

    def forward(self, x: torch.Tensor, arch) -> torch.Tensor:  # (B, 1, 28, 28) -> (B, classes)
        return self.net(x, arch)
