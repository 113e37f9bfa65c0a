"""MAML, first-order MAML and Reptile as models of the shared training loop.

Each is a `MetaLearner`: a `FewShotConvNet` (the meta-learned initialisation) plus the algorithm's
settings. Its `loss(batch)` on a meta-batch of tasks is what the loop's default gradient step
minimises, so one outer step is one meta-iteration:
- MAML / FOMAML: the query cross-entropy after `inner_steps` SGD steps on the support set
  (second order through the inner gradients for MAML, first order for FOMAML); Adam outside.
- Reptile: 0.5 ||theta - mean_i phi_i||^2, phi_i the weights after SGD on task i, so an SGD
  outer step of size eps is exactly theta <- theta + eps (mean_i phi_i - theta).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn
from tqdm import tqdm

from genlab.errors import ConfigError
from genlab.meta import core
from genlab.meta.nets import FewShotConvNet, NetShape
from genlab.meta.tasks import SPLITS, FewShotData, TaskSampler
from genlab.metrics.stats import mean_ci95
from genlab.train.config import TrainConfig, doc
from genlab.train.loop import make_state
from genlab.train.state import TrainState
from genlab.viz.images import save_grid


@dataclass(frozen=True)
class MetaConfig:
    ALGORITHM: ClassVar[str] = "maml"
    ways: int = doc("classes per task (N-way)", default=5)
    shots: int = doc("labelled drawings per class to adapt on (K-shot)", default=1)
    queries: int = doc("query drawings per class in each training task", default=1)
    inner_steps: int = doc("SGD steps on the support set while meta-training", default=1)
    inner_lr: float = doc("inner step size (SGD's, or Adam's)", default=0.4)
    eval_inner_steps: int = doc("SGD steps on the support set at test time", default=3)
    inner_optimizer: str = doc("the inner steps' rule, while training and at test time: 'sgd' "
                               "or 'adam' (beta1 = 0, fresh moments per task)", default="sgd")  # fmt: skip
    bn: str = doc(
        "batch-norm statistics for queries: 'transductive' (from the query batch, as the papers "
        "evaluate) or 'support' (from the support set only)",
        default="transductive",
    )
    channels: int = doc("conv channels in each of the 4 layers", default=64)
    split: str = doc(f"Omniglot class split: {', '.join(SPLITS)}", default="random1200-seed1")
    vectorize: bool = doc("vmap over the tasks of a meta-batch instead of a loop", default=True)

    def __post_init__(self) -> None:
        if self.bn not in core.BN_MODES:
            raise ConfigError(f"bn must be one of {', '.join(core.BN_MODES)}, got '{self.bn}'")
        if self.inner_optimizer not in core.INNER_RULES:
            raise ConfigError(f"inner_optimizer must be one of {', '.join(core.INNER_RULES)}, "
                              f"got '{self.inner_optimizer}'")  # fmt: skip
        if self.split not in SPLITS:
            raise ConfigError(f"unknown split '{self.split}'; known: {', '.join(SPLITS)}")
        for name in ("ways", "shots", "queries", "inner_steps", "eval_inner_steps"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")

    @property
    def algorithm(self) -> str:
        return self.ALGORITHM

    @property
    def first_order(self) -> bool:
        return self.ALGORITHM != "maml"

    @property
    def representation(self) -> str:
        """Drawings as the learner sees them: [0, 1] floats, ink 1."""
        return "float"


@dataclass(frozen=True)
class FOMAMLConfig(MetaConfig):
    ALGORITHM: ClassVar[str] = "fomaml"


@dataclass(frozen=True)
class ReptileConfig(MetaConfig):
    ALGORITHM: ClassVar[str] = "reptile"
    queries: int = doc(
        "extra drawings per class in each training task (Reptile adapts on all)", default=4
    )
    inner_steps: int = doc("SGD steps on each training task", default=5)
    inner_lr: float = doc("inner step size (SGD's, or Adam's: the paper's 0.001)", default=0.1)
    eval_inner_steps: int = doc("SGD steps on the support set at test time", default=20)
    # 10, not all 25 drawings a step: on 2026-12-06 (benchmarks/reptile_changes.py, 15 min, one
    # thread) 87.5% against 46.4% on 5-way 1-shot; full-batch steps repeat one gradient, and
    # Reptile learns from the differences between the batches of its inner steps.
    inner_batch: int = doc("drawings per inner step while training, taken in turn with the "
                           "classes interleaved (the paper's 10); 0 = all of the task's",
                           default=10)  # fmt: skip

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.inner_batch < 0:
            raise ConfigError(f"inner_batch must be >= 0, got {self.inner_batch}")


class MetaLearner(nn.Module):
    def __init__(self, cfg: MetaConfig):
        super().__init__()
        self.cfg = cfg
        self.net = FewShotConvNet(NetShape(ways=cfg.ways, channels=cfg.channels))

    def params(self) -> core.Params:
        return {k: p for k, p in self.net.named_parameters()}

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 1, 28, 28) in [0, 1] -> the meta-learned trunk's features (the representation
        `genlab probe` reads), batch-normalised with the statistics of the batch itself, as the
        learner is tested (transductively)."""
        return self.net.trunk(x).float()

    def loss(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        c = self.cfg
        params = self.params()
        if c.algorithm == "reptile":
            fn = core.reptile_task(self.net, c.inner_steps, c.inner_lr, c.ways,
                                   c.inner_optimizer, c.inner_batch or None)  # fmt: skip
            detached = {k: p.detach() for k, p in params.items()}
            phi = core.over_tasks(fn, detached, batch, c.vectorize)  # each (T, *shape)
            mean_phi = {k: v.mean(0) for k, v in phi.items()}
            return {"loss": core.reptile_objective(params, mean_phi)}
        fn = core.maml_task(self.net, c.inner_steps, c.inner_lr, c.first_order, c.bn,
                            c.inner_optimizer)  # fmt: skip
        losses, accs = core.over_tasks(fn, params, batch, c.vectorize)  # (T,), (T,)
        return {"loss": losses.mean(), "query_accuracy": accs.mean()}

    def adapt(
        self, support_x: torch.Tensor, support_y: torch.Tensor, steps: int | None = None
    ) -> core.Params:
        """Weights adapted to one task's support set (support_x (S, 1, 28, 28), support_y (S,))
        by `steps` (default eval_inner_steps) SGD steps, as constants: for testing and for use,
        not meta-training. The module itself is not changed."""
        c = self.cfg
        params = {k: p.detach() for k, p in self.params().items()}
        # torch.func.grad differentiates even under a caller's no_grad (as in evaluation)
        adapted = core.adapt(
            self.net, params, support_x, support_y, steps or c.eval_inner_steps, c.inner_lr,
            first_order=True, rule=c.inner_optimizer,
        )  # fmt: skip
        return {k: v.detach() for k, v in adapted.items()}

    def classifier(self, support_x: torch.Tensor, support_y: torch.Tensor,
                   bn: str | None = None, steps: int | None = None):  # fmt: skip
        """One task's support set (S, 1, 28, 28), labels (S,) -> queries (Q, 1, 28, 28) -> class
        logits (Q, ways) of the weights adapted to it (`adapt`), batch-normalised as `bn`
        (default: the run's)."""
        adapted = self.adapt(support_x, support_y, steps)
        return lambda q: core.predict(self.net, adapted, support_x, q, bn or self.cfg.bn)


def make_reptile_state(model: MetaLearner, cfg: TrainConfig) -> TrainState:
    """Reptile's outer update is plain SGD with step size `--lr` (the paper's meta step size)."""
    return make_state(model, cfg, {"main": torch.optim.SGD(model.parameters(), lr=cfg.lr)})


EVAL_QUERIES = 15  # query drawings per class in every test task (recorded in the results)
EVAL_SEED = 4321  # test tasks differ from anything a training seed draws


def evaluate_fewshot(
    model: MetaLearner,
    options: MetaConfig,
    data: FewShotData,
    tasks: int = 1000,
    seed: int = 0,
    **_,
) -> dict:
    """Mean query accuracy over `tasks` test tasks (fractions in [0, 1]) with a 95% confidence
    interval (1.96 standard errors of the per-task accuracies)."""
    c = options
    chunk = 50  # tasks adapted together (vmap)
    sampler = TaskSampler(data.test, c.ways, c.shots, EVAL_QUERIES, chunk, EVAL_SEED + seed)
    fn = core.maml_task(model.net, c.eval_inner_steps, c.inner_lr, True, c.bn, c.inner_optimizer)
    params = {k: p.detach() for k, p in model.params().items()}
    t0 = time.monotonic()
    accs = []
    with tqdm(total=tasks, desc="test tasks", unit="task", disable=None) as bar:
        for i in range(math.ceil(tasks / chunk)):
            b = {k: v[: tasks - i * chunk] for k, v in sampler.batch(i).items()}
            _, acc = core.over_tasks(fn, params, b, c.vectorize)  # (chunk,) query accuracies
            accs.append(acc.detach())
            bar.update(len(accs[-1]))
    accuracy, ci95 = mean_ci95(torch.cat(accs))  # over the (tasks,) per-task accuracies
    return {
        "accuracy": accuracy,
        "ci95": ci95,
        "tasks": tasks,
        "algorithm": c.algorithm,
        "ways": c.ways,
        "shots": c.shots,
        "query_per_class": EVAL_QUERIES,
        "inner_steps": c.eval_inner_steps,
        "inner_lr": c.inner_lr,
        "inner_optimizer": c.inner_optimizer,
        "bn": c.bn,
        "split": data.split,
        "test_classes": int(data.test.shape[0]),
        "seconds": round(time.monotonic() - t0, 1),
    }


@torch.no_grad()
def task_pictures(model, options, data: FewShotData, out, seed: int = 0) -> list:
    """One PNG per test task (3 tasks): the top row is the support set (column = class), below
    it 5 queries per class in their true class's column, tinted green if the adapted model
    classifies them right and red if not."""
    c = options
    sampler = TaskSampler(data.test, c.ways, c.shots, 5, 1, EVAL_SEED + 1000 + seed)
    written = []
    for i in range(3):
        b = {k: v[0] for k, v in sampler.batch(i).items()}
        pred = model.classifier(b["support_x"], b["support_y"])(b["query_x"]).argmax(-1)
        right = (pred == b["query_y"]).view(-1, 1, 1, 1).float()  # (N*5, 1, 1, 1)
        q = b["query_x"].expand(-1, 3, -1, -1)  # ink on black, as RGB
        tint = torch.stack([1 - right, right, torch.zeros_like(right)], 1).view(-1, 3, 1, 1)
        q = 0.55 * q + 0.45 * tint * (0.35 + 0.65 * q)
        q = q.view(c.ways, 5, 3, 28, 28).transpose(0, 1).flatten(0, 1)  # row-major: query rows
        support = b["support_x"].view(c.ways, c.shots, 1, 28, 28)[:, 0].expand(-1, 3, -1, -1)
        rows = torch.cat([support, q])
        written.append(save_grid(rows, out / f"task_{i}.png", nrow=c.ways))
    return written
