"""The remote backend against a real third-party server: llama-cpp-python's OpenAI-compatible
server with the same GGUF as our default model, started by benchmarks/llama_cpp_server.py.
Building llama-cpp-python takes ~20 minutes of two cores, so CI has none: this runs only where
$NEXTTOKEN_LLAMA_CPP_PYTHON names a python that has `llama-cpp-python[server]`
(benchmarks/remote_parity.py measures the agreement in full)."""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from completion.pipeline import CompletionPipeline
from completion.request import CompletionRequest, Position
from lsp_server.model_source import configure_backend
from lsp_server.settings import ServerSettings

LLAMA_PYTHON = os.environ.get("NEXTTOKEN_LLAMA_CPP_PYTHON", "")
LAUNCHER = Path(__file__).parents[2] / "benchmarks" / "llama_cpp_server.py"
pytestmark = pytest.mark.skipif(
    not LLAMA_PYTHON,
    reason="set NEXTTOKEN_LLAMA_CPP_PYTHON to a python with llama-cpp-python[server] to run",
)

GREET = "def greet(name):\n    message = 'Hello, ' + name\n    return message\n\n\n"
REQUESTS = {
    "token boundary": CompletionRequest(
        GREET + "def shout(name):\n    return greet(",
        Position(6, 17),
        "greet.py",
        max_new_tokens=24,
    ),
    # Healed remotely too: the server is sent "... return" and must retype " mes".
    "mid-word": CompletionRequest(
        GREET.rsplit("sage", 1)[0], Position(2, 14), "greet.py", max_new_tokens=24
    ),
}


@pytest.fixture(scope="module")
def llama_url(gguf_path: Path) -> Iterator[str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    log_path = Path(tempfile.gettempdir()) / f"llama-server-test-{port}.log"
    with log_path.open("wb") as log_file:
        server = subprocess.Popen(
            [LLAMA_PYTHON, str(LAUNCHER), "--model", str(gguf_path), "--port", str(port)],
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 120
    try:
        while True:
            assert server.poll() is None, f"the llama.cpp server exited; its log: {log_path}"
            assert time.monotonic() < deadline, "the llama.cpp server did not listen in 120 s"
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


@pytest.mark.parametrize("case", REQUESTS)
def test_llama_cpp_server_gives_the_local_suggestion(
    model_dir: Path, llama_url: str, case: str
) -> None:
    pipeline = CompletionPipeline.load(model_dir)
    request = REQUESTS[case]
    local = pipeline.complete(request)
    settings = ServerSettings(backend="remote", remote_url=llama_url, remote_fallback=False)
    assert configure_backend(pipeline, settings) is None
    remote = pipeline.complete(request)
    assert remote.stats.stop_reason != "remote_error", remote.stats.mode_reason
    assert local.insert_text
    assert remote.insert_text == local.insert_text
