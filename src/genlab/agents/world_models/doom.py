"""Doom Take Cover episodes for World Models (Ha & Schmidhuber 2018, section 4), stored as the
CarRacing ones are (`genlab.data.episodes`):

    frames  (T+1, 64, 64, 3) uint8 the observation before each action and the one after the last
    actions (T, 1) float32         the move: -1 left, 0 stay, +1 right
    rewards (T,) float32           1 per step survived
    dones   (T,) bool              True on the step the agent died (not when cut at max_steps)

The collection policy is random: a uniformly drawn move held for 1 to 8 steps (uniform), so the
agent crosses the room instead of shaking in place and the frames cover where it can stand.
`play(seed, ...)` is exactly repeatable. One game per process is kept and reused (starting
VizDoom takes about 0.3 s; an episode about 0.05 s). Each game is a separate `vizdoom` process
that outlives its Python owner unless closed (it ignores SIGTERM), so the games of a process are
closed when it ends: at exit, when a pool worker finishes, and when a pool is terminated.
"""

from __future__ import annotations

import atexit
import multiprocessing as mp
import os
import signal
import threading
from multiprocessing import util

import numpy as np

from genlab.data.episodes import Episode

ENV = "vizdoom:TakeCover"
MAX_STEPS = 2100  # the paper's episode limit
MOVES = {-1.0: 0, 1.0: 1, 0.0: 2}  # move value -> the environment's action (left, right, stay)
HOLD = 8  # the random policy holds a move for 1 .. HOLD steps
_ENVS: dict = {}
_GAMES_LOCK = threading.RLock()  # _ENVS and the games in it
_ENDING_WATCHED: int | None = None  # the process whose ending closes its games


def environment(max_steps: int):
    """This process's Take Cover, cut at `max_steps` (made once per limit)."""
    if max_steps not in _ENVS:
        from genlab.envs.registry import make_env  # here: the registry imports every family

        if not _ENVS:
            close_games_when_this_process_ends()
        with _GAMES_LOCK:  # a SIGTERM meanwhile waits until the game is here to be closed
            _ENVS[max_steps] = make_env(ENV, max_steps=max_steps)
    return _ENVS[max_steps]


def close_games() -> None:
    """Close this process's games (their vizdoom processes end). Each is closed before it is
    forgotten, under a lock, so that the SIGTERM watcher never exits with one half-closed."""
    with _GAMES_LOCK:
        while _ENVS:
            key = next(iter(_ENVS))
            _ENVS[key].close()  # a second close() of a closed game does nothing
            del _ENVS[key]


def close_games_when_this_process_ends() -> None:
    """Once per process (a forked child is a new one), however often its games are closed and
    made again."""
    global _ENDING_WATCHED
    if os.getpid() == _ENDING_WATCHED:
        return
    _ENDING_WATCHED = os.getpid()
    atexit.register(close_games)  # a main process
    util.Finalize(None, close_games, exitpriority=10)  # a pool worker that finishes
    if mp.parent_process() is not None and threading.current_thread() is threading.main_thread():
        _close_games_on_sigterm()  # a pool worker that Pool.terminate() ends


def _close_games_on_sigterm() -> None:
    """Pool.terminate() sends each worker SIGTERM. A Python signal handler runs only when the
    main thread next runs Python code, which an idle worker, blocked on its task queue, may
    never do (a signal that lands just before it blocks is not seen), and Pool.terminate()
    then waits for it forever. So the signal's number goes to a pipe (`signal.set_wakeup_fd`,
    written by the C-level handler whichever thread takes the signal), and a thread of its own
    waits on it: it closes the games and ends the process."""
    read, write = os.pipe()
    os.set_blocking(write, False)
    signal.set_wakeup_fd(write)
    signal.signal(signal.SIGTERM, lambda signum, frame: None)  # the watcher does the work
    threading.Thread(target=_watch, args=(read,), name="close-games-on-sigterm",
                     daemon=True).start()  # fmt: skip


def _watch(fd: int) -> None:
    while signal.SIGTERM not in os.read(fd, 64):  # the numbers of signals taken, as bytes
        pass
    close_games()
    os._exit(128 + signal.SIGTERM)


def random_moves(rng: np.random.Generator, steps: int) -> np.ndarray:
    """(steps, 1) float32 moves in {-1, 0, 1}, each drawn uniformly and held 1..HOLD steps."""
    out, t = np.empty((steps, 1), np.float32), 0
    while t < steps:
        hold = int(rng.integers(1, HOLD + 1))
        out[t : t + hold] = rng.integers(-1, 2)
        t += hold
    return out


def play(seed: int, max_steps: int = MAX_STEPS, policy=None, patience: int = 0) -> Episode:
    """One episode with `policy(frame (64, 64, 3) uint8) -> move (1,)` or, if None, random moves
    drawn from `seed`. `patience` is CarRacing's (steps without reward); every Doom step pays,
    so it never cuts an episode here."""
    env = environment(max_steps)
    obs, _ = env.reset(seed=seed)
    moves = random_moves(np.random.default_rng(seed), max_steps) if policy is None else None
    frames, actions, rewards, dones = [], [], [], []
    for t in range(max_steps):
        frame = obs.transpose(1, 2, 0)  # (64, 64, 3)
        move = moves[t] if policy is None else np.asarray(policy(frame), np.float32).reshape(1)
        obs, reward, terminated, truncated, _ = env.step(MOVES[float(move[0])])
        frames.append(frame)
        actions.append(move)
        rewards.append(reward)
        dones.append(terminated)
        if terminated or truncated:
            break
    frames.append(obs.transpose(1, 2, 0))
    return Episode(np.stack(frames), np.stack(actions).astype(np.float32),
                   np.asarray(rewards, np.float32), np.asarray(dones, bool))  # fmt: skip
