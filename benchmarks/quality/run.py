"""Run the quality benchmark: complete every task through the server's pipeline, check
HumanEval completions in the sandbox, and write a JSON result (per-task records included) and
its Markdown table beside it.

    python benchmarks/quality/run.py --models ~/.cache/nexttoken/models/smollm2 \
        [--suites humaneval-line,humaneval-multi,heldout] [--limit N] [--seed S] \
        --out benchmarks/quality/results/smollm2.json

Tasks of a problem (or file) run one after another, so each prompt reuses the KV cache of the
one before as it does while typing: that latency is "warm". A seeded sample of single-line tasks
then runs again with the cache emptied first: "cold". With several models, each group of tasks
runs on every model in turn, so machine noise hits them alike.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import platform
import random
import statistics
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from itertools import groupby
from pathlib import Path

if not __package__:  # run as a file: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.quality.report import markdown
from benchmarks.quality.sandbox import Limits, run_programs
from benchmarks.quality.tasks import (
    HELDOUT_HOLES,
    SUITES,
    Problem,
    Task,
    head_commit,
    heldout_tasks,
    humaneval_line_tasks,
    humaneval_multi_tasks,
    load_problems,
    stratified,
)
from completion.pipeline import CompletionPipeline, PipelineSettings
from completion.positions import code_units
from completion.request import CompletionRequest, Position

REPO = Path(__file__).resolve().parents[2]
# A single-line task wants one line: the cursor is on a blank line, which the pipeline
# completes as a block, so the block is capped at one line of code (a setting, as a user could).
# The wall-clock deadline is off: it cuts blocks short when other work loads the machine, and
# quality must not depend on that (single lines end at their newline either way).
SUITE_SETTINGS = {
    "humaneval-line": PipelineSettings(max_block_lines=1, deadline_ms=None),
    "humaneval-multi": PipelineSettings(deadline_ms=None),
    "heldout": PipelineSettings(deadline_ms=None),
}
COLD_SAMPLE = 30


@dataclass
class Record:
    """One completion of one task by one model."""

    suite: str
    id: str
    text: str
    exact: bool
    similarity: float
    ms: float
    prompt_tokens: int
    reused_tokens: int
    generated_tokens: int
    stop: str
    passed: bool | None = None  # HumanEval suites only

    def row(self) -> dict[str, object]:
        return {
            "suite": self.suite,
            "id": self.id,
            "text": self.text,
            "em": self.exact,
            "pass": self.passed,
            "sim": round(self.similarity, 4),
            "ms": round(self.ms, 1),
            "prompt": self.prompt_tokens,
            "reused": self.reused_tokens,
            "gen": self.generated_tokens,
            "stop": self.stop,
        }


def code_lines(text: str) -> list[str]:
    """The text's non-blank lines, stripped: what exact match compares."""
    return [line.strip() for line in text.split("\n") if line.strip()]


def complete(pipeline: CompletionPipeline, task: Task) -> Record:
    line_text = task.document[task.offset - task.column : task.offset]
    position = Position(task.line, code_units(line_text))
    pipeline.settings = SUITE_SETTINGS[task.suite]
    result = pipeline.complete(CompletionRequest(task.document, position, path=task.path))
    text = result.insert_text
    return Record(
        suite=task.suite,
        id=task.task_id,
        text=text,
        exact=code_lines(text) == code_lines(task.target),
        similarity=difflib.SequenceMatcher(None, text, task.target).ratio(),
        ms=result.stats.total_ms,
        prompt_tokens=result.stats.prompt_tokens,
        reused_tokens=result.stats.reused_tokens,
        generated_tokens=result.stats.generated_tokens,
        stop=result.stats.stop_reason,
    )


def build_tasks(suites: list[str], limit: int | None, seed: int, repo: Path) -> list[Task]:
    problems = load_problems()
    builders = {
        "humaneval-line": lambda: humaneval_line_tasks(problems),
        "humaneval-multi": lambda: humaneval_multi_tasks(problems, seed),
        "heldout": lambda: heldout_tasks(repo, HELDOUT_HOLES, seed),
    }
    tasks: list[Task] = []
    for suite in suites:
        built = builders[suite]()
        tasks += stratified(built, limit, seed) if limit else built
    return tasks


def progress(done: int, total: int, started: float) -> None:
    if done % 50 == 0 or done == total:
        elapsed = time.perf_counter() - started
        print(f"  {done}/{total} completions, {elapsed:.0f} s", file=sys.stderr, flush=True)


def generate(
    pipelines: dict[str, CompletionPipeline], tasks: list[Task]
) -> dict[str, list[Record]]:
    records: dict[str, list[Record]] = {name: [] for name in pipelines}
    for pipeline in pipelines.values():
        complete(pipeline, tasks[0])  # load and warm up; not counted
    started, done, total = time.perf_counter(), 0, len(tasks) * len(pipelines)
    for _, group in groupby(tasks, key=lambda t: (t.suite, t.group)):
        members = list(group)
        for name, pipeline in pipelines.items():
            for task in members:
                records[name].append(complete(pipeline, task))
                done += 1
                progress(done, total, started)
    return records


def cold_latency(
    pipelines: dict[str, CompletionPipeline], tasks: list[Task], seed: int
) -> dict[str, list[float]]:
    """Milliseconds per completion with the KV cache emptied first, on a seeded sample."""
    sample = random.Random(seed).sample(tasks, min(COLD_SAMPLE, len(tasks)))
    times: dict[str, list[float]] = {name: [] for name in pipelines}
    for task in sample:
        for name, pipeline in pipelines.items():
            pipeline.engine.rewind(0)
            times[name].append(complete(pipeline, task).ms)
    return times


def check(
    tasks: list[Task], records: dict[str, list[Record]], problems: dict[str, Problem], workers: int
) -> dict[str, object]:
    """Runs each HumanEval completion's tests (pass@1, greedy), and the reference checks: the
    canonical solution and the empty middle (the floor). Sets `passed` on the records."""
    checked = [i for i, task in enumerate(tasks) if task.suite != "heldout"]
    if not checked:
        return {}

    def program(index: int, middle: str) -> str:
        task = tasks[index]
        return problems[task.group].program(task.filled(middle))

    sources = [program(i, tasks[i].target) for i in checked]
    sources += [program(i, "") for i in checked]
    for rows in records.values():
        sources += [program(i, rows[i].text) for i in checked]
    outcomes = run_programs(sources, Limits(), workers)
    canonical, empty = outcomes[: len(checked)], outcomes[len(checked) : 2 * len(checked)]
    for n, rows in enumerate(records.values()):
        start = (2 + n) * len(checked)
        for i, outcome in zip(checked, outcomes[start : start + len(checked)], strict=True):
            rows[i].passed = outcome.passed
    suites = sorted({tasks[i].suite for i in checked})

    def rate(results: list, suite: str) -> float:
        chosen = [
            o.passed for i, o in zip(checked, results, strict=True) if tasks[i].suite == suite
        ]
        return sum(chosen) / len(chosen)

    return {
        "canonical_pass": {s: rate(canonical, s) for s in suites},
        "empty_floor": {s: rate(empty, s) for s in suites},
        "timeouts": sum(o.status == "timeout" for o in outcomes),
    }


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def summary(rows: list[Record]) -> dict[str, object]:
    ms = [r.ms for r in rows]
    passed = [r.passed for r in rows if r.passed is not None]
    return {
        "tasks": len(rows),
        "exact_match": sum(r.exact for r in rows) / len(rows),
        "pass_at_1": sum(passed) / len(passed) if passed else None,
        "edit_similarity": statistics.mean(r.similarity for r in rows),
        "empty_suggestions": sum(not r.text.strip() for r in rows) / len(rows),
        "p50_ms": statistics.median(ms),
        "p90_ms": percentile(ms, 0.9),
        "prompt_tokens_median": statistics.median(r.prompt_tokens for r in rows),
        "suggestions_per_s": len(rows) / (sum(ms) / 1000),
        "stops": dict(Counter(r.stop for r in rows).most_common()),
    }


def folder_mb(folder: Path) -> float:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 1e6


def by_suite(rows: list[Record]) -> Iterator[tuple[str, list[Record]]]:
    for suite in SUITES:
        chosen = [r for r in rows if r.suite == suite]
        if chosen:
            yield suite, chosen


def write(result: dict[str, object], out: Path) -> None:
    """The JSON with one line per task record, so two runs diff line by line."""
    models = result.pop("models")
    head = json.dumps(result, indent=1)[:-2]
    parts = []
    for model in models:
        tasks = model.pop("tasks")
        body = json.dumps(model, indent=1)[:-2]
        lines = ",\n".join("   " + json.dumps(t, ensure_ascii=False) for t in tasks)
        parts.append(f'{body},\n  "tasks": [\n{lines}\n  ]\n }}')
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(f'{head},\n "models": [\n' + ",\n".join(parts) + "\n ]\n}\n", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", required=True, help="comma-separated model folders")
    parser.add_argument("--suites", default=",".join(SUITES))
    parser.add_argument("--limit", type=int, default=None, help="seeded subset per suite")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2, help="checks run in parallel")
    parser.add_argument("--repo", type=Path, default=REPO, help="held-out repository")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    started = time.perf_counter()
    load_before = os.getloadavg()
    suites = args.suites.split(",")
    unknown = set(suites) - set(SUITES)
    if unknown:
        parser.error(f"unknown suites {sorted(unknown)}; known: {', '.join(SUITES)}")
    tasks = build_tasks(suites, args.limit, args.seed, args.repo)
    folders = [Path(m).expanduser() for m in args.models.split(",") if m]
    pipelines = {folder.name: CompletionPipeline.load(folder) for folder in folders}
    print(f"{len(tasks)} tasks x {len(pipelines)} models", file=sys.stderr)
    records = generate(pipelines, tasks)
    single = [t for t in tasks if t.suite == "humaneval-line"] or tasks
    cold = cold_latency(pipelines, single, args.seed)
    gen_s = time.perf_counter() - started
    print(f"generation done in {gen_s:.0f} s; checking", file=sys.stderr)
    checks = check(tasks, records, load_problems(), args.workers)
    result: dict[str, object] = {
        "benchmark": "nexttoken quality",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(sys.argv),
        "host": {"cpus": os.cpu_count(), "machine": platform.machine(), "python": sys.version},
        "seed": args.seed,
        "limit": args.limit,
        "suites": suites,
        "heldout_commit": head_commit(args.repo) if "heldout" in suites else None,
        **checks,
        # Other work on the machine slows every completion alike: read latency with this.
        "load_average": {"start": load_before, "end": os.getloadavg()},
        "runtime_s": round(time.perf_counter() - started, 1),
        "generation_s": round(gen_s, 1),
        "models": [
            {
                "name": name,
                "path": str(folder),
                "size_mb": round(folder_mb(folder), 1),
                "warm_latency_suite": single[0].suite,
                "cold_ms": [round(ms, 1) for ms in cold[name]],
                "cold_p50_ms": statistics.median(cold[name]),
                "suites": {suite: summary(rows) for suite, rows in by_suite(records[name])},
                "tasks": [r.row() for r in records[name]],
            }
            for folder, name in zip(folders, pipelines, strict=True)
        ],
    }
    table = markdown([result])
    write(result, args.out)
    args.out.with_suffix(".md").write_text(table, encoding="utf-8")
    print(table)


if __name__ == "__main__":
    main()
