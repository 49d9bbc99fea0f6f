"""`nexttoken bench --quality`: holes punched into real files, filled through the server.

A hole is chosen with tree-sitter, so it is code a person writes in one go: the rest of a
one-line statement ("line" holes), or the whole body of a block of two to eight lines ("block"
holes). The file is opened with the hole cut out, the server is asked for a suggestion at the
hole's start, and the suggestion is applied as an editor applies it (its range replaced by its
text). Each fill is scored by exact match (trailing whitespace aside), edit similarity
(1 - Levenshtein distance / longer length) and syntax validity (the filled file parses without
errors; only files that parse cleanly get holes). With a test command, each filled file is
also put into a copy of the workspace and the repository's own tests are run, as llm-ls's
testbed does.

Which grammar parses a language comes from completion.languages; which node types make good
holes is the bench's own table below, a question about evaluation, not about completing code.
"""

from __future__ import annotations

import random
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from tree_sitter import Language, Node, Parser

from completion.languages import LANGUAGES, language_for
from completion.positions import UTF16, offset_at, position_at
from completion.request import Position
from lsp_server.bench.client import BenchClient
from lsp_server.bench.workspace import (
    SourceFile,
    is_word_char,
    read_text,
    rotation,
    workspace_files,
)

BLOCK_LINES = (2, 8)  # a block hole spans this many lines, both ends included
BLOCK_CHARS = 400
LINE_HOLE_MIN_CHARS = 4


@dataclass(frozen=True)
class HoleNodes:
    """Which syntax nodes make holes in one language: statements on one line, block bodies."""

    line: frozenset[str]
    block: frozenset[str]


_JS_NODES = HoleNodes(
    frozenset({"expression_statement", "return_statement", "lexical_declaration"}),
    frozenset({"statement_block"}),
)
# Keyed by the language names of completion.languages, which also says which grammar parses
# each language: one row here per language there that the bench punches holes into.
HOLE_NODES: dict[str, HoleNodes] = {
    "python": HoleNodes(
        frozenset(
            {
                "expression_statement",
                "return_statement",
                "assert_statement",
                "raise_statement",
                "import_from_statement",
            }
        ),
        frozenset({"block"}),
    ),
    "javascript": _JS_NODES,
    "typescript": _JS_NODES,
    "tsx": _JS_NODES,
    "rust": HoleNodes(frozenset({"expression_statement", "let_declaration"}), frozenset({"block"})),
    "go": HoleNodes(
        frozenset({"expression_statement", "short_var_declaration", "return_statement"}),
        frozenset({"block"}),
    ),
    "java": HoleNodes(
        frozenset({"expression_statement", "local_variable_declaration", "return_statement"}),
        frozenset({"block"}),
    ),
    "c": HoleNodes(
        frozenset({"expression_statement", "declaration", "return_statement"}),
        frozenset({"compound_statement"}),
    ),
}


@dataclass(frozen=True)
class HoleGrammar:
    language: Language
    nodes: HoleNodes

    def parser(self) -> Parser:
        return Parser(self.language)


def grammar_for(language_id: str) -> HoleGrammar | None:
    """None for a language without hole rules, or whose grammar wheel is not installed (only
    Python's is a dependency)."""
    row = language_for(language_id)
    if row is None or row.name not in HOLE_NODES:
        return None
    language = row.grammar()
    return HoleGrammar(language, HOLE_NODES[row.name]) if language is not None else None


def hole_languages() -> list[str]:
    """Language ids that get holes here."""
    return [
        language_id
        for row in LANGUAGES
        if row.name in HOLE_NODES and row.grammar() is not None
        for language_id in row.language_ids
    ]


# -- holes --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Hole:
    file: SourceFile
    kind: str  # "line" or "block"
    start: int  # offset of the hole's start in the file's text: the cursor
    end: int
    line: int  # zero-based, of the start
    character: int  # UTF-16 code units
    column: int  # one-based, in characters

    @property
    def label(self) -> str:
        return f"{self.file.relative}:{self.line + 1}:{self.column}"


def _walk(node: Node) -> Iterable[Node]:
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(reversed(current.children))


def _char_offset(data: bytes, byte_offset: int) -> int:
    return len(data[:byte_offset].decode("utf-8", "surrogatepass"))


def hole_candidates(
    text: str, grammar: HoleGrammar, rng: random.Random
) -> dict[str, list[tuple[int, int]]]:
    """(start, end) offsets of possible holes by kind; none when the file does not parse."""
    data = text.encode("utf-8", "surrogatepass")
    tree = grammar.parser().parse(data)
    found: dict[str, list[tuple[int, int]]] = {"line": [], "block": []}
    if tree.root_node.has_error:
        return found
    for node in _walk(tree.root_node):
        if (
            node.type in grammar.nodes.line
            and node.start_point.row == node.end_point.row
            and not _only_a_string(node)
        ):
            start = _char_offset(data, node.start_byte)
            end = text.find("\n", start)
            end = len(text) if end < 0 else end
            line = text[start:end].rstrip("\r")
            # The hole starts at a token boundary within the first two thirds of the line.
            reach = max(1, 2 * len(line) // 3)
            starts = [0] + [i for i in range(1, reach) if not is_word_char(line[i - 1])]
            cut = rng.choice(starts)
            if len(line[cut:].strip()) >= LINE_HOLE_MIN_CHARS:
                found["line"].append((start + cut, start + len(line)))
        elif node.type in grammar.nodes.block:
            body = [child for child in node.named_children if child.type != "comment"]
            if not body:
                continue
            lines = body[-1].end_point.row - body[0].start_point.row + 1
            start = _char_offset(data, body[0].start_byte)
            end = _char_offset(data, body[-1].end_byte)
            if BLOCK_LINES[0] <= lines <= BLOCK_LINES[1] and end - start <= BLOCK_CHARS:
                found["block"].append((start, end))
    return found


def _only_a_string(node: Node) -> bool:
    """A docstring or a directive ("use strict"): prose, which no server is asked to write."""
    children = node.named_children
    return len(children) == 1 and "string" in children[0].type


def sample_holes(files: Sequence[SourceFile], count: int, seed: int) -> list[Hole]:
    """`count` holes spread over languages and files, line and block holes taking turns."""
    rng = random.Random(seed)
    usable = [file for file in files if grammar_for(file.language_id) is not None]
    candidates: dict[Path, dict[str, list[tuple[int, int]]]] = {}
    texts: dict[Path, str] = {}
    holes: list[Hole] = []
    exhausted: set[Path] = set()
    kinds = ("line", "block")
    for file in rotation(usable, rng):
        if len(holes) == count or len(exhausted) == len(usable):
            break
        if file.path not in candidates:
            text = read_text(file) or ""
            grammar = grammar_for(file.language_id)
            assert grammar is not None
            texts[file.path] = text
            candidates[file.path] = hole_candidates(text, grammar, rng)
            for spans in candidates[file.path].values():
                rng.shuffle(spans)
        spans_by_kind = candidates[file.path]
        wanted = kinds[len(holes) % 2]
        kind = wanted if spans_by_kind[wanted] else kinds[1 - kinds.index(wanted)]
        if not spans_by_kind[kind]:
            exhausted.add(file.path)
            continue
        start, end = spans_by_kind[kind].pop()
        text = texts[file.path]
        position = position_at(text, start, UTF16)
        line_start = max(text.rfind("\n", 0, start), text.rfind("\r", 0, start)) + 1
        holes.append(
            Hole(file, kind, start, end, position.line, position.character, start - line_start + 1)
        )
    return holes


# -- fills and scores ---------------------------------------------------------------------------


@dataclass(frozen=True)
class HoleResult:
    hole: Hole
    expected: str  # the text the hole held
    got: str  # what the suggestion put in its place ("" when there was none)
    exact: bool
    similarity: float  # 0..1
    syntax_ok: bool
    latency_ms: float | None
    stats: dict[str, Any] | None = None
    tests_passed: bool | None = None  # None: no test command, or not run


def edit_similarity(a: str, b: str) -> float:
    """1 - Levenshtein distance / the longer length; 1.0 for two empty strings."""
    if not a and not b:
        return 1.0
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, char_a in enumerate(a, start=1):
        current = [i]
        for j, char_b in enumerate(b, start=1):
            current.append(
                min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (char_a != char_b))
            )
        previous = current
    return 1 - previous[-1] / len(a)


def _normalized(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.strip("\r\n").splitlines())


def filled_text(holed: str, cursor: int, item: Any | None) -> str:
    """The holed text with the suggestion applied as an editor applies it."""
    if item is None:
        return holed
    if item.range is None:
        start = end = cursor
    else:
        start = offset_at(holed, Position(item.range.start.line, item.range.start.character), UTF16)
        end = offset_at(holed, Position(item.range.end.line, item.range.end.character), UTF16)
        start = cursor if start is None else start
        end = cursor if end is None else end
    return holed[:start] + item.insert_text + holed[end:]


def fill_window(original: str, filled: str, hole: Hole) -> tuple[str, str]:
    """(expected, got): the two texts where they differ, widened to cover the whole hole."""
    prefix = 0
    limit = min(len(original), len(filled), hole.start)
    while prefix < limit and original[prefix] == filled[prefix]:
        prefix += 1
    suffix = 0
    after_hole = len(original) - hole.end
    limit = min(len(original) - prefix, len(filled) - prefix, after_hole)
    while suffix < limit and original[-1 - suffix] == filled[-1 - suffix]:
        suffix += 1
    return original[prefix : len(original) - suffix], filled[prefix : len(filled) - suffix]


def score(hole: Hole, original: str, filled: str, latency_ms: float | None) -> HoleResult:
    expected, got = fill_window(original, filled, hole)
    grammar = grammar_for(hole.file.language_id)
    parser = grammar.parser() if grammar else None
    syntax_ok = (
        parser is not None
        and not parser.parse(filled.encode("utf-8", "surrogatepass")).root_node.has_error
    )
    return HoleResult(
        hole=hole,
        expected=expected,
        got=got,
        exact=_normalized(expected) == _normalized(got),
        similarity=edit_similarity(expected, got),
        syntax_ok=syntax_ok,
        latency_ms=latency_ms,
    )


async def fill_holes(
    client: BenchClient,
    holes: Sequence[Hole],
    timeout_s: float,
    on_filled: Callable[[HoleResult], None],
) -> list[tuple[HoleResult, str]]:
    """Fill each hole through the server; returns each result with its filled file text."""
    results = []
    sequence = 0
    for hole in holes:
        original = read_text(hole.file) or ""
        holed = original[: hole.start] + original[hole.end :]
        uri = client.open(hole.file.path, holed, hole.file.language_id)
        try:
            request = client.request_inline(uri, hole.line, hole.character)
            answer = await request.answer(timeout_s)
        finally:
            client.close_document(uri)
        records, sequence = await client.records_since(uri, sequence)
        record = records.get((hole.line, hole.character))
        item = answer.items[0] if answer.items else None
        filled = filled_text(holed, hole.start, item)
        result = replace(
            score(hole, original, filled, request.latency_ms),
            stats=record.get("stats") if record else None,
        )
        on_filled(result)
        results.append((result, filled))
    return results


# -- tests --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SuiteRun:
    passed: bool
    seconds: float
    output_tail: str


def copy_workspace(root: Path, into: Path) -> None:
    """The files git would track (ignored ones left out: build output, virtual environments)."""
    for path in workspace_files(root):
        target = into / path.relative_to(root)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)


def run_test_command(command: str, cwd: Path, timeout_s: float) -> SuiteRun:
    started = time.perf_counter()
    try:
        done = subprocess.run(
            command,
            shell=True,  # the user's command line, as they would type it
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )
    except subprocess.TimeoutExpired:
        return SuiteRun(False, time.perf_counter() - started, f"timed out after {timeout_s:g} s")
    output = (done.stdout + done.stderr).strip().splitlines()
    return SuiteRun(done.returncode == 0, time.perf_counter() - started, "\n".join(output[-5:]))


@dataclass(frozen=True)
class SuiteOutcome:
    baseline: SuiteRun  # the untouched copy: a failing baseline makes the pass rate meaningless
    results: tuple[HoleResult, ...]  # the fills, each with `tests_passed` set

    @property
    def passed(self) -> int:
        return sum(1 for result in self.results if result.tests_passed)


def run_tests_with_fills(
    root: Path,
    fills: Sequence[tuple[HoleResult, str]],
    command: str,
    timeout_s: float,
    on_run: Callable[[Hole, SuiteRun], None],
) -> SuiteOutcome:
    """Run `command` in a copy of the workspace, once untouched, then once per filled hole."""
    with tempfile.TemporaryDirectory(prefix="nexttoken-bench-") as scratch:
        copy = Path(scratch) / root.name
        copy_workspace(root.resolve(), copy)
        baseline = run_test_command(command, copy, timeout_s)
        results = []
        for result, filled in fills:
            target = copy / result.hole.file.relative
            original = target.read_bytes()
            target.write_text(filled, encoding="utf-8")
            try:
                run = run_test_command(command, copy, timeout_s)
            finally:
                target.write_bytes(original)
            on_run(result.hole, run)
            results.append(replace(result, tests_passed=run.passed))
    return SuiteOutcome(baseline, tuple(results))
