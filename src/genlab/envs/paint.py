"""SPIRAL's painting environment (Ganin et al. 2018): an agent paints with libmypaint, one stroke per
step, and every episode is a program of strokes.

Action (a dict, every entry discrete):
    flag      0 = move the pen (no ink), 1 = paint
    end       grid cell of the stroke's end point (grid x grid, row-major: cell = row * grid + col)
    control   grid cell of the quadratic Bezier's control point
    pressure  level in 0 .. pressures-1 -> ink opacity (k + 1) / pressures
    size      level in 0 .. sizes-1 -> brush radius RADII[k] * canvas / 64 pixels
    color     level in 0 .. colors-1 -> COLORS[k]   (only with colors > 0; else black ink)
A stroke runs from the current pen position to `end`, bending towards `control`; afterwards the
pen is at `end` (as given: x is the column, y the row; no transposition). A cell's point is its
centre: ((col + 0.5) * canvas / grid, (row + 0.5) * canvas / grid).

The pen starts at the canvas centre. Observation: the canvas (canvas, canvas, 3) uint8, white
with ink; the fraction of the episode done; and in conditional mode the target image (canvas,
canvas, 3) uint8. The environment's own reward is always 0: rewards come from outside (a GAN
critic, or the distance to the target).

`program()` is the episode so far as `Stroke`s (pixels, JSON-ready); `render(program)` repaints
one exactly; `to_svg` and `to_gcode` export it for a browser or a pen plotter.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from dataclasses import asdict, dataclass

import gymnasium as gym
import numpy as np
from PIL import Image

from genlab.envs.mypaint import make_canvas
from genlab.errors import ConfigError

RADII = (1.0, 1.75, 2.5, 3.5)  # brush radii in pixels on a 64-pixel canvas, per size level
COLORS = ((0.0, 0.0, 0.0), (0.85, 0.1, 0.1), (0.1, 0.55, 0.15), (0.1, 0.2, 0.85),
          (0.95, 0.75, 0.05), (0.6, 0.2, 0.7), (0.05, 0.65, 0.75), (0.55, 0.55, 0.55))  # fmt: skip
BEZIER_STEP = 1.0  # pixels between the points a stroke is drawn through
_FINE_T = np.linspace(0.0, 1.0, 65)  # where a Bezier's arc length is measured


@dataclass(frozen=True)
class Stroke:
    """One action as drawn, in canvas pixels: from `start` through the Bezier with `control` to
    `end`; `paint` False means the pen only moved."""

    paint: bool
    start: tuple[float, float]
    control: tuple[float, float]
    end: tuple[float, float]
    pressure: float
    radius: float
    color: tuple[float, float, float]


def bezier(start, control, end, step: float = BEZIER_STEP) -> np.ndarray:
    """Points (N, 2) on the quadratic Bezier B(t) = (1-t)^2 start + 2(1-t)t control + t^2 end,
    ends included, evenly spaced along the curve at most `step` pixels apart. Even in arc length,
    not in t: where control sits on an end, even t crowds points a hundredth of a pixel apart,
    and libmypaint then miscounts its dabs ("Time is running backwards!" on stdout)."""
    p0, p1, p2 = (np.asarray(p, np.float64) for p in (start, control, end))

    def curve(t: np.ndarray) -> np.ndarray:  # (N, 1) -> (N, 2)
        return (1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t**2 * p2

    fine = curve(_FINE_T[:, None])
    gaps = np.diff(fine, axis=0)
    arc = np.concatenate([[0.0], np.cumsum(np.hypot(gaps[:, 0], gaps[:, 1]))])
    if arc[-1] == 0.0:  # a dot
        return curve(np.array([[0.0], [1.0]]))
    n = max(2, int(np.ceil(arc[-1] / step)) + 1)
    t = np.interp(np.linspace(0.0, arc[-1], n), arc, _FINE_T)
    return curve(t[:, None])


def render(program: list[Stroke], canvas: int, renderer: str = "mypaint") -> np.ndarray:
    """The canvas (canvas, canvas, 3) uint8 a program paints, from white."""
    surface = make_canvas(canvas, renderer)
    for s in program:
        if s.paint:
            surface.stroke(bezier(s.start, s.control, s.end), s.pressure, s.radius, s.color)
    return surface.pixels()


def target_canvas(image: np.ndarray, canvas: int) -> np.ndarray:
    """An ink image (h, w) uint8 (255 = ink) -> (canvas, canvas, 3) uint8, black ink on white."""
    resized = np.asarray(Image.fromarray(image).resize((canvas, canvas), Image.Resampling.BILINEAR))
    return np.repeat((255 - resized)[..., None], 3, axis=2)


def ink(pixels: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 canvas -> (H, W) float in [0, 1]: 1 - luminance (1 = full black ink)."""
    return 1.0 - pixels.astype(np.float32).mean(-1) / 255.0


@dataclass(frozen=True)
class PaintConfig:
    canvas: int = 64
    grid: int = 32
    episode_length: int = 20
    pressures: int = 4
    sizes: int = 4
    colors: int = 0  # 0: black ink only
    conditional: bool = False
    renderer: str = "mypaint"  # or "numpy"

    def __post_init__(self) -> None:
        if self.grid < 2 or self.canvas < self.grid:
            raise ConfigError(
                f"need 2 <= grid <= canvas, got grid {self.grid}, canvas {self.canvas}"
            )
        if not 1 <= self.sizes <= len(RADII) or not 0 <= self.colors <= len(COLORS):
            raise ConfigError(f"sizes must be in 1..{len(RADII)}, colors in 0..{len(COLORS)}")
        if self.episode_length < 1 or self.pressures < 1:
            raise ConfigError("episode_length and pressures must be >= 1")


class PaintEnv(gym.Env):
    metadata = {"render_modes": ["rgb_array"]}

    def __init__(self, cfg: PaintConfig = PaintConfig(), targets: np.ndarray | None = None,
                 render_mode: str | None = None):  # fmt: skip
        """`targets` (N, h, w) uint8 ink images (255 = ink, like MNIST): a conditional episode
        draws one, shown as black ink on white at the canvas size."""
        self.cfg, self.render_mode = cfg, render_mode
        if cfg.conditional and (targets is None or targets.ndim != 3 or not len(targets)):
            raise ConfigError("a conditional painter needs targets (N, h, w) uint8 ink images")
        self.targets = targets
        cells = cfg.grid * cfg.grid
        actions = OrderedDict(flag=gym.spaces.Discrete(2), end=gym.spaces.Discrete(cells),
                              control=gym.spaces.Discrete(cells),
                              pressure=gym.spaces.Discrete(cfg.pressures),
                              size=gym.spaces.Discrete(cfg.sizes))  # fmt: skip
        if cfg.colors:
            actions["color"] = gym.spaces.Discrete(cfg.colors)
        self.action_space = gym.spaces.Dict(actions)  # in this order: an agent's heads follow it
        image = gym.spaces.Box(0, 255, (cfg.canvas, cfg.canvas, 3), np.uint8)
        observations = {"canvas": image, "step": gym.spaces.Box(0.0, 1.0, (1,), np.float32)}
        if cfg.conditional:
            observations["target"] = image
        self.observation_space = gym.spaces.Dict(observations)

    def cell_point(self, cell: int) -> tuple[float, float]:
        """Grid cell -> (x, y) in canvas pixels, the cell's centre."""
        row, col = divmod(int(cell), self.cfg.grid)
        scale = self.cfg.canvas / self.cfg.grid
        return ((col + 0.5) * scale, (row + 0.5) * scale)

    def _observation(self) -> dict:
        obs = {"canvas": self._surface.pixels(),
               "step": np.array([self._t / self.cfg.episode_length], np.float32)}  # fmt: skip
        if self.cfg.conditional:
            obs["target"] = self.target
        return obs

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self._surface = make_canvas(self.cfg.canvas, self.cfg.renderer)
        self._strokes: list[Stroke] = []
        self._t = 0
        self._pen = (self.cfg.canvas / 2, self.cfg.canvas / 2)  # every episode starts mid-canvas
        if self.cfg.conditional:
            self.target = target_canvas(self.targets[self.np_random.integers(len(self.targets))],
                                        self.cfg.canvas)  # fmt: skip
        return self._observation(), {}

    def step(self, action: dict):
        if self._t >= self.cfg.episode_length:
            raise gym.error.ResetNeeded("the episode is over: call reset()")
        cfg = self.cfg
        stroke = Stroke(
            paint=bool(action["flag"]), start=self._pen,
            control=self.cell_point(action["control"]), end=self.cell_point(action["end"]),
            pressure=(int(action["pressure"]) + 1) / cfg.pressures,
            radius=RADII[int(action["size"])] * cfg.canvas / 64,
            color=COLORS[int(action["color"])] if cfg.colors else COLORS[0],
        )  # fmt: skip
        if stroke.paint:
            self._surface.stroke(bezier(stroke.start, stroke.control, stroke.end),
                                 stroke.pressure, stroke.radius, stroke.color)  # fmt: skip
        self._strokes.append(stroke)
        self._pen = stroke.end
        self._t += 1
        done = self._t >= cfg.episode_length
        return self._observation(), 0.0, done, False, {}

    @property
    def pen(self) -> tuple[float, float]:
        """Where the next stroke starts, (x, y) in canvas pixels."""
        return self._pen

    def render(self) -> np.ndarray:
        return self._surface.pixels()

    def program(self) -> list[Stroke]:
        return list(self._strokes)


def random_episode(env: gym.Env, seed: int):
    """Paint one episode of uniformly random strokes (the random-stroke baseline); returns the
    last observation. Works for PaintEnv and the tasks that wrap it."""
    obs, _ = env.reset(seed=seed)
    env.action_space.seed(seed)
    done = False
    while not done:
        obs, _, terminated, truncated, _ = env.step(env.action_space.sample())
        done = terminated or truncated
    return obs


# --- the program, exported ------------------------------------------------------------------------
def to_json(program: list[Stroke], canvas: int) -> str:
    return json.dumps({"canvas": canvas, "strokes": [asdict(s) for s in program]}, indent=1)


def from_json(text: str) -> tuple[list[Stroke], int]:
    data = json.loads(text)
    strokes = [Stroke(**{k: tuple(v) if isinstance(v, list) else v for k, v in s.items()})
               for s in data["strokes"]]  # fmt: skip
    return strokes, int(data["canvas"])


def to_svg(program: list[Stroke], canvas: int) -> str:
    """The painted strokes as SVG quadratic paths (pen moves are implicit in each path's M)."""
    paths = []
    for s in program:
        if not s.paint:
            continue
        r, g, b = (round(255 * c) for c in s.color)
        paths.append(
            f'<path d="M {s.start[0]:.2f} {s.start[1]:.2f} Q {s.control[0]:.2f} {s.control[1]:.2f} '
            f'{s.end[0]:.2f} {s.end[1]:.2f}" fill="none" stroke="rgb({r},{g},{b})" '
            f'stroke-width="{2 * s.radius:.2f}" stroke-opacity="{s.pressure:.2f}" '
            'stroke-linecap="round"/>'
        )
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{canvas}" height="{canvas}" '
            f'viewBox="0 0 {canvas} {canvas}"><rect width="100%" height="100%" fill="white"/>'
            + "".join(paths) + "</svg>\n")  # fmt: skip


def to_gcode(program: list[Stroke], canvas: int, width_mm: float = 100.0,
             pen_up: float = 5.0, pen_down: float = 0.0, feed: int = 1500) -> str:  # fmt: skip
    """G-code for a pen plotter: millimetres, absolute, y up (the canvas' row 0 is the top edge),
    pen lifted with Z = pen_up and lowered with Z = pen_down; each painted stroke is its Bezier
    as straight segments. Pressure, size and colour are not plotted (one pen)."""
    scale = width_mm / canvas

    def xy(p) -> str:
        return f"X{p[0] * scale:.2f} Y{(canvas - p[1]) * scale:.2f}"

    lines = ["G21 ; millimetres", "G90 ; absolute", f"G0 Z{pen_up:.1f}"]
    for s in program:
        if not s.paint:
            continue
        points = bezier(s.start, s.control, s.end, step=2.0)
        lines += [f"G0 {xy(points[0])}", f"G1 Z{pen_down:.1f} F{feed}"]
        lines += [f"G1 {xy(p)} F{feed}" for p in points[1:]]
        lines.append(f"G0 Z{pen_up:.1f}")
    lines.append("G0 X0 Y0")
    return "\n".join(lines) + "\n"
