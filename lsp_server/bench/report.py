"""The bench's results as a versioned JSON document, and as one self-contained HTML page.

The JSON document is the single record of a run (its schema is described in
docs/bench-schema.md; `SCHEMA_VERSION` changes whenever a field changes meaning or goes away);
the HTML page is rendered from that document alone, so the two never disagree and a page can be
rebuilt from a kept JSON artefact. The page has no scripts and loads nothing: the histogram is
inline SVG.
"""

from __future__ import annotations

import datetime
import html
import json
import math
import shlex
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from lsp_server.bench.figures import (
    BenchSummary,
    LatencySummary,
    Limit,
    Violation,
    counted,
    declined,
    located,
)
from lsp_server.bench.machine import MachineDescription
from lsp_server.bench.quality import HoleResult, SuiteOutcome
from lsp_server.bench.typist import PositionRun

SCHEMA = "nexttoken-bench"
SCHEMA_VERSION = 1


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _rounded(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


def _latency_json(summary: LatencySummary) -> dict[str, Any]:
    return {key: _rounded(value) for key, value in asdict(summary).items()}


def _envelope(
    mode: str, command: Sequence[str], workspace: Path, settings: dict[str, Any]
) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "mode": mode,
        "created": _now(),
        "command": list(command),
        "workspace": str(workspace),
        "settings": settings,
    }


def budget_json(
    limits: Sequence[Limit] | None, violations: Sequence[Violation]
) -> dict[str, Any] | None:
    if limits is None:
        return None

    def unit(limit: Limit) -> str:
        return "%" if limit.figure == "empty" else "ms"

    return {
        "passed": not violations,
        "limits": [
            {"figure": limit.name, "limit": limit.value, "unit": unit(limit)} for limit in limits
        ],
        "violations": [
            {
                "figure": v.limit.name,
                "value": _rounded(v.measured),
                "limit": v.limit.value,
                "unit": unit(v.limit),
                "worst": list(v.worst),
                "message": v.message(),
            }
            for v in violations
        ],
    }


def latency_document(
    *,
    command: Sequence[str],
    workspace: Path,
    settings: dict[str, Any],
    machine: MachineDescription,
    warmup_ms: float | None,
    index: dict[str, Any] | None,
    runs: Sequence[PositionRun],
    summary: BenchSummary,
    budget: dict[str, Any] | None,
) -> dict[str, Any]:
    document = _envelope("latency", command, workspace, settings)
    document["machine"] = machine.to_json()
    document["index"] = index
    document["summary"] = {
        "positions": summary.positions,
        "requests": summary.requests,
        "answered": summary.answered,
        "superseded": summary.superseded,
        "cancelled": summary.cancelled,
        "errors": summary.errors,
        "declined": summary.declined,
        "empty": summary.empty,
        "empty_percent": _rounded(summary.empty_percent),
        "latency_ms": {name: _latency_json(group) for name, group in summary.latency.items()},
        "decode_ms_per_token": _rounded(summary.decode_ms_per_token),
        "prefill_ms_per_token": _rounded(summary.prefill_ms_per_token),
        "kv_reuse_percent": {
            name: _rounded(value) for name, value in summary.kv_reuse_percent.items()
        },
        "typing_through_hits": summary.typing_through_hits,
        "stats_reported": summary.stats_reported,
        "peak_rss_bytes": summary.peak_rss_bytes,
        "warmup_ms": _rounded(warmup_ms),
    }
    document["budget"] = budget
    document["files"] = _files_json(runs)
    document["positions"] = [
        {
            "file": run.position.file.relative,
            "language": run.position.file.language_id,
            "line": run.position.line + 1,
            "column": run.position.column,
            "keystrokes": run.position.keystrokes,
            "requests": [
                {
                    "keystroke": sample.keystroke,
                    "column": run.position.column - run.position.keystrokes + sample.keystroke,
                    "status": sample.status,
                    "latency_ms": _rounded(sample.latency_ms),
                    "counted": counted(sample),
                    "declined": declined(sample),
                    "empty": sample.empty,
                    "suggestion": sample.suggestion,
                    "source": sample.source,
                    "stats": sample.stats,
                    "error": sample.error,
                }
                for sample in run.samples
            ],
        }
        for run in runs
    ]
    return document


def _files_json(runs: Sequence[PositionRun]) -> list[dict[str, Any]]:
    by_file: dict[str, list[Any]] = {}
    language: dict[str, str] = {}
    for item in located(runs):
        by_file.setdefault(item.run.position.file.relative, []).append(item.sample)
        language[item.run.position.file.relative] = item.run.position.file.language_id
    rows = []
    for file, samples in sorted(by_file.items()):
        latency = LatencySummary.of([s.latency_ms for s in samples if counted(s)])
        answered = [s for s in samples if s.shown]
        rows.append(
            {
                "file": file,
                "language": language[file],
                "positions": sum(1 for s in samples if s.cold),
                "requests": len(samples),
                "answered": len(answered),
                "empty": sum(1 for s in answered if s.empty),
                "p50_ms": _rounded(latency.p50),
                "p90_ms": _rounded(latency.p90),
                "max_ms": _rounded(latency.max),
            }
        )
    return rows


def quality_document(
    *,
    command: Sequence[str],
    workspace: Path,
    settings: dict[str, Any],
    machine: MachineDescription,
    results: Sequence[HoleResult],
    tests: SuiteOutcome | None,
    test_command: str | None,
    index: dict[str, Any] | None,
) -> dict[str, Any]:
    document = _envelope("quality", command, workspace, settings)
    document["machine"] = machine.to_json()
    document["index"] = index
    summary: dict[str, Any] = {"all": _quality_figures(results)}
    for kind in ("line", "block"):
        summary[kind] = _quality_figures([r for r in results if r.hole.kind == kind])
    if tests is not None:
        runs = len(tests.results)
        summary["tests"] = {
            "command": test_command,
            "baseline_passed": tests.baseline.passed,
            "baseline_output": tests.baseline.output_tail,
            "runs": runs,
            "passed": tests.passed,
            "pass_percent": _rounded(100 * tests.passed / runs) if runs else None,
        }
    else:
        summary["tests"] = None
    document["summary"] = summary
    document["holes"] = [
        {
            "file": r.hole.file.relative,
            "language": r.hole.file.language_id,
            "line": r.hole.line + 1,
            "column": r.hole.column,
            "kind": r.hole.kind,
            "expected": r.expected,
            "got": r.got,
            "exact": r.exact,
            "similarity": round(r.similarity, 4),
            "syntax_ok": r.syntax_ok,
            "latency_ms": _rounded(r.latency_ms),
            "tests_passed": r.tests_passed,
            "stats": r.stats,
        }
        for r in results
    ]
    return document


def _quality_figures(results: Sequence[HoleResult]) -> dict[str, Any]:
    count = len(results)

    def percent(hits: int) -> float | None:
        return _rounded(100 * hits / count) if count else None

    latencies = [r.latency_ms for r in results if r.latency_ms is not None]
    return {
        "holes": count,
        "exact_percent": percent(sum(r.exact for r in results)),
        "similarity_mean": _rounded(sum(r.similarity for r in results) / count, 4)
        if count
        else None,
        "syntax_ok_percent": percent(sum(r.syntax_ok for r in results)),
        "empty": sum(1 for r in results if not r.got),
        "latency_ms": _latency_json(LatencySummary.of(latencies)),
    }


def write_json(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


# -- HTML -----------------------------------------------------------------------------------------

_STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em auto; max-width: 72em; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.15em; margin-top: 2em; }
table { border-collapse: collapse; margin: .5em 0; }
th, td { border-bottom: 1px solid #ddd; padding: .25em .75em; text-align: right; }
th:first-child, td:first-child, td.text, th.text { text-align: left; }
td.text { font-family: ui-monospace, monospace; white-space: pre-wrap; max-width: 30em; }
.fail { color: #b00020; font-weight: bold; } .pass { color: #1b7f3b; font-weight: bold; }
.legend span { display: inline-block; width: .9em; height: .9em; margin: 0 .3em 0 1em; }
code { font-family: ui-monospace, monospace; }
"""
COLD_COLOUR = "#d9822b"
WARM_COLOUR = "#2b6cb0"


def _cell(value: Any, unit: str = "") -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        value = f"{value:,.1f}"
    return html.escape(f"{value}{unit}")


def _fixed(value: float | None, digits: int) -> str | None:
    return None if value is None else f"{value:.{digits}f}"


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _td(value: Any, unit: str = "", text: bool = False) -> str:
    return f'<td class="text">{_cell(value)}</td>' if text else f"<td>{_cell(value, unit)}</td>"


def histogram_svg(cold: Sequence[float], warm: Sequence[float], bins: int = 24) -> str:
    """Latency histogram, cold and warm answers stacked, as inline SVG."""
    values = [*cold, *warm]
    width, height, left, bottom = 720, 220, 48, 28
    if not values:
        return "<p>No answers were measured.</p>"
    top = max(values)
    step = _nice_step(top / bins) if top > 0 else 1.0
    # The largest value falls into the last bin (clamped below), not into a bin of its own.
    bins = max(1, math.ceil(top / step))
    counts = [[0, 0] for _ in range(bins)]
    for index, group in enumerate((cold, warm)):
        for value in group:
            counts[min(int(value // step), bins - 1)][index] += 1
    tallest = max(c + w for c, w in counts)
    plot_w, plot_h = width - left - 8, height - bottom - 8
    bar_w = plot_w / bins
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'role="img" aria-label="latency histogram">',
        f'<line x1="{left}" y1="{8 + plot_h}" x2="{width - 8}" y2="{8 + plot_h}" stroke="#888"/>',
    ]
    for index, (c, w) in enumerate(counts):
        x = left + index * bar_w
        y = 8 + plot_h
        for count, colour, name in ((c, COLD_COLOUR, "cold"), (w, WARM_COLOUR, "warm")):
            if not count:
                continue
            h = plot_h * count / tallest
            y -= h
            low, high = index * step, (index + 1) * step
            parts.append(
                f'<rect x="{x + 1:.1f}" y="{y:.1f}" width="{bar_w - 2:.1f}" height="{h:.1f}" '
                f'fill="{colour}"><title>{name}: {count} answers, {low:g}–{high:g} ms'
                "</title></rect>"
            )
    for index in range(0, bins + 1, max(1, bins // 6)):
        x = left + index * bar_w
        parts.append(
            f'<text x="{x:.1f}" y="{height - 8}" font-size="11" text-anchor="middle">'
            f"{index * step:g}</text>"
        )
    parts.append(
        f'<text x="{left - 6}" y="14" font-size="11" text-anchor="end">{tallest}</text>'
        f'<text x="{width - 8}" y="{height - 8 - 14}" font-size="11" text-anchor="end">ms</text>'
    )
    parts.append("</svg>")
    return "".join(parts)


def _nice_step(raw: float) -> float:
    """1, 2 or 5 times a power of ten, at least `raw`."""
    power = 10 ** math.floor(math.log10(raw))
    for multiple in (1, 2, 5, 10):
        if multiple * power >= raw:
            return multiple * power
    return 10 * power


def _machine_html(machine: dict[str, Any]) -> str:
    memory = machine.get("memory_bytes")
    rows = [
        ("cores", f"{machine.get('usable_cores')} usable of {machine.get('cpu_count')}"),
        ("CPU", machine.get("cpu_model")),
        ("memory", f"{memory / 2**30:.1f} GiB" if memory else None),
        ("load average at start", ", ".join(f"{x:.2f}" for x in machine.get("load_average") or [])),
        ("model", f"{machine.get('model')} ({machine.get('model_folder')})"),
        ("execution provider", machine.get("execution_provider")),
        ("platform", machine.get("platform")),
        (
            "Python, nexttoken, onnxruntime",
            f"{machine.get('python')}, {machine.get('nexttoken')}, {machine.get('onnxruntime')}",
        ),
    ]
    return _table(["", ""], [[_td(name, text=True), _td(value, text=True)] for name, value in rows])


def _budget_html(budget: dict[str, Any] | None) -> str:
    if budget is None:
        return "<p>No budget given.</p>"
    verdict = (
        '<p class="pass">Within budget.</p>'
        if budget["passed"]
        else '<p class="fail">Over budget.</p>'
    )
    limits = ", ".join(f"{x['figure']} ≤ {x['limit']:g} {x['unit']}" for x in budget["limits"])
    items = "".join(f"<li>{html.escape(v['message'])}</li>" for v in budget["violations"])
    return f"{verdict}<p>Budget: {html.escape(limits)}</p>" + (f"<ul>{items}</ul>" if items else "")


def render_html(document: dict[str, Any]) -> str:
    """The whole page, from a document made by `latency_document` or `quality_document`."""
    title = f"nexttoken bench ({document['mode']}): {Path(document['workspace']).name}"
    body = [
        f"<h1>{html.escape(title)}</h1>",
        f"<p>{html.escape(document['created'])} · <code>"
        f"{html.escape(shlex.join(document['command']))}</code></p>",
    ]
    if document["mode"] == "latency":
        body.append(_latency_html(document))
    else:
        body.append(_quality_html(document))
    body += ["<h2>Machine</h2>", _machine_html(document["machine"])]
    settings = ", ".join(f"{k} = {v}" for k, v in document["settings"].items())
    body.append(f"<p>Settings: {html.escape(settings)}</p>")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>"
        + "\n".join(body)
        + "</body></html>\n"
    )


def _latency_html(document: dict[str, Any]) -> str:
    summary = document["summary"]
    latency = summary["latency_ms"]
    figures = ("count", "p50", "p90", "p95", "p99", "max")
    rows = [
        [_td(group, text=True)]
        + [_td(latency[group][f]) for f in figures]
        + [_td(summary["kv_reuse_percent"][group], " %")]
        for group in ("all", "cold", "warm")
    ]
    cold = [
        r["latency_ms"]
        for p in document["positions"]
        for r in p["requests"]
        if r["counted"] and r["keystroke"] == 0
    ]
    warm = [
        r["latency_ms"]
        for p in document["positions"]
        for r in p["requests"]
        if r["counted"] and r["keystroke"] > 0
    ]
    rss = summary["peak_rss_bytes"]
    facts = [
        f"{summary['positions']} positions, {summary['requests']} requests: "
        f"{summary['answered']} answered, {summary['superseded']} superseded by the next "
        f"keystroke, {summary['cancelled']} cancelled, {summary['errors']} errors",
        f"empty suggestions: {summary['empty']} ({_cell(summary['empty_percent'], ' %')} of "
        f"answers; {summary['declined']} declined without running the model)",
        f"decode {_cell(summary['decode_ms_per_token'], ' ms')} per token, prefill "
        f"{_cell(summary['prefill_ms_per_token'], ' ms')} per uncached prompt token",
        f"typing-through hits: {summary['typing_through_hits']}",
        f"server peak RSS: {_cell(rss / 2**20 if rss else None, ' MiB')}; first answer (model "
        f"load and warm-up): {_cell(summary['warmup_ms'], ' ms')}",
    ]
    files = [
        [
            _td(row["file"], text=True),
            _td(row["language"], text=True),
            _td(row["positions"]),
            _td(row["answered"]),
            _td(row["empty"]),
            _td(row["p50_ms"]),
            _td(row["p90_ms"]),
            _td(row["max_ms"]),
        ]
        for row in document["files"]
    ]
    return "\n".join(
        [
            "<h2>Budget</h2>",
            _budget_html(document.get("budget")),
            "<h2>Keystroke-to-suggestion latency (ms)</h2>",
            _table(["", *figures, "KV reuse"], rows),
            f'<p class="legend"><span style="background:{COLD_COLOUR}"></span>cold (first '
            f'request in a file)<span style="background:{WARM_COLOUR}"></span>warm</p>',
            histogram_svg(cold, warm),
            "<ul>" + "".join(f"<li>{html.escape(fact)}</li>" for fact in facts) + "</ul>",
            "<h2>Per file</h2>",
            _table(
                ["file", "language", "positions", "answered", "empty", "p50", "p90", "max"],
                files,
            ),
        ]
    )


def _quality_html(document: dict[str, Any]) -> str:
    summary = document["summary"]
    rows = [
        [
            _td(kind, text=True),
            _td(summary[kind]["holes"]),
            _td(summary[kind]["exact_percent"], " %"),
            _td(_fixed(summary[kind]["similarity_mean"], 3)),
            _td(summary[kind]["syntax_ok_percent"], " %"),
            _td(summary[kind]["empty"]),
            _td(summary[kind]["latency_ms"]["p50"], " ms"),
        ]
        for kind in ("all", "line", "block")
    ]
    parts = [
        "<h2>Scores</h2>",
        _table(["holes", "count", "exact", "edit similarity", "parses", "empty", "p50"], rows),
    ]
    tests = summary.get("tests")
    if tests:
        baseline = "passed" if tests["baseline_passed"] else "FAILED (the pass rate means little)"
        parts.append(
            f"<p>Tests <code>{html.escape(str(tests['command']))}</code>: untouched copy "
            f"{baseline}; with the filled holes {tests['passed']} of {tests['runs']} passed "
            f"({_cell(tests['pass_percent'], ' %')}).</p>"
        )
    holes = [
        [
            _td(f"{h['file']}:{h['line']}:{h['column']}", text=True),
            _td(h["kind"], text=True),
            _td("yes" if h["exact"] else "no", text=True),
            _td(f"{h['similarity']:.2f}"),
            _td("yes" if h["syntax_ok"] else "no", text=True),
            _td({True: "pass", False: "fail", None: "–"}[h["tests_passed"]], text=True),
            _td(h["expected"], text=True),
            _td(h["got"], text=True),
        ]
        for h in document["holes"]
    ]
    parts += [
        "<h2>Holes</h2>",
        _table(
            ["hole", "kind", "exact", "similarity", "parses", "tests", "expected", "got"], holes
        ),
    ]
    return "\n".join(parts)


def write_html(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(document), encoding="utf-8")
