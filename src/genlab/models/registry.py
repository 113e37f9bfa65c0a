"""The models the CLI knows, by their stable lower-case names. An explicit table, no magic."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from genlab.errors import GenlabError
from genlab.models import image_tasks
from genlab.models.classifier import Classifier, ClassifierConfig
from genlab.models.vae import VAE, AutoEncoder, VAEConfig


@dataclass(frozen=True)
class ModelEntry:
    name: str
    summary: str
    options: type  # frozen dataclass of model options; its fields become CLI flags
    build: Callable[[object], nn.Module]
    datasets: tuple[str, ...]  # the first is the default
    evaluate: Callable[..., dict]  # (model, options, splits, k=, n=, seed=) -> metrics
    can_sample: bool


MODELS: dict[str, ModelEntry] = {
    "vae": ModelEntry(
        "vae", "convolutional variational autoencoder", VAEConfig, VAE, ("mnist", "omniglot"),
        image_tasks.evaluate_vae, can_sample=True,
    ),
    "ae": ModelEntry(
        "ae", "convolutional autoencoder (no prior; compare with vae)", VAEConfig, AutoEncoder,
        ("mnist", "omniglot"), image_tasks.evaluate_ae, can_sample=False,
    ),
    "classifier": ModelEntry(
        "classifier", "MNIST digit classifier; its features measure sample quality",
        ClassifierConfig, Classifier, ("mnist",), image_tasks.evaluate_classifier,
        can_sample=False,
    ),
}  # fmt: skip

PLANNED = (
    "pixelcnn", "gated_pixelcnn", "realnvp", "glow", "pixelvae", "dcgan", "wgan",
    "wgan_gp", "wavenet", "parallel_wavenet", "impala", "a2c", "spiral", "maml", "fomaml",
    "reptile", "rl2",
)  # fmt: skip


def get_model(name: str) -> ModelEntry:
    if name in MODELS:
        return MODELS[name]
    if name in PLANNED:
        raise GenlabError(
            f"model '{name}' is planned but not in this version; available: {', '.join(MODELS)}"
        )
    raise GenlabError(f"unknown model '{name}'; available: {', '.join(MODELS)}")
