"""Parity with a third-party OpenAI-compatible server: llama-cpp-python serving the same GGUF.

Our default model is the GGUF file the installer downloaded, its Q4_1 blocks held exactly in
`MatMulNBits` with fp32 activations and an fp32 LM head; llama.cpp runs the same blocks with
its own kernels (activations quantised to 8 bits, the tied head kept as Q8_0). For prompts cut
from real source files, this compares greedy text
  1. raw: our engine's greedy continuation against llama.cpp's `/v1/completions` at
     temperature 0: identical texts, how many of our tokens agree from the start, where the
     first disagreement falls and how close our top two logits were there; once more with
     llama-cpp-python's default repeat penalty (1.1), which applies even at temperature 0;
  2. through the pipeline: the suggestion with the local backend against the suggestion with
     `backend: remote` pointed at llama.cpp (stops, filters, post-processing all local), at
     line ends and at mid-word cursors, with the remote backend's token healing and without.

Run: python benchmarks/remote_parity.py --llama-python /work/venv-peers/bin/python
(or $NEXTTOKEN_LLAMA_CPP_PYTHON; that python needs `llama-cpp-python[server]`).
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
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from completion.backends import GenerationPrompt, TextCallback, TextGeneration, TokenCallback
from completion.pipeline import CompletionPipeline, PipelineSettings
from completion.remote_backend import RemoteGenerator, RemoteSettings
from completion.request import CompletionRequest, Position
from onnx_models.engine import Engine
from onnx_models.install import ensure_model
from onnx_models.paths import downloads_dir
from onnx_models.registry import DEFAULT_MODEL, KNOWN_MODELS

LLAMA_PYTHON_ENV = "NEXTTOKEN_LLAMA_CPP_PYTHON"
LAUNCHER = Path(__file__).with_name("llama_cpp_server.py")
STDLIB_FILES = (
    "textwrap.py",
    "shlex.py",
    "fractions.py",
    "csv.py",
    "json/encoder.py",
    "argparse.py",
    "dataclasses.py",
    "functools.py",
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_llama_server(
    python: str, gguf: Path, port: int, threads: int, kv_type: str
) -> subprocess.Popen:
    command = [python, str(LAUNCHER), "--model", str(gguf), "--port", str(port)]
    command += ["--threads", str(threads), "--kv-type", kv_type]
    # Its log goes to a file: llama.cpp writes more than a pipe holds while loading, and a
    # full pipe would stop it before it listens.
    log_path = Path(tempfile.gettempdir()) / f"llama-server-{port}.log"
    with log_path.open("wb") as log_file:
        server = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the llama.cpp server exited; its log: {log_path}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/v1/models")
            if conn.getresponse().status == 200:
                return server
        except OSError:
            # Not listening yet: a process start has no readiness signal but the port.
            time.sleep(0.5)
    server.kill()
    raise RuntimeError("the llama.cpp server did not start within 120 s")


def llama_complete(port: int, prompt: str, max_tokens: int, repeat_penalty: float) -> str:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    body = {
        "prompt": prompt,
        "max_tokens": max_tokens,
        "temperature": 0,
        "repeat_penalty": repeat_penalty,
    }
    conn.request("POST", "/v1/completions", json.dumps(body), {"Content-Type": "application/json"})
    answer = json.loads(conn.getresponse().read())
    return answer["choices"][0]["text"]


@dataclass(frozen=True)
class Case:
    name: str
    text: str  # the document up to the cursor


def source_cases(count: int, seed: int, mid_word: bool) -> list[Case]:
    """Thirty lines of a stdlib module up to a cursor: after the next line's indentation
    (a line end), or `mid_word`, after the first three characters of its first word."""
    rng = random.Random(seed)
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    cases = []
    for i in range(count):
        name = STDLIB_FILES[i % len(STDLIB_FILES)]
        lines = (stdlib / name).read_text(encoding="utf-8").splitlines(keepends=True)
        while True:
            at = rng.randrange(20, len(lines) - 1)
            following = lines[at]
            code = following.lstrip()
            if code.strip() and not code.startswith("#") and code[:4].isidentifier():
                break
        indent = following[: len(following) - len(code)]
        cut = indent + (code[:3] if mid_word else "")
        cases.append(Case(name, "".join(lines[max(0, at - 30) : at]) + cut))
    return cases


@dataclass(frozen=True)
class RawRow:
    name: str
    ours: str
    theirs: str
    agreeing_tokens: int  # of our tokens, from the start, whose text llama.cpp also wrote
    our_tokens: int
    margin: float | None  # our top-1 minus top-2 logit at the first disagreement


def greedy_with_margins(
    engine: Engine, ids: list[int], max_tokens: int
) -> tuple[list[int], list[float]]:
    margins: list[float] = []

    def pick(logits: np.ndarray, step: int) -> int:
        top2 = np.partition(logits, -2)[-2:]
        margins.append(float(top2[1] - top2[0]))
        return int(np.argmax(logits))

    # A cold cache for every prompt: the same prefill path for all of them.
    engine.rewind(0)
    tokens = engine.generate(ids, max_new_tokens=max_tokens, pick=pick).tokens
    return list(tokens), margins


def raw_row(
    name: str,
    ours_ids: list[int],
    margins: list[float],
    theirs: str,
    decode: Callable[[list[int]], str],
) -> RawRow:
    agreeing = 0
    while agreeing < len(ours_ids) and theirs.startswith(decode(ours_ids[: agreeing + 1])):
        agreeing += 1
    ours = decode(ours_ids)
    # Past our last token, the disagreement is our end of text against more of theirs.
    margin = margins[agreeing] if ours != theirs and agreeing < len(margins) else None
    return RawRow(name, ours, theirs, agreeing, len(ours_ids), margin)


def compare_raw(
    engine: Engine, port: int, cases: list[Case], max_tokens: int, repeat_penalty: float
) -> list[RawRow]:
    tok = engine.tokenizer

    def decode(ids: list[int]) -> str:
        return tok.decode(ids, skip_special_tokens=False)

    rows = []
    for case in cases:
        ids = tok.encode(case.text, add_special_tokens=False).ids
        ours_ids, margins = greedy_with_margins(engine, ids, max_tokens)
        theirs = llama_complete(port, case.text, max_tokens, repeat_penalty)
        rows.append(raw_row(case.name, ours_ids, margins, theirs, decode))
    return rows


def report_raw(title: str, rows: list[RawRow], max_tokens: int, show: bool) -> None:
    same = sum(r.ours == r.theirs for r in rows)
    agreeing = [r.agreeing_tokens for r in rows]
    firsts = sorted(r.agreeing_tokens for r in rows if r.ours != r.theirs)
    margins = [r.margin for r in rows if r.margin is not None]
    print(f"{title}: {len(rows)} prompts x {max_tokens} tokens", flush=True)
    print(f"  identical texts: {same}/{len(rows)}")
    print(
        f"  our tokens agreeing from the start: median {statistics.median(agreeing)}, "
        f"min {min(agreeing)}, all: {sorted(agreeing)}"
    )
    if firsts:
        print(f"  first disagreement at our token: {firsts}")
    if margins:
        print(
            f"  our top-2 logit gap there: median {statistics.median(margins):.2f}, "
            f"max {max(margins):.2f}"
        )
    if show:
        for r in rows:
            if r.ours != r.theirs:
                print(
                    f"    {r.name}: token {r.agreeing_tokens}/{r.our_tokens}: "
                    f"ours {r.ours!r} llama {r.theirs!r}"
                )


class UnhealedRemote(RemoteGenerator):
    """The remote backend as it was before it healed: the prompt sent as it is."""

    def generate(
        self,
        prompt: GenerationPrompt,
        *,
        max_new_tokens: int,
        on_token: TokenCallback,
        on_text: TextCallback,
        cancelled: Callable[[], bool],
    ) -> TextGeneration:
        on_text(prompt.removed_text)  # what the pipeline strips as the healed prefix
        return super().generate(
            replace(prompt, removed_text=""),
            max_new_tokens=max_new_tokens,
            on_token=on_token,
            on_text=on_text,
            cancelled=cancelled,
        )


def remote_pipeline(engine: Engine, url: str, heal: bool) -> CompletionPipeline:
    # No wall-clock budget: on a busy machine it would cut the two backends at different lines.
    pipeline = CompletionPipeline(engine, PipelineSettings(deadline_ms=None))
    # A loaded 2-core box can take longer than the default 15 s to the first piece.
    settings = RemoteSettings(url, read_timeout_s=300, stop=tuple(pipeline.manifest.stop_tokens))
    pipeline.remote = RemoteGenerator(settings) if heal else UnhealedRemote(settings)
    pipeline.remote_fallback = False
    return pipeline


def compare_pipelines(
    pipelines: dict[str, CompletionPipeline], cases: list[Case], max_tokens: int
) -> list[tuple[str, list[str]]]:
    rows = []
    for case in cases:
        lines = case.text.split("\n")
        position = Position(len(lines) - 1, len(lines[-1]))
        request = CompletionRequest(case.text, position, path=case.name, max_new_tokens=max_tokens)
        texts = []
        for pipeline in pipelines.values():
            result = pipeline.complete(request)
            if result.stats.stop_reason == "remote_error":
                raise RuntimeError(f"remote backend failed: {result.stats.mode_reason}")
            texts.append(result.insert_text)
        rows.append((case.name, texts))
    return rows


def report_pipelines(
    title: str, names: list[str], rows: list[tuple[str, list[str]]], show: bool
) -> None:
    """Each pipeline against the first (local)."""
    print(f"{title}: {len(rows)} cursors")
    for i, name in enumerate(names[1:], 1):
        same = sum(texts[i] == texts[0] for _, texts in rows)
        empty = sum(not texts[i] for _, texts in rows)
        print(f"  {name}: identical to local {same}/{len(rows)} (empty {empty})")
    print(f"  local: empty {sum(not texts[0] for _, texts in rows)}", flush=True)
    if show:
        for case, texts in rows:
            if len(set(texts)) > 1:
                print(
                    f"    {case}: "
                    + " | ".join(f"{n} {t!r}" for n, t in zip(names, texts, strict=True))
                )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--llama-python", default=os.environ.get(LLAMA_PYTHON_ENV, ""))
    parser.add_argument("--prompts", type=int, default=24)
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--llama-kv", choices=("f16", "f32"), default="f16")
    parser.add_argument(
        "--repeat-penalties", default="1.0,1.1", help="llama.cpp's, one raw run each ('': none)"
    )
    parser.add_argument("--raw-only", action="store_true", help="skip the pipeline comparison")
    parser.add_argument("--show", action="store_true", help="print every disagreement")
    args = parser.parse_args()
    if not args.llama_python:
        parser.error(f"--llama-python or ${LLAMA_PYTHON_ENV}: a python with llama_cpp")
    model_dir = ensure_model(DEFAULT_MODEL)
    gguf = downloads_dir() / Path(KNOWN_MODELS[DEFAULT_MODEL].source.member).name
    port = free_port()
    server = start_llama_server(args.llama_python, gguf, port, args.threads, args.llama_kv)
    print(f"llama.cpp KV cache: {args.llama_kv}; ours: float32")
    try:
        engine = Engine.load(model_dir, threads=args.threads)
        line_end = source_cases(args.prompts, args.seed, mid_word=False)
        mid_word = source_cases(args.prompts, args.seed, mid_word=True)
        for penalty in (float(p) for p in args.repeat_penalties.split(",") if p):
            rows = compare_raw(engine, port, line_end, args.max_tokens, penalty)
            title = f"raw greedy, repeat_penalty {penalty}"
            report_raw(title, rows, args.max_tokens, args.show)
        if args.raw_only:
            return 0

        url = f"http://127.0.0.1:{port}/v1"
        pipelines = {
            "local": CompletionPipeline(engine, PipelineSettings(deadline_ms=None)),
            "remote healed": remote_pipeline(engine, url, heal=True),
            "remote unhealed": remote_pipeline(engine, url, heal=False),
        }
        for title, cases in (("pipeline, line ends", line_end), ("pipeline, mid-word", mid_word)):
            rows_p = compare_pipelines(pipelines, cases, args.max_tokens)
            report_pipelines(title, list(pipelines), rows_p, args.show)
    finally:
        server.terminate()
        server.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
