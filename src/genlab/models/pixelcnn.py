"""PixelCNN and Gated PixelCNN on 28x28 MNIST (van den Oord et al. 2016a, 2016b).

    x (B, 1, 28, 28)  ->  outputs (B, O, 28, 28): output (i, j) is the distribution of pixel
                          (i, j) given the pixels before it in raster order (and the class)

- "pixelcnn": a 7x7 mask-A convolution, residual blocks (1x1, 3x3 mask B, 1x1), a 1x1 head.
- "gated": Gated PixelCNN layers (vertical and horizontal stacks, no blind spot).
Outputs: "bernoulli" on binarized MNIST (nats per image, the standard benchmark), or on 8-bit
MNIST a 256-way "softmax" or a discretized "logistic_mixture" (reported in bits/dim too).

Sampling draws pixels one at a time from inverse-CDF uniforms, three exact ways: `"naive"` runs
the network on the whole image per pixel; `"window"` only on rows i - R .. i (R =
`receptive_rows`), all that output row i depends on; `"cached"` (gated) uses the split of the
Gated PixelCNN: the horizontal stack on row i sees the vertical stack only through rows < i, so
the vertical stack runs once per row, and each pixel costs the horizontal stack on one row.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from genlab.errors import ConfigError
from genlab.nn.likelihoods import (
    bernoulli_log_prob,
    discretized_logistic_mixture_log_prob,
    discretized_logistic_mixture_sample,
    widened,
)
from genlab.nn.masked import GatedLayer, MaskedConv2d, cond_bias
from genlab.train.config import doc

OUTPUTS = ("bernoulli", "softmax", "logistic_mixture")


@dataclass(frozen=True)
class PixelCNNConfig:
    kind: str = doc("'pixelcnn' (masked convs) or 'gated' (Gated PixelCNN)", default="pixelcnn")
    channels: int = doc("feature channels", default=64)
    layers: int = doc("residual blocks (pixelcnn) or gated layers (gated)", default=8)
    kernel: int = doc("kernel size of the gated layers (odd)", default=3)
    output: str = doc(f"pixel distribution: {', '.join(OUTPUTS)}", default="bernoulli")
    mixtures: int = doc("logistic mixture components (output=logistic_mixture)", default=5)
    conditional: bool = doc("condition on the digit class", default=False)
    n_classes: int = doc("number of classes when conditional", default=10)

    def __post_init__(self) -> None:
        if self.kind not in ("pixelcnn", "gated"):
            raise ConfigError(f"kind must be 'pixelcnn' or 'gated', got '{self.kind}'")
        if self.output not in OUTPUTS:
            raise ConfigError(f"output must be one of {OUTPUTS}, got '{self.output}'")
        if self.kernel % 2 == 0:
            raise ConfigError(f"kernel must be odd, got {self.kernel}")

    @property
    def representation(self) -> str:
        return "binary_dynamic" if self.output == "bernoulli" else "uint8"

    @property
    def out_channels(self) -> int:
        return {"bernoulli": 1, "softmax": 256, "logistic_mixture": 3 * self.mixtures}[self.output]

    @property
    def receptive_rows(self) -> int:
        """Rows above a pixel that its output can depend on."""
        if self.kind == "pixelcnn":
            return 3 + self.layers  # 7x7 first layer, then one row per 3x3 block
        return self.layers * (self.kernel // 2) + 1


@dataclass(frozen=True)
class GatedPixelCNNConfig(PixelCNNConfig):
    kind: str = doc("'pixelcnn' (masked convs) or 'gated' (Gated PixelCNN)", default="gated")


def crop(cond: torch.Tensor | None, rows: slice, cols: slice = slice(None)):
    """A conditioning map (B, G, H, W) cut to the pixels being computed; vectors (B, G), which
    are alike at every pixel, and None pass through."""
    return cond[:, :, rows, cols] if cond is not None and cond.dim() == 4 else cond


class PixelCNN(nn.Module):
    """`cond_dim` > 0 adds a conditioning z given to forward: a vector (B, cond_dim) that is
    alike at every pixel, or with `spatial` a map (B, cond_dim, H, W) aligned with the image that
    conditions each pixel on its own column of features (a PixelVAE's latent, decoded). It
    enters the gates and the head like the class embedding."""

    def __init__(self, cfg: PixelCNNConfig, cond_dim: int = 0, spatial: bool = False):
        super().__init__()
        self.cfg = cfg
        c = cfg.channels
        if spatial and cfg.kind != "gated":
            raise ConfigError("a spatial conditioning map needs the Gated PixelCNN")
        self.embed = nn.Embedding(cfg.n_classes, c) if cfg.conditional else None
        self.project = nn.Linear(cond_dim, c) if cond_dim else None
        self.spatial = spatial
        conditioned = cfg.conditional or cond_dim > 0
        if cfg.kind == "pixelcnn":
            self.first = MaskedConv2d(1, 2 * c, 7, "A")
            self.blocks = nn.ModuleList(
                nn.Sequential(
                    nn.ReLU(),
                    nn.Conv2d(2 * c, c, 1),
                    nn.ReLU(),
                    MaskedConv2d(c, c, 3, "B"),
                    nn.ReLU(),
                    nn.Conv2d(c, 2 * c, 1),
                )  # fmt: skip
                for _ in range(cfg.layers)
            )
            head_in = 2 * c
        else:
            cond = c if conditioned else 0
            self.gated = nn.ModuleList(
                GatedLayer(
                    c,
                    cfg.kernel,
                    first=i == 0,
                    in_channels=1 if i == 0 else 0,
                    cond_dim=cond,
                    last=i == cfg.layers - 1,
                )  # fmt: skip
                for i in range(cfg.layers)
            )
            head_in = c
        self.cond_bias = nn.Linear(c, head_in, bias=False) if conditioned else None
        self.head = nn.Sequential(nn.ReLU(), nn.Conv2d(head_in, 2 * c, 1), nn.ReLU(),
                                  nn.Conv2d(2 * c, cfg.out_channels, 1))  # fmt: skip

    def _input(self, x: torch.Tensor) -> torch.Tensor:
        """Pixels as the network sees them: {0, 1} as is; 8-bit scaled to [-1, 1]."""
        x = x.to(self.head[1].weight.dtype)
        return x if self.cfg.output == "bernoulli" else x / 127.5 - 1.0

    def _condition(self, y: torch.Tensor | None, z: torch.Tensor | None) -> torch.Tensor | None:
        """Class labels y (B,) and/or z (B, cond_dim [, H, W]) -> one vector (B, c), a map
        (B, c, H, W) if z is one, or None."""
        cond = None
        if self.embed is not None:
            if y is None:
                raise ConfigError("this PixelCNN is class-conditional: pass the labels y")
            cond = self.embed(y)
        if self.project is not None:
            if z is None:
                raise ConfigError("this PixelCNN is conditioned on z: pass it")
            if self.spatial != (z.dim() == 4):
                wanted = "map (B, G, H, W)" if self.spatial else "vector (B, G)"
                raise ConfigError(f"this PixelCNN is conditioned on a {wanted}; got z of shape "
                                  f"{tuple(z.shape)}")  # fmt: skip
            if self.spatial:  # (B, c, H, W): each pixel its own projection
                z = cond_bias(self.project, z)
                cond = z if cond is None else cond[:, :, None, None] + z
            else:
                cond = self.project(z) if cond is None else cond + self.project(z)
        return cond

    def forward(
        self, x: torch.Tensor, y: torch.Tensor | None = None, z: torch.Tensor | None = None,
        top: int = 0,
    ) -> torch.Tensor:  # fmt: skip
        """x (B, 1, H, W) ({0, 1} floats, or uint8/long codes for 8-bit) -> outputs (B, O, H, W).
        x may be rows top .. top + H - 1 of the image (a spatial z covers all of it)."""
        cond = crop(self._condition(y, z), slice(top, top + x.shape[2]))  # (B, c[, H, W]) or None
        h = self._input(x)
        if self.cfg.kind == "pixelcnn":
            h = self.first(h)
            for block in self.blocks:
                h = h + block(h)
        else:
            v = h
            for layer in self.gated:
                v, h = layer(v, h, cond)
        return self._head(h, cond)

    def _head(self, h: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        if cond is not None:
            h = h + cond_bias(self.cond_bias, cond)
        return self.head(h)

    def log_prob(
        self, x: torch.Tensor, y: torch.Tensor | None = None, z: torch.Tensor | None = None
    ) -> torch.Tensor:
        """log p(x [| y, z]) (B,) in nats, exact; scored in float32 even under bf16 autocast."""
        out = widened(self(x, y, z))
        if self.cfg.output == "bernoulli":
            return bernoulli_log_prob(out, x.float())
        codes = x.long().squeeze(1)  # (B, H, W)
        if self.cfg.output == "softmax":
            return -F.cross_entropy(out, codes, reduction="none").flatten(1).sum(1)
        lp = discretized_logistic_mixture_log_prob(out.permute(0, 2, 3, 1), codes)  # (B, H, W)
        return lp.flatten(1).sum(1)

    def loss(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        nats = -self.log_prob(batch["x"], batch.get("y")).mean()
        dims = math.prod(batch["x"].shape[1:])
        return {"loss": nats / dims, "nll_nats": nats, "bits_per_dim": nats / (dims * math.log(2))}

    # --- sampling -----------------------------------------------------------------------------
    def _draw(self, out: torch.Tensor, u: torch.Tensor, temperature: float) -> torch.Tensor:
        """Outputs (B, O) at one pixel, uniforms u (B, 2) -> pixel values (B,) float."""
        if self.cfg.output == "bernoulli":
            return (u[:, 0] < torch.sigmoid(out[:, 0] / temperature)).float()
        if self.cfg.output == "softmax":
            cdf = torch.softmax(out / temperature, -1).cumsum(-1)
            return torch.searchsorted(cdf, u[:, :1].contiguous()).squeeze(1).clamp(max=255).float()
        return discretized_logistic_mixture_sample(out, u, 256, temperature).float()

    @torch.no_grad()
    def sample_from_uniforms(
        self, u: torch.Tensor, y: torch.Tensor | None = None, temperature: float = 1.0,
        method: str = "auto", z: torch.Tensor | None = None,
    ) -> torch.Tensor:  # fmt: skip
        """Uniforms u (B, H, W, 2) -> images (B, 1, H, W) (values as the output models them).

        "naive" runs the network on the whole image for every pixel; "window" on rows
        i - receptive_rows .. i for the pixels of row i; "cached" (Gated PixelCNN only) runs the
        vertical stack once per row and, per pixel, only the horizontal stack on the current
        row up to that pixel. "auto" is the fastest the model allows. All give the same images
        for the same u."""
        if method == "auto":
            method = "cached" if self.cfg.kind == "gated" else "window"
        if method not in ("window", "naive", "cached"):
            raise ConfigError(
                f"method must be 'auto', 'cached', 'window' or 'naive', got '{method}'"
            )
        if method == "cached":
            if self.cfg.kind != "gated":
                raise ConfigError("cached sampling needs the Gated PixelCNN; use 'window'")
            return self._sample_cached(u, y, temperature, z)
        B, H, W, _ = u.shape
        x = torch.zeros(B, 1, H, W)
        R = self.cfg.receptive_rows
        for i in range(H):
            lo = 0 if method == "naive" else max(0, i - R)
            for j in range(W):
                out = self(x[:, :, lo : i + 1], y, z, top=lo)[:, :, i - lo, j]  # (B, O)
                x[:, 0, i, j] = self._draw(out, u[:, i, j], temperature)
        return x

    def _from_above(self, rows: torch.Tensor, cond: torch.Tensor | None) -> list[torch.Tensor]:
        """Finished rows (B, 1, r, W), the last r rows above the current one (r = 0 on the first
        row) -> what each gated layer's horizontal stack receives from the vertical stack on
        the current row, (B, 2C, 1, W) per layer. Exact when r >= `receptive_rows` or the rows
        start at the top of the image."""
        B, _, r, W = rows.shape
        if r == 0:  # nothing above: the shifted-in zeros
            zeros = torch.zeros(B, 2 * self.cfg.channels, 1, W, dtype=self.head[1].weight.dtype)
            return [layer.v_to_h(zeros) for layer in self.gated]
        v, above = self._input(rows), []
        for layer in self.gated:
            v_pre, v = layer.vertical(v, cond)
            above.append(layer.v_to_h(v_pre[:, :, -1:]))
        return above

    def _sample_cached(self, u, y, temperature, z) -> torch.Tensor:
        B, H, W, _ = u.shape
        cond = self._condition(y, z)  # (B, c[, H, W]) or None
        x = torch.zeros(B, 1, H, W)
        R = self.cfg.receptive_rows
        for i in range(H):
            lo, row = max(0, i - R), slice(i, i + 1)
            above = self._from_above(x[:, :, lo:i], crop(cond, slice(lo, i)))
            for j in range(W):
                h = self._input(x[:, :, row, : j + 1])  # (B, 1, 1, j + 1)
                left = crop(cond, row, slice(None, j + 1))
                for layer, a in zip(self.gated, above, strict=True):
                    h = layer.horizontal(h, a[..., : j + 1], left)
                out = self._head(h[..., j:], crop(cond, row, slice(j, j + 1)))[:, :, 0, 0]
                x[:, 0, i, j] = self._draw(out, u[:, i, j], temperature)
        return x

    def sample(
        self, n: int, *, generator: torch.Generator | None = None, temperature: float = 1.0,
        y: torch.Tensor | None = None,
    ) -> torch.Tensor:  # fmt: skip
        """n images in [0, 1] (B, 1, 28, 28); class-conditional models draw classes 0, 1, ... if
        `y` is not given."""
        if self.cfg.conditional and y is None:
            y = torch.arange(n) % self.cfg.n_classes
        u = torch.rand(n, 28, 28, 2, generator=generator)
        x = self.sample_from_uniforms(u, y, temperature)
        return x if self.cfg.output == "bernoulli" else x / 255.0
