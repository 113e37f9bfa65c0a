"""A painting canvas backed by the real painting library, libmypaint (Debian `libmypaint-1.5-1`),
driven through ctypes, and a pure-NumPy stand-in with the same interface.

A canvas is `size` x `size` RGB, white to start. `stroke(points, pressure, radius, rgb)` draws one
continuous brush stroke through `points` ((N, 2) float, x = column and y = row in pixels):
the brush is put down at points[0] without ink, then dragged through the rest; pressure in
[0, 1] scales the ink's opacity (libmypaint's default brush maps pressure to opacity
linearly), radius is in pixels. `pixels()` is the canvas as (size, size, 3) uint8.

libmypaint keeps 64x64 tiles of 16-bit premultiplied RGBA in fixed point (1.0 = 1 << 15); the
canvas is read back tile by tile.

libmypaint printf()s "Time is running backwards!" when float round-off in its dab loop leaves a
step a hair below zero seconds (it then clamps the step and paints correctly). A trained painter
draws such strokes hundreds of times an hour, and stdout carries genlab's --json output, so the
C runtime's stdout points at /dev/null while a stroke is painted (`_c_stdout_silenced`); Python's
own stdout is a different stream and is untouched.
"""

from __future__ import annotations

import colorsys
import ctypes
import ctypes.util
import math
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

import numpy as np

from genlab.errors import GenlabError

LIBRARY = "libmypaint-1.5.so.1"
PACKAGES = "libmypaint-1.5-1 mypaint-brushes"
TILE = 64
ONE = 1 << 15  # fixed-point 1.0
DTIME = 0.02  # seconds between stroke events (the default brush ignores speed)

_p = ctypes.c_void_p
_f = ctypes.c_float


class _Rectangle(ctypes.Structure):
    _fields_ = [("x", ctypes.c_int), ("y", ctypes.c_int), ("width", ctypes.c_int),
                ("height", ctypes.c_int)]  # fmt: skip


class _TileRequest(ctypes.Structure):
    _fields_ = [("tx", ctypes.c_int), ("ty", ctypes.c_int), ("readonly", ctypes.c_int),
                ("buffer", ctypes.POINTER(ctypes.c_uint16)), ("context", _p),
                ("thread_id", ctypes.c_int), ("mipmap_level", ctypes.c_int)]  # fmt: skip


class MyPaintMissing(GenlabError):
    pass


@cache
def library() -> ctypes.CDLL:
    """libmypaint with the signatures genlab calls; MyPaintMissing names the Debian packages."""
    path = ctypes.util.find_library("mypaint-1.5") or LIBRARY
    try:
        lib = ctypes.CDLL(path)
    except OSError as e:
        raise MyPaintMissing(
            f"libmypaint not found ({e}); install it with `apt-get install {PACKAGES}`, or use "
            "the NumPy renderer (--renderer numpy)"
        ) from None
    signatures = {
        "mypaint_fixed_tiled_surface_new": ([ctypes.c_int, ctypes.c_int], _p),
        "mypaint_fixed_tiled_surface_interface": ([_p], _p),
        "mypaint_surface_unref": ([_p], None),
        "mypaint_surface_begin_atomic": ([_p], None),
        "mypaint_surface_end_atomic": ([_p, ctypes.POINTER(_Rectangle)], None),
        "mypaint_tile_request_init": ([ctypes.POINTER(_TileRequest), ctypes.c_int, ctypes.c_int,
                                       ctypes.c_int, ctypes.c_int], None),
        "mypaint_tiled_surface_tile_request_start": ([_p, ctypes.POINTER(_TileRequest)], None),
        "mypaint_tiled_surface_tile_request_end": ([_p, ctypes.POINTER(_TileRequest)], None),
        "mypaint_brush_new": ([], _p),
        "mypaint_brush_unref": ([_p], None),
        "mypaint_brush_from_defaults": ([_p], None),
        "mypaint_brush_reset": ([_p], None),
        "mypaint_brush_new_stroke": ([_p], None),
        "mypaint_brush_set_base_value": ([_p, ctypes.c_int, _f], None),
        "mypaint_brush_setting_from_cname": ([ctypes.c_char_p], ctypes.c_int),
        "mypaint_brush_stroke_to": ([_p, _p, _f, _f, _f, _f, _f, ctypes.c_double], ctypes.c_int),
    }  # fmt: skip
    for name, (args, result) in signatures.items():
        fn = getattr(lib, name)
        fn.argtypes, fn.restype = args, result
    return lib


@cache
def _libc_streams() -> tuple[ctypes.c_void_p, int] | None:
    """(libc's `stdout` FILE* variable, a FILE* on /dev/null), or None off glibc-like systems."""
    try:
        libc = ctypes.CDLL(None)
        libc.fopen.restype, libc.fopen.argtypes = _p, [ctypes.c_char_p, ctypes.c_char_p]
        devnull = libc.fopen(b"/dev/null", b"w")
        return (ctypes.c_void_p.in_dll(libc, "stdout"), devnull) if devnull else None
    except (OSError, ValueError, AttributeError):
        return None


@contextmanager
def _c_stdout_silenced() -> Iterator[None]:
    """C code's printf() goes to /dev/null inside the block (see the module docstring)."""
    streams = _libc_streams()
    if streams is None:
        yield
        return
    stdout, devnull = streams
    saved = stdout.value
    stdout.value = devnull
    try:
        yield
    finally:
        stdout.value = saved


def available() -> bool:
    try:
        library()
        return True
    except MyPaintMissing:
        return False


class MyPaintCanvas:
    """A white canvas painted by libmypaint's default brush."""

    def __init__(self, size: int):
        self.size = size
        lib = self.lib = library()
        self._surface = lib.mypaint_fixed_tiled_surface_new(size, size)
        self._interface = lib.mypaint_fixed_tiled_surface_interface(self._surface)
        self._brush = lib.mypaint_brush_new()
        lib.mypaint_brush_from_defaults(self._brush)
        self._settings = {name: lib.mypaint_brush_setting_from_cname(name.encode())
                          for name in ("radius_logarithmic", "color_h", "color_s", "color_v")}  # fmt: skip
        self._tiles = [(tx, ty) for ty in range(-(-size // TILE)) for tx in range(-(-size // TILE))]
        self._each_tile(lambda buf, tx, ty: buf.fill(ONE))  # white, opaque

    def _each_tile(self, fn) -> None:
        """fn(tile buffer (64, 64, 4) uint16 view, tx, ty) on every tile, writable."""
        for tx, ty in self._tiles:
            request = _TileRequest()
            self.lib.mypaint_tile_request_init(ctypes.byref(request), 0, tx, ty, 0)
            self.lib.mypaint_tiled_surface_tile_request_start(self._surface, ctypes.byref(request))
            fn(np.ctypeslib.as_array(request.buffer, shape=(TILE, TILE, 4)), tx, ty)
            self.lib.mypaint_tiled_surface_tile_request_end(self._surface, ctypes.byref(request))

    def stroke(self, points: np.ndarray, pressure: float, radius: float,
               rgb: tuple[float, float, float] = (0.0, 0.0, 0.0)) -> None:  # fmt: skip
        lib, brush = self.lib, self._brush
        for name, value in zip(
            ("color_h", "color_s", "color_v"), colorsys.rgb_to_hsv(*rgb), strict=True
        ):
            lib.mypaint_brush_set_base_value(brush, self._settings[name], value)
        lib.mypaint_brush_set_base_value(brush, self._settings["radius_logarithmic"],
                                         math.log(radius))  # fmt: skip
        lib.mypaint_surface_begin_atomic(self._interface)
        lib.mypaint_brush_reset(brush)
        lib.mypaint_brush_new_stroke(brush)
        x0, y0 = (float(v) for v in points[0])
        with _c_stdout_silenced():
            lib.mypaint_brush_stroke_to(brush, self._interface, x0, y0, 0.0, 0.0, 0.0, 1.0)
            lib.mypaint_brush_stroke_to(brush, self._interface, x0, y0, pressure, 0.0, 0.0, DTIME)
            for x, y in points[1:]:
                lib.mypaint_brush_stroke_to(brush, self._interface, float(x), float(y), pressure,
                                            0.0, 0.0, DTIME)  # fmt: skip
        lib.mypaint_surface_end_atomic(self._interface, ctypes.byref(_Rectangle()))

    def pixels(self) -> np.ndarray:
        side = -(-self.size // TILE) * TILE
        out = np.zeros((side, side, 3), np.uint16)

        def read(buf, tx, ty):
            out[ty * TILE : (ty + 1) * TILE, tx * TILE : (tx + 1) * TILE] = buf[..., :3]

        self._each_tile(read)
        rgb = out[: self.size, : self.size].astype(np.float32) / ONE  # alpha is 1 everywhere
        return np.clip(np.round(rgb * 255), 0, 255).astype(np.uint8)

    def __del__(self) -> None:
        lib = getattr(self, "lib", None)
        if lib is not None:
            lib.mypaint_brush_unref(self._brush)
            lib.mypaint_surface_unref(self._interface)


class NumpyCanvas:
    """The same strokes stamped as round dabs with a soft rim: a stand-in where libmypaint is
    missing (tested to ink the same pixels). Each dab blends its colour in with its opacity x
    coverage, like libmypaint's normal blend mode."""

    DABS_PER_RADIUS = 2.0  # libmypaint's default dabs_per_actual_radius
    HARDNESS = 0.8  # libmypaint's default hardness
    LINEARIZE = 0.9  # libmypaint's default opaque_linearize
    RADIUS_SCALE = 1.1  # libmypaint's antialiased rim makes its strokes about this much wider

    @classmethod
    def dab_opacity(cls, pressure: float) -> float:
        """Per-dab opacity such that the overlapping dabs of a stroke add up to `pressure`
        (libmypaint's opaque_linearize: 2 x dabs per radius overlap each pixel)."""
        overlap = 1.0 + cls.LINEARIZE * (2.0 * cls.DABS_PER_RADIUS - 1.0)
        return 1.0 - (1.0 - pressure) ** (1.0 / overlap)

    def __init__(self, size: int):
        self.size = size
        self.rgb = np.ones((size, size, 3), np.float32)
        self._ys, self._xs = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5

    def stroke(self, points: np.ndarray, pressure: float, radius: float,
               rgb: tuple[float, float, float] = (0.0, 0.0, 0.0)) -> None:  # fmt: skip
        colour = np.asarray(rgb, np.float32)
        opacity = self.dab_opacity(pressure)
        radius = radius * self.RADIUS_SCALE
        reach = int(np.ceil(radius)) + 1
        for x, y in resample(np.asarray(points, np.float32), radius / self.DABS_PER_RADIUS):
            r0, r1 = max(0, int(y) - reach), min(self.size, int(y) + reach + 1)
            c0, c1 = max(0, int(x) - reach), min(self.size, int(x) + reach + 1)
            if r0 >= r1 or c0 >= c1:
                continue  # the dab is off the canvas
            d = np.hypot(self._xs[r0:r1, c0:c1] - x, self._ys[r0:r1, c0:c1] - y) / radius
            falloff = np.where(d < self.HARDNESS, 1.0,
                               np.clip((1 - d) / (1 - self.HARDNESS), 0, 1))  # fmt: skip
            a = (opacity * falloff)[..., None]
            window = self.rgb[r0:r1, c0:c1]
            self.rgb[r0:r1, c0:c1] = window * (1 - a) + colour * a

    def pixels(self) -> np.ndarray:
        return np.clip(np.round(self.rgb * 255), 0, 255).astype(np.uint8)


def resample(points: np.ndarray, spacing: float) -> np.ndarray:
    """Points every `spacing` pixels along the polyline `points` (N, 2), ends included."""
    seg = np.linalg.norm(np.diff(points, axis=0), axis=1)
    along = np.concatenate([[0.0], np.cumsum(seg)])
    n = max(2, int(math.ceil(along[-1] / max(spacing, 1e-3))) + 1)
    at = np.linspace(0.0, along[-1], n)
    return np.stack([np.interp(at, along, points[:, 0]), np.interp(at, along, points[:, 1])], 1)


def make_canvas(size: int, renderer: str = "mypaint"):
    """A fresh white canvas: "mypaint" (libmypaint) or "numpy"."""
    if renderer == "mypaint":
        return MyPaintCanvas(size)
    if renderer == "numpy":
        return NumpyCanvas(size)
    raise GenlabError(f"renderer must be 'mypaint' or 'numpy', not '{renderer}'")
