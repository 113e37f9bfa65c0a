"""The learned optimizer (Andrychowicz et al. 2016) as an application: problem families as its
data, evaluation against tuned SGD, Nesterov momentum, RMSprop and Adam on the same held-out
problems, the transfer tests of the paper for MNIST, and the loss-curve picture."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import torch

from genlab.data.images import image_splits
from genlab.errors import ConfigError
from genlab.meta.l2l import (
    RULES,
    L2LConfig,
    LSTMOptimizer,
    ProblemBatches,
    learned_curve,
    meta_step,
    rule_curve,
)
from genlab.meta.optimizees import FAMILIES, Family
from genlab.metrics.stats import mean_ci95
from genlab.tasks.entry import ModelEntry
from genlab.viz.curves import save_curves

LR_GRID = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0, 3.0)  # each baseline's search
REPORT_STEPS = (10, 50, 100, 200)  # meta-trained to 100: 200 is the longer-run transfer
TUNE_STEP = 100  # a baseline's rate is the grid's lowest mean loss here, on tuning problems
TUNE_SEED, TEST_SEED = 24_681, 13_579  # problems apart from every training draw
VALID_SEED, VALID_PROBLEMS = 97_531, 50  # for choosing between meta-trainings, never the test
PICTURE_PROBLEMS = 5  # the learned LSTM runs ~25 ms a step per MNIST problem on one thread


def load_data(data: str, data_dir: str | None, options: L2LConfig) -> Family:
    if data not in FAMILIES:
        raise ConfigError(f"the learned optimizer trains on problem families "
                          f"({', '.join(FAMILIES)}), not '{data}'")  # fmt: skip
    if data == "quadratic":
        return Family("quadratic")
    splits = image_splits("mnist", data_dir)
    images = splits.train_x.flatten(1).float() / 255.0  # (N, 784)
    return Family("mnist", images, splits.train_y, options.mlp_shape)


def train_batches(options: L2LConfig, family: Family, batch_size: int, seed: int, **_):
    """`--batch-size` counts problems per step."""
    return ProblemBatches(family, batch_size, options.horizon, seed)


def transfer_families(family: Family) -> dict[str, Family]:
    """The families evaluated: the one trained on, and for MNIST the paper's transfer tests."""
    if family.name == "quadratic":
        return {"quadratic": family}
    base = family.shape
    return {
        "mnist": family,
        "mnist_40_hidden": replace(family, shape=replace(base, hidden=(2 * base.hidden[0],))),
        "mnist_2_layers": replace(family, shape=replace(base, hidden=(base.hidden[0],) * 2)),
        "mnist_relu": replace(family, shape=replace(base, activation="relu")),
    }


def curves(model: LSTMOptimizer, family: Family, n: int, steps: int,
           tune_n: int) -> dict[str, tuple[float | None, torch.Tensor]]:  # fmt: skip
    """{optimizer: (its learning rate, f(theta_t) (steps+1, n))} on the same n test problems;
    each baseline's rate tuned on `tune_n` other problems (mean loss at step TUNE_STEP)."""
    tune_steps = min(TUNE_STEP, steps)
    tune = family.draw(tune_n, torch.Generator().manual_seed(TUNE_SEED), tune_steps)
    test = family.draw(n, torch.Generator().manual_seed(TEST_SEED), steps)
    out = {"learned": (None, learned_curve(model, test, steps))}
    for name, rule in RULES.items():
        scores = [rule_curve(rule, lr, tune, tune_steps)[-1].mean().nan_to_num(torch.inf)
                  for lr in LR_GRID]  # fmt: skip
        lr = LR_GRID[int(torch.stack(scores).argmin())]
        out[name] = (lr, rule_curve(rule, lr, test, steps))
    return out


def validation_loss(model: LSTMOptimizer, family: Family, n: int = VALID_PROBLEMS) -> float:
    """The learned optimizer's mean loss at step TUNE_STEP on n validation problems of the
    family, drawn apart from the tuning, test and training problems: the score to choose
    between meta-trainings (seeds, checkpoints) by, so that the test problems stay unseen until
    the chosen one is evaluated. A diverged problem makes it inf."""
    problems = family.draw(n, torch.Generator().manual_seed(VALID_SEED), TUNE_STEP)
    mean = learned_curve(model, problems, TUNE_STEP)[-1].mean()  # over the n problems
    return float(mean) if torch.isfinite(mean) else math.inf


def evaluate(model: LSTMOptimizer, options: L2LConfig, family: Family, *, n: int | None,
             **_) -> dict:  # fmt: skip
    """Per family, `family_rows` of every optimizer's curve on n held-out problems (default
    100)."""
    n = n or 100
    report: dict = {"problems": n, "lr_grid": list(LR_GRID), "tuned_at_step": TUNE_STEP}
    for name, fam in transfer_families(family).items():
        report[name] = family_rows(curves(model, fam, n, max(REPORT_STEPS), min(n, 20)))
    return report


def family_rows(curves: dict[str, tuple[float | None, torch.Tensor]]) -> dict[str, dict]:
    """{optimizer: row} from `curves`' output: the learning rate (baselines), the mean loss and
    log-loss at steps 10, 50, 100, 200 with 95% intervals and how many problems diverged
    (`step_stats`); for each baseline also the learned optimizer's loss minus its own on the
    same problems (`paired_stats`), which tells them apart where the two means' intervals,
    wide from the spread between problems, overlap."""
    learned, rows = curves["learned"][1], {}
    for opt, (lr, losses) in curves.items():
        row: dict = {"lr": lr} if lr is not None else {}
        for t in REPORT_STEPS:
            row.update(step_stats(losses[t], t))
            if opt != "learned":
                row.update(paired_stats(learned[t] - losses[t], t))
        rows[opt] = row
    return rows


def paired_stats(differences: torch.Tensor, t: int) -> dict:
    """The learned optimizer's loss minus a baseline's at step t, problem by problem (n,): the
    mean and its 95% interval, None (JSON null) if either diverged on any problem."""
    finite = bool(torch.isfinite(differences).all())
    mean, ci = mean_ci95(differences) if finite else (None, None)
    return {f"learned_minus_{t}": mean, f"learned_minus_{t}_ci95": ci}


def step_stats(losses: torch.Tensor, t: int) -> dict:
    """Mean loss and log-loss of the problems at step t (n,) with 95% intervals, and how many
    diverged (loss not finite); the means are None (JSON null) if any did."""
    diverged = int((~torch.isfinite(losses)).sum())
    out: dict = {f"diverged_{t}": diverged}
    for name, values in (("loss", losses), ("log_loss", losses.clamp_min(1e-12).log())):
        mean, ci = mean_ci95(values) if not diverged else (None, None)
        out[f"{name}_{t}"], out[f"{name}_{t}_ci95"] = mean, ci
    return out


def loss_curves(model: LSTMOptimizer, options: L2LConfig, family: Family, out: Path,
                seed: int) -> list[Path]:  # fmt: skip
    """pictures/curves.png: the mean over 5 held-out problems of the family trained on of
    log10 f(theta_t) (a diverged problem counts as 1e12), against t, one line per optimizer
    (the baselines at their tuned rates)."""
    steps = max(REPORT_STEPS)
    series = {}
    for opt, (lr, losses) in curves(
        model, family, PICTURE_PROBLEMS, steps, PICTURE_PROBLEMS
    ).items():
        label = opt if lr is None else f"{opt} (lr {lr:g})"
        log10 = losses.nan_to_num(1e12).clamp(1e-12, 1e12).log10().mean(1)  # (steps+1,)
        series[label] = (list(range(steps + 1)), log10.tolist())
    path = save_curves(series, Path(out) / "curves.png", "optimisee step",
                       "mean log10 loss", f"{family.name}: learned optimizer vs tuned baselines "
                       f"(meta-trained to step {options.horizon})")  # fmt: skip
    return [path]


ENTRIES = (
    ModelEntry(
        name="l2l_optimizer",
        summary="an LSTM that learns to optimise (learning to learn by gradient descent)",
        options=L2LConfig, build=LSTMOptimizer, datasets=FAMILIES, load_data=load_data,
        batches=train_batches, evaluate=evaluate, make_step=meta_step, pictures=loss_curves,
        compiles=True,
        train_defaults={"lr": 1e-3, "batch_size": 32, "log_every": 10, "checkpoint_every": 100},
    ),
)  # fmt: skip
