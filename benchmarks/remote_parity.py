"""Parity with a third-party OpenAI-compatible server: llama-cpp-python serving the same GGUF.

Our default model is the GGUF file the installer downloaded, dequantised into an fp32 ONNX
graph; llama.cpp runs the same Q4_1 weights with its own quantised kernels. For prompts cut
from real source files at line ends, this compares greedy text
  1. raw: our engine's greedy continuation against llama.cpp's `/v1/completions` (temperature
     0), as characters and as tokens of our tokenizer agreeing from the start;
  2. through the pipeline: the suggestion with the local backend against the suggestion with
     `backend: remote` pointed at llama.cpp (stops, filters, post-processing all local).

Run: python benchmarks/remote_parity.py --llama-python /work/venv-peers/bin/python
(or NEXTTOKEN_LLAMA_CPP_PYTHON; that python needs `llama-cpp-python[server]`).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

from completion.pipeline import CompletionPipeline
from completion.request import CompletionRequest, Position
from lsp_server.model_source import configure_backend
from lsp_server.settings import ServerSettings
from onnx_models.engine import Engine
from onnx_models.install import ensure_model
from onnx_models.paths import downloads_dir
from onnx_models.registry import DEFAULT_MODEL, KNOWN_MODELS

LLAMA_PYTHON_ENV = "NEXTTOKEN_LLAMA_CPP_PYTHON"
STDLIB_FILES = ("textwrap.py", "shlex.py", "fractions.py", "csv.py", "json/encoder.py")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_llama_server(python: str, gguf: Path, port: int, threads: int) -> subprocess.Popen:
    command = [python, "-m", "llama_cpp.server", "--model", str(gguf), "--host", "127.0.0.1"]
    command += ["--port", str(port), "--n_ctx", "2048", "--n_threads", str(threads)]
    # Its log goes to a file: llama.cpp writes more than a pipe holds while loading, and a
    # full pipe would stop it before it listens.
    log_path = Path(tempfile.gettempdir()) / f"llama-server-{port}.log"
    with log_path.open("wb") as log_file:
        server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log_file)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"llama_cpp.server exited; its log: {log_path}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/v1/models")
            if conn.getresponse().status == 200:
                return server
        except OSError:
            # Not listening yet: a process start has no readiness signal but the port.
            time.sleep(0.5)
    server.kill()
    raise RuntimeError("llama_cpp.server did not start within 120 s")


def llama_complete(port: int, prompt: str, max_tokens: int) -> str:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    body = {"prompt": prompt, "max_tokens": max_tokens, "temperature": 0, "top_k": 1}
    conn.request("POST", "/v1/completions", json.dumps(body), {"Content-Type": "application/json"})
    answer = json.loads(conn.getresponse().read())
    return answer["choices"][0]["text"]


def source_prompts(count: int, seed: int) -> list[tuple[str, str]]:
    """(file name, text up to a line end) pairs; the text ends after a newline and the next
    line's indentation, a token boundary where healing changes nothing."""
    rng = random.Random(seed)
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    cases = []
    for i in range(count):
        name = STDLIB_FILES[i % len(STDLIB_FILES)]
        lines = (stdlib / name).read_text(encoding="utf-8").splitlines(keepends=True)
        while True:
            at = rng.randrange(20, len(lines) - 1)
            following = lines[at]
            if following.strip() and not following.lstrip().startswith("#"):
                break
        indent = following[: len(following) - len(following.lstrip())]
        start = max(0, at - 30)
        cases.append((name, "".join(lines[start:at]) + indent))
    return cases


def agreement(a: str, b: str, encode) -> tuple[int, int, int, int]:
    """Characters and tokens agreeing from the start, and the longer length of each."""
    chars = next(
        (i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b))
    )
    ta, tb = encode(a), encode(b)
    toks = next(
        (i for i, (x, y) in enumerate(zip(ta, tb, strict=False)) if x != y), min(len(ta), len(tb))
    )
    return chars, max(len(a), len(b)), toks, max(len(ta), len(tb))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--llama-python", default=os.environ.get(LLAMA_PYTHON_ENV, ""))
    parser.add_argument("--prompts", type=int, default=12)
    parser.add_argument("--max-tokens", type=int, default=24)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    if not args.llama_python:
        parser.error(f"--llama-python or ${LLAMA_PYTHON_ENV}: a python with llama_cpp")
    model_dir = ensure_model(DEFAULT_MODEL)
    gguf = downloads_dir() / Path(KNOWN_MODELS[DEFAULT_MODEL].source.member).name
    port = free_port()
    server = start_llama_server(args.llama_python, gguf, port, args.threads)
    try:
        engine = Engine.load(model_dir, threads=args.threads)
        tok = engine.tokenizer

        def encode(text: str) -> list[int]:
            return tok.encode(text, add_special_tokens=False).ids

        cases = source_prompts(args.prompts, args.seed)
        raw_rows = []
        for name, prompt in cases:
            ids = encode(prompt)
            ours = tok.decode(
                list(engine.generate(ids, max_new_tokens=args.max_tokens).tokens),
                skip_special_tokens=False,
            )
            theirs = llama_complete(port, prompt, args.max_tokens)
            raw_rows.append((name, ours, theirs, *agreement(ours, theirs, encode)))
        exact = sum(ours == theirs for _, ours, theirs, *_ in raw_rows)
        char_share = statistics.median(c / max(n, 1) for *_, c, n, _, _ in raw_rows)
        tok_share = statistics.median(t / max(m, 1) for *_, t, m in raw_rows)
        print(f"raw greedy, {len(raw_rows)} prompts x {args.max_tokens} tokens:")
        print(f"  identical: {exact}/{len(raw_rows)}")
        print(
            f"  median share agreeing from the start: "
            f"chars {char_share:.2f}, tokens {tok_share:.2f}"
        )
        for name, ours, theirs, _c, _n, t, m in raw_rows:
            if ours != theirs:
                print(f"  {name}: diverge at token {t}/{m}: ours {ours!r} llama {theirs!r}")

        local = CompletionPipeline(engine)
        remote = CompletionPipeline(engine)
        settings = ServerSettings(backend="remote", remote_url=f"http://127.0.0.1:{port}/v1")
        assert configure_backend(remote, settings) is None
        same = 0
        for name, prompt in cases:
            lines = prompt.split("\n")
            position = Position(len(lines) - 1, len(lines[-1]))
            request = CompletionRequest(prompt, position, path=name, max_new_tokens=48)
            a = local.complete(request).insert_text
            b = remote.complete(request).insert_text
            same += a == b
            if a != b:
                print(f"  pipeline {name}: local {a!r} remote {b!r}")
        print(f"pipeline suggestions identical: {same}/{len(cases)}")
    finally:
        server.terminate()
        server.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
