"""The logits rows the engine computed, kept by how many cached tokens they follow.

The row after the first L cached tokens is what a token at position L was (or will be) chosen
from. It stays true while those L tokens stay cached, so a rewind to L keeps it and a rewind
below L drops it. Asking again for a prompt the cache holds, with a generation after it,
reads these rows instead of computing them again: the same rows give the same choices, where a
forward pass of another width (a draft verified in one pass, or int8 kernels that differ by
rows) could choose otherwise and change the suggestion the user is reading.
"""

from __future__ import annotations

import numpy as np


class LogitRows:
    def __init__(self, vocab_size: int, capacity: int) -> None:
        # Allocated once; pages are touched only as rows are written.
        self._rows = np.empty((capacity, vocab_size), dtype=np.float32)
        self._slots: dict[int, int] = {}  # cached tokens before the row -> index in _rows
        self._free = list(range(capacity - 1, -1, -1))

    def put(self, after: int, row: np.ndarray) -> None:
        slot = self._slots.get(after)
        if slot is None:
            if not self._free:
                # The row furthest back goes first: prefill chunks' ends and older prompts,
                # before the latest prompt and the generation after it.
                self._free.append(self._slots.pop(min(self._slots)))
            slot = self._free.pop()
            self._slots[after] = slot
        np.copyto(self._rows[slot], row)

    def get(self, after: int) -> np.ndarray | None:
        """The row after the first `after` cached tokens (a view: copy it to keep it)."""
        slot = self._slots.get(after)
        return None if slot is None else self._rows[slot]

    def span(self, after: int, count: int) -> list[np.ndarray]:
        """The rows after `after`, `after + 1`, ... cached tokens, all of them held."""
        return [self._rows[self._slots[after + i]] for i in range(count)]

    def run(self, after: int, limit: int) -> int:
        """How many rows are held after `after + 1`, `after + 2`, ... tokens in a row, up to
        `limit`: the cached tokens from `after` on that can be chosen again without a pass."""
        count = 0
        while count < limit and after + count + 1 in self._slots:
            count += 1
        return count

    def forget_above(self, length: int) -> None:
        """The cache was rewound to `length` tokens: rows after more of them are stale."""
        for after in [a for a in self._slots if a > length]:
            self._free.append(self._slots.pop(after))
