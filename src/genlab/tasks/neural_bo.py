"""The neural Bayesian optimiser (Chen et al. 2017) as an application: GP draws as its data, and
its evaluation against BoTorch's GP expected improvement, Optuna's TPE and random search on the
same held-out GP draws and on the benchmark function of its dimension (Branin in 2-D,
Hartmann in 3-D and 6-D), with the best value found against the number of queries."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import torch

from genlab.errors import ConfigError
from genlab.meta.neural_bo import FourierGP, FunctionBatches, NeuralBOConfig, Proposer
from genlab.meta.searchers import (
    EXTRA,
    Searcher,
    botorch_ei,
    minimise,
    optuna_tpe,
    random_search,
)
from genlab.tasks.entry import ModelEntry
from genlab.viz.curves import save_curves

TEST_SEED = 8_642  # held-out GP draws: apart from every training draw
REPORT_STEPS = (10, 25, 50, 100)  # and the last query, twice the horizon (beyond it)
LIBRARY_STEPS = 50  # BoTorch and Optuna run to the bar's query: BoTorch takes ~0.2-0.6 s a
# proposal here, and Optuna replays its whole history into a fresh study at every ask
BENCHMARKS = {2: "branin", 3: "hartmann3", 6: "hartmann6"}
SCALE_POINTS = 4096  # uniform points whose mean and spread standardise a benchmark function


def load_data(data: str, data_dir: str | None, options: NeuralBOConfig) -> None:
    if data != "gp":
        raise ConfigError(f"the neural optimiser meta-trains on GP draws (--data gp), not '{data}'")
    return None  # functions are drawn afresh every step


def train_batches(options: NeuralBOConfig, data, batch_size: int, seed: int, **_):
    """`--batch-size` counts functions per step."""
    return FunctionBatches(options, batch_size, seed)


class Benchmark:
    """A BoTorch test function on the unit cube (mapped to its bounds), standardised by the mean
    and standard deviation of SCALE_POINTS uniform points, so that its values are on a GP
    draw's scale; `regret(y)` in the function's own units."""

    def __init__(self, name: str):
        try:
            from botorch.test_functions import Branin, Hartmann  # the tune extra
        except ImportError:
            raise ConfigError(f"evaluating neural_bo needs the 'tune' extra: {EXTRA}") from None
        made = {"branin": lambda: Branin(), "hartmann3": lambda: Hartmann(dim=3),
                "hartmann6": lambda: Hartmann(dim=6)}  # fmt: skip
        self.name, self.function = name, made[name]()
        self.bounds = self.function.bounds.float()  # (2, d)
        values = self.raw(torch.rand(SCALE_POINTS, self.dim,
                                     generator=torch.Generator().manual_seed(0)))  # fmt: skip
        self.mean, self.std = float(values.mean()), float(values.std())

    @property
    def dim(self) -> int:
        return self.bounds.shape[1]

    def raw(self, x: torch.Tensor) -> torch.Tensor:
        """x (..., d) in the unit cube -> the function's own values (...)."""
        lo, hi = self.bounds
        return self.function.evaluate_true((lo + x * (hi - lo)).double()).float()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return (self.raw(x) - self.mean) / self.std

    def regret(self, standardised: torch.Tensor) -> torch.Tensor:
        return standardised * self.std + self.mean - self.function.optimal_value


def test_functions(dim: int, n: int) -> dict[str, Callable]:
    """name -> batched f ((n, d) -> (n,)): n held-out GP draws, and the dim's benchmark."""
    out: dict[str, Callable] = {
        "gp": FourierGP.draw(n, dim, torch.Generator().manual_seed(TEST_SEED))
    }
    if dim in BENCHMARKS:
        out[BENCHMARKS[dim]] = Benchmark(BENCHMARKS[dim])
    return out


def one(f: Callable, i: int) -> Callable[[torch.Tensor], float]:
    """Function i of a batch, as a searcher meets it: (d,) -> float."""
    if isinstance(f, FourierGP):
        alone = FourierGP(f.omega[i : i + 1], f.phase[i : i + 1], f.weight[i : i + 1])
        return lambda x: float(alone(x[None]))
    return lambda x: float(f(x[None])[0])


def searched(
    ask: Searcher, f: Callable, dim: int, n: int, steps: int
) -> tuple[torch.Tensor, float]:
    """n searches by `ask` of `steps` queries each (search i on function i of f, seed i): the
    values found (n, T) and the seconds a proposal took."""
    t0 = time.perf_counter()
    ys = torch.stack([minimise(ask, one(f, i), dim, steps, seed=i)[1] for i in range(n)])
    return ys, (time.perf_counter() - t0) / (n * steps)


def best_so_far(
    model: Proposer, f: Callable, dim: int, n: int, steps: int
) -> dict[str, tuple[torch.Tensor, float]]:
    """method -> (running minimum (n, T) over n seeds (for GP draws: n functions), seconds per
    proposal). The network runs its n searches as one batch; random search runs to `steps`
    as well, BoTorch and Optuna to LIBRARY_STEPS."""
    t0 = time.perf_counter()
    _, ys = model.rollout(f, n, steps)
    runs = {"neural_bo": (ys, (time.perf_counter() - t0) / (n * steps)),
            "random": searched(random_search(dim), f, dim, n, steps)}  # fmt: skip
    budget = min(LIBRARY_STEPS, steps)
    runs["optuna"] = searched(optuna_tpe(dim), f, dim, n, budget)
    runs["botorch"] = searched(botorch_ei(dim), f, dim, n, budget)
    return {k: (torch.cummin(ys, 1).values, s) for k, (ys, s) in runs.items()}


def evaluate(model: Proposer, options: NeuralBOConfig, data, *, n: int | None, **_) -> dict:
    """Per test function and method: the median and quartiles over n searches (default 50) of
    the best value found by query 10, 25, 50, 100 and 2 x horizon (standardised values; for
    benchmarks also the regret in the function's units), and seconds per proposal."""
    n, steps = n or 50, 2 * options.horizon
    report: dict = {"searches": n, "queries": steps, "library_queries": min(LIBRARY_STEPS, steps)}
    for name, f in test_functions(options.dim, n).items():
        rows = {}
        for method, (best, seconds) in best_so_far(model, f, options.dim, n, steps).items():
            row: dict = {"seconds_per_proposal": seconds}
            for t in sorted({t for t in REPORT_STEPS if t < steps} | {steps}):
                if t <= best.shape[1]:
                    row.update(quartiles(f"best_{t}", best[:, t - 1]))
                    if isinstance(f, Benchmark):
                        row.update(quartiles(f"regret_{t}", f.regret(best[:, t - 1])))
            rows[method] = row
        report[name] = rows
    return report


def quartiles(name: str, values: torch.Tensor) -> dict[str, float]:
    q = torch.quantile(values.double(), torch.tensor([0.25, 0.5, 0.75]).double()).tolist()
    return {f"{name}_median": q[1], f"{name}_q25": q[0], f"{name}_q75": q[2]}


def search_curves(model: Proposer, options: NeuralBOConfig, data, out: Path,
                  seed: int) -> list[Path]:  # fmt: skip
    """pictures/search.png: on 20 held-out GP draws, the median best value found against the
    number of queries, for the network and random search (the batched two; `genlab eval`
    adds BoTorch and Optuna)."""
    n, steps = 20, 2 * options.horizon
    f = FourierGP.draw(n, options.dim, torch.Generator().manual_seed(TEST_SEED))
    with torch.no_grad():
        _, ys = model.rollout(f, n, steps)
    random, _ = searched(random_search(options.dim), f, options.dim, n, steps)
    series = {name: (list(range(1, steps + 1)), torch.cummin(v, 1).values.median(0).values.tolist())
              for name, v in (("neural_bo", ys), ("random", random))}  # fmt: skip
    path = save_curves(
        series,
        Path(out) / "search.png",
        "queries",
        "median best value",
        f"{options.dim}-d GP draws (meta-trained to {options.horizon} queries)",
    )
    return [path]


ENTRIES = (
    ModelEntry(
        name="neural_bo",
        summary="an LSTM that learns black-box optimisation from GP draws (Chen et al. 2017)",
        options=NeuralBOConfig, build=Proposer, datasets=("gp",), load_data=load_data,
        batches=train_batches, evaluate=evaluate, pictures=search_curves,
        train_defaults={"lr": 5e-4, "batch_size": 64, "grad_clip": 1.0, "log_every": 20,
                        "checkpoint_every": 200},
    ),
)  # fmt: skip
