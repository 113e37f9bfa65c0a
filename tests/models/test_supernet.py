"""The shared-weights network of architecture search: strings parse as documented, and a child
is exactly its subgraph, written out here with functional calls on the shared weights."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from genlab.errors import ConfigError
from genlab.models.supernet import OPS, SearchSpace, SuperNet


def test_an_architecture_string_has_an_op_and_i_skip_bits_per_cell():
    space = SearchSpace(cells=3)
    assert space.decision_sizes == [4, 4, 2, 4, 2, 2]
    parsed = space.parse([0, 3, 1, 2, 0, 1])
    assert parsed == [("conv3", ()), ("avgpool3", (0,)), ("maxpool3", (1,))]
    assert space.describe([0, 3, 1, 2, 0, 1]) == "conv3 | avgpool3 +stem | maxpool3 +c0"


BAD = [([0, 1, 0], "has 6 decisions, got 3"), ([0, 4, 0, 0, 0, 0], "decision 1 must be in 0..3"),
       ([0, 0, 2, 0, 0, 0], "decision 2 must be in 0..1")]  # fmt: skip


@pytest.mark.parametrize(("arch", "message"), BAD)
def test_a_bad_architecture_is_one_line_naming_the_decision(arch, message):
    with pytest.raises(ConfigError, match=message):
        SearchSpace(cells=3).parse(arch)


def naive_child(net: SuperNet, x: torch.Tensor, arch: list[int]) -> torch.Tensor:
    """The paper's child network written out: every output kept, inputs summed by the skip bits
    read straight from the string, operations as functional calls on the shared weights."""

    def bn(t):
        mean = t.mean(dim=(0, 2, 3), keepdim=True)
        var = t.var(dim=(0, 2, 3), unbiased=False, keepdim=True)
        return (t - mean) / torch.sqrt(var + 1e-5)

    outs = [bn(F.conv2d(x, net.stem.weight, stride=2, padding=1))]
    k = 0
    for i in range(net.space.cells):
        op = OPS[arch[k]]
        inp = outs[i].clone()
        for j in range(i):
            if arch[k + 1 + j] == 1:
                inp = inp + outs[j]
        k += 1 + i
        if op == "maxpool3":
            out = F.max_pool2d(inp, 3, 1, 1)
        elif op == "avgpool3":
            ones = torch.ones_like(inp[:1, :1])
            out = F.avg_pool2d(inp, 3, 1, 1, divisor_override=1) / F.avg_pool2d(
                ones, 3, 1, 1, divisor_override=1
            )
        else:
            w = net.cells[i].convs[op].weight
            out = bn(F.conv2d(F.relu(inp), w, padding=w.shape[-1] // 2))
        outs.append(out)
    return outs[-1].mean(dim=(2, 3)) @ net.head.weight.T + net.head.bias


def test_a_child_is_its_subgraph_of_the_shared_weights():
    torch.manual_seed(0)
    space = SearchSpace(cells=4, channels=8)
    net = SuperNet(space)
    x = torch.randn(6, 1, 28, 28)
    g = torch.Generator().manual_seed(1)
    for _ in range(8):
        arch = [int(torch.randint(k, (), generator=g)) for k in space.decision_sizes]
        torch.testing.assert_close(net(x, arch), naive_child(net, x, arch), atol=1e-5, rtol=1e-5)


def test_only_the_chosen_operations_weights_learn():
    torch.manual_seed(0)
    space = SearchSpace(cells=3, channels=4)
    net = SuperNet(space)
    arch = [1, 2, 1, 0, 0, 1]  # conv5 | maxpool3 +stem | conv3 +c0
    F.cross_entropy(net(torch.randn(5, 1, 28, 28), arch), torch.arange(5)).backward()
    touched = {name for name, p in net.named_parameters() if p.grad is not None and p.grad.any()}
    assert touched == {"stem.weight", "cells.0.convs.conv5.weight", "cells.2.convs.conv3.weight",
                       "head.weight", "head.bias"}  # fmt: skip
