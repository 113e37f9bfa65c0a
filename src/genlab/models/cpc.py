"""Contrastive predictive coding on images (van den Oord et al. 2018, section 3.3; Hénaff et al.
2019) and rotation prediction (Gidaris et al. 2018), sharing one patch encoder.

CPC: each image is cut into overlapping patches on an R x S grid; a small ResNet encodes every
patch to a code z[r, s]; a context network that sees only rows <= r (causal convolutions down the
grid) gives c[r, s]; for k = 1..K rows ahead, a linear map W_k c[r, s] must pick the true
z[r + k, s] out of every patch code in the batch (InfoNCE, `genlab.nn.contrastive`).

Rotation prediction: the same encoder over the patches of an image turned by 0, 90, 180 or 270
degrees, the codes averaged, a linear layer names the turn.

The representation a probe reads (`embed`) is the grid-averaged patch code, with CPC's
grid-averaged context beside it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from genlab.errors import ConfigError
from genlab.nn.contrastive import grid_side, image_patches, info_nce_over_offsets
from genlab.train.config import doc


@dataclass(frozen=True)
class PatchConfig:
    """What CPC and rotation prediction share: the patches and their encoder."""

    patch: int = doc("side of a square patch in pixels", default=8)
    stride: int = doc("pixels between patch starts (half a patch: patches overlap)", default=4)
    channels: int = doc("channels of the encoder's first convolution (then twice as many)",
                        default=32)  # fmt: skip
    code_dim: int = doc("size of a patch's code z", default=128)
    image_size: int = doc("side of the square input images", default=28)
    image_channels: int = doc("channels of the input images", default=1)
    augment_shift: int = doc("train on images shifted by up to this many pixels", default=2)
    probe_regions: int = doc("the representation (embed) averages the grid's codes over "
                             "N x N regions, concatenated (1: over the whole image)", default=2)  # fmt: skip

    def __post_init__(self) -> None:
        try:
            grid_side(self.image_size, self.patch, self.stride)
        except ValueError as e:
            raise ConfigError(f"--patch {self.patch} --stride {self.stride}: {e}") from None
        if not 1 <= self.probe_regions <= self.grid:
            raise ConfigError(f"--probe-regions must be between 1 and the grid's {self.grid}, "
                              f"got {self.probe_regions}")  # fmt: skip
        if self.patch < 4:
            raise ConfigError(f"--patch must be >= 4 (the encoder halves it), got {self.patch}")

    @property
    def grid(self) -> int:
        return grid_side(self.image_size, self.patch, self.stride)

    @property
    def representation(self) -> str:
        return "float"


@dataclass(frozen=True)
class CPCConfig(PatchConfig):
    context_dim: int = doc("width of the context network", default=128)
    context_layers: int = doc("causal convolutions of the context network", default=3)
    first_step: int = doc("rows from a context to its nearest target: 2 skips the row whose "
                          "patches overlap the context's own", default=2)  # fmt: skip
    steps_ahead: int = doc("targets per context: rows first_step, ..., first_step + K - 1 "
                           "below it", default=2)  # fmt: skip

    def __post_init__(self) -> None:
        super().__post_init__()
        last = self.first_step + self.steps_ahead - 1
        if self.first_step < 1 or self.steps_ahead < 1 or last >= self.grid:
            raise ConfigError(f"--first-step {self.first_step} --steps-ahead {self.steps_ahead}: "
                              f"the targets must lie 1 to {self.grid - 1} rows below their "
                              f"context (the grid has {self.grid} rows)")  # fmt: skip

    @property
    def offsets(self) -> range:
        """The k of the rows predicted below each context."""
        return range(self.first_step, self.first_step + self.steps_ahead)


@dataclass(frozen=True)
class RotNetConfig(PatchConfig):
    pass


class Residual(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.ReLU(), nn.Conv2d(channels, channels, 3, padding=1),
            nn.ReLU(), nn.Conv2d(channels, channels, 3, padding=1),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class PatchEncoder(nn.Module):
    """(B, C, H, W) images -> (B, D, R, S) patch codes: every patch through one small ResNet
    (a convolution, a strided one halving the patch, a residual block, a linear layer)."""

    def __init__(self, cfg: PatchConfig):
        super().__init__()
        self.cfg = cfg
        c = cfg.channels
        side = (cfg.patch + 1) // 2  # after the stride-2 convolution
        self.net = nn.Sequential(
            nn.Conv2d(cfg.image_channels, c, 3, padding=1), nn.ReLU(),
            nn.Conv2d(c, 2 * c, 3, stride=2, padding=1),
            Residual(2 * c), nn.ReLU(),
            nn.Flatten(), nn.Linear(2 * c * side * side, cfg.code_dim),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, p = x.shape[0], self.cfg.image_channels, self.cfg.patch
        tiles = image_patches(x, p, self.cfg.stride)  # (B, R, S, C, p, p)
        r, s = tiles.shape[1:3]
        z = self.net(tiles.reshape(b * r * s, c, p, p))  # (B R S, D)
        return z.view(b, r, s, -1).permute(0, 3, 1, 2)  # (B, D, R, S)


class DownCausalConv(nn.Module):
    """A convolution over the patch grid whose output at row r sees only rows <= r: a kernel of
    two rows (the row above and this one) by three columns, padded above, never below."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.pad = nn.ZeroPad2d((1, 1, 1, 0))  # left, right, top, bottom
        self.conv = nn.Conv2d(c_in, c_out, (2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.pad(x))


class CPC(nn.Module):
    def __init__(self, cfg: CPCConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = PatchEncoder(cfg)
        d, h = cfg.code_dim, cfg.context_dim
        self.context_in = DownCausalConv(d, h)
        self.context = nn.ModuleList(DownCausalConv(h, h) for _ in range(cfg.context_layers - 1))
        self.predict = nn.ModuleDict({str(k): nn.Conv2d(h, d, 1) for k in cfg.offsets})

    def contexts(self, z: torch.Tensor) -> torch.Tensor:
        """(B, D, R, S) codes -> (B, H, R, S) contexts; c[r] depends on z[rows <= r] only."""
        c = self.context_in(z)
        for layer in self.context:
            c = c + layer(torch.relu(c))
        return c

    def predictions(self, c: torch.Tensor, k: int) -> torch.Tensor:
        """(B, H, R, S) -> (B, D, R - k, S): the predicted codes k rows below each context."""
        return self.predict[str(k)](c[:, :, : c.shape[2] - k])

    def loss(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Mean InfoNCE over the offsets k and every position, candidates = every patch in the batch."""
        z = self.encoder(batch["x"])  # (B, D, R, S)
        c = self.contexts(z)
        b, d, r, s = z.shape
        candidates = z.permute(0, 2, 3, 1).reshape(-1, d)  # (B R S, D), index (b, row, col)
        index = torch.arange(b * r * s, device=z.device).view(b, r, s)
        predicted = {k: (self.predictions(c, k).permute(0, 2, 3, 1).reshape(-1, d),  # (B (R-k) S, D)
                         index[:, k:].reshape(-1)) for k in self.cfg.offsets}  # fmt: skip
        return info_nce_over_offsets(predicted, candidates)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, N N (D + H)): codes and contexts averaged over N x N regions of
        the grid (`probe_regions`), in float32."""
        z = self.encoder(x)
        return torch.cat([pooled(z, self.cfg.probe_regions),
                          pooled(self.contexts(z), self.cfg.probe_regions)], 1)  # fmt: skip


def pooled(grid: torch.Tensor, regions: int) -> torch.Tensor:
    """(B, D, R, S) -> (B, D N N): the mean of each of N x N near-equal regions, in float32."""
    return nn.functional.adaptive_avg_pool2d(grid.float(), regions).flatten(1)


def rotations(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, C, H, W) -> (4B, C, H, W) turned by 0, 90, 180, 270 degrees, and (4B,) the turn."""
    turned = torch.cat([torch.rot90(x, k, (2, 3)) for k in range(4)])
    return turned, torch.arange(4).repeat_interleave(x.shape[0])


class RotNet(nn.Module):
    def __init__(self, cfg: RotNetConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = PatchEncoder(cfg)
        self.head = nn.Linear(cfg.code_dim, 4)

    def loss(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        x, turn = rotations(batch["x"])
        logits = self.head(pooled(self.encoder(x), 1))  # (4B, 4)
        return {"loss": nn.functional.cross_entropy(logits, turn),
                "acc": (logits.argmax(1) == turn).float().mean()}  # fmt: skip

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, N N D): patch codes averaged over N x N regions of the grid
        (`probe_regions`; the rotation head reads N = 1), in float32."""
        return pooled(self.encoder(x), self.cfg.probe_regions)
