"""Pictures: plots draw the data they are given, in the series' colours, with labels and
legends; labelled rows put each row's images where they belong."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from genlab.viz.audio import audio_figure
from genlab.viz.curves import (
    COLOURS,
    curves_figure,
    metrics_figure,
    raster_figure,
    save_curves,
    save_scatter,
    scatter_figure,
    stairs_figure,
    svg,
)
from genlab.viz.images import PALETTE, save_labelled_rows


def test_learning_curves_draw_each_series_in_its_colour(tmp_path):
    series = {"rising": ([0, 1, 2], [0.0, 5.0, 10.0]), "flat": ([0, 2], [2.0, 2.0])}
    fig = curves_figure(series, "frames", "return", hlines={"bar": 8.0})
    ax = fig.axes[0]
    lines = {ln.get_label(): ln for ln in ax.get_lines()}
    assert list(lines["rising"].get_ydata()) == [0.0, 5.0, 10.0]
    assert list(lines["bar"].get_ydata()) == [8.0, 8.0]  # a horizontal line at the bar
    assert lines["rising"].get_color() == COLOURS[0] and lines["flat"].get_color() == COLOURS[1]
    assert ax.get_xlabel() == "frames" and ax.get_ylabel() == "return"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["rising", "flat", "bar"]
    path = save_curves(series, tmp_path / "c.png", "frames", "return", hlines={"bar": 8.0})
    img = Image.open(path).convert("RGB")
    assert img.size == (800, 500)
    colours = set(map(tuple, np.asarray(img).reshape(-1, 3).tolist()))
    assert PALETTE[0] in colours and PALETTE[1] in colours
    with pytest.raises(ValueError, match="empty.png: no points"):
        save_curves({}, tmp_path / "empty.png", "x", "y")


def test_stairs_hold_each_value_until_the_next_change_and_the_last_until_the_end():
    panels = {"p": {"a": ([0, 30], [0.0, 0.5]), "b": ([0], [1.0])}, "m": {"a": ([0], [0.2])}}
    fig = stairs_figure(panels, "step", end=100)
    top, bottom = fig.axes[:2]
    a, b = top.patches  # matplotlib draws stairs as StepPatch
    assert list(a.get_data().values) == [0.0, 0.5] and list(a.get_data().edges) == [0, 30, 100]
    assert list(b.get_data().edges) == [0, 100] and a.get_edgecolor() != b.get_edgecolor()
    assert top.get_title() == "p" and bottom.get_xlabel() == "step"
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["a", "b"]
    with pytest.raises(ValueError, match="no points"):
        stairs_figure({"p": {"a": ([], [])}}, "step", end=1)


def test_metrics_panels_plot_each_key_against_the_step():
    rows = [
        {"step": 10, "loss": 3.0, "kl": 1.0},
        {"step": 20, "loss": 2.0},
        {"step": 30, "loss": 1.5, "kl": 0.5},
    ]
    fig = metrics_figure(rows, ["loss", "kl"])
    loss, kl = (ax.get_lines()[0] for ax in fig.axes)
    assert list(loss.get_xdata()) == [10, 20, 30] and list(loss.get_ydata()) == [3.0, 2.0, 1.5]
    assert list(kl.get_xdata()) == [10, 30]  # rows without the key are skipped
    assert svg(fig).lstrip().startswith("<?xml") and "<svg" in svg(fig)


def test_scatter_colours_points_by_label_with_named_legend(tmp_path):
    pts, labels = torch.tensor([[0.0, 0.0], [1.0, 1.0], [2.0, 0.0]]), torch.tensor([0, 1, 1])
    fig = scatter_figure(pts, labels, ("zero", "one"), "title")
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["zero", "one"]
    ones = fig.axes[0].collections[1]
    assert ones.get_offsets().tolist() == [[1.0, 1.0], [2.0, 0.0]]
    assert save_scatter(pts, labels, ("zero", "one"), tmp_path / "s.png").is_file()


def test_labelled_rows_stack_each_row_right_of_its_name(tmp_path):
    black, white = torch.zeros(3, 1, 4, 4), torch.ones(2, 1, 4, 4)
    path = save_labelled_rows({"target": black, "critic": white}, tmp_path / "r.png", scale=1)
    img = Image.open(path).convert("L")
    label_w = 8 + 7 * len("target")
    assert img.size == (label_w + 2 + 3 * 6, 2 * 8)  # 3 images of 4 px after 2 px gaps, 2 rows
    assert img.getpixel((label_w + 2 + 1, 2 + 1)) == 0  # row 1: black images
    assert img.getpixel((label_w + 2 + 1, 8 + 2 + 1)) == 255  # row 2: white ones
    assert np.asarray(img.crop((0, 0, label_w, 8))).min() < 128  # a name is written
    with pytest.raises(ValueError, match="at least one row"):
        save_labelled_rows({}, tmp_path / "none.png")


def test_audio_figure_draws_each_clip_and_its_spectrogram_in_seconds_and_hertz():
    t = torch.arange(8000) / 8000
    tone, short = 0.5 * torch.sin(2 * torch.pi * 1000 * t), torch.zeros(100)
    fig = audio_figure([tone, short], ["tone", "short"])
    (wave_ax, spec_ax), (short_wave, short_spec) = np.array(fig.axes).reshape(2, 2)
    assert wave_ax.get_title() == "tone" and spec_ax.get_ylabel() == "Hz"
    assert np.allclose(wave_ax.get_lines()[0].get_ydata(), tone.numpy())
    spec = spec_ax.get_images()[0]
    assert spec.get_extent() == [0, 1.0, 0, 4000]  # 1 s, up to half of 8 kHz
    rows = np.asarray(spec.get_array()).mean(1)  # energy per frequency bin
    assert abs(rows.argmax() / (len(rows) - 1) * 4000 - 1000) < 40  # the tone's 1 kHz
    assert not short_spec.axison  # 100 samples: no spectrogram


def test_raster_cells_keep_their_colours_and_place():
    colours = np.zeros((2, 3, 3))
    colours[0, 2] = (1.0, 0.0, 0.0)
    fig = raster_figure(colours, "step", "episode", legend={"red": (1.0, 0.0, 0.0)})
    ax = fig.axes[0]
    image = ax.get_images()[0]
    assert np.array_equal(np.asarray(image.get_array()), colours)
    assert image.get_extent() == [0.5, 3.5, 2.5, 0.5]  # episode 1 at the top, steps from 1
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["red"]


def test_an_architecture_diagram_has_a_box_per_cell_and_an_arc_per_skip():
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    from genlab.viz.architectures import OP_COLOURS, architectures_figure

    rows = {"a": [("conv3", ()), ("maxpool3", (0,)), ("conv5", (0, 1))],
            "b": [("avgpool3", ())]}  # fmt: skip
    ax = architectures_figure(rows).axes[0]
    boxes = [p for p in ax.patches if isinstance(p, FancyBboxPatch)]
    arrows = [p for p in ax.patches if isinstance(p, FancyArrowPatch)]
    assert len(boxes) == (3 + 2) + (1 + 2)  # cells, stem and head per row
    assert len(arrows) == (4 + 3) + 2  # the chain's arrows and row a's three skips
    texts = [t.get_text() for t in ax.texts]
    assert texts.count("stem") == 2 and "maxpool3" in texts and "a" in texts
    colours = {tuple(round(c, 3) for c in b.get_facecolor()[:3]) for b in boxes}
    assert len(colours) == 5  # four operations and the grey of stem and head
    assert set(OP_COLOURS) == {"conv3", "conv5", "maxpool3", "avgpool3"}
    with pytest.raises(ValueError, match="no architecture"):
        architectures_figure({})
