"""From request samples to the figures a bench reports, and the budget that gates on them.

Latency figures count the answers an editor would show: neither superseded by a newer
keystroke nor declined by the server (answered at once, without running the model, because
there is nothing to suggest: the cursor mid-word or in a comment). Declined answers still count
as empty suggestions. Percentiles are nearest-rank: p99 of 20 samples is the largest, a value
that was measured rather than interpolated.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from lsp_server.bench.typist import TYPING_THROUGH, PositionRun, RequestSample

LATENCY_FIGURES = ("p50", "p90", "p95", "p99", "max")
GROUPS = ("all", "cold", "warm")
WORST_SHOWN = 3


def percentile(values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True)
class LatencySummary:
    count: int
    p50: float | None
    p90: float | None
    p95: float | None
    p99: float | None
    max: float | None
    mean: float | None

    @classmethod
    def of(cls, values: Sequence[float]) -> LatencySummary:
        return cls(
            count=len(values),
            p50=percentile(values, 50),
            p90=percentile(values, 90),
            p95=percentile(values, 95),
            p99=percentile(values, 99),
            max=max(values) if values else None,
            mean=sum(values) / len(values) if values else None,
        )

    def figure(self, name: str) -> float | None:
        return getattr(self, name)


def declined(sample: RequestSample) -> bool:
    """Answered with nothing and without running the model: the server saw nothing to do."""
    stats = sample.stats
    return (
        sample.shown
        and not sample.suggestion
        and stats is not None
        and sample.source != TYPING_THROUGH
        and not stats.get("prompt_tokens")
    )


def counted(sample: RequestSample) -> bool:
    """In the latency figures: shown by an editor, and not declined."""
    return sample.shown and sample.latency_ms is not None and not declined(sample)


@dataclass(frozen=True)
class Located:
    """A sample with the position it was typed at."""

    run: PositionRun
    sample: RequestSample

    @property
    def label(self) -> str:
        """file:line:col of the request (one-based, column in characters)."""
        position = self.run.position
        column = position.column - (position.keystrokes - self.sample.keystroke)
        return f"{position.file.relative}:{position.line + 1}:{column}"


def located(runs: Iterable[PositionRun]) -> list[Located]:
    return [Located(run, sample) for run in runs for sample in run.samples]


@dataclass(frozen=True)
class BenchSummary:
    positions: int
    requests: int
    answered: int
    superseded: int
    cancelled: int
    errors: int
    declined: int
    empty: int
    empty_percent: float | None  # of answered requests
    latency: dict[str, LatencySummary]  # "all", "cold", "warm"
    decode_ms_per_token: float | None
    prefill_ms_per_token: float | None  # per prompt token not found in the KV cache
    kv_reuse_percent: dict[str, float | None]  # reused prompt tokens, "all", "cold", "warm"
    typing_through_hits: int
    stats_reported: int  # answered requests the server reported stats for
    peak_rss_bytes: int | None


def summarize(runs: Sequence[PositionRun], peak_rss_bytes: int | None) -> BenchSummary:
    samples = [item.sample for item in located(runs)]
    answered = [s for s in samples if s.shown]
    measured = [s for s in samples if counted(s)]
    groups = {
        "all": measured,
        "cold": [s for s in measured if s.cold],
        "warm": [s for s in measured if not s.cold],
    }
    with_stats = [s.stats for s in measured if s.stats is not None]
    decoded = [st for st in with_stats if st.get("generated_tokens")]
    prefilled = [st for st in with_stats if st["prompt_tokens"] > st["reused_tokens"]]
    empty = sum(1 for s in answered if s.empty)
    return BenchSummary(
        positions=len(runs),
        requests=len(samples),
        answered=len(answered),
        superseded=sum(1 for s in samples if s.status == "superseded"),
        cancelled=sum(1 for s in samples if s.status == "cancelled"),
        errors=sum(1 for s in samples if s.status == "error"),
        declined=sum(1 for s in samples if declined(s)),
        empty=empty,
        empty_percent=100 * empty / len(answered) if answered else None,
        latency={
            name: LatencySummary.of([s.latency_ms for s in group if s.latency_ms is not None])
            for name, group in groups.items()
        },
        decode_ms_per_token=_ratio(decoded, "decode_ms", lambda st: st["generated_tokens"]),
        prefill_ms_per_token=_ratio(
            prefilled, "prefill_ms", lambda st: st["prompt_tokens"] - st["reused_tokens"]
        ),
        kv_reuse_percent={name: _reuse(group) for name, group in groups.items()},
        typing_through_hits=sum(1 for s in answered if s.source == TYPING_THROUGH),
        stats_reported=sum(1 for s in answered if s.stats is not None),
        peak_rss_bytes=peak_rss_bytes,
    )


def _ratio(
    stats: list[dict[str, Any]], numerator: str, denominator: Callable[[dict[str, Any]], float]
) -> float | None:
    total = sum(denominator(st) for st in stats)
    return sum(st[numerator] for st in stats) / total if total else None


def _reuse(samples: Sequence[RequestSample]) -> float | None:
    stats = [s.stats for s in samples if s.stats is not None]
    prompt = sum(st["prompt_tokens"] for st in stats)
    return 100 * sum(st["reused_tokens"] for st in stats) / prompt if prompt else None


# -- budget -------------------------------------------------------------------------------------


class BudgetError(ValueError):
    """A --budget that cannot be read; the message says what is wrong."""


@dataclass(frozen=True)
class Limit:
    group: str  # "all", "cold" or "warm"; "all" for the empty rate
    figure: str  # one of LATENCY_FIGURES, or "empty"
    value: float  # milliseconds, or percent for "empty"

    @property
    def name(self) -> str:
        return self.figure if self.group == "all" else f"{self.group}.{self.figure}"

    def format(self, value: float) -> str:
        return f"{value:g} %" if self.figure == "empty" else f"{value:g} ms"


@dataclass(frozen=True)
class Violation:
    limit: Limit
    measured: float | None  # None: nothing was measured for this figure
    worst: tuple[str, ...]  # "file:line:col (detail)", worst first

    def message(self) -> str:
        value = "nothing measured" if self.measured is None else self.limit.format(self.measured)
        text = (
            f"{self.limit.name} = {value}, over the budget of {self.limit.format(self.limit.value)}"
        )
        if self.worst:
            text += "; worst: " + ", ".join(self.worst)
        return text


_LIMIT = re.compile(r"^(?:(cold|warm)\.)?([a-z0-9]+)=([0-9]*\.?[0-9]+)\s*(ms|s|%)?$")


def parse_budget(spec: str) -> tuple[Limit, ...]:
    """`p50=300ms,p95=800ms,cold.p99=2s,empty=40%` as limits."""
    limits = []
    for part in filter(None, (piece.strip() for piece in spec.split(","))):
        match = _LIMIT.match(part.replace(" ", ""))
        if match is None:
            raise BudgetError(
                f"cannot read {part!r}: write FIGURE=VALUE, e.g. p95=800ms or empty=40%"
            )
        group, figure, number, unit = match.groups()
        value = float(number)
        if figure == "empty":
            if group or unit not in (None, "%"):
                raise BudgetError(f"{part!r}: the empty rate is a percentage, e.g. empty=40%")
        elif figure in LATENCY_FIGURES:
            if unit not in ("ms", "s"):
                raise BudgetError(f"{part!r}: give latency a unit, ms or s (e.g. {figure}=500ms)")
            value = value * 1000 if unit == "s" else value
        else:
            known = ", ".join((*LATENCY_FIGURES, "empty"))
            raise BudgetError(f"{part!r}: unknown figure {figure!r} (known: {known})")
        limits.append(Limit(group or "all", figure, value))
    if not limits:
        raise BudgetError("the budget is empty: write e.g. p50=300ms,p95=800ms")
    return tuple(limits)


def check_budget(
    limits: Sequence[Limit], runs: Sequence[PositionRun], summary: BenchSummary
) -> list[Violation]:
    everything = located(runs)
    violations = []
    for limit in limits:
        if limit.figure == "empty":
            measured = summary.empty_percent
            worst = tuple(item.label for item in everything if item.sample.empty)[:WORST_SHOWN]
        else:
            measured = summary.latency[limit.group].figure(limit.figure)
            in_group = [
                item
                for item in everything
                if counted(item.sample)
                and (limit.group == "all" or item.sample.cold == (limit.group == "cold"))
            ]
            in_group.sort(key=lambda item: item.sample.latency_ms or 0.0, reverse=True)
            worst = tuple(
                f"{item.label} ({item.sample.latency_ms:.0f} ms)" for item in in_group[:WORST_SHOWN]
            )
        if measured is None or measured > limit.value:
            violations.append(Violation(limit, measured, worst))
    return violations
