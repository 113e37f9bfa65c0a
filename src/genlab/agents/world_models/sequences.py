"""Stage 3's data: the collected episodes encoded by V, and random windows of them for M.

Every frame is stored as V's posterior (mean, log variance); a batch draws z ~ q(z | frame)
afresh, as the paper does, so M never sees the same latent twice. (`genlab.tasks.world_models`
caches the encodings in the V run.)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from genlab.agents.world_models.vision import v_input
from genlab.data.batches import seeded
from genlab.data.episodes import is_test_episode, load_episode
from genlab.errors import ConfigError, DataError


@dataclass(frozen=True)
class LatentEpisodes:
    """Episodes concatenated: episode k's frames are rows offsets[k] + k .. offsets[k+1] + k of
    mu/logvar (T_k + 1 frames), its steps rows offsets[k] .. offsets[k+1] of the others."""

    mu: torch.Tensor  # (sum T_k + K, Z)
    logvar: torch.Tensor  # (sum T_k + K, Z)
    actions: torch.Tensor  # (sum T_k, A)
    rewards: torch.Tensor  # (sum T_k,)
    dones: torch.Tensor  # (sum T_k,) float
    offsets: torch.Tensor  # (K + 1,) long, over steps

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def select(self, keep: list[bool]) -> LatentEpisodes:
        """The episodes k with keep[k] True."""
        steps = [torch.arange(self.offsets[k], self.offsets[k + 1]) for k in range(len(self))]
        frames = [torch.arange(self.offsets[k] + k, self.offsets[k + 1] + k + 1)
                  for k in range(len(self))]  # fmt: skip
        s = torch.cat([steps[k] for k in range(len(self)) if keep[k]] or [torch.zeros(0).long()])
        f = torch.cat([frames[k] for k in range(len(self)) if keep[k]] or [torch.zeros(0).long()])
        lengths = torch.tensor(
            [len(steps[k]) for k in range(len(self)) if keep[k]], dtype=torch.long
        )
        offsets = torch.cat([torch.zeros(1, dtype=torch.long), lengths.cumsum(0)])
        return LatentEpisodes(self.mu[f], self.logvar[f], self.actions[s], self.rewards[s],
                              self.dones[s], offsets)  # fmt: skip

    def split(self) -> tuple[LatentEpisodes, LatentEpisodes]:
        """(train, test) by `is_test_episode`, the same episodes V was tested on."""
        test = [is_test_episode(k, len(self)) for k in range(len(self))]
        return self.select([not t for t in test]), self.select(test)

    def joined(self, other: LatentEpisodes) -> LatentEpisodes:
        """These episodes, then `other`'s."""
        offsets = torch.cat([self.offsets, other.offsets[1:] + self.offsets[-1]])
        return LatentEpisodes(*(torch.cat([getattr(self, f), getattr(other, f)])
                                for f in ("mu", "logvar", "actions", "rewards", "dones")),
                              offsets)  # fmt: skip

    def first_latents(self) -> torch.Tensor:
        """The posterior means of every episode's first frame, (K, Z): where dreams start."""
        return self.mu[self.offsets[:-1] + torch.arange(len(self))]


@torch.no_grad()
def encode_episodes(
    vae, files: list[Path], batch: int = 500, progress: bool = True
) -> LatentEpisodes:
    """Every frame of `files` through V's encoder. The progress bar shows on a terminal only
    (not in a log file or a benchmark's captured stderr)."""
    mus, logvars, actions, rewards, dones, lengths = [], [], [], [], [], []
    for path in tqdm(files, desc="encode", unit="episode", disable=None if progress else True):
        ep = load_episode(path)
        if ep.actions.ndim != 2:
            raise DataError(f"{path}: actions of shape {ep.actions.shape}, where M needs (T, A); "
                            "Pong episodes collected before 2026-12-06 hold ALE's action "
                            "numbers: collect them again")  # fmt: skip
        x = v_input(ep.frames)  # (T + 1, C, 64, 64)
        mu, logvar = zip(*(vae.encode(b) for b in x.split(batch)), strict=True)
        mus.append(torch.cat(mu))
        logvars.append(torch.cat(logvar))
        actions.append(torch.from_numpy(ep.actions))
        rewards.append(torch.from_numpy(ep.rewards))
        dones.append(torch.from_numpy(ep.dones).float())
        lengths.append(len(ep.actions))
    offsets = torch.cat([torch.zeros(1, dtype=torch.long), torch.tensor(lengths).cumsum(0)])
    return LatentEpisodes(torch.cat(mus), torch.cat(logvars), torch.cat(actions),
                          torch.cat(rewards), torch.cat(dones), offsets)  # fmt: skip


class SequenceBatches:
    """The loop's BatchSource for M: `batch_size` windows of `length` steps from random episodes
    and starts, z drawn from V's posterior; a pure function of (seed, step). A `from_start`
    share of the windows begins at its episode's first step: every dream starts there, from
    M's zero state, and CarRacing's opening frames (the camera zooming in) are unlike the rest;
    with uniform starts M met them about once in 900 windows, and its done head, which never
    sees an episode end in random rollouts, predicted one there (p 0.83 at the first step).
    The other windows start at any step, so they may run past the episode's end (masked): had
    they been kept inside it, an episode's last step would open only one start in T - L + 1,
    and on Doom, where that step is the death, M saw a death in 1 window of ~220 instead of 1
    in ~3 and dreamed deaths a fifth as often as they happen (2026-12-06).

    Batch: z (B, L+1, Z), a (B, L, A), r (B, L), d (B, L), mask (B, L) (False past an
    episode's end)."""

    def __init__(
        self, data: LatentEpisodes, length: int, batch_size: int, seed: int,
        from_start: float = 0.25,
    ):  # fmt: skip
        if length < 1:
            raise ConfigError(f"sequence length must be >= 1, got {length}")
        if not 0.0 <= from_start <= 1.0:
            raise ConfigError(f"from_start is a share of windows in [0, 1], got {from_start}")
        if len(data) == 0:
            raise DataError("no encoded episodes to train M on")
        self.data, self.length, self.batch_size, self.seed = data, length, batch_size, seed
        self.from_start = from_start

    def batch(self, step: int) -> dict[str, torch.Tensor]:
        g = seeded(self.seed, step)
        d, L = self.data, self.length
        k = torch.randint(len(d), (self.batch_size,), generator=g)  # (B,)
        start, end = d.offsets[k], d.offsets[k + 1]  # steps of each episode
        steps = end - start
        s = start + (torch.rand(self.batch_size, generator=g) * steps).long().clamp(max=steps - 1)
        s = torch.where(torch.rand(self.batch_size, generator=g) < self.from_start, start, s)
        t = s[:, None] + torch.arange(L + 1)  # (B, L+1) step indices, one past the window
        mask = t[:, :L] < end[:, None]
        frames = torch.minimum(t + k[:, None], (end + k)[:, None])  # frame rows, at most the last
        t = torch.minimum(t[:, :L], end[:, None] - 1)  # steps past the end repeat the last (masked)
        eps = torch.randn(*frames.shape, d.mu.shape[1], generator=g)
        z = d.mu[frames] + eps * torch.exp(0.5 * d.logvar[frames])
        return {"z": z, "a": d.actions[t], "r": d.rewards[t], "d": d.dones[t], "mask": mask}
