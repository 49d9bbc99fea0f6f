"""Reading and extracting files, in the indexer's thread or in worker processes.

The functions here are what a worker process runs (so they are importable module-level
functions of plain arguments) and what the indexer thread runs for one changed file. They
read files; they never write the store.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

from indexer.extract import FileEntry, extract
from indexer.languages import language_for_path, load
from indexer.walk import looks_indexable


@dataclass(frozen=True)
class ReadResult:
    """A file's entry (empty for one that is skipped), its `stat` and why it was skipped."""

    entry: FileEntry
    mtime_ns: int
    size: int
    skipped: str = ""


def entry_from_text(path: str, text: str) -> FileEntry:
    row = language_for_path(path)
    loaded = load(row) if row is not None else None
    if loaded is None:
        return FileEntry(path, row.name if row else "", "", (), (), ())
    return extract(path, text, loaded)


def read_file(root: str, path: str, max_bytes: int) -> ReadResult | None:
    """None when the file is gone or unreadable."""
    absolute = os.path.join(root, path)
    try:
        with open(absolute, "rb") as handle:
            info = os.fstat(handle.fileno())
            data = handle.read(max_bytes + 1)
    except OSError:
        return None
    row = language_for_path(path)
    empty = FileEntry(path, row.name if row else "", "", (), (), ())
    if len(data) > max_bytes:
        return ReadResult(empty, info.st_mtime_ns, info.st_size, "huge")
    text = data.decode("utf-8", "replace")
    reason = looks_indexable(text)
    if reason:
        return ReadResult(empty, info.st_mtime_ns, info.st_size, reason)
    return ReadResult(entry_from_text(path, text), info.st_mtime_ns, info.st_size)


def read_files(root: str, paths: list[str], max_bytes: int) -> list[tuple[str, ReadResult | None]]:
    return [(path, read_file(root, path, max_bytes)) for path in paths]


def lower_priority(niceness: int) -> None:
    """Worker process initializer: indexing yields the CPU to the editor's completions."""
    if niceness and hasattr(os, "nice"):
        with contextlib.suppress(OSError):
            os.nice(niceness)


def read_text(path: Path) -> str | None:
    try:
        return path.read_bytes().decode("utf-8", "replace")
    except OSError:
        return None
