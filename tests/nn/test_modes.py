"""Batch-norm re-estimation against the statistics computed by hand."""

from __future__ import annotations

import torch
from torch import nn

from genlab.nn.modes import recalibrate_batch_norm


def test_re_estimated_statistics_are_the_average_of_each_batchs_and_the_model_is_untouched():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3), nn.Dropout(0.5), nn.ReLU(),
                          nn.Flatten(), nn.LazyLinear(2), nn.BatchNorm1d(2))  # fmt: skip
    model(torch.randn(4, 1, 6, 6))  # materialise the lazy layer; moves the running stats
    before = {k: v.clone() for k, v in model.state_dict().items()}
    batches = [torch.randn(5, 1, 6, 6) * 3 + 2 for _ in range(4)]  # far from the old statistics

    fresh = recalibrate_batch_norm(model, batches)

    for k, v in model.state_dict().items():  # the original keeps its weights and statistics
        assert torch.equal(v, before[k]), k
    assert model.training and not fresh.training
    # Naive reference: the first norm's input is the convolution's output; its running mean is
    # the mean of each batch's channel mean, its variance the mean of the unbiased variances.
    conv = model[0]
    feats = [conv(x).detach() for x in batches]  # (5, 3, 4, 4) each
    means = torch.stack([f.mean((0, 2, 3)) for f in feats]).mean(0)
    variances = torch.stack([f.transpose(0, 1).flatten(1).var(1) for f in feats]).mean(0)
    torch.testing.assert_close(fresh[1].running_mean, means)
    torch.testing.assert_close(fresh[1].running_var, variances)
    assert int(fresh[1].num_batches_tracked) == len(batches)
    # The second norm saw the first's batch-normalised output with dropout off.
    second = torch.stack([
        model[5](torch.relu(nn.functional.batch_norm(f, None, None, fresh[1].weight,
                 fresh[1].bias, training=True)).flatten(1)).detach().mean(0)
        for f in feats
    ]).mean(0)  # fmt: skip
    torch.testing.assert_close(fresh[6].running_mean, second)
