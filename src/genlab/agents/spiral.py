"""SPIRAL (Ganin et al. 2018): an IMPALA painter rewarded by a WGAN-GP critic.

The agent is genlab's IMPALA network on the painting task (`paint:mnist`: the `paint_map`
torso, an LSTM, autoregressive heads whose two location heads read the torso's map of the
canvas), trained with V-trace. Its reward is 0 at every step but the last, where it is the
critic's score of the finished canvas. The critic
is genlab's WGAN-GP critic (`models.gan.Critic`) on 28x28 ink images: the canvas' ink
(1 - luminance) area-averaged from 64x64, against real training images of the same dataset. In
conditional tasks (`paint:mnist-target`) it judges (canvas, target) pairs against (target,
target) pairs, so the best painting is the target itself. It learns from the batch's finished
canvases plus a replay of earlier ones (so it does not chase the current policy alone), one
critic update per learner step before the policy's.

With `--reward l2` on a conditional task (`paint:mnist-target-l2`) the reward is instead minus
the mean squared difference of canvas and target ink at 28x28, times `l2_scale` (so that it is
of order 1 like the critic's and the entropy bonus does not drown it), for comparison.

With `--shaping`, every stroke is rewarded by how much it raised the canvas' score (the critic's,
or minus the 28x28 L2 distance to the target): r_t = score(o_{t+1}) - score(o_t). The rewards of
an episode sum to score(finished) - score(blank), so with gamma 1 the return differs from the
final-step reward by a constant of the first observation: potential-based shaping (Ng et al.
1999), which leaves the best policy unchanged and tells each stroke what it did.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from genlab.agents.impala.agent import ImpalaAgent
from genlab.agents.impala.config import ImpalaConfig
from genlab.agents.impala.evaluation import play
from genlab.agents.impala.learning import actor_critic_loss
from genlab.agents.impala.networks import TORSOS
from genlab.agents.trajectory import Trajectory
from genlab.data.images import image_splits
from genlab.envs.paint import to_gcode, to_json, to_svg
from genlab.envs.paint_tasks import PaintTask
from genlab.errors import ConfigError
from genlab.models.gan import Critic, WGANGPConfig, gradient_penalty
from genlab.train.config import TrainConfig, doc
from genlab.train.loop import (
    StepFn,
    TrainState,
    adam,
    autocast,
    gradient_step,
    make_state,
    optimizer_update,
)
from genlab.viz.images import save_grid, write_gif

REWARDS = ("critic", "l2")


@dataclass(frozen=True)
class SpiralConfig(ImpalaConfig):
    """IMPALA's options with painting defaults, plus the critic's."""

    env: str = doc("painting task: paint:mnist, paint:omniglot (critic), "
                   "paint:mnist-target-l2 (--reward l2)", default="paint:mnist")  # fmt: skip
    torso: str = doc(f"network torso: one of {', '.join(TORSOS)} (paint_map: the location "
                     "heads read a map of the canvas; paint: they decode a vector)",
                     default="paint_map")  # fmt: skip
    lstm: int = doc("LSTM core width", default=128)
    clip_rewards: bool = doc("clip rewards to [-1, 1] (critic scores are not)", default=False)
    gamma: float = doc("discount (episodes are 20 strokes)", default=1.0)
    entropy_weight: float = doc("entropy bonus weight", default=0.002)
    reward: str = doc(f"where rewards come from: {', '.join(REWARDS)}", default="critic")
    critic_channels: int = doc("channels of the critic's first conv", default=32)
    critic_lr: float = doc("critic learning rate (Adam, betas 0, 0.9)", default=1e-4)
    gp_weight: float = doc("gradient penalty weight", default=10.0)
    replay: int = doc("finished canvases kept for the critic", default=2000)
    l2_scale: float = doc("reward l2: minus this times the mean squared ink difference",
                          default=20.0)  # fmt: skip
    shaping: bool = doc("reward every stroke by the rise in the canvas' score (same best "
                        "policy, denser credit)", default=False)  # fmt: skip

    keep_final_obs: ClassVar[bool] = True  # trajectories carry the finished canvases

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.reward not in REWARDS:
            raise ConfigError(f"reward must be one of {REWARDS}, got '{self.reward}'")
        if not all(t.startswith("paint:") for t in self.tasks):
            raise ConfigError(f"SPIRAL paints: --env must be paint:..., got '{self.env}'")
        l2 = [t.endswith("-l2") for t in self.tasks]
        if (self.reward == "l2") != all(l2) or any(l2) != all(l2):
            raise ConfigError("--reward l2 goes with paint:DATASET-target-l2 tasks, and the "
                              "critic with the others")  # fmt: skip


def canvas_ink(planes: torch.Tensor, plane: int = 0) -> torch.Tensor:
    """Observation planes (..., C, 64, 64) uint8 (plane 0: the canvas' luminance, 1 in
    conditional tasks: the target's) -> ink images (N, 1, 28, 28) in [0, 1] (1 = black ink),
    area-averaged like a 28x28 scan."""
    ink = 1.0 - planes[..., plane, :, :].reshape(-1, 1, *planes.shape[-2:]).float() / 255.0
    return F.interpolate(ink, size=(28, 28), mode="area")


class SpiralAgent(ImpalaAgent):
    def __init__(self, cfg: SpiralConfig):
        super().__init__(cfg)
        self.conditional = "-target" in cfg.tasks[0]
        pairs = 2 if self.conditional else 1
        self.critic = Critic(WGANGPConfig(channels=cfg.critic_channels), in_channels=pairs)
        self.register_buffer("replay", torch.zeros(cfg.replay, pairs, 28, 28), persistent=False)
        self.replay_filled, self.replay_next = 0, 0
        self._real: torch.Tensor | None = None

    @property
    def images_from(self) -> str:
        """The image dataset the painter is judged against (mnist, omniglot)."""
        return self.cfg.tasks[0].split(":", 1)[1].split("-")[0]

    def real_images(self) -> torch.Tensor:
        """The dataset's training images (N, 1, 28, 28) in [0, 1], loaded once."""
        if self._real is None:
            self._real = image_splits(self.images_from).train_x.float() / 255.0
        return self._real

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Ink images (N, 1, 28, 28) in [0, 1] -> the canvas encoder's features (N, 256): the
        torso's vector for the observation of a finished episode whose canvas (and, in
        conditional tasks, target) is the image, scaled up to the canvas size, with the pen on
        no cell. The representation `genlab probe` reads."""
        size = self.net.spec.obs_shape[-1]
        luminance = 1.0 - F.interpolate(x.float(), size=(size, size), mode="bilinear")
        planes = [luminance] * (2 if self.conditional else 1)
        planes += [torch.ones_like(luminance), torch.zeros_like(luminance)]  # done, no pen
        h = self.net.torso(torch.cat(planes, 1))  # the planes as core() scales them, in [0, 1]
        return (h[0] if isinstance(h, tuple) else h).float()

    def remember(self, fakes: torch.Tensor) -> None:
        """Add finished canvases (N, 1, 28, 28) to the ring buffer."""
        for f in fakes[-len(self.replay) :]:
            self.replay[self.replay_next] = f
            self.replay_next = (self.replay_next + 1) % len(self.replay)
            self.replay_filled = min(self.replay_filled + 1, len(self.replay))

    def finished(self, batch: Trajectory) -> tuple[torch.Tensor, torch.Tensor]:
        """The batch's finished canvases as ink images (N, 1, 28, 28), or (canvas, target)
        pairs (N, 2, 28, 28) in conditional tasks, and where they are (T, B) bool."""
        ended = batch.terminated
        final = batch.final_obs[ended]
        if self.conditional:
            return torch.cat([canvas_ink(final, 0), canvas_ink(final, 1)], 1), ended
        return canvas_ink(final), ended

    def critic_loss(self, batch: Trajectory, generator=None) -> dict[str, torch.Tensor]:
        """WGAN-GP on real images against the batch's finished canvases and as many replayed."""
        fakes, _ = self.finished(batch)
        if len(fakes) == 0:
            return {}
        if self.replay_filled:
            pick = torch.randint(self.replay_filled, (len(fakes),), generator=generator)
            fakes = torch.cat([fakes, self.replay[pick]])
        if self.conditional:  # real pairs: each target with itself
            real = fakes[:, 1:].repeat(1, 2, 1, 1)
        else:
            real = self.real_images()
            real = real[torch.randint(len(real), (len(fakes),), generator=generator)]
        wasserstein = self.critic(real).mean() - self.critic(fakes).mean()
        gp = gradient_penalty(self.critic, real, fakes, torch.rand(len(fakes), generator=generator))
        return {"critic_loss": -wasserstein + self.cfg.gp_weight * gp,
                "wasserstein": wasserstein.detach(), "gp": gp.detach()}  # fmt: skip

    @torch.no_grad()
    def score(self, planes: torch.Tensor) -> torch.Tensor:
        """Observations (..., C, 64, 64) uint8 -> what the reward scores them (...): the
        critic's score of the canvas (paired with its target in conditional tasks), or with
        reward "l2" minus `l2_scale` times the mean squared difference of canvas and target ink
        at 28x28."""
        if self.cfg.reward == "l2":
            difference = canvas_ink(planes, 0) - canvas_ink(planes, 1)
            mse = difference.square().mean((1, 2, 3)).reshape(planes.shape[:-3])
            return -self.cfg.l2_scale * mse
        pairs = [canvas_ink(planes, 0)] + ([canvas_ink(planes, 1)] if self.conditional else [])
        return self.critic(torch.cat(pairs, 1)).reshape(planes.shape[:-3])

    def rewards(self, batch: Trajectory) -> torch.Tensor:
        """The rewards (T, B) V-trace learns from: with shaping, each step's rise in score;
        else the score of each finished canvas at its last step."""
        ended = batch.terminated | batch.truncated
        if self.cfg.shaping:
            before = self.score(batch.obs)  # (T+1, B)
            after = before[1:].clone()
            if ended.any():  # o_{t+1} is already the next episode's: score the last canvas
                after[ended] = self.score(batch.final_obs[ended])
            return after - before[:-1]
        reward = torch.zeros_like(batch.reward)
        if ended.any():
            reward[ended] = self.score(batch.final_obs[ended])
        return reward

    def loss(self, batch: Trajectory) -> dict[str, torch.Tensor]:
        """The policy's V-trace loss with `rewards(batch)`, and the mean score of the finished
        canvases (final_reward)."""
        rewarded = dataclasses.replace(batch, reward=self.rewards(batch))
        metrics = actor_critic_loss(self.net, rewarded, self.cfg)
        ended = batch.terminated
        if ended.any():
            metrics["final_reward"] = self.score(batch.final_obs[ended]).mean()
        return metrics


def make_spiral_state(model: SpiralAgent, cfg: TrainConfig) -> TrainState:
    """Adam for the policy at --lr; Adam(0, 0.9) for the critic at its own rate (WGAN-GP's)."""
    policy = [p for n, p in model.named_parameters() if not n.startswith("critic.")]
    return make_state(model, cfg, {
        "main": adam(policy, cfg.lr),
        "critic": adam(model.critic.parameters(), model.cfg.critic_lr, betas=(0.0, 0.9)),
    })  # fmt: skip


def spiral_step(cfg: TrainConfig) -> StepFn:
    """One critic update on the batch's finished canvases (and the replay), then the policy's
    gradient step with the updated critic's rewards; the canvases then join the replay. Both
    forward passes at `cfg.precision` (the critic's scores come out float32)."""
    policy_step = gradient_step(cfg.grad_clip, cfg.precision)

    def step(state: TrainState, batch: Trajectory) -> dict[str, torch.Tensor]:
        model: SpiralAgent = state.model
        out: dict[str, torch.Tensor] = {}
        if model.cfg.reward == "critic":
            with autocast(cfg.precision):
                critic = model.critic_loss(batch)
            if critic:
                optimizer_update(state, "critic", critic["critic_loss"])
                state.optimizers["critic"].zero_grad(set_to_none=True)  # out of the policy's clip
                state.schedulers["critic"].step()
                out.update({k: v.detach() for k, v in critic.items()})
        out.update(policy_step(state, batch))
        if model.cfg.reward == "critic":
            model.remember(model.finished(batch)[0])
        return out

    return step


@torch.no_grad()
def evaluate_painter(model: SpiralAgent, options: SpiralConfig, data, episodes: int = 30,
                     seed: int = 0, **_) -> dict:  # fmt: skip
    """`genlab eval`: over `episodes` episodes played once, the return (the environment's; 0 for
    critic-rewarded tasks), the mean ink per pixel of the finished canvases and, for
    unconditional tasks, the critic's mean score of them (a conditional critic would also need
    each target, which the rendered canvas does not show)."""
    model.eval()
    returns, frames = play(model, 0, episodes, seed, frames=True)
    finals = torch.from_numpy(np.stack([f[-1] for f in frames]))  # (N, 64, 64, 3) RGB
    ink = canvas_ink(finals.float().mean(-1, keepdim=True).round().byte().permute(0, 3, 1, 2))
    out = {"episodes": episodes, "mean_return": float(np.mean(returns)),
           "std_return": float(np.std(returns)), "ink_per_pixel": ink.mean().item()}  # fmt: skip
    if not model.conditional:
        out["critic_score"] = model.critic(ink).mean().item()
    return out


@torch.no_grad()
def paint_episode(model: SpiralAgent, env, seed: int, generator: torch.Generator,
                  greedy: bool = False):  # fmt: skip
    """One episode of `env` (a PaintTask) with the agent sampling its strokes (or, `greedy`,
    taking each head's likeliest choice in turn): the RGB canvas after every stroke (the first
    is blank) and the program."""
    net = model.net
    obs, _ = env.reset(seed=seed)
    state, first, frames, done = net.initial_state(1), torch.ones(1, 1, dtype=torch.bool), [], False
    frames.append(env.render())
    while not done:
        features, state = net.core(torch.from_numpy(obs)[None, None], first, state)
        action, _ = net.heads.sample(features[0], generator, greedy)
        obs, _, terminated, truncated, _ = env.step(dict(zip(net.spec.action_names,
                                                             action[0].tolist(), strict=True)))  # fmt: skip
        frames.append(env.render())
        first, done = torch.zeros(1, 1, dtype=torch.bool), terminated or truncated
    return frames, env.program()


def sample_paintings(model: SpiralAgent, options: SpiralConfig, n: int, out, seed: int = 0):
    """`genlab sample RUN --n N --out DIR`: N paintings as a grid (canvases.png), the first one
    being painted (painting.gif), and each one's program as JSON, SVG and G-code."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    env = PaintTask(options.tasks[0].split(":", 1)[1])
    g = torch.Generator().manual_seed(seed)
    finals = []
    for i in range(n):
        frames, program = paint_episode(model.eval(), env, seed + i, g)
        finals.append(frames[-1])
        if i == 0:
            write_gif(frames, out / "painting.gif", fps=4)
        canvas = env.cfg.canvas
        (out / f"program_{i}.json").write_text(to_json(program, canvas))
        (out / f"program_{i}.svg").write_text(to_svg(program, canvas))
        (out / f"program_{i}.gcode").write_text(to_gcode(program, canvas))
    images = torch.from_numpy(np.stack(finals)).permute(0, 3, 1, 2).float() / 255.0
    return save_grid(images, out / "canvases.png")
