"""Single-line suggestion quality per millisecond, for prompt framings and model variants.

Punches rest-of-line holes into real Python files (seeded), completes each through the real
pipeline once per (model folder, framing) pair, cold, interleaved hole by hole, and prints
exact match, edit similarity and median latency.

    python benchmarks/line_holes.py [FILES...] --holes 60 --framings filename,file_sep,none
    python benchmarks/line_holes.py --models ~/.cache/nexttoken/models/smollm2,/tmp/other
"""

from __future__ import annotations

import argparse
import difflib
import random
import statistics
import sysconfig
from pathlib import Path

from completion.pipeline import CompletionPipeline, PipelineSettings
from completion.prompt import FRAMINGS
from completion.request import CompletionRequest, Position
from onnx_models.install import ensure_model

DEFAULT_FILES = ["textwrap.py", "json/encoder.py", "shlex.py", "fractions.py", "csv.py"]


def holes(files: list[Path], count: int, seed: int) -> list[tuple[Path, str, int, int, str]]:
    rng = random.Random(seed)
    candidates = []
    for path in files:
        text = path.read_text(encoding="utf-8")
        for number, line in enumerate(text.split("\n")):
            body = line.strip()
            if len(body) >= 12 and not body.startswith(("#", '"', "'")):
                candidates.append((path, text, number, line))
    out = []
    for path, text, number, line in rng.sample(candidates, count):
        indent = len(line) - len(line.lstrip())
        col = rng.randint(indent + 1, len(line) - 4)
        out.append((path, text, number, col, line[col:]))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", type=Path)
    parser.add_argument("--holes", type=int, default=60)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--framings", default="filename", help=f"comma-separated: {FRAMINGS}")
    parser.add_argument("--models", default="", help="comma-separated model folders")
    args = parser.parse_args()
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    files = args.files or [stdlib / f for f in DEFAULT_FILES]
    cases = holes(files, args.holes, args.seed)
    folders = [Path(m).expanduser() for m in args.models.split(",") if m] or [ensure_model()]
    pipelines = {folder: CompletionPipeline.load(folder) for folder in folders}
    framings = args.framings.split(",")
    variants = [(folder, framing) for folder in folders for framing in framings]
    results: dict[tuple[Path, str], tuple[list[bool], list[float], list[float]]] = {
        v: ([], [], []) for v in variants
    }
    for path, text, line, col, target in cases:
        # Interleave variants per hole so machine noise hits them alike.
        for folder, framing in variants:
            pipeline = pipelines[folder]
            pipeline.settings = PipelineSettings(framing=framing)
            pipeline.engine.rewind(0)  # cold each time: no framing profits from another's cache
            lines = text.split("\n")
            # The document as typed so far: the hole's line ends at the cursor.
            doc = "\n".join([*lines[:line], lines[line][:col], *lines[line + 1 :]])
            request = CompletionRequest(doc, Position(line, col), path=path.name)
            result = pipeline.complete(request)
            exact, sims, ms = results[(folder, framing)]
            exact.append(result.insert_text.strip() == target.strip())
            sims.append(difflib.SequenceMatcher(None, result.insert_text, target).ratio())
            ms.append(result.stats.total_ms)
    print(f"{len(cases)} rest-of-line holes from {len(files)} files, seed {args.seed}")
    print("| model | framing | exact match | edit similarity | median ms |")
    print("|---|---|---|---|---|")
    for (folder, framing), (exact, sims, ms) in results.items():
        print(
            f"| {folder.name} | {framing} | {sum(exact) / len(exact):.1%} "
            f"| {statistics.mean(sims):.3f} | {statistics.median(ms):.0f} |"
        )


if __name__ == "__main__":
    main()
