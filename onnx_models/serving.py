"""`nexttoken serve-model`: an OpenAI-compatible `/v1/completions` server over the ONNX engine,
for a team's first shared GPU box (docs/self-hosting.md).

Endpoints: `POST /v1/completions` (prompt string, max_tokens, temperature, top_p, seed, stop,
user, stream with server-sent events), `GET /v1/models`, `GET /health`, `GET /metrics`
(Prometheus text format). Completions need `Authorization: Bearer <token>`, one of the tokens
in $NEXTTOKEN_API_TOKENS (comma-separated) or `--tokens-file` (one a line), compared in
constant time; the token, plus the request's `user` field, names the client whose KV-cache
slot the request runs in (onnx_models/serving_pool.py). It binds to 127.0.0.1 unless told
otherwise. The stdlib's ThreadingHTTPServer suffices: a thread per connection only waits on
the single inference worker. Prompts and tokens are never logged.
"""

from __future__ import annotations

import argparse
import hmac
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from onnx_models.engine import Engine, GenerationCancelled
from onnx_models.sampling import SamplingParams
from onnx_models.serving_pool import (
    CompletionJob,
    EngineSlots,
    FairQueue,
    JobOutcome,
    QueueFull,
    run_job,
)

log = logging.getLogger(__name__)

TOKENS_ENV = "NEXTTOKEN_API_TOKENS"
MAX_USER_CHARS = 64


class ServeError(Exception):
    """The server cannot start as configured; the message says why."""


@dataclass(frozen=True)
class ServeConfig:
    host: str = "127.0.0.1"
    port: int = 8000
    slots: int = 8
    queue_size: int = 32
    per_client_queue: int = 4
    max_body_bytes: int = 256 * 1024
    max_tokens_limit: int = 512


# -- auth ----------------------------------------------------------------------------------------


class ApiTokens:
    """The accepted bearer tokens; each is known by a label (token1, token2, ...) in metrics
    and slots, never by its value."""

    def __init__(self, tokens: Iterable[str]) -> None:
        self._tokens = [t.encode() for t in dict.fromkeys(t.strip() for t in tokens) if t]

    @classmethod
    def from_sources(cls, tokens_file: Path | None) -> ApiTokens:
        values = os.environ.get(TOKENS_ENV, "").split(",")
        if tokens_file is not None:
            try:
                values += tokens_file.read_text(encoding="utf-8").splitlines()
            except OSError as exc:
                raise ServeError(f"cannot read --tokens-file {tokens_file}: {exc}") from None
        tokens = cls(values)
        if not tokens._tokens:
            raise ServeError(
                f"no API tokens: set {TOKENS_ENV}=token1,token2 or pass --tokens-file FILE "
                "(one token a line); every request must carry one"
            )
        return tokens

    def client_of(self, authorization: str | None) -> str | None:
        """The label of the token in an `Authorization: Bearer` header, or None."""
        if not authorization or not authorization.startswith("Bearer "):
            return None
        offered = authorization[len("Bearer ") :].strip().encode()
        found = None
        # Every token is compared, each in constant time: the answer's timing tells nothing.
        for i, token in enumerate(self._tokens, start=1):
            if hmac.compare_digest(offered, token) and found is None:
                found = f"token{i}"
        return found


# -- metrics -------------------------------------------------------------------------------------

LATENCY_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
RATE_BUCKETS = (5, 10, 25, 50, 100, 250, 500, 1000)


class Histogram:
    def __init__(self, name: str, help_text: str, buckets: tuple[float, ...]) -> None:
        self.name, self.help, self.buckets = name, help_text, buckets
        self.counts = [0] * len(buckets)
        self.total = 0.0
        self.n = 0

    def observe(self, value: float) -> None:
        for i, bound in enumerate(self.buckets):
            if value <= bound:
                self.counts[i] += 1
        self.total += value
        self.n += 1

    def render(self) -> list[str]:
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} histogram"]
        for bound, count in zip(self.buckets, self.counts, strict=True):
            lines.append(f'{self.name}_bucket{{le="{bound:g}"}} {count}')
        lines += [
            f'{self.name}_bucket{{le="+Inf"}} {self.n}',
            f"{self.name}_sum {self.total:.6f}",
            f"{self.name}_count {self.n}",
        ]
        return lines


class ServerMetrics:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.latency = Histogram(
            "nexttoken_request_duration_seconds",
            "Completion requests, arrival to last byte.",
            LATENCY_BUCKETS,
        )
        self.first_token = Histogram(
            "nexttoken_time_to_first_token_seconds",
            "Arrival to the first generated text.",
            LATENCY_BUCKETS,
        )
        self.queue_wait = Histogram(
            "nexttoken_queue_wait_seconds", "Time spent queued.", LATENCY_BUCKETS
        )
        self.tokens_per_second = Histogram(
            "nexttoken_decode_tokens_per_second", "Decode speed per request.", RATE_BUCKETS
        )
        self.counters: dict[str, float] = {}

    def count(self, name: str, value: float = 1.0) -> None:
        with self.lock:
            self.counters[name] = self.counters.get(name, 0.0) + value

    def record(self, outcome: JobOutcome, total_s: float, first_s: float) -> None:
        with self.lock:
            self.latency.observe(total_s)
            self.first_token.observe(first_s)
            self.queue_wait.observe(outcome.queue_ms / 1000)
            if outcome.decode_ms > 0 and outcome.completion_tokens > 1:
                rate = (outcome.completion_tokens - 1) / (outcome.decode_ms / 1000)
                self.tokens_per_second.observe(rate)
        self.count("nexttoken_prompt_tokens_total", outcome.prompt_tokens)
        self.count("nexttoken_prompt_tokens_reused_total", outcome.reused_tokens)
        self.count("nexttoken_generated_tokens_total", outcome.completion_tokens)
        self.count("nexttoken_generation_seconds_total", (outcome.decode_ms) / 1000)
        if outcome.reused_tokens:
            self.count("nexttoken_cache_hits_total")

    def render(self, gauges: dict[str, float]) -> str:
        lines: list[str] = []
        with self.lock:
            typed = set()
            for name, value in sorted(self.counters.items()):
                family = name.partition("{")[0]
                if family not in typed:  # one TYPE line per family, labels or not
                    typed.add(family)
                    lines.append(f"# TYPE {family} counter")
                lines.append(f"{name} {value:g}")
            for histogram in (
                self.latency,
                self.first_token,
                self.queue_wait,
                self.tokens_per_second,
            ):
                lines += histogram.render()
        for name, value in gauges.items():
            lines += [f"# TYPE {name} gauge", f"{name} {value:g}"]
        return "\n".join(lines) + "\n"


# -- the model side -------------------------------------------------------------------------------


class ModelService:
    """The engine slots, the queue and the worker thread that drains it."""

    def __init__(self, engine: Engine, config: ServeConfig, tokens: ApiTokens) -> None:
        self.engine = engine
        self.config = config
        self.tokens = tokens
        self.model_name = engine.manifest.name
        self.slots = EngineSlots(engine, config.slots)
        self.queue = FairQueue(config.queue_size, config.per_client_queue)
        self.metrics = ServerMetrics()
        self.busy = False
        self._worker = threading.Thread(target=self._work, name="nexttoken-serve", daemon=True)
        self._worker.start()

    def close(self) -> None:
        self.queue.close()

    def _work(self) -> None:
        while (job := self.queue.get()) is not None:
            if job.cancelled.is_set():
                job.events.put(("cancelled", None))
                continue
            self.busy = True
            try:
                slot = self.slots.acquire(job.client)
                outcome = run_job(slot, job, time.perf_counter())
            except GenerationCancelled:
                self.metrics.count("nexttoken_streams_closed_early_total")
                job.events.put(("cancelled", None))
            except Exception as exc:  # one bad request must not end the worker
                log.exception("generation failed")
                job.events.put(("error", f"generation failed: {exc.__class__.__name__}"))
            else:
                job.events.put(("done", outcome))
            finally:
                self.busy = False

    def gauges(self) -> dict[str, float]:
        return {
            "nexttoken_queue_depth": len(self.queue),
            "nexttoken_busy": 1.0 if self.busy else 0.0,
            "nexttoken_slots_in_use": self.slots.in_use,
            "nexttoken_slots": self.slots.count,
            "nexttoken_slot_evictions": self.slots.evictions,
        }


class RequestError(Exception):
    def __init__(self, status: HTTPStatus, message: str, kind: str = "invalid_request_error"):
        super().__init__(message)
        self.status = status
        self.kind = kind


def parse_completion(
    body: dict[str, Any], service: ModelService, client: str
) -> tuple[CompletionJob, bool]:
    """The job a request body asks for, and whether to stream it."""
    prompt = body.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
        prompt = prompt[0]
    if not isinstance(prompt, str) or not prompt:
        raise RequestError(HTTPStatus.BAD_REQUEST, "prompt must be a non-empty string")
    max_tokens = body.get("max_tokens", 16)
    limit = service.config.max_tokens_limit
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise RequestError(HTTPStatus.BAD_REQUEST, "max_tokens must be a positive integer")
    if max_tokens > limit:
        raise RequestError(HTTPStatus.BAD_REQUEST, f"max_tokens is at most {limit} here")
    try:
        sampling = SamplingParams(
            temperature=float(body.get("temperature", 1.0) or 0.0),
            top_p=float(body.get("top_p", 1.0) or 1.0),
            seed=body.get("seed") if isinstance(body.get("seed"), int) else None,
        )
    except (TypeError, ValueError) as exc:
        raise RequestError(HTTPStatus.BAD_REQUEST, str(exc)) from None
    stop = body.get("stop") or ()
    stop = (stop,) if isinstance(stop, str) else stop
    if not isinstance(stop, list | tuple) or not all(isinstance(s, str) for s in stop):
        raise RequestError(HTTPStatus.BAD_REQUEST, "stop must be a string or a list of strings")
    user = body.get("user")
    if user is not None and (not isinstance(user, str) or len(user) > MAX_USER_CHARS):
        raise RequestError(HTTPStatus.BAD_REQUEST, f"user must be a string of <= {MAX_USER_CHARS}")
    ids = service.engine.tokenizer.encode(prompt, add_special_tokens=False).ids
    context = service.engine.manifest.context_length
    if len(ids) + 2 >= context:
        raise RequestError(
            HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
            f"the prompt has {len(ids)} tokens; this model's context is {context}",
            "context_length_exceeded",
        )
    job = CompletionJob(
        client=f"{client}/{user}" if user else client,
        prompt_ids=tuple(ids),
        max_tokens=min(max_tokens, context - len(ids) - 2),
        sampling=sampling,
        stop=tuple(stop[:8]),
    )
    return job, bool(body.get("stream", False))


# -- HTTP ------------------------------------------------------------------------------------------


class ModelHttpServer(ThreadingHTTPServer):
    daemon_threads = True
    # Sixteen developers' keystrokes arrive together; the stdlib default of 5 drops some.
    request_queue_size = 128

    def __init__(self, service: ModelService) -> None:
        self.service = service
        self.nonce = uuid.uuid4().hex[:8]  # completion ids differ across restarts
        super().__init__((service.config.host, service.config.port), CompletionHandler)


class CompletionHandler(BaseHTTPRequestHandler):
    server: ModelHttpServer
    protocol_version = "HTTP/1.1"
    server_version = "nexttoken-serve-model"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib's name)
        log.debug("%s %s", self.address_string(), format % args)

    # -- routing -------------------------------------------------------------------------------

    def do_GET(self) -> None:  # noqa: N802 (stdlib's name)
        service = self.server.service
        if self.path == "/health":
            self._json(HTTPStatus.OK, {"status": "ok", "model": service.model_name})
        elif self.path == "/metrics":
            text = service.metrics.render(service.gauges()).encode()
            self._send(HTTPStatus.OK, text, "text/plain; version=0.0.4; charset=utf-8")
        elif self.path == "/v1/models":
            if self._client() is not None:
                model = {"id": service.model_name, "object": "model", "owned_by": "nexttoken"}
                self._json(HTTPStatus.OK, {"object": "list", "data": [model]})
        else:
            self._error(HTTPStatus.NOT_FOUND, f"no endpoint {self.path}", "not_found")

    def do_POST(self) -> None:  # noqa: N802 (stdlib's name)
        service = self.server.service
        started = time.perf_counter()
        if self.path not in ("/v1/completions", "/completions"):
            self._error(HTTPStatus.NOT_FOUND, f"no endpoint {self.path}", "not_found")
            return
        client = self._client()
        if client is None:
            return
        try:
            body = self._read_body()
            job, stream = parse_completion(body, service, client)
            job = service.queue.put(job)
        except RequestError as exc:
            service.metrics.count(f'nexttoken_requests_total{{code="{exc.status.value}"}}')
            self._error(exc.status, str(exc), exc.kind)
            return
        except QueueFull as exc:
            service.metrics.count('nexttoken_requests_total{code="429"}')
            self._error(HTTPStatus.TOO_MANY_REQUESTS, str(exc), "rate_limit", retry_after=1)
            return
        if stream:
            self._stream(job, started)
        else:
            self._answer(job, started)

    # -- answers -------------------------------------------------------------------------------

    def _answer(self, job: CompletionJob, started: float) -> None:
        service = self.server.service
        first: float | None = None
        while True:
            kind, value = job.events.get()
            if kind == "text":
                first = first or time.perf_counter()
                continue
            break
        if kind != "done":
            self._error(HTTPStatus.INTERNAL_SERVER_ERROR, str(value), "server_error")
            return
        assert isinstance(value, JobOutcome)
        end = time.perf_counter()
        service.metrics.record(value, end - started, (first or end) - started)
        service.metrics.count('nexttoken_requests_total{code="200"}')
        choice = {"index": 0, "text": value.text, "finish_reason": value.finish_reason}
        self._json(HTTPStatus.OK, self._envelope(job, [{**choice, "logprobs": None}], value))

    def _stream(self, job: CompletionJob, started: float) -> None:
        service = self.server.service
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        first: float | None = None
        try:
            while True:
                kind, value = job.events.get()
                if kind == "text":
                    first = first or time.perf_counter()
                    choice = {"index": 0, "text": value, "finish_reason": None, "logprobs": None}
                    self._event(self._envelope(job, [choice]))
                    continue
                if kind == "done":
                    assert isinstance(value, JobOutcome)
                    end = time.perf_counter()
                    service.metrics.record(value, end - started, (first or end) - started)
                    service.metrics.count('nexttoken_requests_total{code="200"}')
                    choice = {
                        "index": 0,
                        "text": "",
                        "finish_reason": value.finish_reason,
                        "logprobs": None,
                    }
                    self._event(self._envelope(job, [choice], value))
                elif kind == "error":
                    self._event({"error": {"message": str(value), "type": "server_error"}})
                self.wfile.write(b"data: [DONE]\n\n")
                self.wfile.flush()
                return
        except (BrokenPipeError, ConnectionResetError):
            # The client has what it wanted (its stop rules ended it): stop generating too.
            job.cancelled.set()

    def _envelope(
        self, job: CompletionJob, choices: list[dict[str, Any]], outcome: JobOutcome | None = None
    ) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "id": f"cmpl-{self.server.nonce}-{job.number}",
            "object": "text_completion",
            "created": int(time.time()),
            "model": self.server.service.model_name,
            "choices": choices,
        }
        if outcome is not None:
            payload["usage"] = {
                "prompt_tokens": outcome.prompt_tokens,
                "completion_tokens": outcome.completion_tokens,
                "total_tokens": outcome.prompt_tokens + outcome.completion_tokens,
                "prompt_tokens_details": {"cached_tokens": outcome.reused_tokens},
            }
            # Our own: which cache served it, so clients (and the load test) can check it.
            payload["nexttoken"] = {
                "slot": outcome.slot,
                "lease": outcome.lease,
                "queue_ms": round(outcome.queue_ms, 2),
                "prefill_ms": round(outcome.prefill_ms, 2),
                "decode_ms": round(outcome.decode_ms, 2),
                "continued_tokens": outcome.continued_tokens,
            }
        return payload

    # -- plumbing ------------------------------------------------------------------------------

    def _client(self) -> str | None:
        client = self.server.service.tokens.client_of(self.headers.get("Authorization"))
        if client is None:
            self.server.service.metrics.count('nexttoken_requests_total{code="401"}')
            self._error(
                HTTPStatus.UNAUTHORIZED,
                "missing or unknown bearer token (Authorization: Bearer <token>)",
                "authentication_error",
            )
        return client

    def _read_body(self) -> dict[str, Any]:
        limit = self.server.service.config.max_body_bytes
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            raise RequestError(HTTPStatus.LENGTH_REQUIRED, "Content-Length is required") from None
        if length > limit:
            # Not read: the connection is closed after the answer instead.
            self.close_connection = True
            raise RequestError(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"the body is over {limit} bytes"
            )
        try:
            body = json.loads(self.rfile.read(length))
        except ValueError:
            raise RequestError(HTTPStatus.BAD_REQUEST, "the body is not JSON") from None
        if not isinstance(body, dict):
            raise RequestError(HTTPStatus.BAD_REQUEST, "the body must be a JSON object")
        return body

    def _event(self, payload: dict[str, Any]) -> None:
        self.wfile.write(b"data: " + json.dumps(payload).encode() + b"\n\n")
        self.wfile.flush()

    def _json(self, status: HTTPStatus, payload: dict[str, Any]) -> None:
        self._send(status, json.dumps(payload).encode(), "application/json")

    def _send(self, status: HTTPStatus, body: bytes, content_type: str, **headers: Any) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name.replace("_", "-").title(), str(value))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def _error(self, status: HTTPStatus, message: str, kind: str, **headers: Any) -> None:
        payload = {"error": {"message": message, "type": kind, "code": status.value}}
        self._send(status, json.dumps(payload).encode(), "application/json", **headers)


# -- command line ----------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = ServeConfig()
    parser.add_argument(
        "--host", default=defaults.host, help="address to bind (default: %(default)s, loopback)"
    )
    parser.add_argument("--port", type=int, default=defaults.port, help="(default: %(default)s)")
    parser.add_argument(
        "--tokens-file",
        type=Path,
        metavar="FILE",
        help=f"API tokens, one a line (also: ${TOKENS_ENV})",
    )
    parser.add_argument(
        "--slots", type=int, default=defaults.slots, help="KV caches kept (default: %(default)s)"
    )
    parser.add_argument(
        "--queue-size", type=int, default=defaults.queue_size, help="(default: %(default)s)"
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="onnxruntime threads (default: all cores)"
    )


def serve(engine: Engine, config: ServeConfig, tokens: ApiTokens) -> ModelHttpServer:
    """A bound server with its worker running; the caller runs `serve_forever`."""
    return ModelHttpServer(ModelService(engine, config, tokens))


def run(args: argparse.Namespace, model_dir: Path) -> int:
    tokens = ApiTokens.from_sources(args.tokens_file)
    config = ServeConfig(
        host=args.host, port=args.port, slots=args.slots, queue_size=args.queue_size
    )
    engine = Engine.load(model_dir, threads=args.threads)
    server = serve(engine, config, tokens)
    host, port = server.server_address[:2]
    # One line on stdout that scripts (and the tests) wait for.
    print(f"serving {engine.manifest.name} on http://{host}:{port}/v1", flush=True)
    try:
        server.serve_forever()
    finally:
        server.service.close()
        server.server_close()
    return 0
