"""Document text as the server sees it: the window of text around the cursor that a completion
request carries, and reading source files (positions: completion/positions.py).

Everything here is plain text arithmetic plus reading a source file: no pygls, no model, so it
can be tested exhaustively and is shared by the server and the CLI.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePath

from completion.positions import LINE_BREAK, UTF16, offset_at, position_at
from completion.request import CompletionRequest, Position

# How much text around the cursor a request carries, in characters. A completion model sees a
# few thousand tokens at most; the cap keeps tokenizing and copying cheap on huge files.
WINDOW_BEFORE = 64 * 1024
WINDOW_AFTER = 16 * 1024
# Files read from disk (requests for unopened documents, `nexttoken complete`) up to this size.
MAX_FILE_BYTES = 8 * 1024 * 1024

# Language ids (as editors name them) for files that reach us without a didOpen.
LANGUAGE_BY_SUFFIX: dict[str, str] = {
    ".py": "python",
    ".pyi": "python",
    ".js": "javascript",
    ".jsx": "javascriptreact",
    ".ts": "typescript",
    ".tsx": "typescriptreact",
    ".rs": "rust",
    ".go": "go",
    ".java": "java",
    ".c": "c",
    ".h": "c",
    ".cc": "cpp",
    ".cpp": "cpp",
    ".hpp": "cpp",
    ".cs": "csharp",
    ".rb": "ruby",
    ".php": "php",
    ".sh": "shellscript",
    ".lua": "lua",
    ".md": "markdown",
    ".json": "json",
    ".toml": "toml",
    ".yaml": "yaml",
    ".yml": "yaml",
}


def language_for_path(path: PurePath) -> str:
    return LANGUAGE_BY_SUFFIX.get(path.suffix.lower(), "")


@dataclass(frozen=True)
class TextWindow:
    """The part of a document a request carries: `text` is document[start:start + len(text)]."""

    text: str
    start: int
    cursor: int  # offset of the cursor within `text`

    @property
    def cursor_position(self) -> Position:
        """The cursor as the pipeline wants it: UTF-16 units, counted within the window."""
        return position_at(self.text, self.cursor, UTF16)

    def document_offset(self, position: Position) -> int | None:
        """Offset in the whole document of a UTF-16 position within the window."""
        offset = offset_at(self.text, position, UTF16)
        return None if offset is None else self.start + offset


def window_around(
    text: str, cursor: int, before: int = WINDOW_BEFORE, after: int = WINDOW_AFTER
) -> TextWindow:
    """At most `before` characters before the cursor and `after` after it, cut at line breaks
    where one is in reach so the model never sees half a line at either edge."""
    start = max(0, cursor - before)
    if start > 0 and not _at_line_start(text, start):
        line_break = LINE_BREAK.search(text, start, cursor)
        if line_break:
            start = line_break.end()
    end = min(len(text), cursor + after)
    if end < len(text):
        last_break = max(text.rfind("\n", cursor, end), text.rfind("\r", cursor, end))
        if last_break >= 0:
            end = last_break + 1
    return TextWindow(text=text[start:end], start=start, cursor=cursor - start)


def _at_line_start(text: str, offset: int) -> bool:
    previous = text[offset - 1]
    return previous == "\n" or (previous == "\r" and text[offset] != "\n")


class UnusableText(Exception):
    """Text that cannot be completed: unreadable, too big, not UTF-8, or binary."""


def check_completable(text: str) -> None:
    """Refuse binary content: a NUL byte never occurs in source code a model should continue."""
    if "\x00" in text:
        raise UnusableText("the document holds binary content (NUL bytes)")


def read_source_file(path: Path, max_bytes: int = MAX_FILE_BYTES) -> str:
    """A source file's text, strictly UTF-8 (a BOM is dropped, as editors do)."""
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise UnusableText(f"{path} has {size} bytes, more than the {max_bytes} read from disk")
        data = path.read_bytes()
    except OSError as exc:
        raise UnusableText(f"cannot read {path}: {exc.strerror or exc}") from exc
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UnusableText(f"{path} is not UTF-8 text (bad byte at offset {exc.start})") from exc
    check_completable(text)
    return text


def containing_root(path: Path, roots: Iterable[Path]) -> Path | None:
    """The innermost of `roots` that holds `path` (lexically: `..` resolved, links not)."""
    path = Path(os.path.normpath(path))
    inside = [root for root in roots if path.is_relative_to(os.path.normpath(root))]
    return max(inside, key=lambda root: len(Path(os.path.normpath(root)).parts), default=None)


def prompt_path(path: Path, roots: Iterable[Path]) -> str:
    """How the prompt names a file: relative to its workspace root, else absolute."""
    root = containing_root(path, roots)
    normal = Path(os.path.normpath(path))
    if root is None:
        return normal.as_posix()
    return normal.relative_to(os.path.normpath(root)).as_posix()


def completion_request(
    text: str,
    cursor: int,
    *,
    path: str,
    language_id: str,
    max_new_tokens: int,
) -> tuple[CompletionRequest, TextWindow]:
    """The pipeline's request for a cursor offset, carrying only the window around it."""
    window = window_around(text, cursor)
    request = CompletionRequest(
        text=window.text,
        position=window.cursor_position,
        path=path,
        language_id=language_id,
        max_new_tokens=max_new_tokens,
    )
    return request, window
