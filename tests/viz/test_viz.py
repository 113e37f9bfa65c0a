"""Pictures: learning curves draw lines where the data says, in the series' colours; labelled
rows put each row's images where they belong."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from genlab.viz.curves import save_curves
from genlab.viz.images import PALETTE, save_labelled_rows


def test_learning_curves_draw_each_series_in_its_colour(tmp_path):
    path = save_curves(
        {"rising": ([0, 1, 2], [0.0, 5.0, 10.0]), "flat": ([0, 2], [2.0, 2.0])},
        tmp_path / "c.png", "frames", "return", hlines={"bar": 8.0},
    )  # fmt: skip
    img = Image.open(path).convert("RGB")
    assert img.size == (800, 500)
    colours = {img.getpixel((x, y)) for x in range(70, 610) for y in range(36, 450)}
    assert PALETTE[0] in colours and PALETTE[1] in colours
    # the rising line starts at the bottom-left corner of the plot area and ends top-right
    assert img.getpixel((71, 449)) == PALETTE[0] or img.getpixel((72, 448)) == PALETTE[0]
    with pytest.raises(ValueError, match="no points"):
        save_curves({}, tmp_path / "empty.png", "x", "y")


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
