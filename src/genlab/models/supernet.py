"""The network that architecture search searches (Zoph & Le 2017's space, scaled down) and the
shared weights that make ENAS fast (Pham et al. 2018): "a master architecture that has everything
in it".

An architecture is a string of integers ("architectures are strings"). The network is a stem
(3x3 convolution, stride 2: `channels` maps of 14x14), then `cells` cells, then global average
pooling and a linear layer. Cell i (from 0) applies one operation to the previous output plus any
earlier outputs it chooses:

    arch = [op_0,  op_1, s_1_0,  op_2, s_2_0, s_2_1,  ...]     (cell i: its op, then i skip bits)
    o_0 = stem(x);   o_{i+1} = OPS[op_i](o_i + sum_{j < i, s_i_j = 1} o_j);   logits = W mean(o_last)

`SuperNet` holds every operation of every cell (`cells[i]`); `forward(x, arch)` runs only the
architecture's subgraph, so all architectures it runs share, and train, one set of weights. A
search from scratch (NAS) trains a fresh SuperNet on one architecture: the same code and space.
Batch norm keeps no running statistics (each architecture would need its own): it always
normalises with the batch's, so evaluate in batches of a few hundred.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from genlab.errors import ConfigError
from genlab.train.config import doc

OPS = ("conv3", "conv5", "maxpool3", "avgpool3")


@dataclass(frozen=True)
class SearchSpace:
    cells: int = doc("cells after the stem, each choosing an operation and its skips", default=4)
    channels: int = doc("channels of the stem and every cell", default=32)
    n_classes: int = doc("number of classes", default=10)

    def __post_init__(self) -> None:
        if self.cells < 1 or self.channels < 1:
            raise ConfigError(f"cells and channels must be >= 1, got {self.cells}, {self.channels}")

    @property
    def decision_sizes(self) -> list[int]:
        """Options of each decision in the string: per cell i, len(OPS), then i binary skips."""
        return [k for i in range(self.cells) for k in (len(OPS), *[2] * i)]

    def parse(self, arch) -> list[tuple[str, tuple[int, ...]]]:
        """Per cell: its operation and the skip inputs it reads (indices into [stem, cell 0,
        ...]); ConfigError naming the position of a value out of range."""
        arch = [int(a) for a in arch]
        sizes = self.decision_sizes
        if len(arch) != len(sizes):
            raise ConfigError(f"an architecture of {self.cells} cells has {len(sizes)} "
                              f"decisions, got {len(arch)}")  # fmt: skip
        for k, (a, size) in enumerate(zip(arch, sizes, strict=True)):
            if not 0 <= a < size:
                raise ConfigError(f"architecture decision {k} must be in 0..{size - 1}, got {a}")
        parsed, k = [], 0
        for i in range(self.cells):
            skips = tuple(j for j in range(i) if arch[k + 1 + j])
            parsed.append((OPS[arch[k]], skips))
            k += 1 + i
        return parsed

    def describe(self, arch) -> str:
        """The architecture as people read it: 'conv3 | conv5 | maxpool3 +stem | ...'."""
        names = ["stem", *[f"c{i}" for i in range(self.cells)]]
        return " | ".join(op + "".join(f" +{names[j]}" for j in skips)
                          for op, skips in self.parse(arch))  # fmt: skip


class Cell(nn.Module):
    """The operations one cell may choose (`ops`), with weights of their own. Convolutions are
    ENAS's ReLU, conv, batch norm (no affine); pools keep the size (3x3, stride 1)."""

    def __init__(self, channels: int, ops: tuple[str, ...] = OPS):
        super().__init__()
        self.convs = nn.ModuleDict({op: nn.Conv2d(channels, channels, int(op[-1]),
                                                  padding=int(op[-1]) // 2, bias=False)
                                    for op in ops if op.startswith("conv")})  # fmt: skip

    def forward(self, x: torch.Tensor, op: str) -> torch.Tensor:  # (B, C, H, W) -> same
        if op == "maxpool3":
            return F.max_pool2d(x, 3, 1, 1)
        if op == "avgpool3":
            return F.avg_pool2d(x, 3, 1, 1, count_include_pad=False)
        return batch_norm(self.convs[op](F.relu(x)))


def batch_norm(x: torch.Tensor) -> torch.Tensor:
    """Normalised by the batch's statistics, always (no running statistics, no affine)."""
    return F.batch_norm(x, None, None, training=True)


class SuperNet(nn.Module):
    """Every architecture of `space` on shared weights; given `arch`, only that one (a child
    trained alone, as NAS trains each, with no weights it does not use)."""

    def __init__(self, space: SearchSpace, arch=None):
        super().__init__()
        self.space = space
        self.stem = nn.Conv2d(1, space.channels, 3, stride=2, padding=1, bias=False)
        ops = [(op,) for op, _ in space.parse(arch)] if arch is not None else [OPS] * space.cells
        self.cells = nn.ModuleList(Cell(space.channels, o) for o in ops)
        self.head = nn.Linear(space.channels, space.n_classes)

    def forward(self, x: torch.Tensor, arch) -> torch.Tensor:  # (B, 1, 28, 28) -> (B, classes)
        outs = [batch_norm(self.stem(x))]  # (B, C, 14, 14)
        for cell, (op, skips) in zip(self.cells, self.space.parse(arch), strict=True):
            inp = outs[-1] + sum(outs[j] for j in skips)  # (B, C, 14, 14)
            outs.append(cell(inp, op))
        return self.head(outs[-1].mean(dim=(2, 3)))
