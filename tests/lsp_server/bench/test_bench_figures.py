"""Percentiles, what counts in them, and the budget's verdict and message."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lsp_server.bench.figures import (
    BudgetError,
    Limit,
    check_budget,
    parse_budget,
    percentile,
    summarize,
)
from lsp_server.bench.typist import PositionRun, RequestSample
from lsp_server.bench.workspace import CursorPosition, SourceFile


def stats(prompt: int, reused: int, generated: int, decode_ms: float) -> dict:
    return {
        "prompt_tokens": prompt,
        "reused_tokens": reused,
        "generated_tokens": generated,
        "prefill_ms": 10.0 * (prompt - reused),
        "decode_ms": decode_ms,
    }


def run_at(name: str, line: int, column: int, *samples: RequestSample) -> PositionRun:
    """A position at one-based `line` and `column`, as reports show it."""
    file = SourceFile(Path("/w") / name, name, "python")
    position = CursorPosition(file, 0, line - 1, column - 1, column, keystrokes=2)
    return PositionRun(position, samples)


def sample(
    keystroke: int, status: str, latency: float | None, text: str = "x", **fields: Any
) -> RequestSample:
    return RequestSample(keystroke, 0, 0, status, latency, text, **fields)


RUNS = [
    run_at(
        "a.py",
        3,
        10,
        sample(0, "answered", 400.0, stats=stats(100, 0, 4, 80.0), source="model"),
        sample(1, "cancelled", None, ""),
        sample(2, "answered", 50.0, stats=stats(101, 99, 4, 40.0), source="model"),
    ),
    run_at(
        "b.py",
        7,
        5,
        sample(0, "answered", 900.0, "", stats=stats(300, 0, 0, 0.0), source="model"),
        sample(1, "superseded", 700.0),
        # Declined: answered at once without running the model (nothing to do there).
        sample(2, "answered", 2.0, "", stats=stats(0, 0, 0, 0.0), source="model"),
    ),
]


def test_percentiles_are_nearest_rank() -> None:
    values = [float(v) for v in range(1, 21)]
    assert percentile(values, 50) == 10
    assert percentile(values, 90) == 18
    assert percentile(values, 99) == 20
    assert percentile([], 50) is None


def test_superseded_and_declined_answers_stay_out_of_latency() -> None:
    summary = summarize(RUNS, peak_rss_bytes=1024)
    assert summary.requests == 6
    assert summary.answered == 4
    assert (summary.superseded, summary.cancelled, summary.declined) == (1, 1, 1)
    assert summary.latency["all"].count == 3
    assert summary.latency["cold"].max == 900.0
    assert summary.latency["warm"].p50 == 50.0
    # The declined answer is an empty suggestion all the same: 2 empty of 4 answers.
    assert summary.empty == 2
    assert summary.empty_percent == 50.0
    assert summary.decode_ms_per_token == pytest.approx(120.0 / 8)
    assert summary.prefill_ms_per_token == pytest.approx(10.0)
    assert summary.kv_reuse_percent["warm"] == pytest.approx(100 * 99 / 101)
    assert summary.kv_reuse_percent["cold"] == 0.0
    assert summary.typing_through_hits == 0


def test_typing_through_is_counted_when_the_server_says_so() -> None:
    run = run_at("c.py", 1, 3, sample(0, "answered", 1.0, "rest", source="typing_through"))
    summary = summarize([run], None)
    assert summary.typing_through_hits == 1
    assert summary.latency["all"].count == 1


def test_budget_reads_units_groups_and_percentages() -> None:
    assert parse_budget("p50=300ms, p95=0.8s,cold.p99=2s,empty=40%") == (
        Limit("all", "p50", 300.0),
        Limit("all", "p95", 800.0),
        Limit("cold", "p99", 2000.0),
        Limit("all", "empty", 40.0),
    )


@pytest.mark.parametrize(
    ("spec", "complaint"),
    [
        ("p50=300", "give latency a unit"),
        ("p42=3ms", "unknown figure 'p42'"),
        ("p50", "write FIGURE=VALUE"),
        ("empty=4ms", "percentage"),
        ("", "empty"),
    ],
)
def test_budget_mistakes_are_explained(spec: str, complaint: str) -> None:
    with pytest.raises(BudgetError, match=complaint):
        parse_budget(spec)


def test_a_budget_violation_names_figure_value_budget_and_worst_positions() -> None:
    summary = summarize(RUNS, None)
    violations = check_budget(parse_budget("p50=100ms,max=5s,empty=10%"), RUNS, summary)
    assert [v.limit.figure for v in violations] == ["p50", "empty"]
    p50, empty = (v.message() for v in violations)
    assert p50 == (
        "p50 = 400 ms, over the budget of 100 ms; "
        "worst: b.py:7:3 (900 ms), a.py:3:8 (400 ms), a.py:3:10 (50 ms)"
    )
    assert empty == "empty = 50 %, over the budget of 10 %; worst: b.py:7:3, b.py:7:5"


def test_a_figure_with_nothing_measured_fails_the_budget() -> None:
    only_cold = [run_at("a.py", 1, 3, sample(0, "answered", 10.0))]
    [violation] = check_budget(parse_budget("warm.p50=1s"), only_cold, summarize(only_cold, None))
    assert violation.measured is None
    assert "warm.p50 = nothing measured" in violation.message()
