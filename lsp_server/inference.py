"""Runs generations one at a time on a single worker thread, and lets newer requests preempt.

The pipeline is not thread-safe and a generation takes hundreds of milliseconds, so every
generation runs on one thread, off the event loop. Each completion request draws a ticket; the
`cancelled` callback handed to the pipeline turns true once the request itself is cancelled or a
newer request has drawn a ticket, and the pipeline stops between decode steps. A stale suggestion
is worth nothing to an editor that has moved on.

Tickets are drawn and compared on the event loop's thread; the worker only reads the latest
number, a single attribute read.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol, TypeVar

from completion.candidates import complete_candidates
from completion.pipeline import CompletionCancelled
from completion.request import CompletionRequest, CompletionResult, CompletionStats

log = logging.getLogger(__name__)

CancelCheck = Callable[[], bool]
T = TypeVar("T")


class CompletionBackend(Protocol):
    """What the server needs from `completion.pipeline.CompletionPipeline` (tests fake it)."""

    def complete(self, request: CompletionRequest, cancelled: CancelCheck) -> CompletionResult: ...


def describe_stats(stats: CompletionStats) -> str:
    """One line on where a generation's time went and how much of the prompt was cached."""
    return (
        f"latency {stats.total_ms:.0f} ms (prefill {stats.prefill_ms:.0f} ms, "
        f"decode {stats.decode_ms:.0f} ms); prompt {stats.prompt_tokens} tokens "
        f"({stats.reused_tokens} reused from cache), {stats.generated_tokens} generated; "
        f"stop: {stats.stop_reason or '-'}"
        # The remote server's failure, in words the user can act on (completion.remote_backend).
        + (f" ({stats.mode_reason})" if stats.stop_reason == "remote_error" else "")
    )


class InferenceWorker:
    def __init__(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nexttoken-infer")
        self._latest_ticket = 0
        self._closed = False

    def draw_ticket(self) -> int:
        """Mark a new request as the newest; every older one becomes stale."""
        self._latest_ticket += 1
        return self._latest_ticket

    def is_stale(self, ticket: int) -> bool:
        return self._closed or ticket != self._latest_ticket

    async def complete(
        self, backend: CompletionBackend, request: CompletionRequest, ticket: int
    ) -> CompletionResult:
        """Run one generation on the worker; raises CompletionCancelled when preempted and
        asyncio.CancelledError when the awaiting request is cancelled."""
        return await self._run(ticket, lambda cancelled: backend.complete(request, cancelled))

    async def complete_candidates(
        self, backend: CompletionBackend, request: CompletionRequest, ticket: int, n: int
    ) -> list[CompletionResult]:
        """Up to `n` distinct suggestions (completion/candidates.py), the greedy one first even
        when it is empty; cancelled like `complete`."""
        return await self._run(
            ticket, lambda cancelled: complete_candidates(backend, request, n, cancelled)
        )

    async def warm(
        self, backend: CompletionBackend, request: CompletionRequest, ticket: int
    ) -> float:
        """Prefill `request`'s prompt on the worker while the server waits out the debounce,
        where the backend can (`CompletionPipeline.warm`; duck-typed: test backends cannot);
        the milliseconds it took. Never raises but asyncio.CancelledError: a warming that
        fails or is preempted leaves the generation to do the work."""
        warm = getattr(backend, "warm", None)
        if warm is None:
            return 0.0

        def work(cancelled: CancelCheck) -> float:
            started = time.perf_counter()
            warm(request, cancelled)
            return (time.perf_counter() - started) * 1000

        try:
            return await self._run(ticket, work)
        except CompletionCancelled:
            return 0.0
        except Exception:
            log.exception("prefilling during the debounce failed")
            return 0.0

    async def _run(self, ticket: int, work: Callable[[CancelCheck], T]) -> T:
        stop = threading.Event()

        def cancelled() -> bool:
            return stop.is_set() or self.is_stale(ticket)

        def run() -> T:
            # A request can go stale while it waits in the queue: skip it without a prefill.
            if cancelled():
                raise CompletionCancelled()
            return work(cancelled)

        try:
            return await asyncio.wrap_future(self._executor.submit(run))
        except asyncio.CancelledError:
            # The await is gone but the thread runs on; this makes it stop at the next step.
            stop.set()
            raise

    def close(self) -> None:
        """Stop whatever runs at its next decode step and drop what waits (on shutdown)."""
        self._closed = True
        self._executor.shutdown(wait=False, cancel_futures=True)
