"""The model work behind the studio's pages: small functions from a loaded run and plain
inputs to JSON-ready results (images as PNG data URLs, audio as WAV data URLs).

Each function takes the model and options that `genlab.tasks.runs.load_run` gives and never
reads a run directory itself; `genlab.studio.library` loads runs and guards them.
"""

from __future__ import annotations

import base64
import inspect
import io
import secrets
import threading
import time

import numpy as np
import torch

from genlab.agents.impala.evaluation import play as play_agent
from genlab.agents.spiral import paint_episode
from genlab.agents.world_models.dream import DreamEnv
from genlab.agents.world_models.rollouts import play as play_car
from genlab.agents.world_models.vision import v_input
from genlab.envs.paint import ink, to_gcode, to_json, to_svg
from genlab.envs.paint_tasks import PaintTask
from genlab.errors import ConfigError
from genlab.meta import bandits as bandit_policies
from genlab.meta.live import FewShotClassifier, prepare
from genlab.nn.latent import attribute_vector, lerp_at, plane, principal_axes, slerp_at
from genlab.studio.guard import Missing
from genlab.tasks.audio import generate_clips
from genlab.tasks.images import model_input, test_images
from genlab.viz.audio import audio_figure, wav_bytes
from genlab.viz.curves import png_bytes
from genlab.viz.images import gif_bytes, grid

MAX_SAMPLES = 64
MAX_SPEECH = 10
MAX_SPEECH_SECONDS = 2.0
MAX_GRID = 15  # cells per side of the latent plane
DRAWING_SIDE = 28 * 4  # a drawing is sent as a square of at most this many pixels a side
MAX_DRAWINGS = 100  # support drawings in one few-shot request
TRAIN_VIEW_SEED = 0  # binarization of the training images shown as a drawing's neighbours
DRAWING_SEED = 0  # binarization of a drawing, for models that binarize their input
PATHS = {"linear": lerp_at, "spherical": slerp_at}


def png(images: torch.Tensor, nrow: int | None = None, scale: int = 2) -> str:
    """(N, C, H, W) in [0, 1] -> a PNG data URL of their grid (no gaps for a single image)."""
    picture = grid(images, nrow, pad=0 if len(images) == 1 else 2, scale=scale)
    return data_url(picture_bytes(picture), "image/png")


def picture_bytes(picture) -> bytes:
    buf = io.BytesIO()
    picture.save(buf, format="PNG")
    return buf.getvalue()


def data_url(raw: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(raw).decode()}"


def timed(fn):
    """Call fn(); return (its value, milliseconds it took)."""
    t0 = time.perf_counter()
    value = fn()
    return value, round(1000 * (time.perf_counter() - t0), 1)


def in_range(name: str, value, lo, hi):
    if not lo <= value <= hi:
        raise ConfigError(f"{name} must be between {lo} and {hi}, got {value}")
    return value


# --- samples --------------------------------------------------------------------------------------
def sampling_kwargs(model, temperature: float | None, label: int | None) -> dict:
    """The keyword arguments of `model.sample` the request may set: a temperature (flows,
    PixelCNN) and a class (class-conditional models)."""
    params = inspect.signature(model.sample).parameters
    kw = {}
    if temperature is not None:
        if "temperature" not in params:
            raise ConfigError(f"this model ({type(model).__name__}) has no sampling temperature")
        kw["temperature"] = in_range("temperature", float(temperature), 0.0, 2.0)
    if label is not None:
        n_classes = getattr(model.cfg, "n_classes", 0)
        if "y" not in params or not getattr(model.cfg, "conditional", False):
            raise ConfigError("this model is not class-conditional")
        kw["y"] = int(in_range("class", int(label), 0, n_classes - 1))
    return kw


@torch.no_grad()
def sample_images(model, options, n: int, seed: int, temperature=None, label=None) -> dict:
    in_range("n", n, 1, MAX_SAMPLES)
    kw = sampling_kwargs(model, temperature, label)
    if "y" in kw:
        kw["y"] = torch.full((n,), kw["y"], dtype=torch.long)
    g = torch.Generator().manual_seed(seed)
    images, ms = timed(lambda: model.sample(n, generator=g, **kw))
    return {"image": png(images), "ms": ms, "n": n}


@torch.no_grad()
def sample_speech(model, options, n: int, seed: int, temperature: float = 1.0) -> dict:
    """n clips (`options.sample_seconds` each) as WAV data URLs with titles, and a picture of
    their waveforms and spectrograms."""
    in_range("n", n, 1, MAX_SPEECH)
    in_range("temperature", temperature, 0.0, 2.0)
    in_range("seconds", options.sample_seconds, 0.05, MAX_SPEECH_SECONDS)
    (clips, titles), ms = timed(lambda: generate_clips(model, options, n, seed, temperature))
    audio = [{"title": title, "src": data_url(wav_bytes(clip), "audio/wav")}
             for clip, title in zip(clips, titles, strict=True)]  # fmt: skip
    picture = png_bytes(audio_figure(clips, titles))
    return {"clips": audio, "image": data_url(picture, "image/png"), "ms": ms, "n": n}


# --- the latent explorer --------------------------------------------------------------------------
class LatentSpace:
    """A latent model with the codes of some test images (for picking ends, a plane through
    the codes' two main directions, and class-mean attribute vectors)."""

    def __init__(self, model, x: torch.Tensor, labels: torch.Tensor, names: tuple[str, ...]):
        self.model, self.x, self.labels, self.names = model, x, labels, names  # x: (N, C, H, W)
        with torch.no_grad():
            self.z = torch.cat([model.embed(b) for b in x.split(500)])  # (N, Z)
        self.axes = principal_axes(self.z)  # (2, Z)

    def index(self, i: int) -> int:
        return int(in_range("image index", int(i), 0, len(self.x) - 1))

    def thumbnails(self, count: int = 24) -> dict:
        count = min(count, len(self.x))
        return {"image": png(self.x[:count].float().clamp(0, 1), nrow=count), "count": count,
                "labels": [self.names[int(y)] for y in self.labels[:count]]}  # fmt: skip

    @torch.no_grad()
    def between(self, a: int, b: int, t: float, path: str = "linear") -> dict:
        if path not in PATHS:
            raise ConfigError(f"path must be one of {', '.join(PATHS)}, got '{path}'")
        z0, z1 = self.z[self.index(a)], self.z[self.index(b)]
        t = in_range("t", float(t), 0.0, 1.0)
        image, ms = timed(lambda: self.model.mean_image(PATHS[path](z0, z1, torch.tensor([t]))))
        return {"image": png(image, scale=6), "ms": ms}

    @torch.no_grad()
    def grid(self, center: int, x: float, y: float, size: int = 7, span: float = 3.0) -> dict:
        """A size x size grid on the plane of the two main directions, centred on image
        `center`'s code moved by (x, y) standard deviations; `span` wide."""
        size = int(in_range("size", int(size), 2, MAX_GRID))
        span = in_range("span", float(span), 0.1, 20.0)
        x, y = in_range("x", float(x), -20, 20), in_range("y", float(y), -20, 20)
        steps = torch.linspace(-span / 2, span / 2, size)
        points = plane(self.z[self.index(center)], self.axes, x + steps, y - steps)  # (S, S, Z)
        image, ms = timed(lambda: self.model.mean_image(points.flatten(0, 1)))
        return {"image": png(image, nrow=size), "ms": ms}

    @torch.no_grad()
    def attribute(self, i: int, src: int, dst: int, strength: float) -> dict:
        """Image i's code plus `strength` times (mean code of class dst - of class src)."""
        strength = in_range("strength", float(strength), -3.0, 3.0)
        try:
            vec = attribute_vector(self.z, self.labels, int(src), int(dst))
        except ValueError as e:
            raise ConfigError(str(e)) from None
        z = self.z[self.index(i)] + strength * vec
        image, ms = timed(lambda: self.model.mean_image(z[None]))
        return {"image": png(image, scale=6), "ms": ms}


def latent_space(model, options, data, count: int = 2000, split: str = "test") -> LatentSpace:
    """A latent model with the codes of the first `count` images of `split` ("test", or
    "train": the images a drawing's neighbours are looked for among)."""
    if split == "train":
        x, _ = model_input(options, data.train_x[:count], TRAIN_VIEW_SEED)
        return LatentSpace(model, x, data.train_y[:count], data.label_names)
    x, _ = test_images(options, data)
    return LatentSpace(model, x[:count], data.test_y[:count], data.label_names)


# --- drawings -------------------------------------------------------------------------------------
def drawing(values) -> np.ndarray:
    """A drawing sent by the page: a square list of rows of numbers in [0, 1] (ink = 1), at
    most DRAWING_SIDE a side; ConfigError naming what is wrong otherwise."""
    try:
        a = np.asarray(values, dtype=np.float32)
    except (TypeError, ValueError):
        raise ConfigError("a drawing must be a square list of rows of numbers") from None
    if a.ndim != 2 or a.shape[0] != a.shape[1] or not 8 <= a.shape[0] <= DRAWING_SIDE:
        raise ConfigError(f"a drawing must be square, 8 to {DRAWING_SIDE} pixels a side; "
                          f"got shape {a.shape}")  # fmt: skip
    if not np.isfinite(a).all() or a.min() < 0 or a.max() > 1:
        raise ConfigError("a drawing's values must lie in [0, 1]")
    return a


def as_input(options, picture: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """A drawing -> ((1, 1, 28, 28) ink in [0, 1], the same as the model reads its data:
    `model_input`, binarized with DRAWING_SEED where the model binarizes)."""
    x = prepare([picture])
    return x, model_input(options, (x * 255).round().to(torch.uint8), DRAWING_SEED)[0]


@torch.no_grad()
def classify(model, options, picture: np.ndarray) -> dict:
    x, seen = as_input(options, picture)
    probs, ms = timed(lambda: model(seen).softmax(-1)[0])
    return {"probabilities": [round(p, 4) for p in probs.tolist()],
            "label": int(probs.argmax()), "input": png(x, scale=4), "ms": ms}  # fmt: skip


@torch.no_grad()
def reconstruct(space: LatentSpace, options, picture: np.ndarray, k: int = 8) -> dict:
    """A latent model's reconstruction of the drawing and the k images of `space` (training
    images, on the Draw page) whose codes lie nearest the drawing's."""
    _, seen = as_input(options, picture)
    z = space.model.embed(seen)  # (1, Z)
    nearest = (space.z - z).square().sum(1).topk(k, largest=False).indices
    return {"reconstruction": png(space.model.mean_image(z), scale=4),
            "nearest": png(space.x[nearest].float().clamp(0, 1), nrow=k)}  # fmt: skip


def few_shot(model, support: list, labels: list[int], query: list) -> dict:
    """Adapt a few-shot learner to drawn symbols and classify the query drawings."""
    if not 1 <= len(support) <= MAX_DRAWINGS or not 1 <= len(query) <= MAX_DRAWINGS:
        raise ConfigError(f"send 1 to {MAX_DRAWINGS} support and query drawings")
    clf = FewShotClassifier(model)
    _, ms = timed(lambda: clf.fit([drawing(d) for d in support], labels))
    probs, query_ms = timed(lambda: clf.predict_proba([drawing(d) for d in query]))
    return {"probabilities": [[round(p, 4) for p in row] for row in probs.tolist()],
            "labels": probs.argmax(-1).tolist(), "adapt_ms": ms, "query_ms": query_ms,
            "ways": model.cfg.ways}  # fmt: skip


def test_image(images: torch.Tensor, i: int) -> np.ndarray:
    """Image i of (N, H, W) uint8 ink as a drawing: (H, W) floats in [0, 1], ink = 1."""
    i = int(in_range("test image", int(i), 0, len(images) - 1))
    return images[i].numpy().astype(np.float32) / 255.0


# --- painting -------------------------------------------------------------------------------------
@torch.no_grad()
def paint(model, options, target: np.ndarray | None, seed: int = 0, greedy: bool = False) -> dict:
    """A SPIRAL agent paints once (its strokes sampled from `seed`, or `greedy`): every canvas
    as the strokes land, the program as JSON, SVG and G-code, and, given a target, the mean
    squared ink difference."""
    task = options.tasks[0].split(":", 1)[1]
    targets = None
    if target is not None:
        ink_28 = prepare([target])[0, 0].mul(255).round().to(torch.uint8).numpy()  # (28, 28)
        targets = ink_28[None]
    env = PaintTask(task, targets=targets) if "-target" in task else PaintTask(task)
    (frames, program), ms = timed(
        lambda: paint_episode(model.eval(), env, seed, torch.Generator().manual_seed(seed), greedy)
    )
    canvas = env.cfg.canvas
    out = {"frames": [png(v_input(f[None]), scale=3) for f in frames],
           "json": to_json(program, canvas), "svg": to_svg(program, canvas),
           "gcode": to_gcode(program, canvas), "strokes": len(program), "ms": ms,
           "conditional": "-target" in task}  # fmt: skip
    if "-target" in task and target is not None:
        out["mse"] = float(np.mean((ink(frames[-1]) - ink(env.env.target)) ** 2))
        out["target"] = png(v_input(env.env.target[None]))
    return out


# --- agents ---------------------------------------------------------------------------------------
@torch.no_grad()
def episode(model, options, task: int, seed: int) -> dict:
    """An IMPALA or A2C agent plays one episode of its task `task` (of `options.tasks`): the
    return, the length, and the episode as an animated GIF (at most GIF_MAX_STEPS frames)."""
    task = int(in_range("task", int(task), 0, len(options.tasks) - 1))
    (returns, frames), ms = timed(lambda: play_agent(model.eval(), task, 1, seed, frames=True))
    return {"gif": data_url(gif_bytes(frames[0]), "image/gif"), "return": float(returns[0]),
            "frames": len(frames[0]), "env": options.tasks[task], "ms": ms}  # fmt: skip


class Dreams:
    """Drive inside a world model: each dream is a `DreamEnv` (M at temperature tau, started
    from the latent of a real first frame) whose frames V draws; the page steers it with the
    keyboard. The last MAX_DREAMS dreams are kept; a forgotten one must be started again."""

    MAX_DREAMS = 8

    def __init__(self):
        self._dreams: dict[str, tuple[DreamEnv, object]] = {}
        self._lock = threading.Lock()  # one step at a time: a dream is one LSTM state

    def start(self, m, vae, initial_z, tau: float, seed: int) -> dict:
        env = DreamEnv(m, initial_z, in_range("tau", float(tau), 0.0, 2.0), max_steps=1000)
        env.reset(seed=int(seed))
        key = secrets.token_hex(8)
        with self._lock:
            self._dreams[key] = (env, vae)
            while len(self._dreams) > self.MAX_DREAMS:
                self._dreams.pop(next(iter(self._dreams)))
            return {"dream": key, **self._frame(env, vae, 0.0, False)}

    @torch.no_grad()
    def step(self, key: str, action, tau: float) -> dict:
        a = np.asarray(action, dtype=np.float32)
        if a.shape != (3,) or not np.isfinite(a).all():
            raise ConfigError("an action is [steer -1..1, gas 0..1, brake 0..1]")
        tau = in_range("tau", float(tau), 0.0, 2.0)
        with self._lock:
            if key not in self._dreams:
                raise Missing(f"no dream '{key}' (it ended or was forgotten); start another")
            env, vae = self._dreams[key]
            env.tau = tau
            _, reward, terminated, truncated, _ = env.step(a)
            if terminated or truncated:
                self._dreams.pop(key)
            return self._frame(env, vae, reward, terminated or truncated)

    @staticmethod
    def _frame(env, vae, reward: float, done: bool) -> dict:
        image = vae.mean_image(env.z)  # z (1, Z) -> (1, 3, 64, 64)
        return {"frame": png(image, scale=4), "reward": round(float(reward), 3),
                "done": bool(done), "t": env.t, "tau": env.tau}  # fmt: skip


MAX_CAR_STEPS = 300


@torch.no_grad()
def real_v_and_dream(m, vae, seed: int, steps: int, tau: float) -> dict:
    """World Models side by side: a real CarRacing episode under brownian random actions
    (left), V's reconstruction of each frame (middle), and M's dream (right): started from V's
    code of the first real frame and fed the same actions, open loop, at temperature tau. One
    animated GIF; the dream holds its last frame if M ends it early."""
    steps = int(in_range("steps", int(steps), 1, MAX_CAR_STEPS))
    tau = in_range("tau", float(tau), 0.0, 2.0)
    (ep, t_play) = timed(lambda: play_car(int(seed), max_steps=steps))
    x = v_input(ep.frames)  # (T + 1, 3, 64, 64)
    recon = vae.mean_image(vae.embed(x))
    dream = DreamEnv(m, vae.embed(x[:1]).numpy(), tau, max_steps=steps)
    dream.reset(seed=int(seed))
    imagined, ended = [vae.mean_image(dream.z)], None
    for t, action in enumerate(ep.actions):
        if ended is None:
            _, _, terminated, truncated, _ = dream.step(action)
            ended = t + 1 if terminated else None
        imagined.append(vae.mean_image(dream.z) if ended is None else imagined[-1])
    panels = torch.cat([x, recon, torch.cat(imagined)], dim=3)  # (T + 1, 3, 64, 192)
    frames = [
        (f.permute(1, 2, 0).clamp(0, 1).numpy() * 255).round().astype(np.uint8) for f in panels
    ]  # fmt: skip  (RGB uint8, as the GIF takes them)
    return {"gif": data_url(gif_bytes(frames), "image/gif"), "steps": len(ep.actions),
            "real_return": round(float(ep.rewards.sum()), 1), "dream_ended_at": ended,
            "ms": t_play}  # fmt: skip


# --- bandits -------------------------------------------------------------------------------------
@torch.no_grad()
def bandit(model, options, seed: int, pulls: list[int]) -> dict:
    """One Bernoulli bandit episode (fixed by `seed`) played three ways on the same draws: the
    user's `pulls` so far (reward r_t = u_t < p[arm_t], as the agents are paid), and when the
    user has played the whole episode, the RL² agent's greedy play and Gittins' index policy,
    with the arms' probabilities revealed."""
    fam = options.family()
    if not 0 <= len(pulls) <= fam.pulls or any(not 0 <= a < fam.arms for a in pulls):
        raise ConfigError(f"pulls must be up to {fam.pulls} arms, each in 0..{fam.arms - 1}")
    batch = fam.sample(1, torch.Generator().manual_seed(int(seed)))
    mine = [int(fam.reward(batch, t, torch.tensor([a])).item()) for t, a in enumerate(pulls)]
    out = {"arms": fam.arms, "length": fam.pulls, "rewards": mine, "total": sum(mine)}
    if len(pulls) < fam.pulls:
        return out
    agent = model.rollout(batch, greedy=True)
    steps: list = []
    index_policy = bandit_policies.gittins(fam.pulls)  # its table is computed once per horizon
    bandit_policies.run_policy(index_policy, fam, batch, torch.Generator().manual_seed(0), steps)
    return {**out, "probs": [round(p, 3) for p in batch["probs"][0].tolist()],
            "agent": {"arms": agent["actions"][:, 0].tolist(),
                      "rewards": agent["rewards"][:, 0].int().tolist(),
                      "total": int(agent["rewards"].sum())},
            "gittins": {"arms": [int(a[0]) for a, _ in steps],
                        "rewards": [int(r[0]) for _, r in steps],
                        "total": int(sum(r[0] for _, r in steps))}}  # fmt: skip
