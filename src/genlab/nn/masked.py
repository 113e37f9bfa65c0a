"""Masked and shifted convolutions for autoregressive image models, raster order (row by row,
left to right; within a pixel, data channel 0 first).

- `MaskedConv2d` (PixelCNN, van den Oord et al. 2016a): the kernel is zeroed below and to the
  right of its centre. Mask "A" (first layer) also hides the centre pixel's own channel and the
  later ones; mask "B" shows the centre up to the same channel group. Stacked, these leave a
  blind spot above and to the right.
- `GatedLayer` (Gated PixelCNN, van den Oord et al. 2016b): a vertical stack that sees whole rows
  above and a horizontal stack that sees the current row to the left, combined so that there is
  no blind spot; tanh x sigmoid gates with an optional conditioning bias.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from genlab.nn.gates import gated_activation


def raster_mask(
    out_channels: int, in_channels: int, kernel: int, kind: str, groups: int = 1
) -> torch.Tensor:
    """(out, in, k, k) 0/1 mask. Channels are split into `groups` data channels in order (out
    group g covers out channels [g * out/groups, ...)); at the centre, out group g sees in groups
    < g (mask A) or <= g (mask B)."""
    if kind not in ("A", "B"):
        raise ValueError(f"mask kind must be 'A' or 'B', got '{kind}'")
    m = torch.ones(out_channels, in_channels, kernel, kernel)
    c = kernel // 2
    m[:, :, c, c + 1 :] = 0  # right of the centre
    m[:, :, c + 1 :] = 0  # rows below
    out_group = torch.arange(out_channels) * groups // out_channels  # (out,)
    in_group = torch.arange(in_channels) * groups // in_channels  # (in,)
    visible = in_group[None, :] < out_group[:, None] if kind == "A" else (
        in_group[None, :] <= out_group[:, None]
    )  # fmt: skip
    m[:, :, c, c] = visible.float()
    return m


class MaskedConv2d(nn.Conv2d):
    """A same-size convolution whose kernel is multiplied by `raster_mask` on every call."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, kind: str,
                 groups: int = 1):  # fmt: skip
        super().__init__(in_channels, out_channels, kernel, padding=kernel // 2)
        self.register_buffer("mask", raster_mask(out_channels, in_channels, kernel, kind, groups))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.mask, self.bias, padding=self.padding)


def shift_down(x: torch.Tensor) -> torch.Tensor:
    """Row i takes row i - 1 (zeros enter at the top): (B, C, H, W) -> same."""
    return F.pad(x, (0, 0, 1, 0))[:, :, :-1]


def shift_right(x: torch.Tensor) -> torch.Tensor:
    """Column j takes column j - 1 (zeros enter at the left)."""
    return F.pad(x, (1, 0))[:, :, :, :-1]


def cond_bias(linear: nn.Linear, cond: torch.Tensor) -> torch.Tensor:
    """A conditioning vector (B, G) or map (B, G, H, W) -> the bias it adds through `linear`'s
    weights, (B, O, 1, 1) for every pixel alike or (B, O, H, W) pixel by pixel."""
    if cond.dim() == 2:
        return linear(cond)[:, :, None, None]
    return linear(cond.movedim(1, -1)).movedim(-1, 1)


def _gate(x: torch.Tensor, linear: nn.Linear | None, cond: torch.Tensor | None) -> torch.Tensor:
    if linear is not None:
        x = x + cond_bias(linear, cond)
    return gated_activation(x, x.shape[1] // 2)


class GatedLayer(nn.Module):
    """One Gated PixelCNN layer on (vertical, horizontal) feature maps (B, C, H, W) each.

    vertical: a (k//2 + 1) x k convolution whose output row i sees input rows i - k//2 .. i.
    horizontal: a 1 x (k//2 + 1) convolution over columns j - k//2 .. j (j - k//2 - 1 .. j - 1 in
    the first layer, which must not see its own pixel), plus the vertical features shifted down
    one row (rows < i only). The horizontal stack is residual after the first layer.
    `cond` adds a learned bias to every gate: a vector (B, G) alike at every pixel (class
    conditioning), or a map (B, G, H, W) the size of the features given (a PixelVAE's latent,
    decoded). The `last` layer returns no vertical features (None).
    """

    def __init__(self, channels: int, kernel: int, first: bool, in_channels: int = 0,
                 cond_dim: int = 0, last: bool = False):  # fmt: skip
        super().__init__()
        c_in = in_channels or channels
        self.k, self.first, self.last = kernel, first, last
        self.v_conv = nn.Conv2d(c_in, 2 * channels, (kernel // 2 + 1, kernel))
        self.h_conv = nn.Conv2d(c_in, 2 * channels, (1, kernel // 2 + 1))
        self.v_to_h = nn.Conv2d(2 * channels, 2 * channels, 1)
        self.h_out = nn.Conv2d(channels, channels, 1)
        # The last layer's vertical output would feed nothing: it has no vertical gate.
        self.cond_v = (
            nn.Linear(cond_dim, 2 * channels, bias=False) if cond_dim and not last else None
        )
        self.cond_h = nn.Linear(cond_dim, 2 * channels, bias=False) if cond_dim else None

    def vertical(
        self, v: torch.Tensor, cond: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """v (B, C_in, H, W) -> (v_pre (B, 2C, H, W), the ungated features whose row i sees
        input rows i - k//2 .. i; the gated vertical output (B, C, H, W), None in the last layer)."""
        k = self.k
        v_pre = self.v_conv(F.pad(v, (k // 2, k // 2, k // 2, 0)))
        if self.last:
            return v_pre, None
        return v_pre, _gate(v_pre, self.cond_v, cond)

    def horizontal(
        self, h: torch.Tensor, from_above: torch.Tensor, cond: torch.Tensor | None = None
    ) -> torch.Tensor:
        """h (B, C_in, H, W) and `from_above` = v_to_h(v_pre shifted down one row) (B, 2C, H, W)
        -> the new horizontal features (B, C, H, W). Column j sees columns <= j only, so a
        caller may pass the first j + 1 columns alone."""
        k = self.k
        h_src = shift_right(h) if self.first else h
        h_pre = self.h_conv(F.pad(h_src, (k // 2, 0, 0, 0))) + from_above
        h_new = self.h_out(_gate(h_pre, self.cond_h, cond))
        return h_new if self.first else h + h_new

    def forward(
        self, v: torch.Tensor, h: torch.Tensor, cond: torch.Tensor | None = None
    ) -> tuple[torch.Tensor | None, torch.Tensor]:
        v_pre, v_new = self.vertical(v, cond)
        return v_new, self.horizontal(h, self.v_to_h(shift_down(v_pre)), cond)
