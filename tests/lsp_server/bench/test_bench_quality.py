"""Holes chosen with tree-sitter, suggestions applied as an editor applies them, and scores."""

from __future__ import annotations

import random
from pathlib import Path

from lsprotocol import types

from lsp_server.bench.quality import (
    Hole,
    edit_similarity,
    filled_text,
    grammar_for,
    hole_candidates,
    sample_holes,
    score,
)
from lsp_server.bench.workspace import SourceFile, source_files

SOURCE = """\
'''Averages.'''
import os


def mean(values):
    if not values:
        raise ValueError("mean of nothing")
    return sum(values) / len(values)


def one_liner(x): return x
"""


def test_line_holes_run_to_the_line_end_and_blocks_are_two_to_eight_lines() -> None:
    grammar = grammar_for("python")
    assert grammar is not None
    found = hole_candidates(SOURCE, grammar, random.Random(0))
    blocks = {SOURCE[start:end] for start, end in found["block"]}
    # The function body (3 lines); neither the one-line `if` body nor the one-liner's.
    assert blocks == {
        'if not values:\n        raise ValueError("mean of nothing")\n'
        "    return sum(values) / len(values)"
    }
    assert found["line"]
    for start, end in found["line"]:
        assert SOURCE[end] == "\n"
        assert "Averages" not in SOURCE[start:end]  # never a docstring
        assert "\n" not in SOURCE[start:end]
        assert len(SOURCE[start:end].strip()) >= 4


def test_a_file_that_does_not_parse_gets_no_holes() -> None:
    grammar = grammar_for("python")
    assert grammar is not None
    broken = SOURCE + "def broken(:\n    pass\n"
    assert hole_candidates(broken, grammar, random.Random(0)) == {"line": [], "block": []}


def test_holes_take_turns_between_lines_and_blocks(tmp_path: Path) -> None:
    for name in ("a.py", "b.py", "c.py"):
        (tmp_path / name).write_text(SOURCE)
    holes = sample_holes(source_files(tmp_path), 4, seed=3)
    assert [hole.kind for hole in holes] == ["line", "block", "line", "block"]
    assert holes == sample_holes(source_files(tmp_path), 4, seed=3)


def test_edit_similarity() -> None:
    assert edit_similarity("", "") == 1.0
    assert edit_similarity("abc", "abc") == 1.0
    assert edit_similarity("kitten", "sitting") == 1 - 3 / 7
    assert edit_similarity("abc", "") == 0.0


def test_a_suggestion_replaces_its_range_even_before_the_cursor() -> None:
    holed = "x = os.pa\n"
    item = types.InlineCompletionItem(
        insert_text="os.path.join(a)",
        range=types.Range(start=types.Position(0, 4), end=types.Position(0, 9)),
    )
    assert filled_text(holed, 9, item) == "x = os.path.join(a)\n"
    assert filled_text(holed, 9, None) == holed


def hole_in(source: str, expected: str, kind: str = "line") -> Hole:
    start = source.index(expected)
    file = SourceFile(Path("/w/m.py"), "m.py", "python")
    return Hole(file, kind, start, start + len(expected), 0, 0, 1)


def test_scores_compare_what_filled_the_hole_with_what_was_there() -> None:
    hole = hole_in(SOURCE, "sum(values) / len(values)")
    holed = SOURCE[: hole.start] + SOURCE[hole.end :]

    exact = score(
        hole, SOURCE, holed[: hole.start] + "sum(values) / len(values)  " + holed[hole.start :], 5.0
    )
    assert (exact.exact, exact.similarity < 1, exact.syntax_ok) == (True, True, True)

    close = score(hole, SOURCE, holed[: hole.start] + "sum(values) / 2" + holed[hole.start :], 5.0)
    assert not close.exact
    assert close.expected == "sum(values) / len(values)"
    assert close.got == "sum(values) / 2"
    assert close.syntax_ok

    broken = score(hole, SOURCE, holed[: hole.start] + "sum(values" + holed[hole.start :], 5.0)
    assert not broken.syntax_ok

    empty = score(hole, SOURCE, holed, None)
    assert (empty.got, empty.exact, empty.similarity) == ("", False, 0.0)
