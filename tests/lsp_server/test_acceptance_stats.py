"""Acceptance and retention counting (lsp_server/acceptance_stats.py), and its file."""

from __future__ import annotations

import json
from pathlib import Path

from lsp_server.acceptance_stats import (
    AcceptanceStats,
    CountsByLanguage,
    StatsStore,
    describe,
    retained_characters,
)

SUGGESTION = "return a * b\n"


def test_shown_partial_then_whole_acceptance_counts_each_character_once(tmp_path: Path) -> None:
    stats = AcceptanceStats(StatsStore(tmp_path / "stats.json"))
    item = stats.issue("file:///m.py", "python", SUGGESTION, 3)
    stats.shown(item)
    stats.shown(item)  # shown again: still one suggestion shown
    check = stats.partially_accepted(item, 6)  # "return"
    assert check is not None and check.item_id == item
    assert stats.partially_accepted(item, 4) is None  # less than before: nothing new
    assert stats.accepted(item) is None  # the retention check is already scheduled
    assert stats.accepted(item) is None
    counts = stats.session.total
    assert (counts.shown, counts.accepted, counts.partially_accepted) == (1, 1, 0)
    assert counts.accepted_chars == len(SUGGESTION)
    assert stats.session.by_language["python"].accepted == 1


def test_unknown_items_are_ignored(tmp_path: Path) -> None:
    stats = AcceptanceStats(StatsStore(tmp_path / "stats.json"))
    stats.shown("nope")
    assert stats.accepted("nope") is None
    assert stats.partially_accepted("nope", 3) is None
    assert stats.session.total.shown == 0


def test_retention_counts_what_is_left_near_the_line() -> None:
    document = "def f(a, b):\n    return a * b\n"
    assert retained_characters("return a * b", document, 1) == len("return a * b")
    edited = "def f(a, b):\n    return a + b  # sum\n"
    # "return a " is kept; " b", two characters, is too short a run to tell from chance.
    assert retained_characters("return a * b", edited, 1) == len("return a ")
    assert retained_characters("return a * b", "def f(a, b):\n    pass\n", 1) == 0
    far_below = "\n" * 100 + document
    assert retained_characters("return a * b", far_below, 1) == 0


def test_retention_check_uses_the_accepted_part(tmp_path: Path) -> None:
    stats = AcceptanceStats(StatsStore(tmp_path / "stats.json"))
    item = stats.issue("file:///m.py", "python", SUGGESTION, 1)
    check = stats.partially_accepted(item, len("return a"))
    assert check is not None
    assert stats.check_retention(check, "def f(a, b):\n    return a\n") == len("return a")
    counts = stats.session.total
    assert (counts.checked_chars, counts.retained_chars) == (8, 8)
    assert stats.check_retention(check, None) is None  # the document is gone


def test_counts_merge_into_the_file_across_servers(tmp_path: Path) -> None:
    path = tmp_path / "state" / "stats.json"
    first, second = AcceptanceStats(StatsStore(path)), AcceptanceStats(StatsStore(path))
    assert first.save() == CountsByLanguage()
    assert not path.exists()  # nothing counted, nothing written
    for stats, language in ((first, "python"), (second, "rust")):
        item = stats.issue("file:///x", language, "abc", 0)
        stats.shown(item)
        stats.accepted(item)
    first.save()
    totals = second.save()
    assert totals is not None
    assert (totals.total.shown, totals.total.accepted_chars) == (2, 6)
    assert sorted(totals.by_language) == ["python", "rust"]
    assert first.save() == totals  # nothing new: the file is read, not rewritten
    saved = json.loads(path.read_text())
    assert saved["total"]["acceptanceRate"] == 1.0
    assert "abc" not in path.read_text()  # counts only, never code
    assert "2 shown, 2 accepted" in describe(totals)


def test_a_corrupt_file_reads_as_empty(tmp_path: Path) -> None:
    path = tmp_path / "stats.json"
    path.write_text("{not json")
    assert StatsStore(path).read() == CountsByLanguage()
    path.write_text(json.dumps({"total": {"shown": -3, "accepted": "x", "acceptedChars": 7}}))
    counts = StatsStore(path).read().total
    assert (counts.shown, counts.accepted, counts.accepted_chars) == (0, 0, 7)
