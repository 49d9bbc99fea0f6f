"""The server's side of the workspace index: start and stop it as settings say, feed it the
text of open documents, show its work as `$/progress`, and add repository context to a
completion request.

One index per workspace folder: a document gets context from its own folder's index.
Protocol glue only: indexing is `indexer/`'s job and choosing context `completion.context`'s.
No request waits for the index: one that arrives before (or while) the workspace is indexed
gets the context the store holds at that moment, possibly none. (`nexttoken/indexStatus` waits
when asked to.)
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Iterator
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


def index_roots(workspace: Workspace) -> list[Path]:
    """The folders to index: every workspace folder (and the client's root), each once; a
    folder inside another is left to the outer one's index, which holds its files already."""
    found: list[Path] = []
    for uri in [*workspace.folders, workspace.root_uri]:
        path = to_fs_path(uri) if uri else None
        if path and Path(path) not in found:
            found.append(Path(path))
    return [
        root
        for root in found
        if not any(other != root and root.is_relative_to(other) for other in found)
    ]


def document_path(uri: str) -> Path | None:
    path = to_fs_path(uri)
    return Path(path) if path else None


class WorkspaceIndexing:
    """One index per workspace folder, started and stopped as folders and settings change."""

    def __init__(self, server: LanguageServer) -> None:
        self._server = server
        self.roots: dict[Path, RootIndex] = {}
        self._excludes: tuple[str, ...] | None = None
        self._progress_tokens = itertools.count(1)
        # One `nexttoken/indexStatus` waits at a time: each wait holds a thread of the default
        # executor, which context retrieval needs too.
        self._waiting = asyncio.Lock()

    # -- life cycle ------------------------------------------------------------------------

    def configure(self, settings: ServerSettings, workspace: Workspace) -> None:
        """Start, restart or stop indexes to match the settings and the workspace folders (on
        the event loop)."""
        wanted = index_roots(workspace) if settings.index else []
        if settings.index_exclude != self._excludes:
            self.stop()
            self._excludes = settings.index_exclude
        for root in [root for root in self.roots if root not in wanted]:
            self.roots.pop(root).stop()
        options = IndexOptions(walk=WalkOptions(excludes=settings.index_exclude))
        for root in wanted:
            if root not in self.roots:
                self.roots[root] = RootIndex(self._server, root, options, self._progress_tokens)
                log.info("indexing %s", root)

    def stop(self) -> None:
        roots, self.roots = self.roots, {}
        for root in roots.values():
            root.stop()

    def _holding(self, path: Path | None) -> tuple[RootIndex, str] | None:
        """The index whose folder holds `path`, and the path relative to that folder."""
        if path is None:
            return None
        for root in self.roots.values():
            relative = root.index.rules.relative(path)
            if relative is not None:
                return root, relative
        return None

    # -- documents -------------------------------------------------------------------------

    def document_changed(self, path: Path | None, text: str) -> None:
        if (held := self._holding(path)) is not None and path is not None:
            held[0].index.document_changed(path, text)

    def document_closed(self, path: Path | None) -> None:
        if (held := self._holding(path)) is not None and path is not None:
            held[0].index.document_closed(path)

    # -- requests --------------------------------------------------------------------------

    async def with_context(
        self, request: CompletionRequest, path: Path | None
    ) -> CompletionRequest:
        """The request with repository context from its folder's index, or as it was when
        there is none to add."""
        held = self._holding(path)
        if held is None:
            return request
        root, relative = held
        started = time.perf_counter()
        try:
            context = await asyncio.to_thread(root.retriever.retrieve, request, relative)
        except Exception:  # context is a bonus: a bug here must not cost the completion
            log.exception("context retrieval failed for %s", relative)
            return request
        log.info(
            "context: %d snippets in %.1f ms", len(context), (time.perf_counter() - started) * 1000
        )
        return replace(request, context=context, repo_name=workspace_name(str(root.index.root)))

    # -- status ----------------------------------------------------------------------------

    async def status(self, wait_s: float = 0.0) -> dict[str, Any]:
        """The indexes' state for `nexttoken/indexStatus`: "off", "indexing", "ready" or
        "failed" (the worst of the folders'), with each folder's; waiting up to `wait_s` for
        every first pass to end, so that a client which needs the steady state (the bench)
        need not poll."""
        roots = list(self.roots.values())
        if not roots:
            return {"state": "off", "files": None, "roots": []}
        if wait_s > 0:
            deadline = time.monotonic() + wait_s
            async with self._waiting:
                for root in roots:
                    left = deadline - time.monotonic()
                    if left > 0 and not root.index.ready:
                        await asyncio.to_thread(root.index.wait_ready, left)
        each = [root.status() for root in roots]
        states = {entry["state"] for entry in each}
        state = next(s for s in ("failed", "indexing", "ready") if s in states)
        counted = [entry["files"] for entry in each if entry["files"] is not None]
        return {"state": state, "files": sum(counted) if counted else None, "roots": each}


class RootIndex:
    """One workspace folder's index, its context retriever, and its work shown as
    `$/progress` where the client takes that."""

    def __init__(
        self,
        server: LanguageServer,
        root: Path,
        options: IndexOptions,
        tokens: Iterator[int],
    ) -> None:
        self._server = server
        self._tokens = tokens
        self._loop = asyncio.get_running_loop()
        self._progress_token: str | None = None
        self._progress_ready = False
        self._progress_end = ""  # the end message that came before the client took the token
        self._begin_task: asyncio.Task[None] | None = None
        self._last_report = 0.0
        self.index = WorkspaceIndex(root, options, on_progress=self._from_index_thread)
        self.retriever = ContextRetriever(self.index)
        self.index.start()

    def stop(self) -> None:
        self.index.stop()

    def status(self) -> dict[str, Any]:
        index = self.index
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
        now = time.monotonic()
        if not (progress.finished or progress.done == 0) and now - self._last_report < (
            PROGRESS_INTERVAL_S
        ):
            return
        self._last_report = now
        # The loop may be closing as the server exits: nobody is listening then.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._show_progress, progress)

    def _show_progress(self, progress: IndexProgress) -> None:
        capabilities = self._server.client_capabilities.window
        if capabilities is None or not capabilities.work_done_progress:
            return
        percentage = int(100 * progress.done / progress.total) if progress.total else 100
        if self._progress_token is None:
            if not progress.finished:  # nothing to index: nothing to show
                self._progress_token = f"nexttoken/index/{next(self._tokens)}"
                self._progress_ready = False
                self._progress_end = ""
                self._begin_task = self._loop.create_task(
                    self._begin(self._progress_token, self._message(progress), percentage)
                )
            return
        if not self._progress_ready:
            if progress.finished:
                self._progress_end = self._message(progress)  # sent once the client has the token
            return
        self._report(progress, percentage)

    def _message(self, progress: IndexProgress) -> str:
        # Several folders may be indexed at once: say which.
        return f"{self.index.root.name}: {progress.message}"

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
            self._send_end(self._progress_end)

    def _report(self, progress: IndexProgress, percentage: int) -> None:
        if progress.finished:
            self._send_end(self._message(progress))
            return
        assert self._progress_token is not None
        self._server.work_done_progress.report(
            self._progress_token,
            types.WorkDoneProgressReport(message=self._message(progress), percentage=percentage),
        )

    def _send_end(self, message: str) -> None:
        assert self._progress_token is not None
        self._server.work_done_progress.end(
            self._progress_token, types.WorkDoneProgressEnd(message=message)
        )
        self._progress_token = None


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
