"""Switching a module's mode for a block of code, and re-estimating its batch-norm statistics."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from copy import deepcopy as copy_module

import torch


@contextlib.contextmanager
def eval_mode(model: torch.nn.Module):
    """Eval mode (batch-norm statistics untouched) for the block, then the model's mode as it was."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


@torch.no_grad()
def recalibrate_batch_norm(
    model: torch.nn.Module, batches: Iterable[torch.Tensor]
) -> torch.nn.Module:
    """A copy of `model`, in eval mode, whose batch norms' running mean and variance are
    re-estimated on `batches`: each is fed with the norms in train mode, and the statistics are
    the plain average over the batches rather than training's exponential one. `model` itself
    is untouched. For a model trained on augmented images and scored on plain ones: the
    statistics then describe what it will see."""
    copy = copy_module(model)
    norms = [m for m in copy.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # cumulative average
    copy.eval()
    for norm in norms:  # only the norms in train mode: dropout stays off
        norm.train()
    for x in batches:
        copy(x)
    return copy.eval()
