"""SNAIL's building blocks (Mishra et al. 2018, "A Simple Neural Attentive Meta-Learner"):
temporal convolutions and causal soft attention over a sequence, each adding its output to its
input as new channels, so later blocks read everything earlier ones computed.

Sequences are (B, T, C) throughout: batch, time, channels. Every block is causal: the output
at step t depends on steps <= t only. So a block can also run one step at a time (`step`),
keeping what later steps read in a cache (a dense block: its last `dilation` inputs; attention:
every key and value so far), and gives the same outputs as over the whole sequence: an agent
acts step by step, and learns from the whole episode at once. And `branch` places each of M
alternative steps right after one shared prefix (a few-shot task's support set, then one query)
at the cost of S + M steps instead of the M (S + 1) of M separate sequences.
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

    def step(self, x: torch.Tensor, past: list[torch.Tensor]) -> torch.Tensor:
        """x (B, C) at step t; `past` holds the inputs of steps t - dilation .. t - 1 (fewer
        at the start) and is updated -> (B, C + filters)."""
        d = self.conv.dilation
        back = past[0] if len(past) == d else torch.zeros_like(x)  # x_{t-d}, or the padding
        past.append(x)
        del past[:-d]
        return self.at(back, x)

    def branch(self, prefix: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """prefix (B, S, C), x (B, M, C): M alternatives for step S -> (the prefix's outputs
        (B, S, C + filters), each alternative's (B, M, C + filters))."""
        d, s = self.conv.dilation, prefix.shape[1]
        back = prefix[:, s - d] if s >= d else x.new_zeros(x.shape[0], x.shape[2])  # (B, C)
        shared = self(prefix) if s else prefix.new_zeros(len(prefix), 0, self.out_channels)
        return shared, self.at(back[:, None], x)

    def at(self, back: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """The block's output at one step from its input there, x (..., C), and `dilation`
        steps before, back (broadcasting against x) -> (..., C + filters)."""
        w, b = self.conv.conv.weight, self.conv.conv.bias  # w (2F, C, 2): tap 0 reads back
        f, g = (back @ w[:, :, 0].T + x @ w[:, :, 1].T + b).chunk(2, dim=-1)
        return torch.cat([x, torch.tanh(f) * torch.sigmoid(g)], dim=-1)


class Chain(nn.Module):
    """Blocks applied in turn, over a whole sequence or one step at a time (each block keeping
    its own cache)."""

    def __init__(self, blocks: list[nn.Module]):
        super().__init__()
        self.blocks = nn.Sequential(*blocks)
        self.out_channels = blocks[-1].out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(x)

    def step(self, x: torch.Tensor, cache: list) -> torch.Tensor:
        """x (B, C) at step t -> (B, out_channels); `cache` starts as [] and is updated."""
        if not cache:
            cache.extend([] for _ in self.blocks)
        for block, state in zip(self.blocks, cache, strict=True):
            x = block.step(x, state)
        return x

    def branch(self, prefix: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """prefix (B, S, C) shared by M alternatives x (B, M, C) for step S -> (the prefix's
        outputs (B, S, out), alternative j's output (B, M, out) as if it alone followed the
        prefix: the last step of `self(cat(prefix, x[:, j:j+1], 1))`)."""
        for block in self.blocks:
            prefix, x = block.branch(prefix, x)
        return prefix, x


class TCBlock(Chain):
    """Dense blocks with dilations 2, 4, ..., 2^ceil(log2 T): the last step's receptive field
    covers a sequence of `steps` steps. (B, T, C) -> (B, T, C + filters * ceil(log2 T))."""

    def __init__(self, channels: int, steps: int, filters: int):
        blocks = []
        for i in range(1, max(1, math.ceil(math.log2(steps))) + 1):
            blocks.append(DenseBlock(channels, 2**i, filters))
            channels = blocks[-1].out_channels
        super().__init__(blocks)


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

    def step(self, x: torch.Tensor, cache: list) -> torch.Tensor:
        """x (B, C) at step t -> (B, C + value_size), attending to steps 0..t; `cache` holds
        [keys (B, t, K), values (B, t, V)] of the steps before (empty at the start)."""
        k, v = self.key(x)[:, None], self.value(x)[:, None]
        if cache:
            k, v = torch.cat([cache[0], k], 1), torch.cat([cache[1], v], 1)
        cache[:] = [k, v]
        scores = (k @ self.query(x)[:, :, None]).squeeze(2) / math.sqrt(k.shape[-1])  # (B, t+1)
        return torch.cat([x, (scores.softmax(-1)[:, None] @ v).squeeze(1)], dim=-1)

    def branch(self, prefix: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """prefix (B, S, C), x (B, M, C): M alternatives for step S, each reading the prefix's
        keys and its own -> (the prefix's outputs (B, S, C + V), each alternative's (B, M, C + V))."""
        k, v = self.key(prefix), self.value(prefix)  # (B, S, K), (B, S, V)
        q, own_k, own_v = self.query(x), self.key(x), self.value(x)  # (B, M, K), (B, M, V)
        scores = torch.cat([q @ k.transpose(1, 2), (q * own_k).sum(-1, keepdim=True)], dim=-1)
        p = (scores / math.sqrt(k.shape[-1])).softmax(-1)  # (B, M, S + 1), over the keys
        read = p[..., :-1] @ v + p[..., -1:] * own_v  # (B, M, V)
        shared = torch.cat([prefix, causal_attention(self.query(prefix), k, v)], dim=-1)
        return shared, torch.cat([x, read], dim=-1)


class SNAILStack(Chain):
    """Attention and TC blocks in the order `plan` gives: ("attention", key_size, value_size)
    or ("tc", filters), for sequences of up to `steps` steps. (B, T, C) -> (B, T, out_channels),
    or one step at a time with `step`."""

    def __init__(self, channels: int, steps: int, plan: tuple[tuple, ...]):
        blocks: list[nn.Module] = []
        for kind, *sizes in plan:
            if kind == "attention":
                blocks.append(AttentionBlock(channels, *sizes))
            elif kind == "tc":
                blocks.append(TCBlock(channels, steps, *sizes))
            else:
                raise ValueError(f"unknown SNAIL block '{kind}'")
            channels = blocks[-1].out_channels
        super().__init__(blocks)
