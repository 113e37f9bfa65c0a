"""Every registry entry through the same contract: it builds, trains one step of a small batch
on real data through the one training loop, its checkpoint round-trips to equal weights and the
same options, its evaluation returns finite figures, and it samples (or plays) to a file.

A model added to the registry is picked up here without editing this file; `SMALL` only shrinks
the options of models whose defaults are slow for a test, and `ARRANGE` gives the collaborators
a few models need (a teacher, a V with rollouts).
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from genlab.agents.impala.evaluation import sample_gif
from genlab.data.episodes import Episode, episode_path, save_episode
from genlab.envs import paint_tasks
from genlab.envs.paint import PaintConfig
from genlab.models.audio_classifier import AudioClassifier, AudioClassifierConfig
from genlab.models.wavenet import WaveNetConfig
from genlab.tasks import audio, training
from genlab.tasks.images import sample_images
from genlab.tasks.registry import MODELS
from genlab.train.config import TrainConfig
from genlab.train.logger import read_metrics
from genlab.train.runs import checkpoint_weights
from genlab.train.state import read_checkpoint

TINY_WAVENET = {"channels": 4, "gate_channels": 4, "skip_channels": 8, "stacks": 1, "layers": 3,
                "crop": 400, "sample_seconds": 0.02}  # fmt: skip
# Smaller options (and batches) where the defaults take more than a few seconds a step.
SMALL: dict[str, dict] = {
    "wavenet": TINY_WAVENET,
    "linear_ar": {"crop": 400},
    "parallel_wavenet": {"flows": 2, "layers": 3, "channels": 4, "gate_channels": 4,
                         "crop": 300, "sample_seconds": 0.02},
    "glow": {"levels": 2, "depth": 2, "hidden": 16},
    "realnvp": {"levels": 2, "depth": 2, "hidden": 16},
    "pixelcnn": {"layers": 3, "channels": 16},
    "gated_pixelcnn": {"layers": 3, "channels": 16},
    "pixelvae": {"decoder_layers": 2, "decoder_channels": 16},
    "impala": {"unroll": 5},
    "a2c": {"unroll": 5},
    "spiral": {"unroll": 4, "lstm": 16, "critic_channels": 8},
    "maml": {"inner_steps": 1, "eval_inner_steps": 1},
    "fomaml": {"inner_steps": 1, "eval_inner_steps": 1},
    "reptile": {"inner_steps": 1, "eval_inner_steps": 1},
    "npi": {"hidden": 16, "state_dim": 16, "max_digits": 2, "max_items": 3},
    "seq2seq": {"hidden": 16, "max_digits": 2, "max_items": 3},
    "l2l_optimizer": {"hidden": 4, "horizon": 4, "unroll": 2},
    "neural_bo": {"hidden": 8, "layers": 1, "horizon": 2},
    "wrn": {"widen": 1, "train_images": 200, "val_images": 100},
    # one child alone: a search trains one child per step, so not every weight of its shared
    # network moves in two steps (tests/tasks/test_enas.py tests the search)
    "enas": {"arch": "1", "cells": 1, "channels": 4, "train_images": 64, "val_images": 32},
}  # fmt: skip
# What `genlab sample --out` names for samplers that write one file.
SAMPLE_FILE = {sample_images: "samples.png", sample_gif: "episode.gif"}
EVAL = {"k": 2, "n": 4, "seed": 0, "tasks": 2, "episodes": 1}


def arrange_parallel_wavenet(tmp_path: Path, monkeypatch) -> dict:
    """A one-step teacher run; a small untrained digit classifier instead of genlab's cached one
    (training that takes minutes)."""
    classifier = AudioClassifier(AudioClassifierConfig(channels=4)).eval()
    monkeypatch.setattr(audio, "digit_classifier", lambda: classifier)
    teacher = tmp_path / "teacher"
    train_one_step("wavenet", "fsdd", WaveNetConfig(**TINY_WAVENET), teacher)
    return {"teacher": str(teacher)}


def arrange_mdnrnn(tmp_path: Path, monkeypatch) -> dict:
    """Four short random CarRacing-shaped episodes on disk and a one-step V on them."""
    root = tmp_path / "data" / "carracing"
    root.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(4):
        save_episode(Episode(rng.integers(0, 256, (7, 64, 64, 3), dtype=np.uint8),
                             rng.uniform(-1, 1, (6, 3)).astype(np.float32),
                             rng.normal(size=6).astype(np.float32), np.zeros(6, bool)),
                     episode_path(root, i))  # fmt: skip
    monkeypatch.setenv("GENLAB_DATA", str(tmp_path / "data"))
    vae = tmp_path / "vae"
    v_options = MODELS["vae"].options(image_size=64, image_channels=3, latent_dim=4)
    train_one_step("vae", "carracing", v_options, vae)
    return {"vae": str(vae), "latent_dim": 4, "seq_len": 4}


def arrange_spiral(tmp_path: Path, monkeypatch) -> dict:
    """Two-stroke paintings with the NumPy renderer (no libmypaint needed)."""
    monkeypatch.setattr(paint_tasks, "DEFAULT", PaintConfig(renderer="numpy", episode_length=2))
    return {}


ARRANGE = {"parallel_wavenet": arrange_parallel_wavenet, "mdnrnn": arrange_mdnrnn,
           "spiral": arrange_spiral}  # fmt: skip


def train_one_step(name: str, data: str, options, run_dir: Path, steps: int = 1):
    entry = MODELS[name]
    batch = 4 if name not in ("wgan", "wgan_gp") else 10  # GANs slice batches for the critic
    # float32, so the contract reads the same on every CPU (`auto` depends on it); bfloat16 has
    # its own tests (tests/train/test_precision.py)
    cfg = TrainConfig(**{**entry.train_defaults, "steps": steps, "batch_size": batch,
                         "log_every": 1, "checkpoint_every": steps, "threads": 1,
                         "precision": "fp32"})  # fmt: skip
    spec = training.RunSpec(entry=entry, data=data, options=options, train=cfg, run_dir=run_dir)
    return training.train(spec, progress=False)


def finite_numbers(value) -> list[float]:
    """Every number in a (nested) evaluation result."""
    if isinstance(value, dict):
        return [x for v in value.values() for x in finite_numbers(v)]
    if isinstance(value, list | tuple):
        return [x for v in value for x in finite_numbers(v)]
    return [float(value)] if isinstance(value, int | float) and not isinstance(value, bool) else []


@pytest.mark.parametrize("name", list(MODELS))
def test_every_model_trains_saves_loads_evaluates_and_samples(
    name, data_root, tmp_path, monkeypatch
):
    entry = MODELS[name]
    given = {**SMALL.get(name, {}), **ARRANGE.get(name, lambda *_: {})(tmp_path, monkeypatch)}
    options = entry.options(**given)
    data = entry.datasets[0]
    run_dir = tmp_path / "run"

    result = train_one_step(name, data, options, run_dir)
    assert result.status == "done" and result.step == 1
    (row,) = read_metrics(run_dir)
    assert row["step"] == 1 and all(math.isfinite(v) for k, v in row.items() if k != "step")

    saved_options, model, config = training.load(entry, run_dir)
    assert saved_options == options and config["model"] == name and config["step"] == 1
    saved = checkpoint_weights(read_checkpoint(run_dir))
    loaded = model.state_dict()
    assert saved.keys() == loaded.keys()
    assert all(torch.equal(saved[k], loaded[k]) for k in saved), "weights changed on reload"

    dataset = entry.load_data(data, None, saved_options)
    with torch.no_grad():
        metrics = entry.evaluate(model, saved_options, dataset, **EVAL)
    assert metrics and all(math.isfinite(x) for x in finite_numbers(metrics)), metrics

    if entry.can_sample:
        x = model.sample(3, generator=torch.Generator().manual_seed(0))
        assert x.shape[0] == 3 and x.min() >= 0 and x.max() <= 1
    if entry.sample is not None:
        out = tmp_path / SAMPLE_FILE.get(entry.sample, "samples")  # others write a folder
        with torch.no_grad():
            written = Path(entry.sample(model, saved_options, 2, out, 0))
        assert written.is_file() and written.stat().st_size > 0


@pytest.mark.parametrize("name", list(MODELS))
def test_every_model_repeats_under_its_seed_and_learns_in_every_weight(
    name, data_root, tmp_path, monkeypatch
):
    """Two runs of two steps with the same seed log the same figures, and every trainable
    weight has moved from its seeded initialisation (two steps, so weights behind a
    zero-initialised output layer get their gradient too)."""
    entry = MODELS[name]
    options = entry.options(
        **{**SMALL.get(name, {}), **ARRANGE.get(name, lambda *_: {})(tmp_path, monkeypatch)}
    )
    runs = [tmp_path / "a", tmp_path / "b"]
    for run in runs:
        train_one_step(name, entry.datasets[0], options, run, steps=2)
    assert read_metrics(runs[0]) == read_metrics(runs[1])
    torch.manual_seed(0)  # as training seeds the build (TrainConfig.seed 0)
    initial = entry.build(options)
    trained = read_checkpoint(runs[0])["model"]
    frozen = [n for n, p in initial.named_parameters() if p.requires_grad
              and torch.equal(p.detach(), trained[n])]  # fmt: skip
    assert not frozen, f"weights no step changed: {frozen}"


def test_every_entry_is_keyword_built_and_names_itself():
    for name, entry in MODELS.items():
        assert entry.name == name and entry.summary and entry.datasets
        assert dataclasses.is_dataclass(entry.options)
        assert not set(entry.train_defaults) - {f.name for f in dataclasses.fields(TrainConfig)}
