"""One cursor position played as an editor plays it, keystroke by keystroke.

The file is opened with the `keystrokes` characters before the cursor taken out (everything
else, the text after the cursor included, stays: that is what an editor's buffer holds). The
editor asks for a suggestion where the cursor starts (the "cold" request: the first in this
file), waits for it, then types the missing characters at a fixed pace. Each keystroke is a
`didChange` followed by an inline completion request; a request still in flight when the next
key is pressed is cancelled with `$/cancelRequest`, as VS Code does. Typing does not wait for
answers: the pace is the typist's, not the server's.

Latency is from sending a request (right after its keystroke's `didChange`) to its answer. An
answer that arrives after its request was cancelled is "superseded": no editor shows it, so it
counts in no latency figure. Stats come from `nexttoken/lastStats` after the position, matched
to requests by position.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from completion.positions import UTF16, code_units
from lsp_server.bench.client import BenchClient, InlineRequest
from lsp_server.bench.workspace import CursorPosition

TYPING_THROUGH = "typing_through"  # a server's `source` for an answer that skipped the model


@dataclass(frozen=True)
class RequestSample:
    """One inline completion request and what became of it."""

    keystroke: int  # 0: the cold request where the cursor starts; 1..K: after that keystroke
    line: int
    character: int
    status: str  # "answered", "superseded", "cancelled" or "error"
    latency_ms: float | None  # None unless the answer arrived
    suggestion: str = ""  # the first item's text
    stats: dict[str, Any] | None = None  # the server's CompletionStats, when it reported them
    source: str = ""  # "model", or "typing_through" when the server skipped the model
    error: str = ""

    @property
    def cold(self) -> bool:
        return self.keystroke == 0

    @property
    def shown(self) -> bool:
        """An answer an editor would show (or show as nothing): not superseded, not failed."""
        return self.status == "answered"

    @property
    def empty(self) -> bool:
        return self.shown and not self.suggestion


@dataclass(frozen=True)
class PositionRun:
    position: CursorPosition
    samples: tuple[RequestSample, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class _Sent:
    keystroke: int
    line: int
    character: int
    request: InlineRequest


async def play_position(
    client: BenchClient,
    position: CursorPosition,
    text: str,
    typing_ms: float,
    timeout_s: float,
    last_sequence: int,
) -> tuple[PositionRun, int]:
    """Type `position`'s last characters into its file; returns the run and the newest stats
    sequence number seen (stats at or below it belong to earlier positions)."""
    typed = text[position.offset - position.keystrokes : position.offset]
    opened = text[: position.offset - position.keystrokes] + text[position.offset :]
    uri = client.open(position.file.path, opened, position.file.language_id)
    character = position.character - code_units(typed, UTF16)
    sent: list[_Sent] = []
    try:
        cold = client.request_inline(uri, position.line, character)
        sent.append(_Sent(0, position.line, character, cold))
        await cold.answer(timeout_s)
        for number, char in enumerate(typed, start=1):
            previous = sent[-1].request
            client.insert(uri, position.line, character, char)
            if previous.answered_at is None:
                client.cancel(previous)
            character += code_units(char, UTF16)
            sent.append(
                _Sent(
                    number,
                    position.line,
                    character,
                    client.request_inline(uri, position.line, character),
                )
            )
            if number < len(typed):
                # The typist's pace, not a wait for the server: answers arrive meanwhile.
                await asyncio.sleep(typing_ms / 1000)
        answers = [await item.request.answer(timeout_s) for item in sent]
    finally:
        client.close_document(uri)
    records, newest = await client.records_since(uri, last_sequence)
    samples = []
    for item, answer in zip(sent, answers, strict=True):
        request = item.request
        status = answer.status
        if status == "answered" and request.cancel_sent:
            status = "superseded"
        record = records.get((item.line, item.character))
        samples.append(
            RequestSample(
                keystroke=item.keystroke,
                line=item.line,
                character=item.character,
                status=status,
                latency_ms=request.latency_ms if answer.status == "answered" else None,
                suggestion=answer.items[0].insert_text if answer.items else "",
                stats=record.get("stats") if record else None,
                source=str(record.get("source", "")) if record else "",
                error=answer.error,
            )
        )
    return PositionRun(position, tuple(samples)), newest
