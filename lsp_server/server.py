"""The language server: document sync, capabilities, settings, model loading, cancellation and
progress, and the two completion endpoints.

It owns the protocol and nothing else. A handler takes the document from pygls' workspace,
turns the request into a plain `CompletionRequest`, hands it to the inference worker and
converts the answer back. Prompting, decoding and stopping live in `completion/`. Nothing a
client sends may stop the server: bad input ends in an empty answer and a log line.

Requests of our own: `nexttoken/lastStats` answers with the stats of the most recent
generations and the model in use, so that `nexttoken bench` can measure what an editor sees;
`nexttoken/indexStatus` tells (and, asked to, waits for) the workspace index's first pass.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote

from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams
from pygls.lsp.server import LanguageServer
from pygls.protocol import LanguageServerProtocol, lsp_method
from pygls.uris import to_fs_path
from pygls.workspace import TextDocument, Workspace

from completion.pipeline import CompletionCancelled
from completion.positions import UTF16, lsp_lines, offset_at, position_at
from completion.request import CompletionResult, CompletionStats, Position
from lsp_server import __version__
from lsp_server.acceptance_stats import (
    AcceptanceStats,
    RetentionCheck,
    StatsStore,
    retention_delay_s,
    stats_file,
)
from lsp_server.debounce import AdaptiveDebounce
from lsp_server.documents import (
    TextWindow,
    UnusableText,
    check_completable,
    completion_request,
    containing_root,
    language_for_path,
    prompt_path,
    read_source_file,
)
from lsp_server.indexing import WorkspaceIndexing, document_path
from lsp_server.inference import CompletionBackend, InferenceWorker, describe_stats
from lsp_server.model_source import MODEL_ERRORS, configure_backend, load_pipeline
from lsp_server.settings import SECTION, ServerSettings, client_section, parse_settings
from lsp_server.typing_through import ShownSuggestion, ShownSuggestions

log = logging.getLogger(__name__)

BackendLoader = Callable[[str], CompletionBackend]
T = TypeVar("T")

# Editors send only what changed, so a keystroke in a big file costs little to transmit.
SYNC_KIND = types.TextDocumentSyncKind.Incremental
# Characters after which a client without inline completion should ask for the fallback item.
FALLBACK_TRIGGER_CHARACTERS = [".", "(", "["]
# Run by the client when the user accepts an item (its only argument: the item's id).
ACCEPTED_COMMAND = "nexttoken.accepted"
# Copilot's notifications, so that clients written for Copilot report to us too.
DID_SHOW_COMPLETION = "textDocument/didShowCompletion"
DID_PARTIALLY_ACCEPT_COMPLETION = "textDocument/didPartiallyAcceptCompletion"
STATS = "nexttoken/stats"
TYPING_THROUGH = "typing_through"  # the `source` of an answer that skipped the model
LAST_STATS = "nexttoken/lastStats"
INDEX_STATUS = "nexttoken/indexStatus"
# The longest `waitMs` an index status request may ask for: a waiting request holds a thread.
INDEX_STATUS_WAIT_LIMIT_S = 600.0
# Enough for every keystroke of one bench position between two `nexttoken/lastStats` calls.
RECENT_COMPLETIONS = 64


@dataclass(frozen=True)
class DocumentSnapshot:
    """The text a request completes, taken when the request arrives."""

    text: str
    language_id: str
    path: str  # as the prompt names it: workspace-relative when inside the workspace


@dataclass(frozen=True)
class Suggestion:
    """A completion in document coordinates, in the client's position encoding."""

    text: str
    range: types.Range
    typed: str  # document text from the range's start to the cursor (for client-side filtering)
    item_id: str = ""  # for acceptance statistics: the argument of the item's command


@dataclass(frozen=True)
class CompletionRecord:
    """One finished generation, for `nexttoken/lastStats`; a client matches it to its request
    by document and position."""

    sequence: int  # counts up from 1 over the server's life
    uri: str
    position: types.Position
    stats: CompletionStats
    # "model"; an answer served without running the model (typing through a suggestion
    # already shown) will say so here.
    source: str = "model"

    def to_json(self) -> dict[str, Any]:
        return {
            "sequence": self.sequence,
            "uri": self.uri,
            "line": self.position.line,
            "character": self.position.character,
            "source": self.source,
            "stats": asdict(self.stats),
        }


class LspTextDocument(TextDocument):
    """pygls' document, with lines split at LSP's line breaks only.

    pygls splits with `str.splitlines`, which also breaks at form feeds and Unicode separators;
    an incremental edit below such a character would land on the wrong line.
    """

    @property
    def lines(self) -> list[str]:  # type: ignore[override]
        return lsp_lines(self.source)


class LspWorkspace(Workspace):
    def _create_text_document(
        self,
        doc_uri: str,
        source: str | None = None,
        version: int | None = None,
        language_id: str | None = None,
    ) -> TextDocument:
        return LspTextDocument(
            doc_uri,
            source=source,
            version=version,
            language_id=language_id,
            sync_kind=self._sync_kind,
            position_codec=self.position_codec,
        )


class NextTokenProtocol(LanguageServerProtocol):
    @lsp_method(types.INITIALIZE)
    def lsp_initialize(self, params: types.InitializeParams):  # type: ignore[no-untyped-def]
        result = yield from super().lsp_initialize(params)
        # pygls builds its own Workspace during initialize; no document exists yet, so the
        # swap loses nothing.
        plain = self.workspace
        self._workspace = LspWorkspace(
            plain.root_uri,
            SYNC_KIND,
            list(plain.folders.values()),
            plain.position_encoding,
        )
        return result


class NextTokenServer(LanguageServer):
    def __init__(
        self,
        settings: ServerSettings | None = None,
        load_backend: BackendLoader = load_pipeline,
    ) -> None:
        super().__init__(
            "nexttoken",
            __version__,
            text_document_sync_kind=SYNC_KIND,
            protocol_cls=NextTokenProtocol,
        )
        # Command-line settings, then initializationOptions over them; workspace settings from
        # didChangeConfiguration are applied over this, never accumulated.
        self.initial_settings = settings or ServerSettings()
        self.settings = self.initial_settings
        self.inference = InferenceWorker()
        self._load_backend = load_backend
        self._backend: asyncio.Future[CompletionBackend | None] | None = None
        self._load_task: asyncio.Task[None] | None = None
        self._loaded_model_dir = ""
        self._model_loads = 0
        self.debounce = AdaptiveDebounce()
        self.acceptance = AcceptanceStats(StatsStore(stats_file()))
        self.retention_delay_s = retention_delay_s()
        self.typing_through_answers = 0
        # The last suggestion per document, and those just offered (by item id), from which
        # the one the client shows becomes the last.
        self.shown = ShownSuggestions()
        self._offered: dict[str, tuple[str, ShownSuggestion]] = {}
        self._retention_tasks: set[asyncio.Task[None]] = set()
        self.recent_completions: deque[CompletionRecord] = deque(maxlen=RECENT_COMPLETIONS)
        self.indexing = WorkspaceIndexing(self)

    def shutdown(self) -> None:
        """Also when the client just goes away (end of stdin, closed socket): a generation in
        flight stops at its next step instead of holding up the exit."""
        self.inference.close()
        self.indexing.stop()
        self.save_stats()
        super().shutdown()

    # -- settings ------------------------------------------------------------------------------

    def apply_settings(self, raw: object, base: ServerSettings) -> None:
        parsed = parse_settings(raw, base)
        for problem in parsed.problems:
            self.show(types.MessageType.Warning, f"nexttoken: {problem}")
        self.settings = parsed.settings
        self.log_to_client(f"settings applied: {parsed.settings}")
        if self._backend is not None and parsed.settings.model_dir != self._loaded_model_dir:
            self.start_model_load()
        elif self._backend is not None and self._backend.done():
            self._configure_backend(self._backend.result())

    def _configure_backend(self, backend: CompletionBackend | None) -> None:
        """Local engine or remote server, as the settings say (lsp_server/model_source.py)."""
        problem = configure_backend(backend, self.settings) if backend is not None else None
        if problem:
            self.show(types.MessageType.Warning, f"nexttoken: {problem}")

    # -- model -----------------------------------------------------------------------------------

    def start_model_load(self) -> None:
        """Load the configured model off the event loop; requests wait for `_backend`."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[CompletionBackend | None] = loop.create_future()
        self._backend = future
        self._loaded_model_dir = self.settings.model_dir
        self._model_loads += 1
        # Keep a reference: the loop holds tasks only weakly.
        self._load_task = loop.create_task(self._load_model(self.settings.model_dir, future))

    async def _load_model(
        self, model_dir: str, future: asyncio.Future[CompletionBackend | None]
    ) -> None:
        started = time.perf_counter()
        loading = _in_daemon_thread(lambda: self._load_backend(model_dir))
        token = await self._begin_progress(model_dir)
        backend: CompletionBackend | None = None
        try:
            backend = await loading
        except MODEL_ERRORS as exc:
            self.show(types.MessageType.Error, _model_failure(exc))
        except Exception as exc:
            log.exception("loading the model failed")
            self.show(types.MessageType.Error, _model_failure(exc))
        else:
            seconds = time.perf_counter() - started
            self.log_to_client(f"model {model_dir or '(default)'} ready in {seconds:.1f} s")
            self._configure_backend(backend)
        if token is not None:
            outcome = "ready" if backend is not None else "failed"
            self.work_done_progress.end(token, types.WorkDoneProgressEnd(message=outcome))
        # Progress ends before any waiting request is answered, so a client sees them in order.
        if not future.done():
            future.set_result(backend)

    async def _begin_progress(self, model_dir: str) -> str | None:
        capabilities = self.client_capabilities.window
        if capabilities is None or not capabilities.work_done_progress:
            return None
        token = f"nexttoken/model-load/{self._model_loads}"
        try:
            await self.work_done_progress.create_async(token)
        except Exception:  # the client refused the token: load without progress
            log.warning("client refused progress token %s", token, exc_info=True)
            return None
        self.work_done_progress.begin(
            token,
            types.WorkDoneProgressBegin(
                title="nexttoken: loading model", message=model_dir or "default model"
            ),
        )
        return token

    def ensure_model_loading(self) -> asyncio.Future[CompletionBackend | None]:
        if self._backend is None:
            self.start_model_load()
        assert self._backend is not None
        return self._backend

    async def backend(self) -> CompletionBackend | None:
        """The loaded pipeline (waiting for a load in progress), or None when loading failed."""
        # Shielded: a cancelled request must not cancel the load other requests wait for.
        return await asyncio.shield(self.ensure_model_loading())

    # -- completion ------------------------------------------------------------------------------

    async def suggest(
        self, uri: str, position: types.Position, *, invoked: bool = False
    ) -> list[Suggestion]:
        """The suggestions at a position, best first: one while typing, up to the
        `candidates` setting on an explicit invoke; none when there is nothing to suggest.

        Raises asyncio.CancelledError when a newer request preempts this one, so that pygls
        answers it with RequestCancelled.
        """
        settings = self.settings
        if not settings.enabled:
            return []
        ticket = self.inference.draw_ticket()
        rhythm = self.debounce.request_arrived(time.monotonic())
        try:
            snapshot = await self._snapshot(uri)
            if snapshot is None:
                self.log_to_client(f"no document {uri}: not opened and not in the workspace")
                return []
            check_completable(snapshot.text)
        except UnusableText as exc:
            self.log_to_client(f"no completion for {uri}: {exc}")
            return []
        encoding = self.workspace.position_encoding or UTF16
        cursor = offset_at(snapshot.text, Position(position.line, position.character), encoding)
        if cursor is None:
            self.log_to_client(f"no completion: line {position.line} is past the end of {uri}")
            return []
        if not invoked:
            typed_through = self._typed_through(uri, snapshot, cursor, position, encoding)
            if typed_through is not None:
                return [typed_through]
        request, window = completion_request(
            snapshot.text,
            cursor,
            path=snapshot.path,
            language_id=snapshot.language_id,
            max_new_tokens=settings.max_new_tokens,
        )
        # The pipeline keeps the workspace's .env-type values out of prompts and suggestions.
        doc_path = document_path(uri)
        root = containing_root(doc_path, self.workspace_roots()) if doc_path else None
        if root is not None:
            request = replace(request, workspace=str(root))
        if settings.index:
            request = await self.indexing.with_context(request, doc_path)
        backend = await self.backend()
        if backend is None:
            return []
        wait_ms = settings.debounce_ms or (rhythm.wait_ms if settings.adaptive_debounce else 0)
        warm_ms = 0.0
        if wait_ms and not invoked:
            # The prompt is known now: prefill it while waiting, so that the generation starts
            # decoding at once. A newer keystroke stops the prefill between chunks and reuses
            # all it did but the last few tokens.
            warming = asyncio.ensure_future(self.inference.warm(backend, request, ticket))
            try:
                await asyncio.sleep(wait_ms / 1000)
                if self.inference.is_stale(ticket):
                    raise asyncio.CancelledError
                warm_ms = await warming
            except BaseException:
                warming.cancel()
                raise
        candidates = settings.candidates if invoked else 1
        try:
            results = await self.inference.complete_candidates(backend, request, ticket, candidates)
        except CompletionCancelled:
            raise asyncio.CancelledError from None
        except Exception:
            log.exception("completion failed for %s at %s", uri, position)
            self.log_to_client(f"completion failed for {uri}; see the server's log", error=True)
            return []
        # The model's time for this request, the prefill during the wait included.
        self.debounce.generation_finished(
            warm_ms + sum(result.stats.total_ms for result in results)
        )
        suggestions: list[Suggestion] = []
        for result in results:
            self.log_to_client(f"completion: {describe_stats(result.stats)}")
            self.record_completion(uri, position, result.stats)
            suggestion = _to_suggestion(snapshot.text, window, cursor, result, encoding)
            replace_end = window.document_offset(result.end)
            if suggestion is not None and replace_end is not None:
                offered = self._offer(
                    uri, snapshot, cursor, replace_end, suggestion, first=not suggestions
                )
                suggestions.append(offered)
        return suggestions

    def record_completion(
        self, uri: str, position: types.Position, stats: CompletionStats, source: str = "model"
    ) -> None:
        last = self.recent_completions[-1].sequence if self.recent_completions else 0
        self.recent_completions.append(CompletionRecord(last + 1, uri, position, stats, source))

    def _typed_through(
        self,
        uri: str,
        snapshot: DocumentSnapshot,
        cursor: int,
        position: types.Position,
        encoding: str,
    ) -> Suggestion | None:
        """The rest of the suggestion last shown here, when the user typed its beginning."""
        started = time.perf_counter()
        continuation = self.shown.continuation(uri, snapshot.text, cursor)
        if continuation is None:
            return None
        end = position_at(snapshot.text, continuation.replace_end, encoding)
        suggestion = Suggestion(
            text=continuation.text,
            range=types.Range(start=position, end=_lsp_position(end)),
            typed="",
        )
        self.typing_through_answers += 1
        milliseconds = (time.perf_counter() - started) * 1000
        typed = len(continuation.typed)
        self.log_to_client(f"completion: typed through ({typed} characters, {milliseconds:.1f} ms)")
        stats = CompletionStats(total_ms=milliseconds, stop_reason=TYPING_THROUGH)
        self.record_completion(uri, position, stats, source=TYPING_THROUGH)
        return self._offer(uri, snapshot, cursor, continuation.replace_end, suggestion, first=True)

    def _offer(
        self,
        uri: str,
        snapshot: DocumentSnapshot,
        cursor: int,
        replace_end: int,
        suggestion: Suggestion,
        *,
        first: bool,
    ) -> Suggestion:
        """Give the suggestion an id for statistics. The first of an answer is taken as the
        one shown until the client says otherwise (didShowCompletion)."""
        start_line = suggestion.range.start.line
        item_id = self.acceptance.issue(uri, snapshot.language_id, suggestion.text, start_line)
        shown = ShownSuggestion(snapshot.text, cursor, suggestion.text, replace_end, item_id)
        if first:
            self._offered.clear()
            self.shown.remember(uri, shown)
        self._offered[item_id] = (uri, shown)
        return replace(suggestion, item_id=item_id)

    # -- acceptance statistics -------------------------------------------------------------------

    def item_shown(self, item_id: str) -> None:
        self.acceptance.shown(item_id)
        offered = self._offered.get(item_id)
        if offered is not None:
            self.shown.remember(*offered)

    def item_accepted(self, item_id: str, accepted_length: int | None = None) -> None:
        """The whole item accepted, or (`accepted_length`) its first characters."""
        if accepted_length is None:
            check = self.acceptance.accepted(item_id)
        else:
            check = self.acceptance.partially_accepted(item_id, accepted_length)
        item = self.acceptance.item(item_id)
        if item is not None and accepted_length is None:
            self.shown.forget(item.uri)  # the suggestion is in the text now
        if check is not None:
            loop = asyncio.get_running_loop()
            loop.call_later(self.retention_delay_s, self._start_retention_check, check)
        self.save_stats()

    def _start_retention_check(self, check: RetentionCheck) -> None:
        task = asyncio.get_running_loop().create_task(self._check_retention(check))
        self._retention_tasks.add(task)
        task.add_done_callback(self._retention_tasks.discard)

    async def _check_retention(self, check: RetentionCheck) -> None:
        try:
            snapshot = await self._snapshot(check.uri)
        except UnusableText:
            snapshot = None
        self.acceptance.check_retention(check, snapshot.text if snapshot else None)
        self.save_stats()

    def save_stats(self) -> dict[str, Any] | None:
        """Merge this session's new counts into the stats file; its totals, None on failure."""
        try:
            totals = self.acceptance.save()
        except OSError as exc:
            log.warning("could not save acceptance statistics: %s", exc)
            return None
        return totals.to_json() if totals is not None else None

    def statistics(self) -> dict[str, Any]:
        store = self.acceptance.store
        return {
            "session": self.acceptance.session.to_json(),
            "allTime": self.save_stats(),
            "statsFile": str(store.path) if store is not None else None,
            "typingThroughAnswers": self.typing_through_answers,
            "debounce": asdict(self.debounce.state()),
        }

    def model_description(self) -> dict[str, str] | None:
        """The loaded model's name and execution provider; None before it is loaded."""
        if self._backend is None or not self._backend.done():
            return None
        backend = self._backend.result()
        if backend is None:
            return None
        # Duck-typed: a CompletionBackend need not be the ONNX pipeline (tests script one).
        manifest = getattr(backend, "manifest", None)
        engine = getattr(backend, "engine", None)
        session = getattr(engine, "session", None)
        providers = session.get_providers() if session is not None else []
        return {
            "name": str(getattr(manifest, "name", "")),
            "folder": str(getattr(engine, "model_dir", self._loaded_model_dir)),
            "execution_provider": providers[0] if providers else "",
        }

    async def _snapshot(self, uri: str) -> DocumentSnapshot | None:
        fs_path = to_fs_path(uri)
        path = Path(fs_path) if fs_path else None
        opened = self.workspace.text_documents.get(unquote(uri))
        if opened is not None:
            language_id = opened.language_id or (language_for_path(path) if path else "")
            name = prompt_path(path, self.workspace_roots()) if path else uri
            return DocumentSnapshot(opened.source, language_id, name)
        # Not opened: read it from disk, but only inside the workspace, never anywhere else
        # (resolved, so neither `..` nor a symbolic link leads out of it).
        if path is None:
            return None
        try:
            roots = [root.resolve() for root in self.workspace_roots()]
            real_path = path.resolve()
        except (OSError, ValueError) as exc:  # a link loop, a NUL in the path
            raise UnusableText(f"cannot resolve {path}: {exc}") from exc
        if containing_root(real_path, roots) is None:
            return None
        text = await asyncio.to_thread(read_source_file, real_path)
        return DocumentSnapshot(text, language_for_path(path), prompt_path(real_path, roots))

    def workspace_roots(self) -> list[Path]:
        uris = [*self.workspace.folders, self.workspace.root_uri]
        paths = {to_fs_path(uri) for uri in uris if uri}
        return [Path(path) for path in paths if path]

    # -- talking to the user ---------------------------------------------------------------------

    def show(self, kind: types.MessageType, message: str) -> None:
        log.log(logging.ERROR if kind == types.MessageType.Error else logging.WARNING, message)
        self.window_show_message(types.ShowMessageParams(type=kind, message=message))

    def log_to_client(self, message: str, *, error: bool = False) -> None:
        log.info(message)
        kind = types.MessageType.Error if error else types.MessageType.Log
        self.window_log_message(types.LogMessageParams(type=kind, message=message))


def _to_suggestion(
    text: str, window: TextWindow, cursor: int, result: CompletionResult, encoding: str
) -> Suggestion | None:
    if not result.insert_text:
        return None
    start = window.document_offset(result.start)
    end = window.document_offset(result.end)
    if start is None or end is None or not start <= cursor <= end:
        log.warning("pipeline returned a range outside the request: %s", result)
        return None
    return Suggestion(
        text=result.insert_text,
        range=types.Range(
            start=_lsp_position(position_at(text, start, encoding)),
            end=_lsp_position(position_at(text, end, encoding)),
        ),
        typed=text[start:cursor],
    )


def _lsp_position(position: Position) -> types.Position:
    return types.Position(line=position.line, character=position.character)


def _model_failure(exc: Exception) -> str:
    return (
        f"nexttoken: could not load the model: {exc}. Completions are off until the "
        f"{SECTION}.modelDir setting (or --model) names a working model folder."
    )


def _in_daemon_thread(work: Callable[[], T]) -> asyncio.Future[T]:
    """Run `work` on a daemon thread: a model build can take minutes, and an editor that
    quits meanwhile must not have to wait for it."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(result: Any, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)

    def run() -> None:
        try:
            result = work()
        except Exception as exc:
            outcome: tuple[Any, BaseException | None] = (None, exc)
        else:
            outcome = (result, None)
        # RuntimeError: the loop closed while we worked, so nobody is waiting.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(settle, *outcome)

    threading.Thread(target=run, name="nexttoken-model-load", daemon=True).start()
    return future


# -- handlers: each translates LSP to a server call and back ----------------------------------


def initialize(ls: NextTokenServer, params: types.InitializeParams) -> None:
    ls.apply_settings(params.initialization_options, ls.initial_settings)
    ls.initial_settings = ls.settings
    text_document = params.capabilities.text_document
    if text_document is None or text_document.inline_completion is None:
        # Only clients without inline completion get the completion-item fallback: one that
        # has both would show every suggestion twice.
        ls.feature(
            types.TEXT_DOCUMENT_COMPLETION,
            types.CompletionOptions(trigger_characters=FALLBACK_TRIGGER_CHARACTERS),
        )(completion)


def initialized(ls: NextTokenServer, params: types.InitializedParams) -> None:
    ls.ensure_model_loading()
    ls.indexing.configure(ls.settings, ls.workspace)


async def did_change_configuration(
    ls: NextTokenServer, params: types.DidChangeConfigurationParams
) -> None:
    raw = client_section(params.settings)
    if raw is None:
        workspace = ls.client_capabilities.workspace
        if workspace is None or not workspace.configuration:
            return
        # The notification carried nothing of ours: pull our section, as LSP suggests.
        pulled = await ls.workspace_configuration_async(
            types.ConfigurationParams(items=[types.ConfigurationItem(section=SECTION)])
        )
        raw = pulled[0] if pulled else None
    ls.apply_settings(raw, ls.initial_settings)
    ls.indexing.configure(ls.settings, ls.workspace)


def did_change_workspace_folders(
    ls: NextTokenServer, params: types.DidChangeWorkspaceFoldersParams
) -> None:
    # pygls has already applied the change to ls.workspace.
    ls.indexing.configure(ls.settings, ls.workspace)


# Open documents feed the workspace index: their unsaved text wins over the disk.
def did_open(ls: NextTokenServer, params: types.DidOpenTextDocumentParams) -> None:
    uri = params.text_document.uri
    ls.indexing.document_changed(document_path(uri), params.text_document.text)


def did_change(ls: NextTokenServer, params: types.DidChangeTextDocumentParams) -> None:
    uri = params.text_document.uri
    document = ls.workspace.text_documents.get(unquote(uri))
    if document is not None:
        ls.indexing.document_changed(document_path(uri), document.source)


def did_close(ls: NextTokenServer, params: types.DidCloseTextDocumentParams) -> None:
    ls.indexing.document_closed(document_path(params.text_document.uri))


def shutdown(ls: NextTokenServer, params: None) -> None:
    ls.inference.close()


async def inline_completion(
    ls: NextTokenServer, params: types.InlineCompletionParams
) -> types.InlineCompletionList:
    invoked = params.context.trigger_kind == types.InlineCompletionTriggerKind.Invoked
    suggestions = await ls.suggest(params.text_document.uri, params.position, invoked=invoked)
    items = [
        types.InlineCompletionItem(
            insert_text=suggestion.text,
            range=suggestion.range,
            command=_accepted_command(suggestion),
        )
        for suggestion in suggestions
    ]
    return types.InlineCompletionList(items=items)


async def completion(ls: NextTokenServer, params: types.CompletionParams) -> types.CompletionList:
    # Incomplete, so the client asks again as the user types rather than filtering a stale item.
    suggestions = await ls.suggest(params.text_document.uri, params.position)
    suggestion = suggestions[0] if suggestions else None
    if suggestion is None or not suggestion.text.strip():
        return types.CompletionList(is_incomplete=True, items=[])
    item = types.CompletionItem(
        label=suggestion.text.strip().splitlines()[0][:80],
        kind=types.CompletionItemKind.Text,
        detail="nexttoken",
        documentation=suggestion.text,
        filter_text=suggestion.typed + suggestion.text,
        sort_text="0",
        preselect=True,
        insert_text_format=types.InsertTextFormat.PlainText,
        text_edit=types.TextEdit(range=suggestion.range, new_text=suggestion.text),
        command=_accepted_command(suggestion),
    )
    return types.CompletionList(is_incomplete=True, items=[item])


def _accepted_command(suggestion: Suggestion) -> types.Command:
    return types.Command(
        title="nexttoken: suggestion accepted",
        command=ACCEPTED_COMMAND,
        arguments=[suggestion.item_id],
    )


def accepted(ls: NextTokenServer, *arguments: Any) -> None:
    """The `nexttoken.accepted` command, run by the client when the user accepts an item."""
    if arguments and isinstance(arguments[0], str):
        ls.item_accepted(arguments[0])


def did_show_completion(ls: NextTokenServer, params: Any) -> None:
    item_id = _item_id(params)
    if item_id:
        ls.item_shown(item_id)


def did_partially_accept_completion(ls: NextTokenServer, params: Any) -> None:
    item_id = _item_id(params)
    length = getattr(params, "acceptedLength", None)
    if item_id and isinstance(length, int) and not isinstance(length, bool):
        ls.item_accepted(item_id, length)


def _item_id(params: Any) -> str:
    """The id in `{item: {command: {arguments: [id]}}}` (Copilot's shape), "" when absent."""
    command = getattr(getattr(params, "item", None), "command", None)
    arguments = getattr(command, "arguments", None)
    if isinstance(arguments, (list, tuple)) and arguments and isinstance(arguments[0], str):
        return arguments[0]
    return ""


def statistics(ls: NextTokenServer, params: object) -> dict[str, Any]:
    return ls.statistics()


def last_stats(ls: NextTokenServer, params: object) -> dict[str, Any]:
    return {
        "model": ls.model_description(),
        "completions": [record.to_json() for record in ls.recent_completions],
    }


async def index_status(ls: NextTokenServer, params: Any) -> dict[str, Any]:
    wait_ms = getattr(params, "waitMs", 0)
    if isinstance(wait_ms, bool) or not isinstance(wait_ms, int | float) or wait_ms < 0:
        raise JsonRpcInvalidParams(f"{INDEX_STATUS}: waitMs must be a number of milliseconds >= 0")
    return await ls.indexing.status(min(wait_ms / 1000, INDEX_STATUS_WAIT_LIMIT_S))


def create_server(
    settings: ServerSettings | None = None, load_backend: BackendLoader = load_pipeline
) -> NextTokenServer:
    server = NextTokenServer(settings, load_backend)
    server.feature(types.INITIALIZE)(initialize)
    server.feature(types.INITIALIZED)(initialized)
    server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)(did_change_configuration)
    server.feature(types.WORKSPACE_DID_CHANGE_WORKSPACE_FOLDERS)(did_change_workspace_folders)
    server.feature(types.TEXT_DOCUMENT_DID_OPEN)(did_open)
    server.feature(types.TEXT_DOCUMENT_DID_CHANGE)(did_change)
    server.feature(types.TEXT_DOCUMENT_DID_CLOSE)(did_close)
    server.feature(types.SHUTDOWN)(shutdown)
    server.feature(types.TEXT_DOCUMENT_INLINE_COMPLETION, types.InlineCompletionOptions())(
        inline_completion
    )
    server.command(ACCEPTED_COMMAND)(accepted)
    server.feature(DID_SHOW_COMPLETION)(did_show_completion)
    server.feature(DID_PARTIALLY_ACCEPT_COMPLETION)(did_partially_accept_completion)
    server.feature(STATS)(statistics)
    server.feature(LAST_STATS)(last_stats)
    server.feature(INDEX_STATUS)(index_status)
    return server
