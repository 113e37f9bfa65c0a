"""A registry entry: everything genlab needs to train, evaluate, sample and picture one model.

Entries are made with keywords only; each hook's signature is a Protocol in
`genlab.interfaces`. The defaults are the plain gradient step on `model.loss(batch)["loss"]`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from genlab.interfaces import (
    Build,
    Evaluate,
    FramesPerStep,
    LoadData,
    MakeBatches,
    MakeState,
    MakeStep,
    OnCheckpoint,
    Pictures,
    Sample,
)
from genlab.train.config import TrainConfig
from genlab.train.loop import StepFn, gradient_step, make_state


def default_step(cfg: TrainConfig) -> StepFn:
    return gradient_step(cfg.grad_clip, cfg.precision, cfg.compile)


@dataclass(frozen=True, kw_only=True)
class ModelEntry:
    name: str  # stable lower-case name: `genlab train NAME`, config.json's "model"
    summary: str  # one line for --help
    options: type  # frozen dataclass of model options; its fields become CLI flags
    build: Build
    datasets: tuple[str, ...]  # the first is the default
    load_data: LoadData
    batches: MakeBatches
    evaluate: Evaluate
    can_sample: bool = False  # `model.sample(n, generator=)` gives images in [0, 1]
    make_state: MakeState = make_state
    make_step: MakeStep = default_step
    # Training options that differ from TrainConfig's defaults for this model (the papers').
    train_defaults: dict = field(default_factory=dict)
    # Pictures after training; None = the image models' samples and latent pictures.
    pictures: Pictures | None = None
    # `genlab sample`; None = a grid of image samples.
    sample: Sample | None = None
    # Drawn after each periodic checkpoint (image samplers: a grid of samples); None = nothing.
    on_checkpoint: OnCheckpoint | None = None
    # Agents: environment frames per training step; None = the model has no frames.
    frames_per_step: FramesPerStep | None = None
    # `--precision bf16` (and `auto`'s choice of it) only where it was checked: a step that runs
    # the forward passes under `autocast`, and losses scored in float32 from the networks'
    # outputs (tests/train/test_precision.py).
    bf16: bool = False
    # `--compile` for a model with its own step: that step reads `cfg.compile` and compiles
    # what pays (the default step compiles `model.loss` itself).
    compiles: bool = False

    @property
    def can_compile(self) -> bool:
        return self.compiles or self.make_step is default_step
