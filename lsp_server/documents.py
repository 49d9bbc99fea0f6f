"""Document text as the protocol sees it: LSP positions <-> string offsets, and the window of
text around the cursor that a completion request carries.

LSP breaks lines at "\\n", "\\r\\n" and "\\r" only (not at the form feeds and Unicode separators
that `str.splitlines` also honours) and counts characters in the negotiated position encoding,
UTF-16 code units unless the client asked for another. Everything here is plain text arithmetic
plus reading a source file: no pygls, no model, so it can be tested exhaustively and is shared
by the server and the CLI.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePath

from completion.request import CompletionRequest, Position

UTF8 = "utf-8"
UTF16 = "utf-16"
UTF32 = "utf-32"

LINE_BREAK = re.compile(r"\r\n|\r|\n")
# Separators `str.splitlines` honours on top of LSP's three; when a text has none of them,
# `splitlines` (fast, in C) gives exactly LSP's lines.
_EXTRA_SPLITLINES_BREAKS = re.compile("[\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")
_LSP_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")

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


def lsp_lines(text: str) -> list[str]:
    """The document's lines with their line breaks, split the way LSP counts them."""
    if not _EXTRA_SPLITLINES_BREAKS.search(text):
        return text.splitlines(keepends=True)
    return _LSP_LINE.findall(text)


def code_units(text: str, encoding: str = UTF16) -> int:
    """Length of `text` in the code units of a position encoding."""
    if encoding == UTF32 or text.isascii():
        return len(text)
    if encoding == UTF8:
        return len(text.encode("utf-8", "surrogatepass"))
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _code_points_within(line: str, units: int, encoding: str) -> int:
    """How many code points of `line` fit in `units` code units.

    A position inside a multi-unit character (half a surrogate pair, say) falls back to the start
    of that character, so a slice at the result never splits a character.
    """
    if encoding == UTF32 or line.isascii():
        return min(units, len(line))
    used = 0
    for index, char in enumerate(line):
        used += code_units(char, encoding)
        if used > units:
            return index
    return len(line)


def line_start(text: str, line: int) -> int | None:
    """Offset where `line` starts, or None when the document has fewer lines."""
    if line == 0:
        return 0
    for number, match in enumerate(LINE_BREAK.finditer(text), start=1):
        if number == line:
            return match.end()
    return None


def offset_at(text: str, position: Position, encoding: str = UTF16) -> int | None:
    """String offset of an LSP position, or None when its line is past the end of the text.

    A character past the end of its line means the end of the line, as the LSP spec says.
    """
    if position.line < 0 or position.character < 0:
        return None
    start = line_start(text, position.line)
    if start is None:
        return None
    line_break = LINE_BREAK.search(text, start)
    end = line_break.start() if line_break else len(text)
    return start + _code_points_within(text[start:end], position.character, encoding)


def position_at(text: str, offset: int, encoding: str = UTF16) -> Position:
    """LSP position of a string offset (clamped to the text)."""
    offset = max(0, min(offset, len(text)))
    line = text.count("\n", 0, offset) + text.count("\r", 0, offset)
    line -= text.count("\r\n", 0, offset)
    start = max(text.rfind("\n", 0, offset), text.rfind("\r", 0, offset)) + 1
    return Position(line, code_units(text[start:offset], encoding))


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
