"""Learning-curve pictures: lines where the data says, in the series' colours."""

from __future__ import annotations

import pytest
from PIL import Image

from genlab.viz.curves import save_curves
from genlab.viz.images import PALETTE


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
