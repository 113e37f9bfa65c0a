"""What V reads, and whether it sees the road: its reconstruction error beside the mean frame's.

A VAE on CarRacing frames can spend thousands of steps decoding every frame as the average
frame (green grass, the car, a blur where the road usually is) before the road's position
enters z: at batch 128, and with a learned per-pixel decoder std, which explains the road away
as noise (so V now uses a fixed one, the paper's squared error: cli.py's V_OPTIONS). A
controller on such a V is blind: CMA-ES then searches for nothing. The check is cheap (512
held-out frames) and runs after `train-v`, so the benchmark can stop before M.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from genlab.data.episodes import episode_files, is_test_episode, load_episode

# V is called blind when it removes less than 20% of the mean frame's error. Measured on
# CarRacing: a V drawing the mean frame scored 1.03, one drawing the road 0.22.
BLIND_RATIO = 0.8


def v_input(frames: np.ndarray) -> torch.Tensor:
    """Frames as V reads them: (..., H, W, C) uint8 -> (..., C, H, W) float in [0, 1]."""
    return torch.from_numpy(np.asarray(frames)).movedim(-1, -3).float() / 255.0


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
    """V's reconstruction (decoded posterior mean) of about `frames` frames, drawn evenly from
    the held-out episodes in `data_dir` (DIR/data/carracing), against their mean frame. Adds
    "blind": True when ratio > BLIND_RATIO."""
    every = episode_files(data_dir)
    files = [f for k, f in enumerate(every) if is_test_episode(k, len(every))]
    rng, per_episode = np.random.default_rng(seed), -(-frames // len(files))
    picked = []
    for f in files:  # one episode in memory at a time
        ep = load_episode(f).frames  # (T + 1, H, W, C) uint8
        picked.append(ep[np.sort(rng.choice(len(ep), min(per_episode, len(ep)), replace=False))])
    x = v_input(np.concatenate(picked)[:frames])  # (N, C, H, W)
    recon = torch.cat([vae.mean_image(vae.encode(b)[0]) for b in x.split(128)])
    report = mse_against_mean_frame(x, recon)
    return {**report, "frames": len(x), "blind": report["ratio"] > BLIND_RATIO}
