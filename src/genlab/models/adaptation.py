"""Few-shot speaker adaptation of a conditional WaveNet (talk 004): from a handful of a new
speaker's utterances, either fit only that speaker's embedding, or fine-tune the whole model.

The held-out speaker's embedding row was never trained; both modes start it at the mean of the
trained speakers' rows (also what "unadapted" means). The base model is never modified.
"""

from __future__ import annotations

import copy

import torch

from genlab.data.audio import ClipSet, CropBatches
from genlab.errors import ConfigError
from genlab.models.wavenet import WaveNet
from genlab.train.loop import adam

MODES = ("embedding", "all")


def with_mean_embedding(model: WaveNet, speaker: int) -> WaveNet:
    """A copy of `model` whose row `speaker` is the mean of the other speakers' embeddings."""
    if model.speaker is None:
        raise ConfigError("speaker adaptation needs a WaveNet conditioned on the speaker")
    net = copy.deepcopy(model)
    with torch.no_grad():
        rows = net.speaker.weight
        others = torch.cat([rows[:speaker], rows[speaker + 1 :]])
        rows[speaker] = others.mean(0)
    return net


def adapt_speaker(
    model: WaveNet,
    clips: ClipSet,
    speaker: int,
    mode: str,
    steps: int,
    lr: float = 1e-3,
    batch_size: int = 8,
    crop: int = 4000,
    seed: int = 0,
) -> WaveNet:
    """A copy of `model` adapted to `clips` (all of speaker id `speaker`) by `steps` Adam steps on
    random crops: `mode` "embedding" trains only that speaker's embedding row, "all" every
    parameter. Returns the adapted copy in eval mode."""
    if mode not in MODES:
        raise ConfigError(f"adaptation mode must be one of {MODES}, not '{mode}'")
    if (clips.speaker != speaker).any():
        raise ConfigError(f"adaptation clips must all be of speaker {speaker}")
    net = with_mean_embedding(model, speaker).train()
    params = [net.speaker.weight] if mode == "embedding" else list(net.parameters())
    for p in net.parameters():
        p.requires_grad_(any(p is q for q in params))
    opt = adam(params, lr)
    batches = CropBatches(clips, crop, batch_size, seed)
    for step in range(steps):
        opt.zero_grad(set_to_none=True)
        net.loss(batches.batch(step))["loss"].backward()
        if mode == "embedding":  # only this speaker's row sees data; keep the others exact
            net.speaker.weight.grad[torch.arange(len(net.speaker.weight)) != speaker] = 0
        opt.step()
    for p in net.parameters():
        p.requires_grad_(True)
    return net.eval()
