"""Split a document at an LSP position (UTF-16 code units) into the text before and after it."""

from __future__ import annotations

import re
from dataclasses import dataclass

from completion.request import Position

# LSP knows only these three line breaks (str.splitlines knows eight more).
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n|$)")


def lsp_lines(text: str) -> list[str]:
    """The document's lines with their breaks; a final break is followed by an empty line."""
    lines = [m.group(0) for m in _LINE.finditer(text)]
    # finditer yields one empty match at the very end; it is the empty last line when the text
    # ends with a break (or is empty), and a duplicate otherwise.
    if len(lines) > 1 and lines[-1] == "" and not lines[-2].endswith(("\n", "\r")):
        lines.pop()
    return lines


class InvalidPositionError(ValueError):
    """The position lies outside the document."""


@dataclass(frozen=True)
class CursorContext:
    prefix: str  # everything before the cursor
    suffix: str  # everything after it
    line_prefix: str  # the cursor's line, before the cursor
    line_suffix: str  # the cursor's line, after the cursor (without the line break)


def utf16_to_index(line: str, character: int) -> int:
    """Index into `line` of the given UTF-16 offset (astral characters count twice)."""
    if character <= 0:
        return 0
    units = 0
    for index, ch in enumerate(line):
        if units >= character:
            return index
        units += 2 if ord(ch) > 0xFFFF else 1
    if units >= character:
        return len(line)
    raise InvalidPositionError(f"character {character} is past the end of the line")


def index_to_utf16(line: str, index: int) -> int:
    return sum(2 if ord(ch) > 0xFFFF else 1 for ch in line[:index])


def split_at(text: str, position: Position) -> CursorContext:
    if position.line < 0 or position.character < 0:
        raise InvalidPositionError(f"negative position {position}")
    lines = lsp_lines(text)
    if position.line >= len(lines):
        raise InvalidPositionError(
            f"line {position.line} is past the end of the document ({len(lines)} lines)"
        )
    line = lines[position.line]
    content = line.rstrip("\r\n")
    col = utf16_to_index(content, position.character)
    start = sum(len(x) for x in lines[: position.line])
    offset = start + col
    return CursorContext(
        prefix=text[:offset],
        suffix=text[offset:],
        line_prefix=content[:col],
        line_suffix=content[col:],
    )
