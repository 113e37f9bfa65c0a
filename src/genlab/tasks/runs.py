"""Loading any trained run by what its config.json says it is."""

from __future__ import annotations

from pathlib import Path

import torch

from genlab.tasks import training
from genlab.tasks.entry import ModelEntry
from genlab.tasks.registry import get_model
from genlab.train.runs import read_config


def load_run(
    run_dir: Path, use_ema: bool = True, overrides: list[str] | None = None
) -> tuple[ModelEntry, object, torch.nn.Module, dict]:
    """Rebuild a run's model from config.json and load its weights (the EMA weights if kept);
    see `training.load` for `overrides`. Returns (registry entry, model options, model in eval
    mode, config dict)."""
    entry = get_model(read_config(run_dir)["model"])
    options, model, config = training.load(entry, Path(run_dir), use_ema, overrides)
    return entry, options, model, config
