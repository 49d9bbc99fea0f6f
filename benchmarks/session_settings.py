"""Session settings of the engine, each against the shipped ones, measured in one process.

For every variant (a change to `onnx_models.engine.session_options`) an Engine is loaded on
the default model; rounds interleave the variants (order rotated): session creation, a cold
prefill of 512 tokens of the stdlib prompt, then 32 greedy decode steps. Also the load of an
onnxruntime-optimised copy of the graph saved to disk (what caching the optimised graph would
save at start), against loading the graph itself.

    python benchmarks/session_settings.py --rounds 5 --json out.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime as ort

sys.path.insert(0, str(Path(__file__).resolve().parent))
from engine import prompt_text  # noqa: E402

import onnx_models.engine as engine_module  # noqa: E402
from onnx_models.engine import Engine, session_options  # noqa: E402
from onnx_models.install import ensure_model  # noqa: E402

Change = Callable[[ort.SessionOptions], None]


def _threads(n: int) -> Change:
    def change(so: ort.SessionOptions) -> None:
        so.intra_op_num_threads = n

    return change


def _level(level: ort.GraphOptimizationLevel) -> Change:
    def change(so: ort.SessionOptions) -> None:
        so.graph_optimization_level = level

    return change


def _no_arena(so: ort.SessionOptions) -> None:
    so.enable_cpu_mem_arena = False


def _no_pattern(so: ort.SessionOptions) -> None:
    so.enable_mem_pattern = False


VARIANTS: dict[str, Change] = {
    "shipped": lambda so: None,
    "1 thread": _threads(1),
    "basic graph optimisations": _level(ort.GraphOptimizationLevel.ORT_ENABLE_BASIC),
    "extended graph optimisations": _level(ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED),
    "no memory arena": _no_arena,
    "no memory pattern": _no_pattern,
}


def load(model: Path, change: Change) -> tuple[Engine, float]:
    def options(threads: int | None) -> ort.SessionOptions:
        so = session_options(threads)
        change(so)
        return so

    engine_module.session_options = options
    try:
        t0 = time.perf_counter()
        engine = Engine.load(model)
        return engine, (time.perf_counter() - t0) * 1000
    finally:
        engine_module.session_options = session_options


def measure(engine: Engine, ids: list[int]) -> tuple[float, float]:
    """(cold prefill ms, decode ms per token)."""
    engine.rewind(0)
    t0 = time.perf_counter()
    engine.prefill(ids)
    prefill = (time.perf_counter() - t0) * 1000
    token = int(np.argmax(engine.logits))
    t0 = time.perf_counter()
    for _ in range(32):
        engine.step(token)
        token = int(np.argmax(engine.logits))
    return prefill, (time.perf_counter() - t0) * 1000 / 32


def optimised_copy_load(model: Path, rounds: int) -> dict[str, float]:
    """Session creation from the graph (all optimisations, as shipped) against from a copy
    that onnxruntime optimised and saved (extended level, the portable one), passes off."""
    graph = model / "model.onnx"
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "model.opt.onnx"
        so = session_options(None)
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
        so.optimized_model_filepath = str(copy)
        so.add_session_config_entry(
            "session.optimized_model_external_initializers_file_name", copy.name + ".data"
        )
        ort.InferenceSession(str(graph), so)
        times: dict[str, list[float]] = {"graph": [], "copy": []}
        for _ in range(rounds):
            for name, path, level in (
                ("graph", graph, ort.GraphOptimizationLevel.ORT_ENABLE_ALL),
                ("copy", copy, ort.GraphOptimizationLevel.ORT_DISABLE_ALL),
            ):
                so = session_options(None)
                so.graph_optimization_level = level
                t0 = time.perf_counter()
                ort.InferenceSession(str(path), so)
                times[name].append((time.perf_counter() - t0) * 1000)
        size = sum(p.stat().st_size for p in Path(tmp).iterdir())
    return {
        **{f"{k}_load_ms": statistics.median(v) for k, v in times.items()},
        "copy_mb": size / 2**20,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="model folder (default: the default model)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    model = args.model or ensure_model()
    engines: dict[str, Engine] = {}
    samples: dict[str, dict[str, list[float]]] = {
        name: {"load_ms": [], "prefill_512_ms": [], "decode_ms": []} for name in VARIANTS
    }
    for name, change in VARIANTS.items():
        engines[name], _ = load(model, change)  # the first load of a file warms the OS cache
    ids = engines["shipped"].tokenizer.encode(prompt_text()).ids[:512]
    names = list(VARIANTS)
    for r in range(args.rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            del engines[name]
            engines[name], load_ms = load(model, VARIANTS[name])
            prefill, decode = measure(engines[name], ids)
            for key, value in (
                ("load_ms", load_ms),
                ("prefill_512_ms", prefill),
                ("decode_ms", decode),
            ):
                samples[name][key].append(value)
        print(f"round {r + 1}/{args.rounds}", flush=True)
    summary = {
        name: {key: statistics.median(v) for key, v in values.items()}
        for name, values in samples.items()
    }
    base = summary["shipped"]
    print("| session | load (ms) | cold prefill 512 (ms) | decode (ms/token) |")
    print("|---|---|---|---|")
    for name, s in summary.items():
        cells = [
            f"{s[k]:,.1f}" if name == "shipped" else f"{s[k]:,.1f} ({s[k] / base[k]:.2f}×)"
            for k in ("load_ms", "prefill_512_ms", "decode_ms")
        ]
        print(f"| {name} | " + " | ".join(cells) + " |")
    copy = optimised_copy_load(model, args.rounds)
    print(
        f"session creation: from the graph {copy['graph_load_ms']:.0f} ms, from an "
        f"optimised copy {copy['copy_load_ms']:.0f} ms (the copy: {copy['copy_mb']:.0f} MB)"
    )
    if args.json:
        out = {"summary": summary, "samples": samples, "optimised_copy": copy}
        args.json.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
