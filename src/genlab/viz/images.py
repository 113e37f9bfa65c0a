"""Image grids, labelled rows and GIFs with Pillow (plots: `genlab.viz.curves`, matplotlib)."""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

# Ten distinguishable colours (Okabe-Ito and friends), cycled for more classes.
PALETTE = [
    (0, 114, 178), (230, 159, 0), (0, 158, 115), (204, 121, 167), (86, 180, 233),
    (213, 94, 0), (240, 228, 66), (120, 120, 120), (148, 103, 189), (23, 23, 23),
]  # fmt: skip


def grid(
    images: torch.Tensor, nrow: int | None = None, pad: int = 2, scale: int = 2
) -> Image.Image:
    """(N, C, H, W) floats in [0, 1] (C = 1 or 3) -> one PIL image, rows of `nrow`, white gaps."""
    if images.dim() != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"expected images (N, 1|3, H, W), got shape {tuple(images.shape)}")
    n, c, h, w = images.shape
    nrow = nrow or math.ceil(math.sqrt(n))
    rows = math.ceil(n / nrow)
    canvas = np.ones((rows * (h + pad) + pad, nrow * (w + pad) + pad, c), dtype=np.float32)
    arr = images.detach().float().clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy()
    for i in range(n):
        r, col = divmod(i, nrow)
        y, x = pad + r * (h + pad), pad + col * (w + pad)
        canvas[y : y + h, x : x + w] = arr[i]
    pixels = canvas[..., 0] if c == 1 else canvas  # L or RGB
    img = Image.fromarray((pixels * 255).round().astype(np.uint8))
    return img.resize((img.width * scale, img.height * scale), Image.Resampling.NEAREST)


def save_grid(images: torch.Tensor, path: Path, nrow: int | None = None) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    grid(images, nrow).save(path)
    return path


def save_labelled_rows(rows: dict[str, torch.Tensor], path: Path, scale: int = 2) -> Path:
    """One row of images per name, the name written to its left: rows of (N, C, H, W) floats in
    [0, 1] with the same C, H, W (N may differ). For side-by-side comparisons (targets above
    what each model made of them)."""
    if not rows:
        raise ValueError("save_labelled_rows needs at least one row")
    pictures = {name: grid(images, nrow=len(images), scale=scale) for name, images in rows.items()}
    label_w = 8 + 7 * max(len(name) for name in rows)
    width = label_w + max(p.width for p in pictures.values())
    img = Image.new("RGB", (width, sum(p.height for p in pictures.values())), "white")
    draw, y = ImageDraw.Draw(img), 0
    for name, picture in pictures.items():
        img.paste(picture, (label_w, y))
        draw.text((4, y + picture.height // 2 - 6), name, fill="black")
        y += picture.height
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)
    return path


def _upscale(frame: np.ndarray) -> Image.Image:
    img = Image.fromarray(frame[..., 0] if frame.ndim == 3 and frame.shape[2] == 1 else frame)
    scale = max(1, math.ceil(160 / max(frame.shape[:2])))
    return img.resize((img.width * scale, img.height * scale), Image.NEAREST)


def gif_bytes(frames: list[np.ndarray], fps: int = 15) -> bytes:
    """Frames (H, W), (H, W, 1) or (H, W, 3) uint8 as a looping GIF, scaled up (nearest) to
    >= 160 px."""
    images = [_upscale(f) for f in frames]
    buf = io.BytesIO()
    images[0].save(buf, format="GIF", save_all=True, append_images=images[1:],
                   duration=1000 // fps, loop=0)  # fmt: skip
    return buf.getvalue()


def write_gif(frames: list[np.ndarray], path: Path, fps: int = 15) -> Path:
    """`gif_bytes` as a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gif_bytes(frames, fps))
    return path
