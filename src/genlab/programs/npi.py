"""The Neural Programmer-Interpreter (Reed & de Freitas 2016): one LSTM core that, given the pad
under its pointers and the program it is running, says what to call next (a program and three
digit arguments) or to return; a sub-program runs with a fresh core state, recursively.

    s_t = f_enc[pad](observation_t, args)            (state_dim,)   one encoder per kind of pad
    h_t = LSTM(s_t, program embedding, h_{t-1})      (hidden,)
    end_t = sigmoid((w_end + r) . h_t + b_end)       return now? (r: the running program's own
                                                     end readout, zero until trained)
    next  = argmax_j  keys_j . (f_key(h_t) + W p)    which program to call (p: the running one's
                                                     embedding; W: (K, D), see below)
    args  = argmax f_arg_i(h_t), i = 1, 2, 3         its arguments, digits 0-9

Trained on teacher traces (`genlab.programs.teachers`), each call a separate sequence (teacher
forcing). The programs RJMP and MAX have their own embedding and key tables, so they can be
learned last with everything else frozen (`freeze_core`), as the talk shows. A program's slot
in that memory holds its embedding, its key and its end readout r.

The query term W p is genlab's, not the paper's (whose f_prog sees h_t only). Without it a frozen
core could not call BUBBLESORT at all: nothing calls BUBBLESORT while the core learns, and no MAX
embedding made the 65-minute core's first call BUBBLESORT (optimised for that call alone from
five starts: 0% right, 2.6 nats or worse; random keys in its place: 0% too). Its MAX learned
BUBBLE; RJMP instead, right on 74-84% of short arrays. With W p a new embedding can move the
query in every direction of the key space (W is K x D with D > K, full rank as initialised).
Not yet enough on its own: see docs/learning-to-learn.md for a core on which MAX, so learned,
took addition's calls.

The end readout r is genlab's too: with it a new program reads the frozen core's state its own
way (a linear probe of h, learned with its embedding and key) to decide when to return, where
the shared end head reads h the way the old programs return. It was added because on core B
(docs/learning-to-learn.md) RJMP returned early or late (MAX 36/32/8/0% at 4/8/15/30 items);
on core C the early return turned out to be RSHIFT's doing instead (see `teachers.rjmp`), so
what r adds on its own is not measured.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from genlab.errors import ConfigError
from genlab.programs.pads import AdditionPad, SortArray
from genlab.programs.teachers import ID, NEW_PROGRAMS, PROGRAMS, TASKS, Segment, task_list
from genlab.train.config import doc

PAD_FEATURES = {"addition": AdditionPad.FEATURES, "array": SortArray.FEATURES}
BASE = [p for p in PROGRAMS if p not in NEW_PROGRAMS]  # ids 0 .. len(BASE)-1, then the new ones
ARG_VALUES = 10
DEFAULT_TASKS = "add,sort"


@dataclass(frozen=True)
class NPIConfig:
    tasks: str = doc("tasks learned together by one core: add, sort, max (comma-separated)",
                     default=DEFAULT_TASKS)  # fmt: skip
    hidden: int = doc("LSTM core width", default=128)
    layers: int = doc("LSTM core layers", default=2)
    state_dim: int = doc("size of each pad encoder's output", default=64)
    program_dim: int = doc("size of the program embeddings", default=32)
    key_dim: int = doc("size of the program keys", default=16)
    max_digits: int = doc("training numbers have 1 to this many digits (add)", default=10)
    max_items: int = doc("training arrays have 2 to this many digits (sort, max)", default=8)
    freeze_core: bool = doc("train only RJMP's and MAX's slots: embeddings, keys, end readouts "
                            "(with --init-from a run that learned add and sort; --lr 0.1 is what "
                            "was measured)",
                            default=False)  # fmt: skip
    new_program: str = doc("with --freeze-core: the program to add, learned alone (max); the "
                           "same as --tasks max", default="")  # fmt: skip
    sample_task: str = doc("`genlab sample`: the task to run", default="add")
    sample_input: str = doc("`genlab sample`: two numbers (add) or digits (sort, max), "
                            "comma-separated; empty: a random one", default="")  # fmt: skip

    def __post_init__(self) -> None:
        task_list(self.tasks)  # ConfigError naming an unknown task
        if min(self.hidden, self.layers, self.state_dim, self.program_dim, self.key_dim) < 1:
            raise ConfigError("hidden, layers, state_dim, program_dim and key_dim must be >= 1")
        if self.max_digits < 1 or self.max_items < 2:
            raise ConfigError("max_digits must be >= 1 and max_items >= 2")
        if self.new_program and (self.new_program != "max" or not self.freeze_core):
            raise ConfigError(f"--new-program '{self.new_program}': the program added to a "
                              "frozen core is max, with --freeze-core")  # fmt: skip
        if self.new_program and self.tasks not in (DEFAULT_TASKS, self.new_program):
            raise ConfigError(f"--new-program {self.new_program} is learned alone: drop "
                              f"--tasks {self.tasks}")  # fmt: skip
        if self.freeze_core and self.task_list != ["max"]:
            raise ConfigError("freeze_core learns MAX alone: use --new-program max")
        if self.sample_task not in TASKS:
            raise ConfigError(f"sample_task must be one of {', '.join(TASKS)}")

    @property
    def task_list(self) -> list[str]:
        return [self.new_program] if self.new_program else task_list(self.tasks)


class NPI(nn.Module):
    def __init__(self, cfg: NPIConfig):
        super().__init__()
        self.cfg = cfg
        self.encoders = nn.ModuleDict({
            name: nn.Sequential(nn.Linear(f + 3 * ARG_VALUES, cfg.state_dim), nn.ReLU(),
                                nn.Linear(cfg.state_dim, cfg.state_dim))
            for name, f in PAD_FEATURES.items()
        })  # fmt: skip
        self.embedding = nn.Parameter(0.1 * torch.randn(len(BASE), cfg.program_dim))
        self.keys = nn.Parameter(0.1 * torch.randn(len(BASE), cfg.key_dim))
        self.new_embedding = nn.Parameter(0.1 * torch.randn(len(NEW_PROGRAMS), cfg.program_dim))
        self.new_keys = nn.Parameter(0.1 * torch.randn(len(NEW_PROGRAMS), cfg.key_dim))
        self.ends = nn.Parameter(torch.zeros(len(BASE), cfg.hidden))  # r, per program
        self.new_ends = nn.Parameter(torch.zeros(len(NEW_PROGRAMS), cfg.hidden))
        self.core = nn.LSTM(cfg.state_dim + cfg.program_dim, cfg.hidden, cfg.layers,
                            batch_first=True)  # fmt: skip
        self.end_head = nn.Linear(cfg.hidden, 1)
        self.key_head = nn.Linear(cfg.hidden, cfg.key_dim)
        self.program_query = nn.Linear(cfg.program_dim, cfg.key_dim, bias=False)  # W
        self.arg_heads = nn.Linear(cfg.hidden, 3 * ARG_VALUES)
        new = ("new_embedding", "new_keys", "new_ends")
        for name, p in self.named_parameters():
            if cfg.freeze_core:  # MAX learned last: everything else as it was
                p.requires_grad_(name in new)
            elif name in new and "max" not in cfg.task_list:
                p.requires_grad_(False)  # kept for a later run that learns MAX

    def program_tables(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Every program's embedding (P, D), key (P, K) and end readout (P, H), in `PROGRAMS`
        order."""
        return (torch.cat([self.embedding, self.new_embedding]), self.program_keys(),
                torch.cat([self.ends, self.new_ends]))  # fmt: skip

    def program_keys(self) -> torch.Tensor:
        """Every program's key (P, K): all `heads` needs of the tables, at every step."""
        return torch.cat([self.keys, self.new_keys])

    def encode(self, pad: str, observations: torch.Tensor, args: torch.Tensor) -> torch.Tensor:
        """observations (..., F), the running program's args (..., 3) -> states (..., S)."""
        one_hot = F.one_hot(args, ARG_VALUES).flatten(-2).float()  # (..., 30)
        return self.encoders[pad](torch.cat([observations, one_hot], -1))

    def heads(
        self, h: torch.Tensor, program: torch.Tensor, end: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """h (..., H), the running program's embedding (..., D) and end readout (..., H) -> end
        logit (...), program logits (..., P), argument logits (..., 3, 10)."""
        query = self.key_head(h) + self.program_query(program)  # (..., K)
        return (
            self.end_head(h).squeeze(-1) + (end * h).sum(-1),
            query @ self.program_keys().T,
            self.arg_heads(h).unflatten(-1, (3, 10)),
        )

    def loss(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Teacher forcing over a batch of segments (`segment_batch`): cross-entropy of the
        return flag at every step, of the program called and its arguments at every calling
        step. Losses in nats per step; accuracies are fractions of steps.

        With `freeze_core`, the new programs' segments (MAX's and RJMP's own steps, a few
        percent of a MAX trace's) and the old programs' segments are averaged apart and the
        two means added: the old ones still hold the new keys back from the calls they must not
        win, and the new ones are no longer drowned (`benchmarks/npi.py --parts max`, 15 minutes
        on the 65-minute core: MAX right on 6/1/2/5% of problems at 4/8/15/30 items with every
        step weighted alike, 79/83/100/100% so). The accuracies reported are then the new
        programs'."""
        new = batch["program"] >= len(BASE)
        if not self.cfg.freeze_core or new.all() or not new.any():
            return self.teacher_forced(batch)
        ours, others = (self.teacher_forced(select_segments(batch, m)) for m in (new, ~new))
        return {**ours, "loss": ours["loss"] + others["loss"],
                "old_call_accuracy": others["call_accuracy"]}  # fmt: skip

    def teacher_forced(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """`loss` with every step weighted alike."""
        states = torch.zeros(*batch["calls"].shape, self.cfg.state_dim)  # (S, T, S_dim)
        for pad in PAD_FEATURES:
            rows = batch["pad"] == list(PAD_FEATURES).index(pad)
            if rows.any():
                obs = batch[f"obs_{pad}"][rows]  # (s, T, F)
                args = batch["args"][rows][:, None].expand(-1, obs.shape[1], -1)
                states[rows] = self.encode(pad, obs, args)
        embedding, _, readouts = self.program_tables()
        program = embedding[batch["program"]][:, None].expand(-1, states.shape[1], -1)
        h, _ = self.core(torch.cat([states, program], -1))  # (S, T, H)
        readout = readouts[batch["program"]][:, None]  # (S, 1, H)
        end_logit, program_logits, arg_logits = self.heads(h, program, readout)
        valid, ends = batch["valid"], batch["end"]
        calling = valid & ~ends
        end_loss = F.binary_cross_entropy_with_logits(end_logit[valid], ends[valid].float())
        program_loss = F.cross_entropy(program_logits[calling], batch["calls"][calling])
        arg_loss = F.cross_entropy(arg_logits[calling].flatten(0, 1),
                                   batch["call_args"][calling].flatten())  # fmt: skip
        with torch.no_grad():
            right_end = ((end_logit[valid] > 0) == ends[valid]).float().mean()
            right_call = program_logits[calling].argmax(-1) == batch["calls"][calling]
            right_args = (arg_logits[calling].argmax(-1) == batch["call_args"][calling]).all(-1)
        return {
            "loss": end_loss + program_loss + arg_loss,
            "end_loss": end_loss.detach(),
            "program_loss": program_loss.detach(),
            "arg_loss": arg_loss.detach(),
            "end_accuracy": right_end,
            "call_accuracy": (right_call & right_args).float().mean(),
        }


def select_segments(batch: dict[str, torch.Tensor], mask: torch.Tensor) -> dict[str, torch.Tensor]:
    """The segments `mask` (S,) bool selects of a `segment_batch`."""
    return {k: v[mask] for k, v in batch.items()}


def segment_batch(segments: list[Segment]) -> dict[str, torch.Tensor]:
    """Segments padded to the longest: obs_addition / obs_array (S, T, F) (zeros for the other
    pad's rows), pad (S,) 0 addition 1 array, program (S,), args (S, 3), calls (S, T),
    call_args (S, T, 3), end (S, T) bool (the return step), valid (S, T) bool."""
    S, T = len(segments), max(len(s) for s in segments)
    # Filled as NumPy arrays and handed to torch once: with a dozen small torch assignments per
    # segment this took about as long as tracing the problems (2026-12-07, 32 problems a step).
    out = {f"obs_{pad}": np.zeros((S, T, f), np.float32) for pad, f in PAD_FEATURES.items()}
    out.update(pad=np.zeros(S, np.int64), program=np.zeros(S, np.int64),
               args=np.zeros((S, 3), np.int64), calls=np.zeros((S, T), np.int64),
               call_args=np.zeros((S, T, 3), np.int64), end=np.zeros((S, T), bool),
               valid=np.zeros((S, T), bool))  # fmt: skip
    pads = list(PAD_FEATURES)
    for i, s in enumerate(segments):
        n = len(s)
        out[f"obs_{s.pad}"][i, :n] = s.observations
        out["pad"][i], out["program"][i], out["args"][i] = pads.index(s.pad), s.program, s.args
        out["calls"][i, :n], out["call_args"][i, :n] = s.calls, s.call_args
        out["end"][i, n - 1] = True
        out["valid"][i, :n] = True
    return {k: torch.from_numpy(v) for k, v in out.items()}


# --- the interpreter -----------------------------------------------------------------------------
@dataclass
class Called:
    """A node of an execution tree: a program, its arguments, and what it called."""

    program: str
    args: tuple[int, int, int]
    calls: list[Called]

    def lines(self, depth: int = 0) -> list[str]:
        args = str(self.args) if self.program == "ACT" else ""
        return ["  " * depth + self.program + args] + [
            line for c in self.calls for line in c.lines(depth + 1)
        ]


class NetworkCore:
    """The trained NPI as the interpreter's decision maker: a fresh LSTM state per call."""

    def __init__(self, model: NPI):
        self.model = model

    def start(self, program: str, args: tuple[int, int, int]):
        embedding, _, readouts = self.model.program_tables()
        zeros = [torch.zeros(1, self.model.cfg.hidden) for _ in range(self.model.cfg.layers)]
        return {"p": embedding[ID[program]][None], "r": readouts[ID[program]],
                "a": torch.tensor(args)[None],
                "h": zeros, "c": list(zeros)}  # fmt: skip

    def step(self, call, pad, pad_name: str) -> tuple[bool, str, tuple[int, int, int]]:
        """(return now?, program to call, its arguments) from the pad under the pointers. The
        LSTM runs one cell per layer (the same weights as `model.core`; 80x faster per step
        than calling nn.LSTM on a sequence of one)."""
        obs = torch.from_numpy(pad.observe())[None]
        x = torch.cat([self.model.encode(pad_name, obs, call["a"]), call["p"]], -1)  # (1, I)
        core = self.model.core
        for layer in range(core.num_layers):
            weights = [getattr(core, f"{k}_l{layer}") for k in
                       ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]  # fmt: skip
            call["h"][layer], call["c"][layer] = torch.lstm_cell(
                x, (call["h"][layer], call["c"][layer]), *weights
            )
            x = call["h"][layer]
        end_logit, program_logits, arg_logits = self.model.heads(x[0], call["p"][0], call["r"])
        args = tuple(int(v) for v in arg_logits.argmax(-1))
        return bool(end_logit > 0), PROGRAMS[int(program_logits.argmax())], args


class Interpreter:
    """Runs programs on a pad, recursively: a call asks `core` what to do at each step (call a
    program, or return) and runs each sub-program as a call of its own. A call gives up after
    `max_steps` steps; calls nest at most `max_depth` deep; the whole run stops after `budget`
    steps (a network that loops forever is cut off, not waited on). `core` is a NetworkCore,
    or anything with the same `start` and `step` (the tests' oracle replays teacher traces)."""

    def __init__(self, core, max_steps: int = 500, max_depth: int = 8, budget: int = 200_000,
                 on_act=None):  # fmt: skip
        """`on_act(pad)` runs after every ACT (e.g. to draw the pad)."""
        self.core = core if not isinstance(core, NPI) else NetworkCore(core)
        self.max_steps, self.max_depth, self.budget = max_steps, max_depth, budget
        self.on_act = on_act
        self.steps = 0

    @torch.no_grad()
    def run(self, pad, pad_name: str, program: str, args=(0, 0, 0), depth: int = 0) -> Called:
        node = Called(program, tuple(args), [])
        if program == "ACT":
            pad.act(tuple(args))
            if self.on_act is not None:
                self.on_act(pad)
            return node
        call = self.core.start(program, tuple(args))
        for _ in range(self.max_steps):
            self.steps += 1
            if self.steps > self.budget or depth >= self.max_depth:
                break
            end, callee, call_args = self.core.step(call, pad, pad_name)
            if end:
                break
            node.calls.append(self.run(pad, pad_name, callee, call_args, depth + 1))
        return node
