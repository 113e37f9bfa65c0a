"""Causal 1-D convolutions for autoregressive audio models (WaveNet and its flow students).

A causal convolution's output at time t sees inputs at t, t - d, ..., t - (k - 1) d only: the input
is zero-padded on the left by (k - 1) d. Each layer also has `step`, the same computation for one
time step from explicitly passed past inputs, which is what cached ("fast") generation runs.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from genlab.nn.gates import gated_activation


def receptive_field(dilations: Sequence[int], kernel: int = 2, input_kernel: int = 2) -> int:
    """Inputs that one output of an input conv (dilation 1) followed by kernel-`kernel` layers
    with `dilations` sees: (input_kernel - 1) + (kernel - 1) * sum(dilations) + 1."""
    return (input_kernel - 1) + (kernel - 1) * sum(dilations) + 1


class CausalConv1d(nn.Conv1d):
    """(B, C_in, T) -> (B, C_out, T); output t depends on inputs t - (k-1)d .. t only."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int = 2, dilation: int = 1):
        super().__init__(in_channels, out_channels, kernel, dilation=dilation)
        self.left = (kernel - 1) * dilation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.pad(x, (self.left, 0)))

    def step(self, taps: list[torch.Tensor]) -> torch.Tensor:
        """One output from the k inputs it sees, oldest first: taps[j] (B, C_in) is the input at
        t - (k - 1 - j) d. Returns (B, C_out)."""
        out = self.bias
        for j, x in enumerate(taps):
            out = out + x @ self.weight[:, :, j].T
        return out.expand(taps[0].shape[0], -1)


class GatedResidualBlock(nn.Module):
    """WaveNet's layer: z = causal_conv_d(h) + V g; a = tanh(z_f) * sigmoid(z_g);
    h' = h + W_res a, skip = W_skip a. `g` is optional conditioning: a global vector (B, G), or
    one per time step (B, G, T).

    Shapes: h (B, C, T), g (B, G) or (B, G, T) -> h' (B, C, T), skip (B, S, T).
    """

    def __init__(self, channels: int, gate: int, skip: int, dilation: int, cond_dim: int = 0):
        super().__init__()
        self.channels, self.gate, self.dilation = channels, gate, dilation
        self.conv = CausalConv1d(channels, 2 * gate, 2, dilation)
        self.cond = nn.Linear(cond_dim, 2 * gate, bias=False) if cond_dim else None
        self.out = nn.Conv1d(gate, channels + skip, 1)  # residual and skip in one matmul

    def cond_bias(self, g: torch.Tensor | None) -> torch.Tensor | None:
        """(B, G) -> (B, 2 gate), the conditioning term added at every time step; per-step
        conditioning (B, G, T) -> (B, 2 gate, T)."""
        if self.cond is None:
            return None
        if g is None:
            raise ValueError("this block is conditional: pass the conditioning vector g (B, G)")
        if g.dim() == 3:
            return self.cond(g.transpose(1, 2)).transpose(1, 2)
        return self.cond(g)

    def forward(
        self, h: torch.Tensor, g: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.conv(h)  # (B, 2 gate, T)
        bias = self.cond_bias(g)
        if bias is not None:
            z = z + (bias if bias.dim() == 3 else bias[:, :, None])
        a = gated_activation(z, self.gate)
        out = self.out(a)  # (B, C + S, T)
        return h + out[:, : self.channels], out[:, self.channels :]

    def step(
        self, past: torch.Tensor, now: torch.Tensor, bias: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One time step: past = h at t - dilation (B, C), now = h at t (B, C), bias from
        `cond_bias` -> h' (B, C), skip (B, S) at t."""
        z = self.conv.step([past, now])  # (B, 2 gate)
        if bias is not None:
            z = z + bias
        a = gated_activation(z, self.gate)
        out = F.linear(a, self.out.weight[:, :, 0], self.out.bias)  # (B, C + S)
        return now + out[:, : self.channels], out[:, self.channels :]
