"""Omniglot (Lake et al.): 1,623 handwritten characters from 50 alphabets, 20 drawers each.

Read from the two zips of 105x105 1-bit PNGs (`images_background.zip`: 30 alphabets, 964
characters; `images_evaluation.zip`: 20 alphabets, 659 characters), resized once to 28x28 with
Lanczos filtering and inverted so that, as in MNIST, 0 = background and 255 = ink.

Ids: `character` is the global id from the file name (IIII - 1, in 0..1622), `drawer` is DD - 1
(0..19), `alphabet` indexes `ALPHABETS` (background alphabets first, each set sorted by name).
"""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from genlab.data.cache import load_decoded
from genlab.data.resolve import RemoteFile, Source, resolve
from genlab.errors import DataError

SOURCE = Source(
    name="omniglot",
    files=(
        RemoteFile(  # sha256: the repacked copy in shared/data; md5: the upstream archive
            "images_background.zip",
            (
                "sha256:0742eb769ff12b215b6d00139389de8f05c29d35cc3f349b724567d0cf13ba7e",
                "md5:68d2efa1b9178cc56df9314c21c6e718",
            ),
        ),
        RemoteFile(
            "images_evaluation.zip",
            (
                "sha256:6f0410897c5b2eb3c7fa7d630db68e1f7efd1cf44e5a0d9f33a6614c1c44ddff",
                "md5:6b91aef0f799c5bb55b94e3f2daec811",
            ),
        ),
    ),
    base_urls=("https://raw.githubusercontent.com/brendenlake/omniglot/master/python/",),
)
SETS = {
    "background": (30, 964, 19_280),
    "evaluation": (20, 659, 13_180),
}  # alphabets, chars, images
SIZE = 28
DRAWERS = 20  # drawings of every character
_NAME = re.compile(r"^images_(\w+)/([^/]+)/character(\d+)/(\d{4})_(\d{2})\.png$")


def decode_png(raw: bytes, size: int = SIZE) -> np.ndarray:
    """1-bit 105x105 PNG (True = background) -> uint8 (size, size), 0 = background, 255 = ink."""
    img = Image.open(io.BytesIO(raw)).convert("L")  # background 255, ink 0
    img = img.resize((size, size), Image.Resampling.LANCZOS)
    return 255 - np.asarray(img, dtype=np.uint8)


def _decode(folder: Path) -> dict:
    images, alphabet, character, drawer, background, names = [], [], [], [], [], []
    for set_name, (n_alpha, n_char, n_img) in SETS.items():
        path = folder / f"images_{set_name}.zip"
        try:
            zf = zipfile.ZipFile(path)
        except zipfile.BadZipFile as e:
            raise DataError(f"{path}: not a readable zip ({e})") from e
        entries = sorted(n for n in zf.namelist() if n.endswith(".png"))
        alphabets = sorted({_NAME.match(n).group(2) for n in entries if _NAME.match(n)})
        offset = len(names)
        names.extend(alphabets)
        chars_here = set()
        for n in entries:
            m = _NAME.match(n)
            if m is None:
                raise DataError(f"{path}: unexpected entry {n}")
            images.append(decode_png(zf.read(n)))
            alphabet.append(offset + alphabets.index(m.group(2)))
            character.append(int(m.group(4)) - 1)
            chars_here.add(character[-1])
            drawer.append(int(m.group(5)) - 1)
            background.append(set_name == "background")
        n_chars = len(chars_here)
        if (len(alphabets), n_chars, len(entries)) != (n_alpha, n_char, n_img):
            raise DataError(
                f"{path}: found {len(alphabets)} alphabets, {n_chars} characters, {len(entries)} "
                f"images; expected {n_alpha}, {n_char}, {n_img}"
            )
    return {
        "images": torch.from_numpy(np.stack(images)),  # (32460, 28, 28) uint8
        "alphabet": torch.tensor(alphabet),  # (32460,) int64
        "character": torch.tensor(character),
        "drawer": torch.tensor(drawer),
        "background": torch.tensor(background),  # (32460,) bool
        "alphabet_names": names,
    }


def load(data_dir: str | Path | None = None) -> dict:
    """All 32,460 images with ids; see the module docstring for conventions."""
    return load_decoded(SOURCE, resolve(SOURCE, data_dir), _decode)


def by_character(data_dir: str | Path | None = None) -> torch.Tensor:
    """(1623, 20, 28, 28) uint8: image [c, d] is character id c drawn by drawer d."""
    d = load(data_dir)
    n_chars, n_drawers = 1623, DRAWERS
    slot = d["character"] * n_drawers + d["drawer"]  # (32460,) unique when the data is sound
    if slot.unique().numel() != n_chars * n_drawers:
        raise DataError("omniglot: (character, drawer) pairs are not all distinct")
    out = torch.empty(n_chars * n_drawers, SIZE, SIZE, dtype=torch.uint8)
    out[slot] = d["images"]
    return out.view(n_chars, n_drawers, SIZE, SIZE)
