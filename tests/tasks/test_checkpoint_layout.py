"""Checkpoints written before a change still load: every registry entry's state-dict keys and
shapes (default options) and option fields, and the training options, against the listing
committed in checkpoint_layout.json (made from the code of 2026-12-04, before the architecture
change). A change that renames or reshapes a saved tensor, or drops an option an old
config.json holds, fails here; regenerate the listing only with a migration for old runs."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from genlab.models.parallel_wavenet import ParallelWaveNet
from genlab.models.wavenet import WaveNet, WaveNetConfig
from genlab.tasks.registry import MODELS
from genlab.train.config import TrainConfig

LISTING = json.loads((Path(__file__).parent / "checkpoint_layout.json").read_text())


def build_default(name: str):
    """The entry's network with default options; a student gets a default WaveNet teacher
    (its registry build loads the teacher run its options name)."""
    entry = MODELS[name]
    if name == "parallel_wavenet":
        return ParallelWaveNet(entry.options(), WaveNet(WaveNetConfig()))
    return entry.build(entry.options())


def test_every_listed_model_is_still_registered():
    assert set(LISTING["models"]) <= set(MODELS)  # a model added since has no old checkpoints


@pytest.mark.parametrize("name", sorted(LISTING["models"]))
def test_saved_tensor_names_and_shapes_are_unchanged(name):
    listed = LISTING["models"][name]
    state = {k: list(v.shape) for k, v in build_default(name).state_dict().items()}
    assert state == listed["state_dict"]


@pytest.mark.parametrize("name", sorted(LISTING["models"]))
def test_option_fields_old_configs_hold_still_exist(name):
    fields = {f.name for f in dataclasses.fields(MODELS[name].options)}
    assert set(LISTING["models"][name]["option_fields"]) <= fields


def test_training_option_fields_are_unchanged():
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    assert set(LISTING["train_config_fields"]) <= fields
