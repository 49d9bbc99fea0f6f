"""Stop criteria fed the way decoding feeds them: a few characters at a time."""

from __future__ import annotations

import pytest

from completion.languages import language_for
from completion.stops import (
    DEFAULT_MAX_LINES,
    BracketLexer,
    StopCriteria,
    StopDecision,
    decide_mode,
    indent_width,
)


def stream(
    criteria: StopCriteria, text: str, step: int = 1, cut_off: bool | None = None
) -> tuple[StopDecision, str, int]:
    """Feed `text` in chunks; returns the decision, the kept text, and how much was fed."""
    fed = 0
    for start in range(0, len(text), step):
        chunk = text[start : start + step]
        fed += len(chunk)
        decision = criteria.feed(chunk)
        if decision.stop:
            return decision, criteria.text[: decision.keep_chars], fed
    decision = criteria.finish() if cut_off is None else criteria.finish(cut_off)
    return decision, criteria.text[: decision.keep_chars], fed


@pytest.mark.parametrize(
    ("prefix_line", "suffix_line", "mode"),
    [
        ("", "", "block"),
        ("    ", "", "block"),
        ("\t\t", "  ", "block"),
        ("def f(x):", "", "block"),
        ("if (ready) {", "", "block"),
        ("items = [", "", "block"),
        ("x = ", "", "line"),
        ("    return foo", "", "line"),
        ("    x = foo(", ")", "line"),
        ("print('", "')", "line"),
        ("items = [", "]", "line"),
        ("foo(", "bar)", "line"),
        ("    ", "x = 1", "line"),
        ("value = compute(a, ", "b)  # why", "line"),
    ],
)
def test_decide_mode(prefix_line: str, suffix_line: str, mode: str) -> None:
    assert decide_mode(prefix_line, suffix_line) == mode


def test_indent_width() -> None:
    assert indent_width("    x") == 4
    assert indent_width("\tx") == 4
    assert indent_width("  \tx") == 4
    assert indent_width("\t x", tab_size=8) == 9
    assert indent_width("") == 0


# Line mode.


def test_line_stops_at_the_first_newline_as_soon_as_it_arrives() -> None:
    decision, kept, fed = stream(StopCriteria("line", "x = "), "foo(1)\n    y = 2\n")
    assert (decision.reason, kept, fed) == ("newline", "foo(1)", 7)


def test_line_keeps_crlf_out() -> None:
    decision, kept, _ = stream(StopCriteria("line", "x = "), "1\r\ny", step=3)
    assert kept == "1" and decision.reason == "newline"


def test_line_can_be_empty() -> None:
    assert stream(StopCriteria("line", "x = 1"), "\nfoo")[1] == ""


def test_line_without_newline_keeps_everything_at_the_end() -> None:
    decision, kept, _ = stream(StopCriteria("line", "x = "), "compute()")
    assert (decision.stop, decision.reason, kept) == (True, "end", "compute()")


def test_feed_reports_progress_before_stopping() -> None:
    criteria = StopCriteria("line")
    assert criteria.feed("abc") == StopDecision(False, 3)
    assert criteria.feed("\nmore").stop
    # Final: later text changes nothing.
    assert criteria.feed("\n\n") == criteria.finish() == StopDecision(True, 3, "newline")


# Block mode, cursor on a blank line.


def test_block_stops_at_dedent_on_its_first_character() -> None:
    text = "x = 1\n    y = 2\ndef g():\n    pass\n"
    decision, kept, fed = stream(StopCriteria("block", "    "), text)
    assert (decision.reason, kept) == ("dedent", "x = 1\n    y = 2")
    assert text[:fed].endswith("\nd")


def test_block_stops_at_blank_line_before_the_next_statement() -> None:
    text = "import os\nimport sys\n\n\ndef main():\n    pass\n"
    decision, kept, _ = stream(StopCriteria("block", ""), text, step=4)
    assert (decision.reason, kept) == ("blank_line", "import os\nimport sys")


def test_block_keeps_blank_lines_inside_a_nested_body() -> None:
    text = "def main():\n    a = 1\n\n    return a\n\n\nmain()\n"
    decision, kept, _ = stream(StopCriteria("block", ""), text)
    assert (decision.reason, kept) == ("blank_line", "def main():\n    a = 1\n\n    return a")


def test_block_indent_comes_from_the_first_generated_line() -> None:
    # The editor left the cursor at column 0; the model indents the body itself.
    text = "    return total\n\ndef other():\n"
    decision, kept, _ = stream(StopCriteria("block", ""), text)
    assert (decision.reason, kept) == ("dedent", "    return total")


def test_block_closing_bracket_below_the_cursor_is_not_ours() -> None:
    decision, kept, _ = stream(StopCriteria("block", "  "), "foo();\n  bar();\n}\n")
    assert (decision.reason, kept) == ("dedent", "foo();\n  bar();")


# Block mode, cursor after a block opener.


def test_opener_body_ends_at_dedent() -> None:
    text = "\n    return 1\n\ndef g():\n"
    decision, kept, _ = stream(StopCriteria("block", "def f():"), text)
    assert (decision.reason, kept) == ("dedent", "\n    return 1")


def test_opener_body_may_hold_blank_lines() -> None:
    text = "\n    a = 1\n\n    return a\nx = f()\n"
    decision, kept, _ = stream(StopCriteria("block", "def f():"), text)
    assert (decision.reason, kept) == ("dedent", "\n    a = 1\n\n    return a")


def test_opener_includes_its_closing_bracket_line() -> None:
    text = "\n  foo();\n}\nbar();\n"
    decision, kept, fed = stream(StopCriteria("block", "if (x) {"), text)
    assert (decision.reason, kept) == ("close", "\n  foo();\n}")
    assert fed == len("\n  foo();\n}\n")


def test_nested_opener_uses_the_cursor_lines_indent() -> None:
    text = "\n        continue\n    total += x\n"
    decision, kept, _ = stream(StopCriteria("block", "    if x is None:"), text)
    assert (decision.reason, kept) == ("dedent", "\n        continue")


# Fences, repetition, caps, the end of generation.


def test_fence_stops() -> None:
    decision, kept, _ = stream(StopCriteria("block", ""), "import os\n```\nExplanation")
    assert (decision.reason, kept) == ("fence", "import os")
    decision, kept, _ = stream(StopCriteria("block", "    "), "```python\n")
    assert (decision.reason, kept) == ("fence", "")


def test_backticks_that_are_not_a_fence_pass() -> None:
    decision, kept, _ = stream(StopCriteria("block", ""), "x = 1\n`cmd`\n")
    assert (decision.reason, kept) == ("end", "x = 1\n`cmd`")


def test_repeated_line_stops() -> None:
    text = "print('hello')\n    print('hello')\n    print('hello')\n"
    decision, kept, _ = stream(StopCriteria("block", "    "), text)
    assert (decision.reason, kept) == ("repetition", "print('hello')")


def test_repeated_group_of_lines_stops() -> None:
    text = "a = f(1)\nb = g(2)\na = f(1)\nb = g(2)\n"
    decision, kept, _ = stream(StopCriteria("block", ""), text, step=5)
    assert (decision.reason, kept) == ("repetition", "a = f(1)\nb = g(2)")


def test_short_repeated_lines_are_code() -> None:
    text = "\n    if a:\n        pass\n    if b:\n        pass\n"
    decision, kept, _ = stream(StopCriteria("block", "def f():"), text)
    assert decision.reason == "end" and kept == text.rstrip()


def test_line_cap() -> None:
    text = "".join(f"v{i} = {i}\n" for i in range(20))
    decision, kept, _ = stream(StopCriteria("block", ""), text)
    assert decision.reason == "line_cap"
    assert kept.count("\n") == DEFAULT_MAX_LINES - 1
    decision, kept, _ = stream(StopCriteria("block", "", max_lines=2), text)
    assert kept == "v0 = 0\nv1 = 1"


def test_finish_trims_trailing_blank_lines() -> None:
    decision, kept, _ = stream(StopCriteria("block", "def f():"), "\n    return 1\n\n   ")
    assert (decision.reason, kept) == ("end", "\n    return 1")


def test_cut_off_drops_a_partial_last_line() -> None:
    text = "x = foo(\n        1,\n    )\n    y = compute(a, "
    decision, kept, _ = stream(StopCriteria("block", "    "), text, cut_off=True)
    assert (decision.reason, kept) == ("cut_off", "x = foo(\n        1,\n    )")


def test_cut_off_keeps_a_lone_partial_line() -> None:
    decision, kept, _ = stream(StopCriteria("block", "    "), "return compute(", cut_off=True)
    assert kept == "return compute("


def test_for_cursor_picks_the_mode() -> None:
    assert StopCriteria.for_cursor("x = ", "").mode == "line"
    assert StopCriteria.for_cursor("    ", "").mode == "block"


@pytest.mark.parametrize("step", [1, 2, 3, 7, 100])
def test_chunking_does_not_change_the_result(step: int) -> None:
    text = "for x in xs:\n        total += x\n    return total\n\nprint(f())\n"
    assert (
        stream(StopCriteria("block", "    "), text, step=step)[:2]
        == stream(StopCriteria("block", "    "), text, step=1)[:2]
    )


# Bracket-style blocks (C-like languages): the lexer and the rules built on it.


@pytest.mark.parametrize(
    ("language", "lines", "depths"),
    [
        ("c", ["if (x) {", "  f(')');", "} else {", "}"], [(0, 1), (1, 1), (0, 1), (0, 0)]),
        ("c", ["/* { */ {", "  /* }", "  } */", "}"], [(0, 1), (1, 1), (1, 1), (0, 0)]),
        ("rust", ["fn f<'a>(x: &'a str) {", "    '{'", "}"], [(0, 1), (1, 1), (0, 0)]),
        ("javascript", ["const s = `{", "}`; f(() => {", "})"], [(0, 0), (0, 2), (0, 0)]),
        ("go", ['s := "}" // }', "x := `", "{`"], [(0, 0), (0, 0), (0, 0)]),
        ("python", ['x = """{', '}""" + f(#', ")"], [(0, 0), (0, 1), (0, 0)]),
    ],
)
def test_bracket_lexer(language: str, lines: list[str], depths: list[tuple[int, int]]) -> None:
    lexer = BracketLexer(language_for(language))
    seen = []
    for line in lines:
        low = lexer.scan(line)
        seen.append((low, lexer.depth))
    assert seen == depths


def test_lexer_reports_a_string_open_at_the_line_end() -> None:
    lexer = BracketLexer(language_for("python"))
    lexer.scan("print('it")
    assert lexer.string_at_line_end == "'"
    lexer.scan("print('it')")
    assert lexer.string_at_line_end == ""
    assert lexer.in_code


def test_balancing_bracket_ends_the_block_whatever_the_indentation() -> None:
    c = language_for("c")
    text = "\nfoo();\n  }\nbar();\n"
    decision, kept, _ = stream(StopCriteria("block", "if (x) {", language=c), text)
    assert (decision.reason, kept) == ("close", "\nfoo();\n  }")


def test_closer_that_leaves_the_cursors_block_stops_before_its_line() -> None:
    c = language_for("c")
    decision, kept, fed = stream(StopCriteria("block", "    ", language=c), "a();\n}\nb();\n")
    assert (decision.reason, kept) == ("close_outer", "a();")
    assert fed == len("a();\n}")  # decided on the closer's first character
    decision, kept, _ = stream(StopCriteria("block", "    ", language=c), "a();\n    b(); }\n")
    assert (decision.reason, kept) == ("close_outer", "a();")


def test_brackets_inside_strings_do_not_close_blocks() -> None:
    java = language_for("java")
    text = '\n    log("}");\n}\nnext();\n'
    decision, kept, _ = stream(StopCriteria("block", "void f() {", language=java), text)
    assert (decision.reason, kept) == ("close", '\n    log("}");\n}')
