import pytest
import torch

from contracts import (
    check_loss_finite_and_gradients_reach_every_parameter,
    check_seeded_runs_identical,
)
from genlab.data.audio import mulaw_decode
from genlab.errors import ConfigError
from genlab.models.cpc_audio import HOP, AudioCPC, AudioCPCConfig, frame_mask
from genlab.nn.contrastive import info_nce

SMALL = dict(crop=800, channels=8, code_dim=6, context_dim=5, steps_ahead=2)


def small(**kw) -> AudioCPC:
    torch.manual_seed(0)
    return AudioCPC(AudioCPCConfig(**{**SMALL, **kw}))


def batch(n=3, t=800, seed=0) -> dict:
    g = torch.Generator().manual_seed(seed)
    mask = torch.ones(n, t, dtype=torch.bool)
    mask[0, 500:] = False  # the first crop ran past its clip's end
    return {"x": torch.randint(0, 256, (n, t), generator=g), "mask": mask}


def test_contracts():
    check_loss_finite_and_gradients_reach_every_parameter(small(), batch())
    check_seeded_runs_identical(small, batch())


def test_one_code_per_10_ms_and_no_context_hears_the_future():
    model = small()
    wave = torch.rand(2, 1600) * 2 - 1
    with torch.no_grad():
        z, c = model.codes_and_contexts(wave)
        assert z.shape == (2, 1600 // HOP, 6) and c.shape == (2, 20, 5)
        t = 8  # code t hears samples up to 80 t + 151 < 80 (t + 2)
        changed = wave.clone()
        changed[:, HOP * (t + 2) :] = torch.rand_like(changed[:, HOP * (t + 2) :])
        z2, c2 = model.codes_and_contexts(changed)
    assert torch.equal(c[:, : t + 1], c2[:, : t + 1]) and torch.equal(z[:, : t + 1], z2[:, : t + 1])
    assert not torch.allclose(c[:, t + 3 :], c2[:, t + 3 :])  # the test can fail


def test_frames_are_real_only_when_every_sample_is():
    mask = torch.ones(2, 400, dtype=torch.bool)
    mask[1, 239] = False
    assert frame_mask(mask).tolist() == [[True] * 5, [True, True, False, True, True]]


def test_loss_scores_only_targets_that_are_speech_against_every_frame():
    model = small()
    b = batch()
    with torch.no_grad():
        got = model.loss(b)
        z, c = model.codes_and_contexts(mulaw_decode(b["x"]))
    cand = z.reshape(-1, 6)
    per_k = []
    for k in (1, 2):
        losses = []
        for i in range(3):
            for t in range(10 - k):
                if b["mask"][i, HOP * (t + k) : HOP * (t + k + 1)].all():
                    pred = model.predict[k - 1](c[i, t])[None]
                    loss, _ = info_nce(pred, cand, torch.tensor([i * 10 + t + k]))
                    losses.append(loss.item())
        per_k.append(sum(losses) / len(losses))
    assert got["loss"].item() == pytest.approx(sum(per_k) / 2, rel=1e-5)


def test_a_clip_embeds_the_same_alone_as_in_a_padded_batch():
    model = small()
    g = torch.Generator().manual_seed(1)
    short, long = torch.rand(530, generator=g), torch.rand(900, generator=g)
    wave = torch.zeros(2, 900)
    wave[0, :530], wave[1] = short, long
    with torch.no_grad():
        together = model.embed_clips(wave, torch.tensor([530, 900]))
        alone = model.embed_clips(short[None], torch.tensor([530]))
    assert torch.allclose(together[0], alone[0], atol=1e-6)


def test_crops_that_cannot_hold_the_offsets_are_refused():
    with pytest.raises(ConfigError, match="--crop 810 must be a multiple of 80"):
        AudioCPCConfig(crop=810)
