"""The teacher programs, written as plain Python over a pad, and the execution traces they leave.

A non-primitive program's trace is a `Segment`: at each step the pad as seen then (and the
program's own arguments), and either the sub-program called with its arguments, or "return".
A program returns when it sees it is done (the last step of every segment is a return), so every
decision is made from what the pointers show: this is what lets a learned core run inputs longer
than any it was trained on. ACT is the one primitive: it changes the pad.

    ADD         repeat ADD1, LSHIFT until the column under the pointers is empty
    ADD1        ACT(write the column's digit of the sum); CARRY if the column sums to 10 or more
    CARRY       ACT(carry pointer left); ACT(write 1); ACT(carry pointer right)
    LSHIFT      ACT(move each pointer left): the four of the addition pad, pointers 0 and 1 of
                an array
    RSHIFT      ACT(move pointers 0 and 1 right)
    BUBBLESORT  repeat BUBBLE, RESET until the sweep counter (pointer 2) reaches the right end
    BUBBLE      ACT(pointer 1 right); BSTEP until pointer 1 is past the end; ACT(pointer 2 right)
    BSTEP       COMPSWAP; RSHIFT
    COMPSWAP    ACT(swap) if the value under pointer 0 is larger than under pointer 1
    RESET       LSHIFT until pointer 1 is at the left end
    RJMP        ACT(pointer 1 right); RSHIFT until pointer 1 is past the end (pointer 0 is then
                on the last item): RSHIFT as BSTEP calls it, pointer 1 one ahead of pointer 0
    MAX         BUBBLESORT; RJMP  (the answer is then under pointer 0)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from genlab.errors import ConfigError
from genlab.programs.pads import BLANK, LEFT, MOVE, RIGHT, SWAP, WRITE, AdditionPad, SortArray

PROGRAMS = ("ACT", "ADD", "ADD1", "CARRY", "LSHIFT", "RSHIFT", "BUBBLESORT", "BUBBLE", "RESET",
            "BSTEP", "COMPSWAP", "RJMP", "MAX")  # fmt: skip
ID = {name: i for i, name in enumerate(PROGRAMS)}
NEW_PROGRAMS = ("RJMP", "MAX")  # learned last, with the core frozen (the talk's meta-learning)
TASKS = {"add": "ADD", "sort": "BUBBLESORT", "max": "MAX"}  # task -> its top program
NO_ARGS = (0, 0, 0)
Pad = AdditionPad | SortArray


@dataclass
class Segment:
    """One call of a non-primitive program: T steps, the last a return.

    observations (T, F) float32   the pad under the pointers before each step
    calls (T,) int                the sub-program called (ignored at the return step)
    call_args (T, 3) int          its arguments
    """

    program: int
    args: tuple[int, int, int]
    pad: str  # "addition" or "array": which encoder reads the observations
    observations: list[np.ndarray] = field(default_factory=list)
    calls: list[int] = field(default_factory=list)
    call_args: list[tuple[int, int, int]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.observations)


class Call:
    """What a teacher program uses to act: `sub(name, args)` records a step and runs it."""

    def __init__(self, tracer: Tracer, segment: Segment):
        self.tracer, self.segment, self.pad = tracer, segment, tracer.pad

    def sub(self, name: str, args: tuple[int, int, int] = NO_ARGS) -> None:
        self.segment.observations.append(self.pad.observe())
        self.segment.calls.append(ID[name])
        self.segment.call_args.append(args)
        if name == "ACT":
            self.pad.act(args)
        else:
            self.tracer.run(name, args)


class Tracer:
    """Runs teacher programs on a pad and keeps every call's segment, callers first."""

    def __init__(self, pad: Pad):
        self.pad = pad
        self.pad_name = "addition" if isinstance(pad, AdditionPad) else "array"
        self.segments: list[Segment] = []
        self.depth = 0

    def run(self, name: str, args: tuple[int, int, int] = NO_ARGS) -> None:
        segment = Segment(ID[name], args, self.pad_name)
        self.segments.append(segment)
        self.depth += 1
        if self.depth > 8:
            raise RecursionError(f"{name}: the teacher programs nest at most 4 deep")
        TEACHERS[name](Call(self, segment))
        self.depth -= 1
        segment.observations.append(self.pad.observe())  # the return step
        segment.calls.append(ID["ACT"])  # unused: the return step has no call
        segment.call_args.append(NO_ARGS)


def digit(value: int) -> int:
    return 0 if value == BLANK else value


# --- the teacher programs ------------------------------------------------------------------------
def add(c: Call) -> None:
    while True:
        c.sub("ADD1")
        c.sub("LSHIFT")
        if c.pad.read(0) == c.pad.read(1) == c.pad.read(2) == BLANK:
            return


def add1(c: Call) -> None:
    total = digit(c.pad.read(0)) + digit(c.pad.read(1)) + digit(c.pad.read(2))
    c.sub("ACT", (WRITE, 3, total % 10))
    if total >= 10:
        c.sub("CARRY")


def carry(c: Call) -> None:
    c.sub("ACT", (MOVE, 2, LEFT))
    c.sub("ACT", (WRITE, 2, 1))
    c.sub("ACT", (MOVE, 2, RIGHT))


def lshift(c: Call) -> None:
    for p in range(4 if isinstance(c.pad, AdditionPad) else 2):
        c.sub("ACT", (MOVE, p, LEFT))


def rshift(c: Call) -> None:
    for p in range(2):
        c.sub("ACT", (MOVE, p, RIGHT))


def bubblesort(c: Call) -> None:
    while True:
        c.sub("BUBBLE")
        c.sub("RESET")
        if c.pad.pointers[2] >= len(c.pad.array) - 1:
            return


def bubble(c: Call) -> None:
    c.sub("ACT", (MOVE, 1, RIGHT))
    while c.pad.read(1) != BLANK:
        c.sub("BSTEP")
    c.sub("ACT", (MOVE, 2, RIGHT))


def bstep(c: Call) -> None:
    c.sub("COMPSWAP")
    c.sub("RSHIFT")


def compswap(c: Call) -> None:
    if c.pad.read(0) > c.pad.read(1):
        c.sub("ACT", (SWAP, 0, 1))


def reset(c: Call) -> None:
    while c.pad.pointers[1] > 0:
        c.sub("LSHIFT")


def rjmp(c: Call) -> None:
    c.sub("ACT", (MOVE, 1, RIGHT))
    while c.pad.read(1) != BLANK:
        c.sub("RSHIFT")


def maximum(c: Call) -> None:
    c.sub("BUBBLESORT")
    c.sub("RJMP")


TEACHERS: dict[str, Callable[[Call], None]] = {
    "ADD": add, "ADD1": add1, "CARRY": carry, "LSHIFT": lshift, "RSHIFT": rshift,
    "BUBBLESORT": bubblesort, "BUBBLE": bubble, "BSTEP": bstep, "COMPSWAP": compswap,
    "RESET": reset, "RJMP": rjmp, "MAX": maximum,
}  # fmt: skip


def task_list(tasks: str) -> list[str]:
    """ "add,sort" -> ["add", "sort"]; ConfigError unless each is one of TASKS."""
    out = [t for t in tasks.split(",") if t]
    if not out or set(out) - set(TASKS):
        raise ConfigError(f"tasks must be some of {', '.join(TASKS)}, got '{tasks}'")
    return out


# --- problems ----------------------------------------------------------------------------------
def make_pad(task: str, size: int, rng: np.random.Generator) -> Pad:
    """A random problem: two numbers of up to `size` digits (add), or `size` digits to sort."""
    if task == "add":
        return AdditionPad(*(number(int(rng.integers(1, size + 1)), rng) for _ in range(2)))
    return SortArray(rng.integers(0, 10, size).tolist())


def number(digits: int, rng: np.random.Generator) -> int:
    """A random number of exactly `digits` digits (any size: Python ints)."""
    first = int(rng.integers(1, 10)) if digits > 1 else int(rng.integers(0, 10))
    return int(str(first) + "".join(str(d) for d in rng.integers(0, 10, digits - 1)))


def solved(task: str, pad: Pad) -> bool:
    """Whether the pad holds the task's answer."""
    if task == "max":
        return pad.read(0) == max(pad.initial)
    return pad.correct()


def trace(task: str, pad: Pad) -> list[Segment]:
    """The teacher's segments for `task` on `pad` (which it solves)."""
    tracer = Tracer(pad)
    tracer.run(TASKS[task])
    return tracer.segments
