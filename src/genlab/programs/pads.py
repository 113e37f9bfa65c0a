"""Scratch pads with pointers: the NPI's environments. Each pad is read only where its pointers
are (`observe`), and changed only by the primitive ACT (`act`), whose three arguments are digits.

Addition (4 rows x W columns, numbers right-aligned, pointers start at the rightmost column):
    row 0, 1   the two numbers;  row 2  the carries;  row 3  the sum being written
    ACT(0, row, dir)   move the pointer of `row` left (dir 0) or right (dir 1)
    ACT(1, row, d)     write digit d at the pointer of `row`
Sorting (an array of digits, 3 pointers starting at the left):
    pointers 0 and 1   the pair compared and swapped;  pointer 2  counts the sweeps done
    ACT(0, ptr, dir)   move pointer `ptr` left (0) or right (1)
    ACT(1, 0, 1)       swap the values under pointers 0 and 1
A cell past the numbers (or past the array's end) reads BLANK.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

CELL = 14  # pixels per cell in pictures of a pad

BLANK = 10  # what an empty cell or a pointer past the end reads
LEFT, RIGHT = 0, 1
MOVE, WRITE, SWAP = 0, 1, 1  # ACT's first argument (WRITE on the addition pad, SWAP on arrays)


def picture(rows: np.ndarray, pointers: list[tuple[int, int]]) -> np.ndarray:
    """Digit cells (R, C) (BLANK shows empty) with the cells under pointers (row, col) shaded:
    (R * CELL, C * CELL, 3) uint8."""
    R, C = rows.shape
    image = Image.new("RGB", (C * CELL, R * CELL), "white")
    draw = ImageDraw.Draw(image)
    for r, c in pointers:
        if 0 <= c < C:
            draw.rectangle([c * CELL, r * CELL, (c + 1) * CELL - 1, (r + 1) * CELL - 1],
                           fill=(255, 214, 140))  # fmt: skip
    for r in range(R):
        for c in range(C):
            if rows[r, c] != BLANK:
                draw.text((c * CELL + 4, r * CELL + 1), str(rows[r, c]), fill="black")
    return np.asarray(image)


class AdditionPad:
    ROWS, POINTERS = 4, 4
    FEATURES = POINTERS * (BLANK + 2)  # per pointer: its value one-hot, and "at the left end"

    def __init__(self, a: int, b: int):
        if a < 0 or b < 0:
            raise ValueError(f"addition takes numbers >= 0, got {a} and {b}")
        self.a, self.b = a, b
        width = max(len(str(a)), len(str(b))) + 1  # one more column for the last carry
        self.grid = np.full((self.ROWS, width), BLANK, dtype=np.int64)
        for row, n in ((0, a), (1, b)):
            digits = [int(c) for c in str(n)]
            self.grid[row, width - len(digits) :] = digits
        self.pointers = np.full(self.POINTERS, width - 1, dtype=np.int64)

    def read(self, row: int) -> int:
        col = self.pointers[row]
        return int(self.grid[row, col]) if 0 <= col < self.grid.shape[1] else BLANK

    def observe(self) -> np.ndarray:
        """(FEATURES,) float32: each pointer's value one-hot (0-9, BLANK) and whether it is at
        the leftmost column."""
        out = np.zeros((self.POINTERS, BLANK + 2), dtype=np.float32)
        for p in range(self.POINTERS):
            out[p, self.read(p)] = 1.0
            out[p, BLANK + 1] = float(self.pointers[p] <= 0)
        return out.ravel()

    def act(self, args: tuple[int, int, int]) -> None:
        kind, row, value = args
        if not 0 <= row < self.ROWS:
            return  # a wrong argument from a network does nothing
        if kind == MOVE:
            step = -1 if value == LEFT else 1
            self.pointers[row] = np.clip(self.pointers[row] + step, -1, self.grid.shape[1])
        elif kind == WRITE and 0 <= self.pointers[row] < self.grid.shape[1]:
            self.grid[row, self.pointers[row]] = value

    def picture(self) -> np.ndarray:
        """The pad as an image: four rows, each pointer's cell shaded."""
        return picture(self.grid, [(r, int(c)) for r, c in enumerate(self.pointers)])

    def answer(self) -> int | None:
        """The number in the output row, or None if a cell is still blank inside it."""
        digits = [int(d) for d in self.grid[3] if d != BLANK]
        return int("".join(map(str, digits))) if digits else None

    def correct(self) -> bool:
        return self.answer() == self.a + self.b


class SortArray:
    POINTERS = 3
    FEATURES = POINTERS * (BLANK + 3)  # value one-hot, at the left end, at the right end

    def __init__(self, values: list[int]):
        if len(values) < 2 or any(not 0 <= v <= 9 for v in values):
            raise ValueError(f"sorting takes 2 or more digits 0-9, got {values}")
        self.initial = list(values)
        self.array = np.array(values, dtype=np.int64)
        self.pointers = np.zeros(self.POINTERS, dtype=np.int64)

    def read(self, p: int) -> int:
        i = self.pointers[p]
        return int(self.array[i]) if 0 <= i < len(self.array) else BLANK

    def observe(self) -> np.ndarray:
        out = np.zeros((self.POINTERS, BLANK + 3), dtype=np.float32)
        for p in range(self.POINTERS):
            out[p, self.read(p)] = 1.0
            out[p, BLANK + 1] = float(self.pointers[p] <= 0)
            out[p, BLANK + 2] = float(self.pointers[p] >= len(self.array) - 1)
        return out.ravel()

    def act(self, args: tuple[int, int, int]) -> None:
        kind, p, value = args
        if kind == MOVE and 0 <= p < self.POINTERS:
            step = -1 if value == LEFT else 1
            self.pointers[p] = np.clip(self.pointers[p] + step, 0, len(self.array))
        elif kind == SWAP:
            i, j = self.pointers[0], self.pointers[1]
            if max(i, j) < len(self.array):
                self.array[[i, j]] = self.array[[j, i]]

    def correct(self) -> bool:
        return self.array.tolist() == sorted(self.initial)

    def picture(self) -> np.ndarray:
        """The array as an image: one row per pointer, each shading its cell."""
        rows = np.tile(self.array, (self.POINTERS, 1))
        return picture(rows, [(p, int(i)) for p, i in enumerate(self.pointers)])
