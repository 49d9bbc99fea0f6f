"""The `nexttoken bench` subcommand: its options, and the run from workspace to report.

`lsp_server/cli.py` only registers the subcommand; everything else is here. Imports stay light
at the top (the parser is built for every `nexttoken` call); the bench's own modules load when
it runs. Exit status: 0, within budget (or no budget); 3, over budget; 1, the bench could not
run (no server, no source files); 2, a usage error.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lsp_server.cli import EXIT_FAILURE, CliError, _positive_int

if TYPE_CHECKING:
    from lsp_server.bench.client import BenchClient
    from lsp_server.bench.figures import BenchSummary, Limit
    from lsp_server.bench.quality import Hole, HoleResult
    from lsp_server.bench.typist import PositionRun
    from lsp_server.bench.workspace import CursorPosition, SourceFile

EXIT_OVER_BUDGET = 3
# Asked for once before measuring, in a document of its own: the first answer pays for the
# model load and onnxruntime's first run, which no later keystroke does.
WARM_UP_FILE = "nexttoken-bench-warm-up.py"
WARM_UP_TEXT = 'def greet(name: str) -> str:\n    """Say hello."""\n    return '


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "workspace", nargs="?", default=".", metavar="WORKSPACE", help="default: the current folder"
    )
    parser.add_argument(
        "--positions", type=_positive_int, default=20, metavar="N", help="cursor positions (20)"
    )
    parser.add_argument(
        "--keystrokes",
        "-k",
        type=_positive_int,
        default=4,
        metavar="K",
        help="characters typed at each position, one request each (4)",
    )
    parser.add_argument(
        "--typing-ms",
        type=_non_negative_float,
        default=120.0,
        metavar="MS",
        help="pause between keystrokes; 120 ms is a brisk typist (120)",
    )
    parser.add_argument("--seed", type=int, default=0, help="for sampling positions or holes (0)")
    parser.add_argument(
        "--budget",
        metavar="SPEC",
        help="fail (exit 3) above e.g. p50=300ms,p95=800ms,p99=2s,empty=40%%; "
        "figures p50 p90 p95 p99 max, also as cold.p50 or warm.p99, and empty",
    )
    parser.add_argument("--json", type=Path, metavar="FILE", help="write the results as JSON")
    parser.add_argument(
        "--report", type=Path, metavar="FILE.html", help="write a self-contained HTML report"
    )
    parser.add_argument("--model", metavar="DIR", help="model folder for the server")
    parser.add_argument(
        "--server-cmd",
        metavar="CMD",
        help="start this language server instead of `nexttoken serve` (a shell-quoted line)",
    )
    parser.add_argument(
        "--timeout",
        type=_non_negative_float,
        default=120.0,
        metavar="S",
        help="longest wait for one answer before the server counts as hung (120)",
    )
    quality = parser.add_argument_group("quality testbed")
    quality.add_argument(
        "--quality",
        action="store_true",
        help="fill holes punched with tree-sitter instead of timing keystrokes",
    )
    quality.add_argument(
        "--holes", type=_positive_int, default=20, metavar="N", help="holes to fill (20)"
    )
    quality.add_argument(
        "--test-cmd",
        metavar="CMD",
        help='run this in a copy of the workspace per filled hole, e.g. "python -m pytest -x -q"',
    )
    quality.add_argument(
        "--test-timeout",
        type=_non_negative_float,
        default=600.0,
        metavar="S",
        help="longest run of the test command (600)",
    )


def _non_negative_float(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {value!r}") from None
    if number < 0:
        raise argparse.ArgumentTypeError(f"expected a number of at least 0, got {value}")
    return number


# -- the run ----------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> int:
    from lsp_server.bench.figures import BudgetError, parse_budget
    from lsp_server.bench.workspace import source_files

    workspace = Path(args.workspace).expanduser().resolve()
    if not workspace.is_dir():
        raise CliError(f"{args.workspace} is not a folder")
    limits = None
    if args.budget is not None:
        if args.quality:
            raise CliError("--budget gates the latency bench; it has no meaning with --quality")
        try:
            limits = parse_budget(args.budget)
        except BudgetError as exc:
            raise CliError(f"--budget: {exc}") from None
    if args.test_cmd and not args.quality:
        raise CliError("--test-cmd belongs to the quality testbed: add --quality")
    files = source_files(workspace)
    if not files:
        raise CliError(f"{workspace} holds no source files to type into", EXIT_FAILURE)
    if args.quality:
        return _run_quality(args, workspace, files)
    return _run_latency(args, workspace, files, limits)


def server_command(args: argparse.Namespace) -> list[str]:
    if args.server_cmd:
        return shlex.split(args.server_cmd)
    command = [sys.executable, "-m", "lsp_server", "serve"]
    return command + (["--model", args.model] if args.model else [])


def server_environment(args: argparse.Namespace) -> dict[str, str] | None:
    """For the default server: the bench's own code, wherever it was imported from (a checkout
    run in place imports from its folder, which the server, started elsewhere, would not)."""
    if args.server_cmd:
        return None
    import lsp_server

    home = str(Path(lsp_server.__file__).resolve().parent.parent)
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [home, path]))}


def canonical_command(args: argparse.Namespace, workspace: Path) -> list[str]:
    """The command line that repeats this run, every option spelled out."""
    words = ["nexttoken", "bench", str(workspace), "--seed", str(args.seed)]
    if args.quality:
        words += ["--quality", "--holes", str(args.holes)]
        if args.test_cmd:
            words += ["--test-cmd", args.test_cmd, "--test-timeout", f"{args.test_timeout:g}"]
    else:
        words += ["--positions", str(args.positions), "--keystrokes", str(args.keystrokes)]
        words += ["--typing-ms", f"{args.typing_ms:g}"]
        if args.budget:
            words += ["--budget", args.budget]
    for flag, value in (("--model", args.model), ("--server-cmd", args.server_cmd)):
        if value:
            words += [flag, value]
    return words


@dataclass(frozen=True)
class Started:
    """A started, initialized server that has answered once, with its index's first pass
    over (or given up on)."""

    client: BenchClient
    warmup_ms: float  # the first answer's latency: model load and warm-up
    index: dict[str, Any] | None  # `nexttoken/indexStatus` and the wait; None: not our server


async def _start(args: argparse.Namespace, workspace: Path) -> Started:
    from lsp_server.bench.client import BenchClient, ServerFailed

    client = BenchClient()
    try:
        await client.start(server_command(args), workspace, server_environment(args))
        uri = client.open(workspace / WARM_UP_FILE, WARM_UP_TEXT, "python")
        lines = WARM_UP_TEXT.split("\n")
        request = client.request_inline(uri, len(lines) - 1, len(lines[-1]))
        await request.answer(max(args.timeout, 600.0))  # a first run may build the model
        client.close_document(uri)
        if client.errors:
            raise ServerFailed(f"the server reported: {client.errors[0]}")
        # Measure the steady state an editor sees: a request made while the index still fills
        # gets other context than the next keystroke's, which then reuses no KV cache.
        waited = time.perf_counter()
        index = await client.index_status(max(args.timeout, 600.0))
    except BaseException:
        await client.close()
        raise
    if index is not None:
        index["wait_ms"] = round((time.perf_counter() - waited) * 1000, 1)
        for folder in index.get("roots", []):
            if folder.get("state") in ("indexing", "failed"):
                problem = folder.get("failure") or "its first pass did not end in time"
                print(
                    f"nexttoken bench: the index of {folder.get('root')} is {folder['state']} "
                    f"({problem}); measuring anyway",
                    file=sys.stderr,
                )
    return Started(client, request.latency_ms or 0.0, index)


def _failed(exc: Exception, client: BenchClient | None = None) -> CliError:
    note = client.stderr_note() if client is not None else ""
    return CliError(f"{exc}{note}", EXIT_FAILURE)


def _run_latency(
    args: argparse.Namespace,
    workspace: Path,
    files: Sequence[SourceFile],
    limits: tuple[Limit, ...] | None,
) -> int:
    from lsp_server.bench.client import ServerFailed
    from lsp_server.bench.figures import check_budget, summarize
    from lsp_server.bench.machine import describe_machine, load_average
    from lsp_server.bench.report import budget_json, latency_document
    from lsp_server.bench.workspace import sample_positions

    positions = sample_positions(files, args.positions, args.keystrokes, args.seed)
    if not positions:
        raise CliError(
            f"no line in {workspace}'s source files has {args.keystrokes} characters to type",
            EXIT_FAILURE,
        )
    load = load_average()
    try:
        runs, started, model, peak_rss = asyncio.run(_latency_session(args, workspace, positions))
    except ServerFailed as exc:
        raise _failed(exc) from None
    summary = summarize(runs, peak_rss)
    violations = check_budget(limits, runs, summary) if limits else []
    document = latency_document(
        command=canonical_command(args, workspace),
        workspace=workspace,
        settings={
            "positions": args.positions,
            "keystrokes": args.keystrokes,
            "typing_ms": args.typing_ms,
            "seed": args.seed,
            "timeout_s": args.timeout,
            "server_command": server_command(args),
        },
        machine=describe_machine(model, load),
        warmup_ms=started.warmup_ms,
        index=started.index,
        runs=runs,
        summary=summary,
        budget=budget_json(limits, violations),
    )
    _write_outputs(args, document)
    print(describe_latency(args, runs, summary, started))
    if violations:
        for violation in violations:
            print(f"nexttoken bench: over budget: {violation.message()}", file=sys.stderr)
        return EXIT_OVER_BUDGET
    return 0


async def _latency_session(
    args: argparse.Namespace, workspace: Path, positions: Sequence[CursorPosition]
) -> tuple[list[PositionRun], Started, dict[str, Any] | None, int | None]:
    from lsp_server.bench.client import ServerFailed
    from lsp_server.bench.progress import Progress
    from lsp_server.bench.typist import play_position
    from lsp_server.bench.workspace import read_text

    started = await _start(args, workspace)
    client = started.client
    progress = Progress(len(positions), "positions")
    runs: list[PositionRun] = []
    try:
        texts: dict[Path, str] = {}
        sequence = 0
        for position in positions:
            path = position.file.path
            if path not in texts:
                texts[path] = read_text(position.file) or ""
            try:
                run, sequence = await play_position(
                    client, position, texts[path], args.typing_ms, args.timeout, sequence
                )
            except RuntimeError as exc:  # pygls' "Client has been stopped": the server died
                raise ServerFailed(f"the server went away: {exc}{client.stderr_note()}") from None
            runs.append(run)
            progress.step(_position_note(run))
        report = await client.last_stats()
        peak_rss = client.peak_rss_bytes()
    finally:
        await client.close()
    return runs, started, (report or {}).get("model"), peak_rss


def _position_note(run: PositionRun) -> str:
    shown = [s for s in run.samples if s.shown and s.latency_ms is not None]
    latencies = ", ".join(f"{s.latency_ms:.0f}" for s in shown)
    return f"{run.position.label}: answers in {latencies or '-'} ms"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} %"


def describe_latency(
    args: argparse.Namespace,
    runs: Sequence[PositionRun],
    summary: BenchSummary,
    started: Started,
) -> str:
    """The summary printed on stdout."""
    files = {run.position.file.relative: run.position.file.language_id for run in runs}
    counts = Counter(files.values()).most_common()
    languages = ", ".join(f"{name} {count}" for name, count in counts)
    lines = [
        f"nexttoken bench: {summary.positions} positions in {len(files)} files ({languages}); "
        f"{args.keystrokes} keystrokes each, one every {args.typing_ms:g} ms",
        f"{'latency (ms)':<14}{'count':>7}{'p50':>8}{'p90':>8}{'p95':>8}{'p99':>8}{'max':>8}"
        f"{'KV reuse':>10}",
    ]
    for name in ("all", "cold", "warm"):
        group = summary.latency[name]
        lines.append(
            f"  {name:<12}{group.count:>7}{_ms(group.p50):>8}{_ms(group.p90):>8}"
            f"{_ms(group.p95):>8}{_ms(group.p99):>8}{_ms(group.max):>8}"
            f"{_percent(summary.kv_reuse_percent[name]):>10}"
        )
    rss = summary.peak_rss_bytes
    decode, prefill = summary.decode_ms_per_token, summary.prefill_ms_per_token
    lines += [
        f"requests: {summary.requests} sent, {summary.answered} answered, {summary.superseded} "
        f"superseded by the next keystroke, {summary.cancelled} cancelled, "
        f"{summary.errors} errors",
        f"empty suggestions: {summary.empty} of {summary.answered} answers "
        f"({_percent(summary.empty_percent)}), {summary.declined} declined without running "
        "the model",
        f"decode {'-' if decode is None else f'{decode:.1f}'} ms per token; prefill "
        f"{'-' if prefill is None else f'{prefill:.2f}'} ms per uncached prompt token; "
        f"stats reported for {summary.stats_reported} of {summary.answered} answers",
        f"typing-through hits: {summary.typing_through_hits}",
        f"server peak RSS: {'-' if rss is None else f'{rss / 2**20:,.0f} MiB'}; first answer "
        f"(model load, warm-up): {_ms(started.warmup_ms)} ms",
    ]
    if started.index is not None:
        lines.append(describe_index(started.index))
    return "\n".join(lines)


def _write_outputs(args: argparse.Namespace, document: dict[str, Any]) -> None:
    from lsp_server.bench.report import write_html, write_json

    try:
        if args.json:
            write_json(args.json, document)
        if args.report:
            write_html(args.report, document)
    except OSError as exc:
        raise CliError(f"cannot write the report: {exc}", EXIT_FAILURE) from None


# -- quality --------------------------------------------------------------------------------------


def _run_quality(args: argparse.Namespace, workspace: Path, files: Sequence[SourceFile]) -> int:
    from lsp_server.bench.client import ServerFailed
    from lsp_server.bench.machine import describe_machine, load_average
    from lsp_server.bench.progress import Progress
    from lsp_server.bench.quality import hole_languages, run_tests_with_fills, sample_holes
    from lsp_server.bench.report import quality_document

    holes = sample_holes(files, args.holes, args.seed)
    if not holes:
        raise CliError(
            f"no holes to punch: {workspace} has no source file that parses cleanly in a "
            f"language with a grammar installed ({', '.join(hole_languages())})",
            EXIT_FAILURE,
        )
    load = load_average()
    try:
        fills, model, index = asyncio.run(_quality_session(args, workspace, holes))
    except ServerFailed as exc:
        raise _failed(exc) from None
    tests = None
    if args.test_cmd:
        progress = Progress(len(fills), "test runs")
        tests = run_tests_with_fills(
            workspace,
            fills,
            args.test_cmd,
            args.test_timeout,
            lambda hole, run: progress.step(
                f"{hole.label}: {'passed' if run.passed else 'failed'} in {run.seconds:.1f} s"
            ),
        )
    results = list(tests.results) if tests else [result for result, _ in fills]
    document = quality_document(
        command=canonical_command(args, workspace),
        workspace=workspace,
        settings={
            "holes": args.holes,
            "seed": args.seed,
            "timeout_s": args.timeout,
            "server_command": server_command(args),
            "test_command": args.test_cmd,
            "test_timeout_s": args.test_timeout,
        },
        machine=describe_machine(model, load),
        results=results,
        tests=tests,
        test_command=args.test_cmd,
        index=index,
    )
    _write_outputs(args, document)
    print(describe_quality(document))
    return 0


async def _quality_session(
    args: argparse.Namespace, workspace: Path, holes: Sequence[Hole]
) -> tuple[list[tuple[HoleResult, str]], dict[str, Any] | None, dict[str, Any] | None]:
    from lsp_server.bench.progress import Progress
    from lsp_server.bench.quality import fill_holes

    started = await _start(args, workspace)
    client = started.client
    progress = Progress(len(holes), "holes")
    try:
        fills = await fill_holes(
            client,
            holes,
            args.timeout,
            lambda result: progress.step(
                f"{result.hole.label} ({result.hole.kind}): "
                f"{'exact' if result.exact else f'similarity {result.similarity:.2f}'}"
            ),
        )
        report = await client.last_stats()
    finally:
        await client.close()
    return fills, (report or {}).get("model"), started.index


def describe_index(index: dict[str, Any]) -> str:
    files = index.get("files")
    counted = f", {files} files" if isinstance(files, int) else ""
    return f"workspace index: {index.get('state')}{counted}; waited {_ms(index.get('wait_ms'))} ms"


def describe_quality(document: dict[str, Any]) -> str:
    summary = document["summary"]
    files = {hole["file"] for hole in document["holes"]}
    lines = [
        f"nexttoken bench --quality: {summary['all']['holes']} holes ({summary['line']['holes']} "
        f"line, {summary['block']['holes']} block) in {len(files)} files",
        f"{'holes':<10}{'count':>7}{'exact':>10}{'edit sim.':>11}{'parses':>10}{'empty':>7}"
        f"{'p50 ms':>8}",
    ]
    for kind in ("all", "line", "block"):
        row = summary[kind]
        similarity = "-" if row["similarity_mean"] is None else f"{row['similarity_mean']:.3f}"
        lines.append(
            f"  {kind:<8}{row['holes']:>7}{_percent(row['exact_percent']):>10}{similarity:>11}"
            f"{_percent(row['syntax_ok_percent']):>10}{row['empty']:>7}"
            f"{_ms(row['latency_ms']['p50']):>8}"
        )
    if document.get("index") is not None:
        lines.append(describe_index(document["index"]))
    tests = summary.get("tests")
    if tests:
        baseline = "passed" if tests["baseline_passed"] else "FAILED"
        lines.append(
            f"tests ({tests['command']}): untouched copy {baseline}; {tests['passed']} of "
            f"{tests['runs']} filled copies passed ({_percent(tests['pass_percent'])})"
        )
    return "\n".join(lines)
