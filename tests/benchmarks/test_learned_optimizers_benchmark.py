"""The learned-optimizer benchmark's choice between seeds: made on the validation problems,
the lowest loss kept, the runs named per seed."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from common import train_from_scratch  # noqa: E402
from genlab.meta.l2l import L2LConfig  # noqa: E402
from genlab.meta.optimizees import Family  # noqa: E402
from genlab.tasks.learned_optimizers import validation_loss  # noqa: E402
from genlab.tasks.runs import load_run  # noqa: E402
from genlab.train.config import TrainConfig  # noqa: E402
from learned_optimizers import seed_runs, select  # noqa: E402


def test_one_seed_keeps_the_parts_own_run_and_several_get_one_run_each(tmp_path):
    assert seed_runs(tmp_path, "mnist", [0]) == {0: tmp_path / "mnist"}
    assert seed_runs(tmp_path, "mnist", [2, 3]) == {2: tmp_path / "mnist-seed2",
                                                    3: tmp_path / "mnist-seed3"}  # fmt: skip


def test_the_seed_kept_is_the_one_lowest_on_the_validation_problems(tmp_path):
    runs = seed_runs(tmp_path, "quadratic", [0, 1, 2])
    for seed, run in runs.items():  # different seeds, different learned rules
        cfg = TrainConfig(steps=1 + 2 * seed, seed=seed, batch_size=4, lr=1e-2)
        train_from_scratch("l2l_optimizer", "quadratic", L2LConfig(hidden=4), cfg, run)
    want = {
        seed: validation_loss(load_run(run)[2], Family("quadratic")) for seed, run in runs.items()
    }
    assert len(set(want.values())) == 3
    chosen = select(runs)
    assert chosen["chosen"] == min(want, key=want.__getitem__)
    assert chosen["validation_loss"] == {str(s): round(v, 4) for s, v in want.items()}
