"""Learning curves as PNG with Pillow: several named (x, y) series on shared axes."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

from genlab.viz.images import PALETTE


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    return [lo + (hi - lo) * i / (n - 1) for i in range(n)]


def _label(v: float) -> str:
    a = abs(v)
    if a >= 1e6:
        return f"{v / 1e6:.3g}M"
    if a >= 1e3:
        return f"{v / 1e3:.3g}k"
    return f"{v:.3g}"


def save_curves(
    series: dict[str, tuple[list[float], list[float]]],
    path: Path,
    xlabel: str,
    ylabel: str,
    title: str = "",
    hlines: dict[str, float] | None = None,
) -> Path:
    """Line chart, 800x500: one line per series (x ascending), optional labelled horizontal
    reference lines (e.g. a bar to reach)."""
    w, h, left, right, top, bottom = 800, 500, 70, 190, 36, 50
    xs = [x for s in series.values() for x in s[0]]
    ys = [y for s in series.values() for y in s[1]] + list((hlines or {}).values())
    if not xs:
        raise ValueError(f"{path}: no points to plot")
    x0, x1 = min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1
    y0, y1 = min(ys), max(ys) if max(ys) > min(ys) else min(ys) + 1
    pw, ph = w - left - right, h - top - bottom

    def to_px(x: float, y: float) -> tuple[float, float]:
        return left + (x - x0) / (x1 - x0) * pw, top + ph - (y - y0) / (y1 - y0) * ph

    img = Image.new("RGB", (w, h), "white")
    d = ImageDraw.Draw(img)
    d.rectangle((left, top, left + pw, top + ph), outline="black")
    for x in _ticks(x0, x1):
        px, _ = to_px(x, y0)
        d.line((px, top + ph, px, top + ph + 4), fill="black")
        d.text((px - 12, top + ph + 8), _label(x), fill="black")
    for y in _ticks(y0, y1):
        _, py = to_px(x0, y)
        d.line((left - 4, py, left, py), fill="black")
        d.text((8, py - 6), _label(y), fill="black")
    d.text((left + pw // 2 - 30, h - 20), xlabel, fill="black")
    d.text((8, 10), ylabel, fill="black")
    if title:
        d.text((left + 120, 10), title, fill="black")
    for name, y in (hlines or {}).items():
        _, py = to_px(x0, y)
        d.line((left, py, left + pw, py), fill=(160, 160, 160))
        d.text((left + pw + 8, py - 6), name, fill=(120, 120, 120))
    for i, (name, (sx, sy)) in enumerate(series.items()):
        colour = PALETTE[i % len(PALETTE)]
        points = [to_px(x, y) for x, y in zip(sx, sy, strict=True)]
        if len(points) > 1:
            d.line(points, fill=colour, width=2)
        ly = top + 20 * i
        d.rectangle((left + pw + 8, ly + 30, left + pw + 18, ly + 40), fill=colour)
        d.text((left + pw + 24, ly + 29), name[:26], fill="black")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)
    return path
