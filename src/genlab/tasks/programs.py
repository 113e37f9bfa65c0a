"""The Neural Programmer-Interpreter as an application: problems drawn afresh every step (no
dataset), evaluation by running the network's own programs on new inputs of growing length,
and an execution trace as its sample."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np
import torch

from genlab.errors import ConfigError
from genlab.programs.npi import NPI, Interpreter, NPIConfig, segment_batch
from genlab.programs.pads import AdditionPad, SortArray
from genlab.programs.seq2seq import Seq2Seq, Seq2SeqConfig, example, pad_tokens
from genlab.programs.teachers import TASKS, make_pad, number, solved, trace
from genlab.tasks.entry import ModelEntry
from genlab.viz.images import write_gif

MAX_FRAMES = 600  # of a sample's animation
EVAL_SEED = 97_531  # test problems differ from every training seed's


def eval_lengths(task: str, options: NPIConfig | Seq2SeqConfig) -> list[int]:
    """The input lengths evaluated (digits per number for add, items for sort and max): the
    training maximum and a shorter one, then far beyond it. Defaults: 3, 10, 20, 50, 100
    digits; 4, 8, 15, 30 items."""
    if task == "add":
        d = options.max_digits
        return sorted({min(3, d), d, 2 * d, 5 * d, 10 * d})
    m = options.max_items
    return sorted({min(4, m), m, 2 * m - 1, 4 * m - 2})


def load_data(data: str, data_dir: str | None, options: object) -> None:
    if data != "programs":
        raise ConfigError(f"these models learn programs (--data programs), not the dataset "
                          f"'{data}'")  # fmt: skip
    return None  # problems are drawn afresh every step


class TraceBatches:
    """The loop's BatchSource: `problems` random problems per step, the tasks taking turns,
    each of a random size up to the options' maxima, as the teacher's segments; a pure function
    of (seed, step). With `freeze_core`, MAX takes turns with addition and sorting
    (`trained_tasks`)."""

    def __init__(self, options: NPIConfig, problems: int, seed: int):
        self.options, self.problems, self.seed = options, problems, seed

    def batch(self, step: int) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng([self.seed, step])
        tasks, segments = trained_tasks(self.options), []
        for i in range(self.problems):
            task = tasks[i % len(tasks)]
            size = self.options.max_digits if task == "add" else self.options.max_items
            low = 1 if task == "add" else 2
            segments += trace(task, make_pad(task, int(rng.integers(low, size + 1)), rng))
        return segment_batch(segments)


def train_batches(options: NPIConfig, data, batch_size: int, seed: int, **_) -> TraceBatches:
    """`--batch-size` counts problems per step."""
    return TraceBatches(options, batch_size, seed)


def solve(model: NPI, task: str, pad) -> tuple[bool, int]:
    """Run the network's program for `task` on `pad`: (answer right, steps taken). Each run may
    take four times the teacher's steps (plus 100) before it is cut off."""
    teacher_steps = sum(len(s) for s in trace(task, _copy(pad)))
    interpreter = Interpreter(model, budget=4 * teacher_steps + 100)
    pad_name = "addition" if isinstance(pad, AdditionPad) else "array"
    interpreter.run(pad, pad_name, TASKS[task])
    return solved(task, pad), interpreter.steps


def _copy(pad):
    return AdditionPad(pad.a, pad.b) if isinstance(pad, AdditionPad) else SortArray(pad.initial)


def trained_tasks(options: NPIConfig) -> list[str]:
    """The tasks whose traces fill the training batches. A MAX learned with the core frozen also
    sees addition's and sorting's own traces: every old call then defends itself against the
    new keys (MAX's traces alone hold no addition step, and a frozen core on which MAX took
    addition's calls is in docs/learning-to-learn.md)."""
    return ["max", "add", "sort"] if options.freeze_core else options.task_list


def evaluated_tasks(options: NPIConfig) -> list[str]:
    """A MAX learned with the core frozen is reported beside the tasks it must not disturb."""
    return ["add", "sort", "max"] if options.freeze_core else options.task_list


@torch.no_grad()
def evaluate_npi(model: NPI, options: NPIConfig, data, n: int | None = None, seed: int = 0,
                 **_) -> dict:  # fmt: skip
    """Per task, the fraction of `n` (default 100) new problems the network's own program
    solves at each of `eval_lengths` (those up to the training maximum give "TASK_accuracy";
    the rest test generalisation), and the per-step accuracy on teacher traces of the training
    sizes."""
    model.eval()
    n, t0 = n or 100, time.monotonic()
    out: dict = {"problems_per_length": n}
    for task in evaluated_tasks(options):

        def right(length: int, rng: np.random.Generator, task=task) -> bool:
            if task == "add":  # both numbers exactly `length` digits
                pad = AdditionPad(number(length, rng), number(length, rng))
            else:
                pad = SortArray(rng.integers(0, 10, length).tolist())
            return solve(model, task, pad)[0]

        out.update(accuracy_by_length(task, options, n, seed, right))
        steps = model.loss(TraceBatches(_only(options, task), 32, EVAL_SEED + seed).batch(0))
        out[f"{task}_trace_call_accuracy"] = float(steps["call_accuracy"])
    out["seconds"] = round(time.monotonic() - t0, 1)
    return out


def accuracy_by_length(task: str, options, n: int, seed: int, right) -> dict:
    """ "TASK_accuracy_by_length" {length: fraction of `n` problems `right(length, rng)`} over
    `eval_lengths`, and "TASK_accuracy", its mean over lengths up to the training maximum.
    The NPI and its baseline draw the same problems (the same seeds, drawn alike)."""
    rng = np.random.default_rng([EVAL_SEED, seed, len(task)])
    by_length = {length: sum(right(length, rng) for _ in range(n)) / n
                 for length in eval_lengths(task, options)}  # fmt: skip
    train_size = options.max_digits if task == "add" else options.max_items
    fit = [v for k, v in by_length.items() if k <= train_size]
    return {f"{task}_accuracy_by_length": by_length,
            f"{task}_accuracy": sum(fit) / len(fit) if fit else None}  # fmt: skip


def _only(options: NPIConfig, task: str) -> NPIConfig:
    return dataclasses.replace(options, tasks=task, freeze_core=False, new_program="")


@torch.no_grad()
def sample_trace(model: NPI, options: NPIConfig, n: int, out: Path, seed: int = 0) -> Path:
    """`genlab sample RUN --out trace.txt [--task add --input 12,345]`:
    the network's execution of one problem as an indented call tree and the answer, and beside
    it (trace.gif) the pad after every ACT, its pointers' cells shaded."""
    task, pad = options.sample_task, None
    values = [v.strip() for v in options.sample_input.split(",") if v.strip()]
    if values and not all(v.isdigit() for v in values):
        raise ConfigError(f"sample_input '{options.sample_input}': digits only, comma-separated")
    if task == "add" and values:
        if len(values) != 2 or max(len(v) for v in values) > 200:
            raise ConfigError("sample_input for add: two numbers of at most 200 digits, "
                              "e.g. 1234,5678")  # fmt: skip
        pad = AdditionPad(int(values[0]), int(values[1]))
    elif values:
        if not 2 <= len(values) <= 100 or max(len(v) for v in values) > 1:
            raise ConfigError(f"sample_input for {task}: 2 to 100 single digits, e.g. 5,3,9,1")
        pad = SortArray([int(v) for v in values])
    else:
        pad = make_pad(task, 5, np.random.default_rng(seed))
        if task != "add" and len(pad.initial) < 2:
            pad = SortArray([3, 1])
    start = _copy(pad)
    name = "addition" if isinstance(pad, AdditionPad) else "array"
    frames = [pad.picture()]
    budget = 4 * sum(len(s) for s in trace(task, _copy(pad))) + 100
    tree = Interpreter(model.eval(), budget=budget, on_act=lambda p: frames.append(p.picture()))
    root = tree.run(pad, name, TASKS[task])
    given = f"{start.a} + {start.b}" if name == "addition" else str(start.initial)
    result = pad.answer() if name == "addition" else (pad.read(0) if task == "max" else
                                                      pad.array.tolist())  # fmt: skip
    verdict = "right" if solved(task, pad) else "wrong"
    text = "\n".join([f"{task}: {given} -> {result} ({verdict}, {tree.steps} steps)",
                      *root.lines()]) + "\n"  # fmt: skip
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    write_gif(frames[:MAX_FRAMES], out.with_suffix(".gif"), fps=6)  # the pad, ACT by ACT
    return out


# --- the sequence-to-sequence baseline (same problems, no traces) -------------------------------
class PairBatches:
    """The baseline's BatchSource: `problems` random (input, answer) token pairs per step, the
    tasks taking turns, sizes as the NPI trains on; a pure function of (seed, step)."""

    def __init__(self, options: Seq2SeqConfig, problems: int, seed: int):
        self.options, self.problems, self.seed = options, problems, seed

    def batch(self, step: int) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng([self.seed, step])
        pairs = []
        for i in range(self.problems):
            task = self.options.task_list[i % len(self.options.task_list)]
            low, high = (
                (1, self.options.max_digits) if task == "add" else (2, self.options.max_items)
            )
            pairs.append(example(task, int(rng.integers(low, high + 1)), rng))
        (x, x_mask), (y, y_mask) = (
            pad_tokens([p[0] for p in pairs]),
            pad_tokens([p[1] for p in pairs]),
        )
        return {"x": x, "x_mask": x_mask, "y": y, "y_mask": y_mask}


def seq2seq_batches(options: Seq2SeqConfig, data, batch_size: int, seed: int, **_):
    return PairBatches(options, batch_size, seed)


@torch.no_grad()
def evaluate_seq2seq(model: Seq2Seq, options: Seq2SeqConfig, data, n: int | None = None,
                     seed: int = 0, **_) -> dict:  # fmt: skip
    """As `evaluate_npi`: the fraction of `n` new problems answered exactly, by length."""
    model.eval()
    n = n or 100
    out: dict = {"problems_per_length": n}
    for task in options.task_list:

        def right(length: int, rng: np.random.Generator, task=task) -> bool:
            tokens, answer = example(task, length, rng)
            return model.answer(tokens, len(answer) + 5) == answer[:-1]

        out.update(accuracy_by_length(task, options, n, seed, right))
    return out


ENTRIES = (
    ModelEntry(
        name="npi", summary="Neural Programmer-Interpreter: one recursive core learns addition "
        "and bubble sort from traces (MAX later, core frozen)", options=NPIConfig, build=NPI,
        datasets=("programs",), load_data=load_data, batches=train_batches,
        evaluate=evaluate_npi, sample=sample_trace,
        train_defaults={"lr": 1e-3, "batch_size": 16, "grad_clip": 1.0, "log_every": 20},
    ),
    ModelEntry(
        name="seq2seq", summary="the NPI's baseline: a sequence-to-sequence LSTM trained on the "
        "same problems' answers, without traces", options=Seq2SeqConfig, build=Seq2Seq,
        datasets=("programs",), load_data=load_data, batches=seq2seq_batches,
        evaluate=evaluate_seq2seq,
        train_defaults={"lr": 1e-3, "batch_size": 64, "grad_clip": 1.0, "log_every": 20},
    ),
)  # fmt: skip
