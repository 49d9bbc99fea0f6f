"""The JSON document matches its documentation, and the HTML page stands on its own."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lsp_server.bench.figures import check_budget, parse_budget, summarize
from lsp_server.bench.machine import describe_machine
from lsp_server.bench.quality import Hole, SuiteOutcome, SuiteRun, score
from lsp_server.bench.report import (
    SCHEMA_VERSION,
    budget_json,
    latency_document,
    quality_document,
    render_html,
)
from lsp_server.bench.typist import PositionRun, RequestSample
from lsp_server.bench.workspace import CursorPosition, SourceFile

SCHEMA_DOC = Path(__file__).resolve().parents[3] / "docs" / "bench-schema.md"
FILE = SourceFile(Path("/w/app.py"), "app.py", "python")
STATS = {
    "prompt_tokens": 120,
    "reused_tokens": 100,
    "generated_tokens": 5,
    "prefill_ms": 30.0,
    "decode_ms": 50.0,
    "total_ms": 85.0,
    "stop_reason": "newline",
}


def latency_runs() -> list[PositionRun]:
    position = CursorPosition(FILE, 40, 3, 12, 13, keystrokes=2)
    return [
        PositionRun(
            position,
            (
                RequestSample(0, 3, 10, "answered", 300.0, "<script>alert(1)</script>", STATS),
                RequestSample(1, 3, 11, "cancelled", None),
                RequestSample(2, 3, 12, "answered", 90.0, "", dict(STATS, prompt_tokens=0)),
            ),
        )
    ]


def keys(value: Any, inside: str = "") -> Iterator[str]:
    """Every object key in the document, except inside the server's own `stats`."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield key
            if key != "stats":
                yield from keys(item, key)
    elif isinstance(value, list):
        for item in value:
            yield from keys(item, inside)


def documented_names() -> set[str]:
    return set(re.findall(r"`([a-z_0-9.]+)`", SCHEMA_DOC.read_text(encoding="utf-8")))


INDEX = {
    "state": "ready",
    "files": 12,
    "roots": [{"root": "/w", "state": "ready", "files": 12, "failure": None}],
    "wait_ms": 310.5,
}


def make_latency_document() -> dict[str, Any]:
    runs = latency_runs()
    summary = summarize(runs, 123456)
    limits = parse_budget("p50=100ms,empty=10%")
    return latency_document(
        command=["nexttoken", "bench", "/w"],
        workspace=Path("/w"),
        settings={
            "positions": 1,
            "keystrokes": 2,
            "typing_ms": 120.0,
            "seed": 0,
            "timeout_s": 120.0,
            "server_command": ["nexttoken", "serve"],
        },
        machine=describe_machine({"name": "smollm2", "execution_provider": "CPU"}, None),
        warmup_ms=2500.0,
        index=INDEX,
        runs=runs,
        summary=summary,
        budget=budget_json(limits, check_budget(limits, runs, summary)),
    )


def make_quality_document() -> dict[str, Any]:
    source = "def f(x):\n    return x + 1\n"
    start = source.index("x + 1")
    hole = Hole(FILE, "line", start, start + 5, 1, 11, 12)
    result = score(hole, source, source[:start] + "x - 1" + source[start + 5 :], 40.0)
    tests = SuiteOutcome(SuiteRun(True, 0.5, "OK"), (result,))
    return quality_document(
        command=["nexttoken", "bench", "--quality"],
        workspace=Path("/w"),
        settings={
            "holes": 1,
            "seed": 0,
            "timeout_s": 120.0,
            "server_command": ["nexttoken", "serve"],
            "test_command": "pytest -x -q",
            "test_timeout_s": 600.0,
        },
        machine=describe_machine(None, (1.0, 0.5, 0.25)),
        results=[result],
        tests=tests,
        test_command="pytest -x -q",
        index=INDEX,
    )


def test_every_field_of_both_modes_is_documented() -> None:
    documented = documented_names()
    for document in (make_latency_document(), make_quality_document()):
        json.dumps(document)  # plain JSON throughout
        assert document["schema_version"] == SCHEMA_VERSION
        undocumented = set(keys(document)) - documented
        assert not undocumented, f"fields missing from {SCHEMA_DOC.name}: {sorted(undocumented)}"
    assert f"schema version {SCHEMA_VERSION}" in SCHEMA_DOC.read_text(encoding="utf-8")


def test_latency_document_figures() -> None:
    document = make_latency_document()
    summary = document["summary"]
    assert summary["latency_ms"]["cold"]["p50"] == 300.0
    assert summary["latency_ms"]["warm"]["count"] == 0  # the one warm answer was declined
    assert summary["peak_rss_bytes"] == 123456
    [row] = document["files"]
    assert (row["file"], row["positions"], row["answered"], row["empty"]) == ("app.py", 1, 2, 1)
    requests = document["positions"][0]["requests"]
    assert [r["column"] for r in requests] == [11, 12, 13]
    assert document["budget"]["passed"] is False
    assert document["machine"]["model"] == "smollm2"


def test_the_page_is_self_contained_and_escapes_what_the_model_wrote() -> None:
    for document in (make_latency_document(), make_quality_document()):
        page = render_html(document)
        assert page.startswith("<!DOCTYPE html>")
        assert "<script" not in page
        assert not re.search(r"""(src|href)=["']""", page)  # nothing loaded from anywhere
    latency_page = render_html(make_latency_document())
    assert "<svg" in latency_page
    assert "Over budget" in latency_page
    assert "smollm2" in latency_page and "app.py" in latency_page
    quality_page = render_html(make_quality_document())
    assert "x - 1" in quality_page and "pytest -x -q" in quality_page


def test_latency_document_keeps_suggestions_verbatim() -> None:
    document = make_latency_document()
    first = document["positions"][0]["requests"][0]
    assert first["suggestion"] == "<script>alert(1)</script>"
