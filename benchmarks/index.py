"""How fast is the workspace index? Cold and warm start, one-file updates, context retrieval.

Copies the standard library of this Python (without site-packages and caches) into a
temporary folder, so that files can be modified, then measures:

- cold: a first pass into an empty store: seconds, files/s, MB/s of source, peak RSS of the
  server process and of the worker processes, store size;
- warm: a restart on the persisted store (open, walk, compare `stat`s, nothing to read);
- update: one file modified on disk -> the index shows it; latency from the watchdog event's
  arrival (what the index controls) and from the write (adding the kernel's notification);
- retrieval: `ContextRetriever.retrieve` for cursors in files opened in the "editor";
- render: packing the snippets into the prompt budget with the real tokenizer (when the
  default model is built).

Targets (issue 5): cold >= 5 MB/s on 2 cores, warm <= 1 s, update <= 50 ms p99, retrieval <=
5 ms p99. Run: python benchmarks/index.py [--updates 200] [--requests 500] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import statistics
import sysconfig
import tempfile
import time
from pathlib import Path

from completion.context import ContextRetriever
from completion.request import CompletionRequest, Position
from indexer.index import IndexOptions, WorkspaceIndex
from lsp_server.bench.figures import percentile

TIMEOUT_S = 600.0


def copy_stdlib(target: Path) -> Path:
    source = Path(sysconfig.get_paths()["stdlib"])
    ignore = shutil.ignore_patterns("site-packages", "dist-packages", "__pycache__", "*.pyc")
    shutil.copytree(source, target, ignore=ignore, symlinks=True)
    # The copy's writeback would otherwise run during the cold pass: a workspace being opened
    # is already on disk.
    os.sync()
    return target


def store_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.glob("*.sqlite3*"))


def peak_rss_mb() -> tuple[float, float]:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return own, children


def cpu_seconds() -> float:
    """CPU time of this process and of its finished children (the worker processes)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def start(root: Path, options: IndexOptions) -> tuple[WorkspaceIndex, float]:
    started = time.perf_counter()
    index = WorkspaceIndex(root, options)
    index.start()
    if not index.wait_ready(TIMEOUT_S) or index.failure:
        raise SystemExit(f"index did not start: {index.failure or 'timeout'}")
    return index, time.perf_counter() - started


def measure_updates(index: WorkspaceIndex, root: Path, count: int, seed: int) -> dict:
    """Append a function to a random file, wait until the index knows it."""
    rng = random.Random(seed)
    assert index.reader is not None
    reader = index.reader
    # Python files the index holds symbols of (not data tables it skipped as minified).
    files = []
    for relative in sorted(index.paths.paths):
        record = reader.file(relative)
        if (
            relative.endswith(".py")
            and record is not None
            and 2_000 <= record.size <= 40_000
            and reader.symbols_in([record.id])
        ):
            files.append(relative)
    from_event: list[float] = []
    from_write: list[float] = []
    for number in range(count):
        relative = rng.choice(files)
        marker = f"bench_marker_{number}"
        path = root / relative
        text = path.read_text(encoding="utf-8", errors="replace")
        seen = len(index.update_latencies_ms)
        written = time.perf_counter()
        path.write_text(f"{text}\n\ndef {marker}():\n    pass\n", encoding="utf-8")
        ok = index.wait_for(lambda m=marker: bool(reader.symbols_named([m])), 10.0)
        if not ok:
            print(f"  update {number}: {relative} not reflected within 10 s")
            continue
        from_write.append((time.perf_counter() - written) * 1000)
        latest = list(index.update_latencies_ms)[seen:]
        if latest:
            from_event.append(latest[-1])
    return {
        "updates": len(from_write),
        "from_event_ms_p50": percentile(from_event, 50),
        "from_event_ms_p99": percentile(from_event, 99),
        "from_write_ms_p50": percentile(from_write, 50),
        "from_write_ms_p99": percentile(from_write, 99),
        "debounce_ms": index.options.debounce_ms,
    }


def measure_retrieval(index: WorkspaceIndex, root: Path, count: int, seed: int) -> dict:
    """Cursors at line ends (and after `name.`) of files opened in the editor."""
    rng = random.Random(seed)
    candidates = sorted(p for p in index.paths.paths if p.endswith(".py") and "/" in p)
    opened = rng.sample(candidates, 12)
    texts = {}
    for relative in opened:
        texts[relative] = (root / relative).read_text(encoding="utf-8", errors="replace")
        index.document_changed(root / relative, texts[relative])
    retriever = ContextRetriever(index)
    times: list[float] = []
    cpu_times: list[float] = []
    sizes: list[int] = []
    requests = []
    for _ in range(count):
        relative = rng.choice(opened)
        lines = texts[relative].split("\n")
        line = rng.randrange(len(lines))
        requests.append(
            CompletionRequest(texts[relative], Position(line, len(lines[line])), path=relative)
        )
    for request in requests[:20]:  # warm the caches of the opened files' chunks
        retriever.retrieve(request)
    for request in requests:
        started, cpu_started = time.perf_counter(), time.thread_time()
        snippets = retriever.retrieve(request)
        times.append((time.perf_counter() - started) * 1000)
        cpu_times.append((time.thread_time() - cpu_started) * 1000)
        sizes.append(len(snippets))
    result = {
        "requests": len(times),
        "ms_p50": percentile(times, 50),
        "ms_p99": percentile(times, 99),
        "cpu_ms_p50": percentile(cpu_times, 50),
        "cpu_ms_p99": percentile(cpu_times, 99),
        "snippets_median": statistics.median(sizes),
    }
    result.update(measure_render(requests[:200], retriever))
    return result


def measure_render(requests: list[CompletionRequest], retriever: ContextRetriever) -> dict:
    try:
        from tokenizers import Tokenizer

        from completion.context import ContextRenderer
        from onnx_models.install import ensure_model
        from onnx_models.manifest import ModelManifest

        model_dir = ensure_model()
        manifest = ModelManifest.load(model_dir)
        tokenizer = Tokenizer.from_file(str(model_dir / manifest.tokenizer_file))
    except Exception as exc:  # no model here: retrieval numbers stand on their own
        print(f"  (render not measured: {exc})")
        return {}
    renderer = ContextRenderer(tokenizer, manifest)
    times: list[float] = []
    tokens: list[int] = []
    for request in requests:
        snippets = retriever.retrieve(request)
        started = time.perf_counter()
        text = renderer.render(snippets, 384, repo_name="stdlib", current_path=request.path)
        times.append((time.perf_counter() - started) * 1000)
        tokens.append(renderer.count(text) if text else 0)
    return {
        "render_ms_p50": percentile(times, 50),
        "render_ms_p99": percentile(times, 99),
        "context_tokens_median": statistics.median(tokens),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=200)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--workers", type=int, default=0, help="0: one per CPU")
    parser.add_argument("--niceness", type=int, default=IndexOptions().worker_niceness)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    print(f"load average {os.getloadavg()}, {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory(prefix="nexttoken-index-bench-") as scratch:
        root = copy_stdlib(Path(scratch) / "stdlib")
        stores = Path(scratch) / "stores"
        options = IndexOptions(
            store_folder=stores, workers=args.workers, worker_niceness=args.niceness
        )

        cpu_before = cpu_seconds()
        index, cold_s = start(root, options)
        cold_cpu_s = cpu_seconds() - cpu_before
        summary = index.summary
        assert summary is not None
        own_rss, worker_rss = peak_rss_mb()
        index.stop()
        cold = {
            "files": summary.files,
            "indexed": summary.indexed,
            "skipped": summary.skipped,
            "mb": summary.bytes_read / 1e6,
            "seconds": cold_s,
            "files_per_s": summary.indexed / cold_s,
            "mb_per_s": summary.bytes_read / 1e6 / cold_s,
            # On a shared machine wall time includes waiting for a CPU; CPU time does not:
            # what the same work takes on as many idle cores as there were workers.
            "cpu_seconds": cold_cpu_s,
            "mb_per_cpu_s": summary.bytes_read / 1e6 / cold_cpu_s,
            "workers": summary.workers,
            "peak_rss_mb": own_rss,
            "peak_worker_rss_mb": worker_rss,
            "store_mb": store_bytes(stores) / 1e6,
        }
        print("cold:", json.dumps(cold, indent=1))

        index, warm_s = start(root, options)
        assert index.summary is not None
        warm = {"seconds": warm_s, "read_again": index.summary.indexed}
        print("warm:", json.dumps(warm, indent=1))

        updates = measure_updates(index, root, args.updates, args.seed)
        print("update:", json.dumps(updates, indent=1))
        retrieval = measure_retrieval(index, root, args.requests, args.seed)
        print("retrieval:", json.dumps(retrieval, indent=1))
        index.stop()
    print(f"load average {os.getloadavg()}")
    if args.json:
        args.json.write_text(
            json.dumps(
                {"cold": cold, "warm": warm, "update": updates, "retrieval": retrieval}, indent=1
            )
        )


if __name__ == "__main__":
    main()
