"""SNAIL's blocks: causal attention against a naive loop (softmax over the keys), the dilated
causal convolution against its formula, and no block lets a step read a later one."""

from __future__ import annotations

import math

import pytest
import torch

from genlab.nn.snail import (
    AttentionBlock,
    CausalConv,
    DenseBlock,
    SNAILStack,
    TCBlock,
    causal_attention,
)


def naive_attention(q, k, v):
    out = torch.zeros(q.shape[0], q.shape[1], v.shape[2], dtype=q.dtype)
    for b in range(q.shape[0]):
        for i in range(q.shape[1]):
            scores = [float(q[b, i] @ k[b, j]) / math.sqrt(q.shape[2]) for j in range(i + 1)]
            top = max(scores)
            weights = [math.exp(s - top) for s in scores]
            total = sum(weights)
            for j in range(i + 1):
                out[b, i] += weights[j] / total * v[b, j]
    return out


def test_causal_attention_matches_a_naive_loop_over_earlier_keys():
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 5, d, generator=g, dtype=torch.float64) for d in (3, 3, 4))
    torch.testing.assert_close(causal_attention(q, k, v), naive_attention(q, k, v))


def test_the_first_step_reads_only_itself_and_weights_sum_to_one():
    g = torch.Generator().manual_seed(1)
    q, k, v = (torch.randn(1, 4, 2, generator=g) for _ in range(3))
    out = causal_attention(q, k, v)
    torch.testing.assert_close(out[:, 0], v[:, 0])
    ones = causal_attention(q, k, torch.ones(1, 4, 1))  # a convex combination of ones
    torch.testing.assert_close(ones, torch.ones(1, 4, 1))


def test_causal_conv_reads_the_step_and_the_one_dilation_before():
    torch.manual_seed(0)
    conv = CausalConv(3, 2, dilation=2).double()
    x = torch.randn(1, 6, 3, dtype=torch.float64)
    w, b = conv.conv.weight, conv.conv.bias  # (out, in, 2): tap 0 reads t - d, tap 1 reads t
    expected = torch.stack([
        w[:, :, 1] @ x[0, t] + (w[:, :, 0] @ x[0, t - 2] if t >= 2 else 0) + b for t in range(6)
    ])  # fmt: skip
    torch.testing.assert_close(conv(x)[0], expected)


@pytest.mark.parametrize("block", [
    lambda: DenseBlock(4, 2, 3), lambda: TCBlock(4, 7, 3), lambda: AttentionBlock(4, 5, 6),
])  # fmt: skip
def test_no_step_reads_a_later_one(block):
    torch.manual_seed(0)
    net = block()
    x = torch.randn(2, 7, 4)
    later = x.clone()
    later[:, 4:] += torch.randn(2, 3, 4)
    a, b = net(x), net(later)
    torch.testing.assert_close(a[:, :4], b[:, :4])  # steps 0-3 unchanged
    assert not torch.allclose(a[:, 4], b[:, 4])  # step 4 reads itself
    assert a.shape == (2, 7, net.out_channels) and torch.equal(a[..., :4], x)  # input kept


def test_a_tc_block_sees_the_whole_sequence_from_its_last_step():
    torch.manual_seed(0)
    block = TCBlock(2, 9, 3)  # dilations 2, 4, 8, 16: ceil(log2 9) = 4 dense blocks
    assert block.out_channels == 2 + 4 * 3
    x = torch.randn(1, 9, 2, requires_grad=True)
    block(x)[0, -1].sum().backward()
    assert x.grad[0, 0].abs().sum() > 0  # step 8 reads step 0 (8 = 8 + 0 dilations back)


def test_a_stack_run_step_by_step_gives_the_whole_sequence_outputs():
    torch.manual_seed(0)
    stack = SNAILStack(3, 11, (("tc", 4), ("attention", 5, 6), ("tc", 2), ("attention", 3, 2)))
    x = torch.randn(2, 11, 3, requires_grad=True)
    state: dict = {}
    stepped = torch.stack([stack.step(x[:, t], state) for t in range(11)], 1)
    torch.testing.assert_close(stepped, stack(x))
    assert stepped.shape == (2, 11, stack.out_channels)
    assert not stepped.requires_grad  # acting only: learning reads the whole sequence
    tc, attention = state["blocks"][0], state["blocks"][1]
    assert [len(s["ahead"]) for s in tc["blocks"]] == [2, 4, 8, 11]  # each its last `dilation`
    assert attention["steps"] == 11 and attention["keys"].shape == (2, 16, 5)  # 1, 2, 4, 8, 16


@pytest.mark.parametrize("prefix_steps", [0, 1, 3, 10])  # before, at and past the dilations
def test_branches_after_a_shared_prefix_equal_separate_sequences(prefix_steps):
    torch.manual_seed(0)
    stack = SNAILStack(3, 11, (("tc", 4), ("attention", 5, 6), ("tc", 2), ("attention", 3, 2)))
    stack.double()
    prefix = torch.randn(2, prefix_steps, 3, dtype=torch.float64)
    x = torch.randn(2, 4, 3, dtype=torch.float64)  # 4 alternatives for the next step
    shared, last = stack.branch(prefix, x)
    alone = [stack(torch.cat([prefix, x[:, j : j + 1]], 1)) for j in range(4)]  # (2, S + 1, out)
    torch.testing.assert_close(last, torch.stack([a[:, -1] for a in alone], 1))
    for a in alone:
        torch.testing.assert_close(shared, a[:, :-1])
    assert last.shape == (2, 4, stack.out_channels)


def test_an_unknown_block_is_refused():
    with pytest.raises(ValueError, match="unknown SNAIL block 'lstm'"):
        SNAILStack(3, 4, (("lstm", 4),))
