"""SNAIL's building blocks (Mishra et al. 2018, "A Simple Neural Attentive Meta-Learner"):
temporal convolutions and causal soft attention over a sequence, each adding its output to its
input as new channels, so later blocks read everything earlier ones computed.

Sequences are (B, T, C) throughout: batch, time, channels. Every block is causal: the output
at step t depends on steps <= t only. So a block can also run one step at a time (`step`,
without gradients), keeping what later steps read in a state of its own (a dense block: what
each of its last `dilation` inputs adds to the step `dilation` after it; attention: every key
and value so far, in buffers that double when full, so a step costs O(t), not a copy of the
whole cache), and gives the same outputs as over the whole sequence: an agent acts step by
step, and learns from the whole episode at once. And `branch` places each of M
alternative steps right after one shared prefix (a few-shot task's support set, then one query)
at the cost of S + M steps instead of the M (S + 1) of M separate sequences.
"""

from __future__ import annotations

import math
from collections import deque

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
    (zeros before the start). (B, T, C) -> (B, T, out). Computed as one matrix product with both
    taps, x_t's tap-0 part then moved `dilation` steps later: no copy of the input, no
    transposes (a quarter faster than `conv1d` here, with its backward). The weights are an
    `nn.Conv1d`'s."""

    def __init__(self, channels: int, out: int, dilation: int):
        super().__init__()
        self.dilation = dilation
        self.conv = nn.Conv1d(channels, out, kernel_size=2, dilation=dilation)

    def taps(self) -> torch.Tensor:
        """(2 out, C): the weights that read x_t, then those that read x_{t-dilation}."""
        w = self.conv.weight  # (out, C, 2): tap 1 reads x_t, tap 0 x_{t-dilation}
        return torch.cat([w[:, :, 1], w[:, :, 0]])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        now, later = F.linear(x, self.taps()).chunk(2, dim=-1)  # (B, T, out): x_t's at t, t + d
        return now + self.conv.bias + F.pad(later, (0, 0, self.dilation, 0))[:, : x.shape[1]]


class DenseBlock(nn.Module):
    """x (B, T, C) -> cat(x, tanh(f) * sigmoid(g)) (B, T, C + filters), f and g one dilated
    causal convolution's two halves."""

    def __init__(self, channels: int, dilation: int, filters: int):
        super().__init__()
        self.conv = CausalConv(channels, 2 * filters, dilation)
        self.out_channels = channels + filters

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return gated(x, self.conv(x))

    def step(self, x: torch.Tensor, state: dict) -> torch.Tensor:
        """x (B, C) at step t -> (B, C + filters). `state` starts empty; it keeps the two taps
        side by side and, for the last `dilation` steps, what each input adds to the step
        `dilation` after it (none before the start: the padding adds nothing)."""
        if not state:
            state.update(taps=self.conv.taps(), ahead=deque())
        now, later = F.linear(x, state["taps"]).chunk(2, dim=-1)  # (B, 2F): x_t's at t, t + d
        pre = now + self.conv.conv.bias
        if len(state["ahead"]) == self.conv.dilation:
            pre = pre + state["ahead"].popleft()  # x_{t-d}'s part
        state["ahead"].append(later)
        return gated(x, pre)

    def branch(self, prefix: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """prefix (B, S, C), x (B, M, C): M alternatives for step S -> (the prefix's outputs
        (B, S, C + filters), each alternative's (B, M, C + filters))."""
        d, s = self.conv.dilation, prefix.shape[1]
        w, b = self.conv.conv.weight, self.conv.conv.bias  # w (2F, C, 2): tap 0 reads back
        pre = x @ w[:, :, 1].T + b  # (B, M, 2F)
        if s >= d:  # before that, step S reads the padding
            pre = pre + (prefix[:, s - d] @ w[:, :, 0].T)[:, None]
        shared = self(prefix) if s else prefix.new_zeros(len(prefix), 0, self.out_channels)
        return shared, gated(x, pre)


def gated(x: torch.Tensor, pre: torch.Tensor) -> torch.Tensor:
    """A dense block's output from its input x (..., C) and its convolution's output there,
    pre (..., 2F): cat(x, tanh(f) * sigmoid(g)) (..., C + F), f and g pre's two halves."""
    f, g = pre.chunk(2, dim=-1)
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

    @torch.no_grad()
    def step(self, x: torch.Tensor, state: dict) -> torch.Tensor:
        """x (B, C) at step t -> (B, out_channels), without gradients (for acting; learn from
        `forward` over the whole sequence, which gives the same outputs). `state` starts empty
        and is updated: one state per block, in `state["blocks"]`."""
        states = state.setdefault("blocks", [{} for _ in self.blocks])
        for block, own in zip(self.blocks, states, strict=True):
            x = block.step(x, own)
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

    def step(self, x: torch.Tensor, state: dict) -> torch.Tensor:
        """x (B, C) at step t -> (B, C + value_size), attending to steps 0..t. `state` starts
        empty; it keeps the keys (B, capacity, K) and values (B, capacity, V) of the steps so
        far, the first `steps` rows filled."""
        t = state.get("steps", 0)
        for name, row in (("keys", self.key(x)), ("values", self.value(x))):
            if t == 0 or t == state[name].shape[1]:  # none yet, or full: double the capacity
                grown = row.new_empty(len(row), max(1, 2 * t), row.shape[1])
                if t:
                    grown[:, :t] = state[name]
                state[name] = grown
            state[name][:, t] = row
        state["steps"] = t + 1
        k, v = state["keys"][:, : t + 1], state["values"][:, : t + 1]  # (B, t+1, K), (B, t+1, V)
        scores = self.query(x)[:, None] @ k.transpose(1, 2) / math.sqrt(k.shape[-1])  # (B, 1, t+1)
        return torch.cat([x, (scores.softmax(-1) @ v).squeeze(1)], dim=-1)

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
