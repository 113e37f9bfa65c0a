"""SNAIL as a few-shot classifier (Mishra et al. 2018, section 4.1): no inner loop; the learner
reads the labelled support set and the query as one sequence and names the query's class.

Each drawing is embedded by the paper's Omniglot network (4 x [3x3 conv with 64 filters, batch
norm, leaky ReLU 0.1, 2x2 max-pool] -> 64 features). The sequence is the N*K support drawings,
each embedding followed by its label one-hot, then the query with an all-zero label:
N*K + 1 steps. Over it run attention(64, 32), TC(128), attention(256, 128), TC(128),
attention(512, 256), and a linear layer reads the last step's channels as the query's class
logits. Every query of a task is its own sequence (queries never see one another); the
support drawings' order is shuffled per task while training, so no position means a class.
Test tasks are MAML's (`learners.EVAL_SEED`, 15 queries per class).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from genlab.errors import ConfigError
from genlab.meta.learners import EVAL_QUERIES, EVAL_SEED
from genlab.meta.tasks import SPLITS, FewShotData, TaskSampler
from genlab.metrics.stats import mean_ci95
from genlab.nn.snail import SNAILStack
from genlab.train.config import doc


@dataclass(frozen=True)
class SNAILConfig:
    ways: int = doc("classes per task (N-way)", default=5)
    shots: int = doc("labelled drawings per class in the sequence (K-shot)", default=1)
    queries: int = doc("query drawings per class in each training task (one sequence each)",
                       default=1)  # fmt: skip
    channels: int = doc("filters of each of the embedding's 4 conv layers", default=64)
    tc_filters: int = doc("filters of each dense block in the TC blocks", default=128)
    split: str = doc(f"Omniglot class split: {', '.join(SPLITS)}", default="random1200-seed1")

    def __post_init__(self) -> None:
        for name in ("ways", "shots", "queries", "channels", "tc_filters"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.split not in SPLITS:
            raise ConfigError(f"unknown split '{self.split}'; known: {', '.join(SPLITS)}")

    @property
    def algorithm(self) -> str:
        return "snail"

    @property
    def representation(self) -> str:
        """Drawings as the learner sees them: [0, 1] floats, ink 1."""
        return "float"


def embedding_net(channels: int) -> nn.Sequential:
    """(B, 1, 28, 28) -> (B, channels): 28 -> 14 -> 7 -> 3 -> 1 by 2x2 max-pools."""
    layers: list[nn.Module] = []
    for i in range(4):
        layers += [nn.Conv2d(1 if i == 0 else channels, channels, 3, padding=1),
                   nn.BatchNorm2d(channels), nn.LeakyReLU(0.1), nn.MaxPool2d(2)]  # fmt: skip
    return nn.Sequential(*layers, nn.Flatten())


def task_steps(support: torch.Tensor, support_y: torch.Tensor, query: torch.Tensor,
               ways: int) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """Embeddings support (T, S, D), labels (T, S), queries (T, M, D) -> the support steps
    [embedding, one-hot label] (T, S, D + ways) and each query's step [query, zeros]
    (T, M, D + ways): a query's sequence is the support steps then its own step."""
    labelled = torch.cat([support, F.one_hot(support_y, ways).to(support.dtype)], -1)
    return labelled, torch.cat([query, query.new_zeros(*query.shape[:2], ways)], -1)


class SNAIL(nn.Module):
    def __init__(self, cfg: SNAILConfig):
        super().__init__()
        self.cfg = cfg
        self.embedding = embedding_net(cfg.channels)
        plan = (("attention", 64, 32), ("tc", cfg.tc_filters), ("attention", 256, 128),
                ("tc", cfg.tc_filters), ("attention", 512, 256))  # fmt: skip
        self.blocks = SNAILStack(cfg.channels + cfg.ways, cfg.ways * cfg.shots + 1, plan)
        self.out = nn.Linear(self.blocks.out_channels, cfg.ways)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 1, 28, 28) in [0, 1] -> the embedding network's features (B, channels) (the
        representation `genlab probe` reads)."""
        return self.embedding(x)

    def query_logits(self, support_x: torch.Tensor, support_y: torch.Tensor,
                     query_x: torch.Tensor) -> torch.Tensor:  # fmt: skip
        """support_x (T, S, 1, 28, 28), support_y (T, S), query_x (T, M, 1, 28, 28) -> each
        query's class logits (T, M, ways), read off the last step of its sequence (the support
        steps run once per task, shared by its queries: `Chain.branch`)."""
        t, s, m = support_x.shape[0], support_x.shape[1], query_x.shape[1]
        e = self.embedding(torch.cat([support_x, query_x], 1).flatten(0, 1)).view(t, s + m, -1)
        _, last = self.blocks.branch(*task_steps(e[:, :s], support_y, e[:, s:], self.cfg.ways))
        return self.out(last)

    def loss(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        sx, sy = batch["support_x"], batch["support_y"]
        if self.training:  # a random support order per task
            order = torch.rand(sy.shape).argsort(1)  # (T, S)
            sx, sy = sx[torch.arange(len(sx))[:, None], order], sy.gather(1, order)
        logits = self.query_logits(sx, sy, batch["query_x"])  # (T, M, N)
        y = batch["query_y"]
        return {"loss": F.cross_entropy(logits.flatten(0, 1), y.flatten()),
                "query_accuracy": (logits.argmax(-1) == y).float().mean()}  # fmt: skip

    def classifier(self, support_x: torch.Tensor, support_y: torch.Tensor,
                   bn: str | None = None, steps: int | None = None):  # fmt: skip
        """One task's support set (S, 1, 28, 28), labels (S,) -> queries (Q, 1, 28, 28) -> class
        logits (Q, ways), each query read alone after the support set. (`bn` and `steps` are
        MAML's; SNAIL has no inner loop, and its batch norm uses running statistics.)"""
        return lambda q: self.query_logits(support_x[None], support_y[None], q[None])[0]


@torch.no_grad()
def evaluate_snail(model: SNAIL, options: SNAILConfig, data: FewShotData, tasks: int = 1000,
                   seed: int = 0, **_) -> dict:  # fmt: skip
    """Mean query accuracy over `tasks` test tasks (the same tasks as MAML's evaluation) with
    its 95% interval over the per-task accuracies."""
    c, chunk = options, 50
    model.eval()
    sampler = TaskSampler(data.test, c.ways, c.shots, EVAL_QUERIES, chunk, EVAL_SEED + seed)
    t0, accs = time.monotonic(), []
    with tqdm(total=tasks, desc="test tasks", unit="task", disable=None) as bar:
        for i in range(math.ceil(tasks / chunk)):
            b = {k: v[: tasks - i * chunk] for k, v in sampler.batch(i).items()}
            logits = model.query_logits(b["support_x"], b["support_y"], b["query_x"])
            accs.append((logits.argmax(-1) == b["query_y"]).double().mean(1))  # (chunk,)
            bar.update(len(accs[-1]))
    accuracy, ci95 = mean_ci95(torch.cat(accs))
    return {"accuracy": accuracy, "ci95": ci95, "tasks": tasks, "algorithm": "snail",
            "ways": c.ways, "shots": c.shots, "query_per_class": EVAL_QUERIES,
            "split": data.split, "test_classes": int(data.test.shape[0]),
            "seconds": round(time.monotonic() - t0, 1)}  # fmt: skip
