"""What `nexttoken serve-model` schedules: per-client KV-cache slots over one ONNX session, a
bounded queue served round-robin across clients, and the generation of one request.

One InferenceSession holds the weights; each slot is an `Engine` over that same session with
its own KvCache and IO binding, so a developer's next keystroke reuses the prompt prefix that
developer's last request left in the cache. A slot belongs to one client at a time; when all
are taken the least recently used one is wiped and handed over (its lease number grows, so a
client can tell a fresh cache from its own). One worker thread runs one generation at a time:
the session already uses every core it was given. No HTTP here (onnx_models/serving.py).
"""

from __future__ import annotations

import itertools
import queue
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from onnx_models.engine import Engine
from onnx_models.sampling import SamplingParams, sampler


class QueueFull(Exception):
    """The queue (or this client's share of it) is full: answer 429."""


@dataclass
class Slot:
    index: int
    engine: Engine
    client: str = ""
    lease: int = 0  # counts the clients this slot has served; (index, lease) names one cache


class EngineSlots:
    """Up to `count` engines sharing `first`'s session, one per recent client (LRU)."""

    def __init__(self, first: Engine, count: int) -> None:
        if count < 1:
            raise ValueError("at least one slot")
        self.count = count
        self._first = first
        self._slots: list[Slot] = []
        self._by_client: OrderedDict[str, Slot] = OrderedDict()
        self.evictions = 0

    def acquire(self, client: str) -> Slot:
        """The client's own slot, or a new or evicted one (with an empty cache)."""
        slot = self._by_client.get(client)
        if slot is not None:
            self._by_client.move_to_end(client)
            return slot
        if len(self._slots) < self.count:
            engine = self._first if not self._slots else self._share(self._first)
            slot = Slot(len(self._slots), engine)
            self._slots.append(slot)
        else:
            _, slot = self._by_client.popitem(last=False)
            self.evictions += 1
            # Wiped before handing over: the next client must not reuse another's prefix.
            slot.engine.rewind(0)
        slot.client = client
        slot.lease += 1
        self._by_client[client] = slot
        return slot

    @staticmethod
    def _share(engine: Engine) -> Engine:
        # Engine's constructor takes the sessions: a second one over the same sessions gets its
        # own KV cache and IO bindings, and no second copy of the weights.
        return Engine(
            engine.model_dir, engine.manifest, engine.session, engine.tokenizer, engine.step_session
        )

    @property
    def in_use(self) -> int:
        return len(self._by_client)


@dataclass(frozen=True)
class CompletionJob:
    client: str
    prompt_ids: tuple[int, ...]
    max_tokens: int
    sampling: SamplingParams
    stop: tuple[str, ...]
    # The worker posts ("text", str) pieces, then ("done", JobOutcome) or ("error", str).
    events: queue.Queue[tuple[str, object]] = field(default_factory=queue.Queue, compare=False)
    cancelled: threading.Event = field(default_factory=threading.Event, compare=False)
    enqueued_at: float = field(default_factory=time.perf_counter, compare=False)
    number: int = 0


@dataclass(frozen=True)
class JobOutcome:
    text: str
    finish_reason: str  # "stop" or "length" (OpenAI's words)
    completion_tokens: int
    prompt_tokens: int
    reused_tokens: int
    slot: int
    lease: int
    queue_ms: float
    prefill_ms: float
    decode_ms: float
    continued_tokens: int = 0  # the client's previous suggestion, offered again from the cache


class FairQueue:
    """Jobs per client; `get` takes the oldest job of the client whose turn it is, so one
    developer's burst of keystrokes cannot starve the others."""

    def __init__(self, capacity: int, per_client: int) -> None:
        self.capacity = capacity
        self.per_client = per_client
        self._jobs: OrderedDict[str, deque[CompletionJob]] = OrderedDict()
        self._size = 0
        self._ready = threading.Condition()
        self._numbers = itertools.count(1)
        self._closed = False

    def __len__(self) -> int:
        return self._size

    def put(self, job: CompletionJob) -> CompletionJob:
        with self._ready:
            pending = self._jobs.get(job.client)
            if self._size >= self.capacity:
                raise QueueFull(f"the server's queue is full ({self.capacity} requests)")
            if pending is not None and len(pending) >= self.per_client:
                raise QueueFull(f"this client already has {self.per_client} requests waiting")
            numbered = _numbered(job, next(self._numbers))
            self._jobs.setdefault(job.client, deque()).append(numbered)
            self._size += 1
            self._ready.notify()
            return numbered

    def get(self) -> CompletionJob | None:
        """The next job in round-robin order; None once closed."""
        with self._ready:
            while not self._size and not self._closed:
                self._ready.wait()
            if self._closed:
                return None
            client, jobs = next(iter(self._jobs.items()))
            job = jobs.popleft()
            del self._jobs[client]
            if jobs:
                self._jobs[client] = jobs  # back of the line
            self._size -= 1
            return job

    def close(self) -> None:
        with self._ready:
            self._closed = True
            self._ready.notify_all()


def _numbered(job: CompletionJob, number: int) -> CompletionJob:
    return replace(job, number=number, events=job.events, cancelled=job.cancelled)


class TextStream:
    """Token ids to text pieces for a client: holds back half characters and what could be
    the start of a stop string, and finds stop strings across token boundaries."""

    def __init__(self, decode: Callable[[list[int]], str], stop: tuple[str, ...]) -> None:
        self._decode = decode
        self._stop = tuple(s for s in stop if s)
        self._hold = max((len(s) for s in self._stop), default=1) - 1
        self.ids: list[int] = []
        self.text = ""
        self.sent = 0
        self.stopped = False

    def add(self, token_id: int) -> str:
        """The new piece that may be sent now ("" if none); sets `stopped` at a stop string."""
        self.ids.append(token_id)
        text = self._decode(self.ids)
        for stop in self._stop:
            at = text.find(stop, max(0, self.sent - len(stop)))
            if at >= 0:
                text = text[:at]
                self.stopped = True
        self.text = text
        if self.stopped:
            return self.rest()
        safe = len(text) - self._hold
        while safe > self.sent and text[safe - 1] == "\ufffd":
            safe -= 1  # half of a multi-byte character: wait for the rest
        piece = text[self.sent : max(safe, self.sent)]
        self.sent += len(piece)
        return piece

    def rest(self) -> str:
        piece = self.text[self.sent :]
        self.sent = len(self.text)
        return piece


def run_job(slot: Slot, job: CompletionJob, started: float) -> JobOutcome:
    """Generate for `job` in `slot`, posting text pieces as they come. Raises
    GenerationCancelled when the client went away."""
    engine = slot.engine
    stream = TextStream(
        lambda ids: engine.tokenizer.decode(ids, skip_special_tokens=False), job.stop
    )

    def on_token(token_id: int) -> bool:
        piece = stream.add(token_id)
        if piece:
            job.events.put(("text", piece))
        return stream.stopped

    greedy = job.sampling.greedy
    generation = engine.generate(
        list(job.prompt_ids),
        max_new_tokens=job.max_tokens,
        on_token=on_token,
        pick=sampler(job.sampling),
        cancelled=job.cancelled.is_set,
        stop_token_ids=frozenset(engine.manifest.eos_token_ids),
        # Prompt-lookup drafts give the same tokens in fewer passes, for greedy decoding only.
        speculate=greedy,
    )
    piece = stream.rest()
    if piece:
        job.events.put(("text", piece))
    finish = "length" if generation.stop_reason in ("max_tokens", "context") else "stop"
    return JobOutcome(
        text=stream.text,
        finish_reason=finish,
        completion_tokens=len(generation.tokens),
        prompt_tokens=len(job.prompt_ids),
        reused_tokens=generation.prefill.reused_tokens,
        slot=slot.index,
        lease=slot.lease,
        queue_ms=(started - job.enqueued_at) * 1000,
        prefill_ms=generation.prefill.prefill_ms,
        decode_ms=generation.decode_ms,
        continued_tokens=generation.continued_tokens,
    )
