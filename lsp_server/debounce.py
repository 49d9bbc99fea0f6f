"""How long to wait before starting a generation, from the typing rhythm and recent latency.

A generation started while the user is still typing is preempted by the next keystroke, at
its next decode step or prefill chunk. When generations take longer than the gap between
keystrokes, waiting for a pause of about one and a half gaps runs only the generation the user
will see, which spares the CPU on a busy machine; when the model answers within a gap, waiting
only adds latency, so the wait is zero. Opt-in (`adaptiveDebounce`): measured end to end, the
wait cost more latency than it saved CPU (benchmarks/README.md, "Debounce"). Time comes in as
numbers (seconds from a monotonic clock); this module never sleeps.
"""

from __future__ import annotations

import statistics
from collections import deque
from dataclasses import dataclass

# Gaps longer than this are pauses, not rhythm.
BURST_GAP_S = 1.0
# How many recent gaps and latencies to look at.
WINDOW = 16
# Wait this many typical gaps: enough to see that the burst has paused.
GAPS_TO_WAIT = 1.5
MAX_WAIT_MS = 400.0


@dataclass(frozen=True)
class DebounceState:
    """What the wait was computed from, for the log and `nexttoken/stats`."""

    wait_ms: float
    typing_gap_ms: float | None  # median gap between requests within a burst
    latency_ms: float | None  # median of recent generations


class AdaptiveDebounce:
    def __init__(self, max_wait_ms: float = MAX_WAIT_MS) -> None:
        self._gaps: deque[float] = deque(maxlen=WINDOW)
        self._latencies: deque[float] = deque(maxlen=WINDOW)
        self._last_request: float | None = None
        self._max_wait_ms = max_wait_ms

    def request_arrived(self, now: float) -> DebounceState:
        """Note a request at `now` and return how long it should wait."""
        if self._last_request is not None:
            gap = now - self._last_request
            if 0 <= gap <= BURST_GAP_S:
                self._gaps.append(gap * 1000)
        self._last_request = now
        return self.state()

    def generation_finished(self, latency_ms: float) -> None:
        self._latencies.append(latency_ms)

    def state(self) -> DebounceState:
        gap = statistics.median(self._gaps) if len(self._gaps) >= 2 else None
        latency = statistics.median(self._latencies) if self._latencies else None
        wait = 0.0
        if gap is not None and latency is not None and latency > gap:
            wait = min(gap * GAPS_TO_WAIT, self._max_wait_ms)
        return DebounceState(wait, gap, latency)
