"""RL² on bandits, random tabular MDPs and the Harlow task as an application: episodes are
generated, not loaded; their registry entries."""

from __future__ import annotations

from genlab.errors import ConfigError
from genlab.meta.rl2 import (
    AgentConfig,
    EpisodeBatches,
    HarlowConfig,
    MDPConfig,
    RL2Agent,
    RL2Config,
    action_raster,
    evaluate_bandits,
    evaluate_harlow,
    evaluate_mdps,
)
from genlab.tasks.entry import ModelEntry


def load_data(data: str, data_dir, options: AgentConfig) -> None:
    if data != options.TASK:
        raise ConfigError(f"this model trains on '{options.TASK}' tasks, not '{data}'")
    return None  # episodes are generated, not loaded


def train_batches(options: AgentConfig, data, batch_size: int, seed: int, **_) -> EpisodeBatches:
    return EpisodeBatches(options, batch_size, seed)


ENTRIES = tuple(
    ModelEntry(
        name=name, summary=summary, options=options, build=RL2Agent, datasets=(data,),
        load_data=load_data, batches=train_batches, evaluate=evaluate, pictures=action_raster,
        train_defaults={"batch_size": 256, "lr": 1e-3, "grad_clip": 1.0, "log_every": 20},
    )
    for name, options, summary, data, evaluate in (
        ("rl2", RL2Config, "RL²: a recurrent agent that learns to explore bandits (A2C)",
         "bandits", evaluate_bandits),
        ("rl2_mdp", MDPConfig, "RL² on random tabular MDPs (A2C)", "mdps", evaluate_mdps),
        ("harlow", HarlowConfig, "an LSTM agent that learns to learn Harlow's two-object task "
         "(A2C)", "harlow", evaluate_harlow),
    )
)  # fmt: skip
