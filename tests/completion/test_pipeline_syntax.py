"""Mode, stops and post-processing through the real shipped model, in several languages.

What the model writes is not fixed here; what must hold whatever it writes is: the edit adds
no parse error, never doubles the text after the cursor, the mode follows the cursor, and
stopping while decoding gives the same text as decoding to the cap and cutting afterwards.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from completion.cursor import split_at
from completion.languages import language_for
from completion.pipeline import CompletionPipeline, PipelineSettings
from completion.positions import offset_at
from completion.request import CompletionRequest, CompletionResult, Position
from completion.syntax import count_errors

CURSOR = "‸"

CASES = [
    (
        "stack.py",
        "class Stack:\n    def __init__(self):\n        self.items = []\n\n"
        "    def push(self, item):\n        ‸\n",
    ),
    (
        "fib.py",
        "def fibonacci(n):\n    if n < 2:\n        return n\n"
        "    return fibonacci(n - 1) + fibonacci(‸)\n",
    ),
    (
        "sum.js",
        "function sum(values) {\n  let total = 0;\n  for (const v of values) {‸}\n"
        "  return total;\n}\n",
    ),
    ("max.go", "package main\n\nfunc max(a, b int) int {\n\t‸\n}\n"),
    ("area.c", "#include <stdio.h>\n\ndouble area(double r) {‸}\n"),
    ("Point.java", "class Point {\n    int x, y;\n\n    int getX() {‸}\n}\n"),
    ("len.rs", "fn len(v: &Vec<i32>) -> usize {\n    ‸\n}\n"),
]


def request_at(path: str, document: str) -> CompletionRequest:
    offset = document.index(CURSOR)
    text = document.replace(CURSOR, "", 1)
    line = text.count("\n", 0, offset)
    column = offset - (text.rfind("\n", 0, offset) + 1)
    return CompletionRequest(text, Position(line, column), path=path)


def apply(request: CompletionRequest, result: CompletionResult) -> str:
    begin = offset_at(request.text, result.start)
    end = offset_at(request.text, result.end)
    assert begin is not None and end is not None
    return request.text[:begin] + result.insert_text + request.text[end:]


def parse_errors(path: str, text: str) -> int:
    grammar = language_for("", path).grammar()  # type: ignore[union-attr]
    assert grammar is not None
    from tree_sitter import Parser

    return count_errors(Parser(grammar).parse(text.encode()).root_node)


@pytest.fixture(scope="module")
def pipeline(model_dir: Path) -> CompletionPipeline:
    return CompletionPipeline.load(model_dir)


@pytest.mark.parametrize(("path", "document"), CASES, ids=[case[0] for case in CASES])
def test_completions_parse_and_never_double_the_suffix(
    pipeline: CompletionPipeline, path: str, document: str
) -> None:
    request = request_at(path, document)
    result = pipeline.complete(request)
    assert result.stats.mode in {"line", "block"}
    assert result.insert_text == result.insert_text.rstrip()
    after = apply(request, result)
    assert parse_errors(path, after) <= parse_errors(path, request.text)
    ctx = split_at(request.text, request.position)
    rest = ctx.line_suffix.strip()
    if rest and "\n" not in result.insert_text and result.start == result.end:
        # A pure insertion never ends by re-typing what follows it on the line.
        assert not result.insert_text.endswith(rest)


def test_mode_none_generates_nothing(pipeline: CompletionPipeline) -> None:
    result = pipeline.complete(request_at("w.py", "total = compu‸te(a)\n"))
    assert (result.insert_text, result.stats.stop_reason) == ("", "none")
    assert (result.stats.mode, result.stats.mode_reason) == ("none", "mid_word")
    assert result.stats.generated_tokens == 0


def test_stopping_while_decoding_saves_tokens_not_text(model_dir: Path) -> None:
    streamed = CompletionPipeline.load(model_dir)
    to_cap = CompletionPipeline(streamed.engine, PipelineSettings(stream_stops=False))
    saved = 0
    for path, document in CASES[2:5]:  # blocks in JavaScript, Go and C
        request = request_at(path, document)
        fast = streamed.complete(request)
        full = to_cap.complete(request)
        assert (fast.insert_text, fast.end) == (full.insert_text, full.end), path
        assert fast.stats.generated_tokens <= full.stats.generated_tokens
        saved += full.stats.generated_tokens - fast.stats.generated_tokens
    assert saved > 0
