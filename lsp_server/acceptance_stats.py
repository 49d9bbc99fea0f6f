"""Local acceptance and retention statistics: how many suggestions were shown, how many
characters the user accepted, and how many of those are still in the file 30 s later.

Every suggestion the server answers is issued an id, which travels in the item's `command`
(run by the client on accept) and in the Copilot-style `textDocument/didShowCompletion` and
`textDocument/didPartiallyAcceptCompletion` notifications. The counts live in memory and are
merged into one JSON file in the user's state folder (`nexttoken stats` reads it). Nothing here
talks to the network, and no code text is stored: only counts. Scheduling the retention check
and reading the document belong to the server; this module only counts and compares text.
"""

from __future__ import annotations

import contextlib
import difflib
import json
import os
import uuid
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import platformdirs

STATS_FILE_ENV = "NEXTTOKEN_STATS_FILE"
RETENTION_DELAY_S = 30.0
RETENTION_DELAY_ENV = "NEXTTOKEN_RETENTION_DELAY_S"  # for tests, which cannot wait 30 s
# Lines around the accepted text searched for it at the retention check: edits above it move
# it down or up a little.
RETENTION_MARGIN_LINES = 10
# Matching runs shorter than this are chance (a space, a letter) and count as gone.
RETENTION_MIN_RUN = 3
# Issued items remembered for show and accept notifications (the rest are counted as unknown).
REMEMBERED_ITEMS = 512
FILE_VERSION = 1


def stats_file() -> Path:
    """Where the counts are kept; `NEXTTOKEN_STATS_FILE` overrides the platform's state folder."""
    override = os.environ.get(STATS_FILE_ENV)
    if override:
        return Path(override).expanduser()
    return Path(platformdirs.user_state_dir("nexttoken", appauthor=False)) / "acceptance.json"


def retention_delay_s() -> float:
    try:
        return max(0.0, float(os.environ.get(RETENTION_DELAY_ENV, RETENTION_DELAY_S)))
    except ValueError:
        return RETENTION_DELAY_S


@dataclass
class Counts:
    shown: int = 0  # suggestions the client reported showing
    accepted: int = 0  # suggestions accepted whole
    partially_accepted: int = 0  # suggestions accepted in part only (a word, a line)
    accepted_chars: int = 0  # characters inserted by accepting, whole or in part
    checked_chars: int = 0  # accepted characters whose retention was checked
    retained_chars: int = 0  # of those, still in the file RETENTION_DELAY_S later

    def add(self, other: Counts) -> None:
        for name in _COUNT_FIELDS:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def to_json(self) -> dict[str, Any]:
        shown_and_used = self.accepted + self.partially_accepted
        return {
            **{_camel(name): value for name, value in asdict(self).items()},
            "acceptanceRate": round(shown_and_used / self.shown, 4) if self.shown else None,
            "retentionRate": (
                round(self.retained_chars / self.checked_chars, 4) if self.checked_chars else None
            ),
        }

    @classmethod
    def from_json(cls, raw: Any) -> Counts:
        counts = cls()
        if isinstance(raw, dict):
            for name in _COUNT_FIELDS:
                value = raw.get(_camel(name))
                if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
                    setattr(counts, name, value)
        return counts


_COUNT_FIELDS = [f.name for f in fields(Counts)]


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


@dataclass
class CountsByLanguage:
    total: Counts = field(default_factory=Counts)
    by_language: dict[str, Counts] = field(default_factory=dict)

    def counts_for(self, language: str) -> Counts:
        return self.by_language.setdefault(language or "unknown", Counts())

    def add(self, other: CountsByLanguage) -> None:
        self.total.add(other.total)
        for language, counts in other.by_language.items():
            self.counts_for(language).add(counts)

    def to_json(self) -> dict[str, Any]:
        return {
            "total": self.total.to_json(),
            "byLanguage": {
                language: counts.to_json() for language, counts in sorted(self.by_language.items())
            },
        }

    @classmethod
    def from_json(cls, raw: Any) -> CountsByLanguage:
        if not isinstance(raw, dict):
            return cls()
        languages = raw.get("byLanguage")
        return cls(
            Counts.from_json(raw.get("total")),
            {
                str(language): Counts.from_json(counts)
                for language, counts in (languages.items() if isinstance(languages, dict) else [])
            },
        )


@dataclass
class IssuedItem:
    """A suggestion the server answered, as far as statistics need it."""

    item_id: str
    uri: str
    language: str
    text: str
    line: int  # zero-based line where the suggestion is inserted
    shown: bool = False
    accepted_chars: int = 0
    whole: bool = False
    retention_pending: bool = False


@dataclass(frozen=True)
class RetentionCheck:
    """Accepted text to look for in its document once the delay has passed."""

    item_id: str
    uri: str


def retained_characters(accepted: str, document: str, line: int) -> int:
    """How many characters of `accepted` are still in `document` near `line`: the characters
    of the matching runs (difflib's blocks, RETENTION_MIN_RUN characters or longer) between
    the accepted text and the lines around it."""
    if not accepted:
        return 0
    lines = document.splitlines(keepends=True)
    first = max(0, line - RETENTION_MARGIN_LINES)
    last = line + accepted.count("\n") + RETENTION_MARGIN_LINES + 1
    window = "".join(lines[first:last])
    matcher = difflib.SequenceMatcher(None, accepted, window, autojunk=False)
    shortest = min(RETENTION_MIN_RUN, len(accepted))
    return sum(b.size for b in matcher.get_matching_blocks() if b.size >= shortest)


class StatsStore:
    """The counts file: merged under a lock, so servers of several editors can share it."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def read(self) -> CountsByLanguage:
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return CountsByLanguage()
        return CountsByLanguage.from_json(raw)

    def merge(self, delta: CountsByLanguage) -> CountsByLanguage:
        """Add `delta` to the file's counts and return the new totals."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._locked():
            totals = self.read()
            totals.add(delta)
            temporary = self.path.with_name(self.path.name + ".tmp")
            document = {"version": FILE_VERSION, **totals.to_json()}
            temporary.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
            os.replace(temporary, self.path)
        return totals

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        try:
            import fcntl
        except ImportError:  # Windows: last writer wins
            yield
            return
        with open(self.path.with_name(self.path.name + ".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)


class AcceptanceStats:
    """Counts for this server's life, and what is not yet merged into the store."""

    def __init__(self, store: StatsStore | None) -> None:
        self.store = store
        self.session = CountsByLanguage()
        self._unsaved = CountsByLanguage()
        self._dirty = False
        self._items: OrderedDict[str, IssuedItem] = OrderedDict()

    def issue(self, uri: str, language: str, text: str, line: int) -> str:
        item_id = uuid.uuid4().hex
        self._items[item_id] = IssuedItem(item_id, uri, language, text, line)
        while len(self._items) > REMEMBERED_ITEMS:
            self._items.popitem(last=False)
        return item_id

    def item(self, item_id: str) -> IssuedItem | None:
        return self._items.get(item_id)

    def shown(self, item_id: str) -> None:
        item = self._items.get(item_id)
        if item is None or item.shown:
            return
        item.shown = True
        self._count(item.language, shown=1)

    def accepted(self, item_id: str) -> RetentionCheck | None:
        item = self._items.get(item_id)
        if item is None or item.whole:
            return None
        item.whole = True
        self._count(
            item.language,
            accepted=1,
            partially_accepted=-1 if item.accepted_chars else 0,
            accepted_chars=len(item.text) - item.accepted_chars,
        )
        item.accepted_chars = len(item.text)
        return self._retention_check(item)

    def partially_accepted(self, item_id: str, accepted_length: int) -> RetentionCheck | None:
        """`accepted_length`: characters of the item accepted so far (Copilot's meaning)."""
        item = self._items.get(item_id)
        if item is None or item.whole:
            return None
        length = min(max(accepted_length, 0), len(item.text))
        if length <= item.accepted_chars:
            return None
        self._count(
            item.language,
            partially_accepted=0 if item.accepted_chars else 1,
            accepted_chars=length - item.accepted_chars,
        )
        item.accepted_chars = length
        return self._retention_check(item)

    def check_retention(self, check: RetentionCheck, document: str | None) -> int | None:
        """Count what is left of the accepted text; None when the document is gone."""
        item = self._items.get(check.item_id)
        if item is None or document is None:
            return None
        item.retention_pending = False
        accepted = item.text[: item.accepted_chars]
        retained = retained_characters(accepted, document, item.line)
        self._count(item.language, checked_chars=len(accepted), retained_chars=retained)
        return retained

    def save(self) -> CountsByLanguage | None:
        """Merge what changed into the store; the store's totals (None without a store)."""
        if self.store is None:
            return None
        if not self._dirty:
            return self.store.read()  # nothing to add: leave the file (and the disk) alone
        delta, self._unsaved, self._dirty = self._unsaved, CountsByLanguage(), False
        try:
            return self.store.merge(delta)
        except OSError:
            self._unsaved.add(delta)  # try again next time
            self._dirty = True
            raise

    def _retention_check(self, item: IssuedItem) -> RetentionCheck | None:
        if item.retention_pending:
            return None  # the check already scheduled measures what is accepted by then
        item.retention_pending = True
        return RetentionCheck(item.item_id, item.uri)

    def _count(self, language: str, **changes: int) -> None:
        self._dirty = True
        for counts in (self.session, self._unsaved):
            for target in (counts.total, counts.counts_for(language)):
                for name, change in changes.items():
                    setattr(target, name, getattr(target, name) + change)


def describe(totals: CountsByLanguage) -> str:
    """The counts as a few lines for a terminal."""
    lines = []
    for name, counts in [("all languages", totals.total), *sorted(totals.by_language.items())]:
        summary = counts.to_json()
        acceptance = summary["acceptanceRate"]
        retention = summary["retentionRate"]
        lines.append(
            f"{name}: {counts.shown} shown, {counts.accepted} accepted"
            f" + {counts.partially_accepted} in part"
            f" ({'-' if acceptance is None else f'{acceptance:.0%}'});"
            f" {counts.accepted_chars} characters accepted,"
            f" {counts.retained_chars} of {counts.checked_chars} checked still present after"
            f" {RETENTION_DELAY_S:.0f} s ({'-' if retention is None else f'{retention:.0%}'})"
        )
    return "\n".join(lines)
