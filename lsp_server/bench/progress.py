"""Progress on stderr: a bar that redraws itself on a terminal, one plain line per step in a
CI log (where carriage returns turn into a wall of half-lines)."""

from __future__ import annotations

import sys
from typing import TextIO

BAR_WIDTH = 24


class Progress:
    def __init__(self, total: int, what: str, stream: TextIO | None = None) -> None:
        self.total = total
        self.what = what
        self.stream = stream or sys.stderr
        self.interactive = self.stream.isatty()
        self.done = 0

    def step(self, note: str) -> None:
        self.done += 1
        if self.interactive:
            filled = BAR_WIDTH * self.done // max(self.total, 1)
            bar = "#" * filled + "." * (BAR_WIDTH - filled)
            # \x1b[K clears what a longer note left behind on the line.
            line = f"\r[{bar}] {self.done}/{self.total} {self.what}  {note}\x1b[K"
            self.stream.write(line)
            if self.done == self.total:
                self.stream.write("\n")
        else:
            self.stream.write(f"bench: {self.what} {self.done}/{self.total}: {note}\n")
        self.stream.flush()
