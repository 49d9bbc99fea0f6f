"""The server's side of the workspace index: start and stop it as settings say, feed it the
text of open documents, show its work as `$/progress`, and add repository context to a
completion request.

Protocol glue only: indexing is `indexer/`'s job and choosing context `completion.context`'s.
Nothing here waits for the index: a request that arrives before (or while) the workspace is
indexed gets the context the store holds at that moment, possibly none.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.lsp.server import LanguageServer
from pygls.uris import to_fs_path
from pygls.workspace import Workspace

from completion.context import ContextRetriever, workspace_name
from completion.request import CompletionRequest
from indexer.index import IndexOptions, IndexProgress, WorkspaceIndex
from indexer.walk import WalkOptions
from lsp_server.settings import ServerSettings

log = logging.getLogger(__name__)

# Progress reports at most this often: a report per file would flood the client.
PROGRESS_INTERVAL_S = 0.25


def workspace_root(workspace: Workspace) -> Path | None:
    """The folder to index: the client's root, else its first workspace folder. (One index
    per server: further folders of a multi-root workspace are not indexed.)"""
    uris = [workspace.root_uri, *workspace.folders]
    for uri in uris:
        path = to_fs_path(uri) if uri else None
        if path:
            return Path(path)
    return None


def document_path(uri: str) -> Path | None:
    path = to_fs_path(uri)
    return Path(path) if path else None


class WorkspaceIndexing:
    def __init__(self, server: LanguageServer) -> None:
        self._server = server
        self.index: WorkspaceIndex | None = None
        self.retriever: ContextRetriever | None = None
        self._configured: tuple[Path, tuple[str, ...]] | None = None
        self._progress_token: str | None = None
        self._progress_ready = False
        self._progress_end = ""  # the end message that came before the client took the token
        self._begin_task: asyncio.Task[None] | None = None
        self._progress_starts = 0
        self._last_report = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- life cycle ------------------------------------------------------------------------

    def configure(self, settings: ServerSettings, workspace: Workspace) -> None:
        """Start, restart or stop the index to match the settings (on the event loop)."""
        root = workspace_root(workspace)
        wanted = (root, settings.index_exclude) if settings.index and root else None
        if wanted == self._configured:
            return
        self.stop()
        self._configured = wanted
        if wanted is None or root is None:
            return
        self._loop = asyncio.get_running_loop()
        options = IndexOptions(walk=WalkOptions(excludes=settings.index_exclude))
        self.index = WorkspaceIndex(root, options, on_progress=self._from_index_thread)
        self.retriever = ContextRetriever(self.index)
        self.index.start()
        log.info("indexing %s", root)

    def stop(self) -> None:
        index, self.index, self.retriever = self.index, None, None
        self._configured = None
        if index is not None:
            index.stop()

    # -- documents -------------------------------------------------------------------------

    def document_changed(self, path: Path | None, text: str) -> None:
        if self.index is not None and path is not None:
            self.index.document_changed(path, text)

    def document_closed(self, path: Path | None) -> None:
        if self.index is not None and path is not None:
            self.index.document_closed(path)

    # -- requests --------------------------------------------------------------------------

    async def with_context(
        self, request: CompletionRequest, path: Path | None
    ) -> CompletionRequest:
        """The request with repository context, or as it was when there is none to add."""
        index, retriever = self.index, self.retriever
        if index is None or retriever is None or path is None:
            return request
        relative = index.rules.relative(path)
        if relative is None:
            return request
        started = time.perf_counter()
        try:
            context = await asyncio.to_thread(retriever.retrieve, request, relative)
        except Exception:  # context is a bonus: a bug here must not cost the completion
            log.exception("context retrieval failed for %s", relative)
            return request
        log.info(
            "context: %d snippets in %.1f ms", len(context), (time.perf_counter() - started) * 1000
        )
        return replace(request, context=context, repo_name=workspace_name(str(index.root)))

    # -- status ------------------------------------------------------------------------------

    async def status(self, wait_s: float = 0.0) -> dict[str, Any]:
        """The index's state for `nexttoken/indexStatus`: "off", "indexing", "ready" or
        "failed"; waiting up to `wait_s` for the first pass to end, so that a client which
        needs the steady state (the bench) need not poll."""
        index = self.index
        if index is None:
            return {"state": "off"}
        if wait_s > 0 and not index.ready:
            await asyncio.to_thread(index.wait_ready, wait_s)
        if index.failure:
            state = "failed"
        elif index.ready:
            state = "ready"
        else:
            state = "indexing"
        summary = index.summary
        return {
            "state": state,
            "root": str(index.root),
            "files": summary.files if summary is not None else None,
            "failure": index.failure or None,
        }

    # -- progress --------------------------------------------------------------------------

    def _from_index_thread(self, progress: IndexProgress) -> None:
        loop = self._loop
        now = time.monotonic()
        if not (progress.finished or progress.done == 0) and now - self._last_report < (
            PROGRESS_INTERVAL_S
        ):
            return
        self._last_report = now
        if loop is not None:
            # The loop may be closing as the server exits: nobody is listening then.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._show_progress, progress)

    def _show_progress(self, progress: IndexProgress) -> None:
        capabilities = self._server.client_capabilities.window
        if capabilities is None or not capabilities.work_done_progress:
            return
        percentage = int(100 * progress.done / progress.total) if progress.total else 100
        if self._progress_token is None:
            if not progress.finished:  # nothing to index: nothing to show
                self._progress_starts += 1
                self._progress_token = f"nexttoken/index/{self._progress_starts}"
                self._progress_ready = False
                self._progress_end = ""
                self._begin_task = asyncio.get_running_loop().create_task(
                    self._begin(self._progress_token, progress.message, percentage)
                )
            return
        if not self._progress_ready:
            if progress.finished:
                self._progress_end = progress.message  # sent once the client has the token
            return
        self._report(progress, percentage)

    async def _begin(self, token: str, message: str, percentage: int) -> None:
        progress = self._server.work_done_progress
        try:
            # The client must know the token before any progress under it.
            await progress.create_async(token)
        except Exception:
            log.warning("client refused progress token %s", token, exc_info=True)
            self._progress_token = None
            return
        progress.begin(
            token,
            types.WorkDoneProgressBegin(
                title="nexttoken: indexing", message=message, percentage=percentage
            ),
        )
        self._progress_ready = True
        if self._progress_end:
            self._report(IndexProgress(1, 1, self._progress_end, finished=True), 100)

    def _report(self, progress: IndexProgress, percentage: int) -> None:
        assert self._progress_token is not None
        if progress.finished:
            self._server.work_done_progress.end(
                self._progress_token, types.WorkDoneProgressEnd(message=progress.message)
            )
            self._progress_token = None
            return
        self._server.work_done_progress.report(
            self._progress_token,
            types.WorkDoneProgressReport(message=progress.message, percentage=percentage),
        )


def one_shot_context(
    request: CompletionRequest, root: Path, path: Path, timeout_s: float = 300.0
) -> CompletionRequest:
    """The request with repository context from an index of `root`, brought up to date for
    this one request (`nexttoken complete --workspace`): the store in the user cache makes a
    second run read only what changed. Without an index (it failed, the file is outside the
    root) the request is returned as it was."""
    index = WorkspaceIndex(root, IndexOptions())
    try:
        index.start()
        if not index.wait_ready(timeout_s) or index.failure:
            log.warning("no repository context: the index of %s: %s", root, index.failure)
            return request
        relative = index.rules.relative(path)
        if relative is None:
            return request
        context = ContextRetriever(index).retrieve(request, relative)
        return replace(request, context=context, repo_name=workspace_name(str(index.root)))
    finally:
        index.stop()
