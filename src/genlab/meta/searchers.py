"""Black-box minimisers of functions on the unit cube, all of one shape, so that a benchmark and
`genlab tune` treat them alike:

    searcher(xs (t, d), ys (t,), seed) -> the next query (d,) in [0, 1]^d

A searcher is a pure function of the history so far and a seed: a killed tuning job resumes by
asking again with the trials on disk. The baselines come from well-kept libraries (the `tune`
extra): BoTorch's GP expected improvement and Optuna's TPE; never reimplemented here.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import torch

from genlab.errors import ConfigError
from genlab.meta.neural_bo import Proposer

Searcher = Callable[[torch.Tensor, torch.Tensor, int], torch.Tensor]
BOTORCH_INITIAL = 2  # uniform queries before the GP is fitted
BOTORCH_RESTARTS, BOTORCH_RAW = 4, 128  # optimize_acqf's multi-start: ~0.2 s a proposal here
EXTRA = "pip install -c constraints.txt -e '.[tune]'"


def random_search(dim: int) -> Searcher:
    def ask(xs: torch.Tensor, ys: torch.Tensor, seed: int) -> torch.Tensor:
        return torch.rand(dim, generator=torch.Generator().manual_seed(seed))

    return ask


def neural(model: Proposer, standardise: bool = True) -> Searcher:
    """The learned proposer replayed over the history. With `standardise`, the values it sees
    are the history's z-scores (a tuning metric has no GP's unit scale); without, as given."""

    def ask(xs: torch.Tensor, ys: torch.Tensor, seed: int) -> torch.Tensor:
        ys = ys.float()
        if standardise and len(ys) > 1:
            ys = (ys - ys.mean()) / ys.std().clamp_min(1e-8)
        with torch.no_grad():
            return model.history_query(xs.float(), ys)

    return ask


def botorch_ei(dim: int) -> Searcher:
    """BoTorch: a SingleTaskGP (its default priors, outcome standardised) fitted by marginal
    likelihood, then log expected improvement maximised by `optimize_acqf`; BOTORCH_INITIAL
    uniform queries first."""
    try:
        from botorch.acquisition import LogExpectedImprovement  # the tune extra
        from botorch.fit import fit_gpytorch_mll  # the tune extra
        from botorch.models import SingleTaskGP  # the tune extra
        from botorch.optim import optimize_acqf  # the tune extra
        from gpytorch.mlls import ExactMarginalLogLikelihood  # the tune extra
    except ImportError:
        raise ConfigError(f"the botorch optimizer needs the 'tune' extra: {EXTRA}") from None
    bounds = torch.stack([torch.zeros(dim), torch.ones(dim)]).double()

    def ask(xs: torch.Tensor, ys: torch.Tensor, seed: int) -> torch.Tensor:
        if len(ys) < BOTORCH_INITIAL:
            return random_search(dim)(xs, ys, seed)
        x, y = xs.double(), -ys.double()[:, None]  # BoTorch maximises
        with torch.random.fork_rng(), torch.enable_grad(), warnings.catch_warnings():
            torch.manual_seed(seed)
            warnings.simplefilter("ignore")  # input-scaling advice; inputs are in the cube
            gp = SingleTaskGP(x, y)
            fit_gpytorch_mll(ExactMarginalLogLikelihood(gp.likelihood, gp))
            acq = LogExpectedImprovement(gp, best_f=y.max())
            best, _ = optimize_acqf(acq, bounds, q=1, num_restarts=BOTORCH_RESTARTS,
                                    raw_samples=BOTORCH_RAW)  # fmt: skip
        return best[0].float()

    return ask


def optuna_tpe(dim: int) -> Searcher:
    """Optuna's TPE sampler (its defaults: 10 random trials first), the history replayed into a
    fresh in-memory study."""
    try:
        import optuna  # the tune extra
    except ImportError:
        raise ConfigError(f"the optuna optimizer needs the 'tune' extra: {EXTRA}") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = {f"x{j}": optuna.distributions.FloatDistribution(0.0, 1.0) for j in range(dim)}

    def ask(xs: torch.Tensor, ys: torch.Tensor, seed: int) -> torch.Tensor:
        study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=seed))
        for x, y in zip(xs.tolist(), ys.tolist(), strict=True):
            params = {f"x{j}": min(max(v, 0.0), 1.0) for j, v in enumerate(x)}
            study.add_trial(optuna.trial.create_trial(params=params, distributions=space,
                                                      value=y))  # fmt: skip
        trial = study.ask(space)
        return torch.tensor([trial.params[f"x{j}"] for j in range(dim)])

    return ask


SEARCHERS = ("neural_bo", "botorch", "optuna", "random")


def searcher(name: str, dim: int, model: Proposer | None = None) -> Searcher:
    """The searcher called `name` (SEARCHERS) for a `dim`-dimensional cube; neural_bo needs the
    trained `model`, made for that dim."""
    if name == "neural_bo":
        if model is None or model.cfg.dim != dim:
            raise ConfigError(f"neural_bo needs a network trained for {dim} dimensions "
                              f"(genlab train neural_bo --dim {dim})")  # fmt: skip
        return neural(model)
    makers = {"botorch": botorch_ei, "optuna": optuna_tpe, "random": random_search}
    if name not in makers:
        raise ConfigError(f"--optimizer must be one of {', '.join(SEARCHERS)}, got '{name}'")
    return makers[name](dim)


def query_seed(seed: int, t: int) -> int:
    """The seed of a search's query t: (seed, t) folded into one integer."""
    return seed * 100_003 + t


def minimise(ask: Searcher, f: Callable[[torch.Tensor], float], dim: int, steps: int,
             seed: int) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """`steps` queries of f ((d,) -> float) by `ask`: xs (T, d), ys (T,)."""
    xs, ys = torch.zeros(0, dim), torch.zeros(0)
    for t in range(steps):
        x = ask(xs, ys, query_seed(seed, t))
        xs, ys = torch.cat([xs, x[None]]), torch.cat([ys, torch.tensor([float(f(x))])])
    return xs, ys
