"""The bench's LSP client: starts a server over stdio and talks to it as an editor does.

Built on pygls' `LanguageClient` (the runtime counterpart of the pytest-lsp client the tests
use). It adds what an editor does and pygls leaves to the caller: numbered inline completion
requests that can be cancelled with `$/cancelRequest`, incremental `didChange` keystrokes, the
arrival time of every answer, the server's error messages, the tail of its stderr, and its peak
memory. It measures nothing itself; `typist` and `quality` do.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import itertools
import logging
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.exceptions import JsonRpcException, JsonRpcMethodNotFound
from pygls.lsp.client import LanguageClient

from lsp_server import __version__

log = logging.getLogger(__name__)

# The server's own requests (lsp_server/server.py).
LAST_STATS = "nexttoken/lastStats"
INDEX_STATUS = "nexttoken/indexStatus"
REQUEST_CANCELLED = -32800  # LSP's RequestCancelled error code
SHUTDOWN_TIMEOUT_S = 10.0


class ServerFailed(Exception):
    """The server exited, stopped answering, or reported an error it cannot recover from."""


@dataclass(frozen=True)
class Answer:
    """How an inline completion request ended."""

    status: str  # "answered", "cancelled" (RequestCancelled) or "error"
    items: tuple[types.InlineCompletionItem, ...] = ()
    error: str = ""


class InlineRequest:
    """An inline completion request in flight; remembers when it was sent and answered."""

    def __init__(self, msg_id: str, sent_at: float, future: concurrent.futures.Future) -> None:
        self.msg_id = msg_id
        self.sent_at = sent_at
        self.answered_at: float | None = None
        self.cancel_sent = False
        # Stamped by the reader the moment the response is parsed: later code on the event
        # loop (this bench's own bookkeeping) must not count as the server's latency.
        future.add_done_callback(self._stamp)
        self._future = asyncio.wrap_future(future)

    def _stamp(self, _: concurrent.futures.Future) -> None:
        self.answered_at = time.perf_counter()

    @property
    def latency_ms(self) -> float | None:
        if self.answered_at is None:
            return None
        return (self.answered_at - self.sent_at) * 1000

    async def answer(self, timeout_s: float) -> Answer:
        try:
            result = await asyncio.wait_for(asyncio.shield(self._future), timeout_s)
        except TimeoutError:
            raise ServerFailed(
                f"no answer to an inline completion within {timeout_s:g} s"
            ) from None
        except JsonRpcException as exc:
            if exc.code == REQUEST_CANCELLED:
                return Answer("cancelled")
            return Answer("error", error=f"{exc.code}: {exc.message}")
        except RuntimeError as exc:  # pygls fails pending requests this way when the server exits
            raise ServerFailed(str(exc)) from None
        items = tuple(result.items) if isinstance(result, types.InlineCompletionList) else ()
        return Answer("answered", items)


class BenchClient(LanguageClient):
    def __init__(self) -> None:
        super().__init__("nexttoken-bench", __version__)
        self.errors: list[str] = []  # window/showMessage errors, in order
        self.stderr_tail: deque[str] = deque(maxlen=40)
        self.pid: int | None = None
        self._ids = itertools.count(1)
        self._stderr_reader: asyncio.Task[None] | None = None
        self._versions: dict[str, int] = {}
        self.feature(types.WINDOW_SHOW_MESSAGE)(_on_show_message)
        self.feature(types.WINDOW_LOG_MESSAGE)(_on_log_message)

    # -- process ---------------------------------------------------------------------------------

    async def start(
        self, command: list[str], workspace: Path, env: dict[str, str] | None = None
    ) -> types.InitializeResult:
        try:
            await self.start_io(command[0], *command[1:], cwd=str(workspace), env=env)
        except OSError as exc:
            raise ServerFailed(f"cannot start the server {command[0]}: {exc}") from None
        server = self._server
        assert server is not None
        self.pid = server.pid
        # Read stderr all along: a server blocked on a full pipe would look slow, not broken.
        if server.stderr is not None:
            self._stderr_reader = asyncio.create_task(self._read_stderr(server.stderr))
        capabilities = types.ClientCapabilities(
            text_document=types.TextDocumentClientCapabilities(
                synchronization=types.TextDocumentSyncClientCapabilities(did_save=False),
                inline_completion=types.InlineCompletionClientCapabilities(),
            ),
            window=types.WindowClientCapabilities(work_done_progress=False),
        )
        try:
            result = await asyncio.wait_for(
                self.initialize_async(
                    types.InitializeParams(
                        process_id=None,
                        capabilities=capabilities,
                        root_uri=workspace.as_uri(),
                        workspace_folders=[
                            types.WorkspaceFolder(uri=workspace.as_uri(), name=workspace.name)
                        ],
                        client_info=types.ClientInfo(name="nexttoken-bench", version=__version__),
                    )
                ),
                timeout=120,
            )
        except (TimeoutError, RuntimeError, JsonRpcException) as exc:
            raise ServerFailed(
                f"the server did not initialize: {exc}{self.stderr_note()}"
            ) from None
        self.initialized(types.InitializedParams())
        return result

    async def _read_stderr(self, stream: asyncio.StreamReader) -> None:
        while line := await stream.readline():
            self.stderr_tail.append(line.decode("utf-8", "replace").rstrip())

    def stderr_note(self) -> str:
        if not self.stderr_tail:
            return ""
        return "; the server's stderr ends with:\n  " + "\n  ".join(list(self.stderr_tail)[-8:])

    def peak_rss_bytes(self) -> int | None:
        """The server's peak resident memory (VmHWM), None where /proc does not tell."""
        if self.pid is None:
            return None
        try:
            status = Path(f"/proc/{self.pid}/status").read_text()
        except OSError:
            return None
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024  # reported in kB
        return None

    async def close(self) -> None:
        """Shut the server down politely; kill it if it does not go."""
        server = self._server
        if server is not None and server.returncode is None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.shutdown_async(None), SHUTDOWN_TIMEOUT_S)
                self.exit(None)
            try:
                await asyncio.wait_for(server.wait(), SHUTDOWN_TIMEOUT_S)
            except TimeoutError:
                server.kill()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.stop(), SHUTDOWN_TIMEOUT_S)
        if self._stderr_reader is not None:
            self._stderr_reader.cancel()

    # -- documents ------------------------------------------------------------------------------

    def open(self, path: Path, text: str, language_id: str) -> str:
        uri = path.as_uri()
        self._versions[uri] = 1
        self.text_document_did_open(
            types.DidOpenTextDocumentParams(
                text_document=types.TextDocumentItem(
                    uri=uri, language_id=language_id, version=1, text=text
                )
            )
        )
        return uri

    def insert(self, uri: str, line: int, character: int, text: str) -> None:
        """One keystroke: `text` inserted at the position, sent as an incremental change."""
        self._versions[uri] += 1
        at = types.Position(line=line, character=character)
        self.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(
                    uri=uri, version=self._versions[uri]
                ),
                content_changes=[
                    types.TextDocumentContentChangePartial(
                        range=types.Range(start=at, end=at), text=text
                    )
                ],
            )
        )

    def close_document(self, uri: str) -> None:
        self._versions.pop(uri, None)
        self.text_document_did_close(
            types.DidCloseTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=uri))
        )

    # -- requests -------------------------------------------------------------------------------

    def request_inline(self, uri: str, line: int, character: int) -> InlineRequest:
        """Send an inline completion request now (as typing triggers it) and return at once."""
        msg_id = f"bench-{next(self._ids)}"
        params = types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            position=types.Position(line=line, character=character),
            context=types.InlineCompletionContext(
                trigger_kind=types.InlineCompletionTriggerKind.Automatic
            ),
        )
        sent_at = time.perf_counter()
        future = self.protocol.send_request(
            types.TEXT_DOCUMENT_INLINE_COMPLETION, params, msg_id=msg_id
        )
        return InlineRequest(msg_id, sent_at, future)

    def cancel(self, request: InlineRequest) -> None:
        request.cancel_sent = True
        self.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id=request.msg_id))

    async def last_stats(self) -> dict[str, Any] | None:
        """The server's recent generations (see `nexttoken/lastStats` in lsp_server/server.py);
        None when the server does not have that request."""
        try:
            result = await asyncio.wait_for(self.protocol.send_request_async(LAST_STATS, {}), 30)
        except JsonRpcMethodNotFound:
            return None
        except (TimeoutError, RuntimeError) as exc:
            raise ServerFailed(f"{LAST_STATS} failed: {exc}{self.stderr_note()}") from None
        return plain_json(result)

    async def index_status(self, wait_s: float) -> dict[str, Any] | None:
        """The workspace index's state once its first pass has ended or `wait_s` has passed
        (see `nexttoken/indexStatus`); None when the server does not have that request."""
        params = {"waitMs": round(wait_s * 1000)}
        try:
            result = await asyncio.wait_for(
                self.protocol.send_request_async(INDEX_STATUS, params), wait_s + 30
            )
        except JsonRpcMethodNotFound:
            return None
        except (TimeoutError, RuntimeError) as exc:
            raise ServerFailed(f"{INDEX_STATUS} failed: {exc}{self.stderr_note()}") from None
        return plain_json(result)

    async def records_since(
        self, uri: str, last_sequence: int
    ) -> tuple[dict[tuple[int, int], dict[str, Any]], int]:
        """The server's records of generations for `uri` newer than `last_sequence`, by (line,
        character); and the newest sequence number seen, for the next call."""
        report = await self.last_stats()
        if not report:
            return {}, last_sequence
        records: dict[tuple[int, int], dict[str, Any]] = {}
        newest = last_sequence
        for record in report.get("completions", []):
            sequence = int(record.get("sequence", 0))
            newest = max(newest, sequence)
            if sequence > last_sequence and record.get("uri") == uri:
                records[(record["line"], record["character"])] = record
        return records, newest


# -- server to client: pygls passes the client as `ls` ------------------------------------------


def _on_show_message(ls: BenchClient, params: types.ShowMessageParams) -> None:
    if params.type == types.MessageType.Error:
        ls.errors.append(params.message)
    else:
        log.info("server says: %s", params.message)


def _on_log_message(ls: BenchClient, params: types.LogMessageParams) -> None:
    log.debug("server: %s", params.message)


def plain_json(value: Any) -> Any:
    """pygls hands untyped results over as attribute objects; turn them back into JSON."""
    if isinstance(value, dict):
        return {key: plain_json(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)) and not hasattr(value, "_fields"):
        return [plain_json(item) for item in value]
    if hasattr(value, "_asdict"):
        return {key: plain_json(item) for key, item in value._asdict().items()}
    return value
