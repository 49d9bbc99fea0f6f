"""What a cursor move inside a file costs: prompt tokens prefilled and latency, by how the
repository context is laid out after the move.

Walks through files of a repository (by default this one, at HEAD, extracted and indexed in a
temporary folder): the cursor lands at the end of a line where the pipeline would run the
model (its mode there is not "none"), then moves 1, 3, 10, 30 or 100
lines up or down, four times; each position is one completion by the real pipeline (default
model, its KV cache kept from one request to the next, as in the server), with the real
retriever's context. Arms, interleaved walk by walk and each starting from an empty cache:

- `fresh`: the context laid out afresh at every position (what the renderer did before it
  remembered anything);
- `order`: the blocks of the previous render kept at the front while all their snippets are
  still chosen; what is chosen is decided by score alone, as in `fresh`;
- `hold`: as `order`, and the snippets shown before and still offered by the retriever are
  packed before new ones other than the cursor's own;
- `window`: as `hold`, and the file's prefix starts where the previous prompt's did while the
  prefix after it fits the budget and fills at least three quarters of it (`completion.prompt`:
  `KEPT_CUT_MIN_FILL`, `RECUT_SLACK`); the default.

Reported per arm over the moves (a walk's first request is cold and left out): prompt and
prefilled tokens, prefill and total milliseconds (medians, and the median of each move's
ratio to `fresh`), and how many suggestions differ from `fresh`'s.
Run: python benchmarks/cursor_moves.py [--walks 30] [--seed 3]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import random
import statistics
import tempfile
from pathlib import Path

from completion.context import ContextRetriever
from completion.cursor import split_at
from completion.languages import language_for
from completion.pipeline import CompletionPipeline, PipelineSettings
from completion.positions import code_units
from completion.request import CompletionRequest, Position
from completion.syntax import cursor_mode
from indexer.index import IndexOptions, WorkspaceIndex
from onnx_models.install import ensure_model

REPO = Path(__file__).resolve().parent.parent
ARMS = ("fresh", "order", "hold", "window")
DISTANCES = (1, 3, 10, 30, 100)
MOVES = 4


@dataclasses.dataclass(frozen=True)
class Walk:
    path: str
    text: str
    lines: tuple[int, ...]


def completes_at(text: str, line: int, column: int) -> bool:
    """Whether the pipeline runs the model there (its mode is not "none")."""
    ctx = split_at(text, Position(line, column))
    return cursor_mode(language_for("python", ""), ctx).mode != "none"


def walks(root: Path, paths: list[str], count: int, seed: int) -> list[Walk]:
    rng = random.Random(seed)
    chosen: list[Walk] = []
    while len(chosen) < count:
        path = rng.choice(paths)
        text = (root / path).read_text(encoding="utf-8", errors="replace")
        lines = text.split("\n")
        usable = [
            n
            for n, line in enumerate(lines)
            if line.strip() and completes_at(text, n, code_units(line))
        ]
        if len(usable) < 20:
            continue
        seq = [rng.choice(usable)]
        for _ in range(MOVES):
            target = seq[-1] + rng.choice((-1, 1)) * rng.choice(DISTANCES)
            seq.append(min(usable, key=lambda n: abs(n - target)))
        chosen.append(Walk(path, text, tuple(seq)))
    return chosen


def run_walk(
    walk: Walk, arm: str, pipeline: CompletionPipeline, retriever: ContextRetriever, repo: str
) -> list[dict]:
    renderer = pipeline.context_renderer
    renderer.hold = arm in ("hold", "window")
    renderer.forget()
    pipeline.prefix_cuts.forget()
    pipeline.engine.rewind(0)
    lines = walk.text.split("\n")
    rows = []
    for line in walk.lines:
        if arm == "fresh":
            renderer.forget()
        if arm != "window":
            pipeline.prefix_cuts.forget()
        request = CompletionRequest(
            walk.text,
            Position(line, code_units(lines[line])),
            path=walk.path,
            language_id="python",
            repo_name=repo,
        )
        request = dataclasses.replace(request, context=retriever.retrieve(request))
        result = pipeline.complete(request)
        stats = result.stats
        rows.append(
            {
                "prompt": stats.prompt_tokens,
                "prefilled": stats.prompt_tokens - stats.reused_tokens,
                "prefill_ms": stats.prefill_ms,
                "total_ms": stats.total_ms,
                "text": result.insert_text,
            }
        )
    return rows[1:]  # the first is cold whatever the arm


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, default=REPO)
    parser.add_argument("--walks", type=int, default=30)
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()
    # Imported here: context_uplift.py sits beside this file, not in a package.
    from context_uplift import snapshot

    print(f"load average {os.getloadavg()}")
    with tempfile.TemporaryDirectory(prefix="nexttoken-moves-") as scratch:
        root = Path(scratch) / args.repo.resolve().name
        commit = snapshot(args.repo, "HEAD", root)
        index = WorkspaceIndex(root, IndexOptions(store_folder=Path(scratch) / "stores"))
        index.start()
        assert index.wait_ready(600) and not index.failure, index.failure
        paths = sorted(p for p in index.paths.paths if p.endswith(".py"))
        chosen = walks(root, paths, args.walks, args.seed)
        print(f"{args.repo.name}@{commit[:10]}: {len(chosen)} walks of {MOVES} moves")
        pipeline = CompletionPipeline.load(ensure_model(), PipelineSettings())
        retriever = ContextRetriever(index)
        results: dict[str, list[dict]] = {arm: [] for arm in ARMS}
        for number, walk in enumerate(chosen):
            for offset in range(len(ARMS)):
                arm = ARMS[(number + offset) % len(ARMS)]
                results[arm] += run_walk(walk, arm, pipeline, retriever, root.name)
            if (number + 1) % 10 == 0:
                print(f"  {number + 1}/{len(chosen)} walks", flush=True)
        index.stop()
    print(f"load average {os.getloadavg()}")
    report(results)


def report(results: dict[str, list[dict]]) -> None:
    base = results["fresh"]
    print(
        "\n| arm | moves | prompt tokens, mean | prefilled, mean | prefilled, median "
        "| prefill ms, median | total ms, median | total ÷ fresh, median of moves "
        "| suggestions unlike fresh's |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for arm, rows in results.items():
        ratios = [
            r["total_ms"] / b["total_ms"] for r, b in zip(rows, base, strict=True) if b["total_ms"]
        ]
        differ = sum(r["text"] != b["text"] for r, b in zip(rows, base, strict=True))
        print(
            f"| {arm} | {len(rows)} | {statistics.mean(r['prompt'] for r in rows):.0f} "
            f"| {statistics.mean(r['prefilled'] for r in rows):.0f} "
            f"| {statistics.median(r['prefilled'] for r in rows):.0f} "
            f"| {statistics.median(r['prefill_ms'] for r in rows):.0f} "
            f"| {statistics.median(r['total_ms'] for r in rows):.0f} "
            f"| {statistics.median(ratios):.2f} | {differ} |"
        )
    for arm, rows in results.items():
        line = (
            f"{arm}: mean prefill {statistics.mean(r['prefill_ms'] for r in rows):.0f} ms, "
            f"mean total {statistics.mean(r['total_ms'] for r in rows):.0f} ms"
        )
        # The moves where the layout mattered: this arm prefilled fewer tokens than fresh.
        pairs = [(r, b) for r, b in zip(rows, base, strict=True) if r["prefilled"] < b["prefilled"]]
        if pairs:
            line += (
                f"; {len(pairs)} moves prefilled less than fresh: "
                f"{statistics.median(b['prefilled'] for _, b in pairs):.0f} -> "
                f"{statistics.median(r['prefilled'] for r, _ in pairs):.0f} tokens, total "
                f"{statistics.median(b['total_ms'] for _, b in pairs):.0f} -> "
                f"{statistics.median(r['total_ms'] for r, _ in pairs):.0f} ms (medians), "
                f"{statistics.median(r['total_ms'] / b['total_ms'] for r, b in pairs):.2f}x paired"
            )
        print(line)


if __name__ == "__main__":
    main()
