"""IMPALA, A2C and SPIRAL as applications: agents play environments (named by --env), so their
"data" is no dataset; their batches are trajectories from actors; their registry entries."""

from __future__ import annotations

from genlab.agents.impala.agent import ImpalaAgent
from genlab.agents.impala.config import A2CConfig, ImpalaConfig
from genlab.agents.impala.evaluation import episode_gifs, evaluate_agent, sample_gif
from genlab.agents.impala.sources import make_source
from genlab.agents.spiral import (
    SpiralAgent,
    SpiralConfig,
    evaluate_painter,
    make_spiral_state,
    sample_paintings,
    spiral_step,
)
from genlab.errors import ConfigError
from genlab.tasks.entry import ModelEntry
from genlab.train import distributed as dist
from genlab.train.config import TrainConfig


def load_data(data: str, data_dir, options: ImpalaConfig) -> None:
    if data != "env":
        raise ConfigError(f"agents play environments (--env), not the dataset '{data}'")
    return None


def train_batches(options: ImpalaConfig, data, batch_size: int, seed: int, model: ImpalaAgent):
    if dist.world_size() > 1:
        raise ConfigError("agents scale with --actors, not --nproc")
    return make_source(model.net, options, model.channels, batch_size, seed)


def frames_per_step(options: ImpalaConfig, cfg: TrainConfig) -> int:
    """Environment frames in one learner batch: `batch_size` unrolls of `unroll` steps."""
    return options.unroll * cfg.batch_size


_AGENT = {"lr": 2e-3, "batch_size": 32, "grad_clip": 40.0, "log_every": 20}
ENTRIES = (
    *(
        ModelEntry(
            name=name, summary=summary, options=options, build=ImpalaAgent, datasets=("env",),
            load_data=load_data, batches=train_batches, evaluate=evaluate_agent,
            train_defaults={**_AGENT, "checkpoint_every": 500}, pictures=episode_gifs,
            sample=sample_gif, frames_per_step=frames_per_step, bf16=True,
        )
        for name, options, summary in (
            ("impala", ImpalaConfig, "IMPALA: actor/learner with V-trace (MinAtar, Atari, gym)"),
            ("a2c", A2CConfig, "batched synchronous advantage actor-critic (the on-policy "
             "baseline)"),
        )
    ),
    ModelEntry(
        name="spiral", summary="SPIRAL: an IMPALA painter (libmypaint) rewarded by a WGAN-GP "
        "critic", options=SpiralConfig, build=SpiralAgent, datasets=("env",),
        load_data=load_data, batches=train_batches, evaluate=evaluate_painter,
        make_state=make_spiral_state, make_step=spiral_step, bf16=True,
        train_defaults={**_AGENT, "lr": 6e-4, "checkpoint_every": 200}, pictures=episode_gifs,
        sample=sample_paintings, frames_per_step=frames_per_step,
    ),
)  # fmt: skip
