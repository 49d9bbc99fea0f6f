"""Progress reporting for long model builds: a bar on a TTY, plain lines otherwise."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TextIO

# report(stage, done, total); total 0 means "no known size".
ProgressCallback = Callable[[str, int, int], None]


def silent(stage: str, done: int, total: int) -> None:
    return None


def console_progress(stream: TextIO = sys.stderr) -> ProgressCallback:
    tty = stream.isatty()
    last_stage: list[str] = [""]

    def report(stage: str, done: int, total: int) -> None:
        if tty:
            if total:
                width = 30
                filled = int(width * done / total)
                bar = "#" * filled + "-" * (width - filled)
                stream.write(f"\r{stage:<28} [{bar}] {done}/{total}")
            else:
                stream.write(f"\r{stage:<28}")
            if total and done >= total:
                stream.write("\n")
            stream.flush()
        elif stage != last_stage[0]:
            stream.write(f"{stage}...\n")
            stream.flush()
        last_stage[0] = stage

    return report
