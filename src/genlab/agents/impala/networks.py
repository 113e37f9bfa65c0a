"""Agent networks: a torso per observation kind, an optional LSTM core, a value head and
autoregressive action heads. Everything is time-major: observations (T, B, ...) in, (T, B, ...) out.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from genlab.envs.registry import EnvSpec

TORSOS = ("auto", "mlp", "minatar", "nature", "resnet", "paint", "paint_half")
SPATIAL_ACTIONS = ("end", "control")  # painting: grid cells, decoded as an image of logits


def mlp_torso(obs_shape: tuple[int, ...], width: int = 64) -> tuple[nn.Module, int]:
    """Vector observations (classic control)."""
    d = math.prod(obs_shape)
    net = nn.Sequential(
        nn.Flatten(), nn.Linear(d, width), nn.Tanh(), nn.Linear(width, width), nn.Tanh()
    )
    return net, width


def minatar_torso(obs_shape: tuple[int, ...]) -> tuple[nn.Module, int]:
    """Young & Tian (2019): one 3x3 conv of 16 channels, then 128 units. (C, 10, 10) -> 128."""
    c, h, w = obs_shape
    net = nn.Sequential(
        nn.Conv2d(c, 16, 3, padding=0), nn.ReLU(), nn.Flatten(),
        nn.Linear(16 * (h - 2) * (w - 2), 128), nn.ReLU(),
    )  # fmt: skip
    return net, 128


def nature_torso(obs_shape: tuple[int, ...]) -> tuple[nn.Module, int]:
    """Mnih et al. (2015): (4, 84, 84) -> 32@8x8/4 -> 64@4x4/2 -> 64@3x3/1 -> 512."""
    c = obs_shape[0]
    net = nn.Sequential(
        nn.Conv2d(c, 32, 8, 4), nn.ReLU(), nn.Conv2d(32, 64, 4, 2), nn.ReLU(),
        nn.Conv2d(64, 64, 3, 1), nn.ReLU(), nn.Flatten(),
    )  # fmt: skip
    with torch.no_grad():
        n = net(torch.zeros(1, *obs_shape)).shape[1]
    return nn.Sequential(net, nn.Linear(n, 512), nn.ReLU()), 512


class _Residual(nn.Module):
    def __init__(self, ch: int):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(ch, ch, 3, padding=1), nn.Conv2d(ch, ch, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.relu(self.conv1(F.relu(x))))


def resnet_torso(obs_shape: tuple[int, ...]) -> tuple[nn.Module, int]:
    """IMPALA's "deep" network: three sections (16, 32, 32 channels), each a 3x3 conv, a 3x3
    max-pool of stride 2 and two residual blocks; then ReLU and 256 units."""
    layers: list[nn.Module] = []
    c = obs_shape[0]
    for ch in (16, 32, 32):
        layers += [nn.Conv2d(c, ch, 3, padding=1), nn.MaxPool2d(3, 2, padding=1)]
        layers += [_Residual(ch), _Residual(ch)]
        c = ch
    net = nn.Sequential(*layers, nn.ReLU(), nn.Flatten())
    with torch.no_grad():
        n = net(torch.zeros(1, *obs_shape)).shape[1]
    return nn.Sequential(net, nn.Linear(n, 256), nn.ReLU()), 256


def paint_torso(obs_shape: tuple[int, ...], pool: int = 1) -> tuple[nn.Module, int]:
    """SPIRAL's canvas encoder, smaller: (C, 64, 64) -> 32@5x5/2 -> 32@3x3/2 -> 64@3x3/2 -> 256.
    With `pool` 2 (torso `paint_half`) the canvas is first area-averaged to (C, 32, 32), the
    resolution of the stroke grid (rewards judge 28x28): the encoder costs 7x less to train."""
    c = obs_shape[0]
    net = nn.Sequential(
        *([nn.AvgPool2d(pool)] if pool > 1 else []),
        nn.Conv2d(c, 32, 5, 2, 2), nn.ReLU(), nn.Conv2d(32, 32, 3, 2, 1), nn.ReLU(),
        nn.Conv2d(32, 64, 3, 2, 1), nn.ReLU(), nn.Flatten(),
    )  # fmt: skip
    with torch.no_grad():
        n = net(torch.zeros(1, *obs_shape)).shape[1]
    return nn.Sequential(net, nn.Linear(n, 256), nn.ReLU()), 256


class SpatialLogits(nn.Module):
    """A location on a grid x grid board as an image of logits (SPIRAL's spatial decoding):
    (N, F) -> linear -> (channels, 4, 4) -> transposed convs doubling to (1, grid, grid) ->
    (N, grid^2). Nearby cells share evidence, which a flat linear layer over grid^2 outputs
    would not. The cost grows as channels^2 (32: two heads cost about half a painter's step)."""

    def __init__(self, features: int, grid: int, channels: int = 32):
        super().__init__()
        doublings = int(math.log2(grid // 4))
        if grid < 8 or 4 * 2**doublings != grid:
            raise ValueError(f"a spatial head needs a grid of 4 * 2^k >= 8 cells, got {grid}")
        layers: list[nn.Module] = [
            nn.Linear(features, channels * 16),
            nn.ReLU(),
            nn.Unflatten(1, (channels, 4, 4)),
        ]
        for i in range(doublings):
            last = i == doublings - 1
            layers.append(nn.ConvTranspose2d(channels, 1 if last else channels, 4, 2, 1))
            if not last:
                layers.append(nn.ReLU())
        self.net = nn.Sequential(*layers, nn.Flatten())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def make_torso(kind: str, spec: EnvSpec) -> tuple[nn.Module, int]:
    if kind == "auto" and spec.family == "paint":
        kind = "paint"
    if kind == "paint_half":
        return paint_torso(spec.obs_shape, pool=2)
    if kind == "auto":
        if len(spec.obs_shape) == 1:
            kind = "mlp"
        else:
            kind = "minatar" if spec.obs_shape[1:] == (10, 10) else "nature"
    return {"mlp": mlp_torso, "minatar": minatar_torso, "nature": nature_torso,
            "resnet": resnet_torso, "paint": paint_torso}[kind](spec.obs_shape)  # fmt: skip


class ActionHeads(nn.Module):
    """A joint distribution over H discrete choices, sampled one after another: head i sees the
    features and the one-hot choices of heads 0..i-1. log p(a) = sum_i log p(a_i | a_<i, h).
    A Discrete action space is the case H = 1. Heads marked `spatial` choose a cell of a square
    grid and decode their logits as an image (`SpatialLogits` with `spatial_channels`)."""

    def __init__(
        self, features: int, sizes: tuple[int, ...], spatial: tuple[bool, ...] = (),
        spatial_channels: int = 32,
    ):  # fmt: skip
        super().__init__()
        self.sizes = sizes
        spatial = spatial or (False,) * len(sizes)
        self.layers = nn.ModuleList(
            SpatialLogits(features + sum(sizes[:i]), math.isqrt(n), spatial_channels) if spatial[i]
            else nn.Linear(features + sum(sizes[:i]), n)
            for i, n in enumerate(sizes)
        )  # fmt: skip

    def _logits(self, h: torch.Tensor, i: int, chosen: list[torch.Tensor]) -> torch.Tensor:
        previous = [F.one_hot(a, n).to(h.dtype) for a, n in zip(chosen, self.sizes, strict=False)]
        return self.layers[i](torch.cat([h, *previous], -1) if previous else h)

    def sample(
        self, h: torch.Tensor, generator: torch.Generator | None = None, greedy: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """h (N, F) -> actions (N, H) long and their joint log-probs (N,)."""
        chosen: list[torch.Tensor] = []
        logp = torch.zeros(h.shape[0])
        for i in range(len(self.sizes)):
            log_probs = F.log_softmax(self._logits(h, i, chosen), -1)
            if greedy:
                a = log_probs.argmax(-1)
            else:
                a = torch.multinomial(log_probs.exp(), 1, generator=generator).squeeze(1)
            logp = logp + log_probs.gather(1, a[:, None]).squeeze(1)
            chosen.append(a)
        return torch.stack(chosen, 1), logp

    def evaluate(self, h: torch.Tensor, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """h (N, F), actions (N, H) -> log-probs (N,) and entropies (N,) (the sum of each head's
        entropy given the earlier heads' actual choices)."""
        logp = torch.zeros(h.shape[0])
        entropy = torch.zeros(h.shape[0])
        chosen = list(actions.unbind(1))
        for i in range(len(self.sizes)):
            log_probs = F.log_softmax(self._logits(h, i, chosen[:i]), -1)
            logp = logp + log_probs.gather(1, chosen[i][:, None]).squeeze(1)
            entropy = entropy - (log_probs.exp() * log_probs).sum(-1)
        return logp, entropy


class AgentNet(nn.Module):
    """torso -> [LSTM] -> (value, action heads). The core state is one tensor (B, 2, lstm) (or
    (B, 0) without an LSTM) so trajectories can store it; it is zeroed where an episode starts."""

    def __init__(
        self, spec: EnvSpec, torso: str = "auto", lstm: int = 0, spatial_channels: int = 32
    ):
        super().__init__()
        self.spec = spec
        self.torso, width = make_torso(torso, spec)
        self.lstm = nn.LSTMCell(width, lstm) if lstm else None
        self.state_size = lstm
        out = lstm or width
        self.value = nn.Linear(out, 1)
        spatial = tuple(n in SPATIAL_ACTIONS and spec.family == "paint" for n in spec.action_names)
        self.heads = ActionHeads(out, spec.action_sizes, spatial, spatial_channels)

    def initial_state(self, batch: int) -> torch.Tensor:
        return torch.zeros(batch, 2, self.state_size) if self.lstm else torch.zeros(batch, 0)

    def core(
        self, obs: torch.Tensor, first: torch.Tensor, state: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """obs (T, B, ...) as stored (uint8 or float), first (T, B) bool (obs[t] starts an
        episode), state (B, 2, lstm) before obs[0] -> features (T, B, F), state after obs[T-1]."""
        T, B = first.shape
        x = obs.reshape(T * B, *obs.shape[2:]).float() * self.spec.obs_scale
        h = self.torso(x).reshape(T, B, -1)
        if self.lstm is None:
            return h, state
        hx, cx = state[:, 0], state[:, 1]
        out = []
        for t in range(T):
            keep = (~first[t]).to(h.dtype)[:, None]
            hx, cx = self.lstm(h[t], (hx * keep, cx * keep))
            out.append(hx)
        return torch.stack(out), torch.stack([hx, cx], 1)

    def values(self, features: torch.Tensor) -> torch.Tensor:
        return self.value(features).squeeze(-1)
