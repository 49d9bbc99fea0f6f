"""The server's protocol behaviour over stdio, with a scripted pipeline (scripted_server.py):
cancellation, preemption, waiting for the model, settings, sync, positions, the fallback."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pytest_lsp import LanguageClient

SERVER = [str(Path(__file__).with_name("scripted_server.py"))]
REQUEST_CANCELLED = -32800
EMOJI = "\U0001f600"


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / "pkg").mkdir(parents=True)
    return root


@pytest.fixture
def model(tmp_path: Path) -> Path:
    folder = tmp_path / "model"
    folder.mkdir()
    return folder


async def test_request_carries_window_position_and_workspace_path(
    start_client, workspace: Path, model: Path
) -> None:
    client = await start_client([*SERVER, "--model", str(model)], workspace=workspace)
    uri = client.open_document(workspace / "pkg" / "main.py", "import os\nx = os.pa")
    [item] = await client.inline(uri, 1, 9)
    assert item.insert_text == "<1:9|pkg/main.py|python|19|64>"
    assert item.range == types.Range(start=types.Position(1, 9), end=types.Position(1, 9))


async def test_utf16_positions_survive_the_round_trip(
    start_client, workspace: Path, model: Path
) -> None:
    client = await start_client([*SERVER, "--model", str(model)], workspace=workspace)
    line = f"s = '{EMOJI}é' + WORD"
    uri = client.open_document(workspace / "a.py", f"# {EMOJI}\n{line}\n")
    end = len(line.encode("utf-16-le")) // 2  # 18 UTF-16 units for 17 characters
    [item] = await client.inline(uri, 1, end)
    assert item.insert_text.startswith(f"<1:{end}|")
    assert item.range == types.Range(
        start=types.Position(1, end - len("WORD")), end=types.Position(1, end)
    )


async def test_incremental_edits_count_lines_like_lsp(
    start_client, workspace: Path, model: Path
) -> None:
    # A form feed is no line break for LSP; an edit on line 1 must land after the "\n".
    client = await start_client([*SERVER, "--model", str(model)], workspace=workspace)
    uri = client.open_document(workspace / "ff.py", "a = 1\fb = 2\nc = ")
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
            content_changes=[
                types.TextDocumentContentChangePartial(
                    range=types.Range(start=types.Position(1, 4), end=types.Position(1, 4)),
                    text="WORD",
                )
            ],
        )
    )
    [item] = await client.inline(uri, 1, 8)
    assert item.range.start == types.Position(1, 4)


async def test_cancelled_request_ends_with_request_cancelled(
    start_client, workspace: Path, model: Path
) -> None:
    client = await start_client([*SERVER, "--model", str(model)], workspace=workspace)
    uri = client.open_document(workspace / "a.py", "x = WAIT\ny = ")
    pending = client.send_inline(uri, 0, 8, msg_id="never-finishes")
    client.cancel("never-finishes")
    with pytest.raises(JsonRpcException) as cancelled:
        await pending
    assert cancelled.value.code == REQUEST_CANCELLED
    # The worker stopped the cancelled generation, so the next request gets its answer.
    [item] = await client.inline(uri, 1, 4)
    assert item.insert_text.startswith("<1:4|")


async def test_newer_request_preempts_the_running_one(
    start_client, workspace: Path, model: Path
) -> None:
    client = await start_client([*SERVER, "--model", str(model)], workspace=workspace)
    uri = client.open_document(workspace / "a.py", "x = WAIT\ny = ")
    older = client.send_inline(uri, 0, 8, msg_id="older")
    newer = await client.inline(uri, 1, 4)
    assert newer[0].insert_text.startswith("<1:4|")
    with pytest.raises(JsonRpcException) as preempted:
        await older
    assert preempted.value.code == REQUEST_CANCELLED


async def test_requests_wait_for_the_model_and_progress_brackets_the_load(
    start_client, workspace: Path, model: Path
) -> None:
    (model / "hold").touch()
    client = await start_client([*SERVER, "--model", str(model)], workspace=workspace)
    uri = client.open_document(workspace / "a.py", "x = ")
    waiting = asyncio.ensure_future(client.inline(uri, 0, 4))
    await client.round_trip()
    assert not waiting.done()
    (model / "release").touch()
    [item] = await waiting
    assert item.insert_text.startswith("<0:4|")
    [reports] = client.progress_reports.values()
    assert [type(report) for report in reports] == [
        types.WorkDoneProgressBegin,
        types.WorkDoneProgressEnd,
    ]
    assert reports[-1].message == "ready"


async def test_broken_model_shows_an_error_and_the_server_keeps_answering(
    start_client, workspace: Path, model: Path
) -> None:
    (model / "broken").touch()
    client = await start_client([*SERVER, "--model", str(model)], workspace=workspace)
    uri = client.open_document(workspace / "a.py", "x = ")
    assert await client.inline(uri, 0, 4) == []
    errors = [m.message for m in client.messages if m.type == types.MessageType.Error]
    assert len(errors) == 1
    assert "could not load the model" in errors[0]
    assert "not a valid ONNX graph" in errors[0]
    assert await client.inline(uri, 0, 4) == []
    assert len(client.messages) == 1  # said once, not on every request
    [reports] = client.progress_reports.values()
    assert reports[-1].message == "failed"


async def test_pipeline_failure_answers_empty_then_recovers(
    start_client, workspace: Path, model: Path
) -> None:
    client = await start_client([*SERVER, "--model", str(model)], workspace=workspace)
    uri = client.open_document(workspace / "a.py", "x = FAIL\ny = ")
    assert await client.inline(uri, 0, 8) == []
    assert any("completion failed" in log.message for log in client.log_messages)
    [item] = await client.inline(uri, 1, 4)
    assert item.insert_text.startswith("<1:4|")


async def test_huge_document_sends_a_window_with_the_cursor_translated(
    start_client, workspace: Path, model: Path
) -> None:
    client = await start_client([*SERVER, "--model", str(model)], workspace=workspace)
    line = f"value = '{EMOJI}' + compute(1, 2)\n"
    lines = 5 * 1024 * 1024 // len(line)
    uri = client.open_document(workspace / "big.py", line * lines + "tail = ")
    [item] = await client.inline(uri, lines, 7)
    line_in_window, character, _, _, chars, _ = (
        item.insert_text.strip("<>").replace(":", "|").split("|")
    )
    assert int(chars) <= 80 * 1024
    assert int(line_in_window) < lines  # counted within the window, not the document
    assert int(character) == 7
    assert item.range.start == types.Position(lines, 7)


async def test_unopened_file_is_read_from_disk_only_inside_the_workspace(
    start_client, workspace: Path, model: Path, tmp_path: Path
) -> None:
    client = await start_client([*SERVER, "--model", str(model)], workspace=workspace)
    inside = workspace / "pkg" / "disk.py"
    inside.write_text("y = ", encoding="utf-8")
    [item] = await client.inline(inside.as_uri(), 0, 4)
    assert item.insert_text == "<0:4|pkg/disk.py|python|4|64>"
    outside = tmp_path / "secret.py"
    outside.write_text("token = ", encoding="utf-8")
    assert await client.inline(outside.as_uri(), 0, 8) == []
    escape = workspace / ".." / "secret.py"
    assert await client.inline(escape.as_uri(), 0, 8) == []


async def test_invalid_initialization_options_warn_and_use_defaults(
    start_client, workspace: Path, model: Path
) -> None:
    client = await start_client(
        [*SERVER, "--model", str(model)],
        workspace=workspace,
        initialization_options={"nexttoken": {"maxNewTokens": -5, "colour": "red"}},
    )
    warnings = [m.message for m in client.messages if m.type == types.MessageType.Warning]
    assert len(warnings) == 2
    assert "nexttoken.maxNewTokens = -5" in warnings[0]
    assert "nexttoken.colour" in warnings[1]
    uri = client.open_document(workspace / "a.py", "x = ")
    [item] = await client.inline(uri, 0, 4)
    assert item.insert_text.endswith("|64>")


async def test_configuration_changes_apply_and_invalid_ones_warn(
    start_client, workspace: Path, model: Path
) -> None:
    client = await start_client(
        [*SERVER, "--model", str(model)],
        workspace=workspace,
        initialization_options={"maxNewTokens": 12},
    )
    uri = client.open_document(workspace / "a.py", "x = ")
    [item] = await client.inline(uri, 0, 4)
    assert item.insert_text.endswith("|12>")

    shown = client.wait_for_notification(types.WINDOW_SHOW_MESSAGE)
    client.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(settings={"nexttoken": {"maxNewTokens": "many"}})
    )
    message = await asyncio.wait_for(shown, timeout=10)
    assert message.type == types.MessageType.Warning
    assert "nexttoken.maxNewTokens = 'many'" in message.message
    [item] = await client.inline(uri, 0, 4)
    assert item.insert_text.endswith("|12>")  # the initialization option still holds

    client.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(
            settings={"nexttoken": {"maxNewTokens": 7, "debounceMs": 20}}
        )
    )
    [item] = await client.inline(uri, 0, 4)
    assert item.insert_text.endswith("|7>")

    client.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(settings={"nexttoken": {"enabled": False}})
    )
    assert await client.inline(uri, 0, 4) == []


async def test_configuration_is_pulled_when_the_notification_carries_none(
    start_client, workspace: Path, model: Path
) -> None:
    client = await start_client([*SERVER, "--model", str(model)], workspace=workspace)
    client.set_configuration({"maxNewTokens": 9}, section="nexttoken")
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings=None))
    await asyncio.wait_for(wait_for_log(client, "max_new_tokens=9"), timeout=10)
    uri = client.open_document(workspace / "a.py", "x = ")
    [item] = await client.inline(uri, 0, 4)
    assert item.insert_text.endswith("|9>")


async def wait_for_log(client: LanguageClient, text: str) -> None:
    """Until the server logs a line containing `text`. The check and the wait for the next line
    run without an await between them, so no line slips through."""
    seen = 0
    while True:
        if any(text in log.message for log in client.log_messages[seen:]):
            return
        seen = len(client.log_messages)
        await client.wait_for_notification(types.WINDOW_LOG_MESSAGE)


async def test_completion_fallback_for_clients_without_inline_completion(
    start_client, workspace: Path, model: Path
) -> None:
    # Neovim 0.11 prefers UTF-8 positions: the edit's range comes back in bytes.
    client = await start_client(
        [*SERVER, "--model", str(model)],
        workspace=workspace,
        client="neovim@v0.11.0",
        inline_completion=False,
    )
    uri = client.open_document(workspace / "a.py", "s = 'é' + WORD")
    end = len("s = 'é' + WORD".encode())
    result = await client.text_document_completion_async(
        types.CompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            position=types.Position(line=0, character=end),
        )
    )
    assert isinstance(result, types.CompletionList)
    assert result.is_incomplete
    [item] = result.items
    assert item.text_edit is not None
    assert item.text_edit.new_text == f"<0:{end - 1}|a.py|python|14|64>"
    assert item.text_edit.range == types.Range(
        start=types.Position(0, end - 4), end=types.Position(0, end)
    )
    assert item.filter_text == "WORD" + item.text_edit.new_text


async def test_fallback_is_offered_only_to_clients_without_inline_completion(
    start_client, workspace: Path, model: Path
) -> None:
    results: list[types.InitializeResult] = []
    for inline_completion in (True, False):
        await start_client(
            [*SERVER, "--model", str(model)],
            workspace=workspace,
            inline_completion=inline_completion,
            on_initialized=results.append,
        )
    with_inline, without_inline = (result.capabilities for result in results)
    assert with_inline.inline_completion_provider is not None
    assert with_inline.completion_provider is None
    assert without_inline.completion_provider is not None
    sync = without_inline.text_document_sync
    assert isinstance(sync, types.TextDocumentSyncOptions)
    assert sync.change == types.TextDocumentSyncKind.Incremental
