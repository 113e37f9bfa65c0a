"""Whether a reconstruction keeps a small object, and the linear probe's R^2, against loops and
numpy written out."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from genlab.metrics import objects


def naive_kept(image: np.ndarray, x: float, y: float, r: int) -> bool:
    cx, cy = int(round(x)), int(round(y))
    return any(
        0 <= cy + dy < image.shape[0] and 0 <= cx + dx < image.shape[1]
        and image[cy + dy, cx + dx] > 0.5
        for dy in range(-r, r + 1) for dx in range(-r, r + 1)
    )  # fmt: skip


def test_kept_matches_a_loop_over_the_window_edges_included():
    g = torch.Generator().manual_seed(0)
    images = (torch.rand(300, 16, 16, generator=g) > 0.97).float()  # a few scattered pixels
    centres = torch.rand(300, 2, generator=g) * 19 - 1.5  # some near or past the edges
    for r in (0, 1, 2):
        got = objects.kept(images, centres, r).tolist()
        want = [
            naive_kept(im.numpy(), *c.tolist(), r) for im, c in zip(images, centres, strict=True)
        ]
        assert got == want
    assert 0.1 < np.mean(want) < 0.9  # both outcomes are exercised


def test_a_ball_three_pixels_away_is_not_kept_at_radius_two():
    image = torch.zeros(1, 10, 10)
    image[0, 5, 8] = 1.0  # x = 8, y = 5
    at = lambda x, y: objects.kept(image, torch.tensor([[x, y]]), 2).item()  # noqa: E731
    assert at(6, 5) and at(6.4, 3.4) and not at(5, 5) and not at(8, 8)


def test_false_alarms_count_only_frames_empty_at_the_mirrored_spot():
    truth = torch.zeros(3, 8, 8)
    truth[1, 6, 6] = 1.0  # frame 1's mirrored spot (6, 6) holds something: not counted
    centres = torch.tensor([[1.0, 1.0]] * 3)  # mirrored to (6, 6)
    recon = torch.zeros(3, 8, 8)
    recon[0, 7, 7] = 1.0  # a spurious pixel within 2 of (6, 6) on frame 0
    recon[1, 6, 6] = 1.0
    assert objects.false_alarms(recon, truth, centres, 2) == (1, 2)
    assert objects.false_alarms(truth, truth, centres, 2) == (0, 2)  # the truth has none


def test_probe_r2_is_one_on_a_linear_target_and_near_zero_on_noise():
    g = torch.Generator().manual_seed(1)
    z = torch.randn(500, 6, generator=g)
    w = torch.randn(6, 2, generator=g)
    assert objects.probe_r2(z, z @ w + 3.0, ridge=0.0) == pytest.approx(1.0, abs=1e-9)
    assert objects.probe_r2(z, torch.randn(500, 2, generator=g)) < 0.05


def test_probe_r2_matches_lstsq_fold_by_fold():
    rng = np.random.default_rng(2)
    z = rng.normal(size=(100, 3))
    t = z @ rng.normal(size=(3, 2)) + rng.normal(size=(100, 2))
    predicted = np.empty_like(t)
    for test in np.array_split(np.arange(100), 4):
        train = np.setdiff1d(np.arange(100), test)
        a = np.c_[z[train], np.ones(len(train))]
        w, *_ = np.linalg.lstsq(a, t[train], rcond=None)
        predicted[test] = np.c_[z[test], np.ones(len(test))] @ w
    want = 1 - ((predicted - t) ** 2).sum() / ((t - t.mean(0)) ** 2).sum()
    got = objects.probe_r2(torch.from_numpy(z), torch.from_numpy(t), folds=4, ridge=0.0)
    assert got == pytest.approx(want, abs=1e-9)
    with pytest.raises(ValueError, match="too few"):
        objects.probe_r2(torch.zeros(5, 2), torch.zeros(5, 2))
