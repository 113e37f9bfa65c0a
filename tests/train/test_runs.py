"""What a run directory says about itself."""

from __future__ import annotations

import torch

from genlab.train import runs
from genlab.train.state import CHECKPOINT


def a_run(tmp_path, budget: dict, step: int | None):
    run = tmp_path / "run"
    runs.write_config(run, {"model": "vae", "data": "mnist", "model_options": {}, "train": budget})
    if step is not None:
        torch.save({"step": step, "seconds": 1.0}, run / CHECKPOINT)
    return run


def test_a_run_is_finished_only_when_its_checkpoint_reached_the_step_budget(tmp_path):
    assert not runs.finished(a_run(tmp_path, {"steps": 1000}, None))
    assert not runs.finished(a_run(tmp_path, {"steps": 1000}, 999))  # interrupted: resume it
    assert runs.finished(a_run(tmp_path, {"steps": 1000}, 1000))


def test_a_run_budgeted_in_minutes_is_finished_once_it_has_a_checkpoint(tmp_path):
    assert not runs.finished(a_run(tmp_path, {"steps": None, "minutes": 5}, None))
    assert runs.finished(a_run(tmp_path, {"steps": None, "minutes": 5}, 12))
