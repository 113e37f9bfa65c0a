"""Architecture search on a small labelled subset of MNIST (issue 42 B): ENAS's search, one
shared network and a REINFORCE controller (`genlab.meta.nas`), and any one architecture
trained alone from scratch (`--arch`: what NAS trains for each string its controller writes,
and how a found architecture is retrained). Its registry entry, data, step and evaluation.

One training step trains the shared weights on one training batch through one child the
controller draws; every `controller_every` steps the controller draws `controller_samples`
children, each is scored by its accuracy on one validation batch with the shared weights (its
reward), and the controller takes one REINFORCE step. The split is
`genlab.data.images.labelled_splits`, as population-based augmentation's.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from genlab.data.batches import InMemoryBatches
from genlab.data.images import LabelledSplits, labelled_splits
from genlab.meta.nas import ENAS, ENASConfig, ema, reinforce_loss
from genlab.models.supernet import SuperNet
from genlab.tasks.entry import ModelEntry
from genlab.train.config import TrainConfig
from genlab.train.loop import (
    StepFn,
    TrainState,
    adam,
    check_finite,
    make_state,
    optimizer_update,
    step_generator,
)


def load_data(data: str, data_dir, options: ENASConfig) -> LabelledSplits:
    return labelled_splits(data, data_dir, options.train_images, options.val_images)


class SearchBatches:
    """A shuffled training batch and a validation batch in [0, 1] per step."""

    def __init__(self, splits: LabelledSplits, batch_size: int, seed: int, val_batch: int):
        self.train = InMemoryBatches({"x": splits.train_x, "y": splits.train_y}, batch_size, seed)
        self.val = InMemoryBatches({"x": splits.val_x, "y": splits.val_y},
                                   min(val_batch, len(splits.val_x)), seed + 1)  # fmt: skip

    def batch(self, step: int) -> dict[str, torch.Tensor]:
        b, v = self.train.batch(step), self.val.batch(step)
        return {"x": b["x"].float() / 255, "y": b["y"], "val_x": v["x"].float() / 255,
                "val_y": v["y"]}  # fmt: skip


def search_batches(options: ENASConfig, splits: LabelledSplits, batch_size: int, seed: int, **_):
    return SearchBatches(splits, batch_size, seed, options.val_batch)


def make_search_state(model: ENAS, cfg: TrainConfig) -> TrainState:
    """Adam for the shared weights ('main', the run's --lr) and for the controller."""
    optimizers = {"main": adam(model.net.parameters(), cfg.lr, weight_decay=cfg.weight_decay)}
    if model.controller is not None:
        optimizers["controller"] = adam(model.controller.parameters(), model.cfg.controller_lr)
    return make_state(model, cfg, optimizers)


def accuracy(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (logits.argmax(1) == y).float().mean()


def controller_update(
    state: TrainState, batch: dict, generator: torch.Generator
) -> dict[str, torch.Tensor]:
    """One REINFORCE step of the controller: rewards are the drawn children's validation
    accuracies with the shared weights; the baseline starts at the first rewards' mean."""
    model, cfg = state.model, state.model.cfg
    archs, log_prob, entropy = model.controller(cfg.controller_samples, generator=generator)
    with torch.no_grad():
        reward = torch.stack([accuracy(model.net(batch["val_x"], a.tolist()), batch["val_y"])
                              for a in archs])  # fmt: skip
    if not model.rewarded:
        model.baseline.fill_(reward.mean())
        model.rewarded.fill_(True)
    loss = reinforce_loss(log_prob, reward, float(model.baseline))
    loss = loss - cfg.entropy_weight * entropy.mean()
    optimizer_update(state, "controller", loss)
    model.baseline.fill_(ema(float(model.baseline), float(reward.mean()), cfg.baseline_decay))
    return {"reward": reward.mean(), "entropy": entropy.mean()}


def search_step(cfg: TrainConfig) -> StepFn:
    def step(state: TrainState, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        model: ENAS = state.model
        generator = step_generator(cfg.seed, state.step)  # a resumed run draws what it would have
        arch = model.child(generator)
        logits = model.net(batch["x"], arch)  # (B, classes)
        loss = F.cross_entropy(logits, batch["y"])
        check_finite(state.step + 1, {"loss": loss.detach()})
        optimizer_update(state, "main", loss, list(model.net.parameters()), cfg.grad_clip)
        metrics = {"loss": loss, "accuracy": accuracy(logits, batch["y"])}
        state.schedulers["main"].step()
        if model.controller is not None and (state.step + 1) % model.cfg.controller_every == 0:
            metrics.update(controller_update(state, batch, generator))
            state.schedulers["controller"].step()  # its schedule counts its own updates
        metrics["lr"] = torch.tensor(state.optimizers["main"].param_groups[0]["lr"])
        return {k: v.detach() for k, v in metrics.items()}

    return step


def evaluate_search(model: ENAS, options: ENASConfig, splits: LabelledSplits,
                    n: int | None = None, seed: int = 0, candidates: int = 20, **_) -> dict:  # fmt: skip
    """A fixed architecture: its validation and test accuracy. A search: `candidates` children
    drawn from the controller, each scored on the validation images with the shared weights;
    the best one's string (to retrain with `--arch`), its description and its accuracies with
    the shared weights. `n` limits the images of each split. Batches of 500 (batch norm uses
    each batch's statistics)."""

    @torch.no_grad()
    def score(arch, x, y) -> float:
        x, y = x[:n], y[:n]
        logits = torch.cat([model.net(b.float() / 255, arch) for b in x.split(500)])
        return accuracy(logits, y).item()

    if model.controller is None:
        archs = [options.fixed_arch]
    else:
        g = torch.Generator().manual_seed(seed)
        archs = [model.child(g) for _ in range(candidates)]
    val = [score(a, splits.val_x, splits.val_y) for a in archs]
    best = archs[int(np.argmax(val))]
    test = score(best, splits.test_x, splits.test_y)
    return {"arch": ",".join(map(str, best)), "description": options.space.describe(best),
            "val_accuracy": max(val), "test_accuracy": test, "test_error": 100 * (1 - test),
            "candidates": len(archs), "parameters_of_the_child": child_parameters(options, best),
            "n": len(splits.test_y[:n])}  # fmt: skip


def child_parameters(options: ENASConfig, arch: list[int]) -> int:
    """Weights of the architecture alone (the shared network holds every operation's)."""
    return sum(p.numel() for p in SuperNet(options.space, arch).parameters())


ENTRIES = (
    ModelEntry(
        name="enas", summary="architecture search: ENAS's shared network and REINFORCE "
        "controller, or one architecture (--arch) trained alone", options=ENASConfig,
        build=ENAS, datasets=("mnist",), load_data=load_data, batches=search_batches,
        evaluate=evaluate_search, make_state=make_search_state, make_step=search_step,
        train_defaults={"lr": 1e-3, "batch_size": 64},
    ),
)  # fmt: skip
