"""Position conversion (LSP lines, UTF-16/8/32 units) and the text window sent to the pipeline."""

from __future__ import annotations

from pathlib import Path

import pytest

from completion.positions import UTF8, UTF16, UTF32, code_units, lsp_lines, offset_at, position_at
from completion.request import Position
from lsp_server.documents import (
    UnusableText,
    completion_request,
    containing_root,
    prompt_path,
    read_source_file,
    window_around,
)

EMOJI = "\U0001f600"  # outside the BMP: 2 UTF-16 units, 4 UTF-8 bytes, 1 code point


@pytest.mark.parametrize(
    ("text", "units"),
    [
        ("abc", {UTF8: 3, UTF16: 3, UTF32: 3}),
        ("é", {UTF8: 2, UTF16: 1, UTF32: 1}),
        ("中", {UTF8: 3, UTF16: 1, UTF32: 1}),
        (EMOJI, {UTF8: 4, UTF16: 2, UTF32: 1}),
        (f"x{EMOJI}y", {UTF8: 6, UTF16: 4, UTF32: 3}),
    ],
)
def test_code_units_per_encoding(text: str, units: dict[str, int]) -> None:
    for encoding, expected in units.items():
        assert code_units(text, encoding) == expected


def test_lsp_lines_break_only_at_lsp_line_breaks() -> None:
    text = "a\fb\r\nc\rd\u2028e\nf"
    assert lsp_lines(text) == ["a\fb\r\n", "c\r", "d\u2028e\n", "f"]
    assert lsp_lines("x\ny\n") == ["x\n", "y\n"]
    assert lsp_lines("") == []


def test_offset_after_emoji_counts_utf16_units() -> None:
    text = f"s = '{EMOJI}' + x\n"
    after_emoji = text.index(EMOJI) + 1
    assert offset_at(text, Position(0, 7), UTF16) == after_emoji
    assert offset_at(text, Position(0, 6), UTF32) == after_emoji
    assert offset_at(text, Position(0, 9), UTF8) == after_emoji
    # The middle of a surrogate pair falls back to the start of the character.
    assert offset_at(text, Position(0, 6), UTF16) == after_emoji - 1


@pytest.mark.parametrize("encoding", [UTF8, UTF16, UTF32])
def test_position_and_offset_round_trip_on_every_character(encoding: str) -> None:
    text = f"def f():\r\n    return '{EMOJI}é'\r  # 中\n\nlast"
    for offset in range(len(text) + 1):
        if text[offset - 1 : offset + 1] == "\r\n":
            continue  # between \r and \n is no position at all
        position = position_at(text, offset, encoding)
        assert offset_at(text, position, encoding) == offset, (offset, position)


def test_line_breaks_count_crlf_once_and_lone_cr() -> None:
    text = "a\r\nb\rc\nd"
    assert offset_at(text, Position(1, 0)) == 3
    assert offset_at(text, Position(2, 0)) == 5
    assert offset_at(text, Position(3, 0)) == 7
    assert position_at(text, 8) == Position(3, 1)


def test_form_feed_is_not_a_line_break() -> None:
    text = "a\fb\nc"
    assert offset_at(text, Position(1, 0)) == 4
    assert position_at(text, 5) == Position(1, 1)


def test_line_past_end_is_none_and_long_character_clamps() -> None:
    text = "ab\ncd\n"
    assert offset_at(text, Position(2, 0)) == 6  # the empty last line exists
    assert offset_at(text, Position(3, 0)) is None
    assert offset_at(text, Position(0, 99)) == 2  # end of line, before its break
    assert offset_at(text, Position(-1, 0)) is None


def test_small_document_is_sent_whole() -> None:
    text = "import os\nprint(os.getcwd())\n"
    window = window_around(text, 15)
    assert window.text == text
    assert window.start == 0
    assert window.cursor_position == Position(1, 5)


def test_window_of_a_huge_document_starts_and_ends_at_line_breaks() -> None:
    line = "value = compute(1, 2, 3)  # padding\n"
    text = line * 200_000  # 7 MB
    cursor = len(text) // 2 + 8
    window = window_around(text, cursor, before=64 * 1024, after=16 * 1024)
    assert len(window.text) <= 80 * 1024
    assert window.text.startswith(line)
    assert window.text.endswith("\n")
    assert text[window.start : window.start + len(window.text)] == window.text
    assert window.text[window.cursor :].startswith(text[cursor : cursor + 20])
    # The cursor position inside the window maps back to the same document offset.
    assert window.document_offset(window.cursor_position) == cursor
    assert window.cursor_position.character == 8


def test_window_translates_utf16_positions_back_to_the_document() -> None:
    line = f"label = '{EMOJI}{EMOJI}'\n"
    text = line * 10_000
    cursor = len(text) - 2  # before the closing quote of the last line
    window = window_around(text, cursor, before=1000, after=1000)
    assert window.start > 0
    position = window.cursor_position
    assert position.character == code_units(line[: line.index("'\n")], UTF16)
    assert window.document_offset(position) == cursor
    assert window.document_offset(Position(10**6, 0)) is None


def test_window_keeps_one_giant_line_by_cutting_it() -> None:
    text = "x" * 200_000
    window = window_around(text, 150_000, before=1000, after=500)
    assert window.text == "x" * 1500
    assert window.cursor == 1000


def test_window_start_on_a_line_start_keeps_that_line() -> None:
    text = "aaaa\nbbbb\ncccc"
    window = window_around(text, 12, before=7, after=10)
    assert window.text == "bbbb\ncccc"


def test_completion_request_carries_window_and_utf16_cursor() -> None:
    text = f"# {EMOJI}\nx = "
    request, window = completion_request(
        text, len(text), path="src/a.py", language_id="python", max_new_tokens=12
    )
    assert request.text == text
    assert request.position == Position(1, 4)
    assert (request.path, request.language_id, request.max_new_tokens) == ("src/a.py", "python", 12)
    assert window.cursor == len(text)


def test_read_source_file_refuses_non_utf8_binary_and_big(tmp_path: Path) -> None:
    good = tmp_path / "good.py"
    good.write_bytes(b"\xef\xbb\xbfprint('h\xc3\xa9')\n")
    assert read_source_file(good) == "print('hé')\n"

    latin1 = tmp_path / "latin1.py"
    latin1.write_bytes(b"name = 'Andr\xe9'\n")
    with pytest.raises(UnusableText, match="not UTF-8"):
        read_source_file(latin1)

    binary = tmp_path / "blob.bin"
    binary.write_bytes(b"ELF\x00\x01\x02")
    with pytest.raises(UnusableText, match="binary"):
        read_source_file(binary)

    with pytest.raises(UnusableText, match="more than"):
        read_source_file(good, max_bytes=4)

    with pytest.raises(UnusableText, match="cannot read"):
        read_source_file(tmp_path / "missing.py")


def test_prompt_path_is_relative_to_the_innermost_root(tmp_path: Path) -> None:
    outer, inner = tmp_path / "repo", tmp_path / "repo" / "sub"
    file = inner / "pkg" / "mod.py"
    assert prompt_path(file, [outer, inner]) == "pkg/mod.py"
    assert prompt_path(outer / "x" / ".." / "top.py", [outer]) == "top.py"
    elsewhere = tmp_path / "other" / "mod.py"
    assert prompt_path(elsewhere, [outer]) == elsewhere.as_posix()
    assert containing_root(outer / ".." / "escape.py", [outer]) is None
