"""What the image models do around their networks: the PixelVAE's pictures, decoded in one
batch, are the pictures that sampling and reconstructing one at a time would draw."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from genlab.data.images import ImageSplits
from genlab.models.pixelvae import PixelVAE, PixelVAEConfig
from genlab.nn.latent import lerp
from genlab.tasks.images import decoded_pictures
from genlab.viz.images import save_grid


def test_pixelvae_pictures_in_one_pass_equal_sampling_and_reconstructing_apart(tmp_path):
    torch.manual_seed(0)
    cfg = PixelVAEConfig(latent_dim=4, channels=4, hidden=16, decoder_channels=4,
                         decoder_layers=2)  # fmt: skip
    model = PixelVAE(cfg).eval()
    with torch.no_grad():  # spread the pixel probabilities over (0, 1), so any draw shows
        for w in model.parameters():
            w.mul_(4.0)
    x = (torch.rand(20, 1, 28, 28) > 0.8).to(torch.uint8) * 255
    splits = ImageSplits(x, torch.zeros(20), x, torch.zeros(20, dtype=torch.long), ("0",))
    decoded_pictures(model, cfg, splits, tmp_path, seed=3)
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        apart = model.sample(32, generator=g)  # what `genlab sample` draws from seed 3
        shown_x = (
            x[torch.randperm(20, generator=g)[:8]] > 127
        ).float()  # the fixed binarization of 0/255 images
        z = model.embed(shown_x)
        recon = model.mean_image(z)
        walks = model.mean_image(torch.cat([lerp(z[2 * i], z[2 * i + 1], 8) for i in range(4)]))
    save_grid(apart, tmp_path / "apart.png")
    pairs = torch.stack([shown_x, recon], 1).flatten(0, 1)
    save_grid(pairs, tmp_path / "pairs.png", nrow=8)
    save_grid(walks, tmp_path / "walks.png", nrow=8)
    read = lambda name: np.asarray(Image.open(tmp_path / name))  # noqa: E731
    assert (read("samples.png") == read("apart.png")).all()
    assert (read("reconstructions.png") == read("pairs.png")).all()
    assert (read("interpolation_linear.png") == read("walks.png")).all()
