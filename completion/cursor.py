"""Split a document at an LSP position (UTF-16 code units) into the text before and after it."""

from __future__ import annotations

from dataclasses import dataclass

from completion.positions import UTF16, code_points_within, code_units, line_end, line_start
from completion.request import Position


class InvalidPositionError(ValueError):
    """The position lies outside the document."""


@dataclass(frozen=True)
class CursorContext:
    prefix: str  # everything before the cursor
    suffix: str  # everything after it
    line_prefix: str  # the cursor's line, before the cursor
    line_suffix: str  # the cursor's line, after the cursor (without the line break)


def split_at(text: str, position: Position) -> CursorContext:
    """Split at `position`; unlike an editor's lenient clamping, a request past the end of its
    line is refused: it was made for another version of the text."""
    if position.line < 0 or position.character < 0:
        raise InvalidPositionError(f"negative position {position}")
    start = line_start(text, position.line)
    if start is None:
        raise InvalidPositionError(f"line {position.line} is past the end of the document")
    line = text[start : line_end(text, start)]
    if position.character > code_units(line, UTF16):
        raise InvalidPositionError(f"character {position.character} is past the end of the line")
    col = code_points_within(line, position.character, UTF16)
    offset = start + col
    return CursorContext(
        prefix=text[:offset],
        suffix=text[offset:],
        line_prefix=line[:col],
        line_suffix=line[col:],
    )
