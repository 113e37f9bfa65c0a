"""CarRacing-v3 episodes for stage 1, `collect` (`games.collect`): a random ("brownian") policy,
stored compactly (Pong's and Doom's are played by `pong.play` and `doom.play`, stored the same way).

Each episode is one file `episode_{i:05d}.npz` (written atomically, so a killed collection
resumes where it stopped and never leaves a half file):

    frames  (T+1, 64, 64, 3) uint8 the observation before each action and the one after the
                                   last: rows 0-83 of the 96x96 screen (the dashboard cropped
                                   off), resized to 64x64
    actions (T, 3) float32         steer in [-1, 1], gas and brake in [0, 1]
    rewards (T,) float32           the reward that followed each action
    dones   (T,) bool              True on the last step if the episode terminated (not cut)

Episode i is played with seed `seed * 100_003 + i`, so any episode can be replayed exactly.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from PIL import Image

from genlab.data.episodes import Episode
from genlab.errors import DataError

ENV_ID = "CarRacing-v3"
FRAME = 64
CROP_ROWS = 84  # CarRacing's bottom 12 rows are the dashboard


def preprocess(screen: np.ndarray) -> np.ndarray:
    """A CarRacing screen (96, 96, 3) uint8 -> (64, 64, 3) uint8 (dashboard cropped, resized)."""
    if screen.shape != (96, 96, 3) or screen.dtype != np.uint8:
        raise DataError(f"expected a (96, 96, 3) uint8 CarRacing screen, got {screen.shape} "
                        f"{screen.dtype}")  # fmt: skip
    image = Image.fromarray(screen[:CROP_ROWS]).resize((FRAME, FRAME), Image.Resampling.BILINEAR)
    return np.array(image)  # writable: torch.from_numpy takes it as is


def brownian_actions(rng: np.random.Generator, steps: int, sigma: float = 0.3) -> np.ndarray:
    """A random policy with momentum: each action is the last plus N(0, sigma) noise, clipped to
    CarRacing's box, so the car actually drives about instead of jittering in place.
    Returns (steps, 3) float32."""
    low, high = np.array([-1.0, 0.0, 0.0]), np.array([1.0, 1.0, 1.0])
    out = np.empty((steps, 3), np.float32)
    a = np.array([0.0, 0.5, 0.0])
    for t in range(steps):
        a = np.clip(a + rng.normal(0.0, sigma, 3), low, high)
        out[t] = a
    return out


def play(seed: int, max_steps: int = 1000, policy=None, patience: int = 0) -> Episode:
    """One episode of CarRacing with `policy(observation frame (64, 64, 3)) -> action` or, if
    None, brownian actions drawn from `seed`. `patience` > 0 ends it (not terminated) after that
    many steps in a row without positive reward."""
    # Box2D and pygame come with the rl extra: imported here, so `genlab` itself runs without it
    from genlab.agents.world_models.road import draw_road_fast

    env = gym.make(ENV_ID, max_episode_steps=max_steps)
    draw_road_fast(env)  # the same pixels, ~1.8x the steps/s (benchmarks/carracing_render.py)
    try:
        screen, _ = env.reset(seed=seed)
        random_actions = brownian_actions(np.random.default_rng(seed), max_steps)
        frames, actions, rewards, dones = [], [], [], []
        since_reward = 0
        for t in range(max_steps):
            frame = preprocess(screen)
            action = random_actions[t] if policy is None else policy(frame)
            screen, reward, terminated, truncated, _ = env.step(action)
            frames.append(frame)
            actions.append(action)
            rewards.append(reward)
            dones.append(terminated)
            since_reward = 0 if reward > 0 else since_reward + 1
            if terminated or truncated or (patience and since_reward >= patience):
                break
        frames.append(preprocess(screen))  # what the last action led to
    finally:
        env.close()
    return Episode(np.stack(frames), np.asarray(actions, np.float32),
                   np.asarray(rewards, np.float32), np.asarray(dones, bool))  # fmt: skip
