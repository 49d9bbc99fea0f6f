"""The remote backend against a real third-party server: llama-cpp-python's OpenAI-compatible
server with the same GGUF as our default model. Building llama-cpp-python takes ~20 minutes of
two cores, so CI has none: this runs only where $NEXTTOKEN_LLAMA_CPP_PYTHON names a python that
has `llama_cpp.server` (benchmarks/remote_parity.py measures the agreement in full)."""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from completion.pipeline import CompletionPipeline
from completion.request import CompletionRequest, Position
from lsp_server.model_source import configure_backend
from lsp_server.settings import ServerSettings

LLAMA_PYTHON = os.environ.get("NEXTTOKEN_LLAMA_CPP_PYTHON", "")
pytestmark = pytest.mark.skipif(
    not LLAMA_PYTHON,
    reason="set NEXTTOKEN_LLAMA_CPP_PYTHON to a python with llama-cpp-python[server] to run",
)

SOURCE = (
    "def greet(name):\n    message = 'Hello, ' + name\n    return message\n\n\n"
    "def shout(name):\n    return greet("
)


@pytest.fixture(scope="module")
def llama_url(gguf_path: Path) -> Iterator[str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen(
        [LLAMA_PYTHON, "-m", "llama_cpp.server", "--model", str(gguf_path)]
        + ["--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048", "--n_threads", "2"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    try:
        while True:
            assert server.poll() is None, "llama_cpp.server exited"
            assert time.monotonic() < deadline, "llama_cpp.server did not listen within 120 s"
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                conn.request("GET", "/v1/models")
                if conn.getresponse().status == 200:
                    break
            except OSError:
                time.sleep(0.5)  # a starting process signals readiness only by listening
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_llama_cpp_server_gives_the_local_suggestion(model_dir: Path, llama_url: str) -> None:
    pipeline = CompletionPipeline.load(model_dir)
    request = CompletionRequest(SOURCE, Position(6, 17), path="greet.py", max_new_tokens=24)
    local = pipeline.complete(request)
    settings = ServerSettings(backend="remote", remote_url=llama_url, remote_fallback=False)
    assert configure_backend(pipeline, settings) is None
    remote = pipeline.complete(request)
    assert remote.stats.stop_reason != "remote_error", remote.stats.mode_reason
    assert remote.insert_text == local.insert_text
