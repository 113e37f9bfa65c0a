"""Stage 3's data: the collected episodes encoded by V, and random windows of them for M.

Every frame is stored as V's posterior (mean, log variance); a batch draws z ~ q(z | frame)
afresh, as the paper does, so M never sees the same latent twice. Encodings are cached in the V
run (`latents-step{N}.pt`, rebuilt when V trains on or the episodes change).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from genlab.agents.world_models.rollouts import (
    carracing_root,
    episode_files,
    is_test_episode,
    load_episode,
)
from genlab.agents.world_models.vision import v_input
from genlab.data.batches import seeded
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
        x = v_input(ep.frames)  # (T + 1, 3, 64, 64)
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


def load_latents(vae_run: str, data_dir: str | None, progress: bool = True) -> LatentEpisodes:
    """The collected episodes encoded by the V of run `vae_run` (cached in that run)."""
    from genlab.runs import load_run  # the model registry imports this module

    if not vae_run or not (Path(vae_run) / "config.json").is_file():
        raise ConfigError(f"M needs --vae RUN, a trained `genlab train vae --data carracing` run; "
                          f"'{vae_run}' is not one")  # fmt: skip
    entry, options, vae, config = load_run(Path(vae_run))
    if entry.name != "vae" or config["data"] != "carracing":
        raise ConfigError(
            f"'{vae_run}' is a {entry.name} on {config['data']}, not a vae on carracing"
        )
    files = episode_files(carracing_root(data_dir))
    cache = Path(vae_run) / f"latents-step{config['step']}.pt"
    if cache.is_file():
        saved = torch.load(cache, weights_only=True)
        if saved["files"] == [f.name for f in files]:
            return LatentEpisodes(**saved["latents"])
    latents = encode_episodes(vae, files, progress=progress)
    tmp = cache.with_name(cache.name + ".partial")
    torch.save({"files": [f.name for f in files], "latents": latents.__dict__}, tmp)
    os.replace(tmp, cache)
    return latents


class SequenceBatches:
    """The loop's BatchSource for M: `batch_size` windows of `length` steps from random episodes
    and starts, z drawn from V's posterior; a pure function of (seed, step). A `from_start`
    share of the windows begins at its episode's first step: every dream starts there, from
    M's zero state, and CarRacing's opening frames (the camera zooming in) are unlike the rest;
    with uniform starts M met them about once in 900 windows, and its done head, which never
    sees an episode end in random rollouts, predicted one there (p 0.83 at the first step).

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
        slack = (end - start - L).clamp(min=0)
        s = start + (torch.rand(self.batch_size, generator=g) * (slack + 1)).long().clamp(max=slack)
        s = torch.where(torch.rand(self.batch_size, generator=g) < self.from_start, start, s)
        t = s[:, None] + torch.arange(L + 1)  # (B, L+1) step indices, one past the window
        mask = t[:, :L] < end[:, None]
        frames = torch.minimum(t + k[:, None], (end + k)[:, None])  # frame rows, at most the last
        t = torch.minimum(t[:, :L], end[:, None] - 1)  # steps past the end repeat the last (masked)
        eps = torch.randn(*frames.shape, d.mu.shape[1], generator=g)
        z = d.mu[frames] + eps * torch.exp(0.5 * d.logvar[frames])
        return {"z": z, "a": d.actions[t], "r": d.rewards[t], "d": d.dones[t], "mask": mask}


# --- the registry's hooks for `genlab train mdnrnn` ----------------------------------------------
def load_memory_data(
    data: str, data_dir: str | None, options
) -> tuple[LatentEpisodes, LatentEpisodes]:
    """(train, test) encoded episodes for M."""
    if data != "carracing":
        raise ConfigError(f"M trains on carracing rollouts, not '{data}'")
    latents = load_latents(options.vae, data_dir)
    if latents.mu.shape[1] != options.latent_dim:
        raise ConfigError(f"V's latents have {latents.mu.shape[1]} dimensions; set --latent-dim "
                          f"{latents.mu.shape[1]} (got {options.latent_dim})")  # fmt: skip
    return latents.split()


def memory_batches(options, data, batch_size: int, seed: int, **_) -> SequenceBatches:
    return SequenceBatches(data[0], options.seq_len, batch_size, seed)


@torch.no_grad()
def evaluate_memory(model, options, data, n: int | None = None, seed: int = 0, **_) -> dict:
    """M on the held-out episodes, each whole, z drawn from V's posterior with a fixed seed:
    z NLL (nats per step), reward squared error and done cross-entropy, averaged over steps."""
    test: LatentEpisodes = data[1]
    k = len(test) if n is None else min(n, len(test))
    if k == 0:
        raise DataError("no held-out episodes to evaluate M on")
    g = torch.Generator().manual_seed(seed)
    totals, steps = {}, 0
    for e in range(k):
        one = test.select([i == e for i in range(len(test))])
        T = int(one.offsets[-1])
        z = one.mu + torch.randn(one.mu.shape, generator=g) * torch.exp(0.5 * one.logvar)
        batch = {"z": z[None], "a": one.actions[None], "r": one.rewards[None],
                 "d": one.dones[None], "mask": torch.ones(1, T, dtype=torch.bool)}  # fmt: skip
        for name, v in model.loss(batch).items():
            totals[name] = totals.get(name, 0.0) + float(v) * T
        steps += T
    return {**{name: v / steps for name, v in totals.items()}, "episodes": k, "steps": steps}
