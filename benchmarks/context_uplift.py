"""Does repository context help? A cross-file completion benchmark from a fresh repository.

The builder takes a repository at a commit (by default this one, at HEAD: written after the
model was trained, so no answer can come from memory), indexes it, and picks cursor positions
where the rest of the line uses a symbol defined in another file of the repository and not in
the file itself: the cursor sits right before that symbol, and the rest of the line is removed
from the document, as when it is being typed. Each case is completed by the real pipeline
once per arm, interleaved, at the same prompt budget (`PromptBudget()`: 1024 prefix tokens,
of which the context may take up to 384, leaving what it does not use to the prefix). Arms
(`--arms`): `none` (no repository context), `context`, `context+open` (the files the current
file imports are open, as an editor's tabs would be, so similar chunks from them can be
chosen), `context-comments` (context framed by path comments instead of the model's
`<filename>` token, for the file too), `context-192` (at most 192 tokens of context),
`context-moved` (the cursor was 20 lines away in the same file before: the context shown
there is held where it is still offered, and the prefix starts where it started there while
that serves, as for an editor's user after a cursor move), `context-moved-up` (the same from
20 lines below).

Reported per arm: exact match of the rest of the line, edit similarity (difflib ratio),
whether the cross-file symbol was produced at all, median latency (cold: the KV cache is
emptied before every completion so no arm profits from another), median prompt tokens; and
per case, wins and losses of the context arm. Cases are seeded and written out (--cases) so a
run can be repeated. Run: python benchmarks/context_uplift.py [--repo DIR] [--cases-max 120]
[--arms none,context,context-comments]
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import json
import os
import random
import statistics
import subprocess
import tarfile
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from tree_sitter import Node, QueryCursor

from completion.context import ContextRetriever, import_bindings
from completion.pipeline import CompletionPipeline, PipelineSettings
from completion.positions import code_units
from completion.prompt import PromptBudget
from completion.request import CompletionRequest, Position
from indexer.extract import parser_for
from indexer.index import IndexOptions, WorkspaceIndex
from indexer.languages import language_for_path, load
from onnx_models.install import ensure_model

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Arm:
    context: bool = True
    open_imports: bool = False
    framing: str = "filename"
    context_tokens: int = PromptBudget().context_tokens
    # Lines above the case where the cursor was before (below if negative; 0: nowhere).
    moved_from: int = 0


ARMS = {
    "none": Arm(context=False),
    "context": Arm(),
    "context+open": Arm(open_imports=True),
    "context-comments": Arm(framing="none"),
    "context-192": Arm(context_tokens=192),
    "context-moved": Arm(moved_from=20),
    "context-moved-up": Arm(moved_from=-20),
}
MIN_TARGET_CHARS = 4
MAX_TARGET_CHARS = 80
MIN_NAME_CHARS = 4
COMMON_ATTRIBUTES = frozenset(
    name
    for kind in (str, bytes, list, dict, set, tuple, int, float, Path, type(os.environ))
    for name in dir(kind)
) | frozenset({"shape", "dtype", "repeat", "reshape", "astype", "name", "text", "path"})


@dataclass(frozen=True)
class Case:
    path: str
    line: int
    column: int  # in characters
    target: str  # the rest of the line, from the cursor
    symbol: str  # the name defined in another file
    defined_in: str


def snapshot(repo: Path, commit: str, target: Path) -> str:
    """The repository's tree at `commit`, extracted into `target`; returns the commit id."""
    commit_id = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", commit], check=True, capture_output=True, text=True
    ).stdout.strip()
    archive = target.with_suffix(".tar")
    with archive.open("wb") as out:
        subprocess.run(["git", "-C", str(repo), "archive", commit_id], check=True, stdout=out)
    target.mkdir(parents=True)
    with tarfile.open(archive) as tar:
        tar.extractall(target, filter="data")
    return commit_id


def build_cases(
    root: Path, index: WorkspaceIndex, max_cases: int, per_file: int, seed: int
) -> list[Case]:
    """Uses of other files' symbols: a name the file imports from a file of the repository,
    or a method or field of a class defined in another file after a dot (`cart.add`); never a
    name the file defines itself."""
    reader = index.reader
    assert reader is not None
    members: dict[str, set[str]] = defaultdict(set)  # method/field name -> files
    for record in reader.files():
        for stored in reader.symbols_in([record.id]):
            if stored.symbol.kind in ("method", "field"):
                members[stored.symbol.name].add(record.path)
    by_file: dict[str, list[Case]] = defaultdict(list)
    for relative in sorted(index.paths.paths):
        row = language_for_path(relative)
        loaded = load(row) if row is not None else None
        record = reader.file(relative)
        if loaded is None or record is None:
            continue
        own = {stored.symbol.name for stored in reader.symbols_in([record.id])}
        imported = {
            name: binding.files
            for name, binding in import_bindings(
                relative, reader.imports_of(record.id), row, index.paths
            ).items()
            if binding.name
        }
        text = (root / relative).read_text(encoding="utf-8", errors="replace")
        lines = text.split("\n")
        tree = parser_for(loaded).parse(text.encode("utf-8"))
        captures = QueryCursor(loaded.references_query).captures(tree.root_node)
        member_nodes = captures.get("reference.member", [])
        member_starts = {node.start_byte for node in member_nodes}
        uses = [(node, False) for node in captures.get("reference", [])]
        uses = [(n, m) for n, m in uses if n.start_byte not in member_starts]
        uses += [(node, True) for node in member_nodes]
        seen_lines: set[int] = set()
        for node, is_member in sorted(uses, key=lambda use: use[0].start_byte):
            name = node.text.decode("utf-8", "replace") if node.text else ""
            if len(name) < MIN_NAME_CHARS or name.startswith("__") or name in own:
                continue
            if is_member:
                owners = members.get(name, set()) - {relative}
                # A method of str, list or an array is no cross-file use, whatever the
                # repository also defines under that name; nor is a name many classes share.
                if name in COMMON_ATTRIBUTES or len(members.get(name, ())) > 2:
                    continue
            else:
                owners = set(imported.get(name, ()))
            if not owners:
                continue
            row_number = node.start_point.row
            line = lines[row_number]
            # tree-sitter columns are bytes; the line may hold non-ASCII text before it
            column = len(line.encode("utf-8")[: node.start_point.column].decode("utf-8", "replace"))
            target = line[column:].rstrip()
            stripped = line.strip()
            if row_number in seen_lines or not MIN_TARGET_CHARS <= len(target) <= MAX_TARGET_CHARS:
                continue
            if stripped.startswith(("#", '"', "'")) or inside_import(node):
                continue  # naming a thing in an import (even on a later line) is no use
            seen_lines.add(row_number)
            by_file[relative].append(
                Case(relative, row_number, column, target, name, sorted(owners)[0])
            )
    rng = random.Random(seed)
    cases: list[Case] = []
    for relative in sorted(by_file):
        found = by_file[relative]
        cases += rng.sample(found, min(per_file, len(found)))
    rng.shuffle(cases)
    return cases[:max_cases]


def inside_import(node: Node) -> bool:
    parent = node.parent
    while parent is not None:
        if "import" in parent.type:
            return True
        parent = parent.parent
    return False


def request_for(root: Path, case: Case, repo_name: str) -> CompletionRequest:
    text = (root / case.path).read_text(encoding="utf-8", errors="replace")
    lines = text.split("\n")
    line = lines[case.line]
    # The rest of the line is what the user is about to type: it is not in the document.
    lines[case.line] = line[: case.column]
    return CompletionRequest(
        "\n".join(lines),
        Position(case.line, code_units(line[: case.column])),
        path=case.path,
        language_id="python" if case.path.endswith(".py") else "",
        repo_name=repo_name,
    )


def similarity(a: str, b: str) -> float:
    return difflib.SequenceMatcher(None, a, b).ratio()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, default=REPO)
    parser.add_argument("--commit", default="HEAD")
    parser.add_argument("--cases-max", type=int, default=120)
    parser.add_argument("--per-file", type=int, default=4)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--arms", default="none,context", help=f"of {', '.join(ARMS)}")
    parser.add_argument("--cases", type=Path, help="write the cases and predictions here")
    args = parser.parse_args()

    arms = tuple(args.arms.split(","))
    unknown = set(arms) - set(ARMS)
    if unknown or arms[0] != "none":
        raise SystemExit(f"--arms: start with none, then any of {', '.join(ARMS)}")
    print(f"load average {os.getloadavg()}")
    with tempfile.TemporaryDirectory(prefix="nexttoken-uplift-") as scratch:
        root = Path(scratch) / args.repo.resolve().name
        commit = snapshot(args.repo, args.commit, root)
        index = WorkspaceIndex(root, IndexOptions(store_folder=Path(scratch) / "stores"))
        index.start()
        assert index.wait_ready(600) and not index.failure, index.failure
        cases = build_cases(root, index, args.cases_max, args.per_file, args.seed)
        files = len({case.path for case in cases})
        print(f"{args.repo.name}@{commit[:10]}: {len(cases)} cases from {files} files")
        pipeline = CompletionPipeline.load(ensure_model(), PipelineSettings())
        retriever = ContextRetriever(index)
        results: dict[str, list[dict]] = {arm: [] for arm in arms}
        for number, case in enumerate(cases):
            request = request_for(root, case, root.name)
            for offset in range(len(arms)):
                # Rotate the arms' order per case so machine noise hits them alike.
                arm = arms[(number + offset) % len(arms)]
                results[arm].append(run_arm(arm, case, request, pipeline, retriever, index, root))
            if (number + 1) % 10 == 0:
                print(f"  {number + 1}/{len(cases)} {summary_line(results)}", flush=True)
        index.stop()
    print(f"load average {os.getloadavg()}")
    report(results, arms)
    if args.cases:
        rows = [dataclasses.asdict(case) for case in cases]
        for arm in arms:
            for row, result in zip(rows, results[arm], strict=True):
                row[arm] = result
        args.cases.write_text(json.dumps({"commit": commit, "cases": rows}, indent=1))


def run_arm(
    name: str,
    case: Case,
    request: CompletionRequest,
    pipeline: CompletionPipeline,
    retriever: ContextRetriever,
    index: WorkspaceIndex,
    root: Path,
) -> dict:
    arm = ARMS[name]
    retrieval_ms = 0.0
    # Nothing remembered from another arm's prompt for this file.
    pipeline.context_renderer.forget()
    pipeline.prefix_cuts.forget()
    pipeline.settings = PipelineSettings(
        framing=arm.framing,
        budget=dataclasses.replace(PromptBudget(), context_tokens=arm.context_tokens),
    )
    if arm.context:
        # Each case starts with no editor tabs; the open arm then opens what the file imports.
        index.forget_recent_documents()
        if arm.open_imports:
            for relative in imported_files(index, case.path):
                index.document_changed(root / relative, (root / relative).read_text())
        if arm.moved_from:
            # The earlier position's prompt, as the server would have built it there.
            earlier = moved_request(request, arm.moved_from)
            earlier = dataclasses.replace(earlier, context=retriever.retrieve(earlier))
            pipeline.warm(earlier, lambda: False)
        started = time.perf_counter()
        context = retriever.retrieve(request)
        retrieval_ms = (time.perf_counter() - started) * 1000
        request = dataclasses.replace(request, context=context)
    pipeline.engine.rewind(0)  # cold: no arm profits from another's cache
    result = pipeline.complete(request)
    predicted = result.insert_text.split("\n")[0].rstrip()
    return {
        "predicted": predicted,
        "exact": predicted.strip() == case.target.strip(),
        "similarity": similarity(predicted.strip(), case.target.strip()),
        "symbol": case.symbol in predicted,
        "ms": result.stats.total_ms,
        "prompt_tokens": result.stats.prompt_tokens,
        "retrieval_ms": retrieval_ms,
        "snippets": len(request.context),
    }


def moved_request(request: CompletionRequest, lines: int) -> CompletionRequest:
    """The same document with the cursor at the end of the line `lines` above (below if
    negative; the other way where the file ends first)."""
    document = request.text.split("\n")
    line = request.position.line - lines
    if not 0 <= line < len(document):
        line = min(max(request.position.line + lines, 0), len(document) - 1)
    return dataclasses.replace(request, position=Position(line, code_units(document[line])))


def imported_files(index: WorkspaceIndex, path: str) -> list[str]:
    reader = index.reader
    record = reader.file(path) if reader is not None else None
    if reader is None or record is None:
        return []
    bindings = import_bindings(
        path, reader.imports_of(record.id), language_for_path(path), index.paths
    )
    return sorted({f for binding in bindings.values() for f in binding.files})[:5]


def summary_line(results: dict[str, list[dict]]) -> str:
    parts = []
    for arm, rows in results.items():
        exact = sum(r["exact"] for r in rows) / len(rows)
        parts.append(
            f"{arm}: EM {exact:.0%} ES {statistics.mean(r['similarity'] for r in rows):.3f}"
        )
    return "; ".join(parts)


def report(results: dict[str, list[dict]], arms: tuple[str, ...]) -> None:
    print("\n| arm | exact match | edit similarity | symbol produced | median ms | prompt tokens |")
    print("|---|---|---|---|---|---|")
    for arm in arms:
        rows = results[arm]
        print(
            f"| {arm} | {sum(r['exact'] for r in rows) / len(rows):.1%} "
            f"| {statistics.mean(r['similarity'] for r in rows):.3f} "
            f"| {sum(r['symbol'] for r in rows) / len(rows):.1%} "
            f"| {statistics.median(r['ms'] for r in rows):.0f} "
            f"| {statistics.median(r['prompt_tokens'] for r in rows):.0f} |"
        )
    pairs = [(arm, "none") for arm in arms[1:]]
    if "context" in arms:
        pairs += [(arm, "context") for arm in arms[1:] if arm != "context"]
    for arm, against in pairs:
        rows, base = results[arm], results[against]
        better = sum(
            r["similarity"] > b["similarity"] + 1e-9 for r, b in zip(rows, base, strict=True)
        )
        worse = sum(
            r["similarity"] < b["similarity"] - 1e-9 for r, b in zip(rows, base, strict=True)
        )
        retrieval = [r["retrieval_ms"] for r in rows]
        print(
            f"\n{arm} vs {against}: edit similarity better in {better}, worse in {worse}, equal in "
            f"{len(rows) - better - worse} of {len(rows)} cases; retrieval median "
            f"{statistics.median(retrieval):.1f} ms, max {max(retrieval):.1f} ms; snippets median "
            f"{statistics.median(r['snippets'] for r in rows):.0f}"
        )


if __name__ == "__main__":
    main()
