"""Agent networks: a torso per observation kind, an optional LSTM core, a value head and
autoregressive action heads. Everything is time-major: observations (T, B, ...) in, (T, B, ...) out.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from genlab.envs.registry import EnvSpec

TORSOS = ("auto", "mlp", "minatar", "nature", "resnet", "paint", "paint_half", "paint_map")
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


class PaintMapTorso(nn.Module):
    """A painter's encoder that keeps a map for the location heads (torso `paint_map`):
    (C, 64, 64) -> area-averaged to the stroke grid (C, G, G) -> 3x3/2 conv -> 3x3 conv -> the
    map (channels, G/2, G/2), one feature vector per 2x2 grid cells; and the map -> 32@3x3/2 ->
    64@3x3/2 -> 256 for the core. A location head reads the map cell by cell (`MapLogits`), so
    "paint where the target has ink the canvas lacks" is a local rule, not one a 256-wide vector
    must carry for every cell. Half the grid's resolution because on a CPU these small convs
    are bound by memory traffic, which falls 4x (measured: 0.23 s for one 16->16 3x3 conv
    forward and backward on 640 32x32 frames, one thread). Tensors are channels-last: 1.8x
    faster for that conv, 3.9x for a 1x1 conv to one channel."""

    def __init__(self, obs_shape: tuple[int, ...], grid: int, channels: int = 16):
        super().__init__()
        c, size = obs_shape[0], obs_shape[-1]
        if size % grid or grid % 8:
            raise ValueError(f"a paint_map torso needs the grid ({grid}) a multiple of 8 that "
                             f"divides the canvas ({size})")  # fmt: skip
        self.grid, self.channels = grid, channels
        self.pool = nn.AvgPool2d(size // grid) if size > grid else nn.Identity()
        self.map = nn.Sequential(
            nn.Conv2d(c, channels, 3, 2, 1), nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(),
        )  # fmt: skip
        self.down = nn.Sequential(
            nn.Conv2d(channels, 32, 3, 2, 1), nn.ReLU(), nn.Conv2d(32, 64, 3, 2, 1), nn.ReLU(),
            nn.Flatten(),
        )  # fmt: skip
        self.vector = nn.Sequential(nn.Linear(64 * (grid // 8) ** 2, 256), nn.ReLU())
        self.width = 256
        self.to(memory_format=torch.channels_last)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (N, C, canvas, canvas) -> vector (N, 256), map (N, channels, G/2, G/2)."""
        fmap = self.map(self.pool(x).contiguous(memory_format=torch.channels_last))
        return self.vector(self.down(fmap).contiguous()), fmap


class MapLogits(nn.Module):
    """A location read off the torso's map (torso `paint_map`): each map cell gives the logits
    of its 2x2 grid cells from its map vector, shifted by the same FiLM-like bias from the core's
    features and the earlier heads' choices, next to planes marking the cells earlier location
    heads chose: x (N, F), map (N, M, G/2, G/2), planes (N, P, G, G) or None -> (N, G^2)."""

    def __init__(self, features: int, channels: int, planes: int):
        super().__init__()
        self.bias = nn.Linear(features, channels)
        self.out = nn.Sequential(
            nn.Conv2d(channels + 4 * planes, channels, 3, padding=1), nn.ReLU(),
            nn.Conv2d(channels, 4, 1), nn.PixelShuffle(2), nn.Flatten(),
        )  # fmt: skip
        self.to(memory_format=torch.channels_last)

    def forward(
        self, x: torch.Tensor, fmap: torch.Tensor, planes: torch.Tensor | None
    ) -> torch.Tensor:
        h = F.relu(fmap + self.bias(x)[:, :, None, None])
        if planes is not None:
            h = torch.cat([h, F.pixel_unshuffle(planes, 2)], 1)
        return self.out(h.contiguous(memory_format=torch.channels_last))


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
    if kind == "paint_map":
        torso = PaintMapTorso(spec.obs_shape, grid_size(spec))
        return torso, torso.width
    if kind == "paint_half":
        return paint_torso(spec.obs_shape, pool=2)
    if kind == "auto":
        if len(spec.obs_shape) == 1:
            kind = "mlp"
        else:
            kind = "minatar" if spec.obs_shape[1:] == (10, 10) else "nature"
    return {"mlp": mlp_torso, "minatar": minatar_torso, "nature": nature_torso,
            "resnet": resnet_torso, "paint": paint_torso}[kind](spec.obs_shape)  # fmt: skip


def grid_size(spec: EnvSpec) -> int:
    """The side of a painting task's stroke grid (its location heads choose one of grid^2)."""
    return math.isqrt(spec.action_sizes[spec.action_names.index("end")])


class ActionHeads(nn.Module):
    """A joint distribution over H discrete choices, sampled one after another: head i sees the
    features and the one-hot choices of heads 0..i-1. log p(a) = sum_i log p(a_i | a_<i, h).
    A Discrete action space is the case H = 1. Heads marked `spatial` choose a cell of a square
    grid and decode their logits as an image (`SpatialLogits` with `spatial_channels`), or, with
    `fmap` = (channels, grid), read them off a map the torso made (`MapLogits`): then each h is
    (features + channels * (grid/2)^2,), the vector followed by the flattened map."""

    def __init__(
        self, features: int, sizes: tuple[int, ...], spatial: tuple[bool, ...] = (),
        spatial_channels: int = 32, fmap: tuple[int, int] | None = None,
    ):  # fmt: skip
        super().__init__()
        self.sizes, self.features, self.fmap = sizes, features, fmap
        self.spatial = spatial or (False,) * len(sizes)

        def head(i: int, n: int) -> nn.Module:
            inputs = features + sum(sizes[:i])
            if not self.spatial[i]:
                return nn.Linear(inputs, n)
            if fmap is None:
                return SpatialLogits(inputs, math.isqrt(n), spatial_channels)
            if n != fmap[1] ** 2:
                raise ValueError(f"head {i} chooses among {n} cells, the map has {fmap[1]}^2")
            return MapLogits(inputs, fmap[0], sum(self.spatial[:i]))

        self.layers = nn.ModuleList(head(i, n) for i, n in enumerate(sizes))

    def _split(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """h (N, F[+ map]) -> the vector (N, F) and the map (N, channels, grid/2, grid/2) or
        None."""
        if self.fmap is None:
            return h, None
        channels, grid = self.fmap
        vector, fmap = h.split([self.features, h.shape[1] - self.features], 1)
        return vector, fmap.reshape(-1, channels, grid // 2, grid // 2)

    def _logits(self, vector: torch.Tensor, fmap: torch.Tensor | None, i: int,
                chosen: list[torch.Tensor]) -> torch.Tensor:  # fmt: skip
        previous = [F.one_hot(a, n).to(vector.dtype)
                    for a, n in zip(chosen, self.sizes, strict=False)]  # fmt: skip
        x = torch.cat([vector, *previous], -1) if previous else vector
        if fmap is None or not self.spatial[i]:
            return self.layers[i](x)
        grid = 2 * fmap.shape[-1]
        planes = [p.reshape(-1, 1, grid, grid)
                  for p, s in zip(previous, self.spatial, strict=False) if s]  # fmt: skip
        planes = torch.cat(planes, 1) if planes else None
        return self.layers[i](x, fmap, planes)

    def sample(
        self, h: torch.Tensor, generator: torch.Generator | None = None, greedy: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """h (N, F) -> actions (N, H) long and their joint log-probs (N,)."""
        chosen: list[torch.Tensor] = []
        logp = torch.zeros(h.shape[0])
        vector, fmap = self._split(h)
        for i in range(len(self.sizes)):
            log_probs = F.log_softmax(self._logits(vector, fmap, i, chosen), -1)
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
        vector, fmap = self._split(h)
        for i in range(len(self.sizes)):
            log_probs = F.log_softmax(self._logits(vector, fmap, i, chosen[:i]), -1)
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
        self.width = out = lstm or width
        self.value = nn.Linear(out, 1)
        spatial = tuple(n in SPATIAL_ACTIONS and spec.family == "paint" for n in spec.action_names)
        torso_map = isinstance(self.torso, PaintMapTorso)
        fmap = (self.torso.channels, self.torso.grid) if torso_map else None
        self.heads = ActionHeads(out, spec.action_sizes, spatial, spatial_channels, fmap)

    def initial_state(self, batch: int) -> torch.Tensor:
        return torch.zeros(batch, 2, self.state_size) if self.lstm else torch.zeros(batch, 0)

    def core(
        self, obs: torch.Tensor, first: torch.Tensor, state: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """obs (T, B, ...) as stored (uint8 or float), first (T, B) bool (obs[t] starts an
        episode), state (B, 2, lstm) before obs[0] -> features (T, B, F), state after obs[T-1].
        With a `paint_map` torso each feature vector ends with the flattened map (the location
        heads read it; the core and the value do not)."""
        T, B = first.shape
        x = obs.reshape(T * B, *obs.shape[2:]).float() * self.spec.obs_scale
        h = self.torso(x)
        fmap = None
        if isinstance(h, tuple):
            h, fmap = h
            fmap = fmap.reshape(T, B, -1)
        h = h.reshape(T, B, -1)
        if self.lstm is not None:
            hx, cx = state[:, 0], state[:, 1]
            out = []
            for t in range(T):
                keep = (~first[t]).to(h.dtype)[:, None]
                hx, cx = self.lstm(h[t], (hx * keep, cx * keep))
                out.append(hx)
            h, state = torch.stack(out), torch.stack([hx, cx], 1)
        return (h if fmap is None else torch.cat([h, fmap], -1)), state

    def values(self, features: torch.Tensor) -> torch.Tensor:
        return self.value(features[..., : self.width]).squeeze(-1)
