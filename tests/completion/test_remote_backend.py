"""The pipeline with a remote OpenAI-compatible backend, over real HTTP on loopback: our own
`serve-model` with the real model as the server; a scripted stdlib server only where a failure
must be injected (503s, a dead port)."""

from __future__ import annotations

import http.client
import json
import logging
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from completion.backends import GenerationPrompt
from completion.pipeline import CompletionPipeline
from completion.remote_backend import (
    CircuitBreaker,
    RemoteBackendError,
    RemoteGenerator,
    RemoteSettings,
    redacted_url,
)
from completion.request import CompletionRequest, Position
from lsp_server.model_source import configure_backend
from lsp_server.settings import ServerSettings, parse_settings
from onnx_models.engine import Engine
from onnx_models.serving import ApiTokens, ModelHttpServer, ServeConfig, serve

KEY_ENV = "NEXTTOKEN_TEST_REMOTE_KEY"
KEY = "sk-test-0123456789abcdef"
SOURCE = (
    "def greet(name):\n    message = 'Hello, ' + name\n    return message\n\n\n"
    "def shout(name):\n    return greet("
)
CURSOR = Position(6, 17)
# Mid-word: unhealed, this model continues "return mes" astray ("g"); healed, with "sage".
MID_WORD = "def greet(name):\n    message = 'Hello, ' + name\n    return mes"


@pytest.fixture(scope="module")
def engine(model_dir: Path) -> Engine:
    return Engine.load(model_dir, threads=2)


@pytest.fixture(scope="module")
def model_server(engine: Engine) -> Iterator[ModelHttpServer]:
    # Its own engine over the same session: the pipeline's engine stays the local fallback.
    shared = Engine(engine.model_dir, engine.manifest, engine.session, engine.tokenizer)
    httpd = serve(shared, ServeConfig(port=0, slots=2), ApiTokens([KEY]))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield httpd
    httpd.shutdown()
    httpd.service.close()
    httpd.server_close()


@pytest.fixture
def pipeline(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> CompletionPipeline:
    monkeypatch.setenv(KEY_ENV, KEY)
    return CompletionPipeline(engine)


def url_of(httpd: ThreadingHTTPServer) -> str:
    host, port = httpd.server_address[:2]
    return f"http://{host}:{port}/v1"


def remote_settings(url: str, **changes: object) -> ServerSettings:
    raw = {"backend": "remote", "remoteUrl": url, "remoteApiKeyEnv": KEY_ENV, **changes}
    parsed = parse_settings(raw, ServerSettings())
    assert not parsed.problems
    return parsed.settings


def request() -> CompletionRequest:
    return CompletionRequest(SOURCE, CURSOR, path="greet.py", max_new_tokens=24)


def metric(httpd: ModelHttpServer, name: str) -> float:
    conn = http.client.HTTPConnection(*httpd.server_address[:2], timeout=30)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    conn.close()
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


def test_remote_suggestion_through_serve_model(
    pipeline: CompletionPipeline, model_server: ModelHttpServer, caplog: pytest.LogCaptureFixture
) -> None:
    local = pipeline.complete(request())
    assert configure_backend(pipeline, remote_settings(url_of(model_server))) is None
    caplog.set_level(logging.DEBUG)
    remote = pipeline.complete(request())
    assert remote.stats.stop_reason != "remote_error", remote.stats.mode_reason
    assert "source=remote" in caplog.text
    assert KEY not in caplog.text
    # The rest of the line: the stop rules ended the stream long before 24 tokens.
    assert remote.insert_text.startswith("name"), remote.insert_text
    assert local.insert_text.startswith("name"), local.insert_text
    assert remote.stats.generated_tokens < 24
    # The server is strict FIFO per client: once the next request of ours is answered, the
    # stream we closed has been noticed and its generation ended early.
    pipeline.complete(request())
    assert metric(model_server, "nexttoken_streams_closed_early_total") >= 1


def test_mid_word_cursor_is_healed_remotely_too(
    pipeline: CompletionPipeline, model_server: ModelHttpServer
) -> None:
    mid_word = CompletionRequest(MID_WORD, Position(2, 14), path="greet.py", max_new_tokens=8)
    local = pipeline.complete(mid_word)
    assert configure_backend(pipeline, remote_settings(url_of(model_server))) is None
    remote = pipeline.complete(mid_word)
    assert remote.stats.stop_reason != "remote_error", remote.stats.mode_reason
    assert local.insert_text.startswith("sage"), local.insert_text
    assert remote.insert_text == local.insert_text


class AnswerByPrompt(BaseHTTPRequestHandler):
    """Streams `answers[prompt]` as one piece; records the prompts it was sent."""

    answers: dict[str, str] = {}
    prompts: list[str] = []

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        AnswerByPrompt.prompts.append(body["prompt"])
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        chunk = {"choices": [{"text": self.answers[body["prompt"]], "finish_reason": "stop"}]}
        self.wfile.write(b"data: " + json.dumps(chunk).encode() + b"\n\ndata: [DONE]\n\n")


@pytest.mark.parametrize(
    ("removed", "answers", "prompts", "pieces"),
    [
        # The healed answer retypes " bar": passed on whole, one request.
        (" bar", {"foo": " bartender"}, ["foo"], [" bartender"]),
        # It writes something else: dropped, and the prompt is sent again unhealed.
        (" bar", {"foo": " baz", "foo bar": "ley"}, ["foo", "foo bar"], [" bar", "ley"]),
        # Healing took off text that is not the prompt's end (a tokenizer's own spelling of
        # it): sent unhealed at once, still led by the text the pipeline strips.
        ("\u2581bar", {"foo bar": "ley"}, ["foo bar"], ["\u2581bar", "ley"]),
    ],
)
def test_remote_healing_sends_the_backed_off_prompt(
    removed: str, answers: dict[str, str], prompts: list[str], pieces: list[str]
) -> None:
    AnswerByPrompt.answers, AnswerByPrompt.prompts = answers, []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), AnswerByPrompt)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    streamed: list[str] = []
    try:
        RemoteGenerator(RemoteSettings(url_of(httpd))).generate(
            GenerationPrompt("foo bar", (1,), removed_text=removed),
            max_new_tokens=8,
            on_token=lambda t: False,
            on_text=lambda p: streamed.append(p) is not None,
            cancelled=lambda: False,
        )
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert AnswerByPrompt.prompts == prompts
    assert streamed == pieces


def test_wrong_key_is_a_clear_error_without_the_key(
    pipeline: CompletionPipeline,
    model_server: ModelHttpServer,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv(KEY_ENV, "sk-wrong-key")
    configure_backend(pipeline, remote_settings(url_of(model_server), remoteFallback=False))
    result = pipeline.complete(request())
    assert result.insert_text == ""
    assert result.stats.stop_reason == "remote_error"
    assert "refused the API key" in result.stats.mode_reason
    assert KEY_ENV in result.stats.mode_reason
    assert "sk-wrong-key" not in caplog.text + result.stats.mode_reason


class FlakyServer(BaseHTTPRequestHandler):
    """503 for the first `failures` requests, then one streamed piece."""

    failures = 2
    seen: list[str] = []

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers["Content-Length"]))
        FlakyServer.seen.append(self.headers.get("Authorization", ""))
        if len(FlakyServer.seen) <= FlakyServer.failures:
            self.send_response(503)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        chunk = {"choices": [{"text": "hello", "finish_reason": None}]}
        self.wfile.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
        self.wfile.write(b'data: {"choices": [{"text": "", "finish_reason": "stop"}]}\n\n')
        self.wfile.write(b"data: [DONE]\n\n")


def test_retries_503_with_backoff_and_sends_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, KEY)
    FlakyServer.seen = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), FlakyServer)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        remote = RemoteGenerator(
            RemoteSettings(url_of(httpd), api_key_env=KEY_ENV, retries=2, backoff_s=0.01)
        )
        pieces: list[str] = []
        generation = remote.generate(
            GenerationPrompt("x", (1,)),
            max_new_tokens=8,
            on_token=lambda t: False,
            on_text=lambda p: pieces.append(p) is not None,
            cancelled=lambda: False,
        )
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert pieces == ["hello"] and generation.stop_reason == "eos"
    assert FlakyServer.seen == [f"Bearer {KEY}"] * 3


def dead_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"  # nothing listens there now: connection refused


def test_dead_server_falls_back_then_opens_the_circuit(pipeline: CompletionPipeline) -> None:
    configure_backend(pipeline, remote_settings(dead_url(), remoteFallback=True))
    assert pipeline.remote is not None
    pipeline.remote.settings = RemoteSettings(  # type: ignore[attr-defined]
        pipeline.remote.settings.url,
        retries=0,
        breaker_failures=2,  # type: ignore[attr-defined]
    )
    pipeline.remote.breaker = CircuitBreaker(2, 60.0)  # type: ignore[attr-defined]
    fallback = pipeline.complete(request())
    assert fallback.insert_text.startswith("name")  # the local model answered
    pipeline.complete(request())
    assert pipeline.remote.breaker.is_open  # type: ignore[attr-defined]
    configure_backend(pipeline, remote_settings(dead_url(), remoteFallback=False))
    pipeline.remote.breaker = CircuitBreaker(1, 60.0)  # type: ignore[attr-defined]
    pipeline.complete(request())
    refused = pipeline.complete(request())
    assert refused.stats.stop_reason == "remote_error"
    assert "not asking it again" in refused.stats.mode_reason


def test_circuit_half_opens_after_the_cooldown() -> None:
    now = [0.0]
    breaker = CircuitBreaker(2, 10.0, clock=lambda: now[0])
    assert not breaker.record_failure() and breaker.record_failure()
    assert not breaker.allow()
    now[0] = 11.0
    assert breaker.allow() and not breaker.allow()  # one trial at a time
    assert breaker.record_failure()  # the trial failed: open again
    now[0] = 22.0
    assert breaker.allow()
    breaker.record_success()
    assert breaker.allow() and not breaker.is_open


def test_settings_refuse_secrets_and_never_echo_them() -> None:
    parsed = parse_settings({"remoteApiKeyEnv": "sk-live-abc123"}, ServerSettings())
    assert parsed.settings.remote_api_key_env == ""
    assert "sk-live-abc123" not in " ".join(parsed.problems)
    parsed = parse_settings({"remoteUrl": "http://me:pw@box:8000"}, ServerSettings())
    assert parsed.settings.remote_url == "" and "pw" not in " ".join(parsed.problems)
    assert redacted_url("https://me:pw@box:8000/v1?x=1") == "https://box:8000/v1"
    assert parse_settings({"backend": "cloud"}, ServerSettings()).problems
    with pytest.raises(RemoteBackendError):
        RemoteGenerator(RemoteSettings("ftp://box"))
