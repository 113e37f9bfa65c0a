"""Line charts and scatter plots drawn by matplotlib (axes, ticks, labels and legends as
matplotlib lays them out), written as PNG files or given as SVG text (the studio's plots).

Figures are made with `matplotlib.figure.Figure`, not pyplot: no global state, no display
backend, safe to draw from the studio's worker threads.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from genlab.viz.images import PALETTE

COLOURS = [f"#{r:02x}{g:02x}{b:02x}" for r, g, b in PALETTE]


def curves_figure(
    series: dict[str, tuple[list[float], list[float]]],
    xlabel: str,
    ylabel: str,
    title: str = "",
    hlines: dict[str, float] | None = None,
    size: tuple[float, float] = (8.0, 5.0),
) -> Figure:
    """One line per named series (x ascending) and optional labelled horizontal reference
    lines (a bar to reach); ValueError if there is no point to draw."""
    if not any(len(xs) for xs, _ in series.values()):
        raise ValueError("no points to plot")
    fig = Figure(figsize=size, layout="constrained")
    ax = fig.add_subplot()
    for i, (name, (xs, ys)) in enumerate(series.items()):
        ax.plot(xs, ys, color=COLOURS[i % len(COLOURS)], label=name, lw=1.6,
                marker="o" if len(xs) < 12 else None, ms=3)  # fmt: skip
    for name, y in (hlines or {}).items():
        ax.axhline(y, color="0.55", lw=1, ls="--", label=name)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize="small", frameon=False)
    return fig


def metrics_figure(rows: list[dict], keys: list[str], size=(9.0, 2.6)) -> Figure:
    """Training metrics rows ({"step": ..., key: value}) as one small panel per key, side by
    side, against the step (the studio's live curves)."""
    keys = keys or ["loss"]
    fig = Figure(figsize=(size[0], size[1] * math.ceil(len(keys) / 3)), layout="constrained")
    for i, key in enumerate(keys):
        ax = fig.add_subplot(math.ceil(len(keys) / 3), min(3, len(keys)), i + 1)
        pts = [(r["step"], r[key]) for r in rows if isinstance(r.get(key), int | float)]
        if pts:
            ax.plot(
                *zip(*pts, strict=True),
                color=COLOURS[i % len(COLOURS)],
                lw=1.4,
                marker="o" if len(pts) < 12 else None,
                ms=3,
            )
        ax.set(title=key, xlabel="step")
        ax.grid(alpha=0.3)
    return fig


def scatter_figure(
    points: torch.Tensor, labels: torch.Tensor, names: tuple[str, ...], title: str = ""
) -> Figure:
    """(N, 2) points coloured by integer label, with a legend of the first 30 names."""
    p, y = points.detach().float().cpu().numpy(), labels.cpu().numpy()
    fig = Figure(figsize=(8.0, 6.5), layout="constrained")
    ax = fig.add_subplot()
    for c in sorted(set(y.tolist())):
        mask = y == c
        ax.scatter(p[mask, 0], p[mask, 1], s=4, color=COLOURS[c % len(COLOURS)],
                   label=names[c] if c < 30 else None)  # fmt: skip
    ax.set(title=title)
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize="small", markerscale=3,
              frameon=False)  # fmt: skip
    return fig


def raster_figure(
    colours: np.ndarray, xlabel: str, ylabel: str, title: str = "",
    legend: dict[str, tuple[float, float, float]] | None = None,
) -> Figure:  # fmt: skip
    """(R, C, 3) colours in [0, 1] as a grid of cells (row r at the top), with axes and an
    optional legend of named colours (what each colour means)."""
    rows, cols = colours.shape[:2]
    fig = Figure(
        figsize=(max(6.0, min(12.0, 2.5 + cols * 0.12)), 1.5 + rows * 0.22), layout="constrained"
    )
    ax = fig.add_subplot()
    ax.imshow(colours, aspect="auto", interpolation="nearest",
              extent=(0.5, cols + 0.5, rows + 0.5, 0.5))  # fmt: skip
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    if legend:
        handles = [Patch(color=c, label=name) for name, c in legend.items()]
        ax.legend(handles=handles, loc="center left", bbox_to_anchor=(1.0, 0.5),
                  fontsize="small", frameon=False)  # fmt: skip
    return fig


def stairs_figure(
    panels: dict[str, dict[str, tuple[list[float], list[float]]]], xlabel: str, end: float,
    size: tuple[float, float] = (9.0, 3.0),
) -> Figure:  # fmt: skip
    """Piecewise-constant series (a value holds from its x to the next x, the last to `end`),
    one panel per quantity stacked vertically, one line per name (dashed once the colours run
    out), a shared legend; ValueError if no series has a point."""
    if not any(len(xs) for series in panels.values() for xs, _ in series.values()):
        raise ValueError("no points to plot")
    fig = Figure(figsize=(size[0], size[1] * len(panels)), layout="constrained")
    axes = fig.subplots(len(panels), 1, sharex=True, squeeze=False)[:, 0]
    for ax, (title, series) in zip(axes, panels.items(), strict=True):
        for i, (name, (xs, ys)) in enumerate(series.items()):
            if len(xs):
                ax.stairs(ys, [*xs, end], color=COLOURS[i % len(COLOURS)], label=name, lw=1.6,
                          ls=("-", "--", ":")[i // len(COLOURS) % 3], baseline=None)  # fmt: skip
        ax.set(title=title)
        ax.grid(alpha=0.3)
    axes[-1].set(xlabel=xlabel)
    handles, names = axes[0].get_legend_handles_labels()
    fig.legend(handles, names, loc="outside right center", fontsize="small", frameon=False)
    return fig


def save_figure(fig: Figure, path: Path, dpi: int = 100) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    return path


def png_bytes(fig: Figure, dpi: int = 100) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def svg(fig: Figure) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg")
    return buf.getvalue()


def save_curves(
    series: dict[str, tuple[list[float], list[float]]],
    path: Path,
    xlabel: str,
    ylabel: str,
    title: str = "",
    hlines: dict[str, float] | None = None,
) -> Path:
    """`curves_figure` as an 800x500 PNG; ValueError naming `path` if there is nothing to draw."""
    try:
        fig = curves_figure(series, xlabel, ylabel, title, hlines)
    except ValueError:
        raise ValueError(f"{path}: no points to plot") from None
    return save_figure(fig, path)


def save_scatter(
    points: torch.Tensor, labels: torch.Tensor, names: tuple[str, ...], path: Path, title: str = ""
) -> Path:
    """`scatter_figure` as an 800x650 PNG."""
    return save_figure(scatter_figure(points, labels, names, title), path)
