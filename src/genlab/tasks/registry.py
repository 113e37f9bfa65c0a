"""The models the CLI knows, by their stable lower-case names: an explicit table, no magic.

Each family module defines its entries (`ENTRIES`) beside the code that ties those models to
their data; this table lists them in the order `genlab train --help` shows.
"""

from __future__ import annotations

from genlab.errors import GenlabError
from genlab.tasks import (
    architecture,
    audio,
    augmentation,
    images,
    impala,
    learned_optimizers,
    meta,
    neural_bo,
    programs,
    representation,
    rl2,
    world_models,
)
from genlab.tasks.entry import ModelEntry

MODELS: dict[str, ModelEntry] = {
    e.name: e
    for e in (
        *images.ENTRIES,  # vae ae classifier dcgan wgan wgan_gp pixelcnn gated_pixelcnn ...
        *augmentation.ENTRIES,  # wrn
        *architecture.ENTRIES,  # enas
        *representation.ENTRIES,  # cpc rotnet
        *audio.ENTRIES,  # audio_classifier wavenet parallel_wavenet linear_ar
        *world_models.ENTRIES,  # mdnrnn
        *meta.ENTRIES,  # maml fomaml reptile
        *learned_optimizers.ENTRIES,  # l2l_optimizer
        *neural_bo.ENTRIES,  # neural_bo
        *rl2.ENTRIES,  # rl2 rl2_mdp harlow
        *programs.ENTRIES,  # npi
        *impala.ENTRIES,  # impala a2c spiral
    )
}


# (model, data) pairs that another entry trains: the speech CPC has its own network and options,
# but `genlab train cpc --data fsdd` is how the CPC paper's users would ask for it
BY_DATA = {("cpc", "fsdd"): "cpc_audio"}


def model_for(name: str, data: str | None) -> str:
    """The entry that trains model `name` on `data` (usually `name` itself)."""
    return BY_DATA.get((name, data), name)


def get_model(name: str) -> ModelEntry:
    if name in MODELS:
        return MODELS[name]
    raise GenlabError(f"unknown model '{name}'; available: {', '.join(MODELS)}")
