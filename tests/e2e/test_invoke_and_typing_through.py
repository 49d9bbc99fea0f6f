"""End to end with the real model: an explicit invoke gets several distinct candidates, and
typing the start of a suggestion gets its rest without a generation."""

from __future__ import annotations

import time
from pathlib import Path

from lsprotocol import types

from lsp_server.acceptance_stats import STATS_FILE_ENV

# A place with more than one sensible continuation.
SOURCE = "def greet(name):\n    message = \n"
CURSOR = (1, 14)


def params(uri: str, line: int, character: int, kind: types.InlineCompletionTriggerKind):
    return types.InlineCompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri),
        position=types.Position(line=line, character=character),
        context=types.InlineCompletionContext(trigger_kind=kind),
    )


async def test_invoke_offers_candidates_and_typing_through_skips_the_model(
    start_client, tmp_path: Path, model_dir: Path
) -> None:
    client = await start_client(
        ["-m", "lsp_server", "serve", "--model", str(model_dir)],
        workspace=tmp_path,
        env={STATS_FILE_ENV: str(tmp_path / "stats.json")},
    )
    uri = client.open_document(tmp_path / "greet.py", SOURCE)
    line, character = CURSOR
    started = time.perf_counter()
    invoked = await client.text_document_inline_completion_async(
        params(uri, line, character, types.InlineCompletionTriggerKind.Invoked)
    )
    assert isinstance(invoked, types.InlineCompletionList)
    texts = [item.insert_text for item in invoked.items]
    assert 2 <= len(texts) <= 3, texts
    assert len(set(texts)) == len(texts)
    invoked_ms = (time.perf_counter() - started) * 1000
    started = time.perf_counter()
    [typing] = await client.inline(uri, line, character)
    typing_ms = (time.perf_counter() - started) * 1000
    assert typing.insert_text == texts[0]  # the greedy suggestion leads the list

    # Type the first two characters of the suggestion shown while typing.
    typed = typing.insert_text[:2]
    at = types.Position(line, character)
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
            content_changes=[
                types.TextDocumentContentChangePartial(
                    range=types.Range(start=at, end=at), text=typed
                )
            ],
        )
    )
    started = time.perf_counter()
    [rest] = await client.inline(uri, line, character + 2)
    rest_ms = (time.perf_counter() - started) * 1000
    assert rest.insert_text == typing.insert_text[2:]
    report = await client.protocol.send_request_async("nexttoken/stats", {})
    assert report.typingThroughAnswers == 1
    print(
        f"\n{len(texts)} candidates in {invoked_ms:.0f} ms (first request: includes the model"
        f" load): {texts}\none suggestion (cached prompt) in {typing_ms:.0f} ms; typed {typed!r},"
        f" the rest {rest.insert_text!r} in {rest_ms:.0f} ms"
    )
