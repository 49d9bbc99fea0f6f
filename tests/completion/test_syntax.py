"""Mode decision and the ERROR/MISSING check, with the real tree-sitter grammars."""

from __future__ import annotations

import pytest

from completion.cursor import CursorContext, split_at
from completion.languages import LANGUAGES, language_for
from completion.request import Position
from completion.syntax import (
    WINDOW_BEFORE_CHARS,
    ModeOptions,
    SyntaxCheck,
    SyntaxWindow,
    cursor_mode,
    cut_points,
)

CURSOR = "‸"


def at_cursor(document: str) -> CursorContext:
    offset = document.index(CURSOR)
    text = document.replace(CURSOR, "", 1)
    line = text.count("\n", 0, offset)
    return split_at(text, Position(line, offset - (text.rfind("\n", 0, offset) + 1)))


@pytest.mark.parametrize(
    ("language", "document", "mode", "reason"),
    [
        ("python", "def f():‸", "block", "opener"),
        ("python", "def f():\n    ‸\n", "block", "blank_line"),
        ("python", "class A:\n    def f(self):\n        if x:‸\n", "block", "opener"),
        ("python", "try:\n    run()\nexcept ValueError:‸", "block", "opener"),
        ("python", "if ready:\n    go()\nelse:‸", "block", "opener"),
        ("python", "d = {'a':‸", "line", "not_a_block"),
        ("python", "f = lambda x:‸", "line", "not_a_block"),
        ("python", "class A:\n    def f(self):\n        d = {'k':‸\n", "line", "not_a_block"),
        ("python", "x = foo(‸)", "line", "before_closers"),
        ("python", "    return x‸", "line", "end_of_line"),
        ("python", "x = foo(‸, b)", "line", "code_after_cursor"),
        ("python", "x = fo‸o", "none", "mid_word"),
        ("python", "x = 'ab‸", "line", "in_string"),
        ("python", "x = 1  # note‸", "line", "in_comment"),
        ("python", 'def f():\n    """Doc‸\n    """\n', "line", "in_string"),
        ("python", "x = f'{a‸}'", "line", "before_closers"),
        ("javascript", "function f() {‸}", "block", "empty_body"),
        ("javascript", "foo(function () {‸});", "block", "empty_body"),
        ("javascript", "function f() {‸", "block", "opener"),
        ("javascript", "const s = `a${b‸}`;", "line", "before_closers"),
        ("javascript", "const s = `a‸`;", "line", "in_string"),
        ("javascript", "// comment‸\nfoo();", "line", "in_comment"),
        ("javascript", "/* done */‸", "line", "end_of_line"),
        ("go", "func main() {\n\t‸\n}\n", "block", "blank_line"),
        ("rust", "fn f<'a>(x: &'a str) {‸}", "block", "empty_body"),
        ("java", "int x = 1; /* hi ‸ */", "line", "in_comment"),
        ("c", 'printf("hi‸");', "line", "in_string"),
        ("c", "#include <stdio‸>", "line", "in_string"),
    ],
)
def test_cursor_mode(language: str, document: str, mode: str, reason: str) -> None:
    result = cursor_mode(language_for(language), at_cursor(document))
    assert (result.mode, result.reason) == (mode, reason)


def test_comments_and_strings_can_be_switched_off() -> None:
    off = ModeOptions(complete_in_comments=False, complete_in_strings=False)
    python = language_for("python")
    assert cursor_mode(python, at_cursor("x = 1  # note‸"), off).mode == "none"
    assert cursor_mode(python, at_cursor("x = 'ab‸'"), off).mode == "none"
    assert cursor_mode(python, at_cursor("x = 1‸"), off).mode == "line"


def test_unknown_language_uses_the_text_rules() -> None:
    assert cursor_mode(None, at_cursor("if x then‸")).mode == "line"
    assert cursor_mode(None, at_cursor("  ‸")).mode == "block"
    assert cursor_mode(None, at_cursor("ab‸cd")).mode == "none"


def test_every_grammar_loads() -> None:
    for language in LANGUAGES:
        assert language.grammar() is not None, language.name


def test_window_starts_at_a_top_level_line() -> None:
    body = "".join(f"    x{i} = {i}\n" for i in range(500))
    prefix = f"def first():\n{body}\ndef second():\n{body}    "
    window = SyntaxWindow.around(at_cursor(prefix + CURSOR))
    assert len(window.before) <= WINDOW_BEFORE_CHARS
    assert window.before.startswith("def second():")


def check_for(language: str, document: str) -> SyntaxCheck:
    grammar = language_for(language).grammar()  # type: ignore[union-attr]
    assert grammar is not None
    return SyntaxCheck(grammar, SyntaxWindow.around(at_cursor(document)))


def test_syntax_check_counts_errors_a_completion_adds() -> None:
    check = check_for("python", "def f(x):\n    y = ‸\n")
    assert check.baseline_errors > 0  # an assignment without its value
    assert check.errors_with("x + 1") == 0
    assert check.errors_with("x +") > check.errors_with("x + 1")


def test_longest_clean_cuts_back_to_a_prefix_that_parses() -> None:
    check = check_for("python", "value = compute(‸)\n")
    text = "a, b)) + 1"
    assert check.longest_clean(text, 1, cut_points(text, block=False)) == len("a, b")
    # Replacing the auto-closed ")" the completion types itself is clean.
    assert check.longest_clean("a, b)", 1, cut_points("a, b)", block=False)) == len("a, b)")


def test_longest_clean_in_a_block_cuts_at_line_ends() -> None:
    check = check_for("c", "int main(void) {\n    ‸\n}\n")
    text = "int a = 1;\n    int b = (2;\n    return a;"
    cut = check.longest_clean(text, 0, cut_points(text, block=True))
    assert text[:cut] == "int a = 1;"


def test_cut_points() -> None:
    assert cut_points("a\n  b\nc", block=True) == [1, 5]
    assert cut_points("foo(a, b)", block=False) == [3, 5, 8, 9]
