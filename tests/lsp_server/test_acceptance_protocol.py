"""Over stdio with the scripted pipeline (scripted_server.py): items carry an accept command,
Copilot's show and partial-accept notifications are counted, `nexttoken/stats` and
`nexttoken stats` report the counts, and typing through a suggestion skips the model."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types

from lsp_server.acceptance_stats import RETENTION_DELAY_ENV, STATS_FILE_ENV

SERVER = [str(Path(__file__).with_name("scripted_server.py"))]
REPO_ROOT = Path(__file__).resolve().parents[2]


def plain(value: Any) -> Any:
    """pygls hands custom results over as namedtuples; tests compare plain JSON values."""
    if hasattr(value, "_asdict"):
        return {key: plain(item) for key, item in value._asdict().items()}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    return value


@pytest.fixture
def stats_env(tmp_path: Path) -> dict[str, str]:
    return {STATS_FILE_ENV: str(tmp_path / "state" / "stats.json"), RETENTION_DELAY_ENV: "0.2"}


async def start(start_client, tmp_path: Path, env: dict[str, str], **options: Any):
    model = tmp_path / "model"
    model.mkdir(exist_ok=True)
    return await start_client(
        [*SERVER, "--model", str(model)], workspace=tmp_path, env=env, **options
    )


def insert(client, uri: str, version: int, line: int, character: int, text: str) -> None:
    at = types.Position(line, character)
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
            content_changes=[
                types.TextDocumentContentChangePartial(
                    range=types.Range(start=at, end=at), text=text
                )
            ],
        )
    )


async def stats(client) -> dict[str, Any]:
    return plain(await client.protocol.send_request_async("nexttoken/stats", {}))


async def poll_stats(client, ready, timeout: float = 20.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        report = await stats(client)
        if ready(report) or time.monotonic() > deadline:
            return report
        await client.round_trip()


def item_payload(item: types.InlineCompletionItem) -> dict[str, Any]:
    assert item.command is not None
    return {"insertText": item.insert_text, "command": {"arguments": item.command.arguments}}


async def test_shown_accepted_and_retained_characters_are_counted(
    start_client, tmp_path: Path, stats_env: dict[str, str]
) -> None:
    capabilities: list[types.InitializeResult] = []
    client = await start(start_client, tmp_path, stats_env, on_initialized=capabilities.append)
    provider = capabilities[0].capabilities.execute_command_provider
    assert provider is not None and "nexttoken.accepted" in provider.commands

    uri = client.open_document(tmp_path / "main.py", "x = \n")
    [item] = await client.inline(uri, 0, 4)
    assert item.command is not None and item.command.command == "nexttoken.accepted"
    [item_id] = item.command.arguments or []
    client.protocol.notify("textDocument/didShowCompletion", {"item": item_payload(item)})
    # The client inserts the text, then runs the item's command, as VS Code and Neovim do.
    insert(client, uri, 2, 0, 4, item.insert_text)
    await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="nexttoken.accepted", arguments=[item_id])
    )
    report = await poll_stats(client, lambda r: r["session"]["total"]["checkedChars"] > 0)
    total = report["session"]["total"]
    assert total["shown"] == 1 and total["accepted"] == 1
    assert total["acceptedChars"] == len(item.insert_text)
    assert total["retainedChars"] == total["checkedChars"] == len(item.insert_text)
    assert report["session"]["byLanguage"]["python"]["accepted"] == 1
    assert report["allTime"]["total"]["accepted"] == 1
    assert report["statsFile"] == stats_env[STATS_FILE_ENV]

    # A second suggestion, accepted in part only (Copilot's notification), then rejected.
    [other] = await client.inline(uri, 1, 0)
    client.protocol.notify(
        "textDocument/didPartiallyAcceptCompletion",
        {"item": item_payload(other), "acceptedLength": 3},
    )
    report = await poll_stats(client, lambda r: r["session"]["total"]["partiallyAccepted"] == 1)
    assert report["session"]["total"]["acceptedChars"] == len(item.insert_text) + 3

    # The command line reads the same file, without a server.
    output = subprocess.run(
        [sys.executable, "-m", "lsp_server", "stats", "--json"],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO_ROOT,
        env={**os.environ, **stats_env},
        timeout=60,
    ).stdout
    assert json.loads(output)["total"]["partiallyAccepted"] == 1


async def test_typing_through_a_suggestion_answers_without_the_model(
    start_client, tmp_path: Path, stats_env: dict[str, str]
) -> None:
    client = await start(start_client, tmp_path, stats_env)
    uri = client.open_document(tmp_path / "main.py", "x = \ny = 1\n")
    [item] = await client.inline(uri, 0, 4)
    assert item.insert_text == "<0:4|main.py|python|11|64>"
    insert(client, uri, 2, 0, 4, "<0:")
    [rest] = await client.inline(uri, 0, 7)
    # The scripted model would have answered "<0:7|...": this is the first answer's rest.
    assert rest.insert_text == "4|main.py|python|11|64>"
    assert rest.range == types.Range(start=types.Position(0, 7), end=types.Position(0, 7))
    assert rest.command is not None and rest.command.arguments != item.command.arguments
    insert(client, uri, 3, 0, 7, "4|")
    [rest] = await client.inline(uri, 0, 9)
    assert rest.insert_text == "main.py|python|11|64>"
    assert (await stats(client))["typingThroughAnswers"] == 2

    # A character that differs from the suggestion asks the model again.
    insert(client, uri, 4, 0, 9, "X")
    [fresh] = await client.inline(uri, 0, 10)
    assert fresh.insert_text.startswith("<0:10|")


async def test_typing_through_also_preempts_a_running_generation(
    start_client, tmp_path: Path, stats_env: dict[str, str]
) -> None:
    # Neovim sends no $/cancelRequest: the server itself stops what a newer request replaces.
    client = await start(start_client, tmp_path, stats_env)
    uri = client.open_document(tmp_path / "a.py", "x = \ny = WAIT\n")
    [item] = await client.inline(uri, 0, 4)
    older = client.send_inline(uri, 1, 8, msg_id="older")
    insert(client, uri, 2, 0, 4, "<")
    [rest] = await client.inline(uri, 0, 5)
    assert rest.insert_text == item.insert_text[1:]
    with pytest.raises(Exception) as preempted:
        await asyncio.wait_for(older, timeout=30)
    assert getattr(preempted.value, "code", None) == -32800


async def test_an_explicit_invoke_skips_typing_through(
    start_client, tmp_path: Path, stats_env: dict[str, str]
) -> None:
    client = await start(start_client, tmp_path, stats_env)
    uri = client.open_document(tmp_path / "main.py", "x = \n")
    [item] = await client.inline(uri, 0, 4)
    insert(client, uri, 2, 0, 4, "<")
    params = types.InlineCompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri),
        position=types.Position(0, 5),
        context=types.InlineCompletionContext(
            trigger_kind=types.InlineCompletionTriggerKind.Invoked
        ),
    )
    result = await client.text_document_inline_completion_async(params)
    assert isinstance(result, types.InlineCompletionList)
    # The scripted pipeline has no engine to sample from: its one answer, from the model.
    [fresh] = result.items
    assert fresh.insert_text.startswith("<0:5|")
