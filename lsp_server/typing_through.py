"""Typing through a suggestion: when the user types the characters a shown suggestion starts
with, the rest of that suggestion is the answer, without running the model.

The server remembers the last suggestion it answered (or the one the client says it shows) for
each document, with the document text it was made for. A later request continues it when the
text before the old cursor is unchanged, the characters typed since are a prefix of the
suggestion, and the text after the cursor is unchanged. Plain string arithmetic in document
offsets (code points); no protocol, no model.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

# Documents whose last suggestion is remembered; the least recently used is forgotten.
REMEMBERED_DOCUMENTS = 32


@dataclass(frozen=True)
class ShownSuggestion:
    """A suggestion as answered: `text` replaces document[cursor:replace_end] at `cursor`."""

    document: str  # the whole document text the suggestion was made for
    cursor: int
    text: str
    replace_end: int  # == cursor for a pure insertion
    item_id: str = ""


@dataclass(frozen=True)
class Continuation:
    """The rest of a suggestion after `typed` was typed: `text` replaces
    document[cursor:replace_end] of the new document."""

    text: str
    cursor: int
    replace_end: int
    typed: str
    item_id: str


def continue_suggestion(shown: ShownSuggestion, document: str, cursor: int) -> Continuation | None:
    """The rest of `shown` if `document` is its document with a prefix of its text typed at
    its cursor and the cursor right after that; None otherwise (or when nothing is left)."""
    typed_length = cursor - shown.cursor
    if typed_length <= 0 or typed_length >= len(shown.text):
        return None
    # The typed characters sit where the suggestion would have gone...
    typed = document[shown.cursor : cursor]
    if not shown.text.startswith(typed):
        return None
    # ...and nothing else changed (slices compare with memcmp: a millisecond for megabytes).
    if len(document) != len(shown.document) + typed_length:
        return None
    if document[: shown.cursor] != shown.document[: shown.cursor]:
        return None
    if document[cursor:] != shown.document[shown.cursor :]:
        return None
    return Continuation(
        text=shown.text[typed_length:],
        cursor=cursor,
        replace_end=shown.replace_end + typed_length,
        typed=typed,
        item_id=shown.item_id,
    )


class ShownSuggestions:
    """The last suggestion per document, for `continue_suggestion`."""

    def __init__(self, capacity: int = REMEMBERED_DOCUMENTS) -> None:
        self._by_uri: OrderedDict[str, ShownSuggestion] = OrderedDict()
        self._capacity = capacity

    def remember(self, uri: str, shown: ShownSuggestion) -> None:
        self._by_uri[uri] = shown
        self._by_uri.move_to_end(uri)
        while len(self._by_uri) > self._capacity:
            self._by_uri.popitem(last=False)

    def forget(self, uri: str) -> None:
        self._by_uri.pop(uri, None)

    def get(self, uri: str) -> ShownSuggestion | None:
        return self._by_uri.get(uri)

    def continuation(self, uri: str, document: str, cursor: int) -> Continuation | None:
        shown = self._by_uri.get(uri)
        return None if shown is None else continue_suggestion(shown, document, cursor)
