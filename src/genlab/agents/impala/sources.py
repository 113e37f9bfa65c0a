"""The trajectory source for a config's backend: `inline` and `local` (`backends.py`), or
`ray` (`ray_backend.py`, only imported when asked for: Ray is the optional distributed extra)."""

from __future__ import annotations

from genlab.agents.impala.backends import InlineSource, LocalSource
from genlab.agents.impala.config import ImpalaConfig
from genlab.agents.impala.networks import AgentNet
from genlab.train import cluster


def make_source(net: AgentNet, cfg: ImpalaConfig, channels: int | None, batch_size: int,
                seed: int):  # fmt: skip
    """The BatchSource of `cfg.backend`, feeding `net`'s learner batches of `batch_size`."""
    if cfg.backend == "ray":
        cluster.ray_module()  # without Ray: one line saying how to install it
        # Here, not at the top: the module imports Ray, which is optional.
        from genlab.agents.impala.ray_backend import RaySource

        return RaySource(net, cfg, channels, batch_size, seed)
    cls = InlineSource if cfg.backend == "inline" else LocalSource
    return cls(net, cfg, channels, batch_size, seed)
