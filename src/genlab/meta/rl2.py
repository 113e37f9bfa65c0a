"""RL² (Duan et al. 2016; Wang et al. 2016): a recurrent policy trained across tasks, whose
hidden state does the learning within an episode. Trained with A2C (advantage actor-critic with
GAE) in the shared loop: one step = a batch of whole episodes on freshly drawn tasks.

At each step t the core sees [observation_t, one-hot previous action, previous reward, fraction
of the episode left] and outputs action logits and a value. The hidden state is reset only
between episodes (never between pulls or trials), so information carries across them.

With `--core snail` the core is SNAIL (Mishra et al. 2018): temporal convolutions and causal
attention over the whole episode so far (TC 32, TC 32, attention with keys and values of 32, as
the paper's bandit agent; `--snail-filters` narrows the two TC blocks).
It acts one step at a time from its caches, then learns from the episode's inputs in one
causal pass over the sequence, which gives the same outputs (tested).
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from genlab.agents.returns import gae
from genlab.data.batches import seeded
from genlab.errors import ConfigError
from genlab.meta import bandits as bandit_baselines
from genlab.meta import tabular
from genlab.meta.episodes import Bandits, Harlow, TabularMDPs
from genlab.metrics.stats import mean_ci95
from genlab.nn.snail import SNAILStack
from genlab.train.config import doc
from genlab.viz.curves import raster_figure, save_figure
from genlab.viz.images import PALETTE

CORES = ("gru", "lstm", "snail")


def snail_plan(filters: int) -> tuple:
    """SNAIL's bandit/MDP core (Mishra et al. 2018, appendix): two TC blocks of `filters` per
    dense layer (the paper: 32), then causal attention with keys and values of 32."""
    return (("tc", filters), ("tc", filters), ("attention", 32, 32))


@dataclass(frozen=True)
class AgentConfig:
    """What every RL² agent shares; the task's own options come with its config below."""

    TASK: ClassVar[str] = ""
    hidden: int = doc("recurrent core width (gru, lstm)", default=128)
    core: str = doc(f"core: {', '.join(CORES)}", default="gru")
    snail_filters: int = doc(
        "filters per dense layer of SNAIL's two TC blocks (Mishra et al.: 32; fewer is cheaper)",
        default=32,
    )
    gamma: float = doc("discount", default=0.95)
    gae_lambda: float = doc("GAE lambda", default=0.9)
    entropy_weight: float = doc(
        "entropy bonus weight (0.01 let 100-pull policies collapse onto one arm)", default=0.05
    )
    value_weight: float = doc("value loss weight", default=0.5)

    def __post_init__(self) -> None:
        if self.core not in CORES:
            raise ConfigError(f"core must be one of {', '.join(CORES)}, got '{self.core}'")
        if self.snail_filters < 1:
            raise ConfigError(f"snail_filters must be at least 1, got {self.snail_filters}")

    def family(self) -> Bandits | Harlow:
        raise NotImplementedError


@dataclass(frozen=True)
class RL2Config(AgentConfig):
    TASK: ClassVar[str] = "bandits"
    arms: int = doc("arms per task", default=5)
    pulls: int = doc("pulls per episode", default=100)

    def family(self) -> Bandits:
        return Bandits(self.arms, self.pulls)


@dataclass(frozen=True)
class HarlowConfig(AgentConfig):
    TASK: ClassVar[str] = "harlow"
    core: str = doc(f"core: {', '.join(CORES)}", default="lstm")
    gamma: float = doc("discount", default=0.9)
    gae_lambda: float = doc("GAE lambda", default=1.0)
    trials: int = doc("trials per episode", default=6)
    object_dim: int = doc("size of each object's random feature vector", default=8)

    def family(self) -> Harlow:
        return Harlow(self.trials, self.object_dim)


@dataclass(frozen=True)
class MDPConfig(AgentConfig):
    TASK: ClassVar[str] = "mdps"
    gamma: float = doc("discount", default=0.99)
    gae_lambda: float = doc("GAE lambda", default=0.95)
    states: int = doc("states per MDP", default=10)
    actions: int = doc("actions per state", default=5)
    horizon: int = doc("steps per episode", default=10)
    episodes: int = doc("episodes per trial in the same MDP (Duan et al.: 10 to 100)",
                        default=10)  # fmt: skip

    def family(self) -> TabularMDPs:
        return TabularMDPs(self.states, self.actions, self.horizon, self.episodes)


class RL2Agent(nn.Module):
    def __init__(self, cfg: AgentConfig):
        super().__init__()
        self.cfg = cfg
        fam = cfg.family()
        self.n_actions = fam.n_actions
        inp = fam.obs_dim + fam.n_actions + 2
        if cfg.core == "snail":
            self.snail = SNAILStack(inp, fam.length, snail_plan(cfg.snail_filters))
            width = self.snail.out_channels
        else:
            self.cell = (nn.GRUCell if cfg.core == "gru" else nn.LSTMCell)(inp, cfg.hidden)
            width = cfg.hidden
        self.policy = nn.Linear(width, fam.n_actions)
        self.value = nn.Linear(width, 1)
        # The head predicts values per unit of reward rate: returns reach ~1 / (1 - gamma) (or
        # the episode length) and would otherwise dominate the clipped gradient of the shared core.
        self.value_scale = min(1.0 / (1.0 - cfg.gamma), float(fam.length))

    def core_step(self, n: int):
        """x (n, inputs) at step t -> the core's features (n, width), state kept in a closure
        (the recurrent state, or SNAIL's caches), starting from an episode's beginning."""
        if self.cfg.core == "snail":
            state: dict = {}
            return lambda x: self.snail.step(x, state)
        h = torch.zeros(n, self.cfg.hidden)
        state = [h if self.cfg.core == "gru" else (h, torch.zeros_like(h))]

        def step(x: torch.Tensor) -> torch.Tensor:
            state[0] = self.cell(x, state[0])
            return state[0] if self.cfg.core == "gru" else state[0][0]

        return step

    def rollout(self, batch: dict[str, torch.Tensor], greedy: bool = False) -> dict:
        """Play every episode of `batch` to the end. Returns time-major (T, B) tensors: log_probs,
        entropies, values, rewards, actions. SNAIL plays without gradients, then, if gradients
        are on, reads the episode's inputs in one pass for the outputs (the same numbers, with
        gradients)."""
        fam = self.cfg.family()
        n = next(iter(batch.values())).shape[0]
        core = self.core_step(n)
        prev_a = torch.zeros(n, self.n_actions)
        prev_r = torch.zeros(n, 1)
        inputs, features, actions, rewards = [], [], [], []
        snail = self.cfg.core == "snail"
        with torch.no_grad() if snail else contextlib.nullcontext():
            for t in range(fam.length):
                left = torch.full((n, 1), 1.0 - t / fam.length)
                inputs.append(torch.cat([fam.observe(batch, t), prev_a, prev_r, left], 1))
                features.append(core(inputs[-1]))
                logits = self.policy(features[-1])
                a = (logits.argmax(-1) if greedy else
                     torch.multinomial(F.softmax(logits, -1), 1).squeeze(1))  # fmt: skip
                r = fam.reward(batch, t, a)
                actions.append(a)
                rewards.append(r)
                prev_a = F.one_hot(a, self.n_actions).float()
                prev_r = r[:, None]
        if snail and torch.is_grad_enabled():  # the same outputs as acting gave, with gradients
            h = self.snail(torch.stack(inputs, 1)).transpose(0, 1)
        else:
            h = torch.stack(features)
        logp_all = F.log_softmax(self.policy(h), -1)  # (T, B, A)
        a = torch.stack(actions)
        return {"log_probs": logp_all.gather(2, a[..., None]).squeeze(2),
                "entropies": -(logp_all.exp() * logp_all).sum(-1),
                "values": self.value(h).squeeze(-1) * self.value_scale,
                "rewards": torch.stack(rewards), "actions": a}  # fmt: skip

    def loss(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """A2C: policy gradient with GAE advantages (normalised), value regression, entropy."""
        c = self.cfg
        ro = self.rollout(batch)
        rewards, values = ro["rewards"], ro["values"]
        discounts = torch.full_like(rewards, c.gamma)
        discounts[-1] = 0.0  # the episode ends after its last step
        target, adv = gae(
            rewards, values.detach(), discounts, torch.zeros_like(rewards[0]), c.gae_lambda
        )
        norm_adv = (adv - adv.mean()) / (adv.std() + 1e-8)
        pg = -(ro["log_probs"] * norm_adv).mean()
        v_loss = 0.5 * ((values - target) / self.value_scale).square().mean()
        ent = ro["entropies"].mean()
        return {
            "loss": pg + c.value_weight * v_loss - c.entropy_weight * ent,
            "episode_reward": rewards.sum(0).mean(),
            "entropy": ent,
            "value_loss": v_loss,
        }


class EpisodeBatches:
    """The loop's BatchSource: `tasks` freshly drawn episodes per step, a pure function of
    (seed, step)."""

    def __init__(self, cfg: AgentConfig, tasks: int, seed: int):
        self.family, self.tasks, self.seed = cfg.family(), tasks, seed

    def batch(self, step: int) -> dict[str, torch.Tensor]:
        return self.family.sample(self.tasks, seeded(self.seed, step))


EVAL_SEED = 8765


def agent_rewards(model: RL2Agent, batch: dict, seed: int) -> dict:
    """The agent's mean total reward per episode of `batch` sampling its actions (seeded), with
    its 95% interval, and taking the likeliest action at every step."""
    torch.manual_seed(seed)
    reward, ci95 = mean_ci95(model.rollout(batch)["rewards"].sum(0))
    greedy, _ = mean_ci95(model.rollout(batch, greedy=True)["rewards"].sum(0))
    return {"reward": reward, "ci95": ci95, "reward_greedy": greedy}


@torch.no_grad()
def evaluate_bandits(
    model: RL2Agent, options: RL2Config, data, tasks: int = 1000, seed: int = 0, **_
) -> dict:
    """Mean total reward per episode (and 95% CI) of the agent, sampling its actions, on `tasks`
    test tasks, beside every baseline on the same tasks (their own action randomness), and UCB1
    and epsilon-greedy with their parameter tuned on as many other tasks (`tuned`: the values
    chosen)."""
    fam = options.family()
    batch = fam.sample(tasks, seeded(EVAL_SEED, seed))
    t0 = time.monotonic()
    out = agent_rewards(model, batch, seed)
    baselines, out["tuned"] = baseline_rewards(fam, batch, seed)
    out["baselines"] = baselines
    out["fraction_of_gittins"] = out["reward"] / baselines["gittins"]
    return {
        **out,
        "arms": fam.arms,
        "pulls": fam.pulls,
        "tasks": tasks,
        "seconds": round(time.monotonic() - t0, 1),
    }


def baseline_rewards(fam: Bandits, batch: dict, seed: int = 0) -> tuple[dict, dict]:
    """Every baseline's mean total reward on the episodes of `batch` (their own randomness
    seeded from `seed`), and UCB1 and epsilon-greedy with their parameter tuned on as many other
    episodes: ({name: reward}, {tuned name: value chosen})."""
    baselines, chosen = {}, {}
    for name, make in bandit_baselines.BASELINES.items():
        total = bandit_baselines.run_policy(make(fam.pulls), fam, batch, seeded(EVAL_SEED, seed, 1))
        baselines[name] = round(total.mean().item(), 3)
    tuning = fam.sample(len(batch["probs"]), seeded(EVAL_SEED, seed, 3))
    for name, (make, values) in bandit_baselines.TUNED.items():
        chosen[name], _ = bandit_baselines.tune(make, values, fam, tuning, seed)
        total = bandit_baselines.run_policy(make(chosen[name]), fam, batch,
                                            seeded(EVAL_SEED, seed, 1))  # fmt: skip
        baselines[f"{name}_tuned"] = round(total.mean().item(), 3)
    return baselines, chosen


@torch.no_grad()
def evaluate_mdps(model: RL2Agent, options: MDPConfig, data, tasks: int = 1000, seed: int = 0,
                  **_) -> dict:  # fmt: skip
    """Mean total reward per trial (and 95% CI) of the agent on `tasks` test trials, beside
    random play, the posterior-mean planner, posterior sampling (PSRL) and the optimal policy of
    each true MDP on the same trials."""
    fam = options.family()
    batch = fam.sample(tasks, seeded(EVAL_SEED, seed))
    t0 = time.monotonic()
    out = agent_rewards(model, batch, seed)
    out["baselines"] = {k: round(tabular.play(k, fam, batch, seed).mean().item(), 3)
                        for k in tabular.PLANNERS}  # fmt: skip
    out["fraction_of_optimal"] = out["reward"] / out["baselines"]["optimal"]
    return {**out, "states": fam.states, "actions": fam.actions, "horizon": fam.horizon,
            "episodes": fam.episodes, "tasks": tasks,
            "seconds": round(time.monotonic() - t0, 1)}  # fmt: skip


@torch.no_grad()
def evaluate_harlow(
    model: RL2Agent, options: HarlowConfig, data, tasks: int = 1000, seed: int = 0, **_
) -> dict:
    """Fraction of correct choices on each trial of `tasks` new episodes (new objects)."""
    fam = options.family()
    batch = fam.sample(tasks, seeded(EVAL_SEED, seed))
    torch.manual_seed(seed)
    correct = model.rollout(batch)["rewards"]  # (trials, tasks)
    per_trial = correct.mean(1)
    _, ci = mean_ci95(correct[1])
    return {
        "trial2_accuracy": per_trial[1].item(),
        "ci95": ci,
        "accuracy_by_trial": [round(v, 4) for v in per_trial.tolist()],
        "tasks": tasks,
        "trials": fam.trials,
    }


@torch.no_grad()
def action_raster(model: RL2Agent, options: AgentConfig, data, out, seed: int = 0) -> list:
    """choices.png: 16 test episodes (rows) x their steps (columns). Bandits: the colour of the
    arm pulled, bright if it is the task's best arm and dim if not. Harlow: green where the
    choice was rewarded, red where not; MDPs: from red to green as the reward rises within the
    trial. Learning within an episode shows as rows settling."""
    fam = options.family()
    batch = fam.sample(16, seeded(EVAL_SEED, seed, 2))
    torch.manual_seed(seed)
    ro = model.rollout(batch)
    a, r = ro["actions"].T, ro["rewards"].T  # (16, T)
    palette = torch.tensor(PALETTE, dtype=torch.float32) / 255
    if isinstance(fam, Bandits):
        colours = palette[a % len(PALETTE)]  # (16, T, 3)
        best = batch["probs"].argmax(1, keepdim=True) == a  # (16, T)
        colours = colours * torch.where(best, 1.0, 0.35)[..., None]
        legend = {f"arm {k + 1}": tuple(palette[k % len(PALETTE)].tolist())
                  for k in range(fam.arms)} | {"dim: not the best arm": (0.3, 0.3, 0.3)}  # fmt: skip
        what = "arm pulled"
    else:  # Harlow: rewards 0 or 1; MDPs: each trial's rewards scaled to [0, 1]
        low, high = r.min(1, keepdim=True).values, r.max(1, keepdim=True).values
        r = (r - low) / (high - low).clamp_min(1e-8)
        colours = torch.stack([1 - r, r, torch.zeros_like(r)], -1) * 0.8
        legend, what = {"rewarded (highest)": (0, 0.8, 0), "not (lowest)": (0.8, 0, 0)}, "reward"
    path = save_figure(raster_figure(colours.numpy(), "step", "test episode",
                                     f"{what}, 16 test episodes", legend),
                       out / "choices.png")  # fmt: skip
    return [path]
