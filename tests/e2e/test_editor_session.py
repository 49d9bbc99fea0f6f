"""End to end: an editor (pytest-lsp) talks to `python -m lsp_server serve` over stdio, and the
real default model answers. One server per test; the model is built once per run (model_dir)."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcException

from lsp_server.model_source import MODEL_DIR_ENV

REQUEST_CANCELLED = -32800

# Mid-line, with the editor's auto-closed brackets after the cursor: `print(fibonacci(|))`.
CALL_SITE = """\
def fibonacci(n):
    if n < 2:
        return n
    return fibonacci(n - 1) + fibonacci(n - 2)


for i in range(10):
    print(fibonacci())
"""
CALL_SITE_CURSOR = (7, 20)

EMPTY_BODY = 'def fibonacci(n):\n    """Return the n-th Fibonacci number."""\n    \n'
EMPTY_BODY_CURSOR = (2, 4)


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    return root


def serve(model_dir: Path) -> list[str]:
    return ["-m", "lsp_server", "serve", "--model", str(model_dir)]


async def test_suggestions_from_the_default_model(
    start_client, workspace: Path, model_dir: Path
) -> None:
    # No --model and no NEXTTOKEN_MODEL_DIR: the server finds the default model by itself.
    started = time.perf_counter()
    client = await start_client(
        ["-m", "lsp_server", "serve"], workspace=workspace, env={MODEL_DIR_ENV: ""}
    )
    uri = client.open_document(workspace / "fib.py", CALL_SITE)
    [item] = await client.inline(uri, *CALL_SITE_CURSOR)
    first = time.perf_counter() - started
    assert item.insert_text.strip()
    assert "\n" not in item.insert_text
    cursor = types.Position(*CALL_SITE_CURSOR)
    assert item.range == types.Range(start=cursor, end=cursor)

    warm_started = time.perf_counter()
    [again] = await client.inline(uri, *CALL_SITE_CURSOR)
    warm = time.perf_counter() - warm_started
    assert again.insert_text == item.insert_text  # greedy decoding: the same answer
    print(f"\nserver start -> first suggestion {first:.2f} s; warm suggestion {warm * 1000:.0f} ms")

    [reports] = client.progress_reports.values()
    assert isinstance(reports[0], types.WorkDoneProgressBegin)
    assert isinstance(reports[-1], types.WorkDoneProgressEnd)
    assert reports[-1].message == "ready"


async def test_multi_line_suggestion_in_an_empty_function_body(
    start_client, workspace: Path, model_dir: Path
) -> None:
    client = await start_client(serve(model_dir), workspace=workspace)
    uri = client.open_document(workspace / "fib.py", EMPTY_BODY)
    [item] = await client.inline(uri, *EMPTY_BODY_CURSOR)
    lines = item.insert_text.split("\n")
    assert len(lines) >= 2, item.insert_text
    assert all(line.startswith("    ") or not line.strip() for line in lines[1:]), item.insert_text


async def test_cancelled_request_ends_cancelled_and_the_next_succeeds(
    start_client, workspace: Path, model_dir: Path
) -> None:
    client = await start_client(serve(model_dir), workspace=workspace)
    uri = client.open_document(workspace / "fib.py", EMPTY_BODY)
    cancelled = client.send_inline(uri, *EMPTY_BODY_CURSOR, msg_id="cancel-me")
    client.cancel("cancel-me")
    with pytest.raises(JsonRpcException) as error:
        await cancelled
    assert error.value.code == REQUEST_CANCELLED
    [item] = await client.inline(uri, *EMPTY_BODY_CURSOR)
    assert item.insert_text.strip()


async def test_newer_request_preempts_the_older_one(
    start_client, workspace: Path, model_dir: Path
) -> None:
    client = await start_client(serve(model_dir), workspace=workspace)
    uri = client.open_document(workspace / "fib.py", EMPTY_BODY)
    await preempted_then_answered(client, uri, EMPTY_BODY_CURSOR)


async def preempted_then_answered(client, uri: str, cursor: tuple[int, int]) -> None:
    """Two requests at `cursor`, as two keystrokes make: the newer is answered with a
    suggestion, the older ends cancelled."""
    older = client.send_inline(uri, *cursor, msg_id="older")
    [item] = await client.inline(uri, *cursor)
    assert item.insert_text.strip()
    with pytest.raises(JsonRpcException) as error:
        await older
    assert error.value.code == REQUEST_CANCELLED


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


BAD_INPUTS = {
    # name: (what to do with the workspace and client -> (uri, line, character))
    "position past the end": lambda ws, client: (
        client.open_document(ws / "short.py", "x = 1\n"),
        5,
        0,
    ),
    "unopened file outside the workspace": lambda ws, client: (
        _write(ws.parent / "outside.py", b"token = ").as_uri(),
        0,
        8,
    ),
    "unopened file that does not exist": lambda ws, client: ((ws / "gone.py").as_uri(), 0, 0),
    "unopened non-UTF-8 file": lambda ws, client: (
        _write(ws / "latin1.py", b"name = 'Andr\xe9'\nx = ").as_uri(),
        1,
        4,
    ),
    "binary content": lambda ws, client: (
        client.open_document(ws / "blob.py", "ELF\x00\x01\x02\nx = "),
        1,
        4,
    ),
    "not a file URI": lambda ws, client: ("untitled:Untitled-1", 0, 0),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
async def test_bad_input_answers_empty_and_the_server_carries_on(
    start_client, workspace: Path, model_dir: Path, case: str
) -> None:
    client = await start_client(serve(model_dir), workspace=workspace)
    uri, line, character = BAD_INPUTS[case](workspace, client)
    assert await client.inline(uri, line, character) == []
    good = client.open_document(workspace / "fib.py", CALL_SITE)
    [item] = await client.inline(good, *CALL_SITE_CURSOR)
    assert item.insert_text.strip()


async def test_five_megabyte_document_is_completed_from_a_window(
    start_client, workspace: Path, model_dir: Path
) -> None:
    client = await start_client(serve(model_dir), workspace=workspace)
    filler = "".join(f"VALUE_{i} = {i} * 2  # a constant\n" for i in range(160_000))
    assert len(filler) > 5 * 1024 * 1024
    lines_before = filler.count("\n")
    uri = client.open_document(workspace / "big.py", filler + CALL_SITE)
    line, character = CALL_SITE_CURSOR
    started = time.perf_counter()
    [item] = await client.inline(uri, lines_before + line, character)
    seconds = time.perf_counter() - started
    assert item.insert_text.strip()
    cursor = types.Position(lines_before + line, character)
    assert item.range == types.Range(start=cursor, end=cursor)
    print(f"\n5 MB document: suggestion in {seconds:.2f} s")


async def test_corrupt_model_graph_shows_an_error_and_requests_answer_empty(
    start_client, workspace: Path, model_dir: Path, tmp_path: Path
) -> None:
    broken = tmp_path / "broken-model"
    broken.mkdir()
    for source in model_dir.iterdir():
        if source.name == "model.onnx":
            (broken / source.name).write_bytes(b"this is not an ONNX graph" * 100)
        elif source.stat().st_size > 50 * 1024 * 1024:
            (broken / source.name).symlink_to(source)  # the weights: no need to copy 500 MB
        else:
            shutil.copy2(source, broken / source.name)
    client = await start_client(serve(broken), workspace=workspace)
    uri = client.open_document(workspace / "fib.py", CALL_SITE)
    assert await client.inline(uri, *CALL_SITE_CURSOR) == []
    [error] = [m for m in client.messages if m.type == types.MessageType.Error]
    assert "could not load the model" in error.message
    assert "model.onnx" in error.message
    assert await client.inline(uri, *CALL_SITE_CURSOR) == []  # still answering, quietly
    # Shutdown and exit are checked by the fixture.


async def test_invalid_settings_show_a_warning_and_defaults_serve(
    start_client, workspace: Path, model_dir: Path
) -> None:
    client = await start_client(
        serve(model_dir),
        workspace=workspace,
        initialization_options={"nexttoken": {"maxNewTokens": 0}},
    )
    [warning] = [m for m in client.messages if m.type == types.MessageType.Warning]
    assert "nexttoken.maxNewTokens = 0" in warning.message
    uri = client.open_document(workspace / "fib.py", CALL_SITE)
    [item] = await client.inline(uri, *CALL_SITE_CURSOR)
    assert item.insert_text.strip()

    shown = client.wait_for_notification(types.WINDOW_SHOW_MESSAGE)
    client.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(settings={"nexttoken": {"enabled": "no"}})
    )
    message = await asyncio.wait_for(shown, timeout=30)
    assert "nexttoken.enabled = 'no'" in message.message
    [item] = await client.inline(uri, *CALL_SITE_CURSOR)  # still enabled
    assert item.insert_text.strip()


async def test_completion_fallback_for_an_editor_without_inline_completion(
    start_client, workspace: Path, model_dir: Path
) -> None:
    client = await start_client(
        serve(model_dir), workspace=workspace, client="neovim", inline_completion=False
    )
    uri = client.open_document(workspace / "fib.py", CALL_SITE)
    line, character = CALL_SITE_CURSOR
    result = await client.text_document_completion_async(
        types.CompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            position=types.Position(line=line, character=character),
        )
    )
    assert isinstance(result, types.CompletionList)
    [item] = result.items
    assert isinstance(item.text_edit, types.TextEdit)
    assert item.text_edit.new_text.strip()
    cursor = types.Position(line, character)
    assert item.text_edit.range == types.Range(start=cursor, end=cursor)


def test_complete_command_prints_a_suggestion_and_its_timings(
    model_dir: Path, tmp_path: Path
) -> None:
    source = tmp_path / "fib.py"
    source.write_text(CALL_SITE, encoding="utf-8")
    line, character = CALL_SITE_CURSOR
    location = f"{source}:{line + 1}:{character + 1}"
    done = _nexttoken("complete", location, "--model", str(model_dir), "--max-new-tokens", "8")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip()
    assert "latency" in done.stderr
    assert "generated" in done.stderr

    past_end = _nexttoken("complete", f"{source}:99:1", "--model", str(model_dir))
    assert past_end.returncode == 2
    assert "line 99 is past the end" in past_end.stderr
    assert "Traceback" not in past_end.stderr


def _nexttoken(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lsp_server", *args],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
        timeout=300,
    )


async def test_the_prompt_is_prefilled_while_the_debounce_waits(
    start_client, workspace: Path, model_dir: Path
) -> None:
    client = await start_client(
        serve(model_dir), workspace=workspace, initialization_options={"debounceMs": 150}
    )
    uri = client.open_document(workspace / "fib.py", CALL_SITE)
    # Typing: each request preempts the one before, whose prefill the next one reuses.
    await preempted_then_answered(client, uri, CALL_SITE_CURSOR)
    line, character = CALL_SITE_CURSOR
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
            content_changes=[
                types.TextDocumentContentChangePartial(
                    range=types.Range(
                        start=types.Position(line=line, character=character),
                        end=types.Position(line=line, character=character),
                    ),
                    # Not the suggestion's start ("i"), which the cache would continue; more
                    # than one token, or token healing would take it off again and the
                    # prompt would be the last one, whose logits the engine kept.
                    text="n - 1",
                )
            ],
        )
    )
    await client.inline(uri, line, character + 5)

    report = await client.protocol.send_request_async("nexttoken/lastStats", {})
    cold, typed = (record.stats for record in report.completions)
    # All of the cold prompt was prefilled during the wait; the generation only decoded.
    assert cold.warmed_tokens > 0
    assert cold.reused_tokens + cold.warmed_tokens == cold.prompt_tokens
    # The keystroke's prompt: the cache held all but its last tokens.
    assert 0 < typed.warmed_tokens <= 4
    assert typed.reused_tokens + typed.warmed_tokens == typed.prompt_tokens
