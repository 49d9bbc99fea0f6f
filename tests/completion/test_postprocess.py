"""Post-processing rules one at a time (the golden cases run them together)."""

from __future__ import annotations

import pytest

from completion.cursor import CursorContext, split_at
from completion.languages import language_for
from completion.postprocess import (
    document_indent_unit,
    postprocess,
    take_over_line_suffix,
    trim_next_lines,
    unmatched_closers,
)
from completion.request import Position

CURSOR = "‸"


def at_cursor(document: str) -> CursorContext:
    offset = document.index(CURSOR)
    text = document.replace(CURSOR, "", 1)
    line = text.count("\n", 0, offset)
    return split_at(text, Position(line, offset - (text.rfind("\n", 0, offset) + 1)))


def test_whitespace_only_is_dropped_and_trailing_whitespace_stripped() -> None:
    ctx = at_cursor("x = ‸")
    assert postprocess("  \n\t\n", ctx, block=False).dropped == "whitespace"
    assert postprocess("1   \n\n", ctx, block=False).text == "1"
    block = at_cursor("def f():\n    ‸")
    assert postprocess("a = 1  \n    b = 2\t\n\n", block, block=True).text == "a = 1\n    b = 2"


def test_extra_first_line_indentation_moves_the_block_back() -> None:
    ctx = at_cursor("def f():\n    ‸")
    text = "    if x:\n            return 1\n        return 2"
    assert postprocess(text, ctx, block=True).text == "if x:\n        return 1\n    return 2"


def test_indentation_follows_the_documents_tabs() -> None:
    ctx = at_cursor("func f() {\n\tx := 1\n\tif x > 0 {\n\t\tg()\n\t}\n\t‸\n}\n")
    out = postprocess("for {\n        h()\n    }", ctx, block=True, language=language_for("go"))
    assert out.text == "for {\n\t\th()\n\t}"


def test_indentation_follows_the_documents_spaces() -> None:
    ctx = at_cursor("def f():\n  if a:\n    b()\n  ‸")
    assert postprocess("if c:\n\t\td()", ctx, block=True).text == "if c:\n    d()"


@pytest.mark.parametrize(
    ("prefix", "unit"),
    [("def f():\n  a\n", "  "), ("fn f() {\n\ta\n}\n", "\t"), ("x = 1\n", "    ")],
)
def test_document_indent_unit(prefix: str, unit: str) -> None:
    assert document_indent_unit(prefix) == unit


def test_loops_are_dropped() -> None:
    ctx = at_cursor("values = [‸")
    assert postprocess("1.0, 1.0, 1.0, 1.0, 1.0, 1.0", ctx, block=False).dropped == "loop"
    assert postprocess("1.0, 2.0, 3.0, 4.0]", ctx, block=False).text == "1.0, 2.0, 3.0, 4.0]"


def test_repeating_the_previous_line_is_dropped() -> None:
    ctx = at_cursor("result = compute(a, b)\nresult = ‸")
    assert postprocess("compute(a, b)", ctx, block=False).dropped == "repeats_prefix"
    # Short lines repeat in ordinary code.
    ctx = at_cursor("i += 1\n‸")
    assert postprocess("i += 1", ctx, block=True).text == "i += 1"
    # A completion that goes on after copying a line other than the last is code too.
    ctx = at_cursor("a = load(path)\nb = load(other)\n‸")
    text = "a = load(path)\nc = a + b"
    assert postprocess(text, ctx, block=True).text == text


def test_trim_next_lines() -> None:
    suffix = "\n    return total\n\ndef other():\n"
    assert trim_next_lines("total += 1\n    return total", suffix) == "total += 1"
    # A substantial line copied from below, followed by more: cut at the copy.
    assert trim_next_lines("x = 1\n    return total\n    y = 2", suffix) == "x = 1"
    # A short line that happens to equal the next one is kept when the rest differs.
    assert trim_next_lines("a()\n}\nb()", "\n}\n") == "a()\n}\nb()"
    assert trim_next_lines("one line", suffix) == "one line"


def test_unmatched_closers() -> None:
    assert unmatched_closers("a) + f(b))", "\"'") == [1, 9]
    assert unmatched_closers("x')", "'", cursor_quote="'") == [1, 2]
    assert unmatched_closers("')'", "'") == []  # a closer inside a string the text opens
    assert unmatched_closers("{a}]", "'") == [3]


@pytest.mark.parametrize(
    ("text", "line_suffix", "in_string", "expected"),
    [
        ("n - 1))", "))", False, ("n - 1", 0)),
        ("len(a)", ")", False, ("len(a)", 0)),  # its own ")": the editor's stays
        ("len(a))", ")", False, ("len(a)", 0)),
        ('hello")', '")', True, ("hello", 0)),
        ('hello", name)', '")', True, ('hello", name)', 2)),
        ("a, b)", ");", False, ("a, b", 0)),
        ('done");', '"); }', True, ("done", 0)),
        ("a, b", ", b)", False, ("a, b", 0)),
        ("a, b)", ", b)", False, ("a", 0)),  # the whole rest of the line re-typed
        ("\n  return 1;\n}", "}", False, ("\n  return 1;\n}", 1)),
        ("a]", ")", False, ("a]", 0)),  # not the editor's closer: the syntax check decides
    ],
)
def test_take_over_line_suffix(
    text: str, line_suffix: str, in_string: bool, expected: tuple[str, int]
) -> None:
    language = language_for("c" if ";" in text + line_suffix else "python")
    assert take_over_line_suffix(text, line_suffix, language, in_string) == expected


def test_everything_retyped_is_dropped() -> None:
    ctx = at_cursor("foo(‸)")
    assert postprocess(")", ctx, block=False).dropped == "duplicates_suffix"
