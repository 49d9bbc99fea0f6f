"""Turn quality results (JSON files written by run.py) into one Markdown table, a row a model.

python benchmarks/quality/report.py benchmarks/quality/results/*.json [--out table.md]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

COLUMNS = (
    "model",
    "line EM",
    "line pass@1",
    "multi EM",
    "multi pass@1",
    "empty floor line/multi",
    "held-out EM",
    "held-out edit sim",
    "warm p50/p90 ms",
    "cold p50 ms",
    "prompt tokens (median)",
    "suggestions/s",
    "size MB",
)


def _pct(value: object) -> str:
    return "–" if value is None else f"{float(value):.1%}"


def row(result: dict, model: dict) -> list[str]:
    suites = model["suites"]
    line = suites.get("humaneval-line", {})
    multi = suites.get("humaneval-multi", {})
    held = suites.get("heldout", {})
    warm = suites[model["warm_latency_suite"]]
    floor = result.get("empty_floor", {})
    tokens = [s["prompt_tokens_median"] for s in suites.values()]
    return [
        model["name"],
        _pct(line.get("exact_match")),
        _pct(line.get("pass_at_1")),
        _pct(multi.get("exact_match")),
        _pct(multi.get("pass_at_1")),
        f"{_pct(floor.get('humaneval-line'))} / {_pct(floor.get('humaneval-multi'))}",
        _pct(held.get("exact_match")),
        f"{held['edit_similarity']:.3f}" if held else "–",
        f"{warm['p50_ms']:.0f} / {warm['p90_ms']:.0f}",
        f"{model['cold_p50_ms']:.0f}",
        " / ".join(f"{t:.0f}" for t in tokens),
        f"{warm['suggestions_per_s']:.1f}",
        f"{model['size_mb']:.0f}",
    ]


def markdown(results: list[dict]) -> str:
    lines = [
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
    ]
    notes = []
    for result in results:
        for model in result["models"]:
            lines.append("| " + " | ".join(row(result, model)) + " |")
        counts = ", ".join(
            f"{suite} {s['tasks']}" for suite, s in result["models"][0]["suites"].items()
        )
        notes.append(
            f"{result['date']}: tasks {counts}; seed {result['seed']}; "
            f"warm latency and suggestions/s from {result['models'][0]['warm_latency_suite']}; "
            f"prompt tokens per suite; benchmark ran {result['runtime_s']:.0f} s"
        )
    return "\n".join(lines + [""] + [f"- {note}" for note in notes]) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="+", type=Path)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    table = markdown([json.loads(p.read_text(encoding="utf-8")) for p in args.results])
    if args.out:
        args.out.write_text(table, encoding="utf-8")
    print(table, end="")


if __name__ == "__main__":
    main()
