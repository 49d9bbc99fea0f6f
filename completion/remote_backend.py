"""A `TextGenerator` over any OpenAI-compatible `/v1/completions` server (vLLM, TGI,
llama.cpp's server, `nexttoken serve-model`), streamed as server-sent events.

Only the prompt text crosses the network; the pipeline keeps prompting, stopping and
filtering on this machine. Token healing without the logits: the server is sent the prompt
backed off to the last pre-tokenizer boundary, and its text is passed on only once it has
retyped what was taken off; an answer that writes something else is dropped and the prompt is
sent again as it is, cursor and all (greedy decoding has nothing better to offer). The stream
is read piece by piece and closed as soon as the pipeline's stop rules are satisfied, so the
server stops generating too. Failures before the first piece are safe to repeat (connect
errors, 429/502/503/504), and are retried with backoff; repeated failures open a circuit
breaker so the editor does not wait on a dead server.
The API key is read from the environment at each request and is never logged; neither is the
URL's user information.
"""

from __future__ import annotations

import getpass
import hashlib
import http.client
import json
import logging
import os
import platform
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from completion.backends import GenerationPrompt, TextCallback, TextGeneration, TokenCallback
from onnx_models.engine import GenerationCancelled

log = logging.getLogger(__name__)

RETRYABLE_STATUS = frozenset({429, 502, 503, 504})
# OpenAI's API takes at most four stop strings; some compatible servers enforce that too.
MAX_STOP_STRINGS = 4


class RemoteBackendError(Exception):
    """The remote server gave no usable answer; the message says what to check."""


@dataclass(frozen=True)
class RemoteSettings:
    url: str  # the server's base URL: http://host:8000 or http://host:8000/v1
    model: str = ""
    api_key_env: str = ""  # name of the environment variable holding the key, not the key
    connect_timeout_s: float = 2.0
    read_timeout_s: float = 15.0  # the longest wait for the next piece of the stream
    retries: int = 2
    backoff_s: float = 0.2  # doubled after each failed attempt
    breaker_failures: int = 3  # consecutive failed requests that open the circuit
    breaker_cooldown_s: float = 30.0
    stop: tuple[str, ...] = ()


def redacted_url(url: str) -> str:
    """The URL without user:password@, for logs and messages."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def completions_path(base_path: str) -> str:
    path = base_path.rstrip("/")
    if path.endswith("/completions"):
        return path
    return f"{path}/completions" if path.endswith("/v1") else f"{path}/v1/completions"


def client_id() -> str:
    """A stable, anonymous id of this user on this machine, sent as OpenAI's `user` field so a
    shared server (serve-model) keeps this developer's KV cache apart from the others'."""
    seed = f"{getpass.getuser()}@{platform.node()}"
    return hashlib.sha256(seed.encode()).hexdigest()[:16]


class CircuitBreaker:
    """Closed: requests pass. After `failures` failed requests in a row it opens and refuses
    requests for `cooldown_s`; then one trial request passes (half-open), and its outcome
    closes or reopens it."""

    def __init__(
        self, failures: int, cooldown_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.failures = failures
        self.cooldown_s = cooldown_s
        self._clock = clock
        self._failed = 0
        self._opened_at: float | None = None
        self._trial = False
        self._lock = threading.Lock()

    @property
    def is_open(self) -> bool:
        return self._opened_at is not None

    def allow(self) -> bool:
        with self._lock:
            if self._opened_at is None:
                return True
            if self._trial or self._clock() - self._opened_at < self.cooldown_s:
                return False
            self._trial = True
            return True

    def record_success(self) -> None:
        with self._lock:
            self._failed = 0
            self._opened_at = None
            self._trial = False

    def record_failure(self) -> bool:
        """True when this failure opened (or reopened) the circuit."""
        with self._lock:
            self._failed += 1
            reopened = self._trial
            self._trial = False
            if reopened or (self._opened_at is None and self._failed >= self.failures):
                self._opened_at = self._clock()
                return True
            return False


class _Retryable(RemoteBackendError):
    """A failure before any text: nothing was consumed, so the request may be sent again."""


class RemoteGenerator:
    """Streams completions from an OpenAI-compatible server. Thread-safe enough for the
    server's single inference worker; the breaker is shared by all requests."""

    def __init__(self, settings: RemoteSettings) -> None:
        parts = urlsplit(settings.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise RemoteBackendError(
                f"remoteUrl must be an http:// or https:// URL, got {redacted_url(settings.url)!r}"
            )
        self.settings = settings
        self.display_url = redacted_url(settings.url)
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port
        self._path = completions_path(parts.path)
        self.breaker = CircuitBreaker(settings.breaker_failures, settings.breaker_cooldown_s)
        self._user = client_id()
        self._warned_missing_key = False

    # -- request -------------------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
        name = self.settings.api_key_env
        if name:
            key = os.environ.get(name, "").strip()
            if key:
                headers["Authorization"] = f"Bearer {key}"
            elif not self._warned_missing_key:
                self._warned_missing_key = True
                log.warning("remote backend: $%s is not set; sending no API key", name)
        return headers

    def _body(self, prompt: str, max_new_tokens: int) -> bytes:
        body: dict[str, object] = {
            "prompt": prompt,
            "max_tokens": max_new_tokens,
            "temperature": 0,
            "stream": True,
            "user": self._user,
        }
        if self.settings.model:
            body["model"] = self.settings.model
        if self.settings.stop:
            body["stop"] = list(self.settings.stop[:MAX_STOP_STRINGS])
        return json.dumps(body).encode()

    def _open(self, body: bytes) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        """Send the request; the response once its status is 200. Raises _Retryable or
        RemoteBackendError, with the connection closed."""
        s = self.settings
        conn_class = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
        conn = conn_class(self._host, self._port, timeout=s.connect_timeout_s)
        try:
            conn.connect()
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            raise _Retryable(f"cannot connect to {self.display_url}: {exc}") from None
        assert conn.sock is not None
        conn.sock.settimeout(s.read_timeout_s)
        try:
            conn.request("POST", self._path, body=body, headers=self._headers())
            response = conn.getresponse()
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            # The server may have started on it; but it streamed nothing back to us, and a
            # completion has no side effects, so sending it again is harmless.
            raise _Retryable(f"{self.display_url} gave no answer: {exc}") from None
        if response.status == 200:
            return conn, response
        detail = _error_detail(response)
        conn.close()
        status = response.status
        if status in RETRYABLE_STATUS:
            raise _Retryable(f"{self.display_url} answered HTTP {status}: {detail}")
        if status in (401, 403):
            where = f"${s.api_key_env}" if s.api_key_env else "remoteApiKeyEnv (none set)"
            raise RemoteBackendError(
                f"{self.display_url} refused the API key (HTTP {status}); check {where}"
            )
        if status == 404:
            raise RemoteBackendError(
                f"{self.display_url} answered HTTP 404 for {self._path} ({detail}); check "
                f"remoteUrl and remoteModel ({s.model or 'not set'})"
            )
        raise RemoteBackendError(f"{self.display_url} answered HTTP {status}: {detail}")

    def _open_with_retries(
        self, body: bytes, cancelled: Callable[[], bool]
    ) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        delay = self.settings.backoff_s
        for attempt in range(self.settings.retries + 1):
            try:
                return self._open(body)
            except _Retryable as exc:
                if attempt == self.settings.retries:
                    raise RemoteBackendError(f"{exc} (after {attempt + 1} attempts)") from None
                log.info("remote backend: %s; retrying in %.1f s", exc, delay)
                _wait(delay, cancelled)
                delay *= 2
        raise AssertionError("unreachable")

    # -- TextGenerator ------------------------------------------------------------------------

    def generate(
        self,
        prompt: GenerationPrompt,
        *,
        max_new_tokens: int,
        on_token: TokenCallback,
        on_text: TextCallback,
        cancelled: Callable[[], bool],
    ) -> TextGeneration:
        if not self.breaker.allow():
            raise RemoteBackendError(
                f"{self.display_url} failed {self.breaker.failures} times in a row; not asking "
                f"it again for {self.breaker.cooldown_s:.0f} s"
            )
        if cancelled():
            raise GenerationCancelled
        t0 = time.perf_counter()
        removed = prompt.removed_text
        healed = False
        if removed and prompt.text.endswith(removed):
            gate = _RetypedPrefix(removed, on_text)
            healed_text = prompt.text[: -len(removed)]
            reason, pieces, first = self._stream(healed_text, max_new_tokens, gate.feed, cancelled)
            healed = gate.passed
        if not healed:
            if removed:
                log.debug("remote backend: the answer did not retype %r; unhealed now", removed)
                on_text(removed)  # the pipeline strips it as the healed prefix
            reason, pieces, first = self._stream(prompt.text, max_new_tokens, on_text, cancelled)
        end = time.perf_counter()
        first = first if first is not None else end
        return TextGeneration(
            stop_reason=reason,
            generated_tokens=pieces,
            prefill_ms=(first - t0) * 1000,
            decode_ms=(end - first) * 1000,
            forward_passes=pieces,
            source="remote",
        )

    def _stream(
        self,
        text: str,
        max_new_tokens: int,
        on_text: TextCallback,
        cancelled: Callable[[], bool],
    ) -> tuple[str, int, float | None]:
        """One request: its stop reason, the pieces streamed, when the first came."""
        try:
            conn, response = self._open_with_retries(self._body(text, max_new_tokens), cancelled)
        except RemoteBackendError:
            if self.breaker.record_failure():
                log.error("remote backend %s: circuit open", self.display_url)
            raise
        first: float | None = None
        pieces = 0
        reason = "eos"
        try:
            for event in _stream_events(response):
                if cancelled():
                    raise GenerationCancelled
                choice = (event.get("choices") or [{}])[0]
                piece = choice.get("text") or ""
                if piece:
                    first = first if first is not None else time.perf_counter()
                    pieces += 1
                    if on_text(piece):
                        reason = "callback"
                        break  # closing the stream below tells the server to stop
                    if pieces >= max_new_tokens:
                        reason = "max_tokens"
                        break
                finish = choice.get("finish_reason")
                if finish:
                    reason = "max_tokens" if finish == "length" else "eos"
                    break
        except (OSError, http.client.HTTPException, ValueError) as exc:
            # Mid-stream: what arrived is kept and the pipeline cuts it at a line end.
            log.warning("remote backend %s: stream broke off: %s", self.display_url, exc)
            reason = "remote_error"
        finally:
            conn.close()
        self.breaker.record_success()
        return reason, pieces, first


class _RetypedPrefix:
    """Holds a healed answer back until it has retyped `removed`, then passes it all on; an
    answer that writes something else instead is stopped and never passed on."""

    def __init__(self, removed: str, on_text: TextCallback) -> None:
        self._removed = removed
        self._on_text = on_text
        self._held = ""
        self.passed = False

    def feed(self, piece: str) -> bool:
        if self.passed:
            return self._on_text(piece)
        self._held += piece
        if self._held.startswith(self._removed):
            self.passed = True
            return self._on_text(self._held)
        # True stops the stream: it left the text the user typed.
        return not self._removed.startswith(self._held)


def _wait(seconds: float, cancelled: Callable[[], bool]) -> None:
    """Backoff that a cancellation cuts short."""
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        if cancelled():
            raise GenerationCancelled
        time.sleep(min(left, 0.05))


def _error_detail(response: http.client.HTTPResponse) -> str:
    try:
        raw = response.read(2000)
    except (OSError, http.client.HTTPException):
        return "(no body)"
    try:
        payload = json.loads(raw)
        error = payload.get("error", payload) if isinstance(payload, dict) else payload
        message = error.get("message", error) if isinstance(error, dict) else error
        return str(message)[:300]
    except ValueError:
        return raw.decode("utf-8", "replace")[:300]


def _stream_events(response: http.client.HTTPResponse) -> Iterator[dict]:
    """The JSON payloads of a server-sent event stream, up to `data: [DONE]`. A server that
    ignored `stream` and sent one JSON document yields that document."""
    if "text/event-stream" not in (response.getheader("Content-Type") or ""):
        yield json.loads(response.read())
        return
    data: list[str] = []
    while True:
        raw = response.readline()
        if not raw:
            return  # the server closed the stream
        line = raw.decode("utf-8").rstrip("\r\n")
        if line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))
            continue
        if line or not data:
            continue  # `event:`, `id:`, `: keep-alive` comments, stray blank lines
        payload = "\n".join(data)
        data = []
        if payload.strip() == "[DONE]":
            return
        yield json.loads(payload)
