"""Does V see the road? Its reconstruction error beside the error of the mean frame.

A VAE on CarRacing frames can spend thousands of steps decoding every frame as the average
frame (green grass, the car, a blur where the road usually is) before the road's position
enters z. A controller on such a V is blind: CMA-ES then searches for nothing. The check is
cheap (a few hundred held-out frames) and runs between V and M in the benchmark.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from genlab.agents.world_models.rollouts import episode_files, is_test_episode, load_episode

# V is called blind when it removes less than this fraction of the mean frame's error.
BLIND_RATIO = 0.8


def mse_against_mean_frame(frames: torch.Tensor, recon: torch.Tensor) -> dict[str, float]:
    """frames, recon: (N, C, H, W) in [0, 1]. The mean over pixels of (recon - frame)^2 and of
    (mean frame - frame)^2, and their ratio (1: V no better than the mean frame)."""
    if frames.shape != recon.shape:
        raise ValueError(f"frames {tuple(frames.shape)} and reconstructions "
                         f"{tuple(recon.shape)} differ in shape")  # fmt: skip
    v = ((recon - frames) ** 2).mean().item()
    mean = ((frames.mean(0, keepdim=True) - frames) ** 2).mean().item()
    return {"v_mse": v, "mean_frame_mse": mean, "ratio": v / max(mean, 1e-12)}


@torch.no_grad()
def reconstruction_check(vae, data_dir: Path, frames: int = 512, seed: int = 0) -> dict:
    """V's reconstruction (decoded posterior mean) of `frames` frames drawn from the held-out
    episodes in `data_dir` (DIR/data/carracing), against their mean frame. Adds "blind":
    True when ratio > BLIND_RATIO."""
    every = episode_files(data_dir)
    files = [f for k, f in enumerate(every) if is_test_episode(k, len(every))]
    x = np.concatenate([load_episode(f).frames for f in files])  # (N, H, W, C) uint8
    pick = np.random.default_rng(seed).choice(len(x), size=min(frames, len(x)), replace=False)
    x = torch.from_numpy(x[np.sort(pick)]).permute(0, 3, 1, 2).float() / 255.0
    recon = torch.cat([vae.mean_image(vae.encode(b)[0]) for b in x.split(128)])
    report = mse_against_mean_frame(x, recon)
    return {**report, "frames": len(x), "blind": report["ratio"] > BLIND_RATIO}
