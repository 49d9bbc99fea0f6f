"""Token windows drawn from this Python's standard-library modules: code to decode after, the
same for every engine and arm of a benchmark."""

from __future__ import annotations

import random
import sysconfig
from pathlib import Path

from tokenizers import Tokenizer


def stdlib_windows(
    tokenizer: Tokenizer, count: int, seed: int, shortest: int, longest: int
) -> list[list[int]]:
    """`count` windows of `shortest` to `longest` tokens (drawn), one a module, from a seeded
    shuffle of the modules; a module needs `longest + 200` tokens to give one."""
    modules = sorted(Path(sysconfig.get_path("stdlib")).glob("*.py"))
    rng = random.Random(seed)
    rng.shuffle(modules)
    windows = []
    for path in modules:
        ids = tokenizer.encode(path.read_text(encoding="utf-8", errors="replace")).ids
        if len(ids) < longest + 200:
            continue
        start = rng.randrange(0, len(ids) - longest - 100)
        length = longest if shortest == longest else rng.randrange(shortest, longest)
        windows.append(ids[start : start + length])
        if len(windows) == count:
            break
    return windows
