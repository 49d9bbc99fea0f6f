"""Typing through a shown suggestion (lsp_server/typing_through.py): plain text arithmetic."""

from __future__ import annotations

from lsp_server.typing_through import ShownSuggestion, ShownSuggestions, continue_suggestion

BEFORE = "def area(r):\n    return "
AFTER = "\n\nprint(area(2))\n"
DOCUMENT = BEFORE + AFTER
CURSOR = len(BEFORE)
SHOWN = ShownSuggestion(DOCUMENT, CURSOR, "3.14159 * r * r", CURSOR, "item-1")


def typed(text: str) -> tuple[str, int]:
    return BEFORE + text + AFTER, CURSOR + len(text)


def test_typing_the_beginning_leaves_the_rest() -> None:
    continuation = continue_suggestion(SHOWN, *typed("3.14"))
    assert continuation is not None
    assert continuation.text == "159 * r * r"
    assert continuation.cursor == CURSOR + 4
    assert continuation.replace_end == CURSOR + 4
    assert continuation.typed == "3.14"
    assert continuation.item_id == "item-1"


def test_a_replaced_range_moves_with_the_cursor() -> None:
    # `print(|)` with the suggestion `x)` replacing the auto-closed bracket.
    document = "print()\n"
    shown = ShownSuggestion(document, 6, "x)", 7)
    continuation = continue_suggestion(shown, "print(x)\n", 7)
    assert continuation is not None
    assert (continuation.text, continuation.cursor, continuation.replace_end) == (")", 7, 8)


def test_no_continuation_unless_only_a_prefix_was_typed() -> None:
    cases = {
        "a different character": typed("2"),
        "nothing typed": (DOCUMENT, CURSOR),
        "the whole suggestion typed": typed("3.14159 * r * r"),
        "cursor moved back": (DOCUMENT, CURSOR - 1),
        "cursor not after the typed text": (typed("3.1")[0], CURSOR + 2),
        "an edit before the suggestion": ("# x\n" + BEFORE + "3.1" + AFTER, CURSOR + 7),
        "an edit after the cursor": (BEFORE + "3.1" + AFTER + "x", CURSOR + 3),
    }
    for name, (document, cursor) in cases.items():
        assert continue_suggestion(SHOWN, document, cursor) is None, name


def test_the_last_suggestion_per_document_is_remembered() -> None:
    shown = ShownSuggestions(capacity=2)
    shown.remember("file:///a.py", SHOWN)
    continuation = shown.continuation("file:///a.py", *typed("3"))
    assert continuation is not None and continuation.text == ".14159 * r * r"
    assert shown.continuation("file:///b.py", *typed("3")) is None
    shown.remember("file:///b.py", SHOWN)
    shown.remember("file:///c.py", SHOWN)  # over capacity: a.py, the oldest, is forgotten
    assert shown.get("file:///a.py") is None
    shown.forget("file:///b.py")
    assert shown.get("file:///b.py") is None
    assert shown.get("file:///c.py") == SHOWN
