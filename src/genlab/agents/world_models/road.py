"""CarRacing's road drawn with the same pixels in under half the time.

gymnasium's `CarRacing._render_road` draws about 800 polygons a frame (the field, 400 grass
squares, the road tiles and kerbs) on a 1000x800 surface, and before each one rotates, scales
and bounds-checks its corners in Python, one `pygame.math.Vector2` at a time: about two thirds
of an environment step. Here the corners of all polygons are transformed at once in NumPy, the
same screen-bounds test picks the same polygons (about 80 a frame), and they are drawn with the
same pygame calls in the same order, so observations are bit-identical (tests/test_world_models.py
compares whole episodes against gymnasium's own) and a step is 1.7-1.8x faster
(`benchmarks/carracing_render.py` measures both).

    env = gym.make("CarRacing-v3"); draw_road_fast(env)   # before reset
"""

from __future__ import annotations

import types

import numpy as np
from gymnasium.envs.box2d import car_racing as cr
from pygame import gfxdraw
from pygame.math import Vector2


def _grass() -> np.ndarray:
    """The grass squares `_render_road` draws, in its order: (400, 4, 2) world coordinates."""
    d = cr.GRASS_DIM
    squares = [[(d * x + d, d * y), (d * x, d * y), (d * x, d * y + d), (d * x + d, d * y + d)]
               for x in range(-20, 20, 2) for y in range(-20, 20, 2)]  # fmt: skip
    return np.array(squares, dtype=np.float64)


GRASS = _grass()
FIELD = np.array([[(cr.PLAYFIELD, cr.PLAYFIELD), (cr.PLAYFIELD, -cr.PLAYFIELD),
                   (-cr.PLAYFIELD, -cr.PLAYFIELD), (-cr.PLAYFIELD, cr.PLAYFIELD)]])  # fmt: skip


def to_screen(polys: np.ndarray, zoom: float, translation, angle: float) -> np.ndarray:
    """World corners (N, 4, 2) -> screen corners (N, 4, 2), as `_draw_colored_polygon` computes
    them: rotated by `angle` (pygame's own cos and sin, so the products round alike), scaled
    by `zoom`, shifted by `translation`."""
    cos, sin = Vector2(1.0, 0.0).rotate_rad(angle)
    x, y = polys[..., 0], polys[..., 1]
    rx, ry = cos * x - sin * y, sin * x + cos * y
    return np.stack([rx * zoom + translation[0], ry * zoom + translation[1]], axis=-1)


def on_screen(corners: np.ndarray) -> np.ndarray:
    """(N, 4, 2) screen corners -> (N,) bool: a corner lies within the window widened by the
    largest shape (gymnasium's test for drawing a polygon at all)."""
    m = cr.MAX_SHAPE_DIM
    inside = ((corners[..., 0] >= -m) & (corners[..., 0] <= cr.WINDOW_W + m)
              & (corners[..., 1] >= -m) & (corners[..., 1] <= cr.WINDOW_H + m))  # fmt: skip
    return inside.any(axis=-1)


def _draw(surface, corners: np.ndarray, colors) -> None:
    for poly, color in zip(corners.tolist(), colors, strict=True):
        gfxdraw.aapolygon(surface, poly, color)
        gfxdraw.filled_polygon(surface, poly, color)


def _render_road(self, zoom: float, translation, angle: float) -> None:
    """A drop-in `CarRacing._render_road`: same polygons, order, colours and pixels."""
    cached = getattr(self, "_road_source", None)
    if cached is not self.road_poly or len(self._road_corners) != len(self.road_poly):
        # the track is rebuilt on reset (the tiles' colours change as they are visited, so
        # those are read every frame)
        self._road_source = self.road_poly
        self._road_corners = np.array([[(p[0], p[1]) for p in poly] for poly, _ in self.road_poly],
                                      dtype=np.float64).reshape(-1, 4, 2)  # fmt: skip
    _draw(self.surf, to_screen(FIELD, zoom, translation, angle), [self.bg_color])
    grass = to_screen(GRASS, zoom, translation, angle)
    keep = on_screen(grass)
    _draw(self.surf, grass[keep], [self.grass_color] * int(keep.sum()))
    road = to_screen(self._road_corners, zoom, translation, angle)
    keep = np.flatnonzero(on_screen(road))
    colors = [[int(c) for c in self.road_poly[i][1]] for i in keep]
    _draw(self.surf, road[keep], colors)


def draw_road_fast(env) -> None:
    """Swap the faster road drawing into a CarRacing env (wrapped or not), in place."""
    base = env.unwrapped
    if not isinstance(base, cr.CarRacing):
        raise TypeError(f"draw_road_fast needs a CarRacing env, got {type(base).__name__}")
    base._render_road = types.MethodType(_render_road, base)
