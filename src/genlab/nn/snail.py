"""SNAIL's building blocks (Mishra et al. 2018, "A Simple Neural Attentive Meta-Learner"):
temporal convolutions and causal soft attention over a sequence, each adding its output to its
input as new channels, so later blocks read everything earlier ones computed.

Sequences are (B, T, C) throughout: batch, time, channels. Every block is causal: the output
at step t depends on steps <= t only.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def causal_mask(steps: int) -> torch.Tensor:
    """(T, T) bool, True where query step i may read key step j (j <= i)."""
    return torch.ones(steps, steps, dtype=torch.bool).tril()


def causal_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """q, k (B, T, K), v (B, T, V) -> (B, T, V): step i reads sum_j p_ij v_j with
    p_i = softmax over the keys j <= i of q_i . k_j / sqrt(K)."""
    logits = q @ k.transpose(1, 2) / math.sqrt(q.shape[-1])  # (B, T queries, T keys)
    logits = logits.masked_fill(~causal_mask(q.shape[1]).to(q.device), float("-inf"))
    return logits.softmax(dim=-1) @ v  # softmax over the keys (last axis)


class CausalConv(nn.Module):
    """A kernel-2 convolution over time with `dilation`: out_t reads x_t and x_{t-dilation}
    (zeros before the start). (B, T, C) -> (B, T, out)."""

    def __init__(self, channels: int, out: int, dilation: int):
        super().__init__()
        self.dilation = dilation
        self.conv = nn.Conv1d(channels, out, kernel_size=2, dilation=dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.pad(x.transpose(1, 2), (self.dilation, 0))  # (B, C, dilation + T), padded before
        return self.conv(x).transpose(1, 2)


class DenseBlock(nn.Module):
    """x (B, T, C) -> cat(x, tanh(f) * sigmoid(g)) (B, T, C + filters), f and g one dilated
    causal convolution's two halves."""

    def __init__(self, channels: int, dilation: int, filters: int):
        super().__init__()
        self.conv = CausalConv(channels, 2 * filters, dilation)
        self.out_channels = channels + filters

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f, g = self.conv(x).chunk(2, dim=-1)
        return torch.cat([x, torch.tanh(f) * torch.sigmoid(g)], dim=-1)


class TCBlock(nn.Module):
    """Dense blocks with dilations 2, 4, ..., 2^ceil(log2 T): the last step's receptive field
    covers a sequence of `steps` steps. (B, T, C) -> (B, T, C + filters * ceil(log2 T))."""

    def __init__(self, channels: int, steps: int, filters: int):
        super().__init__()
        blocks = []
        for i in range(1, max(1, math.ceil(math.log2(steps))) + 1):
            blocks.append(DenseBlock(channels, 2**i, filters))
            channels = blocks[-1].out_channels
        self.blocks = nn.Sequential(*blocks)
        self.out_channels = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(x)


class AttentionBlock(nn.Module):
    """Causal key-value attention: x (B, T, C) -> cat(x, causal_attention(xWq, xWk, xWv))
    (B, T, C + value_size)."""

    def __init__(self, channels: int, key_size: int, value_size: int):
        super().__init__()
        self.query = nn.Linear(channels, key_size)
        self.key = nn.Linear(channels, key_size)
        self.value = nn.Linear(channels, value_size)
        self.out_channels = channels + value_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        read = causal_attention(self.query(x), self.key(x), self.value(x))
        return torch.cat([x, read], dim=-1)
