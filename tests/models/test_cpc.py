import pytest
import torch

from contracts import (
    check_loss_finite_and_gradients_reach_every_parameter,
    check_seeded_runs_identical,
)
from genlab.errors import ConfigError
from genlab.models.cpc import (
    CPC,
    CPCConfig,
    PatchEncoder,
    RotNet,
    RotNetConfig,
    pooled,
    rotations,
)
from genlab.nn.contrastive import info_nce

SMALL = dict(channels=4, code_dim=8, image_size=16, patch=4, stride=2)  # a 7 x 7 grid


def small_cpc(**kw) -> CPC:
    torch.manual_seed(0)
    return CPC(CPCConfig(**SMALL, context_dim=6, **kw))


def images(n=3, size=16, seed=0) -> torch.Tensor:
    return torch.rand(n, 1, size, size, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("make", [small_cpc, lambda: RotNet(RotNetConfig(**SMALL))])
def test_contracts(make):
    check_loss_finite_and_gradients_reach_every_parameter(make(), {"x": images()})
    check_seeded_runs_identical(make, {"x": images()})


def test_each_patch_code_is_its_patch_encoded_alone():
    enc = PatchEncoder(CPCConfig(**SMALL))
    x = images(2)
    z = enc(x)  # (B, D, R, S)
    assert z.shape == (2, 8, 7, 7)
    alone = enc.net(x[:, :, 4:8, 6:10])  # patch (row 2, column 3): pixels 4.., 6..
    assert torch.allclose(z[:, :, 2, 3], alone, atol=1e-6)


def test_no_context_sees_a_lower_row():
    model = small_cpc()
    x = images(2)
    changed = x.clone()
    r = 3  # rows <= 3 cover pixels up to 3 * 2 + 4 = 10; change everything below
    changed[:, :, 3 * 2 + 4 :] = torch.rand_like(changed[:, :, 10:])
    with torch.no_grad():
        before = model.contexts(model.encoder(x))
        after = model.contexts(model.encoder(changed))
    assert torch.equal(before[:, :, : r + 1], after[:, :, : r + 1])
    assert not torch.allclose(before[:, :, r + 1 :], after[:, :, r + 1 :])  # the test can fail
    for k in model.cfg.offsets:  # so the prediction for the changed rows is unchanged too
        assert torch.equal(model.predictions(before, k)[:, :, : r + 1],
                           model.predictions(after, k)[:, :, : r + 1])  # fmt: skip


def test_loss_picks_each_target_among_every_patch_of_the_batch():
    model = small_cpc(first_step=2, steps_ahead=2)
    x = images(2)
    with torch.no_grad():
        metrics = model.loss({"x": x})
        z = model.encoder(x)
        c = model.contexts(z)
    cand = [z[b, :, r, s] for b in range(2) for r in range(7) for s in range(7)]
    losses = []
    for k in (2, 3):
        pred = model.predictions(c, k)
        for b in range(2):
            for r in range(7 - k):
                for s in range(7):
                    target = b * 49 + (r + k) * 7 + s
                    loss, _ = info_nce(pred[b, :, r, s][None], torch.stack(cand),
                                       torch.tensor([target]))  # fmt: skip
                    losses.append(loss.item())
    per_k = [sum(losses[: 2 * 5 * 7]) / 70, sum(losses[70:]) / (2 * 4 * 7)]
    assert metrics["loss"].item() == pytest.approx(sum(per_k) / 2, rel=1e-5)
    assert set(metrics) == {"loss", "acc_2", "acc_3"}


def test_offsets_past_the_grid_are_refused():
    with pytest.raises(ConfigError, match="--first-step 2 --steps-ahead 6"):
        CPCConfig(**SMALL, steps_ahead=6)
    with pytest.raises(ConfigError, match="--patch 5 --stride 2"):
        CPCConfig(patch=5, stride=2)


def test_rotations_turn_each_image_and_name_the_turn():
    x = torch.arange(4.0).view(1, 1, 2, 2)  # [[0, 1], [2, 3]]
    turned, turn = rotations(x)
    assert turn.tolist() == [0, 1, 2, 3]
    assert turned[1, 0].tolist() == [[1, 3], [0, 2]]  # 90 degrees anticlockwise
    assert turned[2, 0].tolist() == [[3, 2], [1, 0]]


def test_rotnet_learns_the_turn_of_a_fixed_shape():
    torch.manual_seed(0)
    model = RotNet(RotNetConfig(**SMALL))
    x = torch.zeros(8, 1, 16, 16)
    x[:, :, 2:6, 2:12] = 1  # an L: a bar and a leg, asymmetric under every turn
    x[:, :, 2:14, 2:5] = 1
    opt = torch.optim.Adam(model.parameters(), 3e-3)
    for _ in range(60):
        out = model.loss({"x": x})
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
    assert out["acc"].item() == 1.0


def test_pooled_regions_are_block_means():
    grid = torch.randn(2, 3, 6, 6)
    assert torch.allclose(pooled(grid, 1), grid.mean((2, 3)))
    blocks = pooled(grid, 2).view(2, 3, 2, 2)
    assert torch.allclose(blocks[:, :, 1, 0], grid[:, :, 3:, :3].mean((2, 3)))
    model = CPC(CPCConfig(**SMALL, context_dim=6, probe_regions=2))
    assert model.embed(images(2)).shape == (2, (8 + 6) * 4)
