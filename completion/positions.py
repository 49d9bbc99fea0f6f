"""LSP positions <-> string offsets.

LSP breaks lines at "\\n", "\\r\\n" and "\\r" only (not at the form feeds and Unicode separators
that `str.splitlines` also honours) and counts characters in the negotiated position encoding,
UTF-16 code units unless the client asked for another. The server (windows of open documents)
and the pipeline (splitting a request at its cursor) both count with these functions.
"""

from __future__ import annotations

import re

from completion.request import Position

UTF8 = "utf-8"
UTF16 = "utf-16"
UTF32 = "utf-32"

LINE_BREAK = re.compile(r"\r\n|\r|\n")
# Separators `str.splitlines` honours on top of LSP's three; when a text has none of them,
# `splitlines` (fast, in C) gives exactly LSP's lines.
_EXTRA_SPLITLINES_BREAKS = re.compile("[\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")
_LSP_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")


def lsp_lines(text: str) -> list[str]:
    """The document's lines with their line breaks, split the way LSP counts them.

    A final line break ends the last listed line; the empty line after it, where a cursor may
    still stand, is not listed (`line_start` knows it)."""
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


def code_points_within(line: str, units: int, encoding: str = UTF16) -> int:
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


def line_end(text: str, start: int) -> int:
    """Offset of the line break (or the text's end) after `start`."""
    line_break = LINE_BREAK.search(text, start)
    return line_break.start() if line_break else len(text)


def offset_at(text: str, position: Position, encoding: str = UTF16) -> int | None:
    """String offset of an LSP position, or None when its line is past the end of the text.

    A character past the end of its line means the end of the line, as the LSP spec says.
    """
    if position.line < 0 or position.character < 0:
        return None
    start = line_start(text, position.line)
    if start is None:
        return None
    end = line_end(text, start)
    return start + code_points_within(text[start:end], position.character, encoding)


def position_at(text: str, offset: int, encoding: str = UTF16) -> Position:
    """LSP position of a string offset (clamped to the text)."""
    offset = max(0, min(offset, len(text)))
    line = text.count("\n", 0, offset) + text.count("\r", 0, offset)
    line -= text.count("\r\n", 0, offset)
    start = max(text.rfind("\n", 0, offset), text.rfind("\r", 0, offset)) + 1
    return Position(line, code_units(text[start:offset], encoding))
