"""The training loop's own options, shared by every model. Model options live beside each model."""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field

from genlab.errors import ConfigError

UNIONS = (typing.Union, types.UnionType)
PRECISIONS = ("auto", "fp32", "bf16")
SCHEDULES = ("constant", "cosine", "linear")
SCHEDULE_ENDS = ("steps", "budget")


def doc(text: str, **kw):
    """A dataclass field whose help text the CLI shows (`--help`) and the run config keeps."""
    return field(metadata={"help": text}, **kw)


@dataclass(frozen=True)
class TrainConfig:
    steps: int | None = doc(
        "total optimizer steps to reach (a resumed run continues to it)", default=None
    )
    minutes: float | None = doc("wall-clock budget for this invocation, in minutes", default=None)
    frames: int | None = doc(
        "agents: total environment frames to reach (converted to steps)", default=None
    )
    batch_size: int = doc("global batch size (split across processes with --nproc)", default=128)
    lr: float = doc("peak learning rate (Adam)", default=1e-3)
    weight_decay: float = doc("AdamW weight decay", default=0.0)
    warmup_steps: int = doc("linear learning-rate warmup from 0 over this many steps", default=0)
    schedule: str = doc(
        "after warmup: 'constant', 'cosine' or 'linear' (both decay to 0 at --steps, or see "
        "--schedule-ends)",
        default="constant",
    )
    schedule_ends: str = doc(
        "where a decaying schedule reaches 0: 'steps' (at --steps) or 'budget' (at --steps or "
        "at the end of --minutes, whichever comes first: its progress is the larger of the two "
        "fractions, so the rate then follows the host's speed and a resumed run is not "
        "step-for-step the same)",
        default="steps",
    )
    grad_clip: float | None = doc("clip the global gradient norm to this value", default=None)
    ema_decay: float | None = doc(
        "keep an exponential moving average of weights (e.g. 0.999), updated after every "
        "step; evaluation and sampling use it",
        default=None,
    )
    checkpoint_every: int = doc(
        "save a checkpoint every N steps (also at the end and on Ctrl-C)", default=1000
    )
    log_every: int = doc("write metrics every N steps", default=50)
    seed: int = doc("random seed: same seed and threads give the same losses", default=0)
    threads: int | None = doc(
        "torch CPU threads per process; None = cores / processes", default=None
    )
    precision: str = doc(
        "'auto' (bf16 where the model's bf16 path is checked and the CPU has AMX, "
        "else fp32; the choice is printed and kept in config.json), 'fp32', or 'bf16': "
        "convolutions and matrix products in bfloat16 (autocast; weights, gradients, optimizer "
        "state and the loss stay float32). A model without a checked bf16 path refuses 'bf16' "
        "and names those that have one. Evaluation and sampling are always float32",
        default="auto",
    )
    compile: bool = doc(
        "compile the model's loss with torch.compile (inductor, C++ on the CPU); the compile "
        "time is printed. Pays back only on long runs: see docs/usage.md",
        default=False,
    )
    profile: int | None = doc(
        "record N training steps (after one warm-up step) with torch's profiler: writes "
        "<run>/profile/trace.json and prints the operations that took the most time",
        default=None,
    )
    init_from: str | None = doc(
        "fine-tune: start from the weights of this run of the same model (its EMA weights if "
        "kept); steps, optimizer and schedule start afresh",
        default=None,
    )

    def __post_init__(self) -> None:
        if self.schedule not in SCHEDULES:
            raise ConfigError(f"schedule must be one of {', '.join(SCHEDULES)}, "
                              f"got '{self.schedule}'")  # fmt: skip
        if self.precision not in PRECISIONS:
            raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}, "
                              f"got '{self.precision}'")  # fmt: skip
        if self.frames is not None and self.steps is not None:
            raise ConfigError("give --steps or --frames, not both")
        if self.schedule_ends not in SCHEDULE_ENDS:
            raise ConfigError(f"schedule_ends must be one of {', '.join(SCHEDULE_ENDS)}, "
                              f"got '{self.schedule_ends}'")  # fmt: skip
        timed = self.schedule_ends == "budget" and self.minutes is not None
        if self.schedule != "constant" and self.steps is None and not timed:
            raise ConfigError(f"the {self.schedule} schedule needs a step budget (--steps), or "
                              "--minutes with --schedule-ends budget")  # fmt: skip
        check_finite_fields(self)
        positive = {"steps": self.steps, "frames": self.frames, "threads": self.threads,
                    "batch_size": self.batch_size, "checkpoint_every": self.checkpoint_every,
                    "log_every": self.log_every, "minutes": self.minutes,
                    "grad_clip": self.grad_clip, "profile": self.profile}  # fmt: skip
        for name, value in positive.items():
            if value is not None and value <= 0:
                raise ConfigError(f"--{name.replace('_', '-')} must be > 0, got {value}")
        for name in ("lr", "weight_decay", "warmup_steps", "seed"):
            if getattr(self, name) < 0:
                raise ConfigError(f"--{name.replace('_', '-')} must be >= 0, got "
                                  f"{getattr(self, name)}")  # fmt: skip
        if self.ema_decay is not None and not 0 < self.ema_decay < 1:
            raise ConfigError(f"--ema-decay must be between 0 and 1, got {self.ema_decay}")


def check_finite_fields(options: object) -> None:
    """ConfigError naming the first float field of a dataclass that is NaN or infinite (NaN
    would also never equal itself when a resumed run's options are compared)."""
    for f in dataclasses.fields(options):
        value = getattr(options, f.name)
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"--{f.name.replace('_', '-')} must be a finite number, got {value}")


def check_types(options: object, where: object = None) -> None:
    """ConfigError naming the first field of a dataclass whose value is not of its declared type
    (an int is a float; None only where the type allows it). `where` names the source."""
    hints = typing.get_type_hints(type(options))
    for f in dataclasses.fields(options):
        value, hint = getattr(options, f.name), hints[f.name]
        allowed = typing.get_args(hint) if typing.get_origin(hint) in UNIONS else (hint,)
        allowed = tuple(a for a in allowed if isinstance(a, type))
        if float in allowed:
            allowed += (int,)
        if allowed and (not isinstance(value, allowed) or (bool not in allowed and
                                                           isinstance(value, bool))):  # fmt: skip
            kind = " or ".join(a.__name__ for a in allowed)
            prefix = f"{where}: " if where is not None else ""
            raise ConfigError(f"{prefix}{f.name} should be {kind}, got {value!r}")


def lr_factor(step: int, cfg: TrainConfig, time_fraction: float = 0.0) -> float:
    """Multiplier of the peak learning rate at `step` (0-based): linear warmup, then the schedule.
    Its progress counts steps after warmup, out of --steps; with `schedule_ends='budget'` it is
    at least `time_fraction`, the part of the time budget spent (see `fit`)."""
    if step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    if cfg.schedule == "constant":
        return 1.0
    progress = 0.0
    if cfg.steps is not None:
        progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    if cfg.schedule_ends == "budget":
        progress = max(progress, time_fraction)
    progress = min(1.0, progress)
    if cfg.schedule == "linear":  # Reptile's meta step, annealed to 0
        return 1.0 - progress
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def parse_overrides(items: list[str], options_cls: type) -> dict:
    """['key=value', ...] -> {key: value}, each typed like the dataclass field's default
    (bools from 1/true/yes). ConfigError names an unknown key or a malformed item."""
    fields = {f.name: f for f in dataclasses.fields(options_cls)}
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or key not in fields:
            raise ConfigError(f"'{item}': expected KEY=VALUE with KEY one of {', '.join(fields)}")
        kind = type(fields[key].default)
        try:
            out[key] = value.lower() in ("1", "true", "yes") if kind is bool else kind(value)
        except ValueError as e:
            raise ConfigError(f"'{item}': {key} takes a {kind.__name__}") from e
    return out
