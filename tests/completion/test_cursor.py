from __future__ import annotations

import pytest

from completion.cursor import InvalidPositionError, split_at
from completion.request import Position


def test_split_counts_utf16_code_units() -> None:
    ctx = split_at("ab😀c\nd", Position(0, 4))  # 😀 is two UTF-16 units
    assert ctx.prefix == "ab😀"
    assert ctx.suffix == "c\nd"
    assert (ctx.line_prefix, ctx.line_suffix) == ("ab😀", "c")


def test_split_on_crlf_document_keeps_line_break_out_of_line_suffix() -> None:
    ctx = split_at("one\r\ntwo\r\n", Position(1, 1))
    assert ctx.prefix == "one\r\nt"
    assert ctx.line_suffix == "wo"


def test_cursor_on_empty_last_line() -> None:
    ctx = split_at("def f():\n", Position(1, 0))
    assert ctx.prefix == "def f():\n" and ctx.suffix == ""


@pytest.mark.parametrize("position", [Position(2, 0), Position(0, 4), Position(-1, 0)])
def test_out_of_range_positions_raise(position: Position) -> None:
    with pytest.raises(InvalidPositionError):
        split_at("abc\n", position)


def test_position_inside_a_surrogate_pair_never_splits_the_character() -> None:
    ctx = split_at("😀x", Position(0, 1))
    assert (ctx.prefix, ctx.suffix) == ("", "😀x")


@pytest.mark.parametrize("text", ["a\rb", "a\r\nb", "a\nb"])
def test_lone_carriage_return_breaks_lines_too(text: str) -> None:
    ctx = split_at(text, Position(1, 1))
    assert (ctx.line_prefix, ctx.suffix) == ("b", "")


def test_form_feed_is_not_a_line_break() -> None:
    ctx = split_at("x\x0cy\nz", Position(0, 3))
    assert ctx.line_prefix == "x\x0cy" and ctx.suffix == "\nz"
