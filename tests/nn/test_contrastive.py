import math

import pytest
import torch

from genlab.nn.contrastive import grid_side, image_patches, info_nce


def test_patches_are_the_slices_a_loop_cuts():
    x = torch.randn(2, 3, 12, 12)
    tiles = image_patches(x, 4, 2)  # (B, R, S, C, 4, 4)
    assert tiles.shape == (2, 5, 5, 3, 4, 4)
    for r in range(5):
        for s in range(5):
            assert torch.equal(tiles[:, r, s], x[:, :, 2 * r : 2 * r + 4, 2 * s : 2 * s + 4])


@pytest.mark.parametrize(("size", "patch", "stride"), [(28, 8, 3), (8, 9, 1), (28, 8, 0)])
def test_patches_that_do_not_tile_are_refused(size, patch, stride):
    with pytest.raises(ValueError, match="do not tile"):
        grid_side(size, patch, stride)


def test_info_nce_equals_the_formula_written_out():
    g = torch.Generator().manual_seed(0)
    pred, cand = torch.randn(5, 3, generator=g), torch.randn(7, 3, generator=g)
    targets = torch.tensor([0, 6, 2, 2, 4])
    loss, right = info_nce(pred, cand, targets)
    for i in range(5):
        scores = [sum(pred[i, d].item() * cand[j, d].item() for d in range(3)) for j in range(7)]
        expected = -scores[targets[i]] + math.log(sum(math.exp(s) for s in scores))
        assert loss[i].item() == pytest.approx(expected, rel=1e-5)
        assert right[i].item() == (max(range(7), key=lambda j: scores[j]) == targets[i])


def test_info_nce_names_mismatched_shapes():
    with pytest.raises(ValueError, match="do not match"):
        info_nce(torch.zeros(4, 3), torch.zeros(6, 2), torch.zeros(4, dtype=torch.long))
