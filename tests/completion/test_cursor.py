from __future__ import annotations

import pytest

from completion.cursor import InvalidPositionError, lsp_lines, split_at, utf16_to_index
from completion.request import Position


@pytest.mark.parametrize(
    ("text", "lines"),
    [
        ("", [""]),
        ("a", ["a"]),
        ("a\n", ["a\n", ""]),
        ("a\r\nb", ["a\r\n", "b"]),
        ("a\rb\n\n", ["a\r", "b\n", "\n", ""]),
        ("x\x0cy\u2028z", ["x\x0cy\u2028z"]),  # not line breaks in LSP
    ],
)
def test_lsp_lines_knows_only_lf_crlf_cr(text: str, lines: list[str]) -> None:
    assert lsp_lines(text) == lines


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


def test_utf16_index_inside_surrogate_pair_rounds_forward() -> None:
    assert utf16_to_index("😀x", 1) == 1
