"""Architectures found by a search, drawn as diagrams: one row per architecture, the stem and
then each cell as a box naming its operation, arrows along the chain, and each skip input as an
arc above the boxes from the output it reads (matplotlib lays out the text and arrows)."""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

from genlab.viz.curves import COLOURS

# A cell as `SearchSpace.parse` gives it: its operation and the outputs it adds to its input
# (0 = the stem, j + 1 = cell j).
Cell = tuple[str, tuple[int, ...]]
OP_COLOURS = {"conv3": COLOURS[0], "conv5": COLOURS[1], "maxpool3": COLOURS[2],
              "avgpool3": COLOURS[3]}  # fmt: skip


def architectures_figure(rows: dict[str, list[Cell]]) -> Figure:
    """One row per named architecture; ValueError if there is none."""
    if not rows:
        raise ValueError("no architecture to draw")
    width = max(len(cells) for cells in rows.values()) + 2  # stem, cells, head
    fig = Figure(figsize=(1.6 * width + 3.6, 1.5 * len(rows) + 0.3), layout="constrained")
    ax = fig.add_subplot()
    ax.set_xlim(-4.2, width * 1.6 - 0.8)
    ax.set_ylim(-1.5 * len(rows) + 1.0, 0.9)
    ax.axis("off")
    for r, (name, cells) in enumerate(rows.items()):
        y = -1.5 * r
        ax.text(-4.1, y, name, ha="left", va="center", fontsize=9)
        labels = ["stem", *[op for op, _ in cells], "pool + linear"]
        for i, label in enumerate(labels):
            colour = OP_COLOURS.get(label, "#dddddd")
            ax.add_patch(FancyBboxPatch((1.6 * i - 0.6, y - 0.25), 1.2, 0.5,
                                        boxstyle="round,pad=0.02", fc=colour, ec="black",
                                        alpha=0.85, lw=0.8))  # fmt: skip
            ax.text(1.6 * i, y, label, ha="center", va="center", fontsize=8)
            if i:
                ax.add_patch(FancyArrowPatch((1.6 * i - 1.0, y), (1.6 * i - 0.6, y),
                                             arrowstyle="-|>", mutation_scale=8, lw=0.8))  # fmt: skip
        for i, (_, skips) in enumerate(cells):
            for j in skips:  # output j (box j) is added to cell i's input (box i + 1)
                ax.add_patch(FancyArrowPatch((1.6 * j, y + 0.25), (1.6 * (i + 1) - 0.2, y + 0.25),
                                             connectionstyle="arc3,rad=-0.35", arrowstyle="-|>",
                                             mutation_scale=8, lw=0.8, color="#555555"))  # fmt: skip
    return fig


def save_architectures(rows: dict[str, list[Cell]], path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    architectures_figure(rows).savefig(path, dpi=110)
    return path
