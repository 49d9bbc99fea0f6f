"""What one forward pass of R new tokens costs after a cached prompt, by graph variant.

Why: whether MatMulNBits' int8-activation kernels beat its float32-activation ones depends on
the rows of a pass and on the CPU (a step graph, `--step-graph`, runs one-row decode steps on
them; passes through `prefill`, as here, run a model's prefill graph). For every variant
(GraphOptions specs, built into the cache once, or model folders) an Engine prefills the same
1,000 tokens of the stdlib prompt; then, round by round (variants interleaved, order
alternated), each times a pass of R tokens after it for every R. Also the cold prefill of
those 1,000 tokens and the machine's CPU flags that pick onnxruntime's kernels.

    python benchmarks/pass_rows.py --variants weights=q4,lm_head=q8,rescore=256 \
        weights=q4,lm_head=q8,rescore=256,accuracy_level=4 --rounds 5
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from engine import ours_model_dir, prompt_text  # noqa: E402

from onnx_models.engine import Engine  # noqa: E402

CACHED = 1000
ROWS = (1, 2, 4, 9, 16, 24, 32, 64, 128)


def cpu_flags() -> list[str]:
    """The vector extensions onnxruntime's CPU kernels choose between."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return []
    lines = (line for line in text.splitlines() if line.startswith("flags"))
    flags = next(lines, "flags:").split(":", 1)[1].split()
    wanted = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8", "fma")
    return [f for f in wanted if f in flags]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", nargs="+", required=True)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    engines = {
        v: Engine.load(ours_model_dir(f"graph:{v}" if "=" in v else v)) for v in args.variants
    }
    ids = next(iter(engines.values())).tokenizer.encode(prompt_text()).ids[: CACHED + max(ROWS)]
    passes: dict[str, dict[int, list[float]]] = {v: {r: [] for r in ROWS} for v in engines}
    cold: dict[str, list[float]] = {v: [] for v in engines}
    for round_ in range(args.rounds):
        order = list(engines) if round_ % 2 == 0 else list(engines)[::-1]
        for variant in order:
            engine = engines[variant]
            engine.rewind(0)
            t0 = time.perf_counter()
            engine.prefill(ids[:CACHED])
            cold[variant].append((time.perf_counter() - t0) * 1000)
            for rows in ROWS:
                engine.rewind(CACHED)
                t0 = time.perf_counter()
                engine.prefill(ids[: CACHED + rows], chunk=rows)  # one pass of `rows` tokens
                passes[variant][rows].append((time.perf_counter() - t0) * 1000)
    results = {
        "cpu_flags": cpu_flags(),
        "rounds": args.rounds,
        "variants": {
            v: {
                "cold_prefill_ms": statistics.median(cold[v]),
                "pass_ms": {r: statistics.median(passes[v][r]) for r in ROWS},
            }
            for v in engines
        },
    }
    print("CPU:", " ".join(results["cpu_flags"]))
    print("rows " + " ".join(f"{r:>7}" for r in ROWS) + "   cold prefill")
    for v, r in results["variants"].items():
        print(
            " ".join(f"{r['pass_ms'][n]:7.1f}" for n in ROWS),
            f"{r['cold_prefill_ms']:9.0f}",
            v,
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
