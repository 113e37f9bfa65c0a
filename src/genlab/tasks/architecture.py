"""Architecture search on a small labelled subset of MNIST (issue 42 B): three searches over one
space (`genlab.meta.nas`), and any one architecture trained alone from scratch (`--arch`: how a
found architecture is retrained). Its registry entry, data, steps and evaluation.

- ENAS (`--search enas`): one training step trains the shared weights on one training batch
  through one child the controller draws; every `controller_every` steps the controller draws
  `controller_samples` children, each is scored by its accuracy on one validation batch with the
  shared weights (its reward), and the controller takes one REINFORCE step.
- NAS (`--search nas`): one step is one controller update; each of its `controller_samples`
  children is first trained from scratch for `child_steps` (`train_child`), then scored.
- Random search (`--search random`): one step trains and scores `controller_samples` uniformly
  drawn children; nothing learns. NAS and random search keep the best child scored so far.

The split is `genlab.data.images.labelled_splits`, as population-based augmentation's.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from genlab.data.batches import InMemoryBatches
from genlab.data.images import LabelledSplits, labelled_splits
from genlab.meta.nas import ENAS, ENASConfig, ema, reinforce_loss
from genlab.models.supernet import SearchSpace, SuperNet
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
from genlab.viz.architectures import save_architectures


def load_data(data: str, data_dir, options: ENASConfig) -> LabelledSplits:
    return labelled_splits(data, data_dir, options.train_images, options.val_images)


class SearchBatches:
    """A shuffled training batch and a validation batch in [0, 1] per step."""

    def __init__(self, splits: LabelledSplits, batch_size: int, seed: int, val_batch: int,
                 whole: bool = False):  # fmt: skip
        self.train = InMemoryBatches({"x": splits.train_x, "y": splits.train_y}, batch_size, seed)
        self.val = InMemoryBatches({"x": splits.val_x, "y": splits.val_y},
                                   min(val_batch, len(splits.val_x)), seed + 1)  # fmt: skip
        self.whole = {"train_x": splits.train_x, "train_y": splits.train_y} if whole else {}

    def batch(self, step: int) -> dict[str, torch.Tensor]:
        """With `whole`, also every training image (uint8), for children trained from scratch."""
        b, v = self.train.batch(step), self.val.batch(step)
        return {"x": b["x"].float() / 255, "y": b["y"], "val_x": v["x"].float() / 255,
                "val_y": v["y"], **self.whole}  # fmt: skip


def search_batches(options: ENASConfig, splits: LabelledSplits, batch_size: int, seed: int, **_):
    scratch = options.search != "enas"
    return SearchBatches(splits, batch_size, seed, options.val_batch, whole=scratch)


def make_search_state(model: ENAS, cfg: TrainConfig) -> TrainState:
    """Adam for the shared weights ('main', the run's --lr) and for the controller; random
    search has neither."""
    optimizers = {}
    if model.net is not None:
        optimizers["main"] = adam(model.net.parameters(), cfg.lr, weight_decay=cfg.weight_decay)
    if model.controller is not None:
        optimizers["controller"] = adam(model.controller.parameters(), model.cfg.controller_lr)
    return make_state(model, cfg, optimizers)


def accuracy(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (logits.argmax(1) == y).float().mean()


def controller_update(
    state: TrainState, generator: torch.Generator, score: Callable[[list[int]], torch.Tensor]
) -> dict[str, torch.Tensor]:
    """Draw `controller_samples` children and score each (`score(arch)`: its validation
    accuracy); NAS and random search keep the best; then, if there is a controller, one
    REINFORCE step on the scores, its baseline starting at the first scores' mean."""
    model, cfg = state.model, state.model.cfg
    archs, log_prob, entropy = model.draw(cfg.controller_samples, generator)
    reward = torch.stack([score(a.tolist()) for a in archs])  # (N,)
    metrics = {"reward": reward.mean()}
    if cfg.search != "enas":  # ENAS names its best at evaluation
        model.keep_best(archs, reward)
        metrics["best_reward"] = model.best_reward.clone()
    if model.controller is None:
        return metrics
    if not model.rewarded:
        model.baseline.fill_(reward.mean())
        model.rewarded.fill_(True)
    loss = reinforce_loss(log_prob, reward, float(model.baseline))
    loss = loss - cfg.entropy_weight * entropy.mean()
    optimizer_update(state, "controller", loss)
    state.schedulers["controller"].step()  # its schedule counts its own updates
    model.baseline.fill_(ema(float(model.baseline), float(reward.mean()), cfg.baseline_decay))
    return {**metrics, "entropy": entropy.mean()}


def train_child(
    space: SearchSpace, arch: list[int], x: torch.Tensor, y: torch.Tensor, cfg: TrainConfig,
    steps: int, generator: torch.Generator,
) -> SuperNet:  # fmt: skip
    """One architecture trained from scratch, as NAS trains every child: its own weights
    (initialised from `generator`), Adam at the run's --lr and --grad-clip, `steps` batches of
    --batch-size drawn from the uint8 images `x` (N, 1, 28, 28) with labels `y` (N,)."""
    with torch.random.fork_rng():
        torch.manual_seed(int(torch.randint(2**62, (), generator=generator)))
        net = SuperNet(space, arch)
    opt = adam(net.parameters(), cfg.lr, weight_decay=cfg.weight_decay)
    for _ in range(steps):
        i = torch.randint(len(x), (cfg.batch_size,), generator=generator)
        loss = F.cross_entropy(net(x[i].float() / 255, arch), y[i])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(net.parameters(), cfg.grad_clip)
        opt.step()
    return net


def search_step(cfg: TrainConfig) -> StepFn:
    def from_scratch(state: TrainState, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """NAS and random search: one step trains and scores a round of children."""
        model: ENAS = state.model
        generator = step_generator(cfg.seed, state.step)

        def score(arch: list[int]) -> torch.Tensor:
            net = train_child(model.cfg.space, arch, batch["train_x"], batch["train_y"], cfg,
                              model.cfg.child_steps, generator)  # fmt: skip
            with torch.no_grad():
                return accuracy(net(batch["val_x"], arch), batch["val_y"])

        metrics = controller_update(state, generator, score)
        metrics["children"] = model.children_trained.clone()
        return {k: v.detach() for k, v in metrics.items()}

    def step(state: TrainState, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        model: ENAS = state.model
        if model.cfg.search != "enas":
            return from_scratch(state, batch)
        generator = step_generator(cfg.seed, state.step)  # a resumed run draws what it would have
        arch = model.child(generator)
        logits = model.net(batch["x"], arch)  # (B, classes)
        loss = F.cross_entropy(logits, batch["y"])
        check_finite(state.step + 1, {"loss": loss.detach()})
        optimizer_update(state, "main", loss, list(model.net.parameters()), cfg.grad_clip)
        metrics = {"loss": loss, "accuracy": accuracy(logits, batch["y"])}
        state.schedulers["main"].step()
        if model.controller is not None and (state.step + 1) % model.cfg.controller_every == 0:

            @torch.no_grad()
            def score(arch: list[int]) -> torch.Tensor:  # with the shared weights
                return accuracy(model.net(batch["val_x"], arch), batch["val_y"])

            metrics.update(controller_update(state, generator, score))
        metrics["lr"] = torch.tensor(state.optimizers["main"].param_groups[0]["lr"])
        return {k: v.detach() for k, v in metrics.items()}

    return step


def evaluate_search(model: ENAS, options: ENASConfig, splits: LabelledSplits,
                    n: int | None = None, seed: int = 0, candidates: int = 20, **_) -> dict:  # fmt: skip
    """A fixed architecture: its validation and test accuracy. ENAS: `candidates` children
    drawn from the controller, each scored on the validation images with the shared weights;
    the best one's string (to retrain with `--arch`), its description and its accuracies with
    the shared weights. NAS and random search: the best child they scored, and its score (it
    kept no weights: retrain it with `--arch`). `n` limits the images of each split. Batches of
    500 (batch norm uses each batch's statistics)."""
    if options.search != "enas":
        best = model.best_arch.tolist()
        found = {"arch": ",".join(map(str, best)), "description": options.space.describe(best),
                 "search": options.search, "children": int(model.children_trained),
                 "best_reward": float(model.best_reward),
                 "parameters_of_the_child": child_parameters(options, best)}  # fmt: skip
        if model.best_reward < 0:
            found.update(arch=None, description="no child scored yet")
        return found

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


def architecture_pictures(model: ENAS, options: ENASConfig, splits, out, seed: int) -> list:
    """pictures/architecture.png: the run's architecture as a diagram: the one trained, the best
    child NAS or random search scored, or four children drawn from ENAS's controller."""
    space, rows = options.space, {}
    if options.fixed_arch is not None:
        rows["trained alone"] = space.parse(options.fixed_arch)
    elif options.search != "enas":
        if model.best_reward >= 0:
            rows[
                f"{options.search}: best of {int(model.children_trained)} children "
                f"(scored {float(model.best_reward):.3f})"
            ] = space.parse(model.best_arch.tolist())
    else:
        g = torch.Generator().manual_seed(seed)
        for i in range(4):
            rows[f"drawn from the controller ({i + 1})"] = space.parse(model.child(g))
    return [save_architectures(rows, Path(out) / "architecture.png")] if rows else []


ENTRIES = (
    ModelEntry(
        name="enas", summary="architecture search: ENAS's shared network and REINFORCE "
        "controller, or one architecture (--arch) trained alone", options=ENASConfig,
        build=ENAS, datasets=("mnist",), load_data=load_data, batches=search_batches,
        evaluate=evaluate_search, make_state=make_search_state, make_step=search_step,
        pictures=architecture_pictures,
        train_defaults={"lr": 1e-3, "batch_size": 64},
    ),
)  # fmt: skip
