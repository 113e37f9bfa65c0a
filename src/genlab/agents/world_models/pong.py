"""Pong frames for a world model, and where the ball is in each (the world-model talk's point: a
VAE that models CarRacing "no longer sees the ball" on Pong).

An Atari Pong screen (210, 160, 3) becomes a binary 64x64 frame: the playfield (rows 34-193,
between the walls, so no score) is 160x160; a pixel is on where the screen is not background;
the 160 pixels of a side fall into 64 cells, 2.5 each, and a cell is on if any pixel under it
is ("any" pooling, so the 2x4-pixel ball always covers at least 1x2 cells, never blurs away).

The positions come from the emulator screen's colours, not from a network: the ball is the
playfield's (236, 236, 236) pixels, the opponent's paddle (left) its (213, 130, 74) ones, the
agent's (right) its (92, 186, 92) ones; each position is the centroid, in the 64x64 frame's
pixel coordinates (x right, y down), NaN where the object is not on the screen (the ball between
points).
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch

from genlab.data.episodes import Episode

PLAYFIELD_ROWS = slice(34, 194)  # the 160 rows between the top and bottom walls
BACKGROUND = (144, 72, 17)
COLOURS = {"ball": (236, 236, 236), "opponent": (213, 130, 74), "player": (92, 186, 92)}
FRAME = 64
FIELD = 160  # the playfield's side in screen pixels
ENV_ID = "ALE/Pong-v5"
MOVES = {-1.0: 3, 0.0: 0, 1.0: 2}  # move -> ALE action: LEFT moves the paddle down, RIGHT up


def playfield(screen: np.ndarray) -> np.ndarray:
    """(210, 160, 3) uint8 screen -> (160, 160, 3), the rows between the walls."""
    if screen.shape != (210, 160, 3) or screen.dtype != np.uint8:
        raise ValueError(f"expected a (210, 160, 3) uint8 Atari screen, got {screen.shape} "
                         f"{screen.dtype}")  # fmt: skip
    return screen[PLAYFIELD_ROWS]


def any_pool(mask: np.ndarray, size: int = FRAME) -> np.ndarray:
    """(S, S) bool -> (size, size) bool, S >= size: cell (i, j) is on if any pixel under it is;
    pixel r falls in cell floor(r * size / S)."""
    S = mask.shape[0]
    starts = np.searchsorted((np.arange(S) * size) // S, np.arange(size))  # first pixel per cell
    rows = np.logical_or.reduceat(mask, starts, axis=0)  # (size, S)
    return np.logical_or.reduceat(rows, starts, axis=1)


def colour_codes(pixels: np.ndarray) -> np.ndarray:
    """(..., 3) uint8 RGB -> (...) uint32, one number per colour (0xRRGGBB): a colour is then
    found with one comparison instead of three and an `all`."""
    p = pixels.astype(np.uint32)
    return (p[..., 0] << 16) | (p[..., 1] << 8) | p[..., 2]


CODES = {name: int(colour_codes(np.array(c, np.uint8))) for name, c in COLOURS.items()}
BACKGROUND_CODE = int(colour_codes(np.array(BACKGROUND, np.uint8)))


def preprocess(screen: np.ndarray) -> np.ndarray:
    """A screen (210, 160, 3) uint8 -> (64, 64, 1) uint8, 255 where anything is drawn."""
    on = colour_codes(playfield(screen)) != BACKGROUND_CODE  # (160, 160)
    return (any_pool(on) * np.uint8(255))[..., None]


def to_frame(pixels: np.ndarray) -> float:
    """The mean of screen pixel coordinates (each pixel p covers [p, p + 1)) in 64x64 frame
    pixel coordinates: the centre p + 0.5 lies at (p + 0.5) * 64 / 160 frame units, which is
    frame pixel (p + 0.5) * 0.4 - 0.5."""
    return float((pixels.mean() + 0.5) * FRAME / FIELD - 0.5)


def positions(screen: np.ndarray) -> dict[str, np.ndarray]:
    """A screen -> {"ball", "opponent", "player"}: each (2,) float32 [x, y] in 64x64 frame
    pixels (the centroid of the object's screen pixels), NaN if it is not in the playfield."""
    codes, out = colour_codes(playfield(screen)), {}
    for name, code in CODES.items():
        ys, xs = np.nonzero(codes == code)
        if len(xs) == 0:
            out[name] = np.full(2, np.nan, np.float32)
            continue
        out[name] = np.array([to_frame(xs), to_frame(ys)], np.float32)
    return out


def in_open_field(labels: dict[str, torch.Tensor], margin: float) -> torch.Tensor:
    """Frames whose ball is on screen and more than `margin` frame pixels across from either
    paddle (so a window around it holds only the ball): labels {"ball", "opponent", "player"}
    (N, 2) -> (N,) bool. A paddle off screen (NaN) is never near."""
    ball = labels["ball"]
    near = lambda paddle: (ball[:, 0] - paddle[:, 0]).abs() <= margin  # noqa: E731  NaN: False
    return ~ball.isnan().any(1) & ~near(labels["opponent"]) & ~near(labels["player"])


def random_moves(rng: np.random.Generator, steps: int) -> np.ndarray:
    """(steps, 1) float32 moves in {-1, 0, 1}, each drawn uniformly (a controller's exploration;
    `play`'s own random policy draws its moves one step at a time, as it always has)."""
    return rng.integers(-1, 2, (steps, 1)).astype(np.float32)


def play(seed: int, max_steps: int = 1000, policy=None, patience: int = 0) -> Episode:
    """One episode of Pong (ALE v5: 4 frames a step, sticky actions 0.25) with `policy(frame
    (64, 64, 1) uint8) -> move (1,)` or, if None, a uniformly drawn move every step from `seed`;
    with `positions` of every frame as labels (ball, opponent, player: (T+1, 2) each). Actions
    are stored as moves (T, 1) float32: -1 down, 0 stay, +1 up. `patience` is CarRacing's (steps
    without reward) and is not used: Pong's points end nothing early."""
    # ale-py comes with the rl extra: imported here, so `genlab` itself runs without it
    import ale_py

    gym.register_envs(ale_py)
    env = gym.make(ENV_ID, obs_type="rgb", max_episode_steps=max_steps)
    rng = np.random.default_rng(seed)
    try:
        screen, _ = env.reset(seed=seed)
        frames, actions, rewards, dones, where = [], [], [], [], []
        for _ in range(max_steps):
            frame = preprocess(screen)
            frames.append(frame)
            where.append(positions(screen))
            move = rng.integers(-1, 2, 1) if policy is None else policy(frame)
            move = np.asarray(move, np.float32).reshape(1)
            screen, reward, terminated, truncated, _ = env.step(MOVES[float(move[0])])
            actions.append(move)
            rewards.append(reward)
            dones.append(terminated)
            if terminated or truncated:
                break
        frames.append(preprocess(screen))
        where.append(positions(screen))
    finally:
        env.close()
    labels = {k: np.stack([w[k] for w in where]) for k in COLOURS}
    return Episode(np.stack(frames), np.stack(actions), np.asarray(rewards, np.float32),
                   np.asarray(dones, bool), labels)  # fmt: skip
