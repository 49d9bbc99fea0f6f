"""Tokens that stopping while decoding saves, against decoding to the token cap and cutting.

Picks cursor positions in real source files (seeded): at the end of a line that opens a block
(`:` or `{`), on a blank line inside a block, and inside a line of code. Each is completed
twice through the real pipeline with the shipped model: once with the stop rules applied to
each token as it is decoded, once decoding to `max_new_tokens` and applying the same rules
afterwards. The suggestions must be identical; the report is the tokens and decode time each
way, by mode and by language.

Run: python benchmarks/stops.py [FILES...] [--holes-per-file 6] [--seed 1]
(no FILES: a few files of Python's standard library, and npm's JavaScript when installed)
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import sys
import sysconfig
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from completion.cursor import split_at
from completion.languages import language_for
from completion.pipeline import CompletionPipeline, PipelineSettings
from completion.request import CompletionRequest, Position
from completion.syntax import cursor_mode
from onnx_models.install import ensure_model
from onnx_models.registry import DEFAULT_MODEL

STDLIB = ["textwrap.py", "json/encoder.py", "shlex.py", "fractions.py", "csv.py", "argparse.py"]
# The server sends a window around the cursor, not the whole file (lsp_server.documents).
WINDOW_BEFORE = 12_000
WINDOW_AFTER = 4_000


@dataclass(frozen=True)
class Hole:
    path: Path
    language: str
    kind: str  # "opener", "blank_line", "mid_line"
    text: str
    position: Position


def default_files() -> list[Path]:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    files = [stdlib / name for name in STDLIB if (stdlib / name).is_file()]
    npm = shutil.which("npm")
    if npm:
        lib = Path(npm).resolve().parent.parent / "lib"
        files += sorted(p for p in lib.glob("*.js") if p.stat().st_size > 3000)[:4]
    return files


def window(text: str, offset: int) -> tuple[str, int]:
    """The text around `offset`, cut at line starts, and the offset within it."""
    start = text.rfind("\n", 0, max(0, offset - WINDOW_BEFORE)) + 1 if offset > WINDOW_BEFORE else 0
    end = text.find("\n", offset + WINDOW_AFTER)
    end = len(text) if end < 0 else end + 1
    return text[start:end], offset - start


def holes_in(path: Path, count: int, rng: random.Random) -> list[Hole]:
    language = language_for("", str(path))
    if language is None:
        return []
    text = path.read_text(encoding="utf-8", errors="replace")
    lines = text.split("\n")
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line) + 1)
    # (kind, offset of the cursor, text typed there first)
    candidates: list[tuple[str, int, str]] = []
    for number, line in enumerate(lines):
        body = line.strip()
        if not body or body.startswith(("#", "//", "*", "/*", '"', "'")):
            continue
        indent = line[: len(line) - len(line.lstrip())]
        if body.endswith((":", "{")) and len(body) > 6:
            candidates.append(("opener", starts[number] + len(line.rstrip()), ""))
        elif len(body) > 12:
            if indent:
                # A new line typed above this one, indented like it: the cursor after that.
                candidates.append(("blank_line", starts[number], indent + "\n"))
            cut = len(indent) + rng.randint(4, len(body) - 2)
            if not line[cut : cut + 1].isalnum():
                candidates.append(("mid_line", starts[number] + cut, ""))
    holes = []
    for kind, offset, typed in rng.sample(candidates, min(count, len(candidates))):
        full = text[:offset] + typed + text[offset:]
        at_cursor = offset + len(typed.rstrip("\n"))
        piece, at = window(full, at_cursor)
        row = piece.count("\n", 0, at)
        column = at - (piece.rfind("\n", 0, at) + 1)
        holes.append(Hole(path, language.name, kind, piece, Position(row, column)))
    return holes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("files", nargs="*", type=Path)
    parser.add_argument("--holes-per-file", type=int, default=6)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    files = args.files or default_files()
    holes = [hole for path in files for hole in holes_in(path, args.holes_per_file, rng)]
    streamed = CompletionPipeline.load(ensure_model(DEFAULT_MODEL))
    to_cap = CompletionPipeline(streamed.engine, PipelineSettings(stream_stops=False))
    rows: dict[tuple[str, str], list[tuple[int, int, float, float]]] = defaultdict(list)
    differ = 0
    for hole in holes:
        request = CompletionRequest(
            hole.text,
            hole.position,
            path=hole.path.name,
            max_new_tokens=args.max_new_tokens,
        )
        ctx = split_at(hole.text, hole.position)
        mode = cursor_mode(language_for("", hole.path.name), ctx).mode
        if mode == "none":
            continue
        fast = streamed.complete(request)
        full = to_cap.complete(request)
        if (fast.insert_text, fast.end) != (full.insert_text, full.end):
            differ += 1
        key = (hole.language, f"{mode} ({hole.kind})")
        rows[key].append(
            (
                fast.stats.generated_tokens,
                full.stats.generated_tokens,
                fast.stats.decode_ms,
                full.stats.decode_ms,
            )
        )
    print(
        f"{sum(len(v) for v in rows.values())} holes in {len(files)} files; model {DEFAULT_MODEL}"
    )
    print(f"cap {args.max_new_tokens} new tokens; suggestions that differ: {differ}\n")
    print(
        "| language | mode (cursor) | holes | tokens, stopping while decoding | tokens, to the cap "
        "| saved | decode ms (median), stopping | decode ms (median), to the cap |"
    )
    print("|---|---|---|---|---|---|---|---|")
    total_fast = total_full = 0
    for (language, label), values in sorted(rows.items()):
        fast_tokens = sum(v[0] for v in values)
        full_tokens = sum(v[1] for v in values)
        total_fast += fast_tokens
        total_full += full_tokens
        saved = 1 - fast_tokens / full_tokens if full_tokens else 0.0
        print(
            f"| {language} | {label} | {len(values)} | {fast_tokens} | {full_tokens} | {saved:.0%} "
            f"| {statistics.median(v[2] for v in values):.0f} "
            f"| {statistics.median(v[3] for v in values):.0f} |"
        )
    if total_full:
        saved = 1 - total_fast / total_full
        ratio = total_full / max(total_fast, 1)
        print(
            f"\nall: {total_fast} tokens instead of {total_full} ({saved:.0%} saved, {ratio:.1f}x)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
