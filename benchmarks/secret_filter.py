"""Secret-leak filter against detect-secrets, on the same labelled corpus, in the same run.

Recall: the share of positives where a finding overlaps the labelled credential. False
positives: the share of negatives with any finding. Speed: microseconds per 200-character
suggestion, what the pipeline pays per suggestion (`SecretFilter.check_suggestion`); for
detect-secrets, its line scanner with its default plugins and filters (the function its
`scan` runs per file, here without the file reading). Timings are given over all calls and
over each suggestion's fastest pass, which leaves out what other processes took.

`--wild FOLDER...` also counts findings per million lines of real code (which holds almost
no credentials) and prints them, a false-positive check outside the corpus.

Needs the `bench` extra (pip install -e '.[bench]'). Run: python benchmarks/secret_filter.py
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import random
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from completion.secrets import SecretFilter

ROOT = Path(__file__).resolve().parent.parent
GENERATOR = ROOT / "tests" / "data" / "secrets" / "generate_corpus.py"
SUGGESTION_CHARS = 200

# text, path -> spans (start, end) found
Detector = Callable[[str, str], list[tuple[int, int]]]


def corpus() -> list[dict]:
    spec = importlib.util.spec_from_file_location("generate_corpus", GENERATOR)
    assert spec is not None and spec.loader is not None
    module: ModuleType = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.build()


def ours() -> tuple[Detector, Callable[[str], object]]:
    secrets = SecretFilter()

    def detect(text: str, path: str) -> list[tuple[int, int]]:
        return [(f.start, f.end) for f in secrets.scan(text)]

    return detect, secrets.check_suggestion


def detect_secrets(stack: contextlib.ExitStack) -> tuple[Detector, Callable[[str], object]] | None:
    try:
        from detect_secrets.core import scan
        from detect_secrets.settings import default_settings
    except ImportError:
        return None
    # Its default plugins and filters, configured for as long as `stack` is open.
    stack.enter_context(default_settings())

    def scan_text(text: str, path: str) -> list:
        lines = list(enumerate(text.split("\n"), start=1))
        return list(scan._process_line_based_plugins(lines, path))  # noqa: SLF001

    def detect(text: str, path: str) -> list[tuple[int, int]]:
        spans = []
        for secret in scan_text(text, path):
            value = secret.secret_value or ""
            start = text.find(value) if value else -1
            if start >= 0:
                spans.append((start, start + len(value)))
        return spans

    return detect, lambda text: scan_text(text, "suggestion.py")


def accuracy(detect: Detector, samples: list[dict]) -> tuple[float, float, Counter, Counter]:
    missed: Counter[str] = Counter()
    flagged: Counter[str] = Counter()
    for sample in samples:
        spans = detect(sample["text"], sample["path"])
        if sample["label"]:
            start = sample["text"].index(sample["secret"])
            end = start + len(sample["secret"])
            if not any(a < end and b > start for a, b in spans):
                missed[sample["kind"]] += 1
        elif spans:
            flagged[sample["kind"]] += 1
    positives = sum(1 for s in samples if s["label"])
    negatives = len(samples) - positives
    return 1 - sum(missed.values()) / positives, sum(flagged.values()) / negatives, missed, flagged


def suggestions(samples: list[dict]) -> list[str]:
    """The corpus as suggestions of exactly SUGGESTION_CHARS characters."""
    stream = "".join(s["text"] for s in samples)
    return [
        stream[i : i + SUGGESTION_CHARS]
        for i in range(0, len(stream) - SUGGESTION_CHARS, SUGGESTION_CHARS)
    ]


def timing(
    check: Callable[[str], object], texts: list[str], passes: int
) -> tuple[float, float, float, float]:
    """Microseconds per call: median and 99th percentile over all calls, and over each
    suggestion's fastest pass (its own cost, without what other processes on the machine
    took from it)."""
    for text in texts[:20]:
        check(text)  # warm caches and lazy imports
    every: list[float] = []
    fastest = [float("inf")] * len(texts)
    for _ in range(passes):
        for index, text in enumerate(texts):
            start = time.perf_counter_ns()
            check(text)
            took = (time.perf_counter_ns() - start) / 1000
            every.append(took)
            fastest[index] = min(fastest[index], took)
    every.sort()
    fastest.sort()

    def p99(values: list[float]) -> float:
        return values[int(len(values) * 0.99)]

    return statistics.median(every), p99(every), statistics.median(fastest), p99(fastest)


def in_the_wild(folders: list[Path], max_files: int, seed: int) -> None:
    """Findings per million lines of real code, which holds (almost) no credentials: a
    false-positive rate outside the corpus. Prints the findings so they can be judged."""
    suffixes = {".py", ".js", ".ts", ".go", ".java", ".c", ".rs"}
    files = sorted(p for folder in folders for p in folder.rglob("*") if p.suffix in suffixes)
    files = random.Random(seed).sample(files, min(max_files, len(files)))
    secrets = SecretFilter()
    lines = 0
    findings: list[tuple[str, str]] = []
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        for line in text.split("\n"):
            lines += 1
            findings += [(f.rule, line.strip()[:120]) for f in secrets.scan(line)]
    rate = len(findings) / lines * 1e6 if lines else 0.0
    print(
        f"\nin the wild: {len(findings)} findings in {lines} lines of {len(files)} files "
        f"({rate:.1f} per million lines)"
    )
    for rule, line in findings:
        print(f"  {rule}: {line}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--passes", type=int, default=5, help="timing passes over the corpus")
    parser.add_argument("--by-kind", action="store_true", help="print misses per kind")
    parser.add_argument(
        "--wild", nargs="*", type=Path, default=[], help="also scan real code under these folders"
    )
    parser.add_argument("--wild-files", type=int, default=2500)
    args = parser.parse_args()
    samples = corpus()
    texts = suggestions(samples)
    positives = sum(1 for s in samples if s["label"])
    kinds = len({s["kind"] for s in samples if s["label"]})
    print(
        f"corpus: {positives} positives of {kinds} kinds, {len(samples) - positives} negatives; "
        f"{len(texts)} suggestions of {SUGGESTION_CHARS} characters for timing\n"
    )
    stack = contextlib.ExitStack()
    contenders = {"nexttoken": ours(), "detect-secrets": detect_secrets(stack)}
    print(
        "| filter | recall | false positives | median µs | p99 µs "
        "| median µs, best pass | p99 µs, best pass |"
    )
    print("|---|---|---|---|---|---|---|")
    details = []
    for name, contender in contenders.items():
        if contender is None:
            print(f"| {name} | not installed (pip install -e '.[bench]') | | | | | |")
            continue
        detect, check = contender
        recall, fp_rate, missed, flagged = accuracy(detect, samples)
        passes = args.passes if name == "nexttoken" else max(2, args.passes // 3)
        median, p99, best_median, best_p99 = timing(check, texts, passes)
        print(
            f"| {name} | {recall:.1%} | {fp_rate:.1%} | {median:.0f} | {p99:.0f} "
            f"| {best_median:.0f} | {best_p99:.0f} |"
        )
        details.append((name, missed, flagged))
    stack.close()
    if args.by_kind:
        for name, missed, flagged in details:
            print(f"\n{name}: missed {dict(missed)}\n{name}: flagged {dict(flagged)}")
    if args.wild:
        in_the_wild(args.wild, args.wild_files, seed=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
